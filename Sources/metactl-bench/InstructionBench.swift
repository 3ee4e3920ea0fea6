import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine
import MetaCommands

/// The noise-free figure: CPU instructions per request of the engine itself. One workload
/// runs `requests` 4 KiB requests at random aligned offsets against a volume on memory
/// devices (no device I/O, no syscalls on the data path), on one thread. The script
/// `scripts/bench-instructions` runs it under callgrind with N requests and with none and
/// divides the difference by N, so setup and teardown cancel out.
enum InstructionBench {
    /// `concat-read-export` goes through the NBD export layer (``VolumeExport``) without
    /// metrics and `concat-read-metrics` with `serve --metrics`' counters: their difference is
    /// what counting costs per request.
    static let workloads = ["concat-read", "concat-write", "raid5-read", "raid5-write", "raid6-read", "raid6-write",
                            "concat-read-export", "concat-read-metrics", "softpart-read", "softpart-write",
                            "mirror-read", "mirror-write"]

    /// Runs `workload` `requests` times; returns a checksum of what was read (so the reads
    /// cannot be optimised away).
    static func run(_ workload: String, requests: Int) throws -> UInt64 {
        // `softpart-*`: through a soft partition of two extents (the halves of the RAID-5,
        // swapped) over the same RAID-5 as `raid5-*`.
        let soft = workload.hasPrefix("softpart")
        // `mirror-*`: a mirror of two one-device concats (round-robin reads, parallel writes).
        let mirror = workload.hasPrefix("mirror")
        let raid = workload.hasPrefix("raid") || soft
        let type: VolumeType = workload.hasPrefix("raid6") ? .raid6 : raid ? .raid5 : .concat
        // RAID-6 with the same 3 data columns as the RAID-5.
        let columns = type == .raid6 ? 5 : raid ? 4 : mirror ? 2 : 1
        let deviceBytes: UInt64 = 64 << 20
        let start: UInt64 = 2048
        var records: [DeviceRecord] = []
        var map: [UUID: any BlockDevice] = [:]
        for i in 0..<columns {
            let d = MemoryDevice(path: "mem\(i)", sizeBytes: deviceBytes)
            let r = DeviceRecord(uuid: UUID(), lastPath: d.path, sizeBytes: deviceBytes, dataStartBlock: start,
                                 replicaCount: 0, role: .component)
            records.append(r)
            map[r.uuid] = d
        }
        let blocks = deviceBytes / 512 - start
        let vol = raid
            ? VolumeRecord(name: "bench", type: type, columns: records.map { ComponentRecord(device: $0.uuid) },
                           originalColumnCount: columns, interlaceBlocks: 128, columnBlocks: blocks)
            : VolumeRecord(name: "bench", type: .concat,
                           rows: [RowRecord(interlaceBlocks: 1, componentBlocks: blocks, components: [ComponentRecord(device: records[0].uuid)])])
        var vols = [vol]
        if mirror {
            let side = VolumeRecord(name: "bench-1", type: .concat,
                                    rows: [RowRecord(interlaceBlocks: 1, componentBlocks: blocks, components: [ComponentRecord(device: records[1].uuid)])])
            var m = VolumeRecord(name: "bench-m", type: .mirror)
            m.mirror = MirrorRecord(submirrors: [SubmirrorRecord(volume: "bench"), SubmirrorRecord(volume: "bench-1")], regionBlocks: 131072)
            vols += [side, m]
        }
        let store = InMemoryConfigStore(SetConfig(setName: "bench", devices: records, volumes: vols))
        let devices = map
        let parent = try VolumeFactory.open(vol, context: VolumeContext(store: store, devices: { devices[$0] }))
        defer { parent.close() }
        var v = parent
        if mirror {
            let other = try VolumeFactory.open(vols[1], context: parent.context)
            v = try VolumeFactory.open(vols[2], context: parent.context, children: [parent, other])
        }
        if soft {
            let p = parent.sizeBytes / 512, h = p / 2 / 8 * 8
            var rec = VolumeRecord(name: "bench-sp", type: .softpart)
            rec.softPartition = SoftPartitionRecord(parent: "bench", extents: [SoftExtent(watermarkBlock: h, blocks: p - h - 8),
                                                                              SoftExtent(watermarkBlock: 0, blocks: h - 8)])
            v = try VolumeFactory.open(rec, context: parent.context, parent: parent)
        }
        let buf = AlignedBuffer(count: 4096)
        var rng = SplitMix(seed: 42)
        let slots = v.sizeBytes / 4096
        let write = workload.hasSuffix("write")
        let viaExport = workload.hasSuffix("-export") || workload.hasSuffix("-metrics")
        let export = VolumeExport(volume: v, readOnly: false, description: "bench",
                                  stats: workload.hasSuffix("-metrics") ? ServeMetrics(set: "bench").stats(volume: "bench") : nil)
        var sum: UInt64 = 0
        for i in 0..<requests {
            let off = (rng.next() % slots) * 4096
            if write {
                buf.mutableBytes.storeBytes(of: UInt64(i), as: UInt64.self)
                try v.write(offset: off, from: UnsafeRawBufferPointer(buf.mutableBytes))
            } else {
                if viaExport { try export.read(offset: off, into: buf.mutableBytes) } else { try v.read(offset: off, into: buf.mutableBytes) }
                sum &+= buf.mutableBytes.load(as: UInt64.self)
            }
        }
        withExtendedLifetime(buf) {}
        return sum
    }
}
