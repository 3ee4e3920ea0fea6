import ArgumentParser
import Foundation
import MetaControl

/// `metactl online MIRROR SIDE` (metaonline).
struct OnlineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "online",
        abstract: "Bring a side of a mirror back and resync what it missed (metaonline).",
        discussion: """
        An Offline side resyncs the regions written while it was offline; a Needs Maintenance \
        side (after its devices are fixed) resyncs every region. It is written at once and \
        read again when the resync is done. \(MirrorSideCommand.jsonHelp)
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The mirror.", completion: .shellCommand(Completions.volumes)) var mirror: String
    @Argument(help: "The side to bring back.", completion: .shellCommand(Completions.volumes)) var side: String
    @OptionGroup var output: JSONOption
    func run() throws { try MirrorSideCommand.run(.online, mirror: mirror, side: side, global, json: output.json) }
}
