import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

/// `metactl clear NAME [-f]`
struct ClearCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clear",
        abstract: "Delete a volume (metaclear).",
        discussion: "Removes the volume from the state database and releases its devices' labels; devices that hold state database replicas stay in the set. Refused while clients have the volume open through the server, unless -f.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Volumes to delete.", completion: .shellCommand(Completions.volumes))
    var names: [String]

    @Flag(name: .shortAndLong, help: "Delete even while open or resyncing.")
    var force = false

    func run() throws {
        for n in names {
            let res = try CommandContext.perform(.clear(name: n, force: force), global, as: [String: String].self)
            // SVM's wording, for the type the volume had.
            if !global.quiet { print(Said.volumeCleared(n, typeRaw: res["type"])) }
        }
    }
}
