import MetaLayout
import Testing

/// The write strategy of one line, rule by rule, without devices: which columns are away,
/// whether the parity is trusted, whether a write log or a copy needs the parity.
@Suite("line write strategy")
struct LineWriteStrategyTests {
    /// A line of `columns` columns with P on `p` (and Q on `q`), a write to `written` (those
    /// in `covered` span the whole written range), columns `missing` away.
    static func situation(columns: Int = 4, p: Int = 3, q: Int? = nil, missing: [Int] = [], lastErred: [Int] = [],
                          written: [Int], covered: [Int]? = nil, trusted: Bool = true, unrecorded: Int? = nil,
                          logged: Bool = false, copy: Bool = false) -> LineWriteStrategy.Situation {
        func mask(_ cs: [Int]) -> UInt64 { cs.reduce(0) { $0 | 1 << UInt64($1) } }
        return .init(columnCount: columns, p: p, q: q, missing: mask(missing), lastErred: mask(lastErred),
                     written: mask(written), covered: mask(covered ?? written), pieces: written.count,
                     parityTrusted: trusted, unrecordedMissing: unrecorded, logged: logged, copyTakesParity: copy)
    }

    static func choose(_ s: LineWriteStrategy.Situation) -> Result<LineWriteStrategy, LineWriteStrategy.Refusal> {
        do throws(LineWriteStrategy.Refusal) { return .success(try LineWriteStrategy.choose(s)) } catch { return .failure(error) }
    }

    typealias Case = (String, LineWriteStrategy.Situation, Result<LineWriteStrategy, LineWriteStrategy.Refusal>)
    static let cases: [Case] = [
        // Healthy: reads counted. RAID-5 of 4, one unit written: RMW reads 2 (data, P), RCW 2
        // (the other two data units): a tie goes to RMW.
        ("healthy, one unit of 3", situation(written: [0]), .success(.readModifyWrite)),
        // Two units of three written whole: RMW reads 3, RCW 1.
        ("healthy, two units of 3", situation(written: [0, 1]), .success(.reconstructWrite)),
        // 8 columns, one unit: RMW 2 reads, RCW 6.
        ("healthy, one unit of 7", situation(columns: 8, p: 7, written: [2]), .success(.readModifyWrite)),
        // Parts of units (not covering the range) count as reads for RCW.
        ("healthy, two partial units", situation(written: [0, 1], covered: []), .success(.readModifyWrite)),
        ("untrusted parity, healthy", situation(written: [0], trusted: false), .success(.reconstructWrite)),
        // A data column away that the write does not touch: RMW keeps its relation to parity.
        ("another data column away", situation(missing: [1], written: [0]), .success(.readModifyWrite)),
        ("another away, untrusted parity", situation(missing: [1], written: [0], trusted: false), .success(.readModifyWrite)),
        // The written column away.
        ("written column away", situation(missing: [0], written: [0, 1]), .success(.degradedReconstruct(0))),
        ("written column away, covered, untrusted", situation(missing: [1], written: [0, 1], trusted: false), .success(.degradedReconstruct(1))),
        ("written column away, partial, untrusted", situation(missing: [1], written: [0, 1], covered: [0], trusted: false),
         .failure(.unrecoverable(column: 1))),
        ("RAID-5, two away", situation(missing: [0, 2], written: [0]), .failure(.unrecoverable(column: 0))),
        // Parity away.
        ("RAID-5, P away", situation(missing: [3], written: [0]), .success(.dataOnly)),
        ("RAID-5, P away, logged", situation(missing: [3], written: [0], logged: true), .success(.reconstructWrite)),
        ("RAID-5, P away, copy takes it", situation(missing: [3], written: [0], copy: true), .success(.reconstructWrite)),
        // RAID-6 (P 4, Q 0 on this line of 5).
        // RAID-6 healthy, one unit of three: RMW reads 3 (data, P, Q), RCW 2.
        ("RAID-6 healthy", situation(columns: 5, p: 4, q: 0, written: [1]), .success(.reconstructWrite)),
        ("RAID-6 healthy, one unit of 6", situation(columns: 8, p: 4, q: 5, written: [1]), .success(.readModifyWrite)),
        ("RAID-6, Q away", situation(columns: 5, p: 4, q: 0, missing: [0], written: [1]), .success(.readModifyWrite)),
        ("RAID-6, Q away, logged", situation(columns: 5, p: 4, q: 0, missing: [0], written: [1], logged: true), .success(.reconstructWrite)),
        ("RAID-6, P and Q away", situation(columns: 5, p: 4, q: 0, missing: [0, 4], written: [1]), .success(.dataOnly)),
        ("RAID-6, P and Q away, logged", situation(columns: 5, p: 4, q: 0, missing: [0, 4], written: [1], logged: true),
         .success(.reconstructWrite)),
        ("RAID-6, Q and a data column away, logged, untrusted",
         situation(columns: 5, p: 4, q: 0, missing: [0, 2], written: [1], trusted: false, logged: true), .failure(.parityNeeded(byCopy: false))),
        ("RAID-6, Q and a data column away, copy, untrusted",
         situation(columns: 5, p: 4, q: 0, missing: [0, 2], written: [1], trusted: false, copy: true), .failure(.parityNeeded(byCopy: true))),
        ("RAID-6, Q and a data column away, logged", situation(columns: 5, p: 4, q: 0, missing: [0, 2], written: [1], logged: true),
         .success(.reconstructWrite)),
        ("RAID-6, two written away", situation(columns: 5, p: 4, q: 0, missing: [1, 2], written: [1, 2]), .success(.degradedReconstruct(1))),
        ("RAID-6, three away", situation(columns: 5, p: 4, q: 0, missing: [0, 1, 2], written: [1]), .failure(.unrecoverable(column: 1))),
        // Refusals that come first.
        ("unrecorded absence", situation(missing: [1], written: [0], unrecorded: 1), .failure(.unrecordedMissing(column: 1))),
        ("unrecorded absence, nothing away now", situation(written: [0], unrecorded: 1), .success(.readModifyWrite)),
        ("Last Erred written column away", situation(missing: [0], lastErred: [0], written: [0]), .failure(.lastErredAway(column: 0))),
        ("Last Erred P away", situation(missing: [3], lastErred: [3], written: [0]), .failure(.lastErredAway(column: 3))),
        ("Last Erred away, not written", situation(missing: [1], lastErred: [1], written: [0]), .success(.readModifyWrite)),
        // P is named before Q, whatever their numbers.
        ("RAID-6, Last Erred P and Q away", situation(columns: 5, p: 4, q: 0, missing: [0, 4], lastErred: [0, 4], written: [1]),
         .failure(.lastErredAway(column: 4))),
    ]

    @Test("rules", arguments: cases.indices)
    func rule(_ i: Int) {
        let (name, s, expected) = Self.cases[i]
        #expect(Self.choose(s) == expected, "\(name)")
    }
}
