import MetaLayout
import Testing

/// The RAID-6 address map: md's left-symmetric RAID-6 (P rotating backwards, Q on the
/// column after P, data starting after Q), checked against a table and exhaustively.
@Suite("RAID6Layout")
struct RAID6LayoutTests {
    /// The worked example of docs/LAYOUTS.md: 5 columns, interlace 1 block, 5 lines.
    @Test("known answer: 5 columns, interlace 1 (docs/LAYOUTS.md table)")
    func knownAnswer() {
        let layout = RAID5Layout(originalColumns: 5, interlaceBlocks: 1, columnBlocks: 5, parityCount: 2)
        #expect(layout.totalBlocks == 15)
        #expect(layout.dataColumnsPerLine == 3)
        #expect((0..<5).map { layout.parityColumn(line: $0) } == [4, 3, 2, 1, 0])
        #expect((0..<5).map { layout.qColumn(line: $0) } == [0, 4, 3, 2, 1])
        // [line][column] -> logical block; -1 = P, -2 = Q.
        let table: [[Int]] = [
            [-2, 0, 1, 2, -1],
            [3, 4, 5, -1, -2],
            [7, 8, -1, -2, 6],
            [11, -1, -2, 9, 10],
            [-1, -2, 12, 13, 14],
        ]
        for (line, row) in table.enumerated() {
            for (c, want) in row.enumerated() {
                let got = layout.logicalBlock(column: c, columnBlock: UInt64(line))
                #expect(got == (want >= 0 ? UInt64(want) : nil), "line \(line) column \(c)")
                if want >= 0 {
                    let at = layout.locate(UInt64(want))
                    #expect(at.line == UInt64(line) && at.column == c && at.columnBlock == UInt64(line))
                }
                #expect(layout.isParity(column: c, line: UInt64(line)) == (want < 0))
            }
        }
    }

    @Test("4–8 columns × 0–2 added × interlace 1–3 × 0–9 lines: a bijection, data units in syndrome order",
          arguments: 4...8)
    func exhaustive(originalColumns n: Int) {
        for m in 0...2 {
            for i in UInt64(1)...3 {
                for lines in UInt64(0)...9 {
                    let layout = RAID5Layout(originalColumns: n, addedColumns: m, interlaceBlocks: i,
                                             columnBlocks: lines * i + i - 1, parityCount: 2)
                    #expect(layout.totalBlocks == lines * i * UInt64(n - 2 + m))
                    var seen = Set<[UInt64]>()
                    for b in 0..<layout.totalBlocks {
                        let at = layout.locate(b)
                        #expect(seen.insert([UInt64(at.column), at.columnBlock]).inserted)
                        #expect(!layout.isParity(column: at.column, line: at.line))
                        #expect(layout.logicalBlock(column: at.column, columnBlock: at.columnBlock) == b)
                        // Logical order within a line follows the data unit index (Q's coefficients).
                        let k = layout.syndromeIndex(column: at.column, line: at.line)!
                        let u = b < layout.originalCapacityBlocks
                            ? Int(b / i % UInt64(n - 2)) : n - 2 + at.column - n
                        #expect(k == u)
                    }
                    for line in 0..<lines {
                        let p = layout.parityColumn(line: line), q = layout.qColumn(line: line)!
                        #expect(p != q && q == (p + 1) % n)
                        #expect(layout.syndromeIndex(column: p, line: line) == nil)
                        #expect(layout.syndromeIndex(column: q, line: line) == nil)
                        let order = layout.dataColumnsInUnitOrder(line: line)
                        #expect(order.count == layout.dataColumnsPerLine)
                        #expect(order.enumerated().allSatisfy { layout.syndromeIndex(column: $0.element, line: line) == $0.offset })
                        #expect(Set(order) == Set(layout.dataColumns(line: line)))
                    }
                }
            }
        }
    }
}
