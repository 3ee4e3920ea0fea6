import Foundation
import MetaControl
import MetaDB
import MetaModel
import MetaEngine
import MetaSim
import Testing

/// The correctness review's reproductions (shared/reviews/correctness-2026-11-30.md,
/// scripts A–H), run in the simulator: the same engine and state database over simulated
/// devices, every read checked against the model of what may legally be there.
@Suite("Review reproductions")
struct ReviewReproductionTests {
    /// A 3-column RAID-5 (16-block interlace, 48 lines, 8 lines per dirty region), written
    /// end to end and flushed.
    func world(columns: Int = 3) throws -> Simulation {
        // The review's bugs are about the dirty-region log alone (WriteLogTests covers the log).
        let sim = Simulation(seed: 1, options: .scripted(columns: columns, writeLog: false))
        try sim.create()
        let total = Int(sim.volume!.sizeBytes / 512)
        var b = 0
        while b < total { sim.write(b..<min(total, b + 96)); b += 96 }
        sim.flush()
        sim.cleanerFires()
        #expect(sim.volumeRecord?.dirtyRegions == [])
        return sim
    }

    func noViolation(_ sim: Simulation) {
        if let f = sim.violationFound { Issue.record("\(f)\nfull trace:\n\(sim.traceText)") }
        if ProcessInfo.processInfo.environment["METACTL_SIM_TRACE"] != nil { print(sim.traceText) }
    }

    /// Line 0 torn by a crash: columns 0 and 1 took a write, parity did not.
    func tearLine0(_ sim: Simulation, startWithout: Int? = nil) {
        let p = sim.parityColumn(line: 0)
        sim.tornWrite(0..<sim.lineBlocks, oldOn: [p], startWithout: startWithout)
    }

    /// A (bug 1a): the cleaner timer must not commit a crash-dirty region clean while its
    /// parity repair is impossible (a column missing); reads needing that parity keep failing.
    @Test func cleanerKeepsUnrepairedRegions() throws {
        let sim = try world()
        let dataCol = (0..<3).first { $0 != sim.parityColumn(line: 0) }!
        let b = sim.block(line: 0, column: dataCol)
        tearLine0(sim, startWithout: dataCol)
        sim.runBackgroundWork()
        #expect(sim.read(b..<(b + 8)) == false, "a block of the missing column in a torn line must fail")
        sim.cleanerFires()
        #expect(sim.volumeRecord?.dirtyRegions.contains(0) == true, "the unrepaired region must stay in the log")
        sim.stopAndStart(without: dataCol)
        #expect(sim.read(b..<(b + 8)) == false, "after a clean restart the region is still untrusted")
        noViolation(sim)
    }

    /// B (bug 1c): a read-write command without a server after a crash must not erase the log.
    @Test func commandWithoutServerKeepsTheLog() throws {
        let sim = try world()
        let dataCol = (0..<3).first { $0 != sim.parityColumn(line: 0) }!
        let b = sim.block(line: 0, column: dataCol)
        tearLine0(sim)
        sim.commandWithoutServer(without: dataCol)
        #expect(sim.volumeRecord?.dirtyRegions.contains(0) == true)
        #expect(sim.read(b..<(b + 8)) == false)
        noViolation(sim)
    }

    /// G (bug 1b): SIGTERM before the start-up repair ran must leave the regions dirty, and
    /// the next start repairs them: then a column can fail and its data is rebuilt right.
    @Test func stopDuringRepairKeepsTheLog() throws {
        let sim = try world()
        tearLine0(sim)
        sim.stopBeforeBackground()
        #expect(sim.volumeRecord?.dirtyRegions.contains(0) == true)
        sim.runBackgroundWork()
        #expect(sim.parityConsistent(line: 0))
        let dataCol = (0..<3).first { $0 != sim.parityColumn(line: 0) }!
        sim.fail(column: dataCol, gone: true)
        let b = sim.block(line: 0, column: dataCol)
        #expect(sim.read(b..<(b + 16)) == true)
        noViolation(sim)
    }

    /// E (bug 2): regenerating the missing column over a torn, unrepaired line must not turn
    /// EIO into wrong bytes: the blocks are recorded lost, reads keep failing across restarts,
    /// the volume is not Okay, and a rewrite makes them good again.
    @Test func regenerationRecordsLostBlocks() throws {
        let sim = try world()
        let dataCol = (0..<3).first { $0 != sim.parityColumn(line: 0) }!
        let b = sim.block(line: 0, column: dataCol)
        tearLine0(sim, startWithout: dataCol)
        sim.runBackgroundWork()
        #expect(sim.read(b..<(b + 8)) == false)
        #expect(sim.replace(column: dataCol, .newDevice))
        sim.runBackgroundWork()
        #expect(sim.volumeRecord?.resync == nil, "the regeneration finished")
        let lost = sim.volumeRecord?.lostBlocks ?? []
        #expect(lost == [LostRange(column: dataCol, start: 0, count: 8 * 16)], "exactly the torn line's region of that column")
        #expect(sim.volumeRecord?.derivedState == .lastErred)
        #expect(sim.read(b..<(b + 8)) == false, "lost blocks read as EIO, not as rebuilt garbage")
        // status --json lists them in volume bytes: dataCol's units of lines 0-7 where it holds data.
        let report = StatusReport.make(config: sim.setConfig!, quorum: Quorum(readable: 3, total: 3), live: true,
                                       devicePaths: { _ in nil }, present: { _ in true }, progress: { _ in nil },
                                       openCount: { _ in nil })
        let v = report.volumes[0]
        let expected = (0..<8).filter { sim.parityColumn(line: $0) != dataCol }
            .map { StatusReport.Extent(offsetBytes: UInt64(sim.block(line: $0, column: dataCol)) * 512, lengthBytes: 16 * 512) }
        #expect(v.lost == expected)
        #expect(v.lostBytes == UInt64(expected.count) * 16 * 512)
        #expect(v.state == "Last Erred")
        #expect(v.invoke?.contains("restore the lost ranges") == true)
        sim.crash(.kill)
        #expect(sim.read(b..<(b + 8)) == false, "and still after a restart")
        #expect(sim.write(b..<(b + 16)))
        #expect(sim.read(b..<(b + 16)) == true, "a rewritten block reads back")
        noViolation(sim)
    }

    /// F (bug 3): a crash during a copy, with a torn line below the copy point whose parity
    /// lives on the copied column: the repaired parity must reach the target too.
    @Test func copyAfterCrashCarriesRepairedParity() throws {
        let sim = try world()
        // Line 2's parity column is the one copied.
        let copied = sim.parityColumn(line: 2)
        sim.volume!.resyncStepBytes.store(8 << 10, ordering: .relaxed)  // one line per step
        #expect(sim.replace(column: copied, .newDevice))
        var steps = 0
        sim.onYield = { _ in
            steps += 1
            guard steps == 6 else { return }
            // Lines 0-5 are copied; line 2 is torn: its data took a write, its parity (on the
            // source and the target) did not.
            sim.tornWrite(2 * sim.lineBlocks..<(3 * sim.lineBlocks), oldOn: [copied], crashing: false)
        }
        sim.runBackgroundWork()
        sim.onYield = nil
        sim.restartAfterCrash()
        sim.runBackgroundWork()
        #expect(sim.volumeRecord?.resync == nil, "the copy finished")
        #expect(sim.parityConsistent(line: 2), "the copy target holds the repaired parity")
        let other = (0..<3).first { $0 != copied }!
        sim.fail(column: other, gone: true)
        let b = sim.block(line: 2, column: other)
        #expect(sim.read(b..<(b + 16)) == true)
        noViolation(sim)
    }

    /// Review item 7: a mirrored write that fails on the copy target after the last copy step
    /// must not let the copy complete (the target would become the column without that write).
    @Test func copyTargetFailingAtTheEndAbandonsTheCopy() throws {
        let sim = try world()
        sim.volume!.resyncStepBytes.store(8 << 10, ordering: .relaxed)  // one line per step
        #expect(sim.replace(column: 0, .newDevice))
        let lines = 48
        var steps = 0
        sim.onYield = { _ in
            steps += 1
            guard steps == lines else { return }
            // Every line is copied; the target now refuses writes, and a write to column 0 lands.
            sim.newestDevice?.badWrites = [0..<(1 << 40)]  // writes fail, flushes still work
            let b = sim.block(line: 5, column: 0) >= 0 ? sim.block(line: 5, column: 0) : sim.block(line: 6, column: 0)
            sim.write(b..<(b + 16))
        }
        sim.runBackgroundWork()
        sim.onYield = nil
        #expect(sim.volumeRecord?.resync == nil)
        #expect(sim.setConfig?.device(sim.volumeRecord!.columns[0].device)?.lastPath == "sim0", "the column stays on its source")
        sim.healDevices()
        sim.checkWholeVolume()
        noViolation(sim)
    }

    /// C (bug 4): Last Erred, a write whose parity write fails: reconstructing another
    /// column's block of that line must fail, never return new data XOR old parity.
    @Test func failedParityWriteIsNotReconstructedFrom() throws {
        let sim = try world()
        let p = sim.parityColumn(line: 0)
        let data = (0..<3).filter { $0 != p }
        let (a, b) = (data[0], data[1])
        sim.fail(column: a, writes: true)
        let a3 = sim.block(line: 3, column: a) >= 0 ? sim.block(line: 3, column: a) : sim.block(line: 4, column: a)
        #expect(sim.write(a3..<(a3 + 8)), "one failed column: the write succeeds degraded")
        #expect(sim.volumeRecord?.columns[a].state == .maintenance)
        sim.fail(column: p, writes: true)
        let bb = sim.block(line: 0, column: b)
        #expect(sim.write(bb..<(bb + 8)) == false, "the parity write fails: EIO")
        let ab = sim.block(line: 0, column: a)
        #expect(sim.read(ab..<(ab + 8)) != true || sim.violationFound == nil)
        noViolation(sim)
    }

    /// H (bug 6): a regeneration's checkpoints and its completion vouch for data that must be
    /// durable: a power loss right after the column is Okay must not lose the rebuilt data.
    @Test func regenerationSurvivesPowerLoss() throws {
        let sim = try world()
        sim.fail(column: 1, gone: true)
        sim.write(0..<200)
        sim.flush()
        #expect(sim.replace(column: 1, .newDevice))
        sim.volume!.resyncStepBytes.store(32 << 10, ordering: .relaxed)
        sim.runBackgroundWork()
        #expect(sim.volumeRecord?.columns[1].state == .okay)
        sim.crash(.powerLoss)
        sim.checkWholeVolume()
        noViolation(sim)
    }
}
