import Foundation

/// Exclusive locks on RAID lines (or any UInt64 keys), sharded to keep contention low.
///
/// Two writers of one line never interleave; a resync holds a line while it rebuilds it.
public final class LineLocks: @unchecked Sendable {
    private final class Shard {
        let cond = NSCondition()
        var held = Set<UInt64>()
    }
    private let shards: [Shard]

    public init(shards: Int = 64) {
        self.shards = (0..<max(1, shards)).map { _ in Shard() }
    }

    private func shard(_ key: UInt64) -> Shard { shards[Int(key % UInt64(shards.count))] }

    /// Blocks until `key` is free, then takes it.
    public func lock(_ key: UInt64) {
        let s = shard(key)
        s.cond.lock()
        while s.held.contains(key) { s.cond.wait() }
        s.held.insert(key)
        s.cond.unlock()
    }

    /// Releases `key`.
    public func unlock(_ key: UInt64) {
        let s = shard(key)
        s.cond.lock()
        s.held.remove(key)
        s.cond.broadcast()
        s.cond.unlock()
    }

    /// Runs `body` holding `key`.
    public func withLock<T, E: Error>(_ key: UInt64, _ body: () throws(E) -> T) throws(E) -> T {
        lock(key)
        defer { unlock(key) }
        return try body()
    }
}
