import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

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
