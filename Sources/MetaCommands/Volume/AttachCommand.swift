import ArgumentParser
import Foundation
import MetaControl

/// `metactl attach MIRROR SIDE [--no-resync] [-f]` (metattach).
struct AttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Add a side to a mirror and resync it (metattach).",
        discussion: """
        SIDE is a concat or stripe volume of the set, at least as large as the mirror, that \
        no other mirror uses and no soft partition is carved from. It is written with every \
        write from now on and resynced from the other sides in the background while the \
        mirror stays in use (every region; `status` shows how far). It is read only once the \
        resync is done. It stops being exported on its own: a side is reached through its \
        mirror. --no-resync skips the resync: only for a side known to hold the mirror's \
        data already (the user's promise). A mirror has at most 4 sides. \
        \(MirrorSideCommand.jsonHelp)
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The mirror.", completion: .shellCommand(Completions.volumes)) var mirror: String
    @Argument(help: "The volume to attach.", completion: .shellCommand(Completions.volumes)) var side: String
    @Flag(name: .customLong("no-resync"), help: "The side holds the mirror's data already: no resync.") var noResync = false
    @Flag(name: .shortAndLong, help: "Attach even while clients have the volume open (they are disconnected).") var force = false
    @OptionGroup var output: JSONOption
    func run() throws {
        try MirrorSideCommand.run(.attach, mirror: mirror, side: side, force: force, noResync: noResync, global, json: output.json)
    }
}
