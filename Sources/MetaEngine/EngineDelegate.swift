import Foundation
import MetaModel
import Synchronization

/// How one run of background resync work ended, as an engine reports it.
public struct ResyncEnd: Sendable, Equatable {
    public var volume: String
    public var kind: ResyncKind
    /// The column rebuilt or copied.
    public var column: Int?
    /// The device written (the replacement, the spare, or the column's own device).
    public var target: UUID?
    public var outcome: ResyncOutcome
    public init(volume: String, kind: ResyncKind, column: Int?, target: UUID?, outcome: ResyncOutcome) {
        self.volume = volume; self.kind = kind; self.column = column; self.target = target; self.outcome = outcome
    }
}

/// What a volume's engine reports to whoever runs it (the set manager, the simulator).
///
/// The engine records each fact in the state database itself, through
/// ``MetaDB/ConfigStore/apply(_:)`` (a failure is committed before the failing request is
/// answered); the delegate hears about it afterwards and decides what follows (a hot spare,
/// the next resync, releasing devices). An engine holds its delegate weakly.
public protocol EngineDelegate: AnyObject, Sendable {
    /// Column `column` of `volume` failed and its new state is committed. Called on a
    /// background queue, never on the thread of the failing request.
    func columnFailed(volume: String, column: Int)
    /// Background resync work ended. Called on the thread that ran it.
    func resyncEnded(_ end: ResyncEnd)
}

/// A weak reference to an ``EngineDelegate``, safe to share between threads.
final class WeakEngineDelegate: Sendable {
    private struct Ref: @unchecked Sendable { weak var value: (any EngineDelegate)? }
    private let ref = Mutex(Ref())
    var value: (any EngineDelegate)? {
        get { ref.withLock { $0.value } }
        set { ref.withLock { $0.value = newValue } }
    }
}
