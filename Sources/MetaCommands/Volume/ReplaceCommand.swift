import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

/// `metactl replace NAME OLD NEW [OLD2 NEW2] [--wait] [--force]` / `metactl replace NAME --enable DEV [--wait]`
struct ReplaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replace",
        abstract: "Replace or re-enable a RAID-5 or RAID-6 component (metareplace).",
        discussion: """
        A mirror (or one of its sides) as NAME: OLD is a component of a side; NEW takes its \
        place in that side, which then resyncs every region from the other sides while the \
        mirror stays in use (--wait follows the mirror); --enable OLD brings that side back \
        as `metactl online` does. With a RAID volume and OLD and NEW: if OLD is still readable its data is copied to NEW (the volume keeps \
        its redundancy the whole time; if OLD fails during the copy, the rest is regenerated \
        from parity); otherwise NEW is rebuilt from the other columns. NEW is checked like a \
        create device and must be large enough; its logical sector size must divide the \
        interlace and not exceed the volume's sector size. When OLD is a column whose hot spare stands \
        in, the data is copied from the spare and the spare returns to its pool.

        With OLD NEW OLD2 NEW2 (RAID-6, two failed columns): both are rebuilt in one pass, \
        one read of the other columns writing both new devices (one after the other would \
        read everything twice). A hot spare pool does the same when two columns fail.

        With --enable DEV: a column in Maintenance is regenerated in place (after a transient \
        fault); a Last Erred column is trusted again without a resync.

        While `metactl serve` runs the resync happens there and this command returns at once \
        (or follows it with --wait); without a server it runs in the foreground with progress \
        on stderr. Refused on a Last Erred volume unless --force. The `Invoke:` line of \
        `metactl status` names the replace commands that bring a volume back, in the order \
        they are accepted.

        Ctrl-C while waiting stops only the waiting: with a server the resync goes on there; \
        without one it resumes from its last checkpoint when the set is next served.

        --json prints {"name", "kind" ("copy", "regenerate" or "enable"), "messages": [...]}.
        """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The RAID-5 or RAID-6 volume.", completion: .shellCommand(Completions.volumes))
    var name: String

    @Argument(help: "OLD NEW (RAID-6: or OLD NEW OLD2 NEW2), or with --enable nothing.", completion: .file())
    var devices: [String] = []

    @Option(name: .long, help: ArgumentHelp("Re-enable this component in place.", valueName: "dev"), completion: .file())
    var enable: String?

    @Flag(name: .long, help: "Follow the resync until it ends (progress on stderr).")
    var wait = false

    @Flag(name: .shortAndLong, help: "Proceed on a Last Erred volume; overwrite a signature on NEW.")
    var force = false

    @OptionGroup var output: JSONOption

    func run() throws {
        let req: ReplaceRequest
        if let enable {
            guard devices.isEmpty else { throw UserError("replace --enable takes one device and no OLD NEW pair") }
            req = ReplaceRequest(name: name, old: Paths.absolute(enable), new: nil, force: force)
        } else {
            guard devices.count == 2 || devices.count == 4 else {
                throw UserError("replace needs OLD and NEW, OLD NEW OLD2 NEW2 (RAID-6), or --enable DEV")
            }
            req = ReplaceRequest(name: name, old: Paths.absolute(devices[0]), new: Paths.absolute(devices[1]), force: force,
                                 second: devices.count == 4 ? ReplacePair(old: Paths.absolute(devices[2]), new: Paths.absolute(devices[3])) : nil)
        }
        let served = SetAccess.serverRunning(set: global.set, runDir: global.runDir)
        Interrupt.onSIGINT(served
            ? "\(name): interrupted; the resync continues in the server (follow it with `metactl status \(name)`)"
            : "\(name): interrupted; the resync resumes from its last checkpoint when the set is served (`metactl serve`)")
        let res = try CommandContext.perform(.replace(req), global, as: ReplaceResult.self,
                                             progress: global.quiet ? nil : ProgressDisplay.reporter)
        ProgressDisplay.done()
        if output.json { try Output.printJSON(res) } else if !global.quiet { for m in res.messages { print(m) } }
        fflush(nil)  // the header before the progress of --wait on stderr, also through a pipe
        if wait && SetAccess.serverRunning(set: global.set, runDir: global.runDir) {
            let rebuilt = req.new ?? req.old
            // (A side's component: the mirror it belongs to is what resyncs.)
            let v = try ProgressDisplay.waitForVolume(res.name, global, component: rebuilt)
            if !global.quiet {
                print(v.state == VolumeState.okay.rawValue ? Said.volumeOkay(res.name)
                      : "\(res.name): \(rebuilt) is Okay; the volume is still \(v.state)\(v.invoke.map { " (Invoke: \($0))" } ?? "")")
            }
        }
    }
}
