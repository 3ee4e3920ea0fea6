import Testing

/// Deterministic pseudo-random generator (SplitMix64) so property tests are reproducible:
/// the same seed always yields the same geometries and samples, independent of the
/// standard library's own range-sampling algorithm.
struct SeededRNG {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform-ish value in `0..<n` (multiply-high; bias is irrelevant here). `n` must be > 0.
    mutating func below(_ n: UInt64) -> UInt64 {
        next().multipliedFullWidth(by: n).high
    }

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
