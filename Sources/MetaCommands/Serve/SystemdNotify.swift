import Foundation
import MetaSystem
#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to the Unix
/// socket named by `$NOTIFY_SOCKET` (a leading `@` is the abstract namespace). Without the
/// variable (not started by a `Type=notify` unit) it does nothing.
enum SystemdNotify {
    /// Whether the process was started with `$NOTIFY_SOCKET` (by a `Type=notify` unit).
    static var enabled: Bool { !(ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] ?? "").isEmpty }

    /// The watchdog interval the unit asked for (`WatchdogSec=`: `$WATCHDOG_USEC`, for this
    /// process when `$WATCHDOG_PID` names it), in seconds; nil when none.
    static var watchdogInterval: Double? {
        let env = ProcessInfo.processInfo.environment
        guard let usec = env["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0 else { return nil }
        if let pid = env["WATCHDOG_PID"].flatMap(Int32.init), pid != getpid() { return nil }
        return Double(usec) / 1_000_000
    }

    /// Sends `WATCHDOG=1` every half interval while `alive()` says the server works (a hung
    /// server stops the pings and systemd restarts it). Does nothing without a watchdog.
    static func startWatchdog(alive: @escaping @Sendable () -> Bool) {
        guard let interval = watchdogInterval else { return }
        Thread.detachNewThread {
            while true {
                Thread.sleep(forTimeInterval: interval / 2)
                if alive() { send("WATCHDOG=1") }
            }
        }
    }

    /// Sends `state` (e.g. `READY=1`); returns whether a datagram was sent.
    @discardableResult
    static func send(_ state: String) -> Bool {
        guard let path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !path.isEmpty else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard let addr = try? UnixSocketAddress(path: path, abstract: true) else { return false }
        let msg = Array(state.utf8)
        let n = addr.withSockaddr { sa, len in msg.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, len) } }
        return n == msg.count
    }
}
