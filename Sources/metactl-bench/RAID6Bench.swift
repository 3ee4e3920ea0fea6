import CISAL
import Foundation
import MetaDB
import MetaDevices
import MetaEngine
import MetaLayout
import MetaModel

/// RAID-6 against its peers, in one run: P+Q generation against ISA-L's `pq_gen` alone on
/// the same buffers; then, over the same image files, a RAID-6 of 5 columns against a
/// RAID-5 of 4 (3 data columns each) for full-line sequential writes; RAID-6 sequential
/// reads healthy and with two columns missing; and a RAID-6 check against the sequential
/// read rate of its files.
extension EngineBench {
    /// P+Q of `k` data units of `size` bytes: `Syndrome.generate` (what the engine calls)
    /// against `pq_gen` called directly, same buffers; and two data units recovered.
    static func syndromeTable(minSeconds: Double) -> Table {
        var t = Table(title: "RAID-6 P+Q: data bytes per second (warm, single thread, 32-byte aligned buffers)",
                      header: ["data units", "unit", "Syndrome.generate GB/s", "ISA-L pq_gen GB/s", "ratio",
                               "recover 2 data GB/s", "equal"])
        for k in [3, 8] {
            for size in [64 << 10, 1 << 20] {
                let data = (0..<k).map { AlignedBuffer.random(count: size, seed: UInt64(k * 100 + $0)) }
                let p = AlignedBuffer(count: size), q = AlignedBuffer(count: size)
                let p2 = AlignedBuffer(count: size), q2 = AlignedBuffer(count: size)
                let ptrs = data.map { UnsafeRawPointer($0.base) }
                var raw: [UnsafeMutableRawPointer?] = data.map { $0.base } + [p2.base, q2.base]
                // Three alternating rounds each, the best of each kept: a noisy neighbour then
                // slows both sides alike instead of one.
                var best = (a: 0.0, b: 0.0)
                for _ in 0..<3 {
                    let (ia, ta) = ParityBench.measure(minIterations: 100, minSeconds: minSeconds / 3) {
                        Syndrome.generate(data: ptrs, p: p.base, q: q.base, count: size)
                    }
                    let (ib, tb) = ParityBench.measure(minIterations: 100, minSeconds: minSeconds / 3) {
                        _ = raw.withUnsafeMutableBufferPointer { pq_gen(Int32($0.count), Int32(size), $0.baseAddress) }
                    }
                    best = (max(best.a, Double(ia) / ta), max(best.b, Double(ib) / tb))
                }
                // Two data units lost (0 and k−1), rebuilt from the rest, P and Q.
                let layout = RAID5Layout(originalColumns: k + 2, interlaceBlocks: UInt64(size / 512),
                                         columnBlocks: UInt64(size / 512), parityCount: 2)
                let order = layout.dataColumnsInUnitOrder(line: 0)
                var have = (1..<(k - 1)).map { (column: order[$0], bytes: UnsafeRawPointer(data[$0].base)) }
                have.append((layout.parityColumn(line: 0), UnsafeRawPointer(p.base)))
                have.append((layout.qColumn(line: 0)!, UnsafeRawPointer(q.base)))
                let out0 = AlignedBuffer(count: size), out1 = AlignedBuffer(count: size)
                let (ic, tc) = ParityBench.measure(minIterations: 50, minSeconds: minSeconds) {
                    Syndrome.recover(layout, line: 0, have: have,
                                     want: [(order[0], out0.base), (order[k - 1], out1.base)], count: size)
                }
                let equal = memcmp(p.base, p2.base, size) == 0 && memcmp(q.base, q2.base, size) == 0
                    && memcmp(out0.base, data[0].base, size) == 0 && memcmp(out1.base, data[k - 1].base, size) == 0
                withExtendedLifetime((data, raw)) {}
                let gA = Double(k * size) * best.a / 1e9
                let gB = Double(k * size) * best.b / 1e9
                let gC = Double(k * size) * Double(ic) / tc / 1e9
                t.add(["\(k)", sizeLabel(size), fmt(gA, 2), fmt(gB, 2), fmt(gA / gB, 2), fmt(gC, 2), equal ? "yes" : "NO"])
                raw = []
            }
        }
        return t
    }

    /// Opens a RAID-5 over the first `columns` devices, or a RAID-6 over `columns` devices;
    /// columns in `missing` are recorded `Maintenance`; with `initialize`, its parity is
    /// computed over the whole volume first (as `create` without `--no-init`).
    func openParityVolume(_ type: VolumeType, devices devs: [MeteredDevice], missing: Set<Int> = [], initialize: Bool = false)
        throws -> (volume: RAID5Volume, store: InMemoryConfigStore) {
        var records: [DeviceRecord] = []
        var byUUID: [UUID: any BlockDevice] = [:]
        for d in devs {
            let r = DeviceRecord(uuid: UUID(), lastPath: d.path, sizeBytes: d.sizeBytes, dataStartBlock: Self.dataStartBlock,
                                 replicaCount: 0, role: .component)
            records.append(r)
            byUUID[r.uuid] = d
        }
        let colBlocks = (imageBytes / 512 - Self.dataStartBlock) / Self.interlaceBlocks * Self.interlaceBlocks
        var vol = VolumeRecord(name: "bench", type: type,
                               columns: records.enumerated().map { ComponentRecord(device: $1.uuid, state: missing.contains($0) ? .maintenance : initialize ? .initializing : .okay) },
                               originalColumnCount: devs.count, interlaceBlocks: Self.interlaceBlocks, columnBlocks: colBlocks)
        if initialize { vol.resync = ResyncCheckpoint(kind: .initialize, totalBlocks: colBlocks) }
        let store = InMemoryConfigStore(SetConfig(setName: "bench", devices: records, volumes: [vol]))
        let map = byUUID
        guard let v = try VolumeFactory.open(vol, context: VolumeContext(store: store, devices: { map[$0] })) as? RAID5Volume else {
            throw BenchError("not a parity engine")
        }
        if initialize {
            v.startBackgroundWork()
            v.waitForBackgroundWork()
        }
        return (v, store)
    }

    /// The RAID-6 table over the image files (a fifth one is made next to the four).
    func raid6Table() throws -> Table {
        let p = "\(dir)/col-raid6.img"
        let fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        guard fd >= 0, ftruncate(fd, off_t(imageBytes)) == 0 else { throw BenchError("cannot create \(p)") }
        close(fd)
        defer { unlink(p) }
        let fifth = MeteredDevice(try FileDevice(path: p))
        defer { fifth.base.close() }
        let five = devices + [fifth]
        let line = 3 * Int(Self.interlaceBlocks * 512)   // 3 data units of 64 KiB, both volumes
        let req = 16 * line                              // 3 MiB: 16 whole lines per request
        var t = Table(title: "RAID-6 (5 columns) against RAID-5 (4 columns), 3 data columns each, interlace 64 KiB, over the same image files (\(direct ? "O_DIRECT" : "buffered"))",
                      header: ["what", "MB/s", "against", "ratio", "CPU %"])

        func seq(_ v: Volume, write: Bool, request: Int) throws -> RunResult {
            let size = v.sizeBytes / UInt64(request) * UInt64(request)
            let r = run(Workload(threads: 2, request: request, write: write, random: false,
                                 region: Self.regions(size: size, threads: 2, request: request), io: Self.volumeIO(v)))
            if let e = r.error { throw BenchError("\(write ? "write" : "read"): \(e)") }
            return r
        }
        let (r5, _) = try openParityVolume(.raid5, devices: Array(devices.prefix(4)))
        let w5 = try seq(r5, write: true, request: req)
        r5.close()
        // P and Q initialised everywhere first, so that the check below has nothing to find
        // in lines the timed writes did not reach.
        let (r6, store6) = try openParityVolume(.raid6, devices: five, initialize: true)
        let w6 = try seq(r6, write: true, request: req)
        t.add(["RAID-5 full-line seq write, 3 MiB requests, 2 threads", fmt(w5.mbps), "", "", fmt(w5.cpuPercent, 0)])
        t.add(["RAID-6 full-line seq write, same", fmt(w6.mbps), "RAID-5", fmt(w6.mbps / w5.mbps, 2), fmt(w6.cpuPercent, 0)])
        // What the columns took: RAID-6 writes 5 units per 3 of data, RAID-5 4. On devices of
        // their own both are limited per device; on one shared disk RAID-6 can reach only 4/5.
        t.add(["  the same, bytes to the columns (RAID-5 × 4/3, RAID-6 × 5/3)", "\(fmt(w5.mbps * 4 / 3)) / \(fmt(w6.mbps * 5 / 3))",
               "RAID-5", fmt(w6.mbps * 5 / (w5.mbps * 4), 2), ""])
        // Reads: healthy, then with columns 1 and 3 missing (every line rebuilds 1–2 units
        // through P and Q).
        let healthy = try seq(r6, write: false, request: 1 << 20)
        t.add(["RAID-6 seq read 1 MiB, 2 threads, healthy", fmt(healthy.mbps), "", "", fmt(healthy.cpuPercent, 0)])
        // A check of the written volume (unlimited rate) against reading its 5 files at once,
        // measured just before and just after it (the disk's rate drifts).
        let size = imageBytes
        func readAll() throws -> RunResult {
            let r = run(Workload(threads: five.count, request: 1 << 20, write: false, random: false,
                                 region: { _ in (0, size / UInt64(1 << 20) * UInt64(1 << 20)) },
                                 io: { t, _, off, buf in try five[t].read(into: buf, at: off) }))
            if let e = r.error { throw BenchError("raw read: \(e)") }
            return r
        }
        let allBefore = try readAll()
        let (c, secs, cpu) = try checkToTheEnd(r6, store6)
        guard c.counts.mismatches == 0 else { throw BenchError("the RAID-6 check found mismatches: \(c.counts)") }
        let allAfter = try readAll()
        let loaded = try checkUnderLoad(r6, store6)
        r6.close()
        let (d6, _) = try openParityVolume(.raid6, devices: five, missing: [1, 3])
        let degraded = try seq(d6, write: false, request: 1 << 20)
        d6.close()
        t.add(["RAID-6 seq read, columns 1 and 3 missing", fmt(degraded.mbps), "healthy", fmt(degraded.mbps / healthy.mbps, 2),
               fmt(degraded.cpuPercent, 0)])
        let perFile = (allBefore.mbps + allAfter.mbps) / 2 / Double(five.count)
        let perColumn = Double(r6.layout.lineCount * Self.interlaceBlocks * 512) / secs / 1e6
        t.add(["seq read 1 MiB, the 5 files at once (per file; before / after the check)",
               "\(fmt(allBefore.mbps / Double(five.count))) / \(fmt(allAfter.mbps / Double(five.count)))", "", "",
               fmt((allBefore.cpuPercent + allAfter.cpuPercent) / 2, 0)])
        t.add(["RAID-6 check (per column)", fmt(perColumn), "their mean", fmt(perColumn / perFile, 2), fmt(100 * cpu / secs, 0)])
        for row in loaded { t.add([row[0], row[1], row[2].isEmpty ? "" : row[0].hasPrefix("check") ? "minimum" : "alone",
                                   row[0].hasPrefix("check") ? String(row[2].prefix { $0 != " " }) : row[2], row[3]]) }
        return t
    }
}
