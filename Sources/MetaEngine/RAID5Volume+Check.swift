import Foundation
import MetaDevices
import MetaLayout
import MetaModel

/// `metactl check`: read every line of a healthy RAID-5 volume, verify that its parity is the
/// XOR of its data, count (and with `repair`, rewrite) the parity of the lines where it is
/// not, and rewrite from the other columns the units a column could not read, as md's
/// `check`/`repair` do. The volume stays in use; each step holds its lines' locks.
extension RAID5Volume {
    /// Starts the check the volume record describes (``CheckRecord/running``), from its
    /// checkpoint, in the background. Its end is committed (`checkEnded`); a shutdown leaves it
    /// running in the record, so that the next start resumes it.
    public func startCheck() {
        if deferUntilIdle("check \(name)", { self.startCheck() }) { return }
        guard let c = volumeRecord()?.check, c.running else { return }
        checkStopFlag.store(false, ordering: .relaxed)
        startThread("check \(name)") {
            self.repairDirtyRegions()
            self.runCheck(c)
        }
    }

    /// Asks the running check to end (`stopped`) at its next step.
    public func stopCheck() { checkStopFlag.store(true, ordering: .relaxed) }

    /// Whether a check runs now.
    public var checkRunning: Bool { checkProgress.withLock { $0 != nil } }

    func runCheck(_ record: CheckRecord) {
        let layout = runtime.read { $0.layout }
        let total = layout.lineCount
        let unitBytes = Int(layout.interlaceBlocks * Volume.blockSize)
        let columns = layout.columnCount
        /// Lines per step, as a resync batches them: ``resyncStepBytes`` per column (8 MiB)
        /// when the rate is unlimited, at most 1 MiB when a maximum is set (short pauses).
        func stepLines() -> UInt64 {
            var bytes = resyncStepBytes.load(ordering: .relaxed)
            if rateLimits.maxBytesPerSecond < UInt64.max / 2 { bytes = min(bytes, 1 << 20) }
            return max(1, bytes / UInt64(unitBytes))
        }
        var counts = record.counts
        var line = min(record.doneLines, total)
        let start = line
        let began = Date()
        var lastCheckpoint = Date()
        var repairedSinceFlush = false
        var pacer = ResyncPacer(foreground: foregroundOps.load(ordering: .relaxed))
        // Two sets of buffers for the whole check (fresh ones every step cost page faults):
        // while one step is verified, the next one is read into the other. Only while the
        // volume is idle and the rate unlimited: a step read ahead holds its lines' locks, which
        // must not be held through the pacer's pauses nor against foreground writes (and not
        // under simulation, whose yield points must hold no line lock).
        let scratches = [CheckScratch(), CheckScratch()]
        let ahead = context.scheduler == nil
        let reader = OneStepAhead<Result<[(Int, DeviceError)], CheckFailure>>(name: "check-read \(name)", inline: !ahead)
        /// The step read ahead (its lines locked), and its buffers.
        var prefetched: (from: UInt64, to: UInt64, slot: Int)?
        var slot = 0
        var foregroundSeen = foregroundOps.load(ordering: .relaxed)
        checkProgress.withLock { $0 = (line, total, 0) }
        context.logger.info("\(name): check\(record.repair ? " and repair" : "") from line \(line) of \(total)")
        var result: CheckResult? = .completed
        var failure: String?
        while line < total {
            if stopping || checkStopFlag.load(ordering: .relaxed) {
                // Shutdown (resumed at the next start) or --stop.
                result = stopping ? nil : .stopped
                if let p = prefetched {
                    _ = reader.wait()
                    for l in (p.from..<p.to).reversed() { locks.unlock(l) }
                    prefetched = nil
                }
                break
            }
            // This step: read ahead by the previous one, or read now.
            let end: UInt64
            let mine: Int
            if let p = prefetched {
                (end, mine) = (p.to, p.slot)
                prefetched = nil
            } else {
                end = min(total, line + stepLines())
                mine = slot
                slot ^= 1
                for l in line..<end { locks.lock(l) }
                let from = line, buffers = UncheckedSendable(scratches[mine])
                reader.submit { self.readCheckLines(from, end, layout: layout, scratch: buffers.value) }
            }
            let read = reader.wait()
            // The next step's read runs while this one is verified.
            let foreground = foregroundOps.load(ordering: .relaxed)
            let idle = foreground == foregroundSeen && rateLimits.maxBytesPerSecond >= UInt64.max / 2
            foregroundSeen = foreground
            if ahead && idle && end < total && !checkStopFlag.load(ordering: .relaxed) && !stopping {
                let next = min(total, end + stepLines())
                let buffers = UncheckedSendable(scratches[slot])
                for l in end..<next { locks.lock(l) }
                reader.submit { self.readCheckLines(end, next, layout: layout, scratch: buffers.value) }
                prefetched = (end, next, slot)
                slot ^= 1
            }
            let outcome: CheckStep
            switch read {
            case .failure(let f): outcome = CheckStep(failure: f.reason)
            case .success(let failed):
                outcome = verifyCheckLines(line, end, layout: layout, repair: record.repair, counts: &counts,
                                           scratch: scratches[mine], failed: failed)
            }
            for l in (line..<end).reversed() { locks.unlock(l) }
            if let why = outcome.failure {
                result = .abandoned
                failure = why
                if let p = prefetched {
                    _ = reader.wait()
                    for l in (p.from..<p.to).reversed() { locks.unlock(l) }
                }
                break
            }
            if outcome.wrote { repairedSinceFlush = true }
            // Paced and reported per column, as a resync is: each column reads this much.
            let moved = Double(end - line) * Double(unitBytes)
            line = end
            if let scheduler = context.scheduler { scheduler.yield("check") }
            pacer.pace(moved, foreground: foregroundOps.load(ordering: .relaxed), limits: rateLimits,
                       simulated: context.scheduler != nil)
            let secs = Date().timeIntervalSince(began)
            checkProgress.withLock {
                $0 = (line, total, secs > 0 ? Double(line - start) * Double(unitBytes) / secs : 0)
            }
            let due = context.scheduler.map { $0.shouldCheckpoint() }
                ?? (Date().timeIntervalSince(lastCheckpoint) > Self.checkpointInterval)
            if due && line < total {
                lastCheckpoint = Date()
                if checkCheckpoint(line, counts, flush: repairedSinceFlush) { repairedSinceFlush = false }
            }
        }
        let secs = Date().timeIntervalSince(began)
        let mib = Double(line - start) * Double(unitBytes * columns) / 1_048_576  // read in all
        let rate = String(format: "%.1f MiB in %.2f s, %.1f MiB/s", mib, secs, secs > 0 ? mib / secs : 0)
        if let result {
            // Rewritten parity is made durable before the record says the check is done.
            if repairedSinceFlush, (try? flush()) == nil {
                context.logger.error("\(name): could not flush the check's repairs")
            }
            do {
                try context.store.apply(.checkEnded(volume: name, result: result, doneLines: line, counts: counts,
                                                    failure: failure, at: Date()))
            } catch {
                context.logger.error("\(name): could not record the end of the check: \(error)")
            }
            let found = "\(counts.mismatches) mismatch\(counts.mismatches == 1 ? "" : "es")"
                + (record.repair ? ", \(counts.repaired) repaired" : "")
                + (counts.readErrorsRepaired > 0 ? ", \(counts.readErrorsRepaired) read error(s) rewritten" : "")
            context.logger.info("\(name): check \(result.rawValue)\(failure.map { " (\($0))" } ?? ""): \(found); \(rate)")
        } else {
            _ = checkCheckpoint(line, counts, flush: repairedSinceFlush)
            context.logger.info("\(name): check interrupted at line \(line) of \(total) (resumes at the next start); \(rate)")
        }
        checkProgress.withLock { $0 = nil }
    }

    /// Records the check's progress; with `flush`, makes its repairs durable first (the
    /// checkpoint vouches for them). Returns whether it was recorded.
    private func checkCheckpoint(_ line: UInt64, _ counts: CheckCounts, flush needed: Bool) -> Bool {
        if needed, (try? flush()) == nil {
            context.logger.error("\(name): could not flush the check's repairs; no checkpoint at line \(line)")
            return false
        }
        do {
            try context.store.apply(.checkCheckpoint(volume: name, doneLines: line, counts: counts))
            return true
        } catch {
            context.logger.error("\(name): could not checkpoint the check: \(error)")
            return false
        }
    }

    /// What checking a batch of lines did: `failure` ends the check; `wrote` says that
    /// something was rewritten (a flush is due before the next checkpoint).
    struct CheckStep { var failure: String?; var wrote = false }

    /// Why a check cannot go on.
    struct CheckFailure: Error { var reason: String; init(_ r: String) { reason = r } }

    /// Why the check cannot go on with the runtime as it is now (nil: it can).
    func checkBlocked(_ rt: Runtime, layout: RAID5Layout) -> String? {
        guard rt.layout == layout else { return "the volume's layout changed (grow)" }
        if rt.copy != nil || rt.resyncColumn != nil { return "a resync began" }
        if let c = rt.columns.indices.first(where: { rt.columns[$0].device == nil || rt.columns[$0].state != .okay }) {
            return "column \(c) is \(rt.columns[c].device == nil ? "missing" : rt.columns[c].state.rawValue)"
        }
        return nil
    }

    /// The columns' units of lines `from..<to` read into `scratch` (one read per column), and
    /// the columns whose read failed; nil when the check cannot go on (``checkBlocked``). The
    /// caller holds the lines' locks.
    func readCheckLines(_ from: UInt64, _ to: UInt64, layout: RAID5Layout, scratch: CheckScratch) -> Result<[(Int, DeviceError)], CheckFailure> {
        let rt = runtime.read { $0 }
        if let why = checkBlocked(rt, layout: layout) { return .failure(CheckFailure(why)) }
        let unit = Int(layout.interlaceBlocks * Volume.blockSize)
        let n = Int(to - from) * unit
        let cols = rt.columns.count
        scratch.prepare(columns: cols, bytes: n, unit: unit)
        let bufs = scratch.bufs
        defer { withExtendedLifetime(bufs) {} }  // pointers into them outlive their last use
        let failed = ErrorBox<DeviceError>()
        parallel(cols, bytes: n * cols) { c in
            do throws(DeviceError) {
                try rt.columns[c].device!.read(into: bufs[c].mutableBytes(offset: 0, count: n),
                                               at: self.columnOffset(rt.columns[c], line: from, unitOffset: 0, layout: layout))
            } catch { failed.add(c, error) }
        }
        return .success(failed.all)
    }

    /// Checks lines `from..<to` (the caller holds their locks): one read per column, then per
    /// line the XOR of every column (data and parity), which is zero where parity is right.
    func checkLines(_ from: UInt64, _ to: UInt64, layout: RAID5Layout, repair: Bool,
                    counts: inout CheckCounts, scratch: CheckScratch) -> CheckStep {
        switch readCheckLines(from, to, layout: layout, scratch: scratch) {
        case .failure(let f): return CheckStep(failure: f.reason)
        case .success(let failed):
            return verifyCheckLines(from, to, layout: layout, repair: repair, counts: &counts, scratch: scratch, failed: failed)
        }
    }

    /// The second half of ``checkLines(_:_:layout:repair:counts:scratch:)``: verifies (and
    /// repairs) lines `from..<to` read into `scratch` by ``readCheckLines(_:_:layout:scratch:)``,
    /// whose failed columns are `failed`. The caller still holds the lines' locks.
    func verifyCheckLines(_ from: UInt64, _ to: UInt64, layout: RAID5Layout, repair: Bool,
                          counts: inout CheckCounts, scratch: CheckScratch, failed: [(Int, DeviceError)]) -> CheckStep {
        let rt = runtime.read { $0 }
        // A column may have failed (elsewhere) since the read: repairs would go to it.
        if let why = checkBlocked(rt, layout: layout) { return CheckStep(failure: why) }
        let unit = Int(layout.interlaceBlocks * Volume.blockSize)
        let lines = Int(to - from)
        let cols = rt.columns.count
        let bufs = scratch.bufs, sum = scratch.sum!
        defer { withExtendedLifetime((bufs, sum)) {} }  // pointers into them outlive their last use
        var step = CheckStep()
        // A column that could not read the batch: find its unreadable units one by one.
        var unreadable: [Int: [(column: Int, error: DeviceError)]] = [:]
        for (c, _) in failed {
            for i in 0..<lines {
                let at = columnOffset(rt.columns[c], line: from + UInt64(i), unitOffset: 0, layout: layout)
                do throws(DeviceError) { try rt.columns[c].device!.read(into: bufs[c].mutableBytes(offset: i * unit, count: unit), at: at) } catch {
                    unreadable[i, default: []].append((c, error))
                }
            }
        }
        // Rewrite each from the other columns (the column stays in service unless that
        // fails); two unreadable units in one line have no redundancy left to come from.
        for i in unreadable.keys.sorted() {
            let line = from + UInt64(i)
            let bad = unreadable[i]!
            guard bad.count <= layout.parityCount else {
                for (c, e) in bad { _ = try? markFailed(c, e) }
                return CheckStep(failure: "columns \(bad.map { String($0.column) }.joined(separator: " and ")) could not read line \(line)")
            }
            let badCols = bad.map(\.column)
            let have = (0..<cols).filter { !badCols.contains($0) }.map { (column: $0, bytes: UnsafeRawPointer(bufs[$0].base + i * unit)) }
            Syndrome.recover(layout, line: line, have: have,
                             want: badCols.map { (column: $0, bytes: bufs[$0].base + i * unit) }, count: unit)
            for (c, error) in bad {
                let dest = bufs[c].mutableBytes(offset: i * unit, count: unit)
                do throws(DeviceError) {
                    try rt.columns[c].device!.write(UnsafeRawBufferPointer(dest), at: columnOffset(rt.columns[c], line: line, unitOffset: 0, layout: layout))
                } catch {
                    _ = try? markFailed(c, error)
                    return CheckStep(failure: "column \(c) could not read line \(line) nor take it rewritten: \(error)")
                }
                counts.readErrorsRepaired += 1
                step.wrote = true
                context.logger.warning("\(name): column \(c) (\(rt.columns[c].path)): unreadable unit of line \(line) rewritten from the other columns (\(error))")
            }
        }
        if layout.parityCount == 2 {
            if let failure = checkSyndromes(from, lines: lines, layout: layout, rt, repair: repair, counts: &counts, scratch: scratch) {
                return CheckStep(failure: failure, wrote: true)
            }
            return step
        }
        for i in 0..<lines {
            let line = from + UInt64(i)
            Parity.xor(sources: (0..<cols).map { UnsafeRawPointer(bufs[$0].base + i * unit) }, into: sum.base, count: unit)
            if Self.isZero(sum.base, count: unit) { continue }
            counts.addMismatch(line, repaired: repair)
            guard repair else { continue }
            // RAID-5 cannot tell which unit is wrong: the parity is made to match the data.
            let p = layout.parityColumn(line: line)
            let parity = bufs[p].base + i * unit
            Parity.xorInPlace(parity, UnsafeRawPointer(sum.base), count: unit)
            do throws(DeviceError) {
                try rt.columns[p].device!.write(UnsafeRawBufferPointer(start: parity, count: unit),
                                                at: columnOffset(rt.columns[p], line: line, unitOffset: 0, layout: layout))
            } catch {
                _ = try? markFailed(p, error)
                return CheckStep(failure: "column \(p) could not take the repaired parity of line \(line): \(error)")
            }
            step.wrote = true
        }
        return step
    }

    /// Whether `count` bytes at `p` (8-byte aligned, a multiple of 8) are all zero.
    static func isZero(_ p: UnsafeMutableRawPointer, count: Int) -> Bool {
        let words = UnsafeRawPointer(p).assumingMemoryBound(to: UInt64.self)
        var acc: UInt64 = 0
        for i in 0..<(count / 8) { acc |= words[i] }
        return acc == 0
    }
}

/// The buffers a check reads each step into: one per column, and one for a line's XOR
/// (RAID-6: two, for the P and Q computed from the data).
final class CheckScratch {
    private(set) var bufs: [AlignedBuffer] = []
    private(set) var sum: AlignedBuffer?
    private(set) var sumQ: AlignedBuffer?

    /// Makes room for `bytes` per column and a `unit` for the XOR (kept when big enough).
    func prepare(columns: Int, bytes: Int, unit: Int) {
        if bufs.count != columns || (bufs.first?.count ?? 0) < bytes {
            bufs = (0..<columns).map { _ in AlignedBuffer(count: bytes) }
        }
        if (sum?.count ?? 0) < unit { sum = AlignedBuffer(count: unit) }
        if (sumQ?.count ?? 0) < unit { sumQ = AlignedBuffer(count: unit) }
    }
}

extension RAID5Volume {
    /// RAID-6: checks P and Q of each line read into `scratch`, locates a single wrong unit
    /// from the two syndromes, and (with `repair`) rewrites what is wrong. Returns a failure
    /// that ends the check, or nil.
    ///
    /// With `P*` and `Q*` computed from the data as read, the syndromes are `Sp = P ⊕ P*` and
    /// `Sq = Q ⊕ Q*`. Only `Sq` nonzero: Q is wrong. Only `Sp`: P is wrong. Both: if one data
    /// unit `z` is off by `e`, then `Sp = e` and `Sq = g^z·e` at every byte, so `Sq/Sp` is the
    /// same `g^z` wherever `Sp ≠ 0` (and `Sq = 0` where `Sp = 0`): unit `z` is wrong, and
    /// `D_z ⊕ Sp` is right. Anything else cannot be located: P and Q are rewritten from the
    /// data, as RAID-5 does.
    func checkSyndromes(_ from: UInt64, lines: Int, layout: RAID5Layout, _ rt: Runtime, repair: Bool,
                        counts: inout CheckCounts, scratch: CheckScratch) -> String? {
        let unit = Int(layout.interlaceBlocks * Volume.blockSize)
        let bufs = scratch.bufs, sp = scratch.sum!, sq = scratch.sumQ!
        defer { withExtendedLifetime((bufs, sp, sq)) {} }  // pointers into them outlive their last use
        for i in 0..<lines {
            let line = from + UInt64(i)
            let at = i * unit
            let data = layout.dataColumnsInUnitOrder(line: line)
            let p = layout.parityColumn(line: line), q = layout.qColumn(line: line)!
            // One pass over the line when it is right (ISA-L pq_check), the syndromes only when not.
            if Syndrome.check(data: data.map { UnsafeRawPointer(bufs[$0].base + at) }, p: UnsafeRawPointer(bufs[p].base + at),
                              q: UnsafeRawPointer(bufs[q].base + at), count: unit) { continue }
            Syndrome.generate(data: data.map { UnsafeRawPointer(bufs[$0].base + at) }, p: sp.base, q: sq.base, count: unit)
            Parity.xorInPlace(sp.base, UnsafeRawPointer(bufs[p].base + at), count: unit)
            Parity.xorInPlace(sq.base, UnsafeRawPointer(bufs[q].base + at), count: unit)
            let pOK = Self.isZero(sp.base, count: unit), qOK = Self.isZero(sq.base, count: unit)
            if pOK && qOK { continue }
            // The column holding the wrong unit, when the syndromes agree on one.
            let wrong: Int? = pOK ? q : qOK ? p : Syndrome.locate(sp: UnsafeRawPointer(sp.base), sq: UnsafeRawPointer(sq.base), count: unit)
                .flatMap { $0 < data.count ? data[$0] : nil }
            counts.addMismatch(line, repaired: repair)
            if let w = wrong { counts.addLocated(line, column: w) }
            let path = wrong.map { " (\(rt.columns[$0].path))" } ?? ""
            context.logger.warning("\(name): check: line \(line): \(wrong.map { "column \($0)\(path) holds a wrong unit" } ?? "P and Q do not match the data, and the syndromes point at no single column")\(repair ? "; rewriting it" : "")")
            guard repair else { continue }
            // What to write: the located unit corrected, or P and Q from the data.
            var writes: [(Int, UnsafeRawPointer)] = []
            if let w = wrong, w != p, w != q {
                Parity.xorInPlace(bufs[w].base + at, UnsafeRawPointer(sp.base), count: unit)
                writes = [(w, UnsafeRawPointer(bufs[w].base + at))]
            } else {
                Syndrome.generate(data: data.map { UnsafeRawPointer(bufs[$0].base + at) }, p: bufs[p].base + at,
                                  q: bufs[q].base + at, count: unit)
                writes = [(p, UnsafeRawPointer(bufs[p].base + at)), (q, UnsafeRawPointer(bufs[q].base + at))]
                if let w = wrong { writes.removeAll { $0.0 != w } }
            }
            for (c, src) in writes {
                do throws(DeviceError) {
                    try rt.columns[c].device!.write(UnsafeRawBufferPointer(start: src, count: unit),
                                                    at: columnOffset(rt.columns[c], line: line, unitOffset: 0, layout: layout))
                } catch {
                    _ = try? markFailed(c, error)
                    return "column \(c) could not take the repaired unit of line \(line): \(error)"
                }
            }
        }
        return nil
    }
}
