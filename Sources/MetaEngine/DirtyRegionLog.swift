import Foundation
import MetaDB
import MetaModel

/// The dirty-region log of a RAID-5 volume (SVM's optimized resync regions, md's
/// write-intent bitmap): closes the RAID-5 write hole.
///
/// A region is a run of lines. Before the first write to a clean region, the region is
/// committed to the state database as dirty; the write then proceeds. Regions with no
/// write for ``idleSeconds`` are cleaned lazily: every column is flushed, then the region
/// is committed clean. After a crash, the regions still marked dirty are exactly those
/// whose parity may disagree with their data, and their parity is recomputed before the
/// volume relies on it.
final class DirtyRegionLog: @unchecked Sendable {
    /// Column bytes per region.
    static let regionColumnBytes: UInt64 = 64 << 20
    let linesPerRegion: UInt64
    let idleSeconds: TimeInterval
    private let lock = NSLock()
    private var committed: Set<UInt64>
    /// Regions whose parity is not trusted (a crash left them dirty and they are not
    /// repaired yet, or a write failed half-way): they stay committed, whatever cleaning
    /// does, until ``unpin(_:)``.
    private var pinned: Set<UInt64>
    private var inFlight: [UInt64: Int] = [:]
    private var lastWrite: [UInt64: Date] = [:]

    init(interlaceBlocks: UInt64, committed: [UInt64], idleSeconds: TimeInterval = 3,
         regionColumnBytes: UInt64 = DirtyRegionLog.regionColumnBytes) {
        linesPerRegion = Self.linesPerRegion(interlaceBlocks: interlaceBlocks, regionColumnBytes: regionColumnBytes)
        self.committed = Set(committed)
        self.pinned = Set(committed)
        self.idleSeconds = idleSeconds
    }

    /// Lines per region for an interlace and a region size.
    static func linesPerRegion(interlaceBlocks: UInt64, regionColumnBytes: UInt64) -> UInt64 {
        max(1, regionColumnBytes / max(512, interlaceBlocks * 512))
    }

    func region(ofLine line: UInt64) -> UInt64 { line / linesPerRegion }

    /// Marks `regions` busy, committing the ones not yet dirty with `commit` first.
    func begin(_ regions: Set<UInt64>, commit: (Set<UInt64>) throws -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        let new = regions.subtracting(committed)
        if !new.isEmpty {
            try commit(committed.union(new))
            committed.formUnion(new)
        }
        let now = Date()
        for r in regions {
            inFlight[r, default: 0] += 1
            lastWrite[r] = now
        }
    }

    /// ``begin(_:commit:)`` for one region, without building sets (the common small write).
    func begin(region r: UInt64, commit: (Set<UInt64>) throws -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        if !committed.contains(r) {
            var all = committed
            all.insert(r)
            try commit(all)
            committed.insert(r)
        }
        inFlight[r, default: 0] += 1
        lastWrite[r] = Date()
    }

    /// ``end(_:)`` for one region.
    func end(region r: UInt64) {
        lock.lock()
        if let n = inFlight[r], n > 1 { inFlight[r] = n - 1 } else { inFlight[r] = nil }
        lock.unlock()
    }

    /// Marks `regions` no longer busy.
    func end(_ regions: Set<UInt64>) {
        lock.lock()
        for r in regions {
            inFlight[r, default: 1] -= 1
            if inFlight[r] == 0 { inFlight[r] = nil }
        }
        lock.unlock()
    }

    /// Cleans regions idle for ``idleSeconds`` (all of them when `all`): `flush` makes every
    /// write durable, then `commit` records the remaining dirty set. New writes wait meanwhile.
    @discardableResult
    func clean(all: Bool = false, flush: () throws -> Void, commit: (Set<UInt64>) throws -> Void) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        let idle = committed.filter { r in
            inFlight[r] == nil && !pinned.contains(r) && (all || now.timeIntervalSince(lastWrite[r] ?? .distantPast) >= idleSeconds)
        }
        guard !idle.isEmpty else { return 0 }
        do {
            try flush()
            let remaining = committed.subtracting(idle)
            try commit(remaining)
            committed = remaining
            for r in idle { lastWrite[r] = nil }
            return idle.count
        } catch {
            return 0
        }
    }

    var dirty: Set<UInt64> { lock.withLock { committed } }

    /// Forgets every dirty region (their writes are accounted for elsewhere, and committed so).
    func forgetAll() { lock.withLock { committed = []; pinned = []; lastWrite = [:] } }

    /// Keeps `r` committed dirty until ``unpin(_:)`` (it must already be committed).
    func pin(_ r: UInt64) { lock.withLock { if committed.contains(r) { pinned.insert(r) } } }
    /// `r`'s parity is trusted again: it may be cleaned.
    func unpin(_ r: UInt64) { lock.withLock { _ = pinned.remove(r) } }
}
