import ArgumentParser
import Foundation
import MetaControl

/// `metactl detach MIRROR SIDE [-f]` (metadetach).
struct DetachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detach",
        abstract: "Remove a side from a mirror (metadetach).",
        discussion: """
        The side becomes a volume of its own again, with the data it has (an Okay side holds \
        every block of the mirror as of the detach). The last Okay side cannot be detached \
        (clear the mirror instead). A side that is Resyncing, Needs Maintenance or Last Erred \
        needs -f. \(MirrorSideCommand.jsonHelp)
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The mirror.", completion: .shellCommand(Completions.volumes)) var mirror: String
    @Argument(help: "The side to detach.", completion: .shellCommand(Completions.volumes)) var side: String
    @Flag(name: .shortAndLong, help: "Detach a side that is not Okay.") var force = false
    @OptionGroup var output: JSONOption
    func run() throws { try MirrorSideCommand.run(.detach, mirror: mirror, side: side, force: force, global, json: output.json) }
}
