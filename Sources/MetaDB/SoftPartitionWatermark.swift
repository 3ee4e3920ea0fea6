import Foundation
import MetaLayout

/// The 4 KiB header before every extent of a soft partition (SVM's watermark,
/// `sp_ext_wm`): which soft partition the extent belongs to, where it is in it, and a
/// checksum. `metactl recover` rebuilds the soft partitions of a volume from these alone.
/// Layout (little-endian, `docs/FORMAT.md`, "Soft partition watermark"):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `MCTLSPWM` |
/// | 8 | 4 | version (1) |
/// | 12 | 4 | CRC32C of the 4096 bytes with this field zero |
/// | 16 | 16 | soft partition id (UUID) |
/// | 32 | 8 | generation (grows with every change of the extents) |
/// | 40 | 4 | this extent's index |
/// | 44 | 4 | the partition's extent count |
/// | 48 | 8 | the extent's data blocks |
/// | 56 | 8 | this watermark's own block in the parent (a copy found elsewhere is not taken) |
/// | 64 | 1 | state: 1 in use, 0 free (a cleared partition's extents) |
/// | 65 | 1 | name length (1–63) |
/// | 66 | 63 | name (UTF-8) |
///
/// The rest is zero.
public struct SoftPartitionWatermark: Sendable, Equatable {
    public static let size = 4096
    static let magic: [UInt8] = Array("MCTLSPWM".utf8)

    public var id: UUID
    public var name: String
    public var generation: UInt64
    public var index: UInt32
    public var count: UInt32
    public var blocks: UInt64
    /// The block (in the parent) the watermark is written at.
    public var block: UInt64
    public var inUse: Bool

    public init(id: UUID, name: String, generation: UInt64, index: UInt32, count: UInt32, blocks: UInt64, block: UInt64, inUse: Bool = true) {
        self.id = id; self.name = name; self.generation = generation; self.index = index; self.count = count
        self.blocks = blocks; self.block = block; self.inUse = inUse
    }

    /// The 4096 bytes on disk.
    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        for (i, c) in Self.magic.enumerated() { b[i] = c }
        LE.put(UInt32(1), &b, 8)
        LE.putUUID(id, &b, 16)
        LE.put(generation, &b, 32)
        LE.put(index, &b, 40)
        LE.put(count, &b, 44)
        LE.put(blocks, &b, 48)
        LE.put(block, &b, 56)
        b[64] = inUse ? 1 : 0
        let n = Array(name.utf8.prefix(63))
        b[65] = UInt8(n.count)
        for (i, c) in n.enumerated() { b[66 + i] = c }
        LE.put(CRC32C.checksum(b), &b, 12)
        return b
    }

    /// Decodes a watermark read at parent block `at`; nil for anything else (wrong magic,
    /// version or checksum, a copy found at another block, malformed fields).
    public static func decode(_ bytes: [UInt8], at: UInt64) -> SoftPartitionWatermark? {
        guard bytes.count >= size, Array(bytes[0..<8]) == magic, LE.get(UInt32.self, bytes, 8) == 1 else { return nil }
        var b = Array(bytes[0..<size])
        let crc = LE.get(UInt32.self, b, 12)
        LE.put(UInt32(0), &b, 12)
        guard CRC32C.checksum(b) == crc else { return nil }
        let n = Int(b[65])
        guard (1...63).contains(n), b[64] <= 1, let name = String(bytes: b[66..<66 + n], encoding: .utf8) else { return nil }
        let w = SoftPartitionWatermark(id: LE.getUUID(b, 16), name: name, generation: LE.get(UInt64.self, b, 32),
                                       index: LE.get(UInt32.self, b, 40), count: LE.get(UInt32.self, b, 44),
                                       blocks: LE.get(UInt64.self, b, 48), block: LE.get(UInt64.self, b, 56), inUse: b[64] == 1)
        guard w.block == at, w.count > 0, w.index < w.count, w.blocks > 0 else { return nil }
        return w
    }

    /// A soft partition found by ``recover(_:)``.
    public struct Found: Sendable, Equatable {
        public var id: UUID
        public var name: String
        public var generation: UInt64
        public var extents: [SoftPartitionLayout.Extent]
    }

    /// Soft partitions from the watermarks found in a parent: per id, the newest generation
    /// whose every extent (0 ..< count) was found in use; extents must not overlap. The
    /// rest (free watermarks, incomplete or older generations) is left out.
    public static func recover(_ found: [SoftPartitionWatermark]) -> [Found] {
        var byID: [UUID: [SoftPartitionWatermark]] = [:]
        for w in found where w.inUse { byID[w.id, default: []].append(w) }
        var out: [Found] = []
        for (id, ws) in byID {
            // A grow only appends extents (the earlier ones keep their place), and writes the
            // new generation's watermarks new extents first: generation G is whole when each
            // of its indices has a watermark of generation G or, for an index it kept, older.
            for gen in Set(ws.map(\.generation)).sorted(by: >) {
                let top = ws.filter { $0.generation == gen }
                guard let head = top.first, top.allSatisfy({ $0.count == head.count }) else { continue }
                var exts: [SoftPartitionLayout.Extent] = []
                for i in 0..<head.count {
                    guard let w = ws.filter({ $0.index == i && $0.generation <= gen }).max(by: { $0.generation < $1.generation }) else { break }
                    exts.append(SoftPartitionLayout.Extent(watermarkBlock: w.block, blocks: w.blocks))
                }
                guard exts.count == Int(head.count) else { continue }
                out.append(Found(id: id, name: head.name, generation: gen, extents: exts))
                break
            }
        }
        // Overlapping claims (a stale partition's old extents reused by a newer one): the
        // newer generation's extents win; a partition that overlaps one already taken is dropped.
        var taken: [SoftPartitionLayout.Extent] = []
        var kept: [Found] = []
        for f in out.sorted(by: { ($0.generation, $0.name) > ($1.generation, $1.name) }) {
            let clash = f.extents.contains { e in taken.contains { t in t.watermarkBlock < e.end && e.watermarkBlock < t.end } }
            if clash { continue }
            taken += f.extents
            kept.append(f)
        }
        return kept.sorted { $0.name < $1.name }
    }
}
