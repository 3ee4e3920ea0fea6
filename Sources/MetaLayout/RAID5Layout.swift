/// One contiguous piece of a RAID-5 or RAID-6 request inside one interlace unit of one column.
public struct RAID5Extent: Sendable, Equatable, Hashable {
    /// Line (stripe across all columns) index.
    public var line: UInt64
    /// Physical column holding the data.
    public var column: Int
    /// Block offset on the column (from the start of its data area).
    public var columnBlock: UInt64
    /// Offset inside the interlace unit (`columnBlock − line · I`).
    public var unitOffset: UInt64 { columnBlock % interlaceBlocks }
    public var blockCount: UInt64
    /// Logical block of the volume where this piece starts.
    public var logicalBlock: UInt64
    let interlaceBlocks: UInt64
}

/// The address map of a RAID-5 or RAID-6 volume.
///
/// `N` original columns hold data and rotating parity in the left-symmetric arrangement
/// (Linux md's default): line `L` (blocks `[L·I, (L+1)·I)` of every column) has its parity
/// P on column `p(L) = N − 1 − (L mod N)`; RAID-6 has its second syndrome Q on the next
/// column, `q(L) = (p(L) + 1) mod N`. With `m` parity units per line (1 for RAID-5, 2 for
/// RAID-6), data unit `k` (0 ≤ k < N−m) is on column `(p(L) + m + k) mod N`. Logical block
/// `b < N_lines·I·(N−m)`: unit `u = b / I`, line `L = u / (N−m)`, `k = u mod (N−m)`, column
/// block `L·I + b mod I`. Q is `Σ g^k·D_k` over GF(2^8) (generator 2, polynomial 0x11D,
/// md's and ISA-L's), `k` the data unit's index in its line (``syndromeIndex(column:line:)``).
///
/// Columns appended by `grow` (`M` of them, after the original `N`) hold data only and are
/// concatenated after the original capacity, one whole column after another (metastat's
/// "Concatenated Devices"): logical block `b ≥ C_orig` lives on column `N + (b − C_orig) / (L·I)`
/// at column block `(b − C_orig) mod (L·I)`. They are zeroed before they join, so the
/// parity of every line (the XOR of all data columns, appended ones included) stays valid
/// and existing data never moves. (For RAID-6 an appended column `j` is data unit
/// `N − 2 + j` of every line, so zero keeps Q valid too.)
public struct RAID5Layout: Sendable, Equatable, Hashable {
    /// Columns taking part in parity rotation.
    public let originalColumns: Int
    /// Parity units per line: 1 (RAID-5: P) or 2 (RAID-6: P and Q).
    public let parityCount: Int
    /// Data-only columns appended by grow.
    public let addedColumns: Int
    public let interlaceBlocks: UInt64
    /// Lines: whole interlace units per column.
    public let lineCount: UInt64

    /// - Parameter columnBlocks: data blocks available on the smallest column; only whole
    ///   interlace units are used.
    /// - Parameter parityCount: 1 for RAID-5 (at least 3 columns), 2 for RAID-6 (at least 4).
    public init(originalColumns: Int, addedColumns: Int = 0, interlaceBlocks: UInt64, columnBlocks: UInt64,
                parityCount: Int = 1) {
        precondition((1...2).contains(parityCount) && originalColumns >= parityCount + 2
                     && addedColumns >= 0 && interlaceBlocks >= 1)
        self.originalColumns = originalColumns
        self.parityCount = parityCount
        self.addedColumns = addedColumns
        self.interlaceBlocks = interlaceBlocks
        self.lineCount = columnBlocks / interlaceBlocks
    }

    /// All columns.
    public var columnCount: Int { originalColumns + addedColumns }
    /// Blocks used on each column.
    public var usedColumnBlocks: UInt64 { lineCount * interlaceBlocks }
    /// Logical capacity of the original columns.
    public var originalCapacityBlocks: UInt64 { usedColumnBlocks * UInt64(originalColumns - parityCount) }
    /// Volume size in blocks.
    public var totalBlocks: UInt64 { originalCapacityBlocks + usedColumnBlocks * UInt64(addedColumns) }
    /// Data units per line.
    public var dataColumnsPerLine: Int { columnCount - parityCount }
    /// Data units per line on the original columns.
    public var originalDataColumns: Int { originalColumns - parityCount }

    /// Parity (P) column of a line.
    public func parityColumn(line: UInt64) -> Int {
        originalColumns - 1 - Int(line % UInt64(originalColumns))
    }

    /// The Q column of a RAID-6 line (nil for RAID-5): the column after P.
    public func qColumn(line: UInt64) -> Int? {
        parityCount == 2 ? (parityColumn(line: line) + 1) % originalColumns : nil
    }

    /// Whether `column` holds P or Q in `line`.
    public func isParity(column: Int, line: UInt64) -> Bool {
        column == parityColumn(line: line) || column == qColumn(line: line)
    }

    /// Physical column of original data unit `k` of a line.
    public func dataColumn(line: UInt64, unit k: Int) -> Int {
        (parityColumn(line: line) + parityCount + k) % originalColumns
    }

    /// The data unit index of `column` in `line` (its coefficient `g^k` in Q), or nil where it
    /// holds P or Q. Appended column `j` is unit `N − m + j`.
    public func syndromeIndex(column: Int, line: UInt64) -> Int? {
        if column >= originalColumns { return originalDataColumns + column - originalColumns }
        let p = parityColumn(line: line)
        let k = (column - p - parityCount + 2 * originalColumns) % originalColumns
        return k < originalDataColumns ? k : nil
    }

    /// The columns that hold data in a line (every column but its parity columns), in
    /// column order.
    public func dataColumns(line: UInt64) -> [Int] {
        (0..<columnCount).filter { !isParity(column: $0, line: line) }
    }

    /// The columns that hold data in a line, in data unit order (index `k` holds unit `k`).
    public func dataColumnsInUnitOrder(line: UInt64) -> [Int] {
        (0..<originalDataColumns).map { dataColumn(line: line, unit: $0) } + Array(originalColumns..<columnCount)
    }

    /// Maps one logical block to (line, column, column block).
    public func locate(_ b: UInt64) -> (line: UInt64, column: Int, columnBlock: UInt64) {
        let orig = originalCapacityBlocks
        if b < orig {
            let u = b / interlaceBlocks
            let line = u / UInt64(originalDataColumns)
            let k = Int(u % UInt64(originalDataColumns))
            return (line, dataColumn(line: line, unit: k), line * interlaceBlocks + b % interlaceBlocks)
        }
        let o = b - orig
        let j = Int(o / usedColumnBlocks)
        let cb = o % usedColumnBlocks
        return (cb / interlaceBlocks, originalColumns + j, cb)
    }

    /// Inverse of ``locate(_:)``: the logical block at a column block, or nil for parity or
    /// beyond the used area.
    public func logicalBlock(column: Int, columnBlock: UInt64) -> UInt64? {
        guard column >= 0, column < columnCount, columnBlock < usedColumnBlocks else { return nil }
        let line = columnBlock / interlaceBlocks
        if column >= originalColumns {
            return originalCapacityBlocks + UInt64(column - originalColumns) * usedColumnBlocks + columnBlock
        }
        guard let k = syndromeIndex(column: column, line: line) else { return nil }
        let u = line * UInt64(originalDataColumns) + UInt64(k)
        return u * interlaceBlocks + columnBlock % interlaceBlocks
    }

    /// Splits `[block, block+count)` into pieces that each stay inside one interlace unit of
    /// one column, in logical order.
    public func extents(block: UInt64, count: UInt64) -> [RAID5Extent] {
        precondition(block <= totalBlocks && count <= totalBlocks - block)
        var out: [RAID5Extent] = []
        var b = block
        let end = block + count
        while b < end {
            let (line, col, cb) = locate(b)
            let inUnit = interlaceBlocks - cb % interlaceBlocks
            let n = min(inUnit, end - b)
            out.append(RAID5Extent(line: line, column: col, columnBlock: cb, blockCount: n, logicalBlock: b,
                                   interlaceBlocks: interlaceBlocks))
            b += n
        }
        return out
    }
}
