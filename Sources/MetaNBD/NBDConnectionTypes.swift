import NIOConcurrencyHelpers
import NIOCore

/// Limits applied to each connection.
struct NBDConnectionLimits: Sendable {
    /// Longest option payload accepted during the handshake; longer ones end the connection.
    var maxOptionLength: Int
    /// Payload bytes (write data being applied, read data being fetched) in flight before reading pauses.
    var maxInFlightBytes: Int
    /// Requests in flight before reading pauses.
    var maxInFlightRequests: Int
}

/// Tells a connection that the server is shutting down (`drain`: answer what is in flight first).
struct NBDShutdownEvent: Sendable {
    var drain: Bool
}

/// The result of one request run on the thread pool: the complete reply of a successful READ,
/// or nil for a reply that is only the 16-byte header (built on the event loop from `cookie`
/// and `error`, all such replies of a batch in one buffer).
struct NBDCompletion: Sendable {
    var reply: ByteBuffer?
    var cookie: UInt64 = 0
    var error: NBDIOError?
    var weight = 0
    var command: UInt16 = 0
    var offset: UInt64 = 0
    var length: UInt32 = 0
}

/// Finished requests waiting for their connection's event loop.
///
/// Guarded by an `NIOLock` (a plain pthread mutex): every worker posts here, and
/// `Synchronization.Mutex` would spin on a holder that was preempted.
final class NBDCompletionMailbox: Sendable {
    private struct Box {
        var list: [NBDCompletion] = []
        var closed = false
    }
    private let items = NIOLockedValueBox(Box())

    /// Adds a completion; returns true when the mailbox was empty (the caller must schedule a drain).
    /// Once the connection is closed, completions are dropped and this returns false: its event loop
    /// may be gone by the time a request stuck in a device finishes.
    func post(_ completion: NBDCompletion) -> Bool {
        items.withLockedValue { box in
            if box.closed { return false }
            box.list.append(completion)
            return box.list.count == 1
        }
    }

    func takeAll() -> [NBDCompletion] {
        items.withLockedValue { box in
            defer { box.list = [] }
            return box.list
        }
    }

    /// The connection is closed: nothing is delivered any more.
    func close() {
        items.withLockedValue { box in
            box.closed = true
            box.list = []
        }
    }
}
