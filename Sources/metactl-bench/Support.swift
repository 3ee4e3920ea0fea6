#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MetaDevices
import Synchronization

/// Monotonic nanoseconds.
func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Seconds since `start` (nanoseconds from ``nowNanos()``).
func elapsedSeconds(since start: UInt64) -> Double { Double(nowNanos() &- start) / 1e9 }

/// SplitMix64: fast, reproducible, one per thread.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension AlignedBuffer {
    /// A buffer of `count` pseudo-random bytes.
    static func random(count: Int, seed: UInt64) -> AlignedBuffer {
        let b = AlignedBuffer(count: count)
        var rng = SplitMix(seed: seed)
        let words = b.base.bindMemory(to: UInt64.self, capacity: count / 8)
        for i in 0..<(count / 8) { words[i] = rng.next() }
        return b
    }
}

/// Runs `body(index)` on `count` dedicated threads (never Swift's cooperative pool, as the
/// engine blocks) and returns when all have finished.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchSemaphore(value: 0)
    for i in 0..<count {
        let t = Thread {
            body(i)
            done.signal()
        }
        t.stackSize = 1 << 20
        t.start()
    }
    for _ in 0..<count { done.wait() }
}

/// A ``BlockDevice`` wrapper that measures what reaches the device: operations, bytes,
/// time spent inside the device call, and how many calls were in flight at once.
///
/// Used for every engine and raw measurement alike (the cost is two clock reads and a few
/// atomics per call), so the tables can show how busy the devices were.
final class MeteredDevice: BlockDevice, @unchecked Sendable {
    let base: FileDevice
    let readOps = Atomic<UInt64>(0)
    let writeOps = Atomic<UInt64>(0)
    let readBytes = Atomic<UInt64>(0)
    let writeBytes = Atomic<UInt64>(0)
    /// Sum over calls of the time spent inside the device (ns).
    let busyNanos = Atomic<UInt64>(0)
    let inFlight = Atomic<Int>(0)
    let maxInFlight = Atomic<Int>(0)

    init(_ base: FileDevice) { self.base = base }

    var path: String { base.path }
    var sizeBytes: UInt64 { base.sizeBytes }
    var logicalSectorSize: Int { base.logicalSectorSize }
    var physicalSectorSize: Int { base.physicalSectorSize }
    var discardZeroes: Bool { base.discardZeroes }

    /// Counters at one moment.
    struct Snapshot {
        var readOps: UInt64 = 0, writeOps: UInt64 = 0, readBytes: UInt64 = 0, writeBytes: UInt64 = 0
        var busyNanos: UInt64 = 0
        static func - (a: Snapshot, b: Snapshot) -> Snapshot {
            Snapshot(readOps: a.readOps - b.readOps, writeOps: a.writeOps - b.writeOps,
                     readBytes: a.readBytes - b.readBytes, writeBytes: a.writeBytes - b.writeBytes,
                     busyNanos: a.busyNanos - b.busyNanos)
        }
        static func + (a: Snapshot, b: Snapshot) -> Snapshot {
            Snapshot(readOps: a.readOps + b.readOps, writeOps: a.writeOps + b.writeOps,
                     readBytes: a.readBytes + b.readBytes, writeBytes: a.writeBytes + b.writeBytes,
                     busyNanos: a.busyNanos + b.busyNanos)
        }
    }

    var snapshot: Snapshot {
        Snapshot(readOps: readOps.load(ordering: .relaxed), writeOps: writeOps.load(ordering: .relaxed),
                 readBytes: readBytes.load(ordering: .relaxed), writeBytes: writeBytes.load(ordering: .relaxed),
                 busyNanos: busyNanos.load(ordering: .relaxed))
    }

    func resetMax() { maxInFlight.store(0, ordering: .relaxed) }

    private static func raise(_ gauge: borrowing Atomic<Int>, to n: Int) {
        var cur = gauge.load(ordering: .relaxed)
        while n > cur {
            let (exchanged, original) = gauge.compareExchange(expected: cur, desired: n, ordering: .relaxed)
            if exchanged { break }
            cur = original
        }
    }

    private func enter() -> UInt64 {
        Self.raise(maxInFlight, to: inFlight.add(1, ordering: .relaxed).newValue)
        Self.raise(Gauge.all.maxInFlight, to: Gauge.all.inFlight.add(1, ordering: .relaxed).newValue)
        return nowNanos()
    }

    private func leave(_ start: UInt64) {
        busyNanos.add(nowNanos() &- start, ordering: .relaxed)
        inFlight.subtract(1, ordering: .relaxed)
        Gauge.all.inFlight.subtract(1, ordering: .relaxed)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        let t = enter()
        defer { leave(t) }
        try base.read(into: buffer, at: offset)
        readOps.add(1, ordering: .relaxed)
        readBytes.add(UInt64(buffer.count), ordering: .relaxed)
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        let t = enter()
        defer { leave(t) }
        try base.write(buffer, at: offset)
        writeOps.add(1, ordering: .relaxed)
        writeBytes.add(UInt64(buffer.count), ordering: .relaxed)
    }

    func flush() throws(DeviceError) { try base.flush() }
    func discard(offset: UInt64, length: UInt64) throws(DeviceError) { try base.discard(offset: offset, length: length) }
}

/// A plain text table with right-aligned numeric columns.
struct Table {
    var title: String
    var header: [String]
    var rows: [[String]] = []

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
                return i == 0 ? c + pad : pad + c
            }.joined(separator: "  ")
        }
        var out = "\(title)\n" + line(header) + "\n"
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for r in rows { out += line(r) + "\n" }
        return out
    }
}

/// `1.5 MiB`, `192 KiB`, `4 KiB`.
func sizeLabel(_ bytes: Int) -> String {
    if bytes >= 1 << 20 {
        let v = Double(bytes) / Double(1 << 20)
        return v == v.rounded() ? "\(Int(v)) MiB" : String(format: "%.1f MiB", v)
    }
    return "\(bytes >> 10) KiB"
}

func fmt(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }

/// Prints to stderr (progress lines, so stdout holds only the tables).
func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// User + system CPU seconds of this process so far.
func cpuTime() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6
        + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}
