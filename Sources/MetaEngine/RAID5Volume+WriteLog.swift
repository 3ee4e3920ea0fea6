import Foundation
import MetaDB
import MetaDevices
import MetaModel

extension RAID5Volume {
    /// Whether column `c`'s log area can take records now (`preferHealthy`: not Last Erred).
    private func logHolder(_ c: Int, _ rt: Runtime, preferHealthy: Bool) -> Bool {
        Self.holder(c, rt, preferHealthy: preferHealthy)
    }

    /// The columns that could not hold records in `old` and can in `new` (a column enabled
    /// again, a returning device, a hot spare or a replacement being rebuilt), in either of
    /// ``logColumns(line:_:)``'s passes.
    static func logHoldersGained(from old: Runtime, to new: Runtime) -> Set<Int> {
        let n = min(old.layout.originalColumns, new.layout.originalColumns)
        return Set((0..<n).filter { c in
            [true, false].contains { healthy in
                !Self.holder(c, old, preferHealthy: healthy) && Self.holder(c, new, preferHealthy: healthy)
            }
        })
    }

    /// ``logHolder(_:_:preferHealthy:)`` without an engine.
    private static func holder(_ c: Int, _ rt: Runtime, preferHealthy: Bool) -> Bool {
        guard c < rt.layout.originalColumns, rt.columns[c].device != nil, !rt.logExcluded.contains(c) else { return false }
        switch rt.columns[c].state {
        case .okay, .initializing, .resyncing: return true
        case .lastErred: return !preferHealthy
        case .maintenance, .unavailable: return false
        }
    }

    /// Where a record about `line` is written: the dedicated log device while it works
    /// (``WriteLog/deviceKey``), else the line's parity column (the first original column
    /// from it on that can hold records); none when the columns have no area either.
    ///
    /// One copy is enough: a crash followed by the loss of the parity column loses the
    /// record, but then no line needs it (every data unit is read directly; parity is
    /// rebuilt from them, and the replay skips those lines), and the loss of any other
    /// column leaves the record. Within an epoch the columns that can hold records only
    /// become fewer (a resync's end, which brings one back or swaps a copied column's device,
    /// checkpoints first; a reload that brings one back starts a new epoch before the next
    /// record, see ``RAID5Volume/reload()``), so a line's records are never split between a column that is lost
    /// and one that is not in an order that would replay an older record over a newer one.
    ///
    /// RAID-6 keeps two copies: one on the first holder from P on, one on the first other
    /// holder from Q on. A line that loses two columns keeps a copy unless it lost both P
    /// and Q, and then no record is needed (every data unit is read directly). The same
    /// argument holds for each copy: while the column that holds an older copy stays a
    /// healthy holder, a newer record of the line has a copy there too.
    func logColumns(line: UInt64, _ rt: Runtime) -> [Int] {
        if let log = rt.log, log.deviceUsable { return [WriteLog.deviceKey] }
        if let log = rt.log, log.areaBytes == 0 { return [] }
        let n = rt.layout.originalColumns
        /// The first holder from `start` on, other than `taken`.
        func first(from start: Int, excluding taken: Int?) -> Int? {
            for healthy in [true, false] {
                for k in 0..<n {
                    let c = (start + k) % n
                    if c != taken && logHolder(c, rt, preferHealthy: healthy) { return c }
                }
            }
            return nil
        }
        guard let c1 = first(from: rt.layout.parityColumn(line: line), excluding: nil) else { return [] }
        guard let q = rt.layout.qColumn(line: line), q < n, let c2 = first(from: q, excluding: c1) else { return [c1] }
        return [c1, c2]
    }

    /// Byte offset of column `c`'s log area on its device.
    func logAreaOffset(_ c: Int, _ rt: Runtime, _ log: WriteLog) -> UInt64 {
        rt.columns[c].startByte + log.areaStartBlock * Volume.blockSize
    }

    /// Runs `inPlace` once the record of `segments` (payload `i` is segment `i`'s new bytes)
    /// is durable in the write log; directly when the volume has no active log (or its log
    /// device failed and its columns have no area). A log write or flush that fails on a
    /// column goes to `failed` (the caller records the column as failed and tries again), and
    /// `inPlace` does not run: no byte changes in place before its record is durable
    /// everywhere it was written. A dedicated log device that fails is recorded as failed and
    /// the record goes to the columns' areas instead.
    func logged(line: UInt64, _ segments: [LogRecord.Segment], payload: (Int) -> UnsafeRawBufferPointer,
                _ rt: Runtime, failed: ErrorBox<DeviceError>, _ inPlace: () -> Void) throws(VolumeIOError) {
        try logged([LogSpec(line: line, segments: segments, payload: segments.indices.map(payload))], rt, failed: failed, inPlace)
    }

    /// One record of a write: the segments of lines whose records go to the same place
    /// (`line` is one of them), and each segment's new bytes.
    struct LogSpec {
        var line: UInt64
        var segments: [LogRecord.Segment]
        var payload: [UnsafeRawBufferPointer]
    }

    /// ``logged(line:_:payload:_:failed:_:)`` for a write with several records (whole lines
    /// whose parity is on different columns): `inPlace` runs once all of them are durable.
    func logged(_ specs: [LogSpec], _ rt: Runtime, failed: ErrorBox<DeviceError>, _ inPlace: () -> Void) throws(VolumeIOError) {
        let specs = specs.filter { !$0.segments.isEmpty }
        guard let log = rt.log, let line = specs.first?.line else { inPlace(); return }
        for _ in 0..<2 {
            let placed = specs.map { logColumns(line: $0.line, rt) }
            if placed.contains(where: \.isEmpty) {
                if log.areaBytes == 0 {
                    // The log device failed and the columns have no area: unlogged. The
                    // reservation (of nothing) runs the checkpoint that records the failure.
                    do {
                        _ = try log.reserve(bytes: 0, columns: []) { next in try self.checkpointLog(next) }
                        log.finish()
                    } catch {
                        throw ioError("write", line: line, "write log: \(error)")
                    }
                    inPlace()
                    return
                }
                throw ioError("write", line: line, "no column can hold the write log's record")
            }
            switch try writeRecords(log, line: line, specs, columns: placed, rt, failed: failed) {
            case .durable:
                inPlace()
                return
            case .columnFailed:
                log.abandon()
                return
            case .deviceFailed(let error):
                log.abandon()
                logDeviceFailed(log, error)
            }
        }
        throw ioError("write", line: line, "the write log's device failed and the record could not be written elsewhere")
    }

    private enum RecordOutcome { case durable, columnFailed, deviceFailed(DeviceError) }

    /// Writes a write's records, each to its `columns` (or the log device), and flushes
    /// every device written once.
    private func writeRecords(_ log: WriteLog, line: UInt64, _ specs: [LogSpec], columns: [[Int]], _ rt: Runtime,
                              failed: ErrorBox<DeviceError>) throws(VolumeIOError) -> RecordOutcome {
        var records = specs.map { LogRecord(logID: log.config.id, epoch: 0, seq: 0, segments: $0.segments) }
        let reservations: [WriteLog.Reservation]
        do {
            reservations = try log.reserve(zip(records, columns).map { ($0.recordBytes, $1) }) { next in try self.checkpointLog(next) }
        } catch let e as VolumeIOError {
            throw e
        } catch {
            throw ioError("write", line: line, "write log: \(error)")
        }
        defer { for _ in reservations { log.finish() } }
        var bufs: [AlignedBuffer] = []
        for (r, spec) in specs.enumerated() {
            records[r].epoch = reservations[r].epoch
            records[r].seq = reservations[r].seq
            let buf = AlignedBuffer(uninitializedCount: records[r].recordBytes)
            var at = LogRecord.headerBytes
            for (i, s) in spec.segments.enumerated() {
                (buf.base + at).copyMemory(from: spec.payload[i].baseAddress!, byteCount: s.bytes)
                at += s.bytes
            }
            records[r].seal(buf.mutableBytes)
            bufs.append(buf)
        }
        defer { withExtendedLifetime(bufs) {} }  // pointers into them outlive their last use
        let writes = reservations.enumerated().flatMap { r, res in res.placements.map { (record: r, placement: $0) } }
        let deviceError = ErrorBox<DeviceError>()
        let written = ErrorBox<DeviceError>()
        parallel(writes.count, bytes: writes.reduce(0) { $0 + records[$1.record].recordBytes }) { i in
            let (r, pl) = writes[i]
            let onDevice = pl.column == WriteLog.deviceKey
            guard let dev = onDevice ? log.device : rt.columns[pl.column].device else { return }
            let base = onDevice ? log.deviceStartByte : self.logAreaOffset(pl.column, rt, log)
            do throws(DeviceError) {
                try dev.write(bufs[r].bytes, at: base + UInt64(pl.offset))
            } catch {
                if onDevice { deviceError.add(0, error) } else { failed.add(pl.column, error) }
                written.add(i, error)
            }
        }
        // One flush per device written (its records' writes have all completed).
        var flushes: [Int] = []
        for (i, w) in writes.enumerated() where !flushes.contains(w.placement.column) && !written.all.contains(where: { $0.0 == i }) {
            flushes.append(w.placement.column)
        }
        parallel(flushes.count, bytes: 0) { i in
            let c = flushes[i]
            let onDevice = c == WriteLog.deviceKey
            guard let dev = onDevice ? log.device : rt.columns[c].device else { return }
            do throws(DeviceError) { try self.flusher.flush(dev) } catch {
                if onDevice { deviceError.add(0, error) } else { failed.add(c, error) }
            }
        }
        if let e = deviceError.first { return .deviceFailed(e) }
        return failed.all.isEmpty ? .durable : .columnFailed
    }

    /// The dedicated log device failed: records go to the columns' areas from now on; the
    /// next record's checkpoint records the failure (so that `status` says so and a restart
    /// does not read the device) in the commit that voids the device's records.
    private func logDeviceFailed(_ log: WriteLog, _ error: DeviceError) {
        log.deviceFailed()
        let fallback = log.areaBytes > 0 ? "writes are logged in the columns' areas from now on"
                                         : "writes are not logged from now on (the columns have no log area): the dirty-region log alone protects them"
        context.logger.error("\(name): the write log's device \(error.path) failed: \(error); \(fallback)")
    }

    /// Reuses the log areas: every in-place write durable, then the next epoch committed
    /// (which voids every record written so far). Called with no record in flight. Lines
    /// distrusted now (a write failed half-way) lose their records with it: the commit says
    /// so, and their regions stay untrusted across restarts until a parity repair.
    func checkpointLog(_ next: UInt64) throws {
        let untrusted = parityRepairPending
        let log = runtime.read { $0.log }
        let deviceFailed = log?.deviceFailureUncommitted ?? false
        try flush()
        try context.store.apply(.writeLogEpoch(volume: name, epoch: next, untrusted: untrusted, deviceFailed: deviceFailed))
        if deviceFailed { log?.deviceFailureRecorded() }
    }

    /// Sets up the write log of `record` at open. Writes nothing: the first record of the run
    /// commits a new epoch, and the records of the last run wait for ``replayWriteLog()``.
    func openWriteLog(_ record: VolumeRecord) {
        guard let cfg = record.writeLog, cfg.active else { return }
        runtime.withLock { $0.log = makeWriteLog(cfg, record, fresh: false) }
    }

    /// The running log for `cfg`, with its dedicated device opened when it has one.
    func makeWriteLog(_ cfg: WriteLogConfig, _ record: VolumeRecord, fresh: Bool) -> WriteLog {
        let dev = cfg.device.flatMap { context.devices($0) }
        let start = cfg.device.flatMap { context.store.config.device($0)?.dataStartBlock } ?? 0
        return WriteLog(config: cfg, areaStartBlock: record.columnBlocks, epoch: cfg.epoch, fresh: fresh,
                        device: dev, deviceStartBlock: start)
    }

    /// After an unclean stop, replays the records of the last run in order and makes them
    /// durable; when every record could be read, the parity of the dirty regions is trusted
    /// again. Then commits the next epoch (which voids the records replayed). The server
    /// calls this once, before it serves the volume; until then reads that would need the
    /// parity of a dirty region fail rather than guess, as without a log.
    public func replayWriteLog() {
        guard let record = volumeRecord(), let cfg = record.writeLog, cfg.active, let log = runtime.read({ $0.log }),
              !record.dirtyRegions.isEmpty else { return }
        let (replayed, everyArea) = replayRecords(cfg, record)
        let next = cfg.epoch + 1
        do {
            try context.store.apply(.writeLogEpoch(volume: name, epoch: next, untrusted: !replayed))
            log.began(epoch: next)
        } catch {
            // The records stay valid (the state database is read-only, or failed): the next
            // start replays them again. After a whole replay that rewrites the same bytes, so
            // reads may go on (writes fail: their first record needs a new epoch). After a
            // partial one, or with an area unread (a missing column's records, which the next
            // start may find), it could change blocks that reads have returned since: no I/O.
            context.logger.error("\(name): cannot record the write log's new epoch: \(error)")
            if !replayed || !everyArea {
                closeForIO(reason: "\(name): its write log could not be replayed in full and the state database cannot record that; bring back its replicas (metactl db status) and start the server again")
                return
            }
        }
        if cfg.repairPending == true {
            context.logger.warning("\(name): an earlier replay could not make every torn line whole: the dirty regions stay untrusted until their parity repair")
        } else if replayed {
            // Every line a write was in flight in now agrees with its parity (the records
            // were replayed in full, and a write without a whole record never began in place).
            runtime.withLock { $0.unrepairedRegions = [] }
            for r in record.dirtyRegions { drl.unpin(r) }
        }
    }

    /// Replays the records of epoch `cfg.epoch`; returns whether every record that a line
    /// still needs could be read and made durable, and whether every area was read. Records
    /// live on their line's parity column: a line whose parity column is missing needs none
    /// (its data units are read directly), so one missing column still lets the replay be
    /// whole; an area that cannot be read on a column that is there does not (its lines'
    /// parity is there, and may be torn).
    private func replayRecords(_ cfg: WriteLogConfig, _ record: VolumeRecord) -> (Bool, Bool) {
        let rt = runtime.read { $0 }
        let areaBytes = Int(cfg.areaBlocks * Volume.blockSize)
        var areas: [AlignedBuffer] = []
        var found: [UInt64: (record: LogRecord, area: Int, offset: Int)] = [:]
        /// Every area each record was found in (RAID-6 writes two copies).
        var foundIn: [UInt64: [Int]] = [:]
        /// The column each area was read from (-1: the dedicated device).
        var areaColumn: [Int] = []
        var unreadable: [Int] = []
        var missing: [Int] = []
        // The dedicated device first (when it had not failed: after a failure its records
        // were voided before any record went to the columns).
        var deviceMissing = false
        if let uuid = cfg.device, cfg.deviceFailed != true, let blocks = cfg.deviceAreaBlocks, blocks > 0 {
            let area = AlignedBuffer(uninitializedCount: Int(blocks * Volume.blockSize))
            if let dev = context.devices(uuid), let start = context.store.config.device(uuid)?.dataStartBlock {
                do throws(DeviceError) {
                    try dev.read(into: area.mutableBytes, at: start * Volume.blockSize)
                    areas.append(area)
                    areaColumn.append(-1)
                    for (r, off) in LogRecord.scan(area.bytes, logID: cfg.id, epoch: cfg.epoch) {
                        foundIn[r.seq, default: []].append(areas.count - 1)
                        if found[r.seq] == nil { found[r.seq] = (r, areas.count - 1, off) }
                    }
                } catch {
                    context.logger.error("\(name): cannot read the write log's device \(dev.path): \(error)")
                    deviceMissing = true
                }
            } else {
                context.logger.error("\(name): the write log's device is missing: its records cannot be replayed")
                deviceMissing = true
            }
        }
        for c in 0..<rt.layout.originalColumns where areaBytes > 0 {
            guard let dev = rt.columns[c].device else { missing.append(c); continue }
            let area = AlignedBuffer(uninitializedCount: areaBytes)
            do throws(DeviceError) {
                try dev.read(into: area.mutableBytes, at: rt.columns[c].startByte + record.columnBlocks * Volume.blockSize)
            } catch {
                context.logger.error("\(name): cannot read the write log on column \(c) (\(dev.path)): \(error)")
                unreadable.append(c)
                continue
            }
            areas.append(area)
            areaColumn.append(c)
            for (r, off) in LogRecord.scan(area.bytes, logID: cfg.id, epoch: cfg.epoch) {
                foundIn[r.seq, default: []].append(areas.count - 1)
                if found[r.seq] == nil { found[r.seq] = (r, areas.count - 1, off) }
            }
        }
        defer { withExtendedLifetime(areas) {} }  // pointers into them outlive their last use
        // A copy turned regeneration held no records of its column's lines (they went to the
        // next columns) while its target stayed trusted below the checkpoint: with an area
        // lost (RAID-6: two, each record having two copies), those lines' records may be lost
        // with it, and their parity on the target torn.
        let excludedColumnTrusted = record.resync?.kind == .regenerate && record.resync?.logExcluded == true
            && unreadable.count + missing.count >= rt.layout.parityCount
        let complete = unreadable.isEmpty && missing.count <= rt.layout.parityCount && !deviceMissing && !excludedColumnTrusted
        let raid6 = rt.layout.parityCount == 2
        if !complete {
            context.logger.error("\(name): the write log cannot be read on columns \((unreadable + missing).sorted()): torn lines are repaired from the dirty-region log where possible")
        }
        context.logger.warning("\(name): unclean shutdown: replaying \(found.count) write log record(s)")
        // A segment that could not be written leaves its line's data and parity apart, unless
        // its column is now Maintenance (read through parity, which the replay did write): else
        // the dirty regions stay untrusted (the dirty-region log's repair takes over).
        var writeFailed = false
        let lostAreas = Set(unreadable + missing)
        var skipped = 0
        for seq in found.keys.sorted() {
            let (r, ai, off) = found[seq]!
            var at = off
            for s in r.segments {
                defer { at += s.bytes }
                let now = runtime.read { $0 }
                guard s.column < now.columns.count, s.columnBlock + s.blocks <= record.columnBlocks,
                      let dev = now.columns[s.column].device else { continue }
                // A line whose parity column is missing needs no record (its data units are
                // read directly), and an older record of it may lie elsewhere while the newer
                // ones went with that column.
                let line = s.columnBlock / now.layout.interlaceBlocks
                let parityColumn = now.layout.parityColumn(line: line)
                func gone(_ c: Int?) -> Bool { c.map { $0 < now.columns.count && now.columns[$0].device == nil } ?? true }
                // RAID-6: only a line that lost both P and Q needs no record; one that lost P
                // still needs its Q made whole (its record's other copy is after Q).
                if gone(parityColumn) && (!raid6 || gone(now.layout.qColumn(line: line))) { continue }
                if raid6 {
                    // A newer record of the line has a copy on every column that held a copy
                    // of this one and is still a healthy holder (``logColumns``); when none
                    // of those is and an area was lost, a newer record may have been lost
                    // with it: not replayed, and the line stays untrusted.
                    if !lostAreas.isEmpty, !(foundIn[seq] ?? []).contains(where: { areaColumn[$0] < 0 || logHolder(areaColumn[$0], rt, preferHealthy: true) }) {
                        skipped += 1
                        continue
                    }
                }
                // A line's records go to the first column from its parity column on that can
                // hold them, and within an epoch that place only moves on (``logColumns``):
                // while the column holding this record stays a healthy holder, no record of
                // the line went further; once it is not, newer records may lie on a column
                // after it. If such a column's area was lost, this record could be older than
                // the line's data in place: it is not replayed (the line stays untrusted).
                let n = now.layout.originalColumns
                if !raid6, !lostAreas.isEmpty, areaColumn[ai] >= 0, parityColumn < n,
                   !logHolder(areaColumn[ai], rt, preferHealthy: true) {
                    let pos = (areaColumn[ai] - parityColumn + n) % n
                    if (pos + 1..<n).contains(where: { lostAreas.contains((parityColumn + $0) % n) }) {
                        skipped += 1
                        continue
                    }
                }
                switch now.columns[s.column].state {
                case .okay, .initializing, .resyncing, .lastErred: break
                case .maintenance, .unavailable: continue
                }
                let src = UnsafeRawBufferPointer(start: areas[ai].base + at, count: s.bytes)
                do throws(DeviceError) {
                    try dev.write(src, at: now.columns[s.column].startByte + s.columnBlock * Volume.blockSize)
                } catch {
                    context.logger.error("\(name): write log replay: column \(s.column) (\(dev.path)) failed: \(error)")
                    _ = try? markFailed(s.column, error)
                    if runtime.read({ $0.columns[s.column].state }) != .maintenance { writeFailed = true }
                }
                if let cp = now.copy, cp.column == s.column, s.columnBlock / now.layout.interlaceBlocks < cp.copiedBelow {
                    try? cp.device.write(src, at: cp.startByte + s.columnBlock * Volume.blockSize)
                }
            }
        }
        if skipped > 0 {
            context.logger.error("\(name): write log replay: \(skipped) segment(s) not replayed: a newer record of their lines may have been on a column whose log could not be read")
        }
        do { try flush(unrecordedMissingAllowed: true) } catch {
            context.logger.error("\(name): the write log's replay could not be made durable: \(error)")
            writeLogReplay.withLock { $0 = (found.count, false) }
            return (false, false)
        }
        // RAID-6: a record not replayed leaves its line torn (RAID-5 skips only where a
        // second column is lost, and such a line is lost whatever the replay does).
        let whole = complete && !writeFailed && !(raid6 && skipped > 0)
        writeLogReplay.withLock { $0 = (found.count, whole) }
        return (whole, unreadable.isEmpty && missing.isEmpty && !deviceMissing)
    }

    /// Switches the write log to `log` (nil or mode `none`: off) and commits it: waits for
    /// the writes in flight, makes every write durable, commits, then logs (or not) every
    /// write that follows. The new log starts a new epoch; while regions await their parity
    /// repair (a crash, a failed write) it is marked ``WriteLogConfig/repairPending``: it
    /// cannot vouch for lines torn before it.
    public func setWriteLog(_ log: WriteLogConfig?) throws {
        try setWriteLog { _ in log }
    }

    /// ``setWriteLog(_:)`` with the new log made inside the commit by `make` (which may also
    /// change the configuration, e.g. label a new log device).
    public func setWriteLog(_ make: (inout SetConfig) throws -> WriteLogConfig?) throws {
        try writeGate.withLock { (_: inout Void) throws in
            let untrusted = parityRepairPending
            try flush()
            try context.store.commit { cfg in
                var log = try make(&cfg)
                if untrusted && log != nil { log!.repairPending = true }
                try context.store.record(.writeLogSet(volume: name, log: log), in: &cfg)
            }
            // The commit moved the epoch on: this run's records carry it.
            guard let rec = volumeRecord() else { return }
            let log = rec.writeLog
            runtime.withLock { $0.log = log?.active == true ? makeWriteLog(log!, rec, fresh: true) : nil }
        }
    }

    /// Records written to the write log and checkpoints taken since open (nil: no log).
    public var writeLogCounters: (records: UInt64, checkpoints: UInt64)? {
        runtime.read { $0.log }.map { ($0.recordsWritten, $0.checkpoints) }
    }
}
