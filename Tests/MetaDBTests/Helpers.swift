import Foundation
import MetaDB
import MetaModel
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

