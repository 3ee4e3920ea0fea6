import ArgumentParser
import Foundation
import MetaControl
import MetaModel

/// `metactl monitor [--json] [--program CMD] [--replay N] [--count N]`
struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Follow the events of a served set: failures, hot spares, resyncs, checks, quorum (mdadm --monitor).",
        discussion: """
        Connects to the set's running server and prints one line per event as it happens: a \
        component failed or became unavailable, a hot spare was taken, returned or broke, a \
        resync or check started, progressed (at each checkpoint, every few seconds) or ended, a \
        volume changed state, was created, grown or cleared, blocks were lost, the state \
        database lost or regained its quorum, the server started or is stopping. The events \
        and their fields are listed in docs/MONITOR.md.

        Text lines are `TIME SET EVENT MESSAGE`. --json prints one JSON object per line: \
        {"kind", "set", "volume", "component", "device", "state", "previous", "percent", \
        "count", "message", "time"} (absent fields are left out; time is ISO 8601 UTC).

        --program CMD runs `/bin/sh -c CMD` for every event, one at a time and in order, with \
        the event in its environment: METACTL_EVENT (the kind), METACTL_SET, METACTL_VOLUME, \
        METACTL_COMPONENT, METACTL_DEVICE, METACTL_STATE, METACTL_PREVIOUS, METACTL_PERCENT, \
        METACTL_COUNT, METACTL_MESSAGE, METACTL_TIME and METACTL_EVENT_JSON (the JSON line). \
        A program that fails is reported on stderr and the monitor goes on.

        The monitor ends when the server stops (exit 0 after its server-stopping event; 1 \
        when the connection is lost without it), after --count events, or on SIGINT/SIGTERM. \
        Without a running server it exits 2. contrib/metactl-monitor@.service runs it next \
        to metactl-serve@.service.
        """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print one JSON object per line.")
    var json = false

    @Option(help: ArgumentHelp("Run this shell command for every event (the event in its environment).", valueName: "cmd"))
    var program: String?

    @Option(help: ArgumentHelp("First print up to N of the most recent events (at most 64).", valueName: "n"))
    var replay = 0

    @Option(help: ArgumentHelp("Exit after N events.", valueName: "n"))
    var count: Int?

    func validate() throws {
        if replay < 0 { throw ValidationError("--replay must be 0 or more") }
        if let count, count < 1 { throw ValidationError("--count must be 1 or more") }
    }

    func run() throws {
        let socket = ControlClient.socketPath(runDir: global.runDir, set: global.set)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var sawHello = false
        var seen = 0
        var last: MonitorEvent.Kind?
        let result: Bool?
        do {
            result = try ControlClient.stream(.monitor(replay: replay), socketPath: socket) { line in
                if !sawHello {
                    sawHello = true
                    let hello = try JSONDecoder().decode(ControlResponse.self, from: line)
                    _ = try hello.decode(MonitorHello.self)
                    return true
                }
                let event = try decoder.decode(MonitorEvent.self, from: line)
                emit(event, line: line)
                last = event.kind
                seen += 1
                return count.map { seen < $0 } ?? true
            }
        } catch {
            throw UserError(wrapping: error)
        }
        guard let result else {
            throw UserError("set '\(global.set)': no server is running; metactl monitor follows a running server (start one: metactl serve -s \(global.set))", code: .notFound)
        }
        if result || last == .serverStopping { return }
        throw UserError("set '\(global.set)': the connection to the server was lost (\(socket))")
    }

    /// Prints an event and runs --program for it.
    private func emit(_ e: MonitorEvent, line: Data) {
        let time = ISO8601DateFormatter().string(from: e.time)
        if json {
            FileHandle.standardOutput.write(line + Data([0x0A]))
        } else if !global.quiet {
            FileHandle.standardOutput.write(Data("\(time) \(e.set) \(e.kind.rawValue) \(e.message)\n".utf8))
        }
        guard let program else { return }
        var env = ProcessInfo.processInfo.environment
        let fields: [(String, String?)] = [
            ("EVENT", e.kind.rawValue), ("SET", e.set), ("VOLUME", e.volume), ("COMPONENT", e.component),
            ("DEVICE", e.device), ("STATE", e.state), ("PREVIOUS", e.previous),
            ("PERCENT", e.percent.map { String(format: "%.1f", $0) }), ("COUNT", e.count.map(String.init)),
            ("MESSAGE", e.message), ("TIME", time), ("EVENT_JSON", String(decoding: line, as: UTF8.self)),
        ]
        for (k, v) in fields { env["METACTL_\(k)"] = v ?? "" }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", program]
        p.environment = env
        do {
            try p.run()
            p.waitUntilExit()
            if p.terminationStatus != 0 {
                FileHandle.standardError.write(Data("metactl: monitor: --program exited \(p.terminationStatus) for \(e.kind.rawValue) event\n".utf8))
            }
        } catch {
            FileHandle.standardError.write(Data("metactl: monitor: cannot run --program: \(error.localizedDescription)\n".utf8))
        }
    }
}
