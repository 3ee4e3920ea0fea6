import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

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
