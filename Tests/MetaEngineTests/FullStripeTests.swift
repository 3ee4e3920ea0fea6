import Foundation
import MetaDB
import MetaModel
import MetaDevices
@testable import MetaEngine
import MetaTestSupport
import Testing

@Suite("RAID-5 whole-line writes")
struct FullStripeTests {
    /// Bytes of data in one line of the fixture volume.
    func lineBytes(_ f: EngineFixture) -> Int { (f.raid.layout.originalColumns - 1) * Int(f.raid.layout.interlaceBlocks) * 512 }

    @Test("aligned multi-line writes: data and parity right, no reads", arguments: [3, 4, 6])
    func aligned(_ columns: Int) throws {
        let f = try EngineFixture(type: .raid5, columns: columns, interlaceBlocks: 8)
        var rng = SeededRNG(seed: UInt64(columns))
        let lb = lineBytes(f)
        let lines = f.size / lb
        for _ in 0..<40 {
            let n = Int.random(in: 2...min(12, lines), using: &rng)
            let start = Int.random(in: 0...(lines - n), using: &rng)
            try f.write(start * lb, rng.bytes(n * lb))
        }
        #expect(try f.mismatches() == 0)
        #expect(try f.parityErrors().isEmpty)
    }

    @Test("whole-line writes on a degraded volume take the per-line path")
    func degraded() throws {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 8)
        var rng = SeededRNG(seed: 31)
        try f.fillRandom(&rng)
        f.devices[2].updateFaults { $0.failReads = true; $0.failWrites = true }
        let lb = lineBytes(f)
        try f.write(3 * lb, rng.bytes(5 * lb))
        #expect(f.state(ofColumn: 2) == .maintenance)
        #expect(try f.mismatches() == 0)
    }

    @Test("a column failing during a whole-line write: recorded, redone degraded, nothing lost")
    func failsMidWrite() throws {
        let f = try EngineFixture(type: .raid5, columns: 4, interlaceBlocks: 8)
        var rng = SeededRNG(seed: 32)
        try f.fillRandom(&rng)
        f.devices[1].updateFaults { $0.failWrites = true }
        let lb = lineBytes(f)
        try f.write(2 * lb, rng.bytes(6 * lb))
        #expect(f.state(ofColumn: 1) == .maintenance)
        f.devices[1].updateFaults { $0.failReads = true }
        #expect(try f.mismatches() == 0)
    }
}
