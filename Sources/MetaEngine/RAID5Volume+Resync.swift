import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaLayout
import Synchronization

/// How a resync ended.
public enum ResyncOutcome: Sendable, Equatable {
    /// The column is rebuilt (or copied) and `Okay`.
    case completed
    /// Stopped by shutdown; the checkpoint is committed and the next start resumes.
    case stopped
    /// The target failed to take writes (it is now `Maintenance`; a spare is `Broken`).
    case targetFailed(String)
    /// Another column failed to read during regeneration (it is now `Last Erred`).
    case sourceFailed(String)
}

extension RAID5Volume {
    /// Seconds between checkpoint commits.
    static let checkpointInterval: TimeInterval = 2

    /// Starts the resync the volume record describes (regenerate or copy), in the background;
    /// its end is reported to the ``delegate`` (``EngineDelegate/resyncEnded(_:)``) on the
    /// resync thread. When background work is still running (a resync ending, whose delegate
    /// starts the next one, e.g. onto the next hot spare), the new resync starts as soon as it
    /// has ended.
    public func startResync() {
        if deferUntilIdle("resync \(name)", { self.startResync() }) { return }
        guard let rec = volumeRecord(), let r = rec.resync, r.kind == .regenerate || r.kind == .copy else { return }
        let completion: @Sendable (ResyncOutcome) -> Void = { [weak self] outcome in
            guard let self else { return }
            self.delegate?.resyncEnded(ResyncEnd(volume: self.name, kind: r.kind, column: r.column, target: r.target, outcome: outcome))
        }
        copyTargetFailed.store(false, ordering: .relaxed)
        startThread("resync \(name)") {
            self.repairDirtyRegions()
            var from = r.doneBlocks / max(1, rec.interlaceBlocks)
            if r.kind == .copy, let below = self.runtime.read({ $0.copy?.copiedBelow }) { from = min(from, below) }
            if r.kind == .regenerate {
                // Regions still unrepaired (the column was missing when a crash left them
                // dirty) cannot be rebuilt from their parity: their blocks are recorded lost.
                for c in r.rebuiltColumns {
                    do { try self.recordLostBeforeRegeneration(column: c, fromLine: from) } catch {
                        self.context.logger.error("\(self.name): could not record lost blocks, resync not started: \(error)")
                        completion(.sourceFailed("could not record lost blocks: \(error)"))
                        return
                    }
                }
            }
            let outcome = self.runResync(from: from)
            // With every column present again, the regions left unrepaired can be repaired.
            if outcome == .completed { self.repairDirtyRegions() }
            completion(outcome)
        }
    }

    /// When background work is running, arranges for `start` to run once it has finished
    /// (unless the volume is stopping) and returns true; returns false when none runs.
    func deferUntilIdle(_ label: String, _ start: @escaping @Sendable () -> Void) -> Bool {
        guard backgroundRunning else { return false }
        if let scheduler = context.scheduler {
            // Simulation: start it once the scheduler has run the current work.
            scheduler.startBackground("\(label) (after the current work)") {
                if !self.stopping { start() }
            }
            return true
        }
        DispatchQueue.global().async {
            self.waitForBackgroundWork()
            if !self.stopping { start() }
        }
        return true
    }

    /// The rate limits in force.
    var rateLimits: ResyncRate { volumeRecord()?.resyncRate ?? .default }

    /// Walks the column from `start`, rebuilding or copying batches of lines while holding
    /// their locks, checkpointing to the state database.
    ///
    /// Pipelined: while one step's write to the target runs, the next step's lines are
    /// locked and read (and XORed), so the target and the sources are busy at the same time.
    /// At most two steps hold their line locks; a step counts as rebuilt (and its locks are
    /// released) only once its write has completed.
    func runResync(from start: UInt64) -> ResyncOutcome {
        let layout = runtime.read { $0.layout }
        let total = layout.lineCount
        let unitBytesInt = layout.interlaceBlocks * Volume.blockSize
        /// Lines per step: the full step when the rate is unlimited; at most 1 MiB per column
        /// when a maximum rate is set, so the limiter's pauses stay short and smooth.
        func stepLines() -> UInt64 {
            var bytes = resyncStepBytes.load(ordering: .relaxed)
            if rateLimits.maxBytesPerSecond < UInt64.max / 2 { bytes = min(bytes, 1 << 20) }
            return max(1, bytes / unitBytesInt)
        }
        let unitBytes = Double(layout.interlaceBlocks * Volume.blockSize)
        var line = start
        var lastCheckpoint = Date()
        let began = Date()
        var pacer = ResyncPacer(foreground: foregroundOps.load(ordering: .relaxed))
        guard let record = volumeRecord()?.resync else { return .stopped }
        let kind = record.kind
        /// This resync's column and target: a checkpoint is only ever recorded for them (once a
        /// write to the target failed, the record may already describe the next resync, e.g.
        /// onto the next hot spare, which must not inherit this one's progress).
        let owner = (record.column, record.target)
        let ownerPath = runtime.read { Self.targetPath($0) }
        let superseded = ResyncOutcome.targetFailed("\(ownerPath ?? "the target"): no longer this column's resync target")
        progress.withLock { $0 = (kind, line, total, 0) }
        let scratch = ResyncScratch()
        let writer = StepWriter(name: "resync-write \(name)", inline: context.scheduler != nil)
        /// The step whose write is in flight.
        var inflight: (from: UInt64, to: UInt64)?
        /// Lines below this are rebuilt (their writes completed).
        var done = start
        /// Waits for the in-flight write, records it and releases its lines. The record is
        /// made only while the runtime still has this resync's target (checked and updated
        /// under the runtime's lock, so a reload for another target cannot slip in between).
        func drain() -> ResyncOutcome? {
            guard let p = inflight else { return nil }
            inflight = nil
            var failure = writer.wait()
            if failure == nil {
                let owned = runtime.withLock { rt -> Bool in
                    guard ownerPath != nil, Self.targetPath(rt) == ownerPath else { return false }
                    if rt.copy != nil { rt.copy?.copiedBelow = p.to } else { rt.rebuiltBelow = p.to }
                    return true
                }
                if owned { done = p.to } else { failure = superseded }
            }
            for l in (p.from..<p.to).reversed() { locks.unlock(l) }
            return failure
        }
        context.logger.info("\(name): \(kind.rawValue) resync from line \(line) of \(total)")
        var outcome: ResyncOutcome = .completed
        var slot = 0
        // A returned device is rebuilt over the regions written while it was away only.
        let only = kind == .regenerate ? runtime.read({ rt in rt.rebuildRegions.map { ($0, rt.linesPerRegion) } }) : nil
        if let only { context.logger.info("\(name): rebuilding \(only.0.count) region(s) written while the device was away") }
        while line < total {
            if stopping { outcome = .stopped; break }
            var end = min(total, line + stepLines())
            if let (regions, perRegion) = only {
                let r = line / perRegion
                if !regions.contains(r) {
                    line = regions.filter { $0 > r }.min().map { min(total, $0 * perRegion) } ?? total
                    continue
                }
                end = min(end, (r + 1) * perRegion)
            }
            for l in line..<end { locks.lock(l) }
            let step = prepareLines(line, end, scratch: scratch, slot: slot, drain: drain)
            var previous = drain()
            if previous == nil, case .write(let w) = step, w.device.path != ownerPath { previous = superseded }
            guard case .write(let w) = step, previous == nil else {
                for l in (line..<end).reversed() { locks.unlock(l) }
                if let previous { outcome = previous } else if case .failed(let f) = step { outcome = f }
                break
            }
            writer.submit { self.writeStep(w) }
            inflight = (line, end)
            slot ^= 1
            if let scheduler = context.scheduler {
                // Simulation: finish the step now so that the yield point holds no line lock.
                if let failure = drain() { outcome = failure; line = end; break }
                scheduler.yield("resync")
            }
            let moved = Double(end - line) * unitBytes
            line = end
            // Rate: the maximum when idle, the minimum while foreground I/O is active.
            pacer.pace(moved, foreground: foregroundOps.load(ordering: .relaxed), limits: rateLimits,
                       simulated: context.scheduler != nil)
            let secs = Date().timeIntervalSince(began)
            progress.withLock { [done] in $0 = (kind, done, total, secs > 0 ? Double(done - start) * unitBytes / secs : 0) }
            let due = context.scheduler.map { $0.shouldCheckpoint() }
                ?? (Date().timeIntervalSince(lastCheckpoint) > Self.checkpointInterval)
            if due && done < total {
                lastCheckpoint = Date()
                checkpoint(done, layout, owner: owner)
            }
        }
        if let failure = drain(), outcome == .completed || outcome == .stopped { outcome = failure }
        if outcome == .completed, let e = flushResyncTarget() {
            // The column may not become Okay on data the target has not made durable.
            if let cp = runtime.read({ $0.copy }) { outcome = abandonCopy(cp, e) } else {
                try? markFailed(owner.0 ?? 0, e)
                outcome = .targetFailed("\(e.path): \(e)")
            }
        }
        switch outcome {
        case .completed:
            finishResync(kind)
        case .stopped:
            checkpoint(done, layout, owner: owner)
        case .sourceFailed:
            // The lines below `done` are rebuilt: keep them usable across a restart.
            checkpoint(done, layout, owner: owner)
        case .targetFailed:
            break
        }
        progress.withLock { $0 = nil }
        let secs = Date().timeIntervalSince(began)
        let mib = Double(done - start) * unitBytes / 1_048_576
        context.logger.info("\(name): resync \(outcome): \(String(format: "%.1f MiB in %.2f s, %.1f MiB/s", mib, secs, secs > 0 ? mib / secs : 0))")
        return outcome
    }

    func checkpoint(_ line: UInt64, _ layout: RAID5Layout, owner: (Int?, UUID?)) {
        let done = line * layout.interlaceBlocks
        // A checkpoint vouches for the target's data below it: that data must be durable
        // first (a power loss would otherwise leave the disk cache's old contents there).
        if let e = flushResyncTarget() {
            context.logger.error("\(name): could not flush the resync target; no checkpoint at line \(line): \(e)")
            return
        }
        do {
            try context.store.apply(.resyncCheckpoint(volume: name, column: owner.0, target: owner.1, doneBlocks: done))
        } catch {
            context.logger.error("\(name): could not checkpoint the resync at line \(line): \(error)")
        }
    }

    /// Flushes the device the resync writes to; returns the error, if any.
    func flushResyncTarget() -> DeviceError? {
        let rt = runtime.read { $0 }
        if let cp = rt.copy {
            do throws(DeviceError) { try cp.device.flush() } catch { return error }
            return nil
        }
        for c in (rt.resyncColumn.map { [$0] } ?? []) + rt.moreResync {
            do throws(DeviceError) { try rt.columns[c].device?.flush() } catch { return error }
        }
        return nil
    }

    /// The path of the device the runtime's resync writes to (the copy target, or the
    /// resyncing column's device).
    static func targetPath(_ rt: Runtime) -> String? {
        if let cp = rt.copy { return cp.device.path }
        guard let c = rt.resyncColumn else { return nil }
        return rt.columns[c].device?.path
    }

    /// A step read and ready to be written to the target.
    struct StepWrite: @unchecked Sendable {
        var device: any BlockDevice
        var offset: UInt64
        var buffer: AlignedBuffer
        /// The column the target stands for.
        var column: Int
        /// Set for a copy (its failure abandons the copy instead of failing the column).
        var copy: CopyTarget?
        /// RAID-6: the other columns rebuilt in the same pass, each with its device, offset
        /// and buffer.
        var more: [(column: Int, device: any BlockDevice, offset: UInt64, buffer: AlignedBuffer)] = []
    }

    enum StepResult {
        case write(StepWrite)
        case failed(ResyncOutcome)
    }

    /// Reads lines `[from, to)` for the target: the copy source, or every other column XORed
    /// into the output buffer of `slot`. `drain` finishes the previous step's write (needed
    /// before the volume's runtime changes: a copy whose source dies becomes a regeneration).
    func prepareLines(_ from: UInt64, _ to: UInt64, scratch: ResyncScratch, slot: Int,
                      drain: () -> ResyncOutcome?) -> StepResult {
        let rt = runtime.read { $0 }
        let il = rt.layout.interlaceBlocks
        let n = Int((to - from) * il * Volume.blockSize)
        let at: (UInt64) -> UInt64 = { start in start + from * il * Volume.blockSize }

        if let cp = rt.copy, avail(cp.column, line: from, rt) != .ok {
            // The source failed (a write error made it Maintenance, or it was missing at
            // start): its data is stale from then on; rebuild the rest onto the target.
            if let f = drain() { return .failed(f) }
            if let f = convertCopyToRegeneration(cp, line: from) { return .failed(f) }
            return prepareLines(from, to, scratch: scratch, slot: slot, drain: drain)
        }
        if let cp = rt.copy {
            // Copy: read the source column, write the target.
            let src = rt.columns[cp.column]
            let buf = scratch.output(slot, n)
            defer { withExtendedLifetime(buf) {} }  // pointers into it outlive its last use
            do throws(DeviceError) {
                guard let dev = src.device else { throw DeviceError(path: src.path, operation: .read, errno: 5) }
                try dev.read(into: buf.mutableBytes, at: at(src.startByte))
            } catch {
                // The source died: record it, then carry on as a regeneration onto the target.
                if let f = drain() { return .failed(f) }
                do { try markFailed(cp.column, error) } catch {
                    return .failed(.sourceFailed("\(error)"))
                }
                if let f = convertCopyToRegeneration(cp, line: from) { return .failed(f) }
                return prepareLines(from, to, scratch: scratch, slot: slot, drain: drain)
            }
            return .write(StepWrite(device: cp.device, offset: at(cp.startByte), buffer: buf, column: cp.column, copy: cp))
        }

        guard let c = rt.resyncColumn else { return .failed(.sourceFailed("no column to resync")) }
        let rebuilt = [c] + rt.moreResync
        do { try recordTornLines(columns: rebuilt, lines: from..<to) } catch {
            return .failed(.sourceFailed("could not record lost blocks: \(error)"))
        }
        var others = (0..<rt.columns.count).filter { !rebuilt.contains($0) }
        // RAID-6 rebuilds with one other column away too (from the rest, through Q), or two
        // columns at once.
        let away = others.filter { avail($0, line: from, rt) == .missing }
        if away.count + rebuilt.count > rt.layout.parityCount, let d = away.first {
            return .failed(.sourceFailed("column \(d) (\(rt.columns[d].path)) is unavailable too"))
        }
        others.removeAll { away.contains($0) }
        let bufs = scratch.sources(others.count, n)
        let out = scratch.output(slot, n)
        let moreOuts = rt.moreResync.indices.map { scratch.output(slot + 2 * ($0 + 1), n) }
        defer { withExtendedLifetime(bufs) {}; withExtendedLifetime(out) {}; withExtendedLifetime(moreOuts) {} }  // pointers into them outlive their last use
        let failed = ErrorBox<DeviceError>()
        // Each column is read in pieces of up to 2 MiB at once (a deeper queue per device),
        // and the XOR is split in two (two cores).
        let pieces = Self.pieces(n, size: Self.readPieceBytes)
        parallel(others.count * pieces.count) { i in
            let col = rt.columns[others[i / pieces.count]]
            let (off, len) = pieces[i % pieces.count]
            let dst = UnsafeMutableRawBufferPointer(start: bufs[i / pieces.count].base + off, count: len)
            do throws(DeviceError) { try col.device!.read(into: dst, at: at(col.startByte) + UInt64(off)) }
            catch { failed.add(others[i / pieces.count], error) }
        }
        if let (d, e) = failed.all.first {
            // A second failure: that column becomes Last Erred and the resync stops.
            try? markFailed(d, e)
            return .failed(.sourceFailed("column \(d) (\(e.path)) failed during regeneration: \(e)"))
        }
        if rt.layout.parityCount == 1 {
            let halves = Self.pieces(n, size: max(4096, (n / 2 + 4095) & ~4095))
            parallel(halves.count) { h in
                let (off, len) = halves[h]
                Parity.xor(sources: bufs.map { UnsafeRawPointer($0.base + off) }, into: out.base + off, count: len)
            }
        } else {
            // RAID-6: each line's roles differ (P and Q rotate), so line by line.
            let unit = Int(il * Volume.blockSize)
            let lines = Int(to - from)
            let unrecoverable = Atomic<Bool>(false)
            parallel(lines) { li in
                let line = from + UInt64(li)
                let at = li * unit
                let ok = Syndrome.recover(rt.layout, line: line,
                                          have: others.indices.map { (others[$0], UnsafeRawPointer(bufs[$0].base + at)) },
                                          want: [(c, out.base + at)] + rt.moreResync.indices.map { (rt.moreResync[$0], moreOuts[$0].base + at) },
                                          count: unit)
                if !ok { unrecoverable.store(true, ordering: .relaxed) }
            }
            if unrecoverable.load(ordering: .relaxed) {
                return .failed(.sourceFailed("column \(c) cannot be rebuilt from the columns left"))
            }
        }
        let target = rt.columns[c]
        guard let dev = target.device else {
            try? markFailed(c, DeviceError(path: target.path, operation: .write, errno: 5))
            return .failed(.targetFailed("\(target.path): no device"))
        }
        var w = StepWrite(device: dev, offset: at(target.startByte), buffer: out, column: c, copy: nil)
        for (i, m) in rt.moreResync.enumerated() {
            guard let d = rt.columns[m].device else {
                try? markFailed(m, DeviceError(path: rt.columns[m].path, operation: .write, errno: 5))
                return .failed(.targetFailed("\(rt.columns[m].path): no device"))
            }
            w.more.append((m, d, at(rt.columns[m].startByte), moreOuts[i]))
        }
        return .write(w)
    }

    /// Bytes per concurrent read of a column during regeneration.
    /// (1, 2, 4 and 8 MiB measured alike within the noise of `scripts/bench-rebuild`.)
    static let readPieceBytes = 2 << 20

    /// `[0, n)` cut into (offset, length) pieces of at most `size` bytes.
    static func pieces(_ n: Int, size: Int) -> [(Int, Int)] {
        stride(from: 0, to: n, by: size).map { ($0, min(size, n - $0)) }
    }

    /// Writes a prepared step to the target. Returns nil on success, the failure otherwise
    /// (the target column is `Maintenance`, or the copy is abandoned).
    func writeStep(_ w: StepWrite) -> ResyncOutcome? {
        defer { withExtendedLifetime(w.buffer) {}; withExtendedLifetime(w.more) {} }  // pointers into them outlive their last use
        do throws(DeviceError) {
            try w.device.write(UnsafeRawBufferPointer(w.buffer.mutableBytes), at: w.offset)
        } catch {
            if let cp = w.copy { return abandonCopy(cp, error) }
            try? markFailed(w.column, error)
            return .targetFailed("\(w.device.path): \(error)")
        }
        for m in w.more {
            do throws(DeviceError) {
                try m.device.write(UnsafeRawBufferPointer(m.buffer.mutableBytes), at: m.offset)
            } catch {
                try? markFailed(m.column, error)
                return .targetFailed("\(m.device.path): \(error)")
            }
        }
        if let cp = w.copy, copyTargetFailed.load(ordering: .relaxed) {
            return abandonCopy(cp, DeviceError(path: cp.device.path, operation: .write, errno: 5,
                                               detail: "a mirrored write failed"))
        }
        return nil
    }

    /// The copy source failed at `line`: from now on the target is rebuilt from parity.
    /// Returns nil when the conversion worked (the caller redoes the batch).
    private func convertCopyToRegeneration(_ cp: CopyTarget, line: UInt64) -> ResyncOutcome? {
        let rt = runtime.read { $0 }
        if rt.columns.indices.contains(where: { $0 != cp.column && rt.columns[$0].state.isErred }) {
            return .sourceFailed("the copy source failed while another column is erred")
        }
        let done = line * rt.layout.interlaceBlocks
        // The regeneration record vouches for the target below `line`: make that durable.
        do throws(DeviceError) { try cp.device.flush() } catch { return abandonCopy(cp, error) }
        do {
            try context.store.apply(.copyBecameRegeneration(volume: name, column: cp.column, target: cp.uuid, doneBlocks: done))
        } catch {
            return .sourceFailed("could not switch the copy to a regeneration: \(error)")
        }
        // (The caller holds line locks: writes cannot be held off here.)
        do { try reload(.exclude) } catch { return .sourceFailed("\(error)") }
        // From here on the target is rebuilt from parity: lines whose parity is untrusted
        // cannot be, as at the start of any regeneration.
        do { try recordLostBeforeRegeneration(column: cp.column, fromLine: line) } catch {
            return .sourceFailed("could not record lost blocks: \(error)")
        }
        return nil
    }

    private func abandonCopy(_ cp: CopyTarget, _ error: DeviceError) -> ResyncOutcome {
        context.logger.error("\(name): copy target \(cp.device.path) failed: \(error); the column stays on its old device")
        _ = try? context.store.apply(.copyAbandoned(volume: name, target: cp.uuid))
        runtime.withLock { $0.copy = nil }
        return .targetFailed("\(cp.device.path): \(error)")
    }

    /// Commits the end of a resync and updates the runtime. A copy ends with foreground writes
    /// held off, after a last check that the target took every mirrored write.
    private func finishResync(_ kind: ResyncKind) {
        if kind == .copy {
            writeGate.withLock { (_: inout Void) in
                if copyTargetFailed.load(ordering: .relaxed), let cp = runtime.read({ $0.copy }) {
                    _ = abandonCopy(cp, DeviceError(path: cp.device.path, operation: .write, errno: EIO,
                                                    detail: "a mirrored write failed"))
                    return
                }
                guard checkpointLogBeforeFinish(kind) else { return }
                commitFinish(kind, writesHeld: true)
            }
            return
        }
        if kind == .regenerate, runtime.read({ $0.log }) != nil {
            writeGate.withLock { (_: inout Void) in
                guard checkpointLogBeforeFinish(kind) else { return }
                commitFinish(kind, writesHeld: true)
            }
            return
        }
        commitFinish(kind, writesHeld: false)
    }

    /// The end of a copy swaps the column's device (the records in the area of the device it
    /// leaves go with it), and the end of a regeneration gives the write log a column to hold
    /// records again: either would let a later replay miss a record that an older one of the
    /// same line outlives. So the write log checkpoints first (every in-place write durable,
    /// every record voided); writes wait meanwhile (the caller holds the write gate). Returns
    /// false, having logged why, when the checkpoint failed (the resync is then not finished;
    /// a restart resumes it).
    private func checkpointLogBeforeFinish(_ kind: ResyncKind) -> Bool {
        guard let log = runtime.read({ $0.log }) else { return true }
        do {
            try log.checkpointNow { next in try self.checkpointLog(next) }
            return true
        } catch {
            context.logger.error("\(name): could not checkpoint the write log at the end of the \(kind.rawValue): \(error); the resync is finished at the next start")
            return false
        }
    }

    private func commitFinish(_ kind: ResyncKind, writesHeld: Bool) {
        do {
            try context.store.apply(.resyncFinished(volume: name, kind: kind))
        } catch {
            context.logger.error("\(name): could not record the end of the resync: \(error)")
            return
        }
        try? reload(writesHeld ? .writesHeld : .holdWrites)
    }
}

/// Buffers reused by every step of one resync: allocating (and zeroing) fresh megabytes per
/// step costs more CPU than the XOR itself (page faults, clearing, unmapping dominated a
/// profile of a 1 GiB regeneration). The source buffers are shared by all steps (they are
/// free once the XOR is done); each of the two pipeline slots has its own output buffer.
final class ResyncScratch: @unchecked Sendable {
    private var srcs: [AlignedBuffer] = []
    private var outs: [Int: AlignedBuffer] = [:]
    private var size = -1
    private func fit(_ bytes: Int) {
        if bytes != size { srcs = []; outs = [:]; size = bytes }
    }
    /// `count` source buffers of exactly `bytes` bytes (reallocated only when the size changes).
    func sources(_ count: Int, _ bytes: Int) -> [AlignedBuffer] {
        fit(bytes)
        while srcs.count < count { srcs.append(AlignedBuffer(count: bytes)) }
        return Array(srcs.prefix(count))
    }
    /// The output buffer of pipeline slot `slot`, of exactly `bytes` bytes.
    func output(_ slot: Int, _ bytes: Int) -> AlignedBuffer {
        fit(bytes)
        if let b = outs[slot] { return b }
        let b = AlignedBuffer(count: bytes)
        outs[slot] = b
        return b
    }
}

/// Runs one step at a time on its own thread (a resync's write to its target, a check's read of
/// the next lines), so the caller can work on the step before it meanwhile.
final class OneStepAhead<R>: @unchecked Sendable {
    private let queue: DispatchQueue
    private let finished = DispatchSemaphore(value: 0)
    private var result: R?
    /// Runs each step on the caller's thread (deterministic simulation).
    private let inline: Bool
    init(name: String, inline: Bool = false) { queue = DispatchQueue(label: name); self.inline = inline }
    /// Starts `body`; the caller calls ``wait()`` before the next submit.
    func submit(_ body: @escaping @Sendable () -> R) {
        if inline {
            result = body()
            finished.signal()
            return
        }
        queue.async {
            self.result = body()
            self.finished.signal()
        }
    }
    /// Waits for the submitted step and returns what it returned.
    func wait() -> R {
        finished.wait()
        return result!
    }
}

/// The resync's writer: one step's write to the target in flight while the next is read;
/// its result is the write's failure (nil on success).
typealias StepWriter = OneStepAhead<ResyncOutcome?>
