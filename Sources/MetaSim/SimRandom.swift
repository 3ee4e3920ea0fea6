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
    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
}
