import Foundation
import Logging
import MetaDB
import MetaModel
import MetaDevices
import Synchronization

/// Finds the opened device for a UUID of the set (nil when it is missing).
public typealias DeviceProvider = @Sendable (UUID) -> (any BlockDevice)?

/// Runs a volume's background work (parity repair, initialisation, resync) under a
/// deterministic simulator instead of on threads and timers.
///
/// With a scheduler, a volume does everything on the calling thread: fan-outs run one piece
/// after the other, no cleaner timer runs (the caller cleans dirty regions when it wants),
/// background work is handed to ``startBackground(_:_:)`` to be run when the scheduler
/// chooses, and long background loops call ``yield(_:)`` between steps (holding no line
/// lock), where the scheduler may run foreground requests, inject faults or stop the volume.
public protocol BackgroundScheduler: AnyObject, Sendable {
    /// Takes background work to run later (on the scheduler's own thread).
    func startBackground(_ label: String, _ body: @escaping @Sendable () -> Void)
    /// Called between steps of background work, with no line lock held.
    func yield(_ point: String)
    /// Whether background work should checkpoint its progress now (asked after each step).
    func shouldCheckpoint() -> Bool
}

/// What a volume needs from its surroundings.
public struct VolumeContext: Sendable {
    /// Where state changes are committed (the state database).
    public var store: any ConfigStore
    /// Opened devices by UUID.
    public var devices: DeviceProvider
    public var logger: Logger
    /// Deterministic simulation: background work and fan-outs on the caller's thread.
    public var scheduler: (any BackgroundScheduler)?
    /// Column bytes per dirty region of RAID-5 volumes. The indices in the state database's
    /// dirty-region log mean regions of this size, so every opener of a set must use the
    /// same value: the default (64 MiB), except in the simulator's own sets.
    public var dirtyRegionColumnBytes: UInt64 = 64 << 20
    public init(store: any ConfigStore, devices: @escaping DeviceProvider, logger: Logger = Logger(label: "metactl.engine"),
                scheduler: (any BackgroundScheduler)? = nil) {
        self.store = store; self.devices = devices; self.logger = logger; self.scheduler = scheduler
    }
}

/// A volume's I/O engine. Subclasses implement the block-level layout; this class handles
/// byte ranges (read-modify-write of partial sectors when ``sectorSize`` is 512, refusal of
/// misaligned requests when it is larger), bounds checks and state commits.
///
/// All methods block the calling thread and are safe to call from many threads at once;
/// call them from I/O threads, never from an event loop or Swift's cooperative pool.
public class Volume: @unchecked Sendable {
    /// Sector granularity of the engine.
    public static let blockSize: UInt64 = 512

    public let name: String
    public let context: VolumeContext
    /// Serialises sub-sector writes (read-modify-write of one sector by two writers).
    private let partialLock = NSLock()
    /// Serialises state commits so a failure is recorded once.
    let stateLock = NSLock()
    /// Byte-level requests in progress, and why the volume was closed for I/O
    /// (``closeForIO(reason:timeout:)``). A request counts itself in, then looks at the flag;
    /// closing sets the flag, then waits for the count to drop (both sequentially consistent,
    /// so no request gets past a close unseen and the fast path takes no lock).
    private let ioInFlight = Atomic<Int>(0)
    private let ioClosed = Atomic<Bool>(false)
    private let ioClosedReason = Mutex<String>("")
    /// See ``sectorSize``. (Boxed: with an `Atomic` stored directly in this non-final base
    /// class, the subclasses' initialisers crashed reading their own stored properties.)
    private let sectorBytes = AtomicIntBox(Int(Volume.blockSize))

    init(name: String, context: VolumeContext) {
        self.name = name
        self.context = context
    }

    /// Current size in bytes.
    public var sizeBytes: UInt64 { fatalError("abstract") }

    /// The volume's sector in bytes: the largest logical sector size of the devices it does
    /// I/O on (at least 512; see ``updateSectorSize(_:)``). Byte-level requests must be
    /// multiples of it when it is larger than ``blockSize``: devices with 4096-byte logical
    /// sectors refuse smaller transfers with O_DIRECT, and no read-modify-write is done on
    /// their behalf. The NBD export advertises it as the minimum block size.
    public var sectorSize: Int { sectorBytes.value.load(ordering: .relaxed) }

    /// Recomputes ``sectorSize`` from every device of `record` that is present: each
    /// component's device and the spare standing in for it, and the target and source of
    /// a resync (a replacement being copied or rebuilt). Subclasses call it when they are
    /// built and reloaded.
    /// Sets ``sectorSize`` directly (a volume built on another volume takes its sector).
    func setSectorSize(_ size: Int) { sectorBytes.value.store(max(Int(Self.blockSize), size), ordering: .relaxed) }

    func updateSectorSize(_ record: VolumeRecord) {
        var uuids: [UUID] = []
        for c in record.allComponents {
            uuids.append(c.device)
            if let s = c.hotSpare { uuids.append(s) }
        }
        if let r = record.resync {
            if let t = r.target { uuids.append(t) }
            if let s = r.source { uuids.append(s) }
        }
        var size = Int(Self.blockSize)
        let config = context.store.config
        for u in uuids {
            if let d = context.devices(u) { size = max(size, d.logicalSectorSize) }
            // An absent device keeps its sector (recorded when it was labelled).
            if let recorded = config.device(u)?.logicalSectorSize { size = max(size, recorded) }
        }
        sectorBytes.value.store(size, ordering: .relaxed)
    }

    /// Whether trim is passed to the components.
    public var supportsDiscard: Bool { false }

    // MARK: block level (subclasses)

    func readBlocks(_ block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(VolumeIOError) { fatalError("abstract") }
    func writeBlocks(_ block: UInt64, from buffer: UnsafeRawBufferPointer) throws(VolumeIOError) { fatalError("abstract") }
    func discardBlocks(_ block: UInt64, count: UInt64) throws(VolumeIOError) {
        throw VolumeIOError(volume: name, code: .invalid, operation: "trim", detail: "not supported")
    }
    /// Flushes every component.
    public func flush() throws(VolumeIOError) { fatalError("abstract") }
    /// Stops background work and releases resources.
    public func close() {}

    // MARK: closing for I/O

    /// Whether ``closeForIO(reason:timeout:)`` was called: every byte-level request fails.
    public var isClosed: Bool { ioClosed.load(ordering: .sequentiallyConsistent) }

    /// Refuses every later byte-level request (``read(offset:into:)``, ``write(offset:from:fua:)``,
    /// ``writeZeroes(offset:length:fua:)``, ``discard(offset:length:)``, ``flushRequest()``)
    /// with an I/O error saying `reason`, then waits up to `timeout` seconds for the requests
    /// in progress to return. Returns whether they all did. Used when the volume is deleted
    /// while clients still hold it (`clear -f`): the engine must never touch its devices
    /// (released, perhaps already part of another volume) again.
    @discardableResult
    public func closeForIO(reason: String, timeout: Double = 30) -> Bool {
        ioClosedReason.withLock { if $0.isEmpty { $0 = reason } }
        ioClosed.store(true, ordering: .sequentiallyConsistent)
        let deadline = Date().addingTimeInterval(timeout)
        while ioInFlight.load(ordering: .sequentiallyConsistent) > 0 {
            if Date() >= deadline { return false }
            usleep(1000)
        }
        return true
    }

    private func enterIO(_ op: String) throws(VolumeIOError) {
        ioInFlight.add(1, ordering: .sequentiallyConsistent)
        if ioClosed.load(ordering: .sequentiallyConsistent) {
            ioInFlight.subtract(1, ordering: .sequentiallyConsistent)
            throw VolumeIOError(volume: name, code: .io, operation: op, detail: ioClosedReason.withLock { $0 })
        }
    }

    private func leaveIO() {
        ioInFlight.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// ``flush()`` as a client request: refused once the volume is closed for I/O.
    public func flushRequest() throws(VolumeIOError) {
        try enterIO("flush")
        defer { leaveIO() }
        try flush()
    }

    // MARK: byte level

    private func checkRange(_ op: String, _ offset: UInt64, _ length: UInt64) throws(VolumeIOError) {
        let size = sizeBytes
        if offset > size || length > size - offset {
            throw VolumeIOError(volume: name, code: .noSpace, operation: op, offset: offset, length: length,
                                detail: "beyond the end of the volume (\(size) bytes)")
        }
        // Sub-sector requests are handled (read-modify-write) only for 512-byte sectors.
        let sector = UInt64(sectorSize)
        if sector > Self.blockSize && (offset % sector != 0 || length % sector != 0) {
            throw VolumeIOError(volume: name, code: .invalid, operation: op,
                                detail: "offset \(offset) / length \(length) is not a multiple of the volume's \(sector)-byte sector")
        }
    }

    /// Reads `buffer.count` bytes at byte `offset`.
    public func read(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(VolumeIOError) {
        try enterIO("read")
        defer { leaveIO() }
        try checkRange("read", offset, UInt64(buffer.count))
        if buffer.count == 0 { return }
        let bs = Self.blockSize
        if offset % bs == 0 && UInt64(buffer.count) % bs == 0 {
            try readBlocks(offset / bs, into: buffer)
            return
        }
        let first = offset / bs
        let last = (offset + UInt64(buffer.count) + bs - 1) / bs
        let tmp = AlignedBuffer(count: Int((last - first) * bs))
        defer { withExtendedLifetime(tmp) {} }  // pointers into it outlive its last use
        try readBlocks(first, into: tmp.mutableBytes)
        buffer.copyMemory(from: UnsafeRawBufferPointer(start: tmp.base + Int(offset - first * bs), count: buffer.count))
    }

    /// Writes `buffer` at byte `offset`; with `fua` the data is durable when this returns.
    public func write(offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool = false) throws(VolumeIOError) {
        try enterIO("write")
        defer { leaveIO() }
        try checkRange("write", offset, UInt64(buffer.count))
        if buffer.count == 0 { return }
        let bs = Self.blockSize
        if offset % bs == 0 && UInt64(buffer.count) % bs == 0 {
            try writeBlocks(offset / bs, from: buffer)
        } else {
            partialLock.lock()
            defer { partialLock.unlock() }
            let first = offset / bs
            let last = (offset + UInt64(buffer.count) + bs - 1) / bs
            let tmp = AlignedBuffer(count: Int((last - first) * bs))
            defer { withExtendedLifetime(tmp) {} }  // pointers into it outlive its last use
            try readBlocks(first, into: tmp.mutableBytes)
            (tmp.base + Int(offset - first * bs)).copyMemory(from: buffer.baseAddress!, byteCount: buffer.count)
            try writeBlocks(first, from: UnsafeRawBufferPointer(tmp.mutableBytes))
        }
        if fua { try flush() }
    }

    /// Writes zeroes over a byte range (in bounded chunks).
    public func writeZeroes(offset: UInt64, length: UInt64, fua: Bool = false) throws(VolumeIOError) {
        try enterIO("write-zeroes")
        defer { leaveIO() }
        try checkRange("write-zeroes", offset, length)
        let chunk: UInt64 = 1 << 20
        let zero = AlignedBuffer(count: Int(chunk))
        defer { withExtendedLifetime(zero) {} }  // pointers into it outlive its last use
        var pos: UInt64 = 0
        while pos < length {
            let n = min(chunk, length - pos)
            try write(offset: offset + pos, from: UnsafeRawBufferPointer(start: zero.base, count: Int(n)))
            pos += n
        }
        if fua { try flush() }
    }

    /// Discards a byte range where the layout passes it through (whole sectors only; partial
    /// 512-byte sectors at the edges are left alone, as discard is advisory; with a larger
    /// ``sectorSize`` the range must be aligned to it, as for reads and writes).
    public func discard(offset: UInt64, length: UInt64) throws(VolumeIOError) {
        try enterIO("trim")
        defer { leaveIO() }
        try checkRange("trim", offset, length)
        let bs = Self.blockSize
        let first = (offset + bs - 1) / bs
        let end = (offset + length) / bs
        if end > first { try discardBlocks(first, count: end - first) }
    }

    // MARK: helpers

    func volumeRecord() -> VolumeRecord? { context.store.config.volume(named: name) }

    /// Fan-outs that move at most this many bytes run on the calling thread, one piece after
    /// the other: handing a few KiB to another thread costs more (a wakeup, a context switch)
    /// than the I/O itself when it hits the page cache, and the server already runs many
    /// requests at once. (4k random writes to a RAID-5 through the page cache: 2-4× more
    /// IOPS inline; with O_DIRECT about 1.5×.)
    static let inlineFanOutBytes = 64 << 10

    /// Runs `body(0..<count)` and returns when every call has returned: concurrently on the
    /// I/O threads, or on this thread when there is one piece, when the pieces move at most
    /// ``inlineFanOutBytes`` together (`bytes`; nil when unknown: concurrently), or when every
    /// device is buffered (``devicesAreBuffered``: page-cache copies gain nothing from other
    /// threads while the server runs many requests at once; RAID-5 1 MiB reads through the
    /// page cache went from about 3.1 to 4.4 GB/s inline).
    func parallel(_ count: Int, bytes: Int? = nil, _ body: (Int) -> Void) {
        if count <= 1 || context.scheduler != nil || (bytes.map { $0 <= Self.inlineFanOutBytes || devicesAreBuffered } ?? false) {
            for i in 0..<count { body(i) }
            return
        }
        runParallel(count, body)
    }

    /// Whether every device of the volume is buffered (``BlockDevice/isBuffered``). Subclasses
    /// that hold devices override this.
    var devicesAreBuffered: Bool { false }
}

/// Runs `body(0..<count)` concurrently on the I/O threads (inline for one item) and
/// returns when all are done. The closure may capture buffers: every call finishes before
/// this returns, so nothing escapes.
func runParallel(_ count: Int, _ body: (Int) -> Void) {
    IOPool.shared.run(count, body)
}

/// An `Atomic<Int>` in a final class of its own.
final class AtomicIntBox: Sendable {
    let value: Atomic<Int>
    init(_ v: Int) { value = Atomic(v) }
}

/// Wraps a value that is used safely across threads by construction.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}

/// Collects errors from parallel work.
final class ErrorBox<E: Error>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(Int, E)] = []
    func add(_ index: Int, _ e: E) { lock.lock(); items.append((index, e)); lock.unlock() }
    var all: [(Int, E)] { lock.lock(); defer { lock.unlock() }; return items.sorted { $0.0 < $1.0 } }
    var first: E? { all.first?.1 }
}
