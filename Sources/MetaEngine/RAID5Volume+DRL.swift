import Foundation
import MetaDB
import MetaModel
import MetaDevices

extension RAID5Volume {
    /// Commits the dirty set of this volume.
    func commitDirty(_ regions: Set<UInt64>) throws {
        try context.store.apply(.dirtyRegions(volume: name, regions: regions.sorted()))
    }

    /// Marks the regions of `lines` dirty before they are written.
    func beginWrite(lines: [UInt64]) throws(VolumeIOError) -> Set<UInt64> {
        let regions = Set(lines.map(drl.region(ofLine:)))
        do {
            try drl.begin(regions) { try commitDirty($0) }
        } catch {
            throw dirtyLogFailure(error)
        }
        return regions
    }

    /// ``beginWrite(lines:)`` for a write inside one line; returns its region for `drl.end(region:)`.
    func beginWrite(line: UInt64) throws(VolumeIOError) -> UInt64 {
        let region = drl.region(ofLine: line)
        do {
            try drl.begin(region: region) { try commitDirty($0) }
        } catch {
            throw dirtyLogFailure(error)
        }
        return region
    }

    private func dirtyLogFailure(_ error: any Error) -> VolumeIOError {
        VolumeIOError(volume: name, code: .io, operation: "write",
                      detail: "cannot record the write in the state database's dirty-region log: \(error)")
    }

    /// Cleans idle dirty regions (all of them with `all`): flushes, then commits.
    @discardableResult
    public func cleanDirtyRegions(all: Bool = false) -> Int {
        drl.clean(all: all, flush: { () throws -> Void in try self.flush() }, commit: { try self.commitDirty($0) })
    }

    /// Dirty regions currently recorded.
    public var dirtyRegions: Set<UInt64> { drl.dirty }

    /// Lines per dirty region.
    public var linesPerRegion: UInt64 { drl.linesPerRegion }

    /// Starts the periodic lazy cleaning of idle regions.
    func startCleaner() {
        guard context.scheduler == nil else { return }  // the simulator cleans when it chooses
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + drl.idleSeconds, repeating: drl.idleSeconds)
        timer.setEventHandler { [weak self] in self?.cleanDirtyRegions() }
        timer.resume()
        cleaner.set(timer)
    }

    func stopCleaner() {
        cleaner.set(nil)
    }

    /// Recomputes parity of every region left dirty by an unclean shutdown. Until a region is
    /// repaired its parity counts as invalid: reconstructing reads there fail rather than
    /// return wrong data, and writes use reconstruct-write. Regions that cannot be repaired
    /// (a column is missing) stay invalid.
    func repairDirtyRegions() {
        let regions = runtime.read { $0.unrepairedRegions }.sorted()
        guard !regions.isEmpty else { return }
        let layout = runtime.read { $0.layout }
        let total = UInt64(regions.count) * drl.linesPerRegion
        context.logger.warning("\(name): unclean shutdown: recomputing parity of \(regions.count) dirty region(s)")
        var done: UInt64 = 0
        let began = Date()
        for r in regions {
            if stopping { return }
            context.scheduler?.yield("parity repair")
            let first = r * drl.linesPerRegion
            let last = min(layout.lineCount, first + drl.linesPerRegion)
            var ok = true
            var line = first
            while line < last && ok {
                ok = locks.withLock(line) { initializeLine(line) }
                line += 1
            }
            done += drl.linesPerRegion
            let secs = Date().timeIntervalSince(began)
            progress.withLock {
                $0 = (.parityRepair, done, total, secs > 0 ? Double(done * layout.interlaceBlocks * 512) * Double(layout.dataColumnsPerLine) / secs : 0)
            }
            if ok {
                runtime.withLock { _ = $0.unrepairedRegions.remove(r) }
                drl.unpin(r)
            } else {
                context.logger.error("\(name): region \(r) cannot be repaired (a column is unavailable): reads that need parity there fail until the column returns")
            }
        }
        progress.withLock { $0 = nil }
        if !parityRepairPending, volumeRecord()?.writeLog?.repairPending == true {
            // Every region repaired: replays vouch for the dirty regions again, once the
            // repaired parity is durable (after a power loss that lost it, a replay of the
            // newer records alone would otherwise be trusted over a torn line).
            do {
                try flush()
                try context.store.apply(.writeLogRepaired(volume: name))
            } catch {
                context.logger.error("\(name): the parity repair could not be made durable: \(error); the dirty regions stay untrusted")
            }
        }
        context.logger.info("\(name): parity repair done")
    }

    /// Records that the parity of `line`'s region can no longer be trusted (a write failed
    /// after some of its column writes landed): reconstructing reads there fail, and the
    /// region stays dirty in the state database until a repair succeeds.
    func distrustParity(line: UInt64) {
        let r = drl.region(ofLine: line)
        let notRebuilt = runtime.withLock { rt in
            rt.unrepairedRegions.insert(r)
            return rt.resyncColumn != nil && rt.copy == nil && line >= rt.rebuiltBelow && rt.rebuilds(line: line)
        }
        // A regeneration that has not rebuilt the line yet would rebuild it from the torn
        // parity: it records the line's blocks lost instead (noted under the line's lock,
        // which the write holds, so before the regeneration reaches it).
        if notRebuilt { tornBeforeRebuilt.withLock { _ = $0.insert(line) } }
        drl.pin(r)
        // Records written from now on are computed from the torn line, which a replay of
        // the failed write's own record would change under them: void the records first.
        runtime.read { $0.log }?.abandon()
    }

    /// Whether regions still await their parity repair.
    public var parityRepairPending: Bool { !runtime.read { $0.unrepairedRegions }.isEmpty }
}

/// Holds a timer that can be replaced (the old one is cancelled).
final class TimerBox: @unchecked Sendable {
    private let lock = NSLock()
    private var timer: (any DispatchSourceTimer)?
    func set(_ t: (any DispatchSourceTimer)?) {
        lock.lock()
        timer?.cancel()
        timer = t
        lock.unlock()
    }
}
