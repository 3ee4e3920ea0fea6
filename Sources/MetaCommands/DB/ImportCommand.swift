import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

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
