import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

/// `metactl db status [--json]`
struct DBStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the state database replicas and the quorum (metadb -i).",
        discussion: """
        One line per replica: device, byte offset, size, state and generation. States: active \
        (holds the configuration in force), stale (an older generation; refreshed when the set \
        is next opened read-write), unreadable (device missing, I/O error or no intact copy), \
        newer (a newer generation that could not be used). Then the quorum verdict.

        --json prints {"set", "replicas": [{"device", "offsetBytes", "sizeBytes", "state", \
        "generation", "problems"}], "quorum": {"readable", "total", "writable"}, "generation"}.
        """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: JSONOption

    struct ReplicaJSON: Codable {
        var device: String
        var offsetBytes: UInt64
        var sizeBytes: UInt64
        var state: ReplicaState
        var generation: UInt64
        var problems: [String]
    }
    struct StatusJSON: Codable {
        var set: String
        var generation: UInt64
        var replicas: [ReplicaJSON]
        var quorum: Quorum
    }

    func run() throws {
        let db: SetDatabase
        do {
            db = try SetDatabase.open(setName: global.set, configDir: global.configDir, runDir: global.runDir,
                                      mode: .readOnly)
        } catch { throw userError(error) }
        defer { db.close() }
        let st = db.replicaStatus
        let q = db.quorum
        if output.json {
            try Output.printJSON(StatusJSON(
                set: global.set, generation: db.currentGeneration,
                replicas: st.map { ReplicaJSON(device: $0.devicePath, offsetBytes: $0.offsetBytes, sizeBytes: $0.sizeBytes,
                                               state: $0.state, generation: $0.generation, problems: $0.problems) },
                quorum: q))
            return
        }
        let rows = st.map { [$0.devicePath, "\($0.offsetBytes)", Output.humanSize($0.sizeBytes), $0.state.rawValue,
                             $0.generation == 0 ? "-" : "\($0.generation)"] }
        print(Output.table(["Device", "Offset", "Size", "State", "Generation"], rows))
        print(Self.verdict(set: global.set, quorum: q, statuses: st))
        if global.verbose {
            for s in st { for p in s.problems { print("  \(s.devicePath): \(p)") } }
            for p in db.skippedWhileLoading { print("  skipped: \(p)") }
        }
    }

    static func verdict(set: String, quorum q: Quorum, statuses: [ReplicaStatus]) -> String {
        let bad = statuses.filter { $0.state != .active && $0.state != .stale }.map(\.devicePath)
        var s = "Quorum: \(q.readable) of \(q.total) replicas readable: "
        if q.writable {
            s += "writable."
            if !bad.isEmpty { s += " Unreadable: \(Set(bad).sorted().joined(separator: ", ")) (replace them with `metactl db delete` and `metactl db add`)." }
        } else {
            s += "read-only. Missing: \(Set(bad).sorted().joined(separator: ", ")). Bring the devices back, or remove the dead replicas with `metactl -s \(set) db delete --force DEV...`."
        }
        return s
    }
}
