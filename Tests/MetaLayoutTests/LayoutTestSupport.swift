import MetaTestSupport
import Testing

/// Collects failures of hot-loop checks without paying `#expect`'s cost on every success,
/// and stops recording after a few so a broken map does not flood the log.
struct Checker {
    private(set) var failures = 0
    let limit: Int
    let context: String

    init(_ context: String, limit: Int = 10) {
        self.context = context
        self.limit = limit
    }

    /// Records an issue when `condition` is false. Returns `condition`.
    @discardableResult
    mutating func check(_ condition: Bool, _ message: @autoclosure () -> String,
                        sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if !condition {
            failures += 1
            if failures <= limit {
                Issue.record(Comment(rawValue: "\(context): \(message())"), sourceLocation: sourceLocation)
            }
        }
        return condition
    }

    /// True once enough failures were seen that further checking is pointless.
    var saturated: Bool { failures > limit }
}

extension SeededRNG {
    /// Value in the closed range `lo...hi`.
    mutating func inRange(_ lo: UInt64, _ hi: UInt64) -> UInt64 {
        let span = hi - lo
        return span == UInt64.max ? next() : lo + below(span + 1)
    }

    mutating func int(_ lo: Int, _ hi: Int) -> Int {
        Int(inRange(UInt64(lo), UInt64(hi)))
    }

    /// A size spread over many orders of magnitude: picks a bit width first, then a value
    /// of that width, clamped to `lo...hi`.
    mutating func logUniform(_ lo: UInt64, _ hi: UInt64) -> UInt64 {
        let bits = UInt64(64 - hi.leadingZeroBitCount)
        let w = below(bits + 1)
        let v = w == 0 ? 0 : (w >= 64 ? next() : (next() & ((1 << w) - 1)))
        return min(max(v, lo), hi)
    }
}
