import NIOCore
import Synchronization

/// Counts open connections per export (for "is this volume in use" checks).
final class NBDConnectionTracker: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    /// The channels in transmission on each export.
    private let channels = Mutex<[String: [ObjectIdentifier: any Channel]]>([:])
    private let peak = Mutex(0)

    /// Records a closed connection's peak of in-flight payload bytes (for tests and diagnostics).
    func recordPeak(inFlightBytes: Int) { peak.withLock { $0 = max($0, inFlightBytes) } }
    var peakInFlightBytes: Int { peak.withLock { $0 } }

    func attach(_ name: String, _ channel: any Channel) {
        counts.withLock { $0[name, default: 0] += 1 }
        channels.withLock { $0[name, default: [:]][ObjectIdentifier(channel)] = channel }
    }
    func detach(_ name: String, _ channel: any Channel) {
        counts.withLock {
            let n = ($0[name] ?? 1) - 1
            $0[name] = n > 0 ? n : nil
        }
        channels.withLock { $0[name]?[ObjectIdentifier(channel)] = nil }
    }
    /// The channels in transmission on export `name`.
    func channels(of name: String) -> [any Channel] { channels.withLock { Array(($0[name] ?? [:]).values) } }
    func count(_ name: String) -> Int { counts.withLock { $0[name] ?? 0 } }
    func total() -> Int { counts.withLock { $0.values.reduce(0, +) } }
}
