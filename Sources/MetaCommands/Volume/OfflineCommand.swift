import ArgumentParser
import Foundation
import MetaControl

/// `metactl offline MIRROR SIDE` (metaoffline).
struct OfflineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "offline",
        abstract: "Stop using a side of a mirror for a while (metaoffline).",
        discussion: """
        The side is neither read nor written; the regions written meanwhile are recorded \
        (status shows how many), so that `metactl online` copies only those (md's \
        write-intent bitmap). Another side must stay Okay. The mirror is Needs Maintenance \
        until the side is back. \(MirrorSideCommand.jsonHelp)
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The mirror.", completion: .shellCommand(Completions.volumes)) var mirror: String
    @Argument(help: "The side to take offline.", completion: .shellCommand(Completions.volumes)) var side: String
    @OptionGroup var output: JSONOption
    func run() throws { try MirrorSideCommand.run(.offline, mirror: mirror, side: side, global, json: output.json) }
}
