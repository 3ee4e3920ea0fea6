import Foundation
import MetaTestSupport
import MetaDB
import MetaModel
import MetaDevices
@testable import MetaEngine
import Testing

/// Volumes over devices with 4096-byte logical sectors (review finding 5): the volume knows
/// its sector, refuses smaller or misaligned requests with EINVAL before any device I/O, and
/// a device's alignment refusal is never counted as a column failure.
@Suite("4096-byte logical sectors")
struct SectorSizeTests {
    /// 16 blocks = 8 KiB: a multiple of 4096.
    static let interlace: UInt64 = 16

    static func fixture(_ type: VolumeType) throws -> EngineFixture {
        try EngineFixture(type: type, columns: type == .raid5 ? 3 : 2, interlaceBlocks: interlace, sectorSize: 4096)
    }

    static func expectInvalid(_ what: String, _ body: () throws(VolumeIOError) -> Void) {
        do throws(VolumeIOError) {
            try body()
            Issue.record("\(what): succeeded, expected EINVAL")
        } catch {
            #expect(error.code == .invalid, "\(what): \(error)")
            #expect(error.detail.contains("4096-byte sector"), "\(what): \(error)")
        }
    }

    /// Every column (RAID-5) or component record is still Okay.
    static func allOkay(_ f: EngineFixture) -> Bool {
        f.store.config.volume(named: f.name)!.allComponents.allSatisfy { $0.state == .okay }
    }

    @Test("the sector size is the components' logical sector", arguments: [VolumeType.raid5, .stripe, .concat])
    func reportsSectorSize(_ type: VolumeType) throws {
        #expect(try Self.fixture(type).volume.sectorSize == 4096)
        #expect(try EngineFixture(type: type, columns: type == .raid5 ? 3 : 2, interlaceBlocks: Self.interlace)
            .volume.sectorSize == 512)
    }

    @Test("requests not aligned to 4096 bytes are refused before any device I/O; nothing changes state",
          arguments: [VolumeType.raid5, .stripe])
    func misalignedRequestsAreRefused(_ type: VolumeType) throws {
        let f = try Self.fixture(type)
        var rng = SeededRNG(seed: 4096)
        try f.fillRandom(&rng)
        let before = f.devices.map { $0.base as! MemoryDevice }.map { $0.snapshot() }
        let v = f.volume
        let buf = AlignedBuffer(count: 8192)
        defer { withExtendedLifetime(buf) {} }
        for (off, len) in [(512, 512), (0, 512), (4096, 1000), (512, 4096), (100, 8192)] as [(UInt64, Int)] {
            Self.expectInvalid("read \(off)+\(len)") { () throws(VolumeIOError) in
                try v.read(offset: off, into: buf.mutableBytes(offset: 0, count: len))
            }
            Self.expectInvalid("write \(off)+\(len)") { () throws(VolumeIOError) in
                try v.write(offset: off, from: UnsafeRawBufferPointer(buf.mutableBytes(offset: 0, count: len)))
            }
            Self.expectInvalid("write-zeroes \(off)+\(len)") { () throws(VolumeIOError) in
                try v.writeZeroes(offset: off, length: UInt64(len))
            }
            if v.supportsDiscard {
                Self.expectInvalid("trim \(off)+\(len)") { () throws(VolumeIOError) in
                    try v.discard(offset: off, length: UInt64(len))
                }
            }
        }
        // No device saw a request (no injected or alignment error), nothing changed on them,
        // and every component is still Okay.
        #expect(f.devices.map { ($0.base as! MemoryDevice).snapshot() } == before)
        #expect(Self.allOkay(f))
        #expect(f.store.config.volume(named: f.name)!.derivedState == .okay)
        #expect(try f.mismatches() == 0)
    }

    @Test("4096-aligned I/O round-trips", arguments: [VolumeType.raid5, .stripe])
    func alignedIORoundTrips(_ type: VolumeType) throws {
        let f = try Self.fixture(type)
        var rng = SeededRNG(seed: 0x5a)
        let sectors = f.size / 4096
        for _ in 0..<200 {
            let n = Int.random(in: 1...min(12, sectors), using: &rng)
            let at = Int.random(in: 0...(sectors - n), using: &rng)
            if Bool.random(using: &rng) {
                try f.write(at * 4096, rng.bytes(n * 4096))
            } else {
                #expect(try f.read(at * 4096, n * 4096) == Array(f.model[(at * 4096)..<((at + n) * 4096)]))
            }
        }
        try f.volume.writeZeroes(offset: 8192, length: 3 * 4096)
        f.model.replaceSubrange(8192..<(8192 + 3 * 4096), with: [UInt8](repeating: 0, count: 3 * 4096))
        #expect(try f.mismatches() == 0)
        #expect(Self.allOkay(f))
        if type == .raid5 { #expect(try f.parityErrors().isEmpty) }
    }

    /// Below the byte-level check: a device refusing a misaligned transfer with EINVAL (as
    /// `FileDevice` does with O_DIRECT) fails the request but never marks a column failed.
    @Test("RAID-5: an EINVAL from a device is not a column failure")
    func einvalIsNotAColumnFailure() throws {
        let f = try Self.fixture(.raid5)
        var rng = SeededRNG(seed: 7)
        try f.fillRandom(&rng)
        let r5 = try #require(f.volume as? RAID5Volume)
        let buf = AlignedBuffer(count: 512)
        defer { withExtendedLifetime(buf) {} }
        // Block 1 = byte 512: inside the first 4096-byte sector of column 0.
        #expect(throws: VolumeIOError.self) { try r5.readBlocks(1, into: buf.mutableBytes) }
        #expect(throws: VolumeIOError.self) { try r5.writeBlocks(1, from: buf.bytes) }
        // A 512-byte piece of another column, and one that needs the parity column too.
        #expect(throws: VolumeIOError.self) { try r5.readBlocks(Self.interlace + 3, into: buf.mutableBytes) }
        #expect(throws: VolumeIOError.self) { try r5.writeBlocks(Self.interlace + 3, from: buf.bytes) }
        #expect(Self.allOkay(f))
        #expect(f.store.config.volume(named: f.name)!.derivedState == .okay)
        #expect(try f.mismatches() == 0)
        #expect(try f.parityErrors().isEmpty)
    }

    @Test("RAID-5: a copy target with 4096-byte sectors raises the sector size on reload")
    func copyTargetCounts() throws {
        let f = try EngineFixture(type: .raid5, columns: 3, interlaceBlocks: Self.interlace)
        #expect(f.volume.sectorSize == 512)
        let target = MemoryDevice(path: "target", sizeBytes: (256 << 10) + EngineFixture.dataStartBlock * 512, sectorSize: 4096)
        let rec = DeviceRecord(uuid: UUID(), lastPath: "target", sizeBytes: target.sizeBytes,
                               dataStartBlock: EngineFixture.dataStartBlock, replicaCount: 0, role: .component)
        f.extra.set(rec.uuid, target)
        _ = try f.store.commit { cfg in
            cfg.devices.append(rec)
            let source = cfg.volumes[0].columns[1].device
            cfg.volumes[0].resync = ResyncCheckpoint(kind: .copy, column: 1, target: rec.uuid, source: source,
                                                     totalBlocks: cfg.volumes[0].columnBlocks)
        }
        let r5 = try #require(f.volume as? RAID5Volume)
        try r5.reload()
        #expect(r5.sectorSize == 4096)
        _ = try f.store.commit { cfg in cfg.volumes[0].resync = nil }
        try r5.reload()
        #expect(r5.sectorSize == 512)
    }

    @Test("a one-device row is cut to whole sectors of the volume")
    func rowCutToSectors() {
        let d = DeviceRecord(uuid: UUID(), lastPath: "d", sizeBytes: (100 << 20) + 3 * 512, dataStartBlock: 2048,
                             replicaCount: 0, role: .component)
        #expect(d.dataBlocks % 8 == 3)
        #expect(Grow.row(devices: [d], interlaceBlocks: 1).componentBlocks == d.dataBlocks)
        #expect(Grow.row(devices: [d], interlaceBlocks: 1, sectorBlocks: 8).componentBlocks == d.dataBlocks / 8 * 8)
    }
}
