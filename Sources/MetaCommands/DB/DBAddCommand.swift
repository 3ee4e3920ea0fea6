import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

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
