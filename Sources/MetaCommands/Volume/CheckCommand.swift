import ArgumentParser
import Foundation
import MetaControl
import MetaModel

/// `metactl check NAME [--repair] [--stop] [--wait]`
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a RAID-5 or RAID-6 volume's parity against its data, line by line, or a mirror's sides against each other (scrub; md's check/repair).",
        discussion: """
        Reads every line of the volume while it stays in use and checks that each line's \
        parity is the XOR of its data. Mismatching lines are counted and the first 16 recorded; \
        with --repair their parity is rewritten to match the data (RAID-5 cannot tell which \
        unit was wrong, so the data is kept). On RAID-6 both P and Q are checked, and a line \
        whose two syndromes point at exactly one column has that column's unit located \
        (recorded as line and column); --repair rewrites only that unit (md's raid6check, \
        online). Where the syndromes do not agree on one column, P and Q are rewritten from \
        the data as on RAID-5. A unit a column cannot read is rewritten from the \
        other columns instead of failing the column, as md does; if that write fails too, the \
        column fails. Every column must be Okay, and no resync or grow may be running.

        A mirror's sides are read chunk by chunk (1 MiB, its "lines" in --json and status) and \
        compared with the first side; differing chunks are counted and the first 16 recorded, \
        and --repair rewrites the other sides from the first (md's repair of RAID-1: which side \
        was right cannot be known). A chunk a side cannot read is rewritten from the first \
        side. Every side must be Okay.

        With a server the check runs in the background: --wait follows it (progress on \
        stderr), --stop ends it. It is rate-limited like a resync (`metactl set NAME \
        --resync-rate MIN:MAX`), checkpointed every few seconds, and resumed from its \
        checkpoint when the server restarts. Without a server it runs in the foreground. \
        `metactl status` shows the check in progress, or the last one (when, result, \
        mismatches, repairs).

        Exit status: 0 when the check completed without an unrepaired mismatch (or was \
        started, or stopped); 1 when it found mismatches it did not repair; 5 when it was \
        abandoned (a column failed or went away). --json prints {"name", "action" \
        (started, finished, stopped), "check": {"running", "repair", "percent", \
        "bytesPerSecond", "secondsLeft", "startedAt", "endedAt", "result" (completed, \
        stopped, abandoned), "failure", "mismatches", "mismatchLines", "repaired", \
        "readErrorsRepaired", "located"}}; with --wait, the check as it ended.
        """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The RAID-5, RAID-6 or mirror volume.", completion: .shellCommand(Completions.volumes))
    var name: String

    @Flag(help: "Rewrite the parity of the lines where it does not match the data (a mirror: the other sides from the first).")
    var repair = false

    @Flag(help: "Stop the running check.")
    var stop = false

    @Flag(help: "Follow the check until it ends (progress on stderr).")
    var wait = false

    @OptionGroup var output: JSONOption

    func run() throws {
        if stop && (repair || wait) { throw UserError("check --stop takes neither --repair nor --wait", code: .usage) }
        let served = SetAccess.serverRunning(set: global.set, runDir: global.runDir)
        if !stop {
            Interrupt.onSIGINT(served
                ? "\(name): interrupted; the check continues in the server (follow it with `metactl status \(name)`, stop it with `metactl check \(name) --stop`)"
                : "\(name): interrupted; the check resumes from its last checkpoint when the set is served (`metactl serve`)")
        }
        var reply = try CommandContext.perform(.check(CheckRequest(name: name, repair: repair, stop: stop)), global,
                                               as: CheckReply.self, progress: global.quiet ? nil : ProgressDisplay.reporter)
        ProgressDisplay.done()
        if !output.json && !global.quiet {
            switch reply.action {
            case "started": print("\(name): check\(repair ? " and repair" : "") started")
            case "stopped": print("\(name): check stopped\(reply.check.map { " at \(String(format: "%.1f", $0.percent))%" } ?? "")")
            default: break
            }
        }
        fflush(nil)
        if wait && reply.action == "started" {
            reply.check = try Self.follow(name, global)
        }
        if output.json { try Output.printJSON(reply) }
        guard reply.action != "stopped", let c = reply.check, !c.running else { return }
        let isMirror = (try? CommandContext.perform(.status(names: [name]), global, as: StatusReport.self))?.volumes.first?.mirror != nil
        if !output.json && !global.quiet {
            print("\(name): check \(c.result ?? "ended"): \(StatusFormatter.checkFindings(c, unit: isMirror ? "chunk" : "line"))")
        }
        if c.result == CheckResult.abandoned.rawValue {
            throw UserError("\(name): check abandoned at \(String(format: "%.1f", c.percent))%: \(c.failure ?? "a column failed")", code: .deviceFailed)
        }
        if c.mismatches > c.repaired {
            let n = c.mismatches - c.repaired
            if isMirror {
                throw UserError("\(name): its sides differ in \(n) chunk\(n == 1 ? "" : "s") of 1 MiB; `metactl check \(name) --repair` rewrites the other sides from the first")
            }
            throw UserError("\(name): the parity of \(n) line\(n == 1 ? "" : "s") does not match the data; `metactl check \(name) --repair` rewrites it")
        }
    }

    /// Polls the server until the check ends; returns it as it ended.
    static func follow(_ name: String, _ g: GlobalOptions) throws -> StatusReport.CheckStatus? {
        var shown = false
        while true {
            let report = try CommandContext.perform(.status(names: [name]), g, as: StatusReport.self)
            guard let v = report.volumes.first else { throw UserError("\(name): volume disappeared") }
            guard let c = v.check, c.running else {
                if shown { ProgressDisplay.done() }
                return v.check
            }
            if !g.quiet {
                ProgressDisplay.show(ProgressDisplay.format(name, c.repair ? "check+repair" : "check", c.percent,
                                                            c.bytesPerSecond ?? 0, c.secondsLeft), percent: c.percent)
                shown = true
            }
            usleep(isatty(2) != 0 ? 500_000 : 2_000_000)
        }
    }
}
