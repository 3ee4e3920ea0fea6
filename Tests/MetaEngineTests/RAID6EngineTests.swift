import Foundation
import MetaTestSupport
import MetaDB
import MetaModel
import MetaDevices
@testable import MetaEngine
import Testing

/// RAID-6 in the engine, over memory devices: P and Q kept right by every write path, every
/// pair of failed columns read and written through, rebuilds with a second column away,
/// SVM's states with two parity units, and `check` locating a single wrong unit.
@Suite struct RAID6EngineTests {
    static func filled(columns: Int = 6, interlaceBlocks: UInt64 = 8, seed: UInt64 = 1) throws -> EngineFixture {
        let f = try EngineFixture(type: .raid6, columns: columns, interlaceBlocks: interlaceBlocks, deviceBytes: 96 << 10)
        var rng = SeededRNG(seed: seed)
        try f.fillRandom(&rng)
        return f
    }

    /// Random writes of every size, then a read of everything: the model, and P and Q right.
    static func churn(_ f: EngineFixture, _ rng: inout SeededRNG, writes: Int = 80) throws {
        for _ in 0..<writes {
            let len = Int.random(in: 1...min(40 << 10, f.size), using: &rng) / 512 * 512 + 512
            let off = Int.random(in: 0...((f.size - len) / 512), using: &rng) * 512
            try f.write(off, rng.bytes(len))
        }
    }

    @Test("random reads and writes match the model; P and Q stay right", arguments: [(4, UInt64(1)), (5, 8), (7, 16)])
    func randomIO(_ g: (Int, UInt64)) throws {
        let f = try Self.filled(columns: g.0, interlaceBlocks: g.1, seed: UInt64(g.0))
        #expect(f.volume.sizeBytes == UInt64(g.0 - 2) * (96 << 10) / (g.1 * 512) * g.1 * 512)
        var rng = SeededRNG(seed: 99)
        try Self.churn(f, &rng)
        #expect(try f.mismatches() == 0)
        #expect(try f.parityErrors().isEmpty)
    }

    @Test("every pair of failed columns of a 6-column RAID-6: every byte reads right, writes go on", arguments: 0..<6)
    func everyPairFails(_ a: Int) throws {
        for b in (a + 1)..<6 {
            let f = try Self.filled(seed: UInt64(a * 10 + b))
            f.devices[a].updateFaults { $0.failReads = true; $0.failWrites = true }
            #expect(try f.mismatches() == 0, "column \(a) failed")
            #expect(f.state(ofColumn: a) == .maintenance)
            f.devices[b].updateFaults { $0.failReads = true; $0.failWrites = true }
            #expect(try f.mismatches() == 0, "columns \(a) and \(b) failed")
            #expect(f.state(ofColumn: b) == .maintenance, "a second failure leaves RAID-6 working: Maintenance, not Last Erred")
            #expect(f.store.config.volume(named: f.name)!.derivedState == .needsMaintenance)
            var rng = SeededRNG(seed: UInt64(b))
            try Self.churn(f, &rng, writes: 30)
            #expect(try f.mismatches() == 0, "columns \(a) and \(b) failed, after degraded writes")
            for c in 0..<6 where c != a && c != b { #expect(f.state(ofColumn: c) == .okay) }
        }
    }

    @Test("a third failure is Last Erred: reads that need it fail, none return wrong bytes")
    func thirdFailure() throws {
        let f = try Self.filled()
        for c in [0, 3] {
            f.devices[c].updateFaults { $0.failReads = true; $0.failWrites = true }
            _ = try f.read(0, f.size)
        }
        f.devices[4].updateFaults { $0.failReads = true; $0.failWrites = true }
        let unit = 8 * 512
        var good = 0, failed = 0
        for u in 0..<(f.size / unit) {
            do {
                #expect(try f.read(u * unit, unit) == Array(f.model[(u * unit)..<((u + 1) * unit)]), "unit \(u) returned wrong data")
                good += 1
            } catch { failed += 1 }
        }
        #expect(f.state(ofColumn: 4) == .lastErred)
        #expect(f.store.config.volume(named: f.name)!.derivedState == .lastErred)
        #expect(good > 0 && failed > 0)
    }

    @Test("a column rebuilt while another is away (two targets, one after the other), under writes")
    func rebuildTwo() throws {
        let f = try Self.filled()
        var rng = SeededRNG(seed: 5)
        f.devices[1].updateFaults { $0.failReads = true; $0.failWrites = true }
        f.devices[4].updateFaults { $0.failReads = true; $0.failWrites = true }
        _ = try f.read(0, f.size)
        #expect(f.state(ofColumn: 1) == .maintenance && f.state(ofColumn: 4) == .maintenance)
        for (i, c) in [4, 1].enumerated() {
            let (_, rec) = try f.addDevice("new\(i)")
            try f.startRegeneration(column: c, onto: rec)
            try Self.churn(f, &rng, writes: 10)
            #expect(f.runResync() == .completed)
            #expect(f.state(ofColumn: c) == .okay)
            #expect(try f.mismatches() == 0)
        }
        #expect(try f.parityErrors().isEmpty)
        #expect(f.store.config.volume(named: f.name)!.derivedState == .okay)
    }

    /// Begins the regeneration of columns `a` and `b` onto new devices in one transaction.
    static func startBoth(_ f: EngineFixture, _ a: Int, _ b: Int) throws -> [FaultyDevice] {
        let (da, ra) = try f.addDevice("newA")
        let (db, rb) = try f.addDevice("newB")
        try f.store.commit { cfg in
            _ = try SetModel.apply(.regenerationBegun(volume: f.name, column: a, target: ra.uuid), to: &cfg)
            _ = try SetModel.apply(.regenerationJoined(volume: f.name, column: b, target: rb.uuid, spare: false), to: &cfg)
        }
        try f.raid.reload()
        return [da, db]
    }

    @Test("two columns rebuilt in one pass, under writes; every other column read once")
    func rebuildTwoInOnePass() throws {
        let f = try Self.filled()
        var rng = SeededRNG(seed: 8)
        for c in [0, 3] { f.devices[c].updateFaults { $0.failReads = true; $0.failWrites = true } }
        _ = try f.read(0, f.size)
        let news = try Self.startBoth(f, 0, 3)
        #expect(f.store.config.volume(named: f.name)!.resync?.rebuiltColumns == [0, 3])
        try Self.churn(f, &rng, writes: 10)
        #expect(f.runResync() == .completed)
        #expect(f.state(ofColumn: 0) == .okay && f.state(ofColumn: 3) == .okay)
        #expect(f.store.config.volume(named: f.name)!.resync == nil)
        #expect(try f.mismatches() == 0)
        #expect(try f.parityErrors().isEmpty)
        // Both targets hold their columns: read directly now (Okay), with the two failed
        // devices gone for good, and P and Q agree everywhere.
        #expect(news.count == 2)
    }

    @Test("one of two targets fails mid-pass: the other is finished by the next run")
    func oneOfTwoTargetsFails() throws {
        let f = try Self.filled()
        for c in [2, 5] { f.devices[c].updateFaults { $0.failReads = true; $0.failWrites = true } }
        _ = try f.read(0, f.size)
        let news = try Self.startBoth(f, 2, 5)
        // The second target cannot take the second half of its column.
        let half = (EngineFixture.dataStartBlock * 512) + (48 << 10)
        news[1].updateFaults { $0.badWriteRanges = [half..<(half + (48 << 10))] }
        try f.throttle(bytesPerSecond: .max / 4)
        let first = f.runResync()
        guard case .targetFailed = first else { Issue.record("expected the second target to fail: \(first)"); return }
        #expect(f.state(ofColumn: 5) == .maintenance)
        let r = try #require(f.store.config.volume(named: f.name)!.resync)
        #expect(r.rebuiltColumns == [2])
        #expect(f.runResync() == .completed)
        #expect(f.state(ofColumn: 2) == .okay)
        #expect(f.store.config.volume(named: f.name)!.derivedState == .needsMaintenance)
        #expect(try f.mismatches() == 0)
    }

    @Test("background initialisation computes P and Q")
    func initialize() throws {
        let f = try EngineFixture(type: .raid6, columns: 5, interlaceBlocks: 4, deviceBytes: 64 << 10, init: true)
        var rng = SeededRNG(seed: 77)
        for d in f.devices {
            try rng.bytes(Int(d.sizeBytes)).withUnsafeBytes { try d.base.write($0, at: 0) }
        }
        f.model = try f.read(0, f.size)
        f.raid.startBackgroundWork()
        try Self.churn(f, &rng, writes: 20)
        f.raid.waitForBackgroundWork()
        #expect(try f.parityErrors().isEmpty)
        #expect(try f.mismatches() == 0)
        #expect(f.store.config.volume(named: f.name)!.derivedState == .okay)
    }

    @Test("check locates a wrong data unit, P or Q from the two syndromes; --repair rewrites only it")
    func checkLocates() throws {
        let f = try Self.filled()
        let layout = f.raid.layout
        // Line 2: a data unit; line 5: P; line 7: Q; line 9: two data units (cannot be located).
        let d2 = layout.dataColumn(line: 2, unit: 1)
        try CheckTests.corrupt(f, column: d2, line: 2)
        try CheckTests.corrupt(f, column: layout.parityColumn(line: 5), line: 5)
        try CheckTests.corrupt(f, column: layout.qColumn(line: 7)!, line: 7)
        try CheckTests.corrupt(f, column: layout.dataColumn(line: 9, unit: 0), line: 9)
        try CheckTests.corrupt(f, column: layout.dataColumn(line: 9, unit: 2), line: 9, at: 300)
        #expect(try f.parityErrors() == [2, 5, 7, 9])
        try CheckTests.begin(f, repair: false)
        let found = try CheckTests.run(f)
        #expect(found.counts.mismatches == 4 && found.counts.lines == [2, 5, 7, 9] && found.counts.repaired == 0)
        #expect(found.counts.located == [.init(line: 2, column: d2), .init(line: 5, column: layout.parityColumn(line: 5)),
                                         .init(line: 7, column: layout.qColumn(line: 7)!)])
        #expect(try f.parityErrors() == [2, 5, 7, 9], "a check without --repair writes nothing")

        try CheckTests.begin(f, repair: true)
        let fixed = try CheckTests.run(f)
        #expect(fixed.counts.mismatches == 4 && fixed.counts.repaired == 4)
        #expect(try f.parityErrors().isEmpty)
        try CheckTests.begin(f, repair: false)
        #expect(try CheckTests.run(f).counts == CheckCounts())
        // The located data unit was put back as written; line 9's two flipped bytes stay
        // (nothing can tell which were right): exactly 2 bytes differ from what was written.
        let now = try f.read(0, f.size)
        #expect(zip(now, f.model).filter { $0 != $1 }.count == 2)
    }

    @Test("check rewrites two unreadable units of one line from the rest")
    func checkRewritesTwoUnreadable() throws {
        let f = try Self.filled()
        let off = (EngineFixture.dataStartBlock + 3 * 8) * 512
        var expected: [[UInt8]] = []
        for c in [0, 2] {
            f.devices[c].updateFaults { $0.badReadRanges = [off..<(off + 512)] }
            expected.append(try f.devices[c].base.read(count: 4096, at: off))
            try f.devices[c].base.write(bytes: [UInt8](repeating: 0xEE, count: 4096), at: off)  // what a bad sector "holds"
        }
        try CheckTests.begin(f, repair: false)
        let c = try CheckTests.run(f)
        #expect(c.result == .completed)
        #expect(c.counts.readErrorsRepaired == 2 && c.counts.mismatches == 0)
        #expect(f.state(ofColumn: 0) == .okay && f.state(ofColumn: 2) == .okay, "the columns stay in service")
        for (i, col) in [0, 2].enumerated() {
            #expect(try f.devices[col].base.read(count: 4096, at: off) == expected[i], "rewritten from the other columns")
            f.devices[col].updateFaults { $0.badReadRanges = [] }
        }
        #expect(try f.mismatches() == 0)
    }
}
