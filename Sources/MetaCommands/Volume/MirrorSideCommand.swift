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
