import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

/// `metactl db create|add|delete|status`: the state database replicas (SVM's metadb).
struct DBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Manage the state database replicas of a set (metadb).",
        discussion: """
        Every set keeps its whole configuration in replicas of the state database on its own \
        devices. The set is writable while strictly more than half of its replicas are readable \
        and current; with half or fewer it is read-only until the devices come back or the dead \
        replicas are removed with `db delete --force`.
        """,
        subcommands: [DBCreateCommand.self, DBAddCommand.self, DBDeleteCommand.self, DBStatusCommand.self])
}

/// Errors from the database layer as one-line user errors.
func userError(_ e: any Error) -> UserError {
    UserError(wrapping: e)
}

private let safeReplicaCount = SetManager.safeReplicaCount

/// `metactl db create [--copies N] [--force] DEV...`
struct DBCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create the state database of a set (metadb -a -f).",
        discussion: """
        Labels each device for the set and writes N replicas on it (default 1). At least 3 \
        replicas in all are recommended: fewer are warned about, since losing one device then \
        makes the set read-only. A device in use (mounted, held, open exclusively, member of a \
        set) is always refused; one with a file system, partition table or RAID/LVM signature \
        is refused unless --force.
        """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Replicas on each device (1–16).")
    var copies = 1

    @Flag(name: .shortAndLong, help: "Overwrite devices that carry a signature.")
    var force = false

    @Argument(help: "Devices or image files to hold the replicas.", completion: .file())
    var devices: [String]

    func run() throws {
        guard (1...16).contains(copies) else { throw UserError("--copies must be between 1 and 16, not \(copies)", code: .invalidArgument) }
        guard !devices.isEmpty else { throw UserError("no devices given", code: .usage) }
        let db: SetDatabase
        do {
            db = try SetDatabase.create(setName: global.set, replicaDevices: devices.map { (Paths.absolute($0), copies) },
                                        configDir: global.configDir, runDir: global.runDir, force: force)
        } catch { throw userError(error) }
        defer { db.close() }
        let n = db.config.replicas.count
        if n < safeReplicaCount {
            Output.warn("set '\(global.set)' has only \(n) state database replica\(n == 1 ? "" : "s"): at least \(safeReplicaCount) are recommended, so that losing one device leaves a majority")
        }
        if !global.quiet {
            print("set '\(global.set)': state database created with \(n) replica\(n == 1 ? "" : "s") on \(devices.count) device\(devices.count == 1 ? "" : "s")")
        }
    }
}

/// `metactl db add [--copies N] [--force] DEV...`
struct DBAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add state database replicas on new devices (metadb -a).",
        discussion: "Each device is labelled for the set and gets N replicas; the configuration is committed to all replicas, old and new, in one transaction. Devices already in the set cannot take more replicas (their data area cannot move).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Replicas on each device (1–16).")
    var copies = 1

    @Flag(name: .shortAndLong, help: "Overwrite devices that carry a signature.")
    var force = false

    @Argument(help: "Devices or image files.", completion: .file())
    var devices: [String]

    func run() throws {
        guard (1...16).contains(copies) else { throw UserError("--copies must be between 1 and 16, not \(copies)", code: .invalidArgument) }
        guard !devices.isEmpty else { throw UserError("no devices given", code: .usage) }
        let res = try CommandContext.perform(.dbAdd(ReplicaRequest(devices: devices.map(Paths.absolute), copies: copies, force: force)),
                                             global, as: ReplicaResult.self)
        if !global.quiet { print("set '\(global.set)': \(res.replicas) state database replicas") }
    }
}

/// `metactl db delete [--force] DEV...`
struct DBDeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete the state database replicas on devices (metadb -d).",
        discussion: """
        Removes every replica on the named devices. A device that only held replicas leaves the \
        set (its label is wiped); a volume's component stays a component. Asks for --force when \
        fewer than 3 replicas would remain, or when the replicas are readable on a volume's \
        component. With --force it also works on a read-only set: this is how to drop dead \
        replicas and make the set writable again.

        Deleting the last replicas deletes the set (SVM: metadb -d -f): only with --force, \
        once every volume is cleared and every hot spare pool deleted, and not while the set \
        is served. The labels of its devices are wiped and the set leaves this host's registry.
        """)

    @OptionGroup var global: GlobalOptions

    @Flag(name: .shortAndLong, help: "Delete even below a safe count, or without quorum.")
    var force = false

    @Argument(help: "Devices whose replicas to delete (missing ones by their last known path).", completion: .file())
    var devices: [String]

    func run() throws {
        guard !devices.isEmpty else { throw UserError("no devices given", code: .usage) }
        let res = try CommandContext.perform(.dbDelete(ReplicaRequest(devices: devices.map(Paths.absolute), force: force)),
                                             global, as: ReplicaResult.self)
        if global.quiet { return }
        if res.setDeleted == true {
            print("set '\(global.set)': deleted (its last state database replicas are gone, its devices' labels wiped)")
        } else {
            print("set '\(global.set)': \(res.replicas) state database replica\(res.replicas == 1 ? "" : "s") left")
        }
    }

}

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

/// `metactl import [--json] [DEV...]`
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Find sets by the labels on their devices and record them on this host (metaimport).",
        discussion: """
        Scans the block devices in sysfs, the paths given (image files, or devices named \
        explicitly) and the paths the host registry already names for metactl labels, loads each \
        set's configuration and records the set in <config-dir>/sets.json with the paths where \
        its devices are now. Devices are identified by the UUID in their label, so a set is \
        found after its /dev names changed or its image files moved. With -s NAME only the set \
        named NAME is recorded; without it, every set found.

        --json prints {"sets": [{"set", "uuid", "generation", "devices": [{"uuid", "path", \
        "role", "found", "moved"}], "quorum": {"readable", "total", "writable"}, "recorded", \
        "problems"}]}.
        """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: JSONOption

    @Flag(name: .customLong("no-scan"), help: "Only look at the given paths and the registry's, not at every block device.")
    var noScan = false

    @Argument(help: "Extra devices or image files to look at.", completion: .file())
    var devices: [String] = []

    struct ImportJSON: Codable { var sets: [ImportResult] }

    func run() throws {
        let results: [ImportResult]
        do {
            let paths = devices.map(Paths.absolute)
            var salvaged: [String] = []
            if let bad = try HostRegistry.setAsideMalformed(configDir: global.configDir) {
                Output.warn("\(HostRegistry.path(configDir: global.configDir)) was malformed: moved to \(bad); rebuilding it")
                // Its legible device paths are looked at too (image files are found no other way).
                salvaged = HostRegistry.salvagePaths(fromMalformed: bad).filter {
                    !paths.contains($0) && FileManager.default.fileExists(atPath: $0)
                }
            }
            results = try SetDatabase.importSets(paths: paths, configDir: global.configDir,
                                                 scanSystem: !noScan, only: global.setOption, alsoLookAt: salvaged)
        } catch { throw userError(error) }
        if output.json { try Output.printJSON(ImportJSON(sets: results)) }
        else {
            if results.isEmpty { print("no metactl set found") }
            for r in results {
                let found = r.devices.filter(\.found).count
                let moved = r.devices.filter(\.moved).count
                print("set '\(r.set)' (\(r.uuid.uuidString.lowercased())): \(found) of \(r.devices.count) devices found"
                      + (moved > 0 ? ", \(moved) under new paths" : "")
                      + ", \(r.quorum.readable) of \(r.quorum.total) replicas readable"
                      + (r.recorded ? "; recorded in \(global.configDir)/sets.json" : "; not recorded"))
                for d in r.devices where !d.found { print("  missing: \(d.path) (\(d.role.rawValue), \(d.uuid.uuidString.lowercased()))") }
                for p in r.problems where !r.recorded || global.verbose { print("  \(p)") }
            }
        }
        if results.contains(where: { !$0.recorded }) {
            throw ExitCode(1)
        }
    }
}
