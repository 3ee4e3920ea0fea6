import Testing
import MetaLayout

@Suite("Soft partition layout")
struct SoftPartitionLayoutTests {
    typealias E = SoftPartitionLayout.Extent

    @Test func piecesCrossExtentsInOrder() {
        let l = SoftPartitionLayout(extents: [E(watermarkBlock: 100, blocks: 10), E(watermarkBlock: 500, blocks: 5), E(watermarkBlock: 40, blocks: 20)])
        #expect(l.totalBlocks == 35)
        #expect(l.pieces(block: 0, count: 35) == [
            .init(logicalBlock: 0, parentBlock: 108, count: 10),
            .init(logicalBlock: 10, parentBlock: 508, count: 5),
            .init(logicalBlock: 15, parentBlock: 48, count: 20),
        ])
        #expect(l.pieces(block: 12, count: 5) == [.init(logicalBlock: 12, parentBlock: 510, count: 3), .init(logicalBlock: 15, parentBlock: 48, count: 2)])
        #expect(l.pieces(block: 34, count: 10) == [.init(logicalBlock: 34, parentBlock: 67, count: 1)], "clipped at the end")
        #expect(l.pieces(block: 35, count: 1).isEmpty)
        #expect(l.pieces(block: 3, count: 0).isEmpty)
    }

    /// Every logical block maps to exactly one parent block, inside its extent's data and
    /// never on a watermark, whatever the split.
    @Test func everyBlockMapsOnceOutsideWatermarks() {
        let l = SoftPartitionLayout(extents: [E(watermarkBlock: 0, blocks: 7), E(watermarkBlock: 64, blocks: 3), E(watermarkBlock: 20, blocks: 11)])
        var seen = Set<UInt64>()
        for start in 0..<l.totalBlocks {
            for count in 1...(l.totalBlocks - start) {
                let ps = l.pieces(block: start, count: count)
                #expect(ps.reduce(0) { $0 + $1.count } == count)
                if start == 0 && count == l.totalBlocks {
                    for p in ps { for b in p.parentBlock..<(p.parentBlock + p.count) { seen.insert(b) } }
                }
            }
        }
        #expect(seen.count == Int(l.totalBlocks))
        for e in l.extents { for b in e.watermarkBlock..<e.dataBlock { #expect(!seen.contains(b)) } }
    }

    @Test func allocationIsFirstFitAlignedAndSplitsWhenItMust() {
        // Data starts on multiples of 384 blocks (a 4-column RAID-5's 64 KiB lines).
        let a = SoftPartitionLayout.allocate(blocks: 1000, parentBlocks: 10_000, used: [], alignment: 384, granularity: 8)
        #expect(a == [E(watermarkBlock: 376, blocks: 1000)])
        let used = a! + [E(watermarkBlock: 2296, blocks: 5000)]
        // Free: 1384..<2296 (room for data from 1536: 760 blocks), then 7304..<10000.
        let b = SoftPartitionLayout.allocate(blocks: 2000, parentBlocks: 10_000, used: used, alignment: 384, granularity: 8)
        #expect(b == [E(watermarkBlock: 1528, blocks: 760), E(watermarkBlock: 7672, blocks: 1240)])
        for e in b! { #expect(e.dataBlock % 384 == 0) }
        #expect(SoftPartitionLayout.allocate(blocks: 9000, parentBlocks: 10_000, used: used, alignment: 384) == nil)
        #expect(SoftPartitionLayout.allocate(blocks: 13, parentBlocks: 10_000, used: [], alignment: 8, granularity: 8)
                == [E(watermarkBlock: 0, blocks: 16)], "rounded up to whole sectors")
    }

    @Test func explicitExtentsMustNotOverlapWatermarksOrTheEnd() {
        let used = [E(watermarkBlock: 100, blocks: 50)]  // 100..<158
        #expect(SoftPartitionLayout.fits(E(watermarkBlock: 158, blocks: 10), parentBlocks: 1000, used: used))
        #expect(!SoftPartitionLayout.fits(E(watermarkBlock: 150, blocks: 10), parentBlocks: 1000, used: used))
        #expect(SoftPartitionLayout.fits(E(watermarkBlock: 90, blocks: 2), parentBlocks: 1000, used: used), "right before the watermark")
        #expect(!SoftPartitionLayout.fits(E(watermarkBlock: 90, blocks: 3), parentBlocks: 1000, used: used), "its data would cover the watermark")
        #expect(!SoftPartitionLayout.fits(E(watermarkBlock: 990, blocks: 10), parentBlocks: 1000, used: used))
        #expect(SoftPartitionLayout.freeRuns(parentBlocks: 1000, used: used) == [0..<100, 158..<1000])
    }
}
