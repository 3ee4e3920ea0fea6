import Foundation
import MetaLayout

/// Pure arithmetic over lost-block ranges (see ``LostRange``).
public enum LostBlocks {
    /// Whether any block of `column` in `[start, start+count)` (column data blocks) is lost.
    public static func isLost(_ lost: [LostRange], column: Int, start: UInt64, count: UInt64) -> Bool {
        lost.contains { $0.column == column && $0.start < start + count && start < $0.end }
    }

    /// `ranges` minus `[start, start+count)` of `column`.
    public static func subtract(_ ranges: [LostRange], column: Int, start: UInt64, count: UInt64) -> [LostRange] {
        var out: [LostRange] = []
        let end = start + count
        for r in ranges {
            guard r.column == column, r.start < end, start < r.end else { out.append(r); continue }
            if r.start < start { out.append(LostRange(column: column, start: r.start, count: start - r.start)) }
            if r.end > end { out.append(LostRange(column: column, start: end, count: r.end - end)) }
        }
        return out
    }

    /// `ranges` plus `add`, merged per column.
    public static func union(_ ranges: [LostRange], _ add: [LostRange]) -> [LostRange] {
        var out: [LostRange] = []
        for r in (ranges + add).sorted(by: { ($0.column, $0.start) < ($1.column, $1.start) }) {
            if let last = out.last, last.column == r.column, r.start <= last.end {
                out[out.count - 1].count = max(last.end, r.end) - last.start
            } else {
                out.append(r)
            }
        }
        return out
    }
}

extension VolumeRecord {
    /// The volume's lost data as runs of volume blocks (start, count), merged and sorted:
    /// the parts of ``lostBlocks`` that hold data (parity positions are rebuilt by the parity
    /// repair and are never read as data).
    public var lostExtents: [(start: UInt64, count: UInt64)] {
        guard let lost = lostBlocks, !lost.isEmpty, let layout = raid5Layout else { return [] }
        var runs: [(start: UInt64, count: UInt64)] = []
        for r in lost {
            var b = r.start
            while b < r.end {
                // Up to the end of this unit (one line of the column).
                let unitEnd = min(r.end, (b / interlaceBlocks + 1) * interlaceBlocks)
                if let v = layout.logicalBlock(column: r.column, columnBlock: b) { runs.append((v, unitEnd - b)) }
                b = unitEnd
            }
        }
        runs.sort { $0.start < $1.start }
        var merged: [(start: UInt64, count: UInt64)] = []
        for x in runs {
            if let last = merged.last, last.start + last.count >= x.start {
                merged[merged.count - 1].count = max(last.start + last.count, x.start + x.count) - last.start
            } else {
                merged.append(x)
            }
        }
        return merged
    }

    /// Volume blocks whose data is lost.
    public var lostDataBlocks: UInt64 { lostExtents.reduce(0) { $0 + $1.count } }
}
