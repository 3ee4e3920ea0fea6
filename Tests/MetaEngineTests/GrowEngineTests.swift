import Foundation
import MetaTestSupport
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine
import MetaLayout
import Synchronization
import Testing

/// A volume over in-memory devices whose device list can gain members (for grow), plus a
/// byte model of its contents.
final class GrowFixture: @unchecked Sendable {
    let store: InMemoryConfigStore
    private final class Table: @unchecked Sendable {
        let map = Mutex<[UUID: FaultyDevice]>([:])
        func withLock<T>(_ body: (inout [UUID: FaultyDevice]) -> T) -> T { map.withLock { body(&$0) } }
    }
    private let handles = Table()
    let volume: Volume
    let name = "d10"
    static let dataStart: UInt64 = 8
    private let modelLock = NSLock()
    private var modelBytes: [UInt8]
    private var serial = 0

    /// `devices` data sizes (bytes, excluding the 8-block label area); RAID-5 uses them as
    /// columns, concat/stripe as one row.
    init(type: VolumeType, deviceBytes: [UInt64], interlaceBlocks: UInt64) throws {
        var recs: [DeviceRecord] = []
        var devs: [UUID: FaultyDevice] = [:]
        for (i, b) in deviceBytes.enumerated() {
            let (rec, dev) = Self.makeDevice(index: i, dataBytes: b, garbage: false)
            recs.append(rec)
            devs[rec.uuid] = dev
        }
        serial = deviceBytes.count
        let vol: VolumeRecord
        switch type {
        case .raid5, .raid6:
            let smallest = recs.map(\.dataBlocks).min()!
            vol = VolumeRecord(name: name, type: type, columns: recs.map { ComponentRecord(device: $0.uuid) },
                               originalColumnCount: recs.count, interlaceBlocks: interlaceBlocks,
                               columnBlocks: smallest / interlaceBlocks * interlaceBlocks)
        case .concat:
            vol = VolumeRecord(name: name, type: .concat, rows: recs.map { Grow.row(devices: [$0], interlaceBlocks: 1) })
        case .stripe:
            vol = VolumeRecord(name: name, type: .stripe, rows: [Grow.row(devices: recs, interlaceBlocks: interlaceBlocks)])
        case .softpart, .mirror:
            preconditionFailure("soft partitions grow by extents (SoftPartitionEngineTests); mirrors do not grow")
        }
        store = InMemoryConfigStore(SetConfig(setName: "test", devices: recs, volumes: [vol]))
        handles.withLock { $0 = devs }
        let h = handles
        volume = try VolumeFactory.open(vol, context: VolumeContext(store: store, devices: { u in h.withLock { $0[u] } }))
        modelBytes = [UInt8](repeating: 0, count: Int(volume.sizeBytes))
    }

    static func makeDevice(index: Int, dataBytes: UInt64, garbage: Bool) -> (DeviceRecord, FaultyDevice) {
        let mem = MemoryDevice(path: "mem\(index)", sizeBytes: dataBytes + dataStart * 512)
        if garbage {
            var rng = SeededRNG(seed: UInt64(index) &* 31 &+ 7)
            mem.restore((0..<Int(mem.sizeBytes)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        let rec = DeviceRecord(uuid: UUID(), lastPath: "mem\(index)", sizeBytes: mem.sizeBytes, dataStartBlock: dataStart,
                               replicaCount: 0, role: .unused)
        return (rec, FaultyDevice(mem))
    }

    /// Adds new devices to the set (not to the volume); their data areas hold random garbage.
    func addDevices(_ dataBytes: [UInt64]) throws -> [DeviceRecord] {
        var out: [DeviceRecord] = []
        for b in dataBytes {
            let (rec, dev) = Self.makeDevice(index: serial, dataBytes: b, garbage: true)
            serial += 1
            handles.withLock { $0[rec.uuid] = dev }
            out.append(rec)
        }
        try store.commit { $0.devices += out }
        return out
    }

    func device(_ u: UUID) -> FaultyDevice { handles.withLock { $0[u]! } }

    var record: VolumeRecord { store.config.volume(named: name)! }

    /// Zeroes the new columns' used area the way `grow` does.
    func zero(_ recs: [DeviceRecord]) throws {
        let targets = recs.map { VolumeGrowth.ZeroTarget(device: device($0.uuid), dataStartBlock: $0.dataStartBlock) }
        let total = record.columnBlocks
        var done: UInt64 = 0
        while done < total {
            let n = min(100, total - done) // odd chunk size: exercises the resume arithmetic
            try VolumeGrowth.zero(targets, fromBlock: done, blocks: n)
            done += n
        }
        try VolumeGrowth.flush(targets)
    }

    /// Commits the grown geometry and reloads the engine; returns the new size.
    @discardableResult
    func commitGrow(row recs: [DeviceRecord]? = nil, interlaceBlocks: UInt64 = 8, columns: [DeviceRecord]? = nil) throws -> UInt64 {
        try store.commit { cfg in
            let vi = cfg.volumeIndex(named: name)!
            if let recs { cfg.volumes[vi].rows.append(Grow.row(devices: recs, interlaceBlocks: interlaceBlocks)) }
            if let columns { cfg.volumes[vi].columns += columns.map { ComponentRecord(device: $0.uuid, state: .okay) } }
        }
        try volume.reloadGeometry()
        let size = volume.sizeBytes
        modelLock.withLock { modelBytes += [UInt8](repeating: 0, count: Int(size) - modelBytes.count) }
        return size
    }

    var model: [UInt8] { modelLock.withLock { modelBytes } }
    var size: Int { Int(volume.sizeBytes) }

    func write(_ offset: Int, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try volume.write(offset: UInt64(offset), from: $0) }
        modelLock.withLock { modelBytes.replaceSubrange(offset..<(offset + bytes.count), with: bytes) }
    }

    func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try volume.read(offset: UInt64(offset), into: $0) }
        return out
    }

    func fillRandom(_ range: Range<Int>, _ rng: inout SeededRNG) throws {
        var off = range.lowerBound
        while off < range.upperBound {
            let n = min(40 << 10, range.upperBound - off)
            try write(off, (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) })
            off += n
        }
    }

    /// Bytes where the volume differs from the model.
    func mismatches() throws -> Int {
        let m = model
        var bad = 0, off = 0
        while off < m.count {
            let n = min(64 << 10, m.count - off)
            let got = try read(off, n)
            for i in 0..<n where got[i] != m[off + i] { bad += 1 }
            off += n
        }
        return bad
    }

    /// Lines whose columns (all of them, added ones included) do not XOR to zero.
    func parityErrors() throws -> [UInt64] {
        let rec = record
        let layout = rec.raid5Layout!
        let n = Int(layout.interlaceBlocks * 512)
        var bad: [UInt64] = []
        for line in 0..<layout.lineCount {
            if layout.parityCount == 2 {
                let units = try rec.columns.map { try device($0.device).base.read(count: n, at: (Self.dataStart + line * layout.interlaceBlocks) * 512) }
                if !EngineFixture.pqRight(layout, line: line, units: units) { bad.append(line) }
                continue
            }
            var acc = [UInt8](repeating: 0, count: n)
            for c in rec.columns {
                let b = try device(c.device).base.read(count: n, at: (Self.dataStart + line * layout.interlaceBlocks) * 512)
                for i in 0..<n { acc[i] ^= b[i] }
            }
            if acc.contains(where: { $0 != 0 }) { bad.append(line) }
        }
        return bad
    }
}

@Suite("grow at the engine level")
struct GrowEngineTests {
    @Test("concat: a new row appends its whole data area; old data stays")
    func concat() throws {
        let f = try GrowFixture(type: .concat, deviceBytes: [96 << 10, 128 << 10], interlaceBlocks: 1)
        var rng = SeededRNG(seed: 1)
        try f.fillRandom(0..<f.size, &rng)
        let old = f.model
        let oldSize = f.size
        let add = try f.addDevices([200 << 10])
        let newSize = try f.commitGrow(row: add)
        #expect(newSize == UInt64(oldSize) + (200 << 10))
        #expect(VolumeGrowth.sizeBytes(of: f.record) == newSize)
        #expect(try f.read(0, oldSize) == old)
        try f.fillRandom(oldSize..<f.size, &rng)
        try f.write(oldSize - 700, (0..<1400).map { _ in UInt8.random(in: 0...255, using: &rng) }) // across the seam
        #expect(try f.mismatches() == 0)
    }

    @Test("stripe: a striped row with its own interlace; old data stays")
    func stripe() throws {
        let f = try GrowFixture(type: .stripe, deviceBytes: [128 << 10, 128 << 10, 136 << 10], interlaceBlocks: 16)
        var rng = SeededRNG(seed: 2)
        try f.fillRandom(0..<f.size, &rng)
        let old = f.model
        let oldSize = f.size
        let add = try f.addDevices([64 << 10, 70 << 10])
        let newSize = try f.commitGrow(row: add, interlaceBlocks: 8)
        // Two components, 64 KiB used on each (the smallest, in whole 4 KiB interlaces).
        #expect(newSize == UInt64(oldSize) + 2 * (64 << 10))
        #expect(f.record.rows.count == 2 && f.record.rows[1].interlaceBlocks == 8)
        #expect(try f.read(0, oldSize) == old)
        try f.fillRandom(oldSize..<f.size, &rng)
        #expect(try f.mismatches() == 0)
        // A one-device row in a stripe is a concatenation.
        let one = try f.addDevices([32 << 10])
        let s3 = try f.commitGrow(row: one, interlaceBlocks: 8)
        #expect(f.record.rows[2].interlaceBlocks == 1)
        #expect(s3 == newSize + (32 << 10))
        try f.fillRandom(Int(newSize)..<f.size, &rng)
        #expect(try f.mismatches() == 0)
    }

    @Test("RAID-5: zeroed columns join with parity valid; new space writable; parity clean", arguments: [1, 2])
    func raid5(_ added: Int) throws {
        let f = try GrowFixture(type: .raid5, deviceBytes: [128 << 10, 128 << 10, 128 << 10, 132 << 10], interlaceBlocks: 8)
        var rng = SeededRNG(seed: UInt64(10 + added))
        try f.fillRandom(0..<f.size, &rng)
        #expect(try f.parityErrors().isEmpty)
        let old = f.model
        let oldSize = f.size
        let add = try f.addDevices([UInt64](repeating: 140 << 10, count: added))
        try f.zero(add)
        let newSize = try f.commitGrow(columns: add)
        #expect(newSize == UInt64(oldSize) + UInt64(added) * (128 << 10))
        #expect(VolumeGrowth.sizeBytes(of: f.record) == newSize)
        // Parity is valid right after the commit, before anything is written.
        #expect(try f.parityErrors().isEmpty)
        #expect(try f.read(0, oldSize) == old)
        #expect(try f.read(oldSize, f.size - oldSize).allSatisfy { $0 == 0 })
        try f.fillRandom(oldSize..<f.size, &rng)
        for _ in 0..<60 {
            let len = Int.random(in: 1...30000, using: &rng)
            let off = Int.random(in: 0...(f.size - len), using: &rng)
            try f.write(off, (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        #expect(try f.mismatches() == 0)
        #expect(try f.parityErrors().isEmpty)
    }

    @Test("RAID-6: zeroed columns join with P and Q valid; two columns (one of them new) can then fail", arguments: [1, 2])
    func raid6(_ added: Int) throws {
        let f = try GrowFixture(type: .raid6, deviceBytes: [96 << 10, 96 << 10, 96 << 10, 96 << 10, 100 << 10], interlaceBlocks: 8)
        var rng = SeededRNG(seed: UInt64(60 + added))
        try f.fillRandom(0..<f.size, &rng)
        #expect(try f.parityErrors().isEmpty)
        let old = f.model
        let oldSize = f.size
        let add = try f.addDevices([UInt64](repeating: 100 << 10, count: added))
        try f.zero(add)
        let newSize = try f.commitGrow(columns: add)
        #expect(newSize == UInt64(oldSize) + UInt64(added) * (96 << 10))
        #expect(try f.parityErrors().isEmpty, "P and Q stay valid: a zero unit adds nothing to either")
        #expect(try f.read(0, oldSize) == old)
        try f.fillRandom(oldSize..<f.size, &rng)
        for _ in 0..<40 {
            let len = Int.random(in: 1...30000, using: &rng)
            let off = Int.random(in: 0...(f.size - len), using: &rng)
            try f.write(off, (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        #expect(try f.parityErrors().isEmpty)
        for victim in [f.record.columns[2].device, add.last!.uuid] {
            f.device(victim).updateFaults { $0.failReads = true; $0.failWrites = true }
        }
        #expect(try f.mismatches() == 0, "an original and an added column missing: rebuilt through P and Q")
    }

    @Test("RAID-5: a column that was not zeroed would break parity (why grow zeroes)")
    func raid5NeedsZeroing() throws {
        let f = try GrowFixture(type: .raid5, deviceBytes: [64 << 10, 64 << 10, 64 << 10], interlaceBlocks: 8)
        var rng = SeededRNG(seed: 3)
        try f.fillRandom(0..<f.size, &rng)
        let add = try f.addDevices([64 << 10]) // random garbage, not zeroed
        try f.commitGrow(columns: add)
        #expect(!(try f.parityErrors().isEmpty))
    }

    @Test("RAID-5: after a grow, a failed original column is rebuilt from parity that covers the new columns")
    func raid5DegradedAfterGrow() throws {
        let f = try GrowFixture(type: .raid5, deviceBytes: [96 << 10, 96 << 10, 96 << 10, 96 << 10], interlaceBlocks: 8)
        var rng = SeededRNG(seed: 4)
        try f.fillRandom(0..<f.size, &rng)
        let oldSize = f.size
        let add = try f.addDevices([96 << 10, 96 << 10])
        try f.zero(add)
        try f.commitGrow(columns: add)
        try f.fillRandom(oldSize..<f.size, &rng)
        let victim = f.record.columns[1].device
        f.device(victim).updateFaults { $0.failReads = true; $0.failWrites = true }
        #expect(try f.mismatches() == 0)
        #expect(f.record.columns[1].state == .maintenance)
        // An added column failing instead: rebuilt from the parity too.
        f.device(victim).setFaults(FaultyDevice.Faults())
        let f2 = try GrowFixture(type: .raid5, deviceBytes: [64 << 10, 64 << 10, 64 << 10], interlaceBlocks: 8)
        try f2.fillRandom(0..<f2.size, &rng)
        let add2 = try f2.addDevices([64 << 10])
        try f2.zero(add2)
        let s2 = f2.size
        try f2.commitGrow(columns: add2)
        try f2.fillRandom(s2..<f2.size, &rng)
        f2.device(add2[0].uuid).updateFaults { $0.failReads = true }
        #expect(try f2.mismatches() == 0)
    }

    @Test("grow while writers run: no write is lost, parity stays clean", arguments: [VolumeType.stripe, .raid5])
    func growUnderLoad(_ type: VolumeType) throws {
        let f = try GrowFixture(type: type, deviceBytes: [256 << 10, 256 << 10, 256 << 10], interlaceBlocks: 8)
        let oldSize = f.size
        let threads = 6
        let region = oldSize / threads
        let started = Atomic<Int>(0)
        let grown = Atomic<Bool>(false)
        let failures = Atomic<Int>(0)
        let group = DispatchGroup()
        for t in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var rng = SeededRNG(seed: UInt64(200 + t))
                var i = 0
                // Write until the grow has happened, and then some more.
                while i < 40 || !grown.load(ordering: .acquiring) {
                    let len = Int.random(in: 1...9000, using: &rng)
                    let o = Int.random(in: 0...(region - len), using: &rng)
                    do { try f.write(t * region + o, (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }) } catch {
                        failures.add(1, ordering: .relaxed)
                        return
                    }
                    i += 1
                    if i == 5 { started.add(1, ordering: .releasing) }
                    if i > 100_000 { return }
                }
            }
        }
        while started.load(ordering: .acquiring) < threads { usleep(1000) }
        let add: [DeviceRecord]
        if type == .raid5 {
            add = try f.addDevices([256 << 10])
            try f.zero(add)
            try f.commitGrow(columns: add)
        } else {
            add = try f.addDevices([128 << 10, 128 << 10])
            try f.commitGrow(row: add, interlaceBlocks: 16)
        }
        grown.store(true, ordering: .releasing)
        // New space while the old writers still run.
        var rng = SeededRNG(seed: 99)
        try f.fillRandom(oldSize..<f.size, &rng)
        group.wait()
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(try f.mismatches() == 0)
        if type == .raid5 { #expect(try f.parityErrors().isEmpty) }
    }

    @Test("zeroing writes zeroes over exactly the asked range of each data area")
    func zeroRange() throws {
        let (rec, dev) = GrowFixture.makeDevice(index: 7, dataBytes: 64 << 10, garbage: true)
        let before = try dev.base.read(count: Int(dev.sizeBytes), at: 0)
        try VolumeGrowth.zero([.init(device: dev, dataStartBlock: rec.dataStartBlock)], fromBlock: 10, blocks: 20)
        let after = try dev.base.read(count: Int(dev.sizeBytes), at: 0)
        let lo = Int((rec.dataStartBlock + 10) * 512), hi = Int((rec.dataStartBlock + 30) * 512)
        #expect(after[lo..<hi].allSatisfy { $0 == 0 })
        #expect(after[..<lo] == before[..<lo])
        #expect(after[hi...] == before[hi...])
    }

    @Test("size of malformed records is 0, never a crash")
    func malformedSizes() {
        let bad = VolumeRecord(name: "x", type: .raid5, columns: [ComponentRecord(device: UUID())], originalColumnCount: 2,
                               interlaceBlocks: 0, columnBlocks: 10)
        #expect(VolumeGrowth.sizeBytes(of: bad) == 0)
        let empty = VolumeRecord(name: "y", type: .stripe, rows: [RowRecord(interlaceBlocks: 8, componentBlocks: 8, components: [])])
        #expect(VolumeGrowth.sizeBytes(of: empty) == 0)
    }
}
