import Foundation
import MetaDB
import MetaDevices
import MetaLayout

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

    /// Starts the resync the volume record describes (regenerate or copy), in the background.
    /// `completion` runs on the resync thread when it ends.
    /// When background work is still running (a resync ending, whose completion starts the
    /// next one, e.g. onto the next hot spare), the new resync starts as soon as it has ended.
    public func startResync(completion: (@Sendable (ResyncOutcome) -> Void)? = nil) {
        if backgroundRunning {
            DispatchQueue.global().async {
                self.waitForBackgroundWork()
                if !self.stopping { self.startResync(completion: completion) }
            }
            return
        }
        guard let rec = volumeRecord(), let r = rec.resync, r.kind == .regenerate || r.kind == .copy else { return }
        copyTargetFailed.store(false, ordering: .relaxed)
        startThread("resync \(name)") {
            self.repairDirtyRegions()
            let outcome = self.runResync(from: r.doneBlocks / max(1, rec.interlaceBlocks))
            completion?(outcome)
        }
    }

    /// The rate limits in force.
    var rateLimits: ResyncRate { volumeRecord()?.resyncRate ?? .default }

    /// Walks the column from `start`, rebuilding or copying batches of lines while holding
    /// their locks, checkpointing to the state database.
    func runResync(from start: UInt64) -> ResyncOutcome {
        let layout = runtime.withLock { $0.layout }
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
        var windowStart = Date()
        var windowBytes: Double = 0
        var lastFg = foregroundOps.load(ordering: .relaxed)
        guard let kind = volumeRecord()?.resync?.kind else { return .stopped }
        progress.withLock { $0 = (kind, line, total, 0) }
        let scratch = ResyncScratch()
        context.logger.info("\(name): \(kind.rawValue) resync from line \(line) of \(total)")
        var outcome: ResyncOutcome = .completed
        while line < total {
            if stopping { outcome = .stopped; break }
            let end = min(total, line + stepLines())
            for l in line..<end { locks.lock(l) }
            let result = resyncLines(line, end, scratch: scratch)
            for l in (line..<end).reversed() { locks.unlock(l) }
            if let failure = result { outcome = failure; break }
            let moved = Double(end - line) * unitBytes
            line = end
            // Rate: the maximum when idle, the minimum while foreground I/O is active.
            windowBytes += moved
            let fg = foregroundOps.load(ordering: .relaxed)
            let busy = fg != lastFg
            lastFg = fg
            let limits = rateLimits
            let target = Double(busy ? limits.minBytesPerSecond : limits.maxBytesPerSecond)
            let elapsed = Date().timeIntervalSince(windowStart)
            if target > 0 && target < Double(UInt64.max) / 2 {
                let due = windowBytes / target
                if due > elapsed { usleep(UInt32(min(1, due - elapsed) * 1_000_000)) }
            }
            if Date().timeIntervalSince(windowStart) > 1 { windowStart = Date(); windowBytes = 0 }
            let secs = Date().timeIntervalSince(began)
            progress.withLock { $0 = (kind, line, total, secs > 0 ? Double(line - start) * unitBytes / secs : 0) }
            if Date().timeIntervalSince(lastCheckpoint) > Self.checkpointInterval && line < total {
                lastCheckpoint = Date()
                checkpoint(line, layout)
            }
        }
        switch outcome {
        case .completed:
            finishResync(kind)
        case .stopped:
            checkpoint(line, layout)
        case .sourceFailed:
            // The lines below `line` are rebuilt: keep them usable across a restart.
            checkpoint(line, layout)
        case .targetFailed:
            break
        }
        progress.withLock { $0 = nil }
        context.logger.info("\(name): resync \(outcome)")
        return outcome
    }

    func checkpoint(_ line: UInt64, _ layout: RAID5Layout) {
        let done = line * layout.interlaceBlocks
        do {
            try context.store.commit { cfg in
                guard let vi = cfg.volumeIndex(named: name), cfg.volumes[vi].resync != nil else { return }
                cfg.volumes[vi].resync?.doneBlocks = done
            }
        } catch {
            context.logger.error("\(name): could not checkpoint the resync at line \(line): \(error)")
        }
    }

    /// Rebuilds or copies lines `[from, to)`; the caller holds their locks. Returns nil on
    /// success, the failure otherwise.
    func resyncLines(_ from: UInt64, _ to: UInt64, scratch: ResyncScratch = ResyncScratch()) -> ResyncOutcome? {
        let rt = runtime.withLock { $0 }
        let il = rt.layout.interlaceBlocks
        let n = Int((to - from) * il * Volume.blockSize)
        let at: (UInt64) -> UInt64 = { start in start + from * il * Volume.blockSize }

        if let cp = rt.copy {
            // Copy: read the source column, write the target.
            let src = rt.columns[cp.column]
            let buf = scratch.buffers(1, n)[0]
            defer { withExtendedLifetime(buf) {} }  // pointers into it outlive its last use
            do throws(DeviceError) {
                guard let dev = src.device else { throw DeviceError(path: src.path, operation: .read, errno: 5) }
                try dev.read(into: buf.mutableBytes, at: at(src.startByte))
            } catch {
                // The source died: record it, then carry on as a regeneration onto the target.
                do { try markFailed(cp.column, error) } catch {
                    return .sourceFailed("\(error)")
                }
                return convertCopyToRegeneration(cp, line: from) ?? resyncLines(from, to, scratch: scratch)
            }
            do throws(DeviceError) {
                try cp.device.write(UnsafeRawBufferPointer(buf.mutableBytes), at: at(cp.startByte))
            } catch {
                return abandonCopy(cp, error)
            }
            if copyTargetFailed.load(ordering: .relaxed) {
                return abandonCopy(cp, DeviceError(path: cp.device.path, operation: .write, errno: 5,
                                                   detail: "a mirrored write failed"))
            }
            runtime.withLock { $0.copy?.copiedBelow = to }
            return nil
        }

        guard let c = rt.resyncColumn else { return .sourceFailed("no column to resync") }
        let others = (0..<rt.columns.count).filter { $0 != c }
        for d in others where avail(d, line: from, rt) == .missing {
            return .sourceFailed("column \(d) (\(rt.columns[d].path)) is unavailable too")
        }
        let all = scratch.buffers(others.count + 1, n)
        let bufs = Array(all.prefix(others.count))
        defer { withExtendedLifetime(all) {} }  // pointers into it outlive its last use
        let failed = ErrorBox<DeviceError>()
        parallel(others.count) { i in
            let col = rt.columns[others[i]]
            do throws(DeviceError) { try col.device!.read(into: bufs[i].mutableBytes, at: at(col.startByte)) }
            catch { failed.add(others[i], error) }
        }
        if let (d, e) = failed.all.first {
            // A second failure: that column becomes Last Erred and the resync stops.
            try? markFailed(d, e)
            return .sourceFailed("column \(d) (\(e.path)) failed during regeneration: \(e)")
        }
        let out = all[others.count]
        Parity.xor(sources: bufs.map { UnsafeRawPointer($0.base) }, into: out.base, count: n)
        let target = rt.columns[c]
        do throws(DeviceError) {
            guard let dev = target.device else { throw DeviceError(path: target.path, operation: .write, errno: 5) }
            try dev.write(UnsafeRawBufferPointer(out.mutableBytes), at: at(target.startByte))
        } catch {
            try? markFailed(c, error)
            return .targetFailed("\(target.path): \(error)")
        }
        runtime.withLock { $0.rebuiltBelow = to }
        return nil
    }

    /// The copy source failed at `line`: from now on the target is rebuilt from parity.
    /// Returns nil when the conversion worked (the caller redoes the batch).
    private func convertCopyToRegeneration(_ cp: CopyTarget, line: UInt64) -> ResyncOutcome? {
        let rt = runtime.withLock { $0 }
        if rt.columns.indices.contains(where: { $0 != cp.column && rt.columns[$0].state.isErred }) {
            return .sourceFailed("the copy source failed while another column is erred")
        }
        let done = line * rt.layout.interlaceBlocks
        do {
            try context.store.commit { cfg in
                guard let vi = cfg.volumeIndex(named: name) else { return }
                var col = cfg.volumes[vi].columns[cp.column]
                if let spare = col.hotSpare { Self.setSpare(spare, .broken, in: &cfg) }
                col.hotSpare = nil
                let old = col.device
                col.device = cp.uuid
                col.state = .resyncing
                cfg.volumes[vi].columns[cp.column] = col
                cfg.volumes[vi].resync = ResyncCheckpoint(kind: .regenerate, column: cp.column, target: cp.uuid,
                                                          doneBlocks: done, totalBlocks: cfg.volumes[vi].columnBlocks)
                if !SetDatabaseHelpers.isReferenced(old, in: cfg), let di = cfg.devices.firstIndex(where: { $0.uuid == old }),
                   cfg.devices[di].replicaCount == 0 {
                    cfg.devices[di].role = .unused
                }
            }
        } catch {
            return .sourceFailed("could not switch the copy to a regeneration: \(error)")
        }
        do { try reload() } catch { return .sourceFailed("\(error)") }
        return nil
    }

    private func abandonCopy(_ cp: CopyTarget, _ error: DeviceError) -> ResyncOutcome {
        context.logger.error("\(name): copy target \(cp.device.path) failed: \(error); the column stays on its old device")
        _ = try? context.store.commit { cfg in
            guard let vi = cfg.volumeIndex(named: name) else { return }
            cfg.volumes[vi].resync = nil
            if let di = cfg.devices.firstIndex(where: { $0.uuid == cp.uuid }) { cfg.devices[di].role = .unused }
        }
        runtime.withLock { $0.copy = nil }
        return .targetFailed("\(cp.device.path): \(error)")
    }

    /// Commits the end of a resync and updates the runtime.
    private func finishResync(_ kind: ResyncKind) {
        do {
            try context.store.commit { cfg in
                guard let vi = cfg.volumeIndex(named: name), let r = cfg.volumes[vi].resync, let c = r.column else { return }
                var col = cfg.volumes[vi].columns[c]
                if kind == .copy, let target = r.target {
                    let oldActive = col.activeDevice
                    if let spare = col.hotSpare, spare == oldActive {
                        // Copy-back from a spare: the spare returns to its pool.
                        Self.setSpare(spare, .available, in: &cfg)
                    }
                    let replaced = col.device
                    col.device = target
                    col.hotSpare = nil
                    for u in Set([replaced, oldActive]) where !SetDatabaseHelpers.isReferenced(u, in: cfg, except: (vi, c)) {
                        if let di = cfg.devices.firstIndex(where: { $0.uuid == u }), cfg.devices[di].role != .hotSpare {
                            cfg.devices[di].role = cfg.devices[di].replicaCount > 0 ? .replica : .unused
                        }
                    }
                    if let di = cfg.devices.firstIndex(where: { $0.uuid == target }) { cfg.devices[di].role = .component }
                }
                col.state = .okay
                cfg.volumes[vi].columns[c] = col
                cfg.volumes[vi].resync = nil
            }
        } catch {
            context.logger.error("\(name): could not record the end of the resync: \(error)")
            return
        }
        try? reload()
    }

    static func setSpare(_ uuid: UUID, _ state: HotSpareState, in cfg: inout SetConfig) {
        for p in cfg.hotSparePools.indices {
            for s in cfg.hotSparePools[p].spares.indices where cfg.hotSparePools[p].spares[s].device == uuid {
                cfg.hotSparePools[p].spares[s].state = state
            }
        }
    }
}

/// Buffers reused by every step of one resync: allocating (and zeroing) fresh megabytes per
/// step costs more CPU than the XOR itself (page faults, clearing, unmapping dominated a
/// profile of a 1 GiB regeneration).
final class ResyncScratch: @unchecked Sendable {
    private var bufs: [AlignedBuffer] = []
    private var size = -1
    /// `count` buffers of exactly `bytes` bytes (reallocated only when the size changes).
    func buffers(_ count: Int, _ bytes: Int) -> [AlignedBuffer] {
        if bytes != size { bufs = []; size = bytes }
        while bufs.count < count { bufs.append(AlignedBuffer(count: bytes)) }
        return Array(bufs.prefix(count))
    }
}

/// Small queries over a configuration.
enum SetDatabaseHelpers {
    /// Whether any volume slot (other than `except`) or pool refers to `uuid`.
    static func isReferenced(_ uuid: UUID, in cfg: SetConfig, except: (Int, Int)? = nil) -> Bool {
        for (vi, v) in cfg.volumes.enumerated() {
            for (ci, c) in v.columns.enumerated() where !(except.map { $0 == (vi, ci) } ?? false) {
                if c.device == uuid || c.hotSpare == uuid { return true }
            }
            for r in v.rows { for c in r.components where c.device == uuid || c.hotSpare == uuid { return true } }
        }
        return cfg.hotSparePools.contains { $0.spares.contains { $0.device == uuid } }
    }
}
