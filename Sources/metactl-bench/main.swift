// metactl-bench: parity and RAID-5 engine throughput (issue 4's measurements).
//
// Usage: metactl-bench [--dir DIR] [--log-dir DIR] [--image-mib N] [--seconds S] [--threads N] [--only parity|engine|engine-write|writelog|check|raid6]
//   --dir        where the image files go (default: $TMPDIR or /tmp); use a real disk file
//                system, not tmpfs (O_DIRECT is refused there and the numbers are page cache)
//   --log-dir    where the write-log bench's dedicated log device goes (default: --dir); another
//                disk, or /dev/shm for the bound a device as fast as memory would give
//   --image-mib  size of each of the 4 image files (default 256)
//   --seconds    time limit of each timed run (default 2.5)
//   --threads    the "many threads" count (default 8)
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MetaDevices

func usage(_ msg: String) -> Never {
    FileHandle.standardError.write(Data("metactl-bench: \(msg)\n".utf8))
    exit(2)
}

var dirArg = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
var logDirArg: String?
var imageMiB = 256
var perRun = 2.5
var manyThreads = 8
var only: String?
var args = Array(CommandLine.arguments.dropFirst())
// `--instructions WORKLOAD --requests N`: one workload on memory devices, nothing else
// printed (run under callgrind by scripts/bench-instructions).
if args.first == "--instructions" {
    guard args.count == 4, args[2] == "--requests", let n = Int(args[3]), n >= 0,
          InstructionBench.workloads.contains(args[1]) else {
        usage("--instructions takes \(InstructionBench.workloads.joined(separator: "|")) --requests N")
    }
    do { print("checksum \(try InstructionBench.run(args[1], requests: n))") } catch { usage("\(args[1]): \(error)") }
    exit(0)
}
while !args.isEmpty {
    let a = args.removeFirst()
    func value() -> String {
        guard !args.isEmpty else { usage("\(a) needs a value") }
        return args.removeFirst()
    }
    switch a {
    case "--dir": dirArg = value()
    case "--log-dir": logDirArg = value()
    case "--image-mib": guard let v = Int(value()), v >= 16 else { usage("--image-mib must be a number ≥ 16") }; imageMiB = v
    case "--seconds": guard let v = Double(value()), v > 0 else { usage("--seconds must be a positive number") }; perRun = v
    case "--threads": guard let v = Int(value()), v >= 2 else { usage("--threads must be a number ≥ 2") }; manyThreads = v
    case "--only":
        let v = value()
        guard ["parity", "engine", "engine-write", "writelog", "check", "raid6"].contains(v) else { usage("--only takes parity, engine, engine-write, writelog, check or raid6, not \(v)") }
        only = v
    case "-h", "--help":
        print("usage: metactl-bench [--dir DIR] [--log-dir DIR] [--image-mib N] [--seconds S] [--threads N] [--only parity|engine|engine-write|writelog|check|raid6]")
        exit(0)
    default: usage("unknown argument \(a)")
    }
}

var failed = false
/// Ends the engine part early (--only engine-write) through the normal cleanup.
struct Done: Error {}
let began = nowNanos()
var uts = utsname()
uname(&uts)
let machine = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
print("metactl-bench: \(ProcessInfo.processInfo.activeProcessorCount) CPUs, Linux \(machine)\n")

if only == nil || only == "parity" {
    note("parity …")
    let (t, ok) = ParityBench.run(minIterations: 300, minSeconds: 0.25)
    print(t.render())
    if !ok { failed = true; print("ERROR: ISA-L and the plain loop disagree\n") }
}
if only == nil || only == "raid6" {
    note("RAID-6 P+Q …")
    let t = EngineBench.syndromeTable(minSeconds: 0.25)
    print(t.render())
    if t.rows.contains(where: { $0.last == "NO" }) { failed = true; print("ERROR: P+Q or the recovery disagree with pq_gen\n") }
}

/// The bench's private directory inside --dir; removed on exit and on SIGINT/SIGTERM.
nonisolated(unsafe) var workDir: String?

/// The file system type of the mount holding `path` (from /proc/self/mounts).
func fsType(_ path: String) -> String {
    guard let text = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return "unknown" }
    let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    var best = (len: -1, type: "unknown")
    for line in text.split(separator: "\n") {
        let f = line.split(separator: " ")
        guard f.count >= 3 else { continue }
        let mp = String(f[1]).replacingOccurrences(of: "\\040", with: " ")
        let under = mp == "/" || real == mp || real.hasPrefix(mp + "/")
        if under && mp.count > best.len { best = (mp.count, String(f[2])) }
    }
    return best.type
}

if only != "parity" {
    var template = Array("\(dirArg)/metactl-bench.XXXXXX".utf8CString)
    guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        usage("cannot create a directory in \(dirArg): \(String(cString: strerror(errno)))")
    }
    let dir = String(cString: p)
    workDir = dir
    for sig in [SIGINT, SIGTERM] {
        signal(sig) { s in
            // Best effort: remove the images, then die of the signal.
            if let d = workDir {
                for i in 0..<EngineBench.columns { unlink("\(d)/col\(i).img") }
                rmdir(d)
            }
            signal(s, SIG_DFL)
            raise(s)
        }
    }
    let bench = EngineBench(dir: dir, imageBytes: UInt64(imageMiB) << 20, seconds: perRun, manyThreads: manyThreads)
    bench.logDir = logDirArg
    defer { bench.tearDown(); rmdir(dir) }
    do {
        try bench.setUp()
        let fs = fsType(dir)
        print("Images: \(EngineBench.columns) × \(imageMiB) MiB in \(dir) (\(fs)), \(bench.direct ? "O_DIRECT" : "buffered I/O (O_DIRECT refused)")")
        if fs == "tmpfs" { print("WARNING: tmpfs: these numbers measure memory, not a disk") }
        note("prefill …")
        let pre = bench.prefill()
        if let e = pre.error { throw BenchError("prefill: \(e)") }
        print("Prefill (4 files written once, 1 MiB requests, 1 thread each): \(fmt(pre.mbps)) MB/s\n")
        if only == "check" {
            note("check …")
            print(try bench.checkTable().render())
            throw Done()
        }
        if only == "raid6" {
            note("RAID-6 …")
            print(try bench.raid6Table().render())
            throw Done()
        }
        if only == "writelog" {
            note("write log …")
            print(try bench.writeLogTable().render())
            note("write log, RAID-6 …")
            print(try bench.writeLogTable(type: .raid6).render())
            throw Done()
        }
        note("raw devices …")
        let (raw, rates) = only == "engine-write" ? (Table(title: "", header: []), [:]) : bench.rawTable()
        if only != "engine-write" { print(raw.render()) }
        note("engine …")
        // The engine writes 64 KiB per column and line: the like-for-like device limit.
        let limit = 3 * (rates["write 64 KiB"] ?? .nan)
        let (eng, writes, notes, engineOK) = try bench.engineTable(limit: limit, writesOnly: only == "engine-write")
        if !engineOK { failed = true }
        print(eng.render())
        for n in notes { print(n) }
        // (No exit() in here: the deferred cleanup must run.)
        guard only != "engine-write" else { throw Done() }
        let r = { (k: String) in fmt(rates[k] ?? .nan) }
        print("""
            Full-stripe limits ("% of 3x1-dev" uses the first): 3 × one file's seq write at 64 KiB QD1 (the engine's \
            per-column I/O) = \(fmt(limit)) MB/s; at 1 MiB = \(fmt(3 * (rates["write 1 MiB"] ?? .nan))) MB/s. The 4 \
            files share one disk: all 4 at once (QD1 each) wrote \(r("4 files write 64 KiB")) MB/s at 64 KiB, \
            \(r("4 files write 512 KiB")) MB/s at 512 KiB (3/4 of that is data).
            Full-stripe read: 3 × one file's seq read = \(fmt(3 * (rates["read 64 KiB"] ?? .nan))) MB/s at 64 KiB, \
            \(fmt(3 * (rates["read 1 MiB"] ?? .nan))) MB/s at 1 MiB.
            """)
        for (name, mbps) in writes {
            print("  full-stripe write \(name): \(fmt(mbps)) MB/s = \(fmt(100 * mbps / limit, 0))% of 3 × one file at 64 KiB")
        }
        print("")
    } catch is Done {
    } catch {
        print("ERROR: \(error)")
        failed = true
    }
}
print("Total run time: \(fmt(elapsedSeconds(since: began))) s")
exit(failed ? 1 : 0)
