import Foundation
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
