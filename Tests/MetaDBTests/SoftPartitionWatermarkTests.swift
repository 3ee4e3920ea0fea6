import Foundation
import Testing
import MetaDB
import MetaLayout

@Suite("Soft partition watermarks")
struct SoftPartitionWatermarkTests {
    static let id = UUID()
    static func wm(_ i: UInt32, of n: UInt32, gen: UInt64, at block: UInt64, blocks: UInt64 = 100, name: String = "d1",
                   id: UUID = id, inUse: Bool = true) -> SoftPartitionWatermark {
        SoftPartitionWatermark(id: id, name: name, generation: gen, index: i, count: n, blocks: blocks, block: block, inUse: inUse)
    }

    @Test func roundTripsAndRefusesDamage() {
        let w = Self.wm(1, of: 3, gen: 7, at: 4096, name: "web-data.1")
        let b = w.encode()
        #expect(b.count == 4096)
        #expect(SoftPartitionWatermark.decode(b, at: 4096) == w)
        #expect(SoftPartitionWatermark.decode(b, at: 4104) == nil, "a copy found at another block is not taken")
        for at in [0, 9, 20, 40, 66, 200, 4095] {
            var bad = b
            bad[at] ^= 0x01
            #expect(SoftPartitionWatermark.decode(bad, at: 4096) == nil, "byte \(at) flipped")
        }
        #expect(SoftPartitionWatermark.decode(Array(b[0..<100]), at: 4096) == nil)
        #expect(SoftPartitionWatermark.decode([UInt8](repeating: 0, count: 4096), at: 4096) == nil)
    }

    @Test func recoverTakesWholePartitionsOnly() {
        let other = UUID()
        let found = [
            Self.wm(0, of: 2, gen: 1, at: 10), Self.wm(1, of: 2, gen: 1, at: 500),
            Self.wm(0, of: 2, gen: 1, at: 1000, name: "d2", id: other),  // its second extent is gone
            Self.wm(0, of: 1, gen: 1, at: 3000, name: "d3", id: UUID(), inUse: false),  // cleared
        ]
        let r = SoftPartitionWatermark.recover(found)
        #expect(r.count == 1)
        #expect(r.first?.name == "d1")
        #expect(r.first?.extents == [SoftPartitionLayout.Extent(watermarkBlock: 10, blocks: 100),
                                     SoftPartitionLayout.Extent(watermarkBlock: 500, blocks: 100)])
    }

    /// A grow writes generation 2 new extents first, then the kept ones: cut anywhere, the
    /// partition is recovered, at the old size or at the new one.
    @Test func recoverAfterAGrowCutAnywhere() {
        let old = [Self.wm(0, of: 2, gen: 1, at: 10), Self.wm(1, of: 2, gen: 1, at: 500)]
        let new = [Self.wm(2, of: 3, gen: 2, at: 900), Self.wm(0, of: 3, gen: 2, at: 10), Self.wm(1, of: 3, gen: 2, at: 500)]
        for cut in 0...new.count {
            var disk: [UInt64: SoftPartitionWatermark] = [:]
            for w in old { disk[w.block] = w }
            for w in new.prefix(cut) { disk[w.block] = w }
            let r = SoftPartitionWatermark.recover(Array(disk.values))
            #expect(r.count == 1, "cut after \(cut) watermark(s)")
            #expect(r.first?.extents.count == (cut == 0 ? 2 : 3), "cut after \(cut)")
        }
    }
}
