import Foundation
import MetaDB
import MetaModel
import Synchronization

/// The server's stream of ``MonitorEvent``s: derived from every commit of the state
/// database (``SetDatabase/commitObserver``) plus the few the server publishes itself, and
/// handed to each subscriber (`metactl monitor` connections) in order, off the commit path.
public final class EventFeed: Sendable {
    /// A subscriber's callback; it returns false when the subscriber is gone.
    public typealias Sink = @Sendable (MonitorEvent) -> Bool

    private struct State {
        var sinks: [UInt64: Sink] = [:]
        var next: UInt64 = 0
        var writable: Bool?
        /// The last events, for subscribers that ask for what happened just before them.
        var recent: [MonitorEvent] = []
    }
    private let state = Mutex(State())
    /// Delivery happens here, one event at a time, in publication order.
    private let queue = DispatchQueue(label: "metactl.events")
    public let set: String
    /// How many past events ``subscribe(replay:_:)`` can hand a new subscriber.
    public static let recentLimit = 64

    public init(set: String) { self.set = set }

    /// Derives and publishes the events of every commit of `db`.
    public func observe(_ db: SetDatabase) {
        let set = self.set
        db.commitObserver = { [weak self] before, after, writable in
            guard let self else { return }
            let now = Date()
            var events = before == after ? [] : MonitorEvent.changes(set: set, from: before, to: after, at: now)
            let changed = self.state.withLock { s -> Bool? in
                defer { s.writable = writable }
                return s.writable.map { $0 != writable }
            }
            if changed == true {
                events.append(writable
                    ? MonitorEvent(kind: .quorumRegained, set: set, message: "state database: quorum regained", time: now)
                    : MonitorEvent(kind: .quorumLost, set: set,
                                   message: "state database: fewer than a majority of replicas can be written; the set's state can no longer change", time: now))
            }
            if !events.isEmpty { self.publish(events) }
        }
        state.withLock { $0.writable = db.quorum.writable }
    }

    /// Publishes events (in order, after every event published before).
    public func publish(_ events: [MonitorEvent]) {
        // Sinks are read on the queue, so a subscriber added after this call does not get
        // these events twice (once as recent, once live).
        queue.async { [self] in
            let sinks = state.withLock { s -> [(UInt64, Sink)] in
                s.recent.append(contentsOf: events)
                if s.recent.count > Self.recentLimit { s.recent.removeFirst(s.recent.count - Self.recentLimit) }
                return s.sinks.sorted { $0.key < $1.key }
            }
            var gone: [UInt64] = []
            for e in events {
                for (id, sink) in sinks where !gone.contains(id) {
                    if !sink(e) { gone.append(id) }
                }
            }
            if !gone.isEmpty { state.withLock { s in for id in gone { s.sinks[id] = nil } } }
        }
    }

    /// Publishes one event.
    public func publish(_ kind: MonitorEvent.Kind, volume: String? = nil, _ message: String) {
        publish([MonitorEvent(kind: kind, set: set, volume: volume, message: message, time: Date())])
    }

    /// Adds a subscriber; it first receives up to `replay` of the most recent events. Returns
    /// the function that removes it.
    public func subscribe(replay: Int = 0, _ sink: @escaping Sink) -> @Sendable () -> Void {
        let id = queue.sync { () -> UInt64 in
            let (id, past) = state.withLock { s -> (UInt64, [MonitorEvent]) in
                s.next += 1
                s.sinks[s.next] = sink
                return (s.next, Array(s.recent.suffix(max(0, min(replay, Self.recentLimit)))))
            }
            for e in past where !sink(e) { break }
            return id
        }
        return { [weak self] in _ = self?.state.withLock { $0.sinks.removeValue(forKey: id) } }
    }

    /// Waits until every event published so far was handed to the subscribers.
    public func drain() { queue.sync {} }

    /// Number of subscribers.
    public var subscriberCount: Int { state.withLock { $0.sinks.count } }
}
