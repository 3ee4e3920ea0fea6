import Foundation
import MetaTestSupport
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine
import MetaLayout
import Synchronization

/// Devices added to a fixture after creation.
final class DeviceTable: @unchecked Sendable {
    private let lock = NSLock()
    private var map: [UUID: any BlockDevice] = [:]
    func get(_ u: UUID) -> (any BlockDevice)? { lock.withLock { map[u] } }
    func set(_ u: UUID, _ d: any BlockDevice) { lock.withLock { map[u] = d } }
}

/// A volume over in-memory fault-injecting devices plus a byte model of its contents.
final class EngineFixture: @unchecked Sendable {
    let store: InMemoryConfigStore
    let devices: [FaultyDevice]
    let volume: Volume
    var model: [UInt8]
    let name = "d10"
    static let dataStartBlock: UInt64 = 8
    /// Devices added after creation (replacements), by UUID.
    let extra: DeviceTable
    /// The devices made at creation, by UUID (records may leave the configuration later).
    let original: [UUID: FaultyDevice]

    /// `sectorSize`: the logical sector of every device (``MemoryDevice`` refuses I/O not
    /// aligned to one larger than 512 with `EINVAL`).
    init(type: VolumeType, columns: Int, rows: Int = 1, interlaceBlocks: UInt64 = 8, deviceBytes: UInt64 = 256 << 10,
         sectorSize: Int = 512, init initialize: Bool = false, onCommit: (@Sendable (SetConfig) -> Void)? = nil) throws {
        var devs: [FaultyDevice] = []
        var records: [DeviceRecord] = []
        let count = type.hasColumns ? columns : columns * rows
        for i in 0..<count {
            let mem = MemoryDevice(path: "mem\(i)", sizeBytes: deviceBytes + Self.dataStartBlock * 512 + UInt64(i) * 4096,
                                   sectorSize: sectorSize)
            devs.append(FaultyDevice(mem))
            records.append(DeviceRecord(uuid: UUID(), lastPath: "mem\(i)", sizeBytes: mem.sizeBytes,
                                        dataStartBlock: Self.dataStartBlock, replicaCount: 0, role: .component))
        }
        let dataBlocks = deviceBytes / 512
        var vol: VolumeRecord
        switch type {
        case .raid5, .raid6:
            vol = VolumeRecord(name: name, type: type,
                               columns: records.map { ComponentRecord(device: $0.uuid, state: initialize ? .initializing : .okay) },
                               originalColumnCount: columns, interlaceBlocks: interlaceBlocks, columnBlocks: dataBlocks)
            if initialize {
                vol.resync = ResyncCheckpoint(kind: .initialize, totalBlocks: dataBlocks / interlaceBlocks * interlaceBlocks)
            }
        case .concat, .stripe:
            var rs: [RowRecord] = []
            for r in 0..<rows {
                let members = records[(r * columns)..<((r + 1) * columns)]
                rs.append(RowRecord(interlaceBlocks: interlaceBlocks, componentBlocks: dataBlocks,
                                    components: members.map { ComponentRecord(device: $0.uuid) }))
            }
            vol = VolumeRecord(name: name, type: type, rows: rs)
        case .softpart, .mirror:
            preconditionFailure("soft partitions and mirrors are opened over other volumes (SoftPartitionEngineTests, MirrorEngineTests)")
        }
        let config = SetConfig(setName: "test", devices: records, volumes: [vol])
        store = InMemoryConfigStore(config, onCommit: onCommit)
        devices = devs
        let byUUID = Dictionary(uniqueKeysWithValues: zip(records.map(\.uuid), devs.map { $0 as any BlockDevice }))
        original = Dictionary(uniqueKeysWithValues: zip(records.map(\.uuid), devs))
        let extra = DeviceTable()
        self.extra = extra
        volume = try VolumeFactory.open(vol, context: VolumeContext(store: store, devices: { u in byUUID[u] ?? extra.get(u) }))
        model = [UInt8](repeating: 0, count: Int(volume.sizeBytes))
    }

    var size: Int { model.count }

    func write(_ offset: Int, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try volume.write(offset: UInt64(offset), from: $0) }
        model.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }

    func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try volume.read(offset: UInt64(offset), into: $0) }
        return out
    }

    /// Fills the whole volume with random data.
    func fillRandom(_ rng: inout SeededRNG) throws {
        let chunk = 64 << 10
        var off = 0
        while off < size {
            let n = min(chunk, size - off)
            try write(off, rng.bytes(n))
            off += n
        }
    }

    /// Bytes of the model that differ from the volume (reads in 64 KiB chunks).
    func mismatches() throws -> Int {
        var bad = 0
        var off = 0
        while off < size {
            let n = min(64 << 10, size - off)
            let got = try read(off, n)
            for i in 0..<n where got[i] != model[off + i] { bad += 1 }
            off += n
        }
        return bad
    }

    func state(ofColumn c: Int) -> ComponentState {
        store.config.volume(named: name)!.columns[c].state
    }

    /// The device (without injected faults) holding a UUID now.
    func rawDevice(_ u: UUID) -> any BlockDevice {
        if let d = original[u] { return d.base }
        let d = extra.get(u)!
        return (d as? FaultyDevice)?.base ?? d
    }

    /// Whether a RAID-6 line's P and Q (in `units`, one per column) match its data, computed
    /// byte by byte over GF(2^8) with polynomial 0x11D (Horner: Q = D0 + 2(D1 + 2(D2 + …))).
    static func pqRight(_ layout: RAID5Layout, line: UInt64, units: [[UInt8]]) -> Bool {
        let n = units[0].count
        let data = layout.dataColumnsInUnitOrder(line: line).map { units[$0] }
        var p = [UInt8](repeating: 0, count: n), q = [UInt8](repeating: 0, count: n)
        for d in data.reversed() {
            for i in 0..<n {
                p[i] ^= d[i]
                q[i] = ((q[i] << 1) ^ (q[i] & 0x80 != 0 ? 0x1D : 0)) ^ d[i]
            }
        }
        return p == units[layout.parityColumn(line: line)] && q == units[layout.qColumn(line: line)!]
    }

    /// Checks RAID-5 parity (RAID-6: P and Q) of every line directly on the devices:
    /// returns bad lines.
    func parityErrors() throws -> [UInt64] {
        let rec = store.config.volume(named: name)!
        let layout = rec.raid5Layout!
        let n = Int(layout.interlaceBlocks * 512)
        var bad: [UInt64] = []
        for line in 0..<layout.lineCount {
            if layout.parityCount == 2 {
                let units = try (0..<layout.columnCount).map { c in
                    try rawDevice(rec.columns[c].activeDevice).read(count: n, at: (Self.dataStartBlock + line * layout.interlaceBlocks) * 512)
                }
                if !Self.pqRight(layout, line: line, units: units) { bad.append(line) }
                continue
            }
            var acc = [UInt8](repeating: 0, count: n)
            for c in 0..<layout.columnCount {
                let b = try rawDevice(rec.columns[c].activeDevice).read(count: n, at: (Self.dataStartBlock + line * layout.interlaceBlocks) * 512)
                for i in 0..<n { acc[i] ^= b[i] }
            }
            if acc.contains(where: { $0 != 0 }) { bad.append(line) }
        }
        return bad
    }
}
