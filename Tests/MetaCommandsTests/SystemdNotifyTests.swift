import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `serve` under a `Type=notify` unit with `WatchdogSec=`: a fake `$NOTIFY_SOCKET` receives
/// READY=1 with a STATUS= summary, WATCHDOG=1 pings at half the interval, a new STATUS= when
/// the set changes, and STOPPING=1.
@Suite("systemd notify: status and watchdog")
struct SystemdNotifyTests {
    /// A bound datagram socket standing in for systemd's.
    final class FakeSystemd {
        let fd: Int32
        let path: String
        init(_ path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { throw TestSupportError("socket") }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
            let bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0 else { close(fd); throw TestSupportError("bind \(path)") }
            var tv = timeval(tv_sec: 60, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        deinit { close(fd) }
        /// The next message (nil after the 60 s timeout).
        func next() -> String? {
            var buf = [UInt8](repeating: 0, count: 1024)
            let n = recv(fd, &buf, buf.count, 0)
            return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : nil
        }
        /// Messages until one satisfies `cond` (which is returned), bounded by `limit` messages.
        func until(limit: Int = 200, _ cond: (String) -> Bool) -> String? {
            for _ in 0..<limit { guard let m = next() else { return nil }; if cond(m) { return m } }
            return nil
        }
    }

    /// A set with a state database, and `serve` started for it under a fake systemd with
    /// `environment` added.
    static func serve(_ environment: [String: String]) throws -> (ServeFixture, FakeSystemd, ServeProcess) {
        let f = try ServeFixture(prefix: "metactl-notify")
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        let systemd = try FakeSystemd(f.dir.file("notify.sock"))
        let env = f.environment.merging(environment) { $1 }.merging(["NOTIFY_SOCKET": systemd.path]) { $1 }
        let server = try ServeProcess(metactl: f.metactl, arguments: ["serve"], environment: env, logPath: f.dir.file("serve.log"))
        return (f, systemd, server)
    }

    @Test(.timeLimit(.minutes(2)))
    func statusWatchdogAndStopping() throws {
        let (f, systemd, server) = try Self.serve(["WATCHDOG_USEC": "400000"])
        defer { _ = server.stop(); f.cleanup() }
        let ready = try #require(systemd.next(), "no READY; log:\n\(server.log)")
        #expect(ready == "READY=1\nMAINPID=\(server.pid)\nSTATUS=serving set 'local': 0 volumes, all Okay", "\(ready)")
        // Pings at half the 0.4 s interval: several arrive within a few seconds.
        var pings = 0
        let start = Date()
        while pings < 3, Date().timeIntervalSince(start) < 20, let m = systemd.next() { if m == "WATCHDOG=1" { pings += 1 } }
        #expect(pings == 3)
        // A change of the set updates STATUS=.
        try f.create("d1", "concat", try f.images("c", count: 1, size: 8 << 20))
        let status = systemd.until { $0.hasPrefix("STATUS=") }
        #expect(status == "STATUS=serving set 'local': 1 volume, all Okay")
        kill(server.pid, SIGTERM)
        #expect(systemd.until { $0 == "STOPPING=1" } != nil)
        #expect(server.stop() == 0)
    }

    /// A watchdog meant for another process (`$WATCHDOG_PID`) is not this server's.
    @Test(.timeLimit(.minutes(2)))
    func watchdogForAnotherPIDIsIgnored() throws {
        let (f, systemd, server) = try Self.serve(["WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"])
        defer { _ = server.stop(); f.cleanup() }
        #expect(systemd.next()?.hasPrefix("READY=1") == true)
        usleep(1_000_000)
        kill(server.pid, SIGTERM)
        // The next message is STOPPING=1: no ping came in between.
        #expect(systemd.next() == "STOPPING=1")
        #expect(server.stop() == 0)
    }
}
