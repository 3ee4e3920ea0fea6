import ArgumentParser
import Foundation
import MetaControl

/// What the four side commands share: the request, and SVM's one-line answer.
enum MirrorSideCommand {
    static func run(_ op: MirrorRequest.Operation, mirror: String, side: String, force: Bool = false, noResync: Bool = false,
                    _ global: GlobalOptions, json: Bool) throws {
        let res = try CommandContext.perform(.mirror(MirrorRequest(operation: op, mirror: mirror, side: side, force: force, noResync: noResync)),
                                             global, as: MirrorReply.self)
        if json { try Output.printJSON(res); return }
        for m in res.messages { Output.warn(m) }
        let done: String
        switch op {
        case .attach: done = "attached"
        case .detach: done = "detached"
        case .offline: done = "offlined"
        case .online: done = "onlined"
        }
        if !global.quiet {
            var line = Said.submirror(mirror, side, done)
            if let n = res.resyncRegions { line += " (resyncing \(n) region\(n == 1 ? "" : "s"))" }
            print(line)
        }
    }

    static let jsonHelp = """
        --json prints {"mirror", "side", "state" (the side's state afterwards, Detached after \
        detach), "resyncRegions" (regions it resyncs; null: every region or none), "messages"}.
        """
}

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
