import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine

/// Scripted use of the simulator: the same world, model and checks as a random schedule,
/// driven step by step by a test (the review's reproductions are written this way).
extension Simulation {
    /// Builds the set and the volume (call once, before anything else).
    public func create() throws {
        scripted = true
        try setUp()
    }

    /// The first violation seen so far (wrong data, an error the model does not excuse).
    public var violationFound: SimFailure? { failure }

    /// The engine in force (nil while the set is not open).
    public var volume: RAID5Volume? { engine }

    /// The set's configuration in force.
    public var setConfig: SetConfig? { db?.config }

    /// The configuration record of the volume.
    public var volumeRecord: VolumeRecord? { record }

    /// Blocks per line of the volume (data units × interlace).
    public var lineBlocks: Int { Int(options.interlaceBlocks) * (record.map { $0.columns.count - $0.type.parityCount } ?? 0) }

    /// The volume block at which `column`'s unit of `line` starts.
    public func block(line: Int, column: Int) -> Int {
        guard let e = engine else { return 0 }
        let l = e.layout
        for k in 0..<(l.columnCount - l.parityCount) where l.dataColumn(line: UInt64(line), unit: k) == column {
            return line * lineBlocks + k * Int(options.interlaceBlocks)
        }
        return -1  // the parity column of that line
    }

    /// The parity column of a line.
    public func parityColumn(line: Int) -> Int { engine?.layout.parityColumn(line: UInt64(line)) ?? -1 }

    /// Writes volume blocks `r` (checked against the model); returns whether it succeeded.
    @discardableResult
    public func write(_ r: Range<Int>, fua: Bool = false) -> Bool { clientWrite(r, fua: fua) }

    /// Reads volume blocks `r`: true (read, and the data was legal), false (I/O error), nil
    /// (not open, or wrong data: see ``violationFound``).
    @discardableResult
    public func read(_ r: Range<Int>) -> Bool? { clientRead(r) }

    /// Flushes the volume.
    public func flush() { clientFlush() }

    /// Writes `r` and then puts back the old contents of `columns` in the lines it touched,
    /// then kills the process: the write was torn by the crash (some columns took it, the
    /// others did not). The model counts the write as in flight at the crash.
    public func tornWrite(_ r: Range<Int>, oldOn columns: [Int], crashing: Bool = true, startWithout missing: Int? = nil) {
        guard let e = engine, let db, let rec = record else { return }
        let il = UInt64(options.interlaceBlocks)
        let firstLine = UInt64(r.lowerBound / lineBlocks), lastLine = UInt64((r.upperBound - 1) / lineBlocks)
        var saved: [(any BlockDevice, UInt64, [UInt8])] = []
        for c in columns {
            // The column's device, and its copy target while a copy runs (a mirrored write
            // torn on both).
            var uuids = [rec.columns[c].activeDevice]
            if let r = rec.resync, r.kind == .copy, r.column == c, let t = r.target { uuids.append(t) }
            for u in uuids {
                guard let d = db.device(u), let dr = db.config.device(u) else { continue }
                let at = (dr.dataStartBlock + firstLine * il) * 512
                let n = Int((lastLine - firstLine + 1) * il * 512)
                saved.append((d, at, (try? d.read(count: n, at: at)) ?? []))
            }
        }
        let id = model.nextWrite
        let before = r.map { model.current[$0] }
        _ = e  // the write goes through the engine as any other
        clientWrite(r, fua: false)
        // In flight at the crash: each block holds its old value or the new one.
        for (i, b) in r.enumerated() where !before[i].contains(id) { model.current[b] = before[i] + [id] }
        for (d, at, bytes) in saved where !bytes.isEmpty { try? d.write(bytes: bytes, at: at) }
        note("  torn: columns \(columns) keep their old contents in lines \(firstLine)...\(lastLine)")
        guard crashing else { fate.die(); return }
        if let missing { crashAndStart(without: missing) } else { crash(.kill) }
    }

    /// Kills the process and starts again with the state database replicas of `columns`
    /// unwritable (bad sectors over their replica areas; labels and data work): with half
    /// of them, the set opens, but its first commit (the start's own) fails and it is
    /// read-only from then on.
    public func crashAndStart(replicasUnwritableOn columns: [Int]) {
        guard let rec = record, let db else { return }
        let end = DiskLayout.dataStartBlock(copies: 1, slotSize: DiskLayout.minimumSlotSize) * 512
        for c in columns {
            (db.device(rec.columns[c].activeDevice) as? SimDevice)?.badWrites.append(DiskLayout.replicaAreaOffset..<end)
        }
        note("kill -9, restart with the replicas of columns \(columns) unwritable")
        fate.crashKind = .kill
        fate.die()
        restart(after: .kill)
    }

    /// Whether the state database can commit.
    public var setIsWritable: Bool { db?.quorum.writable ?? false }

    /// After a crash planned inside background work: start again.
    public func restartAfterCrash(without column: Int? = nil) {
        if let column { crashAndStart(without: column) } else { crash(.kill) }
    }

    /// Kills the process (kill -9) or cuts the power, and starts again with every device.
    public func crash(_ kind: CrashKind) {
        note("crash: \(kind.rawValue)")
        fate.crashKind = kind
        fate.die()
        restart(after: kind)
    }

    /// Kills the process and starts again without `column`'s device.
    public func crashAndStart(without column: Int) {
        guard let rec = record else { return }
        let dev = db?.device(rec.columns[column].activeDevice) as? SimDevice
        note("kill -9, restart with column \(column) missing")
        fate.crashKind = .kill
        fate.die()
        restart(after: .kill, missing: dev)
    }

    /// Kills the process and starts again without the devices of `columns` (RAID-6: two at
    /// once). They stay away until ``healDevices()``.
    public func crashAndStart(without columns: [Int]) {
        guard let rec = record else { return }
        let devs = columns.compactMap { db?.device(rec.columns[$0].activeDevice) as? SimDevice }
        for d in devs.dropFirst() { d.gone = true }
        note("kill -9, restart with columns \(columns) missing")
        fate.crashKind = .kill
        fate.die()
        restart(after: .kill, missing: devs.first)
    }

    /// Stops the engine as SIGTERM does (flush, stop background work, close) and starts again
    /// with every device except `without`.
    public func stopAndStart(without column: Int? = nil) {
        guard let e = engine else { return }
        let dev = column.flatMap { c in record.flatMap { db?.device($0.columns[c].activeDevice) as? SimDevice } }
        note("stop: SIGTERM")
        stopEngine(e)
        restart(after: .kill, missing: dev)
    }

    /// SIGTERM arrives before queued background work (the parity repair) has run: the
    /// server flushes, asks the work to stop, runs what is queued (which sees the stop), closes.
    public func stopBeforeBackground(without column: Int? = nil) {
        guard let e = engine else { return }
        let dev = column.flatMap { c in record.flatMap { db?.device($0.columns[c].activeDevice) as? SimDevice } }
        note("stop: SIGTERM before background work ran")
        if (try? e.flush()) != nil { model.flushed() }
        e.requestStop()
        while !scheduler.pending.isEmpty { scheduler.pending.removeFirst().1() }
        e.close()
        db?.close()
        restart(after: .kill, missing: dev)
    }

    /// Kills the process, runs a read-write command without a server, starts again
    /// (without `column`'s device when given).
    public func commandWithoutServer(without column: Int?) {
        commandWithoutServer()
        if let column { crashAndStart(without: column) }
    }

    /// Runs the queued background work (parity repair, initialisation, resync).
    public func runBackgroundWork() { runBackground(all: true) }

    /// The dirty-region cleaner's timer fires.
    public func cleanerFires() { cleanRegions() }

    /// Injects a fault on `column`'s device.
    public func fail(column c: Int, reads: Bool = false, writes: Bool = false, gone: Bool = false) {
        guard let rec = record, let d = db?.device(rec.columns[c].activeDevice) as? SimDevice else { return }
        d.failReads = reads; d.failWrites = writes; d.gone = gone
        faultedSinceStart.insert(ObjectIdentifier(d))
        note("fault: \(d.path) (column \(c)) reads \(reads ? "fail" : "ok"), writes \(writes ? "fail" : "ok")\(gone ? ", gone" : "")")
        if faultyColumns() >= 2 { model.lossy = true }
    }

    /// Makes reads and/or writes of column `c`'s data area fail (bad sectors over all of it;
    /// its label and state database replica still work), as a disk failing under I/O.
    public func failData(column c: Int, reads: Bool = false, writes: Bool = false) {
        guard let rec = record, let d = db?.device(rec.columns[c].activeDevice) as? SimDevice,
              let dr = db?.config.device(rec.columns[c].activeDevice) else { return }
        let area = dr.dataStartBlock * 512..<d.sizeBytes
        if reads { d.badReads = [area] }
        if writes { d.badWrites = [area] }
        faultedSinceStart.insert(ObjectIdentifier(d))
        note("fault: \(d.path) (column \(c)) data \(reads ? "reads" : "")\(reads && writes ? " and " : "")\(writes ? "writes" : "") fail")
        if faultyColumns() >= 2 { model.lossy = true }
    }

    /// The newest device (a replacement just added).
    public var newestDevice: SimDevice? { devices.last }

    /// Repairs every device's faults (without a restart).
    public func healDevices() { for d in devices { d.heal() } }

    /// Marks the scenario as one where data may legitimately be lost (reads may fail with
    /// EIO; wrong bytes are still a violation).
    public func allowDataLoss() { model.lossy = true }

    /// Reads the whole volume: it must succeed entirely when the volume says Okay.
    public func checkWholeVolume() { checkOkayReadsBack() }

    /// Whether the XOR of every column is zero over `line` (parity consistent on the devices).
    public func parityConsistent(line: Int) -> Bool {
        guard let db, let rec = record else { return false }
        let il = Int(options.interlaceBlocks) * 512
        var acc = [UInt8](repeating: 0, count: il)
        for c in rec.columns {
            guard let d = db.device(c.activeDevice), let dr = db.config.device(c.activeDevice),
                  let bytes = try? d.read(count: il, at: (dr.dataStartBlock * 512) + UInt64(line * il)) else { return false }
            for i in 0..<il { acc[i] ^= bytes[i] }
        }
        return acc.allSatisfy { $0 == 0 }
    }

    /// The trace so far, one operation per line.
    public var traceText: String { trace.joined(separator: "\n") }
}

extension Simulation {
    /// Kills the process and starts again (without `column`'s device when given), with a
    /// second crash of kind `kind` planned at the `n`th device write or flush of that start
    /// (inside the write log's replay, the epoch commit, the label writes): then starts once
    /// more. Returns whether the planned crash happened.
    @discardableResult
    public func crashAndStart(without column: Int?, crashingAtStartOp n: Int, _ kind: CrashKind) -> Bool {
        guard let rec = record else { return false }
        let dev = column.flatMap { db?.device(rec.columns[$0].activeDevice) as? SimDevice }
        note("kill -9, restart\(column.map { " without column \($0)" } ?? ""), crashing (\(kind.rawValue)) at its device op \(n)")
        fate.crashKind = .kill
        fate.die()
        if crashMayTearLines && (degradedNow() || wasDegradedAtOpen) { model.lossy = true }
        scheduler.pending = []
        volumeEngine = nil
        db = nil
        fate.revive()
        fate.crashKind = kind
        fate.crashAt = fate.ops + n
        start(missing: dev)
        let died = fate.dead
        fate.crashAt = nil
        if died { note("  died during the start"); restart(after: kind, missing: dev) }
        return died
    }

    /// Byte ranges of the write log's areas on each original column's device, as
    /// (device, offset, length).
    public var writeLogAreas: [(device: SimDevice, offset: UInt64, length: UInt64)] {
        guard let db, let rec = record, let log = rec.writeLog else { return [] }
        return rec.columns.prefix(rec.originalColumnCount).compactMap { c in
            guard let d = db.device(c.activeDevice) as? SimDevice, let dr = db.config.device(c.activeDevice) else { return nil }
            return (d, (dr.dataStartBlock + rec.columnBlocks) * 512, log.areaBlocks * 512)
        }
    }
}

extension Simulation {
    /// The dedicated log device fails: its writes (or every I/O, `gone`) fail from now on.
    public func failLogDevice(gone: Bool = false) {
        guard let d = logSim else { return }
        if gone { d.gone = true } else { d.failWrites = true }
        note("fault: the log device \(d.path) \(gone ? "disappears" : "refuses writes")")
    }

    /// Kills the process and starts again without the dedicated log device.
    public func crashAndStartWithoutLogDevice() {
        note("kill -9, restart without the log device")
        fate.crashKind = .kill
        fate.die()
        restart(after: .kill, missing: logSim)
    }
}
