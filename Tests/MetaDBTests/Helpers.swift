import Foundation
import MetaDB
import MetaDevices

/// Small slot size for fast unit tests.
let testSlot: UInt64 = 64 << 10

func memDevices(_ n: Int, size: UInt64 = 2 << 20) -> [MemoryDevice] {
    (0..<n).map { MemoryDevice(path: "mem\($0)", sizeBytes: size) }
}

/// A volume record whose content depends on `tag` (so configurations are distinguishable).
func sampleVolume(_ name: String, tag: Int, components: Int = 4) -> VolumeRecord {
    VolumeRecord(name: name, type: .raid5,
                 columns: (0..<components).map { i in
                     ComponentRecord(device: UUID(uuid: (UInt8(i), UInt8(tag & 0xff), UInt8((tag >> 8) & 0xff),
                                                         0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)))
                 },
                 originalColumnCount: components, interlaceBlocks: 1024, columnBlocks: UInt64(1000 + tag),
                 createdAt: Date(timeIntervalSince1970: 1_700_000_000))
}

/// Deterministic PRNG (SplitMix64) for property tests.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
