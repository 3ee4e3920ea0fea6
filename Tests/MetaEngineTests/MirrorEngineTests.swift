import Foundation
import Testing
import MetaDB
import MetaDevices
import MetaTestSupport
import MetaEngine
import MetaModel

/// A mirror of two one-device concats on memory devices: reads by policy, read errors
/// answered from the other side and rewritten, write failures, offline/online with only the
/// written regions resynced, and the resync of a crash's dirty regions.
@Suite("Mirror engine")
struct MirrorEngineTests {
    static let sideBytes: UInt64 = 8 << 20
    static let regionBlocks: UInt64 = 2048  // 1 MiB: one resync chunk per region

    final class Rig: @unchecked Sendable {
        let store: InMemoryConfigStore
        let devices: [FaultyDevice]
        let sides: [Volume]
        var mirror: MirrorVolume
        let context: VolumeContext

        init(states: [SubmirrorState] = [.okay, .okay], read: MirrorReadPolicy = .roundrobin) throws {
            var devs: [FaultyDevice] = []
            var records: [DeviceRecord] = []
            var vols: [VolumeRecord] = []
            for i in 0..<states.count {
                let mem = MemoryDevice(path: "mem\(i)", sizeBytes: MirrorEngineTests.sideBytes + 8 * 512)
                devs.append(FaultyDevice(mem))
                let rec = DeviceRecord(uuid: UUID(), lastPath: "mem\(i)", sizeBytes: mem.sizeBytes, dataStartBlock: 8,
                                       replicaCount: 0, role: .component)
                records.append(rec)
                vols.append(VolumeRecord(name: "d1\(i)", type: .concat, rows: [
                    RowRecord(interlaceBlocks: 1, componentBlocks: MirrorEngineTests.sideBytes / 512, components: [ComponentRecord(device: rec.uuid)])]))
            }
            var m = VolumeRecord(name: "d0", type: .mirror)
            m.mirror = MirrorRecord(submirrors: states.enumerated().map { i, s in
                var r = SubmirrorRecord(volume: "d1\(i)", state: s)
                if s == .resyncing { r.resyncDoneBlocks = 0 }
                return r
            }, readPolicy: read, regionBlocks: MirrorEngineTests.regionBlocks)
            store = InMemoryConfigStore(SetConfig(setName: "t", devices: records, volumes: vols + [m]))
            devices = devs
            let byUUID = Dictionary(uniqueKeysWithValues: zip(records.map(\.uuid), devs.map { $0 as any BlockDevice }))
            let ctx = VolumeContext(store: store, devices: { byUUID[$0] })
            context = ctx
            let opened = try vols.map { try VolumeFactory.open($0, context: ctx) }
            sides = opened
            mirror = try #require(try VolumeFactory.open(m, context: ctx, children: opened) as? MirrorVolume)
        }

        /// Opens the mirror again on the same devices and state database (after a crash:
        /// the old engine is dropped without cleaning its dirty regions).
        func reopen() throws {
            mirror = try #require(try VolumeFactory.open(store.config.volume(named: "d0")!, context: context, children: sides) as? MirrorVolume)
        }

        var record: MirrorRecord { store.config.volume(named: "d0")!.mirror! }
        func state(_ i: Int) -> SubmirrorState { record.submirrors[i].state }

        func write(_ offset: UInt64, _ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try mirror.write(offset: offset, from: $0) } }
        func read(_ offset: UInt64, _ n: Int) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: n)
            try out.withUnsafeMutableBytes { try mirror.read(offset: offset, into: $0) }
            return out
        }
        /// The bytes of side `i` at `offset`, read from its device directly (no faults).
        func raw(_ i: Int, _ offset: UInt64, _ n: Int) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: n)
            try out.withUnsafeMutableBytes { try devices[i].base.read(into: $0, at: 8 * 512 + offset) }
            return out
        }
        func rawWrite(_ i: Int, _ offset: UInt64, _ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try devices[i].base.write($0, at: 8 * 512 + offset) }
        }
    }

    static func pattern(_ seed: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed &* 13 &+ ($0 >> 9)) } }

    @Test func writesReachEverySideAndRoundRobinReadsUseBoth() throws {
        let rig = try Rig()
        #expect(rig.mirror.sizeBytes == Self.sideBytes)
        let data = Self.pattern(1, 1 << 20)
        try rig.write(3 << 20, data)
        #expect(try rig.raw(0, 3 << 20, data.count) == data)
        #expect(try rig.raw(1, 3 << 20, data.count) == data)
        // Side 1 fails every read: round robin sends some reads to it, and each is answered
        // from side 0 and rewritten; side 1 stays Okay.
        rig.devices[1].updateFaults { $0.failReads = true }
        for i in 0..<4 { #expect(try rig.read(3 << 20 + UInt64(i) * 4096, 4096) == Array(data[(i * 4096)..<((i + 1) * 4096)])) }
        #expect(rig.devices[1].injectedErrors >= 1)
        #expect(rig.mirror.readErrorsRepaired.load(ordering: .relaxed) == rig.devices[1].injectedErrors)
        #expect(rig.state(1) == .okay)
    }

    @Test func aBadRangeIsServedFromTheOtherSideAndRewritten() throws {
        let rig = try Rig(read: .first)
        let data = Self.pattern(2, 64 << 10)
        try rig.write(1 << 20, data)
        // The first side's copy of 4 KiB in the middle goes bad: its sectors read as EIO and
        // held garbage.
        try rig.rawWrite(0, (1 << 20) + 8192, [UInt8](repeating: 0xEE, count: 4096))
        let bad = (8 * 512 + (1 << 20) + 8192)..<(8 * 512 + (1 << 20) + 12288)
        rig.devices[0].updateFaults { $0.badReadRanges = [UInt64(bad.lowerBound)..<UInt64(bad.upperBound)] }
        #expect(try rig.read(1 << 20, data.count) == data)
        #expect(rig.mirror.readErrorsRepaired.load(ordering: .relaxed) == 1)
        #expect(rig.state(0) == .okay)
        // The rewrite put the good bytes back on the first side.
        #expect(try rig.raw(0, (1 << 20) + 8192, 4096) == Array(data[8192..<12288]))
        // A rewrite that fails takes the side out of service; the read still succeeds.
        rig.devices[0].updateFaults { $0.failWrites = true }
        #expect(try rig.read(1 << 20, data.count) == data)
        #expect(rig.state(0) == .needsMaintenance)
        #expect(rig.state(1) == .okay)
    }

    @Test func aFailedWriteTakesItsSideOutAndOnlineResyncsEverything() throws {
        let rig = try Rig()
        let a = Self.pattern(3, 2 << 20)
        try rig.write(0, a)
        rig.devices[1].updateFaults { $0.failWrites = true }
        let b = Self.pattern(4, 1 << 20)
        try rig.write(5 << 20, b)  // succeeds on side 0
        #expect(rig.state(1) == .needsMaintenance)
        #expect(rig.store.config.volume(named: "d0")!.derivedState == .needsMaintenance)
        // Every read now comes from side 0, whatever the policy.
        for _ in 0..<4 { #expect(try rig.read(5 << 20, b.count) == b) }
        // The disk is fixed; online resyncs every region.
        rig.devices[1].updateFaults { $0.failWrites = false }
        try rig.mirror.apply(.submirrorOnline(volume: "d0", submirror: 1))
        #expect(rig.state(1) == .resyncing)
        #expect(rig.record.submirrors[1].resyncRegions == nil)
        rig.mirror.runResync()
        #expect(rig.state(1) == .okay)
        #expect(rig.mirror.resyncedChunks.load(ordering: .relaxed) == Int(Self.sideBytes / (1 << 20)))
        #expect(try rig.raw(1, 0, Int(Self.sideBytes)) == (try rig.raw(0, 0, Int(Self.sideBytes))))
    }

    @Test func offlineThenOnlineResyncsOnlyTheRegionsWrittenMeanwhile() throws {
        let rig = try Rig()
        try rig.write(0, Self.pattern(5, 1 << 20))
        #expect(rig.mirror.cleanDirtyRegions(all: true) == 1)
        try rig.mirror.apply(.submirrorOffline(volume: "d0", submirror: 1))
        #expect(rig.state(1) == .offline)
        #expect(throws: (any Error).self) { try rig.mirror.apply(.submirrorOffline(volume: "d0", submirror: 0)) }
        // Writes in regions 2, 2 and 6 (1 MiB regions); side 1 sees none of them.
        let b = Self.pattern(6, 4096), c = Self.pattern(7, 8192)
        try rig.write((2 << 20) + 4096, b)
        try rig.write((2 << 20) + 65536, b)
        try rig.write((6 << 20) + 512, c)
        #expect(try rig.raw(1, (2 << 20) + 4096, 4096) != b)
        rig.mirror.cleanDirtyRegions(all: true)
        #expect(rig.record.submirrors[1].staleRegions == [2, 6])
        try rig.mirror.apply(.submirrorOnline(volume: "d0", submirror: 1))
        #expect(rig.record.submirrors[1].resyncRegions == [2, 6])
        // While it resyncs it is written but not read.
        rig.devices[1].updateFaults { $0.failReads = true }
        #expect(try rig.read((6 << 20) + 512, c.count) == c)
        #expect(rig.devices[1].injectedErrors == 0)
        rig.devices[1].updateFaults { $0.failReads = false }
        rig.mirror.runResync()
        #expect(rig.state(1) == .okay)
        #expect(rig.mirror.resyncedChunks.load(ordering: .relaxed) == 2)
        #expect(try rig.raw(1, 0, Int(Self.sideBytes)) == (try rig.raw(0, 0, Int(Self.sideBytes))))
    }

    @Test func aCrashsDirtyRegionsAreCopiedFromTheFirstSideBeforeTheOthersAreRead() throws {
        let rig = try Rig()
        let a = Self.pattern(8, 1 << 20)
        try rig.write(3 << 20, a)
        // The crash: the dirty region is still recorded, and side 1 missed part of the write.
        #expect(rig.store.config.volume(named: "d0")!.dirtyRegions == [3])
        try rig.rawWrite(1, 3 << 20, [UInt8](repeating: 0x5A, count: 4096))
        try rig.reopen()
        // Before the hand-over (a read-only state database), reads come from the first side only.
        for _ in 0..<4 { #expect(try rig.read(3 << 20, 4096) == Array(a[0..<4096])) }
        try rig.mirror.resyncDirtyRegions()
        #expect(rig.state(1) == .resyncing)
        #expect(rig.record.submirrors[1].resyncRegions == [3])
        #expect(rig.store.config.volume(named: "d0")!.dirtyRegions.isEmpty)
        for _ in 0..<4 { #expect(try rig.read(3 << 20, 4096) == Array(a[0..<4096])) }
        rig.mirror.runResync()
        #expect(rig.state(1) == .okay)
        #expect(try rig.raw(1, 3 << 20, a.count) == a)
    }

    @Test func whenEverySideFailsAWriteTheLastIsLastErredAndTheWriteFails() throws {
        let rig = try Rig()
        for d in rig.devices { d.updateFaults { $0.failWrites = true } }
        #expect(throws: VolumeIOError.self) { try rig.write(0, Self.pattern(9, 4096)) }
        #expect(rig.state(0) == .needsMaintenance)
        #expect(rig.state(1) == .lastErred)
        #expect(rig.store.config.volume(named: "d0")!.derivedState == .lastErred)
        // The Last Erred side is still read.
        _ = try rig.read(1 << 20, 4096)
    }

    @Test func aResyncKeepsUpWithConcurrentWrites() throws {
        let rig = try Rig(states: [.okay, .resyncing])
        try rig.write(0, Self.pattern(10, Int(Self.sideBytes)))
        let done = DispatchSemaphore(value: 0)
        let m = rig.mirror
        Thread.detachNewThread { m.runResync(); done.signal() }
        // Writes all over the volume while the resync copies: every one reaches side 1
        // (written while resyncing) or is copied after it landed (the chunk lock).
        var seed = 11
        while done.wait(timeout: .now()) == .timedOut {
            let off = UInt64((seed * 7919) % Int(Self.sideBytes / 4096)) * 4096
            try rig.write(off, Self.pattern(seed, 4096))
            seed += 1
        }
        #expect(rig.state(1) == .okay)
        #expect(seed > 11)
        #expect(try rig.raw(1, 0, Int(Self.sideBytes)) == (try rig.raw(0, 0, Int(Self.sideBytes))))
    }

    @Test func aResyncStartsAtItsCheckpoint() throws {
        let rig = try Rig(states: [.okay, .resyncing])
        try rig.write(0, Self.pattern(12, Int(Self.sideBytes)))
        // A checkpoint of an earlier run: the first half is copied and flushed.
        try rig.store.apply(.mirrorResyncCheckpoint(volume: "d0", submirror: 1, doneBlocks: Self.sideBytes / 1024))
        try rig.rawWrite(1, 0, [UInt8](repeating: 0x77, count: 4096))  // not looked at again
        rig.mirror.runResync()
        #expect(rig.state(1) == .okay)
        #expect(rig.mirror.resyncedChunks.load(ordering: .relaxed) == Int(Self.sideBytes >> 21))
        let half = Int(Self.sideBytes / 2)
        #expect(try rig.raw(1, UInt64(half), half) == (try rig.raw(0, UInt64(half), half)))
        #expect(try rig.raw(1, 0, 4096) == [UInt8](repeating: 0x77, count: 4096))
    }

    /// `check`: sides that differ are counted per 1 MiB chunk (the first side is the
    /// reference), `--repair` rewrites the others from it, and a chunk a side cannot read is
    /// rewritten from the first side without failing it.
    @Test func checkCountsDifferingChunksAndRepairRewritesThemFromTheFirstSide() throws {
        let rig = try Rig()
        try rig.write(0, Self.pattern(1, Int(Self.sideBytes)))
        try rig.mirror.flush()
        // Side 1 differs in chunks 2 and 5; side 0 cannot read chunk 7.
        try rig.rawWrite(1, 2 << 20 + 4096, [UInt8](repeating: 0xEE, count: 512))
        try rig.rawWrite(1, 5 << 20, [UInt8](repeating: 0xDD, count: 8192))
        rig.devices[0].updateFaults { $0.badReadRanges = [8 * 512 + (7 << 20)..<8 * 512 + (7 << 20) + 4096] }
        func check(repair: Bool) throws -> CheckRecord {
            try rig.store.apply(.checkBegun(volume: "d0", repair: repair, totalLines: rig.mirror.checkChunks, at: Date()))
            rig.mirror.runCheck(try #require(rig.store.config.volume(named: "d0")?.check))
            return try #require(rig.store.config.volume(named: "d0")?.check)
        }
        let first = try check(repair: false)
        #expect(first.result == .completed && !first.running && first.doneLines == 8)
        #expect(first.counts.mismatches == 2 && first.counts.lines == [2, 5] && first.counts.repaired == 0)
        #expect(first.counts.readErrorsRepaired == 1)
        #expect(rig.state(0) == .okay && rig.state(1) == .okay)
        #expect(try rig.raw(1, 5 << 20, 8192) != Array(Self.pattern(1, Int(Self.sideBytes))[(5 << 20)..<(5 << 20) + 8192]))
        rig.devices[0].updateFaults { $0.badReadRanges = [] }
        let second = try check(repair: true)
        #expect(second.counts.mismatches == 2 && second.counts.repaired == 2)
        let third = try check(repair: false)
        #expect(third.counts.mismatches == 0)
        #expect(try rig.raw(1, 0, Int(Self.sideBytes)) == (try rig.raw(0, 0, Int(Self.sideBytes))))
        // Not while a side is out of service.
        try rig.mirror.apply(.submirrorOffline(volume: "d0", submirror: 1))
        #expect(throws: ModelError.self) {
            try rig.store.apply(.checkBegun(volume: "d0", repair: false, totalLines: 8, at: Date()))
        }
    }

}
