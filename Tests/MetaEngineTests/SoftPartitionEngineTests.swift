import Foundation
import Testing
import MetaDB
import MetaDevices
import MetaEngine
import MetaLayout
import MetaModel

/// Soft partitions over a RAID-5 on memory devices: requests are split across extents onto
/// the parent, the RAID-5's redundancy serves them degraded, and the watermarks are found
/// again by a scan of the parent.
@Suite("Soft partition engine")
struct SoftPartitionEngineTests {
    /// A RAID-5 of 4 columns of 1 MiB (3 MiB) and two soft partitions interleaved on it:
    /// d1 of two extents with d2's between them.
    static func rig() throws -> (EngineFixture, SoftPartitionVolume, SoftPartitionVolume, VolumeRecord, VolumeRecord) {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 16, deviceBytes: 1 << 20)
        var r1 = VolumeRecord(name: "d1", type: .softpart)
        r1.softPartition = SoftPartitionRecord(parent: "d10", extents: [SoftExtent(watermarkBlock: 40, blocks: 1000),
                                                                       SoftExtent(watermarkBlock: 3000, blocks: 520)])
        var r2 = VolumeRecord(name: "d2", type: .softpart)
        r2.softPartition = SoftPartitionRecord(parent: "d10", extents: [SoftExtent(watermarkBlock: 1048, blocks: 1600)])
        let ctx = f.volume.context
        let v1 = try #require(try VolumeFactory.open(r1, context: ctx, parent: f.volume) as? SoftPartitionVolume)
        let v2 = try #require(try VolumeFactory.open(r2, context: ctx, parent: f.volume) as? SoftPartitionVolume)
        return (f, v1, v2, r1, r2)
    }

    static func pattern(_ seed: UInt8, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

    @Test func dataLandsInItsExtentsAndReadsBackDegraded() throws {
        let (f, v1, v2, _, _) = try Self.rig()
        #expect(v1.sizeBytes == 1520 * 512)
        let a = Self.pattern(1, Int(v1.sizeBytes)), b = Self.pattern(2, Int(v2.sizeBytes))
        try a.withUnsafeBytes { try v1.write(offset: 0, from: $0) }
        try b.withUnsafeBytes { try v2.write(offset: 0, from: $0) }
        // Where the bytes are in the parent: d1's second extent starts at parent block 3008.
        let tail = try f.read(3008 * 512, 520 * 512)
        #expect(tail == Array(a[(1000 * 512)...]))
        #expect(try f.read(1056 * 512, 4096) == Array(b[0..<4096]))
        // A column fails: the RAID-5 reconstructs, the soft partitions see the same bytes.
        f.devices[1].updateFaults { $0.failReads = true; $0.failWrites = true }
        var back = [UInt8](repeating: 0, count: a.count)
        try back.withUnsafeMutableBytes { try v1.read(offset: 0, into: $0) }
        #expect(back == a)
        // A request across the extent boundary, unaligned.
        var mid = [UInt8](repeating: 0, count: 3000)
        try mid.withUnsafeMutableBytes { try v1.read(offset: 1000 * 512 - 1234, into: $0) }
        #expect(mid == Array(a[(1000 * 512 - 1234)..<(1000 * 512 - 1234 + 3000)]))
        #expect(throws: VolumeIOError.self) { try mid.withUnsafeMutableBytes { try v1.read(offset: v1.sizeBytes - 10, into: $0) } }
    }

    @Test func watermarksAreFoundAgainAndClearedOnesAreNot() throws {
        let (f, v1, _, r1, r2) = try Self.rig()
        try SoftPartitionVolume.writeWatermarks(of: r1, to: f.volume)
        try SoftPartitionVolume.writeWatermarks(of: r2, to: f.volume)
        // Data that happens to look like a watermark at the wrong block is not taken.
        let fake = SoftPartitionWatermark(id: UUID(), name: "ghost", generation: 1, index: 0, count: 1, blocks: 8, block: 9).encode()
        try fake.withUnsafeBytes { try v1.write(offset: 100 * 512, from: $0) }
        let scan = SoftPartitionVolume.scanWatermarks(of: f.volume)
        #expect(scan.unreadable == 0)
        let found = SoftPartitionWatermark.recover(scan.found)
        #expect(found.map(\.name) == ["d1", "d2"])
        #expect(found.first { $0.name == "d1" }?.extents == r1.softPartition!.layoutExtents)
        #expect(found.first { $0.name == "d2" }?.id == r2.softPartition!.id)
        try SoftPartitionVolume.writeWatermarks(of: r1, inUse: false, to: f.volume)
        #expect(SoftPartitionWatermark.recover(SoftPartitionVolume.scanWatermarks(of: f.volume).found).map(\.name) == ["d2"])
    }
}
