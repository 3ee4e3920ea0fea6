#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine
import MetaLayout
import Synchronization

/// What one timed run moved and how busy the devices were meanwhile.
struct RunResult {
    var ops: UInt64 = 0
    var bytes: UInt64 = 0
    var seconds: Double = 0
    var device = MeteredDevice.Snapshot()
    var maxInFlight = 0
    var error: String?
    /// CPU time (user + system) of the whole process during the run, in seconds.
    var cpuSeconds: Double = 0
    /// CPU use in percent of one core (200% = both cores of a 2-CPU machine busy).
    var cpuPercent: Double { 100 * cpuSeconds / seconds }
    /// Requests done by each thread.
    var perThread: [UInt64] = []

    var mbps: Double { Double(bytes) / seconds / 1e6 }
    var iops: Double { Double(ops) / seconds }
    var devReadMBps: Double { Double(device.readBytes) / seconds / 1e6 }
    var devWriteMBps: Double { Double(device.writeBytes) / seconds / 1e6 }
    /// Average device calls in flight (Little's law: busy time / wall time).
    var avgInFlight: Double { Double(device.busyNanos) / 1e9 / seconds }
}

/// One measured workload: `threads` threads, each working its own region with requests of
/// `request` bytes, sequentially (stopping at the region's end) or at random aligned offsets,
/// until the region is done or the time is up.
struct Workload: Sendable {
    var threads: Int
    var request: Int
    var write: Bool
    var random: Bool
    /// Thread t's byte range.
    var region: @Sendable (Int) -> (start: UInt64, end: UInt64)
    /// Does one I/O for thread t.
    var io: @Sendable (_ thread: Int, _ write: Bool, _ offset: UInt64, _ buffer: UnsafeMutableRawBufferPointer) throws -> Void
}

final class EngineBench {
    let dir: String
    let imageBytes: UInt64
    let seconds: Double
    let manyThreads: Int
    static let columns = 4
    static let interlaceBlocks: UInt64 = 128           // 64 KiB
    static let dataStartBlock: UInt64 = 2048           // 1 MiB label/replica area
    var paths: [String] = []
    var devices: [MeteredDevice] = []
    /// Where the write-log bench puts its dedicated log device (nil: ``dir``).
    var logDir: String?

    init(dir: String, imageBytes: UInt64, seconds: Double, manyThreads: Int) {
        self.dir = dir; self.imageBytes = imageBytes; self.seconds = seconds; self.manyThreads = manyThreads
    }

    // MARK: setup

    /// Creates the image files and opens them (O_DIRECT where the file system allows).
    func setUp() throws {
        for i in 0..<Self.columns {
            let p = "\(dir)/col\(i).img"
            let fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0o600)
            guard fd >= 0 else { throw BenchError("cannot create \(p): \(String(cString: strerror(errno)))") }
            paths.append(p)
            let rc = ftruncate(fd, off_t(imageBytes))
            close(fd)
            guard rc == 0 else { throw BenchError("cannot size \(p): \(String(cString: strerror(errno)))") }
            devices.append(MeteredDevice(try FileDevice(path: p)))
        }
    }

    /// Removes the image files (the directory is the caller's).
    func tearDown() {
        for d in devices { d.base.close() }
        for p in paths { unlink(p) }
    }

    var direct: Bool { devices.allSatisfy { $0.base.isDirect } }

    // MARK: running

    /// Runs a workload for at most `timeLimit` seconds (default: the configured duration).
    func run(_ w: Workload, timeLimit: Double? = nil) -> RunResult {
        let before = devices.map(\.snapshot).reduce(MeteredDevice.Snapshot(), +)
        for d in devices { d.resetMax() }
        Gauge.all.maxInFlight.store(0, ordering: .relaxed)
        let ops = Atomic<UInt64>(0)
        let perThread = Mutex<[UInt64]>(Array(repeating: 0, count: w.threads))
        let failure = Mutex<String?>(nil)
        let cpu0 = cpuTime()
        let deadline = nowNanos() + UInt64((timeLimit ?? seconds) * 1e9)
        let start = nowNanos()
        onThreads(w.threads) { t in
            let buf = AlignedBuffer.random(count: w.request, seed: UInt64(t + 1) &* 0x1234_5678)
            let (lo, hi) = w.region(t)
            let slots = (hi - lo) / UInt64(w.request)
            var rng = SplitMix(seed: UInt64(t) &+ 99)
            var k: UInt64 = 0
            var n: UInt64 = 0
            while nowNanos() < deadline && failure.withLock({ $0 == nil }) {
                let off: UInt64
                if w.random {
                    off = lo + rng.next() % slots * UInt64(w.request)
                } else {
                    if k >= slots { break }
                    off = lo + k * UInt64(w.request)
                    k += 1
                }
                do { try w.io(t, w.write, off, buf.mutableBytes) } catch {
                    failure.withLock { if $0 == nil { $0 = "\(error)" } }
                    break
                }
                n += 1
            }
            ops.add(n, ordering: .relaxed)
            perThread.withLock { $0[t] = n }
        }
        var r = RunResult()
        r.seconds = elapsedSeconds(since: start)
        r.cpuSeconds = cpuTime() - cpu0
        r.ops = ops.load(ordering: .relaxed)
        r.bytes = r.ops * UInt64(w.request)
        r.device = devices.map(\.snapshot).reduce(MeteredDevice.Snapshot(), +) - before
        r.maxInFlight = Gauge.all.maxInFlight.load(ordering: .relaxed)
        r.error = failure.withLock { $0 }
        r.perThread = perThread.withLock { $0 }
        return r
    }

    /// Splits `[0, size)` into `threads` request-aligned regions.
    static func regions(size: UInt64, threads: Int, request: Int) -> @Sendable (Int) -> (start: UInt64, end: UInt64) {
        let per = size / UInt64(threads) / UInt64(request) * UInt64(request)
        return { t in (UInt64(t) * per, UInt64(t + 1) * per) }
    }

    // MARK: raw device baseline

    func rawDeviceIO(_ d: MeteredDevice) -> @Sendable (Int, Bool, UInt64, UnsafeMutableRawBufferPointer) throws -> Void {
        { _, write, off, buf in
            if write { try d.write(UnsafeRawBufferPointer(buf), at: off) } else { try d.read(into: buf, at: off) }
        }
    }

    /// Writes every image once (so later runs do not measure block allocation); returns the rate.
    func prefill() -> RunResult {
        let devs = devices
        let req = 1 << 20
        let size = imageBytes
        let w = Workload(threads: devs.count, request: req, write: true, random: false,
                         region: { _ in (0, size / UInt64(req) * UInt64(req)) },
                         io: { t, write, off, buf in try devs[t].write(UnsafeRawBufferPointer(buf), at: off) })
        return run(w, timeLimit: 600)
    }

    /// The raw table and the one-file rates (64 KiB and 1 MiB, write and read) and the
    /// 4-files-at-once write rates (64 KiB, 512 KiB) that the summary compares against.
    func rawTable() -> (Table, rates: [String: Double]) {
        var t = Table(title: "Raw image files (FileDevice\(direct ? ", O_DIRECT" : ", buffered"), 1 file = \(imageBytes >> 20) MiB)",
                      header: ["workload", "threads", "request", "MB/s", "IOPS", "avg in flight", "max in flight", "CPU %"])
        let d0 = devices[0]
        let size = imageBytes
        var rates: [String: Double] = [:]
        func row(_ name: String, _ w: Workload) -> RunResult {
            let r = run(w)
            t.add([name, "\(w.threads)", sizeLabel(w.request), fmt(r.mbps), fmt(r.iops, 0), fmt(r.avgInFlight, 2), "\(r.maxInFlight)", fmt(r.cpuPercent, 0)]
                  + (r.error.map { ["ERROR: \($0)"] } ?? []))
            return r
        }
        for req in [64 << 10, 1 << 20] {
            let r = row("seq write, 1 file", Workload(threads: 1, request: req, write: true, random: false,
                                                       region: Self.regions(size: size, threads: 1, request: req), io: rawDeviceIO(d0)))
            rates["write \(sizeLabel(req))"] = r.mbps
        }
        for req in [64 << 10, 1 << 20] {
            let r = row("seq read, 1 file", Workload(threads: 1, request: req, write: false, random: false,
                                                      region: Self.regions(size: size, threads: 1, request: req), io: rawDeviceIO(d0)))
            rates["read \(sizeLabel(req))"] = r.mbps
        }
        let devs = devices
        // 64 KiB: what the engine sends each column per line; 512 KiB: one request per column
        // for a 1.5 MiB volume request if the engine merged a column's adjacent lines.
        for req in [64 << 10, 512 << 10] {
            let par = Workload(threads: devs.count, request: req, write: true, random: false,
                               region: { _ in (0, size / UInt64(req) * UInt64(req)) },
                               io: { t, _, off, buf in try devs[t].write(UnsafeRawBufferPointer(buf), at: off) })
            rates["4 files write \(sizeLabel(req))"] = row("seq write, 4 files at once", par).mbps
        }
        for req in [64 << 10, 512 << 10] {
            _ = row("seq read, 4 files at once", Workload(threads: devs.count, request: req, write: false, random: false,
                                                           region: { _ in (0, size / UInt64(req) * UInt64(req)) },
                                                           io: { t, _, off, buf in try devs[t].read(into: buf, at: off) }))
        }
        for threads in [1, manyThreads] {
            _ = row("random write, 1 file", Workload(threads: threads, request: 4096, write: true, random: true,
                                                      region: { _ in (0, size) }, io: rawDeviceIO(d0)))
        }
        return (t, rates)
    }

    // MARK: engine

    func openVolume() throws -> (Volume, InMemoryConfigStore) {
        let (v, store) = try openParityVolume(.raid5, devices: devices)
        return (v, store)
    }

    static func volumeIO(_ v: Volume) -> @Sendable (Int, Bool, UInt64, UnsafeMutableRawBufferPointer) throws -> Void {
        { _, write, off, buf in
            if write { try v.write(offset: off, from: UnsafeRawBufferPointer(buf)) } else { try v.read(offset: off, into: buf) }
        }
    }

    /// Checks that the first request of every thread's region reads back as that thread's
    /// buffer (same seed as ``run(_:)``), i.e. the timed writes really landed.
    func verify(_ v: Volume, _ w: Workload) throws {
        let got = AlignedBuffer(count: w.request)
        for t in 0..<w.threads {
            let want = AlignedBuffer.random(count: w.request, seed: UInt64(t + 1) &* 0x1234_5678)
            try v.read(offset: w.region(t).start, into: got.mutableBytes)
            if memcmp(got.base, want.base, w.request) != 0 {
                throw BenchError("read-back mismatch at \(w.region(t).start) after \(sizeLabel(w.request)) writes")
            }
        }
    }

    /// XORs every column of `lines` straight from the image files: all must be zero.
    func parityCheck(lines: [UInt64]) throws -> Int {
        let n = Int(Self.interlaceBlocks * 512)
        let acc = AlignedBuffer(count: n), col = AlignedBuffer(count: n)
        var bad = 0
        for line in lines {
            acc.zero()
            for d in devices {
                try d.base.read(into: col.mutableBytes, at: (Self.dataStartBlock + line * Self.interlaceBlocks) * 512)
                Parity.xorInPlace(acc.base, UnsafeRawPointer(col.base), count: n)
            }
            let wrong = (0..<n).filter { acc.base.load(fromByteOffset: $0, as: UInt8.self) != 0 }
            if !wrong.isEmpty {
                bad += 1
                if ProcessInfo.processInfo.environment["METACTL_BENCH_DEBUG"] != nil {
                    // Which bytes of the line disagree, and what the data columns hold there.
                    var ranges: [(Int, Int)] = []
                    for o in wrong {
                        if let l = ranges.last, l.1 == o { ranges[ranges.count - 1].1 = o + 1 } else { ranges.append((o, o + 1)) }
                    }
                    note("line \(line): \(wrong.count) wrong bytes in \(ranges.count) ranges: \(ranges.prefix(6).map { "\($0.0)..<\($0.1)" })")
                }
            }
        }
        return bad
    }

    /// The engine table, notes, and whether every correctness check passed.
    func engineTable(limit: Double, writesOnly: Bool = false) throws -> (Table, fullStripeWrite: [(String, Double)], notes: [String], ok: Bool) {
        let (v, _) = try openVolume()
        defer { v.close() }
        let size = v.sizeBytes
        let io = Self.volumeIO(v)
        var t = Table(title: "Engine: RAID-5, \(Self.columns) columns, interlace 64 KiB, volume \(size >> 20) MiB",
                      header: ["workload", "threads", "request", "MB/s", "IOPS", "dev read MB/s", "dev write MB/s",
                               "avg in flight", "max in flight", "CPU %", "% of 3x1-dev", "parity ok"])
        var writes: [(String, Double)] = []
        var notes: [String] = []
        var ok = true
        var oneLine: RunResult?
        func row(_ name: String, _ w: Workload, limit: Double?, check: ((RunResult) throws -> String)? = nil) throws -> RunResult {
            let r = run(w)
            if let e = r.error { throw BenchError("\(name) (\(w.threads) threads, \(sizeLabel(w.request))): \(e)") }
            let checked = try check?(r) ?? ""
            t.add([name, "\(w.threads)", sizeLabel(w.request), fmt(r.mbps), fmt(r.iops, 0), fmt(r.devReadMBps), fmt(r.devWriteMBps),
                   fmt(r.avgInFlight, 2), "\(r.maxInFlight)", fmt(r.cpuPercent, 0), limit.map { fmt(100 * r.mbps / $0, 0) + "%" } ?? "", checked])
            return r
        }
        let lineBytes = Int(Self.interlaceBlocks * 512) * (Self.columns - 1)     // 192 KiB
        let sizes = [lineBytes, 8 * lineBytes]                                   // 192 KiB, 1.5 MiB
        for threads in [1, manyThreads] {
            for req in sizes {
                let w = Workload(threads: threads, request: req, write: true, random: false,
                                 region: Self.regions(size: size, threads: threads, request: req), io: io)
                // Right after the run, every line it wrote must have parity = XOR of its data:
                // check up to 16 lines spread over what each thread wrote.
                let r = try row("full-stripe seq write", w, limit: limit) { r in
                    try self.verify(v, w)
                    var lines: [UInt64] = []
                    for th in 0..<threads {
                        let first = w.region(th).start / UInt64(lineBytes)
                        let written = r.perThread[th] * UInt64(req / lineBytes)
                        let step = max(1, written / 16)
                        lines += stride(from: first, to: first + written, by: Int(step)).prefix(16)
                    }
                    let bad = try self.parityCheck(lines: lines)
                    if bad > 0 { ok = false }
                    return "\(lines.count - bad)/\(lines.count)"
                }
                writes.append(("\(threads) thr \(sizeLabel(req))", r.mbps))
                if threads == 1 && req == lineBytes { oneLine = r }
            }
        }
        if let r = oneLine { notes.append(stageTable(r, lineBytes: lineBytes).render()) }
        notes.append("parity ok: sampled lines written by that run whose parity column equals the XOR of the data columns, read "
                     + "straight from the image files; the first request of every thread was also read back and compared.")
        if !ok { notes.append("ERROR: full-stripe writes left lines with wrong parity (see the parity ok column)") }
        if writesOnly { return (t, writes, notes, ok) }
        for threads in [1, manyThreads] {
            for req in sizes {
                _ = try row("seq read", Workload(threads: threads, request: req, write: false, random: false,
                                                 region: Self.regions(size: size, threads: threads, request: req), io: io),
                            limit: nil)
            }
        }
        for threads in [1, manyThreads] {
            _ = try row("random 4 KiB write", Workload(threads: threads, request: 4096, write: true, random: true,
                                                       region: { _ in (0, size) }, io: io), limit: nil)
        }
        for threads in [1, manyThreads] {
            _ = try row("random 4 KiB read", Workload(threads: threads, request: 4096, write: false, random: true,
                                                      region: { _ in (0, size) }, io: io), limit: nil)
        }
        return (t, writes, notes, ok)
    }
}

extension EngineBench {
    /// Where the time of one full-stripe line write goes (1 thread, one 192 KiB line per
    /// request): the CPU steps the engine performs per line, each timed in isolation (warm,
    /// same sizes), and the device time seen by the metered devices during the run.
    func stageTable(_ r: RunResult, lineBytes: Int) -> Table {
        let unit = Int(Self.interlaceBlocks * 512)
        let data = Self.columns - 1
        let iters = 2000
        func time(_ body: () -> Void) -> Double {
            for _ in 0..<50 { body() }
            let t0 = nowNanos()
            for _ in 0..<iters { body() }
            return Double(nowNanos() - t0) / 1e3 / Double(iters)
        }
        let request = AlignedBuffer.random(count: lineBytes, seed: 3)
        var keep: [AlignedBuffer] = []
        let alloc = time {
            keep = (0...data).map { _ in AlignedBuffer(count: unit) }     // data columns + parity, zero-filled
        }
        let bufs = (0..<data).map { _ in AlignedBuffer(count: unit) }
        let parity = AlignedBuffer(count: unit)
        let copy = time {
            for i in 0..<data { bufs[i].base.copyMemory(from: request.base + i * unit, byteCount: unit) }
        }
        let ptrs = bufs.map { UnsafeRawPointer($0.base) }
        let xor = time { Parity.xor(sources: ptrs, into: parity.base, count: unit) }
        withExtendedLifetime((keep, bufs, request)) {}
        let wallPerLine = 1e6 * r.seconds / Double(max(1, r.ops))
        let writesPerLine = Double(r.device.writeOps) / Double(max(1, r.ops))
        let devLatency = Double(r.device.busyNanos) / 1e3 / Double(max(1, r.device.writeOps))
        let width = Self.concurrentPerformWidth()
        var t = Table(title: "Full-stripe write, 1 thread, 192 KiB requests: where a line's time goes (µs)",
                      header: ["stage", "µs per line", "share of wall"])
        func add(_ name: String, _ us: Double) { t.add([name, fmt(us, 1), fmt(100 * us / wallPerLine, 0) + "%"]) }
        add("CPU: allocate + zero-fill \(data + 1) × \(sizeLabel(unit)) buffers (timed alone)", alloc)
        add("CPU: copy \(sizeLabel(lineBytes)) of request data into them (timed alone)", copy)
        add("CPU: ISA-L XOR \(data) × \(sizeLabel(unit)) (timed alone)", xor)
        add("device: one \(sizeLabel(unit)) pwrite, average latency in this run", devLatency)
        add("device: \(fmt(writesPerLine, 0)) pwrites per line at \(fmt(r.avgInFlight, 2)) in flight (max \(r.maxInFlight))",
            devLatency * writesPerLine / max(0.01, r.avgInFlight))
        add("wall time per line (\(fmt(r.mbps)) MB/s)", wallPerLine)
        add("if all \(fmt(writesPerLine, 0)) pwrites were in flight at once: CPU + 1 latency", alloc + copy + xor + devLatency)
        t.title += "\nDispatchQueue.concurrentPerform (the engine's fan-out) ran at most \(width) blocking calls at once here (\(ProcessInfo.processInfo.activeProcessorCount) CPUs)"
        return t
    }
}

extension EngineBench {
    /// How many blocking calls `DispatchQueue.concurrentPerform` runs at once (the engine's
    /// `runParallel` uses it to fan out column I/O): 16 iterations that each sleep 5 ms.
    static func concurrentPerformWidth() -> Int {
        let cur = Atomic<Int>(0), peak = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            let n = cur.add(1, ordering: .relaxed).newValue
            var p = peak.load(ordering: .relaxed)
            while n > p {
                let (done, orig) = peak.compareExchange(expected: p, desired: n, ordering: .relaxed)
                if done { break }
                p = orig
            }
            usleep(5000)
            cur.subtract(1, ordering: .relaxed)
        }
        return peak.load(ordering: .relaxed)
    }
}

/// In-flight gauge across every metered device.
final class Gauge: Sendable {
    static let all = Gauge()
    let inFlight = Atomic<Int>(0)
    let maxInFlight = Atomic<Int>(0)
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ s: String) { description = s }
}
