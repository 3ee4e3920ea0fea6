import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `metactl monitor` against a real server: a column on a really failing device (nbdkit's
/// error filter under nbdfuse and a loop device) fails, a hot spare takes over and is
/// rebuilt, the server stops; the events arrive in that order, as JSON lines, and
/// `--program` runs once per event with the event in its environment.
@Suite("monitor end to end")
struct MonitorE2ETests {
    /// The JSON objects of a monitor's output.
    static func events(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            guard let o = try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] else {
                throw TestSupportError("not a JSON object: \($0)")
            }
            return o
        }
    }

    /// Waits (bounded) for a child to exit; returns its status.
    static func exitStatus(_ p: ServeProcess, limit: Double = 60) throws -> Int32 {
        let deadline = Date().addingTimeInterval(limit)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        guard !p.isRunning else { throw TestSupportError("monitor still running after \(limit) s:\n\(p.log)") }
        p.process.waitUntilExit()
        return p.process.terminationStatus
    }

    @Test(.enabled(if: ResyncE2ETests.enabled), .timeLimit(.minutes(5)))
    func failureTakeoverRebuildAndStopArriveInOrder() throws {
        let (rig, _, fds) = try ResyncE2ETests.rig()
        defer { rig.cleanup() }
        let f = rig.f
        let spare = try rig.loop("spare", size: ResyncE2ETests.small)
        let server = try f.startServer()
        try f.mustRun(["hs", "create", "hsp001", spare])
        try f.mustRun(["set", "d10", "--hot-spare-pool", "hsp001"])
        let programLog = f.dir.file("program.log")
        // --replay: the events before the monitor connected (server-started at least) come first.
        let monitor = try ServeProcess(
            metactl: f.metactl,
            arguments: ["monitor", "--json", "--replay", "64",
                        "--program", "echo \"$METACTL_EVENT|$METACTL_VOLUME|$METACTL_COMPONENT|$METACTL_DEVICE|$METACTL_STATE\" >> \(programLog)"],
            environment: f.environment, logPath: f.dir.file("monitor.log"))
        defer { _ = monitor.stop(signal: SIGKILL, grace: 5) }
        try rig.waitFor("the monitor to replay server-started") { monitor.log.contains("\"server-started\"") }

        fds[0].fail()
        _ = try rig.readDigest()
        try rig.waitFor("the spare to stand in", log: server) {
            ResyncRig.component(try rig.volume(), fds[0].path)?["hotSpare"] as? String == spare
        }
        let vol = try rig.waitForResyncEnd()
        #expect(vol["state"] as? String == "Okay")
        try rig.waitFor("the monitor to see the rebuild end") { monitor.log.contains("\"resync-done\"") }
        #expect(server.stop() == 0)
        #expect(try Self.exitStatus(monitor) == 0, "\(monitor.log)")

        let events = try Self.events(monitor.log)
        let kinds = events.compactMap { $0["kind"] as? String }
        func index(_ kind: String, where cond: ([String: Any]) -> Bool = { _ in true }) -> Int? {
            events.firstIndex { $0["kind"] as? String == kind && cond($0) }
        }
        let failed = try #require(index("component-failed") { $0["device"] as? String == fds[0].path }, "\(kinds)")
        #expect(events[failed]["component"] as? String == "column 3")
        #expect(events[failed]["state"] as? String == "Maintenance" && events[failed]["previous"] as? String == "Okay")
        let degraded = try #require(index("volume-state") { $0["state"] as? String == "Needs Maintenance" }, "\(kinds)")
        let taken = try #require(index("spare-taken") { $0["device"] as? String == spare }, "\(kinds)")
        let started = try #require(index("resync-started") { $0["state"] as? String == "regenerate" }, "\(kinds)")
        let done = try #require(index("resync-done"), "\(kinds)")
        let okay = try #require(index("volume-state") { $0["state"] as? String == "Okay" && $0["previous"] as? String == "Resyncing" }, "\(kinds)")
        #expect(kinds.first == "server-started")
        #expect(failed < degraded && degraded <= taken && taken < started && started < done && done < okay, "\(kinds)")
        #expect(kinds.last == "server-stopping", "\(kinds)")
        for e in events {
            #expect(e["set"] as? String == "local")
            #expect((e["time"] as? String)?.hasSuffix("Z") == true)
            #expect(!((e["message"] as? String) ?? "").isEmpty)
        }

        // --program ran once per event, in order, with the event's fields.
        let ran = try String(contentsOfFile: programLog, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(ran.map { String($0.prefix { $0 != "|" }) } == kinds)
        #expect(ran.contains("component-failed|d10|column 3|\(fds[0].path)|Maintenance"), "\(ran)")
    }

    @Test(.timeLimit(.minutes(2)))
    func withoutAServerCountAndText() throws {
        let f = try ServeFixture(prefix: "metactl-monitor")
        defer { f.cleanup() }
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        let none = try f.run(["monitor"])
        #expect(none.status == 2)
        #expect(none.stderr == "metactl: set 'local': no server is running; metactl monitor follows a running server (start one: metactl serve -s local)\n", "\(none.stderr)")

        _ = try f.startServer()
        // Text lines: TIME SET EVENT MESSAGE; --count 1 ends after the replayed start.
        let one = try f.run(["monitor", "--replay", "1", "--count", "1"])
        #expect(one.ok, "\(one.stderr)")
        let fields = one.stdout.split(separator: " ", maxSplits: 3)
        #expect(fields.count == 4 && fields[1] == "local" && fields[2] == "server-started", "\(one.stdout)")
        #expect(fields.first.map { ISO8601DateFormatter().date(from: String($0)) != nil } == true, "\(one.stdout)")

        // A volume created while a monitor follows: it sees the creation.
        let imgs = try f.images("c", count: 1, size: 8 << 20)
        // It replays the server's start once subscribed; then the creation ends it (--count 2).
        let mon = try ServeProcess(metactl: f.metactl, arguments: ["monitor", "--json", "--replay", "1", "--count", "2"],
                                   environment: f.environment, logPath: f.dir.file("mon2.log"))
        defer { _ = mon.stop(signal: SIGKILL, grace: 5) }
        let deadline = Date().addingTimeInterval(60)
        while !mon.log.contains("server-started") && Date() < deadline { usleep(20_000) }
        try f.create("d1", "concat", imgs)
        #expect(try Self.exitStatus(mon) == 0, "\(mon.log)")
        let created = try Self.events(mon.log)
        #expect(created.map { $0["kind"] as? String } == ["server-started", "volume-created"], "\(mon.log)")
        #expect(created.last?["volume"] as? String == "d1")

        let bad = try f.run(["monitor", "--count", "0"])
        #expect(bad.status == 64)
    }
}
