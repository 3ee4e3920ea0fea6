import Foundation

/// What a `metactl check` of a redundant volume has found so far, or found last time.
public struct CheckCounts: Codable, Sendable, Equatable {
    /// How many of the first mismatching lines ``lines`` keeps.
    public static let recordedLines = 16

    /// Lines whose parity did not match their data.
    public var mismatches: UInt64 = 0
    /// The first ``recordedLines`` of them (line numbers, ascending).
    public var lines: [UInt64] = []
    /// Mismatching lines whose parity was rewritten (`--repair`).
    public var repaired: UInt64 = 0
    /// Units that could not be read and were rewritten from the other columns (md's
    /// read-error correction): the column stays in service.
    public var readErrorsRepaired: UInt64 = 0
    /// RAID-6: mismatches whose wrong unit the two syndromes located (the first
    /// ``recordedLines``): which column of which line held it. Absent in older encodings.
    public var located: [LocatedUnit]? = nil

    /// A unit a RAID-6 check found wrong: the syndromes point at exactly one column.
    public struct LocatedUnit: Codable, Sendable, Equatable {
        public var line: UInt64
        public var column: Int
        public init(line: UInt64, column: Int) { self.line = line; self.column = column }
    }

    public init(mismatches: UInt64 = 0, lines: [UInt64] = [], repaired: UInt64 = 0, readErrorsRepaired: UInt64 = 0) {
        self.mismatches = mismatches; self.lines = lines; self.repaired = repaired; self.readErrorsRepaired = readErrorsRepaired
    }

    /// Counts a mismatching `line` (kept in ``lines`` while there is room).
    public mutating func addMismatch(_ line: UInt64, repaired fixed: Bool) {
        mismatches += 1
        if fixed { repaired += 1 }
        if lines.count < Self.recordedLines { lines.append(line) }
    }

    /// Records that the mismatch of `line` was in `column` (RAID-6), while there is room.
    public mutating func addLocated(_ line: UInt64, column: Int) {
        if (located?.count ?? 0) < Self.recordedLines { located = (located ?? []) + [LocatedUnit(line: line, column: column)] }
    }
}

/// How a check ended.
public enum CheckResult: String, Codable, Sendable, Equatable {
    /// Every line was read.
    case completed
    /// Stopped by `check --stop`; the check is not resumed.
    case stopped
    /// A column became unusable (failed, replaced, missing) or the layout changed: the
    /// check cannot go on. ``CheckRecord/failure`` says why.
    case abandoned
}

/// The current or last `metactl check` of a RAID-5 or RAID-6 volume. While ``running``, a server
/// start resumes it from ``doneLines`` (the counts so far are kept).
public struct CheckRecord: Codable, Sendable, Equatable {
    /// Whether mismatches are repaired (parity rewritten) or only counted.
    public var repair: Bool
    public var running: Bool
    /// Lines below this are checked.
    public var doneLines: UInt64
    public var totalLines: UInt64
    public var counts: CheckCounts
    public var startedAt: Date
    public var endedAt: Date?
    public var result: CheckResult?
    /// Why the check was abandoned.
    public var failure: String?

    public init(repair: Bool, running: Bool = true, doneLines: UInt64 = 0, totalLines: UInt64,
                counts: CheckCounts = CheckCounts(), startedAt: Date, endedAt: Date? = nil,
                result: CheckResult? = nil, failure: String? = nil) {
        self.repair = repair; self.running = running; self.doneLines = doneLines; self.totalLines = totalLines
        self.counts = counts; self.startedAt = startedAt; self.endedAt = endedAt; self.result = result
        self.failure = failure
    }
}
