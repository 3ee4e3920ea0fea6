import MetaTestSupport
import Testing
@testable import MetaLayout

/// A physical address in a concat/stripe volume.
struct StripeAddress: Hashable, CustomStringConvertible {
    var row: Int
    var column: Int
    var block: UInt64
    var description: String { "(row \(row), column \(column), block \(block))" }
}

/// Reference map built by enumeration rather than arithmetic: walk each row stripe by
/// stripe, component by component, block by block, handing out logical blocks in order.
/// A one-component row hands out its whole component; a striped row only whole
/// interlace units of its smallest component.
func referenceStripeMap(_ rows: [StripeRow]) -> [StripeAddress] {
    var out: [StripeAddress] = []
    for (r, row) in rows.enumerated() {
        if row.componentCount == 1 {
            for cb in 0..<row.componentBlocks { out.append(StripeAddress(row: r, column: 0, block: cb)) }
            continue
        }
        var stripe: UInt64 = 0
        while (stripe + 1) * row.interlaceBlocks <= row.componentBlocks {
            for c in 0..<row.componentCount {
                for o in 0..<row.interlaceBlocks {
                    out.append(StripeAddress(row: r, column: c, block: stripe * row.interlaceBlocks + o))
                }
            }
            stripe += 1
        }
    }
    return out
}

extension StripeLayout {
    func address(_ b: UInt64) -> StripeAddress {
        let l = locate(b)
        return StripeAddress(row: l.row, column: l.column, block: l.componentBlock)
    }
}

/// Checks one `extents(block:count:)` answer: exact coverage in logical order, agreement
/// with `locate` (every block when `everyBlock`, else both ends of each piece), pieces that
/// stay in one row, in one interlace unit on striped rows, inside the used area, and are
/// as long as those limits allow.
func checkStripeExtents(_ layout: StripeLayout, start: UInt64, count: UInt64, everyBlock: Bool,
                        _ ch: inout Checker) {
    let ex = layout.extents(block: start, count: count)
    let end = start + count
    var next = start
    for e in ex {
        guard ch.check(e.blockCount > 0, "empty piece for [\(start), +\(count))"),
              ch.check(e.logicalBlock == next, "piece starts at \(e.logicalBlock), expected \(next)"),
              ch.check(e.row >= 0 && e.row < layout.rows.count, "piece row \(e.row) out of range")
        else { return }
        let row = layout.rows[e.row]
        let rowStart = layout.rowStarts[e.row]
        let rowEnd = rowStart + row.capacityBlocks
        let pieceEnd = e.logicalBlock + e.blockCount
        ch.check(pieceEnd <= end, "piece runs past the request end \(end)")
        ch.check(e.logicalBlock >= rowStart && pieceEnd <= rowEnd,
                 "piece [\(e.logicalBlock), \(pieceEnd)) crosses row \(e.row) [\(rowStart), \(rowEnd))")
        ch.check(e.column >= 0 && e.column < row.componentCount, "piece column \(e.column) out of range")
        ch.check(e.componentBlock + e.blockCount <= row.usedComponentBlocks,
                 "piece ends at component block \(e.componentBlock + e.blockCount) beyond used \(row.usedComponentBlocks)")
        if row.componentCount > 1 {
            let i = row.interlaceBlocks
            ch.check(e.componentBlock / i == (e.componentBlock + e.blockCount - 1) / i,
                     "piece at component block \(e.componentBlock) +\(e.blockCount) crosses an interlace unit (I=\(i))")
            ch.check(pieceEnd == end || (e.componentBlock + e.blockCount) % i == 0,
                     "piece ends at \(pieceEnd) before the unit end without reaching the request end")
        } else {
            ch.check(pieceEnd == end || pieceEnd == rowEnd, "concat piece split before the row end")
        }
        let offsets: [UInt64] = everyBlock ? Array(0..<e.blockCount) : [0, e.blockCount - 1]
        for o in offsets {
            let want = StripeAddress(row: e.row, column: e.column, block: e.componentBlock + o)
            let got = layout.address(e.logicalBlock + o)
            ch.check(got == want, "extent says block \(e.logicalBlock + o) is at \(want), locate says \(got)")
        }
        next = pieceEnd
    }
    ch.check(next == end, "extents of [\(start), +\(count)) cover up to \(next) only")
}

/// Full check of one small layout against the reference enumeration and every invariant.
func verifyStripeLayoutExhaustively(_ layout: StripeLayout, _ ch: inout Checker) {
    let rows = layout.rows
    // Capacity formulas: row = N × used size of the smallest component.
    var start: UInt64 = 0
    for (r, row) in rows.enumerated() {
        let used = row.componentCount == 1
            ? row.componentBlocks
            : row.componentBlocks - row.componentBlocks % row.interlaceBlocks
        ch.check(row.usedComponentBlocks == used, "row \(r) used \(row.usedComponentBlocks), expected \(used)")
        ch.check(row.usedComponentBlocks <= row.componentBlocks, "row \(r) uses more than the component")
        ch.check(row.capacityBlocks == UInt64(row.componentCount) * used, "row \(r) capacity")
        ch.check(layout.rowStarts[r] == start, "row \(r) starts at \(layout.rowStarts[r]), expected \(start)")
        start += row.capacityBlocks
    }
    ch.check(layout.totalBlocks == start, "total \(layout.totalBlocks), expected \(start)")

    // Forward map equals the enumerated reference; hence a bijection onto the used area.
    let reference = referenceStripeMap(rows)
    ch.check(UInt64(reference.count) == layout.totalBlocks,
             "reference has \(reference.count) blocks, layout \(layout.totalBlocks)")
    var seen = Set<StripeAddress>()
    for (i, want) in reference.enumerated() where UInt64(i) < layout.totalBlocks {
        let b = UInt64(i)
        let got = layout.address(b)
        ch.check(got == want, "block \(b) -> \(got), expected \(want)")
        ch.check(seen.insert(got).inserted, "block \(b) maps to \(got), already used")
        ch.check(layout.rowIndex(of: b) == got.row, "rowIndex(\(b))")
        let back = layout.logicalBlock(row: got.row, column: got.column, componentBlock: got.block)
        ch.check(back == b, "logicalBlock\(got) = \(String(describing: back)), expected \(b)")
        if ch.saturated { return }
    }

    // Inverse direction over every physical block (and a little beyond the used area).
    for (r, row) in rows.enumerated() {
        for c in 0..<row.componentCount {
            for cb in 0..<(row.componentBlocks + 2) {
                let l = layout.logicalBlock(row: r, column: c, componentBlock: cb)
                if cb < row.usedComponentBlocks {
                    let here = StripeAddress(row: r, column: c, block: cb)
                    ch.check(seen.contains(here), "used block \(here) is never mapped")
                    if let l {
                        ch.check(l < layout.totalBlocks && layout.address(l) == here, "locate(logicalBlock\(here))")
                    } else {
                        ch.check(false, "used block \(here) has no logical block")
                    }
                } else {
                    ch.check(l == nil, "block \(cb) beyond the used area of row \(r) maps to \(String(describing: l))")
                }
            }
        }
        ch.check(layout.logicalBlock(row: r, column: row.componentCount, componentBlock: 0) == nil,
                 "column past the row")
        ch.check(layout.logicalBlock(row: r, column: -1, componentBlock: 0) == nil, "negative column")
    }
    ch.check(layout.logicalBlock(row: rows.count, column: 0, componentBlock: 0) == nil, "row past the end")
    ch.check(layout.logicalBlock(row: -1, column: 0, componentBlock: 0) == nil, "negative row")
    ch.check(UInt64(seen.count) == layout.totalBlocks, "image has \(seen.count) blocks")

    // Extents: every (start, count) on small volumes, a spread of counts on larger ones.
    let total = layout.totalBlocks
    for s in 0...total {
        let counts: [UInt64]
        if total <= 40 {
            counts = Array(0...(total - s))
        } else {
            counts = Set([0, 1, 2, 3, 5, 8, 13, 21, total - s, (total - s) / 2]).filter { $0 <= total - s }.sorted()
        }
        for n in counts {
            checkStripeExtents(layout, start: s, count: n, everyBlock: true, &ch)
            if ch.saturated { return }
        }
    }
}

@Suite("StripeLayout")
struct StripeLayoutTests {
    @Test("single rows: 1–5 components × interlace 1–4 × sizes 0–14, exhaustively")
    func singleRowsExhaustive() {
        var geometries = 0
        for n in 1...5 {
            for i in UInt64(1)...4 {
                for size in UInt64(0)...14 {
                    var ch = Checker("stripe N=\(n) I=\(i) size=\(size)")
                    let layout = StripeLayout(rows: [StripeRow(componentCount: n, interlaceBlocks: i, componentBlocks: size)])
                    verifyStripeLayoutExhaustively(layout, &ch)
                    geometries += 1
                    if ch.failures > 0 { return }
                }
            }
        }
        #expect(geometries == 5 * 4 * 15)
    }

    /// Rows used to build multi-row volumes: concats, stripes, a row whose component is
    /// smaller than one interlace unit (capacity 0) and non-multiples of the interlace.
    static let palette: [StripeRow] = [
        StripeRow(componentCount: 1, interlaceBlocks: 1, componentBlocks: 5),
        StripeRow(componentCount: 1, interlaceBlocks: 3, componentBlocks: 0),
        StripeRow(componentCount: 2, interlaceBlocks: 2, componentBlocks: 7),
        StripeRow(componentCount: 3, interlaceBlocks: 1, componentBlocks: 4),
        StripeRow(componentCount: 4, interlaceBlocks: 3, componentBlocks: 13),
        StripeRow(componentCount: 2, interlaceBlocks: 4, componentBlocks: 3),
    ]

    static func allRowSequences(maxRows: Int) -> [[StripeRow]] {
        var result: [[StripeRow]] = []
        var frontier: [[StripeRow]] = [[]]
        for _ in 1...maxRows {
            frontier = frontier.flatMap { prefix in palette.map { prefix + [$0] } }
            result += frontier
        }
        return result
    }

    @Test("multi-row concat/stripe volumes (1–3 rows), exhaustively")
    func multiRowExhaustive() {
        let sequences = Self.allRowSequences(maxRows: 3)
        #expect(sequences.count == 6 + 36 + 216)
        for rows in sequences {
            var ch = Checker("rows \(rows.map { "\($0.componentCount)x\($0.interlaceBlocks)/\($0.componentBlocks)" })")
            verifyStripeLayoutExhaustively(StripeLayout(rows: rows), &ch)
            if ch.failures > 0 { return }
        }
    }

    @Test("known answer: 3-way stripe, interlace 2, component 5 blocks, then a 4-block concat row")
    func knownAnswer() {
        let layout = StripeLayout(rows: [
            StripeRow(componentCount: 3, interlaceBlocks: 2, componentBlocks: 5),
            StripeRow(componentCount: 1, interlaceBlocks: 2, componentBlocks: 4),
        ])
        #expect(layout.rows[0].usedComponentBlocks == 4)
        #expect(layout.rows[0].capacityBlocks == 12)
        #expect(layout.rowStarts == [0, 12])
        #expect(layout.totalBlocks == 16)
        let expected: [(UInt64, Int, Int, UInt64)] = [
            (0, 0, 0, 0), (1, 0, 0, 1), (2, 0, 1, 0), (3, 0, 1, 1), (4, 0, 2, 0), (5, 0, 2, 1),
            (6, 0, 0, 2), (7, 0, 0, 3), (8, 0, 1, 2), (9, 0, 1, 3), (10, 0, 2, 2), (11, 0, 2, 3),
            (12, 1, 0, 0), (13, 1, 0, 1), (14, 1, 0, 2), (15, 1, 0, 3),
        ]
        for (b, r, c, cb) in expected {
            #expect(layout.address(b) == StripeAddress(row: r, column: c, block: cb), "block \(b)")
        }
        // Block 4 of each component of row 0 is the unusable remainder.
        #expect(layout.logicalBlock(row: 0, column: 1, componentBlock: 4) == nil)
        let ex = layout.extents(block: 3, count: 11)
        #expect(ex == [
            StripeExtent(row: 0, column: 1, componentBlock: 1, blockCount: 1, logicalBlock: 3),
            StripeExtent(row: 0, column: 2, componentBlock: 0, blockCount: 2, logicalBlock: 4),
            StripeExtent(row: 0, column: 0, componentBlock: 2, blockCount: 2, logicalBlock: 6),
            StripeExtent(row: 0, column: 1, componentBlock: 2, blockCount: 2, logicalBlock: 8),
            StripeExtent(row: 0, column: 2, componentBlock: 2, blockCount: 2, logicalBlock: 10),
            StripeExtent(row: 1, column: 0, componentBlock: 0, blockCount: 2, logicalBlock: 12),
        ])
        #expect(layout.extents(block: 16, count: 0).isEmpty)
    }

    @Test("addresses outside the layout are rejected, not trapped on")
    func outOfRangeAddresses() {
        let layout = StripeLayout(rows: [
            StripeRow(componentCount: 1, interlaceBlocks: 8, componentBlocks: 10),
            StripeRow(componentCount: 3, interlaceBlocks: 4, componentBlocks: 10),
        ])
        #expect(layout.logicalBlock(row: 0, column: -1, componentBlock: 0) == nil)
        #expect(layout.logicalBlock(row: 1, column: -1, componentBlock: 0) == nil)
        #expect(layout.logicalBlock(row: 1, column: 3, componentBlock: 0) == nil)
        #expect(layout.logicalBlock(row: -1, column: 0, componentBlock: 0) == nil)
        #expect(layout.logicalBlock(row: 2, column: 0, componentBlock: 0) == nil)
        #expect(layout.logicalBlock(row: 0, column: 0, componentBlock: 10) == nil)
        #expect(layout.logicalBlock(row: 1, column: 2, componentBlock: 8) == nil)
        #expect(layout.logicalBlock(row: 1, column: 2, componentBlock: 7) == 10 + 23)
        #expect(layout.logicalBlock(row: 0, column: 0, componentBlock: .max) == nil)
        #expect(StripeLayout(rows: []).totalBlocks == 0)
        #expect(StripeLayout(rows: []).extents(block: 0, count: 0).isEmpty)
    }

    @Test("appending a row never moves existing data (every small layout and its prefixes)")
    func growKeepsExistingData() {
        for rows in Self.allRowSequences(maxRows: 3) where rows.count >= 2 {
            let grown = StripeLayout(rows: rows)
            var ch = Checker("grow to \(rows.count) rows")
            for keep in 1..<rows.count {
                let before = StripeLayout(rows: Array(rows.prefix(keep)))
                ch.check(grown.totalBlocks == before.totalBlocks + rows[keep...].reduce(0) { $0 + $1.capacityBlocks },
                         "grown capacity")
                for b in 0..<before.totalBlocks {
                    ch.check(grown.address(b) == before.address(b), "block \(b) moved when rows were appended")
                }
                // The new capacity lands only on the appended rows.
                for b in before.totalBlocks..<grown.totalBlocks {
                    ch.check(grown.address(b).row >= keep, "new block \(b) landed on an old row")
                }
            }
            if ch.failures > 0 { return }
        }
    }

    @Test("large random geometries: round trip, bounds and extents", arguments: UInt64(0)..<32)
    func largeGeometries(seed: UInt64) {
        var rng = SeededRNG(seed: 0x5354_5249_5045 ^ seed &* 0x1000_0001)
        var rows: [StripeRow] = []
        for _ in 0..<rng.int(1, 6) {
            let n = rng.below(4) == 0 ? 1 : rng.int(2, 32)
            let i = Self.randomInterlace(&rng)
            let size = rng.logUniform(0, 1 << 40)
            rows.append(StripeRow(componentCount: n, interlaceBlocks: i, componentBlocks: size))
        }
        let layout = StripeLayout(rows: rows)
        var ch = Checker("seed \(seed) rows \(rows.map { "\($0.componentCount)x\($0.interlaceBlocks)/\($0.componentBlocks)" })")
        var expectedTotal: UInt64 = 0
        for row in rows {
            let used = row.componentCount == 1 ? row.componentBlocks
                : row.componentBlocks / row.interlaceBlocks * row.interlaceBlocks
            expectedTotal += UInt64(row.componentCount) * used
        }
        #expect(layout.totalBlocks == expectedTotal)
        let total = layout.totalBlocks
        guard total > 0 else { return }

        // Sample blocks: uniform, plus the boundaries of every row.
        var samples: [UInt64] = [0, total - 1]
        for (r, start) in layout.rowStarts.enumerated() where layout.rows[r].capacityBlocks > 0 {
            samples += [start, start + layout.rows[r].capacityBlocks - 1]
            if start > 0 { samples.append(start - 1) }
        }
        for _ in 0..<2000 { samples.append(rng.below(total)) }
        for b in samples {
            let a = layout.address(b)
            guard ch.check(a.row >= 0 && a.row < rows.count, "block \(b) row \(a.row)") else { continue }
            let row = rows[a.row]
            let start = layout.rowStarts[a.row]
            ch.check(b >= start && b < start + row.capacityBlocks, "block \(b) outside its row")
            ch.check(a.column >= 0 && a.column < row.componentCount, "block \(b) column \(a.column)")
            ch.check(a.block < row.usedComponentBlocks, "block \(b) beyond used area: \(a)")
            let back = layout.logicalBlock(row: a.row, column: a.column, componentBlock: a.block)
            ch.check(back == b, "round trip \(b) -> \(a) -> \(String(describing: back))")
            if row.componentCount > 1 {
                // Independent check of the stripe formula on this block.
                let o = b - start
                let u = o / row.interlaceBlocks
                let want = StripeAddress(row: a.row, column: Int(u % UInt64(row.componentCount)),
                                         block: u / UInt64(row.componentCount) * row.interlaceBlocks + o % row.interlaceBlocks)
                ch.check(a == want, "block \(b) -> \(a), formula says \(want)")
            } else {
                ch.check(a.block == b - start, "concat block \(b) -> \(a)")
            }
        }
        // Inverse direction on random physical blocks.
        for _ in 0..<500 {
            let r = Int(rng.below(UInt64(rows.count)))
            let row = rows[r]
            guard row.usedComponentBlocks > 0 else { continue }
            let c = Int(rng.below(UInt64(row.componentCount)))
            let cb = rng.below(row.usedComponentBlocks)
            guard let l = layout.logicalBlock(row: r, column: c, componentBlock: cb) else {
                ch.check(false, "used block (\(r), \(c), \(cb)) unmapped"); continue
            }
            ch.check(layout.address(l) == StripeAddress(row: r, column: c, block: cb), "inverse round trip")
        }
        // Extents of random ranges (sized so the piece count stays modest).
        // A request can make one piece per interlace unit of the striped rows it touches, so
        // bound its length by the smallest such interlace; start half of them near a row
        // boundary so row crossings are exercised.
        let striped = rows.filter { $0.componentCount > 1 && $0.capacityBlocks > 0 }
        let span = 48 * (striped.map(\.interlaceBlocks).min() ?? 1 << 14)
        let boundaries = layout.rowStarts.dropFirst().filter { $0 > 0 && $0 < total }
        for k in 0..<200 {
            var s = rng.below(total)
            if k % 2 == 0, !boundaries.isEmpty {
                let edge = boundaries[Int(rng.below(UInt64(boundaries.count)))]
                s = edge - min(edge, rng.below(span))
            }
            let n = rng.logUniform(0, min(total - s, span))
            checkStripeExtents(layout, start: s, count: n, everyBlock: false, &ch)
        }
        // Appending a row keeps every existing block where it was.
        let grown = StripeLayout(rows: rows + [StripeRow(componentCount: rng.int(1, 32),
                                                          interlaceBlocks: Self.randomInterlace(&rng),
                                                          componentBlocks: rng.logUniform(0, 1 << 40))])
        for b in samples {
            ch.check(grown.address(b) == layout.address(b), "block \(b) moved after appending a row")
        }
    }

    /// Interlaces from 1 block to 100 MiB, often a realistic sector-aligned size.
    static func randomInterlace(_ rng: inout SeededRNG) -> UInt64 {
        switch rng.below(3) {
        case 0: return rng.inRange(1, 204_800)
        case 1: return [16, 32, 64, 128, 256, 1024, 2048, 204_800][Int(rng.below(8))]
        default: return rng.logUniform(1, 204_800)
        }
    }
}
