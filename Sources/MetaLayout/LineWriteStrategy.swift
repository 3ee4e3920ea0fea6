/// How a write changes one line of a RAID-5 or RAID-6 volume, chosen from the line's
/// situation alone (which columns are away, whether its parity is trusted, whether the write
/// must carry parity for a write log or a copy): a pure function, so that every rule is
/// tested without devices (`LineWriteStrategyTests`). The engine reads the situation from its
/// runtime state and does the I/O.
public enum LineWriteStrategy: Equatable, Sendable {
    /// Read the old data and parity of the written range, update the parity.
    case readModifyWrite
    /// Read the data the write does not cover and compute the parity afresh.
    case reconstructWrite
    /// A written data column is away: rebuild what the write does not cover from the others
    /// and the parity (the column given is the first such), compute the parity from it all.
    case degradedReconstruct(Int)
    /// Every parity column is away: only the data is written.
    case dataOnly

    /// Why a write to the line cannot be made consistent.
    public enum Refusal: Error, Equatable, Sendable {
        /// A column is away and the state database has not recorded that yet.
        case unrecordedMissing(column: Int)
        /// A Last Erred column the write would change (its data or the parity it holds) is away.
        case lastErredAway(column: Int)
        /// A written column is away and its data cannot be kept in the parity (too many
        /// columns away, or the parity untrusted where the write does not cover it).
        case unrecoverable(column: Int)
        /// A parity column is away, the line's parity is untrusted with a data column away
        /// too, and a copy (`byCopy`) or the write log needs the parity.
        case parityNeeded(byCopy: Bool)
    }

    /// One line's situation for one write. Column sets are bit masks (bit `c`: column `c`;
    /// volumes have at most 64 columns).
    public struct Situation: Sendable {
        public var columnCount: Int
        /// P's column, and Q's for RAID-6.
        public var p: Int
        public var q: Int?
        /// Columns that cannot be read or written for this line.
        public var missing: UInt64
        /// Columns whose state is Last Erred.
        public var lastErred: UInt64
        /// The data columns the write changes, and those among them whose piece covers the
        /// whole range the write spans in the line.
        public var written: UInt64
        public var covered: UInt64
        /// How many pieces the write has (one per written column).
        public var pieces: Int
        /// Whether the line's parity is trusted (initialised, not torn by a crash or a failed write).
        public var parityTrusted: Bool
        /// Whether a column away has not been recorded in the state database yet.
        public var unrecordedMissing: Int?
        /// Whether the volume logs its writes (a record must carry every parity unit).
        public var logged: Bool
        /// Whether a copy target stands in for a parity column of this line (below its copy
        /// point), so the parity must be computed for it.
        public var copyTakesParity: Bool

        public init(columnCount: Int, p: Int, q: Int?, missing: UInt64, lastErred: UInt64, written: UInt64, covered: UInt64,
                    pieces: Int, parityTrusted: Bool, unrecordedMissing: Int?, logged: Bool, copyTakesParity: Bool) {
            self.columnCount = columnCount; self.p = p; self.q = q; self.missing = missing; self.lastErred = lastErred
            self.written = written; self.covered = covered; self.pieces = pieces; self.parityTrusted = parityTrusted
            self.unrecordedMissing = unrecordedMissing; self.logged = logged; self.copyTakesParity = copyTakesParity
        }
    }

    /// The strategy for `s`, or why there is none.
    public static func choose(_ s: Situation) throws(Refusal) -> LineWriteStrategy {
        let parityMask: UInt64 = 1 << UInt64(s.p) | (s.q.map { 1 << UInt64($0) } ?? 0)
        let parityUnits = s.q == nil ? 1 : 2
        let missingCount = s.missing.nonzeroBitCount
        let parityMissing = (s.missing & parityMask).nonzeroBitCount
        let writtenMissing = s.missing & s.written
        if missingCount > 0, let c = s.unrecordedMissing { throw .unrecordedMissing(column: c) }
        // A Last Erred column is read directly when it returns: a write that would have to
        // change it (its data, or the parity it holds) while it is away would leave it stale.
        if missingCount > 0 {
            let away = s.lastErred & s.missing
            if writtenMissing & away != 0 { throw .lastErredAway(column: (writtenMissing & away).trailingZeroBitCount) }
            if away & 1 << UInt64(s.p) != 0 { throw .lastErredAway(column: s.p) }
            if let q = s.q, away & 1 << UInt64(q) != 0 { throw .lastErredAway(column: q) }
        }
        if writtenMissing != 0 {
            let f = writtenMissing.trailingZeroBitCount
            // Without trusted parity a missing column's old data cannot be rebuilt; a write
            // that covers the whole written range of that column does not need it.
            if missingCount > parityUnits || (!s.parityTrusted && writtenMissing & ~s.covered != 0) {
                throw .unrecoverable(column: f)
            }
            return .degradedReconstruct(f)
        }
        // With the parity columns away only the data is written in place; but a write-log
        // record must still carry the parity (seed 33007303), and a copy target standing in for
        // a parity column takes it as every write of its column (seed 77015413).
        if parityMissing == parityUnits { return !s.logged && !s.copyTakesParity ? .dataOnly : .reconstructWrite }
        if (s.copyTakesParity || s.logged) && parityMissing > 0 {
            // RAID-6 with one parity column away: a read-modify-write would leave the copy
            // target's parity as it was, and the record would lack it. Recompute both from
            // the data (which needs every missing data unit rebuilt from trusted parity).
            if missingCount > parityMissing && !s.parityTrusted { throw .parityNeeded(byCopy: s.copyTakesParity) }
            return .reconstructWrite
        }
        // Read-modify-write keeps parity's relation to the missing column's data as it was,
        // even where that parity is not trusted (a torn line stays torn, an intact line stays
        // recoverable); writing data alone would make the missing column unrecoverable there.
        if missingCount > 0 { return .readModifyWrite }
        if !s.parityTrusted { return .reconstructWrite }
        let rmwReads = s.pieces + parityUnits
        let all: UInt64 = s.columnCount >= 64 ? ~0 : (1 << UInt64(s.columnCount)) - 1
        let rcwReads = (all & ~parityMask & ~s.covered).nonzeroBitCount
        // On a tie (a small write to a 4-column RAID-5: 2 reads either way) read-modify-write
        // moves the same I/O with less to allocate and XOR.
        return rcwReads < rmwReads ? .reconstructWrite : .readModifyWrite
    }
}
