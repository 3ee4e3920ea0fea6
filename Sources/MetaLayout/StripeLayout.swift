/// Geometry of one row of a concat/stripe volume: `componentCount` components striped
/// with `interlaceBlocks`. A concatenation is a row of one component.
///
/// All sizes are in 512-byte blocks and component offsets are relative to the start of
/// each component's data area (after its label and replicas).
public struct StripeRow: Sendable, Equatable, Hashable {
    public var componentCount: Int
    public var interlaceBlocks: UInt64
    /// Data blocks available on the smallest component of the row.
    public var componentBlocks: UInt64

    public init(componentCount: Int, interlaceBlocks: UInt64, componentBlocks: UInt64) {
        precondition(componentCount >= 1 && interlaceBlocks >= 1)
        self.componentCount = componentCount
        self.interlaceBlocks = interlaceBlocks
        self.componentBlocks = componentBlocks
    }

    /// Blocks used on each component: everything for a single component, whole
    /// interlace units for a stripe.
    public var usedComponentBlocks: UInt64 {
        componentCount == 1 ? componentBlocks : componentBlocks / interlaceBlocks * interlaceBlocks
    }
    /// Capacity of the row: N × the used size of the smallest component.
    public var capacityBlocks: UInt64 { UInt64(componentCount) * usedComponentBlocks }
}

/// One contiguous piece of a request on one component.
public struct StripeExtent: Sendable, Equatable, Hashable {
    /// Row index.
    public var row: Int
    /// Component index within the row.
    public var column: Int
    /// Block offset on the component (from the start of its data area).
    public var componentBlock: UInt64
    /// Length in blocks.
    public var blockCount: UInt64
    /// Logical block of the volume where this piece starts.
    public var logicalBlock: UInt64
}

/// The address map of a concat/stripe volume: rows laid end to end, each row striped.
///
/// Logical block `b` in row `r` (offset `o = b − start(r)`): interlace unit `u = o / I`,
/// component `u mod N`, component block `(u / N) · I + o mod I`. A one-component row maps
/// `o` straight to component block `o`.
public struct StripeLayout: Sendable, Equatable {
    public let rows: [StripeRow]
    /// First logical block of each row.
    public let rowStarts: [UInt64]
    /// Volume size in blocks.
    public let totalBlocks: UInt64

    public init(rows: [StripeRow]) {
        self.rows = rows
        var starts: [UInt64] = []
        var total: UInt64 = 0
        for r in rows { starts.append(total); total += r.capacityBlocks }
        rowStarts = starts
        totalBlocks = total
    }

    /// The row that holds logical block `block` (which must be < ``totalBlocks``).
    public func rowIndex(of block: UInt64) -> Int {
        var lo = 0, hi = rows.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if rowStarts[mid] <= block { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Maps one logical block to (row, column, component block).
    public func locate(_ block: UInt64) -> (row: Int, column: Int, componentBlock: UInt64) {
        let r = rowIndex(of: block)
        let row = rows[r]
        let o = block - rowStarts[r]
        if row.componentCount == 1 { return (r, 0, o) }
        let unit = o / row.interlaceBlocks
        let n = UInt64(row.componentCount)
        return (r, Int(unit % n), (unit / n) * row.interlaceBlocks + o % row.interlaceBlocks)
    }

    /// Inverse of ``locate(_:)``: the logical block stored at a component block, or nil when
    /// that block is beyond the row's used area or the row/column does not exist.
    public func logicalBlock(row r: Int, column: Int, componentBlock: UInt64) -> UInt64? {
        guard r >= 0, r < rows.count else { return nil }
        let row = rows[r]
        guard column >= 0, column < row.componentCount, componentBlock < row.usedComponentBlocks else {
            return nil
        }
        if row.componentCount == 1 { return rowStarts[r] + componentBlock }
        let stripe = componentBlock / row.interlaceBlocks
        let unit = stripe * UInt64(row.componentCount) + UInt64(column)
        return rowStarts[r] + unit * row.interlaceBlocks + componentBlock % row.interlaceBlocks
    }

    /// Splits `[block, block+count)` into per-component pieces, in logical order. Each piece
    /// stays within one interlace unit of one component.
    public func extents(block: UInt64, count: UInt64) -> [StripeExtent] {
        precondition(block <= totalBlocks && count <= totalBlocks - block)
        var out: [StripeExtent] = []
        var b = block
        let end = block + count
        while b < end {
            let (r, c, cb) = locate(b)
            let row = rows[r]
            let rowEnd = rowStarts[r] + row.capacityBlocks
            var n: UInt64
            if row.componentCount == 1 {
                n = min(end, rowEnd) - b
            } else {
                let inUnit = row.interlaceBlocks - (b - rowStarts[r]) % row.interlaceBlocks
                n = min(inUnit, end - b)
            }
            out.append(StripeExtent(row: r, column: c, componentBlock: cb, blockCount: n, logicalBlock: b))
            b += n
        }
        return out
    }
}
