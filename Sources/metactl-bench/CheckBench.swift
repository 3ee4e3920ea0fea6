import Foundation
import MetaDB
import MetaEngine
import MetaModel

extension EngineBench {
    /// `metactl check` against the devices it reads, in one run over the same image files:
    /// one file read alone (1 MiB sequential, queue depth 1: the check's request to each
    /// column), the 4 files read at once the same way (what the check does), then the check
    /// of the whole volume (every column, end to end), unlimited rate. The ratios are the
    /// check's per-column rate over each.
    func checkTable() throws -> Table {
        let size = imageBytes
        let req = 1 << 20
        let one = run(Workload(threads: 1, request: req, write: false, random: false,
                               region: Self.regions(size: size, threads: 1, request: req), io: rawDeviceIO(devices[0])))
        let devs = devices
        let readAll = Workload(threads: devs.count, request: req, write: false, random: false,
                               region: { _ in (0, size / UInt64(req) * UInt64(req)) },
                               io: { t, _, off, buf in try devs[t].read(into: buf, at: off) })
        let all = run(readAll)
        if let e = one.error ?? all.error { throw BenchError("raw read: \(e)") }
        let (v, store) = try openVolumeAndStore(writeLog: false)
        defer { v.close() }
        let (c, secs, cpu) = try checkToTheEnd(v, store)
        let columnBytes = Double(v.layout.lineCount * Self.interlaceBlocks * 512)
        let perColumn = columnBytes / secs / 1e6
        var t = Table(title: "metactl check: \(Self.columns) columns × \(fmt(columnBytes / 1e6, 0)) MB, interlace 64 KiB, rate unlimited (\(direct ? "O_DIRECT" : "buffered"))",
                      header: ["what", "MB/s per file or column", "check ÷ this", "CPU %"])
        t.add(["seq read 1 MiB, 1 file alone", fmt(one.mbps), fmt(perColumn / one.mbps, 2), fmt(one.cpuPercent, 0)])
        // The 4 files at once again, after the check: the disk's rate drifts; the check is
        // compared with the mean of the two.
        let again = run(readAll)
        if let e = again.error { throw BenchError("raw read: \(e)") }
        let perFile = (all.mbps + again.mbps) / 2 / Double(devs.count)
        t.add(["seq read 1 MiB, 4 files at once (per file; before / after the check)",
               "\(fmt(all.mbps / Double(devs.count))) / \(fmt(again.mbps / Double(devs.count)))",
               fmt(perColumn / perFile, 2), fmt((all.cpuPercent + again.cpuPercent) / 2, 0)])
        t.add(["check (every line, \(c.counts.mismatches) mismatches)", fmt(perColumn), "1.00", fmt(100 * cpu / secs, 0)])
        for row in try checkUnderLoad(v, store) { t.add(row) }
        return t
    }

    /// Runs a check of the whole volume (rate as the store says) to its end; returns its
    /// record, the wall time and the CPU time it took. Throws unless it completed.
    func checkToTheEnd(_ v: RAID5Volume, _ store: InMemoryConfigStore) throws -> (CheckRecord, Double, Double) {
        try store.apply(.checkBegun(volume: "bench", repair: false, totalLines: v.layout.lineCount, at: Date()))
        let began = Date()
        let cpu0 = cpuTime()
        v.startCheck()
        while store.config.volume(named: "bench")?.check?.running == true { usleep(2_000) }
        v.waitForBackgroundWork()
        let secs = Date().timeIntervalSince(began), cpu = cpuTime() - cpu0
        guard let c = store.config.volume(named: "bench")?.check, c.result == .completed else {
            throw BenchError("the check did not complete: \(String(describing: store.config.volume(named: "bench")?.check))")
        }
        return (c, secs, cpu)
    }

    /// The check under a foreground load: 4 KiB random writes (2 threads) to the volume, alone
    /// and then while a check runs with `--resync-rate 50m:max`. Rows: the load alone, the
    /// load beside the check (÷ alone), and the check's rate per column meanwhile (÷ its
    /// 50 MB/s minimum, which md's speed_limit_min also promises only while the devices
    /// can give it).
    func checkUnderLoad(_ v: RAID5Volume, _ store: InMemoryConfigStore) throws -> [[String]] {
        let minimum: UInt64 = 50_000_000
        try store.commit { $0.volumes[0].resyncRate = ResyncRate(minBytesPerSecond: minimum, maxBytesPerSecond: .max) }
        let size = v.sizeBytes
        let load = Workload(threads: 2, request: 4096, write: true, random: true, region: { _ in (0, size) }, io: Self.volumeIO(v))
        let alone = run(load)
        if let e = alone.error { throw BenchError("load alone: \(e)") }
        try store.apply(.checkBegun(volume: "bench", repair: false, totalLines: v.layout.lineCount, at: Date()))
        v.startCheck()
        let before = v.checkProgress.withLock { $0?.done } ?? 0
        let t0 = Date()
        let beside = run(load)
        let window = Date().timeIntervalSince(t0)
        let after = v.checkProgress.withLock { $0?.done } ?? v.layout.lineCount
        let finishedEarly = store.config.volume(named: "bench")?.check?.running != true
        v.stopCheck()
        v.waitForBackgroundWork()
        if let e = beside.error { throw BenchError("load beside the check: \(e)") }
        let rate = Double(after - before) * Double(v.layout.interlaceBlocks * 512) / window / 1e6
        return [
            ["4 KiB random writes, 2 threads, alone (IOPS)", fmt(alone.iops, 0), "", fmt(alone.cpuPercent, 0)],
            ["the same beside a check at 50m:max (IOPS)", fmt(beside.iops, 0), fmt(beside.iops / alone.iops, 2), fmt(beside.cpuPercent, 0)],
            ["check meanwhile, per column\(finishedEarly ? " (it finished during the load)" : "")", fmt(rate),
             "\(fmt(rate / (Double(minimum) / 1e6), 2)) of its minimum", ""],
        ]
    }
}
