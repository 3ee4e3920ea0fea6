import Foundation
import MetaDevices
import MetaEngine
import MetaModel
import MetaTestSupport
import Testing

/// `metactl check` in the engine, over memory devices: mismatches found and recorded,
/// repaired on request, unreadable units rewritten from the other columns, and a check
/// that cannot go on abandoned without touching the data.
@Suite struct CheckTests {
    /// A filled 4-column RAID-5 (16 lines of 4 KiB units) with a check record begun.
    static func filled(repair: Bool, seed: UInt64 = 7) throws -> EngineFixture {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 8, deviceBytes: 64 << 10)
        var rng = SeededRNG(seed: seed)
        try f.fillRandom(&rng)
        try begin(f, repair: repair)
        return f
    }

    static func begin(_ f: EngineFixture, repair: Bool) throws {
        let r5 = f.volume as! RAID5Volume
        try f.store.apply(.checkBegun(volume: f.name, repair: repair, totalLines: r5.layout.lineCount, at: Date()))
    }

    /// Runs the begun check to its end and returns its record.
    static func run(_ f: EngineFixture) throws -> CheckRecord {
        let r5 = f.volume as! RAID5Volume
        r5.startCheck()
        let deadline = Date().addingTimeInterval(60)
        while f.store.config.volume(named: f.name)?.check?.running == true && Date() < deadline { usleep(2_000) }
        r5.waitForBackgroundWork()
        return try #require(f.store.config.volume(named: f.name)?.check)
    }

    /// Flips a byte of column `c`'s unit of `line` on the device itself (behind the engine).
    static func corrupt(_ f: EngineFixture, column c: Int, line: UInt64, at byte: Int = 100) throws {
        let dev = f.devices[c].base
        let off = (EngineFixture.dataStartBlock + line * 8) * 512 + UInt64(byte)
        var b = try dev.read(count: 512, at: off / 512 * 512)
        b[Int(off % 512)] ^= 0x5A
        try dev.write(bytes: b, at: off / 512 * 512)
    }

    @Test func aCleanVolumeChecksClean() throws {
        let f = try Self.filled(repair: false)
        let c = try Self.run(f)
        #expect(c.result == .completed && !c.running)
        #expect(c.doneLines == 16 && c.totalLines == 16)
        #expect(c.counts == CheckCounts())
        #expect(try f.mismatches() == 0)
    }

    @Test func mismatchesAreCountedAndOnlyRepairedWhenAsked() throws {
        let f = try Self.filled(repair: false)
        // Data of line 3 (column 0 holds data there unless it is the parity) and parity of line 9.
        try Self.corrupt(f, column: 0, line: 3)
        let r5 = f.volume as! RAID5Volume
        try Self.corrupt(f, column: r5.layout.parityColumn(line: 9), line: 9)
        let before = try f.parityErrors()
        #expect(before == [3, 9])
        let found = try Self.run(f)
        #expect(found.result == .completed)
        #expect(found.counts.mismatches == 2 && found.counts.lines == [3, 9] && found.counts.repaired == 0)
        #expect(try f.parityErrors() == [3, 9], "a check without --repair writes nothing")

        try Self.begin(f, repair: true)
        let fixed = try Self.run(f)
        #expect(fixed.counts.mismatches == 2 && fixed.counts.repaired == 2)
        #expect(try f.parityErrors() == [])
        // The data was kept: line 9's data reads as written; line 3's reads as it is on the
        // device now (RAID-5 cannot tell which unit was wrong), and parity agrees with it.
        try Self.begin(f, repair: false)
        #expect(try Self.run(f).counts == CheckCounts())
        #expect(f.state(ofColumn: 0) == .okay)
        // What reads return: line 3's flipped data byte (one byte, unless column 0 holds
        // line 3's parity), nothing else changed; and with column 1 failed, the degraded
        // reads rebuild exactly the same bytes from the repaired parity.
        let healthy = try f.read(0, f.size)
        let differing = zip(healthy, f.model).filter { $0 != $1 }.count
        #expect(differing == (r5.layout.parityColumn(line: 3) == 0 ? 0 : 1))
        f.devices[1].updateFaults { $0.failReads = true }
        let degraded = try f.read(0, f.size)
        #expect(degraded == healthy)
    }

    @Test func anUnreadableUnitIsRewrittenFromTheOthers() throws {
        let f = try Self.filled(repair: false)
        // Column 2 cannot read the unit of line 5 (a bad sector) until it is rewritten.
        let off = (EngineFixture.dataStartBlock + 5 * 8) * 512
        f.devices[2].updateFaults { $0.badReadRanges = [off..<(off + 512)] }
        let expected = try f.devices[2].base.read(count: 4096, at: off)
        try f.devices[2].base.write(bytes: [UInt8](repeating: 0xEE, count: 4096), at: off)  // what a bad sector "holds"
        let c = try Self.run(f)
        #expect(c.result == .completed)
        #expect(c.counts.readErrorsRepaired == 1 && c.counts.mismatches == 0)
        #expect(try f.devices[2].base.read(count: 4096, at: off) == expected, "rewritten from the other columns")
        #expect(f.state(ofColumn: 2) == .okay, "the column stays in service")
        f.devices[2].updateFaults { $0.badReadRanges = [] }  // the rewrite remapped the sector
        #expect(try f.mismatches() == 0)
    }

    @Test func twoUnreadableUnitsInALineAbandonTheCheck() throws {
        let f = try Self.filled(repair: true)
        let off = (EngineFixture.dataStartBlock + 6 * 8) * 512
        for c in [1, 3] { f.devices[c].updateFaults { $0.badReadRanges = [off..<(off + 512)] } }
        let c = try Self.run(f)
        #expect(c.result == .abandoned && !c.running)
        #expect(c.failure == "columns 1 and 3 could not read line 6")
        #expect(c.doneLines <= 6)
        #expect(f.state(ofColumn: 1) != .okay || f.state(ofColumn: 3) != .okay)
    }

    @Test func aCheckIsRefusedUnlessEveryColumnIsOkay() throws {
        let f = try EngineFixture(type: .raid5, columns: 3, interlaceBlocks: 8, deviceBytes: 32 << 10)
        f.devices[0].updateFaults { $0.failReads = true }
        _ = try? f.read(0, 4096)
        #expect(f.state(ofColumn: 0) == .maintenance)
        #expect(throws: ModelError.self) { try Self.begin(f, repair: false) }
        #expect(f.store.config.volume(named: f.name)?.check == nil)
    }

    @Test func aStoppedCheckEndsStoppedAndKeepsItsCounts() throws {
        let f = try Self.filled(repair: false)
        try Self.corrupt(f, column: 0, line: 1)
        let r5 = f.volume as! RAID5Volume
        // One line a step at 64 KiB/s per column: 16 lines take about a second.
        _ = try f.store.commit { $0.volumes[0].resyncRate = ResyncRate(minBytesPerSecond: 64 << 10, maxBytesPerSecond: 64 << 10) }
        r5.resyncStepBytes.store(4096, ordering: .relaxed)
        r5.startCheck()
        let deadline = Date().addingTimeInterval(30)
        while (r5.checkProgress.withLock { $0?.done } ?? 0) < 3 && Date() < deadline { usleep(1_000) }
        r5.stopCheck()
        r5.waitForBackgroundWork()
        let s = try #require(f.store.config.volume(named: f.name)?.check)
        #expect(!s.running && s.result == .stopped)
        #expect(s.doneLines >= 3 && s.doneLines < 16, "\(s.doneLines)")
        #expect(s.counts.mismatches == 1 && s.counts.lines == [1], "the counts so far are kept")
        #expect(s.endedAt != nil)
        // A stop asked before a check starts does not stop the next one.
        r5.stopCheck()
        _ = try f.store.commit { $0.volumes[0].resyncRate = nil }
        try Self.begin(f, repair: false)
        let next = try Self.run(f)
        #expect(next.result == .completed && next.doneLines == 16)
    }
}
