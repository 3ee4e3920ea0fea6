import Foundation
import MetaTestSupport
import MetaDB
import MetaModel
import MetaDevices
@testable import MetaEngine
import Synchronization
import Testing

@Suite("dirty-region log (write hole)")
struct DirtyRegionTests {
    @Test("a region is committed dirty before its first write and cleaned after a flush")
    func dirtyBeforeWrite() throws {
        let seen = Mutex<[String]>([])
        let f = try EngineFixture(type: .raid5, columns: 3, interlaceBlocks: 8, onCommit: { cfg in
            seen.withLock { $0.append("commit dirty=\(cfg.volumes[0].dirtyRegions)") }
        })
        #expect(f.store.config.volumes[0].dirtyRegions.isEmpty)
        try f.write(4096, [UInt8](repeating: 7, count: 4096))
        #expect(f.store.config.volumes[0].dirtyRegions == [0])
        #expect(seen.withLock { $0 }.first == "commit dirty=[0]")
        // Further writes to a dirty region commit nothing.
        let commits = f.store.commitCount
        try f.write(8192, [UInt8](repeating: 8, count: 4096))
        #expect(f.store.commitCount == commits)
        #expect(f.raid.cleanDirtyRegions(all: true) == 1)
        #expect(f.store.config.volumes[0].dirtyRegions.isEmpty)
        #expect(f.devices.allSatisfy { ($0.base as! MemoryDevice).flushCount > 0 })
    }

    /// Leaves line 2's parity stale, as a crash between the data and parity writes would.
    func tearParity(_ f: EngineFixture, line: UInt64) throws {
        let p = f.raid.layout.parityColumn(line: line)
        let at = (EngineFixture.dataStartBlock + line * 8) * 512
        try f.devices[p].base.write(bytes: [UInt8](repeating: 0x5A, count: 4096), at: at)
    }

    func reopen(_ f: EngineFixture) throws -> RAID5Volume {
        try VolumeFactory.open(f.store.config.volume(named: "d10")!, context: f.raid.context) as! RAID5Volume
    }

    @Test("after a crash, dirty regions get their parity recomputed before degraded reads")
    func repairAfterCrash() throws {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 8)
        var rng = SeededRNG(seed: 21)
        try f.fillRandom(&rng)
        // Crash: region 0 is still marked dirty and one line's parity never landed.
        try f.store.commit { $0.volumes[0].dirtyRegions = [0] }
        try tearParity(f, line: 2)
        #expect(try f.parityErrors() == [2])
        let v = try reopen(f)
        #expect(v.parityRepairPending)
        v.startBackgroundWork()
        v.waitForBackgroundWork()
        #expect(!v.parityRepairPending)
        #expect(try f.parityErrors().isEmpty)
        // Now a column fails: reconstruction is right.
        let dataCol = f.raid.layout.dataColumn(line: 2, unit: 0)
        f.devices[dataCol].updateFaults { $0.failReads = true; $0.failWrites = true }
        var out = [UInt8](repeating: 0, count: f.size)
        try out.withUnsafeMutableBytes { try v.read(offset: 0, into: $0) }
        #expect(out == f.model)
    }

    @Test("without the log the same torn line would reconstruct wrong data (control)")
    func controlWithoutLog() throws {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 8)
        var rng = SeededRNG(seed: 22)
        try f.fillRandom(&rng)
        _ = f.raid.cleanDirtyRegions(all: true)
        try tearParity(f, line: 2)
        let v = try reopen(f)
        #expect(!v.parityRepairPending)
        let dataCol = f.raid.layout.dataColumn(line: 2, unit: 0)
        f.devices[dataCol].updateFaults { $0.failReads = true; $0.failWrites = true }
        var out = [UInt8](repeating: 0, count: f.size)
        try out.withUnsafeMutableBytes { try v.read(offset: 0, into: $0) }
        #expect(out != f.model)
    }

    @Test("an unrepaired dirty region fails degraded reads instead of returning wrong data")
    func unrepairedFailsSafe() throws {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 8)
        var rng = SeededRNG(seed: 23)
        try f.fillRandom(&rng)
        try f.store.commit { $0.volumes[0].dirtyRegions = [0] }
        try tearParity(f, line: 2)
        let dataCol = f.raid.layout.dataColumn(line: 2, unit: 0)
        f.devices[dataCol].updateFaults { $0.failReads = true; $0.failWrites = true }
        let v = try reopen(f)
        // Degraded before repair: the repair cannot run (a column is missing for reads).
        let lineBytes = 3 * 8 * 512
        #expect(throws: VolumeIOError.self) {
            var out = [UInt8](repeating: 0, count: lineBytes)
            try out.withUnsafeMutableBytes { try v.read(offset: UInt64(2 * lineBytes), into: $0) }
        }
    }
}
