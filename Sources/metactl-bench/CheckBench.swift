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
        let all = run(Workload(threads: devs.count, request: req, write: false, random: false,
                               region: { _ in (0, size / UInt64(req) * UInt64(req)) },
                               io: { t, _, off, buf in try devs[t].read(into: buf, at: off) }))
        if let e = one.error ?? all.error { throw BenchError("raw read: \(e)") }
        let (v, store) = try openVolumeAndStore(writeLog: false)
        defer { v.close() }
        try store.apply(.checkBegun(volume: "bench", repair: false, totalLines: v.layout.lineCount, at: Date()))
        let began = Date()
        let cpu0 = cpuTime()
        v.startCheck()
        while store.config.volume(named: "bench")?.check?.running == true { usleep(2_000) }
        v.waitForBackgroundWork()
        let secs = Date().timeIntervalSince(began)
        let cpu = cpuTime() - cpu0
        guard let c = store.config.volume(named: "bench")?.check, c.result == .completed else {
            throw BenchError("the check did not complete: \(String(describing: store.config.volume(named: "bench")?.check))")
        }
        let columnBytes = Double(v.layout.lineCount * Self.interlaceBlocks * 512)
        let perColumn = columnBytes / secs / 1e6
        var t = Table(title: "metactl check: \(Self.columns) columns × \(fmt(columnBytes / 1e6, 0)) MB, interlace 64 KiB, rate unlimited (\(direct ? "O_DIRECT" : "buffered"))",
                      header: ["what", "MB/s per file or column", "check ÷ this", "CPU %"])
        t.add(["seq read 1 MiB, 1 file alone", fmt(one.mbps), fmt(perColumn / one.mbps, 2), fmt(one.cpuPercent, 0)])
        t.add(["seq read 1 MiB, 4 files at once (per file)", fmt(all.mbps / Double(devs.count)),
               fmt(perColumn / (all.mbps / Double(devs.count)), 2), fmt(all.cpuPercent, 0)])
        t.add(["check (every line, \(c.counts.mismatches) mismatches)", fmt(perColumn), "1.00", fmt(100 * cpu / secs, 0)])
        return t
    }
}
