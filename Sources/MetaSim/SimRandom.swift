import Foundation
import MetaTestSupport

/// The simulator's random numbers: ``SeededRNG`` (SplitMix64), so that a seed replays the
/// same schedule on every machine and every Swift version (the standard library's generator
/// is not specified to be stable), with the two draws the simulator makes.
public struct SimRandom: RandomNumberGenerator, Sendable {
    private var base: SeededRNG
    public init(seed: UInt64) { base = SeededRNG(seed: seed) }
    public mutating func next() -> UInt64 { base.next() }
    /// A value in `0..<n` (n > 0).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
    /// Sixteen random bytes (a UUID's worth).
    public mutating func uuidBytes() -> uuid_t {
        let a = next(), b = next()
        func byte(_ x: UInt64, _ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: x >> (8 * i)) }
        return (byte(a, 0), byte(a, 1), byte(a, 2), byte(a, 3), byte(a, 4), byte(a, 5), byte(a, 6), byte(a, 7),
                byte(b, 0), byte(b, 1), byte(b, 2), byte(b, 3), byte(b, 4), byte(b, 5), byte(b, 6), byte(b, 7))
    }
    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
}
