import Foundation
import MetaDevices
import MetaEngine

/// Parity throughput: `Parity.xor` (ISA-L `xor_gen` on aligned buffers) against
/// `Parity.plainXor` (the portable word loop), same buffers, same run.
enum ParityBench {
    /// Runs `body` warm for at least `minIterations` and `minSeconds`; returns (iterations, seconds).
    static func measure(minIterations: Int, minSeconds: Double, _ body: () -> Void) -> (Int, Double) {
        for _ in 0..<max(10, minIterations / 20) { body() }   // warm caches, branch predictors, clocks
        var iters = 0
        let start = nowNanos()
        var elapsed = 0.0
        repeat {
            for _ in 0..<50 { body() }
            iters += 50
            elapsed = elapsedSeconds(since: start)
        } while iters < minIterations || elapsed < minSeconds
        return (iters, elapsed)
    }

    /// Returns the table; throws nothing (a mismatch between the two implementations is
    /// reported in the table and makes the program exit non-zero).
    static func run(minIterations: Int, minSeconds: Double) -> (table: Table, ok: Bool) {
        var table = Table(title: "Parity: bytes of source XORed per second (warm, single thread)",
                          header: ["sources", "buffer", "iterations", "ISA-L xor_gen GB/s", "plain loop GB/s", "ratio", "equal"])
        var ok = true
        for n in [3, 4, 8] {
            for size in [64 << 10, 1 << 20] {
                let srcs = (0..<n).map { AlignedBuffer.random(count: size, seed: UInt64(n * 1000 + $0)) }
                let ptrs = srcs.map { UnsafeRawPointer($0.base) }
                let a = AlignedBuffer(count: size)
                let b = AlignedBuffer(count: size)
                let (ia, ta) = measure(minIterations: minIterations, minSeconds: minSeconds) {
                    Parity.xor(sources: ptrs, into: a.base, count: size)
                }
                let (ib, tb) = measure(minIterations: minIterations, minSeconds: minSeconds) {
                    Parity.plainXor(sources: ptrs, into: b.base, count: size)
                }
                let equal = memcmp(a.base, b.base, size) == 0
                // The raw pointers do not keep the buffers alive: without this, Swift may free
                // them right after `ptrs` is built (1 MiB buffers are unmapped: SIGSEGV).
                withExtendedLifetime(srcs) {}
                ok = ok && equal
                let gA = Double(n * size) * Double(ia) / ta / 1e9
                let gB = Double(n * size) * Double(ib) / tb / 1e9
                table.add(["\(n)", sizeLabel(size), "\(ia)/\(ib)", fmt(gA, 2), fmt(gB, 2), fmt(gA / gB, 2) + "x",
                           equal ? "yes" : "NO"])
            }
        }
        return (table, ok)
    }
}
