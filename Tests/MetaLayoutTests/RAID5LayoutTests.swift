import MetaTestSupport
import Testing
@testable import MetaLayout

/// A physical address in a RAID-5 volume.
struct ColumnAddress: Hashable, CustomStringConvertible {
    var line: UInt64
    var column: Int
    var block: UInt64
    var description: String { "(line \(line), column \(column), block \(block))" }
}

extension RAID5Layout {
    func address(_ b: UInt64) -> ColumnAddress {
        let l = locate(b)
        return ColumnAddress(line: l.line, column: l.column, block: l.columnBlock)
    }
}

/// Reference map by enumeration: line by line, the parity column is
/// `N − 1 − (L mod N)` and the data units follow it to the right, wrapping (left-symmetric);
/// then each appended column in turn, top to bottom.
func referenceRAID5Map(n: Int, m: Int, interlace i: UInt64, lines: UInt64) -> (data: [ColumnAddress], parity: [ColumnAddress]) {
    var data: [ColumnAddress] = []
    var parity: [ColumnAddress] = []
    for line in 0..<lines {
        let p = n - 1 - Int(line % UInt64(n))
        for o in 0..<i { parity.append(ColumnAddress(line: line, column: p, block: line * i + o)) }
        for k in 0..<(n - 1) {
            let col = (p + 1 + k) % n
            for o in 0..<i { data.append(ColumnAddress(line: line, column: col, block: line * i + o)) }
        }
    }
    for j in 0..<m {
        for cb in 0..<(lines * i) { data.append(ColumnAddress(line: cb / i, column: n + j, block: cb)) }
    }
    return (data, parity)
}

/// Checks one `extents(block:count:)` answer: exact coverage in logical order, agreement
/// with `locate`, one interlace unit of one column per piece, inside the used area, and
/// pieces as long as that allows.
func checkRAID5Extents(_ layout: RAID5Layout, start: UInt64, count: UInt64, everyBlock: Bool,
                       _ ch: inout Checker) {
    let ex = layout.extents(block: start, count: count)
    let end = start + count
    let i = layout.interlaceBlocks
    var next = start
    for e in ex {
        guard ch.check(e.blockCount > 0, "empty piece for [\(start), +\(count))"),
              ch.check(e.logicalBlock == next, "piece starts at \(e.logicalBlock), expected \(next)")
        else { return }
        let pieceEnd = e.logicalBlock + e.blockCount
        ch.check(pieceEnd <= end, "piece runs past the request end")
        ch.check(e.column >= 0 && e.column < layout.columnCount, "piece column \(e.column)")
        ch.check(e.columnBlock + e.blockCount <= layout.usedColumnBlocks, "piece beyond the used area")
        ch.check(e.columnBlock / i == e.line && (e.columnBlock + e.blockCount - 1) / i == e.line,
                 "piece at column block \(e.columnBlock) +\(e.blockCount) leaves line \(e.line) (I=\(i))")
        ch.check(e.unitOffset == e.columnBlock - e.line * i, "unitOffset \(e.unitOffset)")
        ch.check(e.column >= layout.originalColumns || e.column != layout.parityColumn(line: e.line),
                 "piece on the parity column of line \(e.line)")
        ch.check(pieceEnd == end || (e.columnBlock + e.blockCount) % i == 0,
                 "piece split inside an interlace unit")
        let offsets: [UInt64] = everyBlock ? Array(0..<e.blockCount) : [0, e.blockCount - 1]
        for o in offsets {
            let want = ColumnAddress(line: e.line, column: e.column, block: e.columnBlock + o)
            let got = layout.address(e.logicalBlock + o)
            ch.check(got == want, "extent says block \(e.logicalBlock + o) is at \(want), locate says \(got)")
        }
        next = pieceEnd
    }
    ch.check(next == end, "extents of [\(start), +\(count)) cover up to \(next) only")
}

/// Parity placement invariants for any line number (not only lines that exist).
func checkParityPlacement(_ layout: RAID5Layout, line: UInt64, _ ch: inout Checker) {
    let n = layout.originalColumns
    let p = layout.parityColumn(line: line)
    ch.check(p >= 0 && p < n, "line \(line): parity on column \(p), not an original column")
    let dataCols = layout.dataColumns(line: line)
    ch.check(!dataCols.contains(p), "line \(line): parity column \(p) also a data column")
    ch.check(dataCols.count == layout.columnCount - 1 && dataCols == dataCols.sorted()
             && Set(dataCols).union([p]) == Set(0..<layout.columnCount),
             "line \(line): data columns \(dataCols)")
    let units = (0..<(n - 1)).map { layout.dataColumn(line: line, unit: $0) }
    ch.check(Set(units).count == n - 1 && !units.contains(p) && units.allSatisfy { $0 >= 0 && $0 < n },
             "line \(line): data units on \(units), parity \(p)")
}

/// Full check of one small RAID-5 layout against the reference enumeration and every invariant.
func verifyRAID5Exhaustively(_ layout: RAID5Layout, columnBlocks: UInt64, _ ch: inout Checker) {
    let n = layout.originalColumns, m = layout.addedColumns, i = layout.interlaceBlocks
    let lines = columnBlocks / i
    // Geometry and capacity: lines·I·(N−1) + lines·I·M.
    ch.check(layout.lineCount == lines, "lineCount \(layout.lineCount), expected \(lines)")
    ch.check(layout.usedColumnBlocks == lines * i && layout.usedColumnBlocks <= columnBlocks, "usedColumnBlocks")
    ch.check(layout.columnCount == n + m && layout.dataColumnsPerLine == n + m - 1, "column counts")
    ch.check(layout.originalCapacityBlocks == lines * i * UInt64(n - 1), "originalCapacityBlocks")
    ch.check(layout.totalBlocks == lines * i * UInt64(n - 1) + lines * i * UInt64(m),
             "totalBlocks \(layout.totalBlocks)")

    let (reference, parity) = referenceRAID5Map(n: n, m: m, interlace: i, lines: lines)
    ch.check(UInt64(reference.count) == layout.totalBlocks, "reference size")
    // Data + parity tile the used area of every column exactly.
    ch.check(reference.count + parity.count == layout.columnCount * Int(layout.usedColumnBlocks), "tiling")

    var seen = Set<ColumnAddress>()
    var perLine: [UInt64: [Int: Int]] = [:]
    for (idx, want) in reference.enumerated() where UInt64(idx) < layout.totalBlocks {
        let b = UInt64(idx)
        let got = layout.address(b)
        ch.check(got == want, "block \(b) -> \(got), expected \(want)")
        ch.check(seen.insert(got).inserted, "block \(b) maps to \(got), already used")
        ch.check(got.block < layout.usedColumnBlocks && got.line == got.block / i && got.line < lines,
                 "block \(b) -> \(got) outside the used area / wrong line")
        ch.check((b < layout.originalCapacityBlocks) == (got.column < n),
                 "block \(b) on column \(got.column) vs original capacity \(layout.originalCapacityBlocks)")
        ch.check(layout.logicalBlock(column: got.column, columnBlock: got.block) == b, "logicalBlock\(got) != \(b)")
        perLine[got.line, default: [:]][got.column, default: 0] += 1
        if ch.saturated { return }
    }
    // Each line: exactly I data blocks on every column but its parity column.
    for line in 0..<lines {
        let p = layout.parityColumn(line: line)
        var expected: [Int: Int] = [:]
        for c in 0..<layout.columnCount where c != p { expected[c] = Int(i) }
        ch.check(perLine[line] ?? [:] == expected, "line \(line): data per column \(perLine[line] ?? [:]), parity \(p)")
    }
    // Parity blocks are never data.
    for a in parity {
        ch.check(!seen.contains(a), "parity block \(a) is also data")
        ch.check(layout.parityColumn(line: a.line) == a.column, "parity of line \(a.line) on \(a.column)")
        ch.check(layout.logicalBlock(column: a.column, columnBlock: a.block) == nil, "parity \(a) has a logical block")
    }
    // Inverse over every physical block and a little beyond the used area.
    for c in 0..<layout.columnCount {
        for cb in 0..<(columnBlocks + 2) {
            let l = layout.logicalBlock(column: c, columnBlock: cb)
            if cb >= layout.usedColumnBlocks {
                ch.check(l == nil, "column \(c) block \(cb) beyond the used area maps to \(String(describing: l))")
            } else if c < n && c == layout.parityColumn(line: cb / i) {
                ch.check(l == nil, "parity block maps to data")
            } else if let l {
                ch.check(l < layout.totalBlocks && layout.address(l) == ColumnAddress(line: cb / i, column: c, block: cb),
                         "locate(logicalBlock(\(c), \(cb)))")
            } else {
                ch.check(false, "data block (\(c), \(cb)) has no logical block")
            }
        }
    }
    for bad in [-1, layout.columnCount] {
        ch.check(layout.logicalBlock(column: bad, columnBlock: 0) == nil, "column \(bad) accepted")
    }
    // Parity: on one original column per line, rotating through all N over any N consecutive lines.
    let horizon = max(lines, UInt64(3 * n))
    for line in 0..<horizon { checkParityPlacement(layout, line: line, &ch) }
    for first in 0..<horizon {
        let window = Set((first..<(first + UInt64(n))).map { layout.parityColumn(line: $0) })
        ch.check(window == Set(0..<n), "lines \(first)..<\(first + UInt64(n)) have parity on \(window.sorted())")
    }

    // Extents: every (start, count) on small volumes, a spread of counts otherwise.
    let total = layout.totalBlocks
    let width = i * UInt64(n - 1)
    for s in 0...total {
        let counts: [UInt64]
        if total <= 36 {
            counts = Array(0...(total - s))
        } else {
            counts = Set([0, 1, 2, i - 1, i, i + 1, width - 1, width, width + 1, 2 * width + 1, total - s])
                .filter { $0 <= total - s }.sorted()
        }
        for c in counts {
            checkRAID5Extents(layout, start: s, count: c, everyBlock: true, &ch)
            if ch.saturated { return }
        }
    }
}

@Suite("RAID5Layout")
struct RAID5LayoutTests {
    @Test("3–6 columns × 0–3 added × interlace 1–4 × 0–7 lines, exhaustively", arguments: 3...6)
    func exhaustive(originalColumns n: Int) {
        for m in 0...3 {
            for i in UInt64(1)...4 {
                for lines in UInt64(0)...7 {
                    // Column sizes include a remainder that is not a whole interlace unit.
                    let columnBlocks = lines * i + (lines + UInt64(n + m)) % i
                    let layout = RAID5Layout(originalColumns: n, addedColumns: m, interlaceBlocks: i,
                                             columnBlocks: columnBlocks)
                    var ch = Checker("raid5 N=\(n) M=\(m) I=\(i) lines=\(lines) size=\(columnBlocks)")
                    verifyRAID5Exhaustively(layout, columnBlocks: columnBlocks, &ch)
                    if ch.failures > 0 { return }
                }
            }
        }
    }

    /// The worked example of docs/LAYOUTS.md: 4 columns, interlace 2 blocks.
    @Test("known answer: 4 columns, interlace 2, first 4 lines (docs/LAYOUTS.md table)")
    func knownAnswer() {
        let layout = RAID5Layout(originalColumns: 4, interlaceBlocks: 2, columnBlocks: 9)
        #expect(layout.lineCount == 4)
        #expect(layout.usedColumnBlocks == 8)
        #expect(layout.totalBlocks == 24)
        #expect((0..<4).map { layout.parityColumn(line: $0) } == [3, 2, 1, 0])
        // [column][column block] -> logical block, nil = parity. Rows of the table are lines.
        let table: [[UInt64?]] = [
            //  c0     c1     c2     c3
            [0, 2, 4, nil], [1, 3, 5, nil],       // line 0, blocks 0 and 1 of each column
            [8, 10, nil, 6], [9, 11, nil, 7],                // line 1
            [16, nil, 12, 14], [17, nil, 13, 15],            // line 2
            [nil, 18, 20, 22], [nil, 19, 21, 23],            // line 3
        ]
        for (cb, row) in table.enumerated() {
            for (c, want) in row.enumerated() {
                #expect(layout.logicalBlock(column: c, columnBlock: UInt64(cb)) == want, "column \(c) block \(cb)")
                if let want {
                    #expect(layout.address(want) == ColumnAddress(line: UInt64(cb / 2), column: c, block: UInt64(cb)))
                }
            }
        }
        // md's left-symmetric picture in units: line 1 reads "D4 D5 P D3".
        #expect((0..<3).map { layout.dataColumn(line: 1, unit: $0) } == [3, 0, 1])
        #expect(layout.logicalBlock(column: 0, columnBlock: 8) == nil) // the ninth block is unused

        // One appended column: its blocks follow the original capacity top to bottom.
        let grown = RAID5Layout(originalColumns: 4, addedColumns: 1, interlaceBlocks: 2, columnBlocks: 9)
        #expect(grown.totalBlocks == 32)
        let appended: [ColumnAddress] = (UInt64(24)..<32).map { grown.address($0) }
        let down: [ColumnAddress] = (UInt64(0)..<8).map { ColumnAddress(line: $0 / 2, column: 4, block: $0) }
        #expect(appended == down)
        #expect(grown.dataColumns(line: 0) == [0, 1, 2, 4])
        let pieces: [[UInt64]] = grown.extents(block: 22, count: 5).map {
            [UInt64($0.column), $0.columnBlock, $0.blockCount, $0.logicalBlock]
        }
        let expectedPieces: [[UInt64]] = [[3, 6, 2, 22], [4, 0, 2, 24], [4, 2, 1, 26]]
        #expect(pieces == expectedPieces)
    }

    @Test("columns smaller than one interlace unit give an empty volume")
    func emptyGeometry() {
        let layout = RAID5Layout(originalColumns: 5, addedColumns: 2, interlaceBlocks: 128, columnBlocks: 127)
        #expect(layout.lineCount == 0)
        #expect(layout.totalBlocks == 0)
        #expect(layout.extents(block: 0, count: 0).isEmpty)
        for c in 0..<7 { #expect(layout.logicalBlock(column: c, columnBlock: 0) == nil) }
    }

    @Test("appended columns never move existing data and never hold parity")
    func growKeepsExistingData() {
        for n in 3...6 {
            for i in UInt64(1)...4 {
                for lines in UInt64(1)...7 {
                    let size = lines * i + lines % i
                    let base = RAID5Layout(originalColumns: n, interlaceBlocks: i, columnBlocks: size)
                    var ch = Checker("grow N=\(n) I=\(i) lines=\(lines)")
                    var previous = base
                    for m in 1...3 {
                        let grown = RAID5Layout(originalColumns: n, addedColumns: m, interlaceBlocks: i, columnBlocks: size)
                        ch.check(grown.totalBlocks == previous.totalBlocks + grown.usedColumnBlocks, "M=\(m) capacity")
                        for b in 0..<previous.totalBlocks {
                            ch.check(grown.address(b) == previous.address(b), "M=\(m): block \(b) moved from M−1")
                        }
                        for b in 0..<base.totalBlocks {
                            ch.check(grown.address(b) == base.address(b), "M=\(m): block \(b) moved from M=0")
                        }
                        for b in previous.totalBlocks..<grown.totalBlocks {
                            ch.check(grown.address(b).column == n + m - 1, "M=\(m): new block \(b) not on the new column")
                        }
                        for line in 0..<(3 * UInt64(n)) {
                            ch.check(grown.parityColumn(line: line) == base.parityColumn(line: line),
                                     "parity of line \(line) moved")
                            ch.check(grown.parityColumn(line: line) < n, "parity on an appended column")
                        }
                        previous = grown
                    }
                    if ch.failures > 0 { return }
                }
            }
        }
    }

    @Test("large random geometries: round trip, parity, bounds, extents, grow", arguments: UInt64(0)..<64)
    func largeGeometries(seed: UInt64) {
        var rng = SeededRNG(seed: 0x5241_4944_35 ^ (seed &* 0x9E37_79B9))
        let n = rng.int(3, 32)
        let m = rng.below(3) == 0 ? 0 : rng.int(0, 32 - n)
        let i = StripeLayoutTests.randomInterlace(&rng)
        var columnBlocks = rng.logUniform(i, 1 << 40)
        if rng.below(4) == 0 { columnBlocks -= columnBlocks % i } // exact multiple sometimes
        let layout = RAID5Layout(originalColumns: n, addedColumns: m, interlaceBlocks: i, columnBlocks: columnBlocks)
        var ch = Checker("seed \(seed) N=\(n) M=\(m) I=\(i) size=\(columnBlocks)")
        let lines = columnBlocks / i
        #expect(layout.lineCount == lines)
        #expect(layout.totalBlocks == lines * i * UInt64(n - 1) + lines * i * UInt64(m))
        let total = layout.totalBlocks
        guard total > 0 else { return }

        var samples: [UInt64] = [0, total - 1, layout.originalCapacityBlocks - 1]
        if m > 0 { samples += [layout.originalCapacityBlocks, layout.originalCapacityBlocks + layout.usedColumnBlocks - 1] }
        for _ in 0..<2000 { samples.append(rng.below(total)) }
        for b in samples {
            let a = layout.address(b)
            ch.check(a.column >= 0 && a.column < layout.columnCount, "block \(b) column \(a.column)")
            ch.check(a.block < layout.usedColumnBlocks && a.line == a.block / i && a.line < lines,
                     "block \(b) -> \(a) outside the used area")
            ch.check((b < layout.originalCapacityBlocks) == (a.column < n), "block \(b) on column \(a.column)")
            if a.column < n {
                ch.check(a.column != layout.parityColumn(line: a.line), "block \(b) on the parity column")
                // Independent check of the left-symmetric formula.
                let u = b / i
                let line = u / UInt64(n - 1)
                let p = n - 1 - Int(line % UInt64(n))
                let want = ColumnAddress(line: line, column: (p + 1 + Int(u % UInt64(n - 1))) % n,
                                         block: line * i + b % i)
                ch.check(a == want, "block \(b) -> \(a), formula says \(want)")
                ch.check(layout.logicalBlock(column: p, columnBlock: a.block) == nil, "parity readable as data")
            }
            ch.check(layout.logicalBlock(column: a.column, columnBlock: a.block) == b, "round trip of \(b) via \(a)")
        }
        for _ in 0..<500 {
            let line = rng.below(lines)
            checkParityPlacement(layout, line: line, &ch)
            let c = Int(rng.below(UInt64(layout.columnCount)))
            let cb = line * i + rng.below(i)
            let l = layout.logicalBlock(column: c, columnBlock: cb)
            if c == layout.parityColumn(line: line) {
                ch.check(l == nil, "parity (\(c), \(cb)) maps to data")
            } else if let l {
                ch.check(layout.address(l) == ColumnAddress(line: line, column: c, block: cb), "inverse round trip")
            } else {
                ch.check(false, "data block (\(c), \(cb)) unmapped")
            }
        }
        ch.check(layout.logicalBlock(column: 0, columnBlock: layout.usedColumnBlocks) == nil, "past the used area")
        // Parity rotation over a random window far into the volume.
        let first = rng.below(lines)
        ch.check(Set((first..<(first + UInt64(n))).map { layout.parityColumn(line: $0) }) == Set(0..<n), "rotation")
        // Extents of random ranges, up to a few dozen interlace units long.
        for _ in 0..<200 {
            let s = rng.below(total)
            let c = rng.logUniform(0, min(total - s, 48 * i))
            checkRAID5Extents(layout, start: s, count: c, everyBlock: false, &ch)
        }
        // Grow: the same geometry with one more and with no appended columns.
        let more = RAID5Layout(originalColumns: n, addedColumns: m + 1, interlaceBlocks: i, columnBlocks: columnBlocks)
        let none = RAID5Layout(originalColumns: n, addedColumns: 0, interlaceBlocks: i, columnBlocks: columnBlocks)
        for b in samples {
            ch.check(more.address(b) == layout.address(b), "block \(b) moved when a column was appended")
            if b < none.totalBlocks { ch.check(none.address(b) == layout.address(b), "block \(b) differs from M=0") }
        }
        ch.check(more.address(total).column == n + m && more.address(total).block == 0, "first new block")
        ch.check(more.address(more.totalBlocks - 1) == ColumnAddress(line: lines - 1, column: n + m,
                                                                   block: layout.usedColumnBlocks - 1), "last new block")
    }
}
