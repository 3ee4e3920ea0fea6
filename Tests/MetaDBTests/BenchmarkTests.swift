import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport
import Testing

/// Measurements for the issue note; run with `scripts/bench-db` (METACTL_BENCH=1).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["METACTL_BENCH"] == "1"))
struct DBBenchmark {
    /// A configuration with `n` RAID-5 volumes of 4 components, each on its own device.
    static func bigConfig(_ n: Int) -> SetConfig {
        var c = SetConfig(setName: "bench")
        for i in 0..<n {
            var comps: [ComponentRecord] = []
            for k in 0..<4 {
                let d = DeviceRecord(uuid: UUID(), lastPath: "/dev/disk/by-id/wwn-0x5000c500a1b2\(String(format: "%04d", i))-\(k)",
                                     serial: "ZA1B2C\(i)\(k)", sizeBytes: 4 << 40, dataStartBlock: 2048,
                                     replicaCount: 0, role: .component)
                c.devices.append(d)
                comps.append(ComponentRecord(device: d.uuid))
            }
            c.volumes.append(VolumeRecord(name: "d\(i)", type: .raid5, columns: comps, originalColumnCount: 4,
                                          interlaceBlocks: 128, columnBlocks: 8_589_934_592 - 2048))
        }
        return c
    }

    @Test func capacity() throws {
        let slot = Int(DiskLayout.defaultSlotSize) - DiskLayout.slotHeaderSize
        var lo = 1, hi = 100_000
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if try ConfigCodec.encode(Self.bigConfig(mid)).count <= slot { lo = mid } else { hi = mid - 1 }
        }
        let per = try ConfigCodec.encode(Self.bigConfig(100)).count / 100
        print("""
        replica: 2 slots x \(DiskLayout.defaultSlotSize >> 10) KiB = \(2 * DiskLayout.defaultSlotSize >> 20) MiB at offset \(DiskLayout.replicaAreaOffset); \
        data start with 1 replica: block \(DiskLayout.dataStartBlock(copies: 1, slotSize: DiskLayout.defaultSlotSize))
        payload per RAID-5 volume of 4 components (with its 4 device records): ~\(per) bytes
        largest configuration per slot: \(lo) volumes x 4 components
        """)
        #expect(lo >= 1000)
    }

    static func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

    static func measure(_ db: SetDatabase, commits: Int = 200) throws -> (median: Double, p90: Double) {
        var times: [Double] = []
        for i in 0..<commits {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try db.commit { $0.cleanShutdown = i % 2 == 0 }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let s = times.sorted()
        return (s[s.count / 2], s[s.count * 9 / 10])
    }

    @Test func commitLatency() throws {
        let t = try TempDir(prefix: "metactl-bench")
        var rows: [String] = []
        // Image files.
        let imgs = try (0..<3).map { try t.image("r\($0).img", size: 64 << 20) }
        do {
            let db = try SetDatabase.create(setName: "bench", replicaDevices: imgs.map { ($0, 1) },
                                            configDir: t.file("etc"), runDir: t.file("run"), force: false)
            defer { db.close() }
            let small = try Self.measure(db)
            try db.commit { c in
                let big = Self.bigConfig(1000)
                c.volumes = big.volumes
                c.devices += big.devices
            }
            let large = try Self.measure(db, commits: 50)
            let direct = (db.device(db.config.devices[0].uuid) as? FileDevice)?.isDirect ?? false
            rows.append("image files (\(direct ? "O_DIRECT" : "buffered")), empty config:  median \(String(format: "%.2f", small.median)) ms, p90 \(String(format: "%.2f", small.p90)) ms")
            rows.append("image files, 1000 volumes config:    median \(String(format: "%.2f", large.median)) ms, p90 \(String(format: "%.2f", large.p90)) ms")
        }
        if Privileged.hasLoop {
            let files = try (0..<3).map { try t.image("l\($0).img", size: 64 << 20) }
            let loops = try files.map { try LoopDevice(file: $0) }
            defer { loops.forEach { $0.detach() } }
            let db = try SetDatabase.create(setName: "benchloop", replicaDevices: loops.map { ($0.path, 1) },
                                            configDir: t.file("etc2"), runDir: t.file("run2"), force: false)
            defer { db.close() }
            let small = try Self.measure(db)
            rows.append("loop devices, empty config:          median \(String(format: "%.2f", small.median)) ms, p90 \(String(format: "%.2f", small.p90)) ms")
        } else {
            rows.append("loop devices: skipped (needs root)")
        }
        print("commit latency, 3 replicas, 200 commits:\n" + rows.joined(separator: "\n"))
    }
}
