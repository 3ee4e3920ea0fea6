import Foundation
import MetaTestSupport
import MetaDB
import MetaModel
import MetaDevices
@testable import MetaEngine
import Synchronization
import Testing

@Suite("I/O engine against a reference model")
struct EngineModelTests {
    static let geometries: [(VolumeType, Int, Int, UInt64)] = [
        (.concat, 1, 3, 8), (.stripe, 3, 1, 8), (.stripe, 4, 2, 16), (.raid5, 3, 1, 8), (.raid5, 4, 1, 16), (.raid5, 5, 1, 1),
    ]

    @Test("random reads and writes match the model", arguments: 0..<6)
    func randomIO(_ g: Int) throws {
        let (type, cols, rows, il) = Self.geometries[g]
        let f = try EngineFixture(type: type, columns: cols, rows: rows, interlaceBlocks: il)
        var rng = SeededRNG(seed: UInt64(g) * 7919 + 1)
        for _ in 0..<300 {
            let len = Int.random(in: 1...min(48 << 10, f.size), using: &rng)
            let off = Int.random(in: 0...(f.size - len), using: &rng)
            if Bool.random(using: &rng) {
                try f.write(off, rng.bytes(len))
            } else {
                #expect(try f.read(off, len) == Array(f.model[off..<(off + len)]))
            }
        }
        #expect(try f.mismatches() == 0)
        if type == .raid5 { #expect(try f.parityErrors().isEmpty) }
    }

    @Test("concurrent writers on disjoint regions", arguments: [VolumeType.stripe, .raid5])
    func concurrentWriters(_ type: VolumeType) throws {
        let f = try EngineFixture(type: type, columns: 4, interlaceBlocks: 8)
        let threads = 8
        let region = f.size / threads
        let expected = Mutex([UInt8](repeating: 0, count: f.size))
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var rng = SeededRNG(seed: UInt64(t + 100))
            var local = [UInt8](repeating: 0, count: region)
            for _ in 0..<60 {
                let len = Int.random(in: 1...8192, using: &rng)
                let o = Int.random(in: 0...(region - len), using: &rng)
                let data = rng.bytes(len)
                try! data.withUnsafeBytes { try f.volume.write(offset: UInt64(t * region + o), from: $0) }
                local.replaceSubrange(o..<(o + len), with: data)
            }
            expected.withLock { $0.replaceSubrange((t * region)..<((t + 1) * region), with: local) }
        }
        f.model = expected.withLock { $0 }
        #expect(try f.mismatches() == 0)
        if type == .raid5 { #expect(try f.parityErrors().isEmpty) }
    }

    @Test("full-line writes need no reads")
    func fullStripeWrite() throws {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 8)
        let line = 3 * 8 * 512
        try f.write(0, [UInt8](repeating: 0xA5, count: line))
        #expect(try f.parityErrors().isEmpty)
        #expect(try f.read(0, line) == [UInt8](repeating: 0xA5, count: line))
    }
}

@Suite("RAID-5 degraded operation")
struct DegradedTests {
    @Test("each single column failed: every byte still reads correctly", arguments: 0..<4)
    func singleFailure(_ c: Int) throws {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 8)
        var rng = SeededRNG(seed: 42)
        try f.fillRandom(&rng)
        f.devices[c].updateFaults { $0.failReads = true; $0.failWrites = true }
        #expect(try f.mismatches() == 0)
        #expect(f.state(ofColumn: c) == .maintenance)
        #expect(f.store.config.volume(named: "d10")!.derivedState == .needsMaintenance)
        // Writes keep working degraded, and read back right.
        for _ in 0..<100 {
            let len = Int.random(in: 1...20000, using: &rng)
            let off = Int.random(in: 0...(f.size - len), using: &rng)
            try f.write(off, rng.bytes(len))
        }
        #expect(try f.mismatches() == 0)
        // No further state changes.
        for i in 0..<4 where i != c { #expect(f.state(ofColumn: i) == .okay) }
    }

    @Test("write error on a column: its data lives in parity")
    func writeFailure() throws {
        let f = try EngineFixture(type: .raid5, columns: 3, interlaceBlocks: 4)
        var rng = SeededRNG(seed: 5)
        try f.fillRandom(&rng)
        f.devices[1].updateFaults { $0.failWrites = true }
        try f.write(1000, (0..<30000).map { _ in UInt8.random(in: 0...255, using: &rng) })
        #expect(f.state(ofColumn: 1) == .maintenance)
        // The column still reads (stale data) but must not be used: everything matches the model.
        #expect(try f.mismatches() == 0)
    }

    @Test("second failure: reads needing lost data fail, others succeed, none wrong")
    func doubleFailure() throws {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 8)
        var rng = SeededRNG(seed: 9)
        try f.fillRandom(&rng)
        f.devices[0].updateFaults { $0.failReads = true; $0.failWrites = true }
        _ = try f.read(0, f.size)
        #expect(f.state(ofColumn: 0) == .maintenance)
        f.devices[2].updateFaults { $0.failReads = true; $0.failWrites = true }
        let unit = 8 * 512
        var failedReads = 0, goodReads = 0
        for u in 0..<(f.size / unit) {
            do {
                let got = try f.read(u * unit, unit)
                #expect(got == Array(f.model[(u * unit)..<((u + 1) * unit)]), "unit \(u) returned wrong data")
                goodReads += 1
            } catch let e as VolumeIOError {
                #expect(e.code == .io)
                failedReads += 1
            }
        }
        #expect(f.state(ofColumn: 2) == .lastErred)
        #expect(f.store.config.volume(named: "d10")!.derivedState == .lastErred)
        // Units on columns 1 and 3 are still readable; units on 0 and 2 are lost.
        #expect(goodReads > 0 && failedReads > 0)
        #expect(goodReads == failedReads)
    }

    @Test("the failure is committed before the failing read is answered")
    func commitBeforeReply() throws {
        let order = Mutex<[String]>([])
        let f = try EngineFixture(type: .raid5, columns: 3, interlaceBlocks: 8, onCommit: { cfg in
            let s = cfg.volume(named: "d10")!.columns[1].state
            order.withLock { $0.append("commit \(s.rawValue)") }
        })
        var rng = SeededRNG(seed: 3)
        try f.fillRandom(&rng)
        f.devices[1].updateFaults { $0.failReads = true }
        f.devices[1].onError { _ in order.withLock { $0.append("device error") } }
        let got = try f.read(0, f.size)
        order.withLock { $0.append("reply") }
        #expect(got == f.model)
        let events = order.withLock { $0 }
        let commit = try #require(events.firstIndex(of: "commit Maintenance"))
        #expect(events.firstIndex(of: "device error")! < commit)
        #expect(commit < events.firstIndex(of: "reply")!)
    }

    @Test("missing column at open is Unavailable and data is reconstructed")
    func missingAtOpen() throws {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 8)
        var rng = SeededRNG(seed: 11)
        try f.fillRandom(&rng)
        f.volume.close()   // a clean stop, as before a restart
        let rec = f.store.config.volume(named: "d10")!
        let missing = rec.columns[2].device
        let devs = Dictionary(uniqueKeysWithValues: f.store.config.devices.enumerated().map { ($1.uuid, f.devices[$0] as any BlockDevice) })
        let v = try VolumeFactory.open(rec, context: VolumeContext(store: f.store, devices: { $0 == missing ? nil : devs[$0] })) as! RAID5Volume
        try v.commitUnavailableColumns()
        #expect(f.state(ofColumn: 2) == .unavailable)
        var out = [UInt8](repeating: 0, count: f.size)
        try out.withUnsafeMutableBytes { try v.read(offset: 0, into: $0) }
        #expect(out == f.model)
    }
}

@Suite("RAID-5 initialisation")
struct InitTests {
    @Test("background init makes parity consistent and keeps data written meanwhile")
    func initialize() throws {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 4, init: true)
        // Garbage on the raw devices, as on reused disks.
        var rng = SeededRNG(seed: 77)
        for d in f.devices {
            let junk = (0..<Int(d.sizeBytes)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try junk.withUnsafeBytes { try d.base.write($0, at: 0) }
        }
        // The model is what the data columns now hold.
        let raid = f.volume as! RAID5Volume
        f.model = try f.read(0, f.size)
        #expect(f.store.config.volume(named: "d10")!.derivedState == .initializing)
        raid.startBackgroundWork()
        for _ in 0..<50 {
            let len = Int.random(in: 1...9000, using: &rng)
            let off = Int.random(in: 0...(f.size - len), using: &rng)
            try f.write(off, rng.bytes(len))
        }
        raid.waitForBackgroundWork()
        #expect(try f.parityErrors().isEmpty)
        #expect(try f.mismatches() == 0)
        let rec = f.store.config.volume(named: "d10")!
        #expect(rec.resync == nil)
        #expect(rec.derivedState == .okay)
        #expect(rec.columns.allSatisfy { $0.state == .okay })
    }

    @Test("init resumes from its checkpoint")
    func resume() throws {
        let f = try EngineFixture(type: .raid5, columns: 3, interlaceBlocks: 4, init: true)
        var rng = SeededRNG(seed: 78)
        try f.fillRandom(&rng)
        // Pretend half was done before a restart: corrupt parity of the second half only.
        try f.store.commit { cfg in cfg.volumes[0].resync?.doneBlocks = 64 * 4 }
        let rec = f.store.config.volume(named: "d10")!
        let devs = Dictionary(uniqueKeysWithValues: f.store.config.devices.enumerated().map { ($1.uuid, f.devices[$0] as any BlockDevice) })
        let v = try VolumeFactory.open(rec, context: VolumeContext(store: f.store, devices: { devs[$0] })) as! RAID5Volume
        v.startBackgroundWork()
        v.waitForBackgroundWork()
        #expect(f.store.config.volume(named: "d10")!.resync == nil)
        #expect(try f.parityErrors().isEmpty)
    }
}

@Suite("parity")
struct ParityTests {
    @Test("ISA-L and the plain loop agree")
    func agree() {
        var rng = SeededRNG(seed: 1)
        for n in [32, 512, 4096, 4096 * 3 + 512] {
            let srcs = (0..<5).map { _ in AlignedBuffer(count: n) }
            for s in srcs { for i in 0..<n { s.mutableBytes[i] = UInt8.random(in: 0...255, using: &rng) } }
            let a = AlignedBuffer(count: n), b = AlignedBuffer(count: n)
            Parity.xor(sources: srcs.map { UnsafeRawPointer($0.base) }, into: a.base, count: n)
            Parity.plainXor(sources: srcs.map { UnsafeRawPointer($0.base) }, into: b.base, count: n)
            #expect(Array(a.bytes) == Array(b.bytes))
        }
    }

    @Test("in-place three-way XOR, aligned (ISA-L) and at odd offsets (plain loop)",
          arguments: [0, 1, 7])
    func inPlaceThreeWay(_ misalign: Int) {
        var rng = SeededRNG(seed: UInt64(10 + misalign))
        for n in [32, 4096, 4096 + 13] {
            let bufs = (0..<3).map { _ in AlignedBuffer(count: n + 8) }
            for b in bufs { for i in 0..<(n + 8) { b.mutableBytes[i] = UInt8.random(in: 0...255, using: &rng) } }
            let d = bufs[0].base + misalign, x = bufs[1].base, y = bufs[2].base + misalign
            let expected = (0..<n).map { d.load(fromByteOffset: $0, as: UInt8.self) ^ x.load(fromByteOffset: $0, as: UInt8.self)
                ^ y.load(fromByteOffset: $0, as: UInt8.self) }
            let after = bufs[0].base.load(fromByteOffset: misalign + n, as: UInt8.self)
            Parity.xorInPlace(d, UnsafeRawPointer(x), UnsafeRawPointer(y), count: n)
            #expect(Array(UnsafeRawBufferPointer(start: d, count: n)) == expected)
            #expect(bufs[0].base.load(fromByteOffset: misalign + n, as: UInt8.self) == after)  // nothing past the end
        }
    }
}
