import Foundation
import MetaDB
import MetaDevices
import MetaEngine
import MetaModel
import MetaSim
import Testing

/// The RAID-5 write log in the simulator: a crash together with the loss of a column loses
/// nothing acknowledged, and every block reads back its old or its new value; torn records
/// are ignored; a replay cut short by another crash replays again.
@Suite("write log")
struct WriteLogTests {
    /// A RAID-5 with a write log, written end to end and flushed.
    func world(columns: Int = 4, seed: UInt64 = 7, logDevice: Bool = false, raid6: Bool = false) throws -> Simulation {
        var options = SimOptions.scripted(columns: columns, writeLog: true, logDevice: logDevice)
        options.raid6 = raid6  // one column more than `columns`
        let sim = Simulation(seed: seed, options: options)
        try sim.create()
        #expect(sim.volumeRecord?.writeLog?.active == true)
        let total = Int(sim.volume!.sizeBytes / 512)
        var b = 0
        while b < total { sim.write(b..<min(total, b + 96)); b += 96 }
        sim.flush()
        sim.cleanerFires()
        // A clean restart: the log areas start empty in a new epoch, so that no checkpoint
        // (which flushes) falls inside the torn writes of the tests (a flush inside a write
        // that ``Simulation/tornWrite`` then partly undoes would undo durable data).
        sim.stopAndStart()
        return sim
    }

    func noViolation(_ sim: Simulation) {
        if let f = sim.violationFound { Issue.record("\(f)\nfull trace:\n\(sim.traceText)") }
    }

    /// The write hole: line 0 torn by a crash (the parity column kept its old contents), and
    /// a data column does not come back. Without the log its data there would be lost; with
    /// it, the replay completes the line and every block of the missing column reads back.
    @Test func tornLineWithAColumnMissingIsReplayed() throws {
        let sim = try world()
        let p = sim.parityColumn(line: 0)
        let missing = (0..<4).first { $0 != p }!
        sim.tornWrite(0..<sim.lineBlocks, oldOn: [p], startWithout: missing)
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.complete == true)
        #expect(sim.volume?.parityRepairPending == false)
        let b = sim.block(line: 0, column: missing)
        #expect(sim.read(b..<(b + 16)) == true, "the missing column's blocks in the torn line must read back")
        sim.checkWholeVolume()
        noViolation(sim)
    }

    /// RAID-6: a line torn by a crash (P and Q kept their old contents), then a start
    /// without two columns. Each record has two copies, on the first holders from P and
    /// from Q on, so whichever two columns are lost, the line is made whole again (or, with
    /// P and Q both lost, needs nothing): the missing data column's blocks read back. With
    /// one copy (on P's column), losing P and a data column would leave the line torn and
    /// the data column rebuilt from the old Q: wrong bytes.
    @Test(arguments: ["P and a data column", "Q and a data column", "P and Q", "two data columns"])
    func raid6TornLineWithTwoColumnsMissingIsReplayed(_ lost: String) throws {
        let sim = try world(raid6: true)
        #expect(sim.volume?.layout.parityCount == 2)
        let n = sim.volume!.layout.columnCount
        let p = sim.parityColumn(line: 0), q = (p + 1) % n
        let data = (0..<n).filter { $0 != p && $0 != q }
        let missing: [Int] = switch lost {
        case "P and a data column": [p, data[0]]
        case "Q and a data column": [q, data[0]]
        case "P and Q": [p, q]
        default: [data[0], data[1]]
        }
        sim.tornWrite(0..<sim.lineBlocks, oldOn: [p, q], crashing: false)
        sim.crashAndStart(without: missing)
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.complete == true)
        #expect(sim.volume?.parityRepairPending == false)
        for c in missing where data.contains(c) {
            let b = sim.block(line: 0, column: c)
            #expect(sim.read(b..<(b + 16)) == true, "column \(c)'s blocks in the torn line must read back")
        }
        #expect(sim.read(0..<sim.lineBlocks) == true)
        noViolation(sim)
    }

    /// A crash after a write's record was durable and before any of it changed in place,
    /// then a start whose state database turns read-only (too few replicas writable): the
    /// records are replayed all the same before anything is served, so that what reads
    /// return now does not change when a later start (writable) replays them (torture seed
    /// 63010350: the read-only start served the old bytes, the next one replayed the new).
    @Test func readOnlyStartReplaysBeforeServing() throws {
        let sim = try world()
        sim.tornWrite(0..<8, oldOn: [0, 1, 2, 3], crashing: false)
        sim.crashAndStart(replicasUnwritableOn: [1, 2])
        #expect(!sim.setIsWritable)
        #expect(sim.volume != nil)
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.records ?? 0 > 0, "the records are replayed at a read-only start")
        #expect(sim.read(0..<8) == true)
        sim.healDevices()
        sim.crash(.kill)
        #expect(sim.setIsWritable)
        #expect(sim.read(0..<8) == true)
        sim.checkWholeVolume()
        noViolation(sim)
    }

    /// The same, but the replay cannot write the line's parity (its column refuses writes,
    /// and the read-only set cannot record that column's failure): the volume serves no I/O
    /// rather than bytes that the next start's replay would change.
    @Test func readOnlyStartWithAPartialReplayServesNothing() throws {
        let sim = try world()
        let p = sim.parityColumn(line: 0)
        sim.tornWrite(0..<8, oldOn: [0, 1, 2, 3], crashing: false)
        sim.fail(column: p, writes: true)
        sim.crashAndStart(replicasUnwritableOn: [(p + 1) % 4, (p + 2) % 4])
        #expect(!sim.setIsWritable)
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.complete == false)
        #expect(sim.volume?.isClosed == true)
        #expect(sim.read(0..<8) == false)
        sim.healDevices()
        sim.crash(.kill)
        #expect(sim.setIsWritable)
        #expect(sim.read(0..<8) == true)
        sim.checkWholeVolume()
        noViolation(sim)
    }

    /// A write during a copy of its line's parity column, another over the same blocks after
    /// the copy completed, then a crash and a start without that column: the second write
    /// reads back. (Torture seed 68002337, with one copy of each record: the first write's
    /// record outlived the second's on another column and the replay put the old bytes back.
    /// The copy's end now checkpoints the log.)
    @Test func recordsOfACopiedColumnDoNotOutliveNewerOnes() throws {
        let sim = try world()
        let p = sim.parityColumn(line: 0)
        let d = (0..<4).first { $0 != p }!
        let b = sim.block(line: 0, column: d)
        #expect(sim.replace(column: p, .newDevice))
        var wrote = false
        sim.onYield = { _ in
            guard !wrote else { return }
            wrote = true
            sim.write(b..<(b + 8))
        }
        sim.runBackgroundWork()
        sim.onYield = nil
        #expect(wrote)
        #expect(sim.volumeRecord?.resync == nil, "the copy finished")
        sim.write(b..<(b + 8))
        sim.crashAndStart(without: p)
        #expect(sim.read(b..<(b + 8)) == true)
        sim.checkWholeVolume()
        noViolation(sim)
    }

    /// Copies parity column `p` of line 0 onto a new device, one line per step; the source's
    /// data reads fail after the first step (the copy becomes a regeneration), and during the
    /// regeneration line 0 is torn (its parity keeps the old contents); then the process dies.
    func convertCopyThenTearLine0(_ sim: Simulation, parityColumn p: Int) {
        sim.volume!.resyncStepBytes.store(8 << 10, ordering: .relaxed)  // one line per step
        #expect(sim.replace(column: p, .newDevice))
        var steps = 0, torn = false
        sim.onYield = { _ in
            steps += 1
            if steps == 1 {
                sim.failData(column: p, reads: true)  // the copy's source fails after its first step
            } else if !torn, sim.volumeRecord?.resync?.kind == .regenerate {
                torn = true
                sim.tornWrite(0..<sim.lineBlocks, oldOn: [p], crashing: false)
            }
        }
        sim.runBackgroundWork()
        sim.onYield = nil
        #expect(torn, "the copy became a regeneration and line 0 was torn during it")
    }

    /// A copy whose source fails becomes a regeneration onto the target, which is trusted
    /// below the point the copy reached; the column may not hold log records until the
    /// regeneration ends (it could not be made a holder with writes held off), so the records
    /// of the lines whose parity it holds go to the next column. A crash then tears such a
    /// line below that point (its parity kept the old contents), and the next column does not
    /// come back. Its area, with the line's record, is gone: the replay must not call itself
    /// whole, or the missing column's block is rebuilt from the torn parity (wrong bytes).
    @Test func aConvertedCopysRecordsOnALostColumnLeaveTheReplayIncomplete() throws {
        let sim = try world()
        let p = sim.parityColumn(line: 0)
        let next = (p + 1) % 4
        convertCopyThenTearLine0(sim, parityColumn: p)
        sim.crashAndStart(without: next)
        #expect(sim.volumeRecord?.resync?.logExcluded == true)
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.complete == false, "the lost area may have held the line's record")
        let b = sim.block(line: 0, column: next)
        // EIO (two columns out: the source and the missing one), never other bytes.
        #expect(sim.read(b..<(b + 16)) == false, "column \(next)'s block of the torn line")
        noViolation(sim)
    }

    /// The same on RAID-6, where each record has a second copy (after Q): losing the one
    /// column after P leaves it, so the replay is whole and the torn line reads back; losing
    /// both columns that held copies leaves the replay incomplete (EIO, never wrong bytes).
    @Test(arguments: [1, 2])
    func aConvertedCopysRecordsOnRAID6(_ lost: Int) throws {
        let sim = try world(raid6: true)
        let n = 5
        let p = sim.parityColumn(line: 0)
        // The copies lie after P (on Q, the column after P) and after Q: lose the data column
        // after Q alone, or both.
        let missing = lost == 1 ? [(p + 2) % n] : [(p + 1) % n, (p + 2) % n]
        convertCopyThenTearLine0(sim, parityColumn: p)
        sim.crashAndStart(without: missing)
        #expect(sim.volumeRecord?.resync?.logExcluded == true)
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.complete == (lost == 1))
        let dataMissing = missing.filter { sim.block(line: 0, column: $0) >= 0 }
        #expect(!dataMissing.isEmpty)
        for c in dataMissing {
            let b = sim.block(line: 0, column: c)
            let r = sim.read(b..<(b + 16))
            #expect(lost == 1 ? r == true : r != nil, "column \(c)'s block of the torn line")
        }
        noViolation(sim)
    }

    /// A Last Erred column whose partner has been rebuilt is used as an ordinary column, but
    /// healthy columns are preferred for its lines' log records, so they go to the next
    /// column. A crash tearing such a line, then the loss of that next column: the record is
    /// gone with it. The replay must not vouch for the line then; it does not, because the
    /// Last Erred column counts as failed with the missing one (RAID-6 keeps a second copy
    /// of the record after Q). The block reads as EIO, never as bytes no write put there.
    @Test func anOrdinaryLastErredColumnsLinesAreNotVouchedForWithoutTheirRecord() throws {
        let sim = try world()
        let p = sim.parityColumn(line: 0)
        let next = (p + 1) % 4
        let a = (0..<4).first { $0 != p && $0 != next }!
        // Column a fails a write (Maintenance), then column p fails one too (Last Erred).
        let line1 = (1..<8).first { sim.parityColumn(line: $0) != a && sim.parityColumn(line: $0) != p }!
        sim.failData(column: a, writes: true)
        sim.write(sim.block(line: line1, column: a)..<(sim.block(line: line1, column: a) + 4))
        #expect(sim.volumeRecord?.columns[a].state == .maintenance)
        sim.failData(column: p, writes: true)
        sim.write(sim.block(line: line1, column: p)..<(sim.block(line: line1, column: p) + 4))
        #expect(sim.volumeRecord?.columns[p].state == .lastErred)
        // p's device works again; a is replaced and rebuilt: p is Last Erred but ordinary.
        sim.healDevices()
        #expect(sim.replace(column: a, .newDevice))
        sim.runBackgroundWork()
        #expect(sim.volumeRecord?.columns[a].state == .okay)
        #expect(sim.volumeRecord?.columns[p].state == .lastErred)
        sim.tornWrite(0..<sim.lineBlocks, oldOn: [p], crashing: false)
        sim.crashAndStart(without: next)
        let b = sim.block(line: 0, column: next)
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.complete == false)
        #expect(sim.read(b..<(b + 16)) == false, "column \(next)'s block of the torn line: EIO")
        noViolation(sim)
    }

    /// Every column kept its old contents (the crash came before any in-place write) and the
    /// log record itself is torn (one sector of its payload in each copy never written): the
    /// record is recognised as torn and ignored, and the old values read back.
    @Test func tornRecordIsIgnored() throws {
        let sim = try world()
        let areas = sim.writeLogAreas
        let p = sim.parityColumn(line: 0)
        let missing = (0..<4).first { $0 != p }!
        sim.tornWrite(0..<8, oldOn: [0, 1, 2, 3], crashing: false)
        // The run's first record moved the epoch on (a commit, before the record).
        let epoch = try #require(sim.volumeRecord?.writeLog?.epoch)
        var torn = 0
        for a in areas {
            let head = a.device.peek(count: 4096, at: a.offset)
            guard head.withUnsafeBytes({ LogRecord.decodeHeader($0) })?.record.epoch == epoch else { continue }
            // Sector 2 of the payload: garbage, as if the write never reached it.
            a.device.poke([UInt8](repeating: 0xA5, count: 512), at: a.offset + 4096 + 1024)
            torn += 1
        }
        #expect(torn == 1, "the record is written once, to the line's parity column")
        #expect(areas[p].device.peek(count: 4096, at: areas[p].offset).withUnsafeBytes({ LogRecord.decodeHeader($0) })?.record.epoch == epoch)
        sim.restartAfterCrash(without: missing)
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.records == 0, "a torn record is not replayed")
        sim.checkWholeVolume()
        noViolation(sim)
    }

    /// A replay interrupted by a second crash (power loss or kill -9) at each of the first
    /// device writes of the start replays again, and then every block is right.
    @Test(arguments: [CrashKind.kill, .powerLoss])
    func interruptedReplayReplaysAgain(_ kind: CrashKind) throws {
        var died = 0
        for n in 1...24 {
            let sim = try world()
            let p = sim.parityColumn(line: 5)
            let missing = (0..<4).first { $0 != p }!
            let first = 5 * sim.lineBlocks
            sim.tornWrite(first..<(first + sim.lineBlocks + 40), oldOn: [p], crashing: false)
            if sim.crashAndStart(without: missing, crashingAtStartOp: n, kind) { died += 1 }
            sim.checkWholeVolume()
            noViolation(sim)
            if sim.violationFound != nil { break }
        }
        #expect(died > 10, "the planned crashes must hit the start")
    }

    /// Many writes fill the small log areas over and over (each time a checkpoint makes the
    /// writes durable and moves the epoch on); a crash then tears a line with a column lost.
    @Test func areasAreReusedAndStillReplay() throws {
        let sim = try world()
        for i in 0..<200 { sim.write((i * 13 % 300)..<(i * 13 % 300 + 24)) }
        let counters = try #require(sim.volume?.writeLogCounters)
        #expect(counters.checkpoints > 3)
        let p = sim.parityColumn(line: 2)
        let missing = (0..<4).first { $0 != p }!
        let first = 2 * sim.lineBlocks
        sim.tornWrite((first + 3)..<(first + 20), oldOn: [p], startWithout: missing)
        sim.checkWholeVolume()
        noViolation(sim)
    }

    /// With a dedicated log device: the torn line's record is there (one copy), and the
    /// replay with a column missing makes it whole.
    @Test func logDeviceHoldsTheRecords() throws {
        let sim = try world(logDevice: true)
        #expect(sim.volumeRecord?.writeLog?.device != nil)
        let p = sim.parityColumn(line: 3)
        let missing = (0..<4).first { $0 != p }!
        let first = 3 * sim.lineBlocks
        sim.tornWrite(first..<(first + sim.lineBlocks), oldOn: [p], startWithout: missing)
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.complete == true)
        // Nothing went to the columns' areas: the record was on the device alone.
        for a in sim.writeLogAreas {
            let head = a.device.peek(count: 4096, at: a.offset)
            let epoch = sim.volumeRecord?.writeLog?.epoch ?? 0
            #expect(head.withUnsafeBytes({ LogRecord.decodeHeader($0) })?.record.epoch != epoch - 1)
        }
        sim.checkWholeVolume()
        noViolation(sim)
    }

    /// The log device fails while the volume is written: the failure is recorded, records
    /// go to the columns' areas, and a crash with a column missing still loses nothing.
    @Test func failedLogDeviceFallsBackToTheColumns() throws {
        let sim = try world(logDevice: true)
        sim.failLogDevice()
        #expect(sim.write(0..<24), "a write must not fail because the log device did")
        #expect(sim.volumeRecord?.writeLog?.deviceFailed == true)
        #expect(sim.volumeRecord?.writeLog?.active == true)
        let p = sim.parityColumn(line: 1)
        let missing = (0..<4).first { $0 != p }!
        let first = sim.lineBlocks
        sim.tornWrite(first..<(first + sim.lineBlocks), oldOn: [p], startWithout: missing)
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.complete == true)
        sim.checkWholeVolume()
        noViolation(sim)
    }

    /// The log device is gone at the start after a crash: its records cannot be replayed,
    /// so the dirty regions stay untrusted (the parity repair takes over, every column being
    /// there) and nothing reads wrong.
    @Test func missingLogDeviceAtStartKeepsRegionsUntrusted() throws {
        let sim = try world(logDevice: true)
        let p = sim.parityColumn(line: 2)
        sim.tornWrite((2 * sim.lineBlocks)..<(3 * sim.lineBlocks), oldOn: [p], crashing: false)
        sim.crashAndStartWithoutLogDevice()
        #expect(sim.volume?.writeLogReplay.withLock { $0 }?.complete == false)
        #expect(sim.volumeRecord?.writeLog?.repairPending == true)
        sim.runBackgroundWork()
        #expect(sim.volume?.parityRepairPending == false)
        #expect(sim.volumeRecord?.writeLog?.repairPending == nil, "the repair clears it")
        sim.checkWholeVolume()
        noViolation(sim)
    }

    /// Schedules with the write log always on.
    @Test(arguments: 0..<2)
    func sweepWithTheLog(batch: Int) throws {
        var o = SimOptions()
        o.writeLog = true
        o.logDevice = batch == 1
        o.volumeType = .raid5
        for seed in UInt64(batch * 40)..<UInt64(batch * 40 + 40) {
            let sim = Simulation(seed: 9_000_000 + seed, options: o)
            do { try sim.run() } catch { Issue.record("\(error)") ; return }
        }
    }
}

@Suite("write log records")
struct LogRecordTests {
    let id = UUID()
    func sealed(_ r: LogRecord) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: r.recordBytes)
        buf.withUnsafeMutableBytes { b in
            for i in LogRecord.headerBytes..<(LogRecord.headerBytes + r.payloadBytes) { b[i] = UInt8(truncatingIfNeeded: i * 7) }
            r.seal(b)
        }
        return buf
    }

    @Test func roundTrip() throws {
        let r = LogRecord(logID: id, epoch: 9, seq: 77, segments: [.init(column: 1, columnBlock: 128, blocks: 8),
                                                                   .init(column: 3, columnBlock: 128, blocks: 3)])
        #expect(r.recordBytes == 4096 + 8192)
        let bytes = sealed(r)
        let (back, crc) = try #require(bytes.withUnsafeBytes { LogRecord.decodeHeader($0) })
        #expect(back == r)
        #expect(bytes.withUnsafeBytes { LogRecord.payloadMatches(UnsafeRawBufferPointer(rebasing: $0[4096..<(4096 + r.payloadBytes)]), crc: crc) })
        let found = bytes.withUnsafeBytes { LogRecord.scan($0, logID: id, epoch: 9) }
        #expect(found.count == 1 && found.first?.payloadOffset == 4096)
        #expect(bytes.withUnsafeBytes { LogRecord.scan($0, logID: id, epoch: 8) }.isEmpty, "another epoch")
        #expect(bytes.withUnsafeBytes { LogRecord.scan($0, logID: UUID(), epoch: 9) }.isEmpty, "another log")
    }

    /// Any one 512-byte sector of a record left unwritten (garbage or zeroes) makes the scan
    /// skip it; a whole record after it is still found.
    @Test func everyTornSectorIsDetected() throws {
        let r = LogRecord(logID: id, epoch: 2, seq: 5, segments: [.init(column: 0, columnBlock: 0, blocks: 16)])
        let next = LogRecord(logID: id, epoch: 2, seq: 6, segments: [.init(column: 2, columnBlock: 16, blocks: 1)])
        let whole = sealed(r)
        let payloadSectors = (4096 + r.payloadBytes) / 512
        for s in 0..<payloadSectors {
            for fill: UInt8 in [0, 0xFF] {
                var torn = whole
                for i in (s * 512)..<(s * 512 + 512) { torn[i] = fill }
                if torn == whole { continue }
                let area = torn + sealed(next)
                let found = area.withUnsafeBytes { LogRecord.scan($0, logID: id, epoch: 2) }
                #expect(found.map(\.record.seq) == [6], "sector \(s) torn (\(fill))")
            }
        }
    }

    /// Headers that lie about their payload or carry nonsense are refused, not trusted.
    @Test func malformedHeadersAreRefused() throws {
        let r = LogRecord(logID: id, epoch: 1, seq: 1, segments: [.init(column: 0, columnBlock: 0, blocks: 1)])
        var bytes = sealed(r)
        // A declared payload size that disagrees with the segments (re-checksummed).
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: UInt64(1 << 40).littleEndian, toByteOffset: 56, as: UInt64.self)
            b.storeBytes(of: UInt32(0), toByteOffset: 8, as: UInt32.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<4096]))
            b.storeBytes(of: crc.littleEndian, toByteOffset: 8, as: UInt32.self)
        }
        #expect(bytes.withUnsafeBytes { LogRecord.decodeHeader($0) } == nil)
        #expect([UInt8](repeating: 0, count: 8192).withUnsafeBytes { LogRecord.scan($0, logID: id, epoch: 1) }.isEmpty)
    }
}
