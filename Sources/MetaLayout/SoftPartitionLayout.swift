/// Geometry of a soft partition (SVM's `metainit -p`): runs of blocks ("extents") of a parent
/// volume, concatenated. Every extent's data is preceded by a watermark of
/// ``watermarkBlocks`` blocks in the parent (its identity, written by the engine; see
/// `docs/FORMAT.md`), so the configuration can be rebuilt from the parent alone.
///
/// Blocks are 512 bytes. Pure: no I/O.
public struct SoftPartitionLayout: Sendable, Equatable {
    /// Blocks of the watermark before each extent's data (4 KiB: one sector of any device).
    public static let watermarkBlocks: UInt64 = 8

    /// One extent: its watermark at `watermarkBlock`, then `blocks` blocks of data.
    public struct Extent: Sendable, Equatable, Hashable {
        public var watermarkBlock: UInt64
        public var blocks: UInt64
        public init(watermarkBlock: UInt64, blocks: UInt64) { self.watermarkBlock = watermarkBlock; self.blocks = blocks }
        /// The parent block of the extent's first data block.
        public var dataBlock: UInt64 { watermarkBlock + SoftPartitionLayout.watermarkBlocks }
        /// One past the extent's last parent block.
        public var end: UInt64 { dataBlock + blocks }
    }

    /// A piece of a request: `count` blocks at `parentBlock`, for the request's blocks from
    /// `logicalBlock`.
    public struct Piece: Sendable, Equatable {
        public var logicalBlock: UInt64
        public var parentBlock: UInt64
        public var count: UInt64
        public init(logicalBlock: UInt64, parentBlock: UInt64, count: UInt64) {
            self.logicalBlock = logicalBlock; self.parentBlock = parentBlock; self.count = count
        }
    }

    public let extents: [Extent]
    /// Logical block where each extent starts.
    private let starts: [UInt64]
    public let totalBlocks: UInt64

    public init(extents: [Extent]) {
        self.extents = extents
        var s: [UInt64] = []
        var total: UInt64 = 0
        for e in extents { s.append(total); total += e.blocks }
        starts = s
        totalBlocks = total
    }

    /// The parent pieces of `count` blocks from logical block `block` (which must lie inside
    /// ``totalBlocks``), in order.
    public func pieces(block: UInt64, count: UInt64) -> [Piece] {
        var out: [Piece] = []
        forEachPiece(block: block, count: count) { out.append($0) }
        return out
    }

    /// ``pieces(block:count:)`` without building an array (the data path).
    public func forEachPiece<E: Error>(block: UInt64, count: UInt64, _ body: (Piece) throws(E) -> Void) throws(E) {
        guard count > 0, block < totalBlocks else { return }
        // The last extent starting at or before `block`.
        var lo = 0, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= block { lo = mid } else { hi = mid - 1 }
        }
        var b = block, left = min(count, totalBlocks - block), i = lo
        while left > 0, i < extents.count {
            let within = b - starts[i]
            let n = min(left, extents[i].blocks - within)
            if n > 0 { try body(Piece(logicalBlock: b, parentBlock: extents[i].dataBlock + within, count: n)) }
            b += n; left -= n; i += 1
        }
    }

    /// Free runs of a parent of `parentBlocks` blocks whose blocks from `reserved` on are
    /// usable, given the extents in use (any order, possibly of many soft partitions).
    public static func freeRuns(parentBlocks: UInt64, reserved: UInt64 = 0, used: [Extent]) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        var at = reserved
        for e in used.sorted(by: { $0.watermarkBlock < $1.watermarkBlock }) {
            if e.watermarkBlock > at { out.append(at..<e.watermarkBlock) }
            at = max(at, e.end)
        }
        if parentBlocks > at { out.append(at..<parentBlocks) }
        return out
    }

    /// Extents for `blocks` more blocks of data, first fit in the free space (several
    /// extents when no free run is large enough, as SVM does). Each extent's data starts on
    /// a multiple of `alignment` blocks (the parent's full stripe, so that the partition's
    /// large writes stay whole-line writes) with its watermark just before; `blocks` is
    /// rounded up to a multiple of `granularity` (the parent's sector). Nil when the free
    /// space cannot hold it.
    public static func allocate(blocks: UInt64, parentBlocks: UInt64, reserved: UInt64 = 0, used: [Extent],
                                alignment: UInt64, granularity: UInt64 = 1) -> [Extent]? {
        let g = max(1, granularity), a = max(1, alignment)
        var want = (blocks + g - 1) / g * g
        guard want > 0 else { return nil }
        var out: [Extent] = []
        for run in freeRuns(parentBlocks: parentBlocks, reserved: reserved, used: used) {
            // First aligned data start with room for the watermark before it.
            let data = (run.lowerBound + watermarkBlocks + a - 1) / a * a
            guard data < run.upperBound else { continue }
            let room = (run.upperBound - data) / g * g
            guard room > 0 else { continue }
            let n = min(room, want)
            out.append(Extent(watermarkBlock: data - watermarkBlocks, blocks: n))
            want -= n
            if want == 0 { return out }
        }
        return nil
    }

    /// Whether an explicit extent (SVM's `-o OFFSET -b SIZE`: data at `dataBlock`) fits the
    /// parent and overlaps no extent in use (watermarks included).
    public static func fits(_ e: Extent, parentBlocks: UInt64, reserved: UInt64 = 0, used: [Extent]) -> Bool {
        guard e.blocks > 0, e.watermarkBlock >= reserved, e.end <= parentBlocks else { return false }
        return !used.contains { u in u.watermarkBlock < e.end && e.watermarkBlock < u.end }
    }
}
