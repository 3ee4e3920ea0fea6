import Foundation
import MetaDevices
import MetaModel
import Synchronization

/// Something that holds a set's configuration and commits changes to it atomically.
///
/// The state database (``SetDatabase``) is the real one; ``InMemoryConfigStore`` serves
/// unit tests. The engine records every state change through this protocol *before*
/// answering the I/O that caused it.
public protocol ConfigStore: AnyObject, Sendable {
    /// The last committed configuration.
    var config: SetConfig { get }
    /// Applies `body` to a copy of the configuration and commits the result as one
    /// transaction: all of it, or (on a thrown error) none of it.
    @discardableResult
    func commit(_ body: (inout SetConfig) throws -> Void) throws -> SetConfig
    /// Wipes the label of a device whose record a commit in progress has dropped, once that
    /// commit lands (``Effect/releaseDevice(_:)``).
    func releaseDevice(_ uuid: UUID) throws
}

extension ConfigStore {
    /// Records one event: the transition of ``SetModel/apply(_:to:)`` committed as one
    /// transaction, its ``Effect/releaseDevice(_:)`` effects run with it. Returns the effects.
    @discardableResult
    public func apply(_ event: SetEvent) throws -> [Effect] {
        var effects: [Effect] = []
        try commit { cfg in effects = try record(event, in: &cfg) }
        return effects
    }

    /// ``apply(_:)`` inside a commit already in progress (one that also makes other changes,
    /// such as labelling a new device, in the same transaction).
    @discardableResult
    public func record(_ event: SetEvent, in cfg: inout SetConfig) throws -> [Effect] {
        let effects = try SetModel.apply(event, to: &cfg)
        for case .releaseDevice(let u) in effects { try releaseDevice(u) }
        return effects
    }
}

/// A ``ConfigStore`` kept in memory (unit tests, dry runs).
public final class InMemoryConfigStore: ConfigStore, @unchecked Sendable {
    private let state: Mutex<SetConfig>
    private let commits = Atomic<Int>(0)
    /// Called inside every commit with the new configuration (tests use it to observe order).
    public let onCommit: (@Sendable (SetConfig) -> Void)?

    public init(_ config: SetConfig, onCommit: (@Sendable (SetConfig) -> Void)? = nil) {
        state = Mutex(config)
        self.onCommit = onCommit
    }
    public var config: SetConfig { state.withLock { $0 } }
    /// Number of successful commits.
    public var commitCount: Int { commits.load(ordering: .relaxed) }

    /// Devices released by commits so far (a memory store has no labels to wipe).
    public var releasedDevices: [UUID] { released.withLock { $0 } }
    private let released = Mutex<[UUID]>([])
    public func releaseDevice(_ uuid: UUID) throws { released.withLock { $0.append(uuid) } }

    @discardableResult
    public func commit(_ body: (inout SetConfig) throws -> Void) throws -> SetConfig {
        try state.withLock { s in
            var copy = s
            try body(&copy)
            s = copy
            commits.add(1, ordering: .relaxed)
            onCommit?(copy)
            return copy
        }
    }
}

extension ModelError: CodedError {
    /// The refusal as an ``ErrorCode`` (the exit status of `metactl`).
    public var code: ErrorCode {
        switch kind {
        case .notFound: .notFound
        case .inUse: .inUse
        case .invalidState: .invalidArgument
        }
    }
}
