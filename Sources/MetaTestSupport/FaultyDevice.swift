#if canImport(Glibc)
import Glibc
#endif
import MetaDevices
import Synchronization

/// A shared budget of bytes that may still be written before a simulated crash.
///
/// Give the same budget to several ``FaultyDevice``s to crash a multi-device operation
/// at an exact byte: the write that crosses the limit is torn (only its first bytes land)
/// and every later write is dropped with `EIO`.
public final class CrashBudget: Sendable {
    private let remaining: Mutex<UInt64?>
    /// `bytes == nil` means no crash.
    public init(bytes: UInt64?) { remaining = Mutex(bytes) }
    /// Consumes up to `count` bytes; returns how many may be written.
    func take(_ count: Int) -> Int {
        remaining.withLock { r in
            guard let left = r else { return count }
            let n = Int(min(UInt64(count), left))
            r = left - UInt64(n)
            return n
        }
    }
    /// Whether the crash point has been reached.
    public var crashed: Bool { remaining.withLock { $0 == 0 } }
}

/// A fault-injecting wrapper around any ``BlockDevice``.
///
/// Faults can be switched on and off at run time: fail every read or write (as a dead
/// disk does), fail only I/O touching given byte ranges (bad sectors), tear writes at a
/// ``CrashBudget``, and call a hook when an error is returned (tests use it to pause the
/// failing I/O and inspect the state database before the reply).
public final class FaultyDevice: BlockDevice, @unchecked Sendable {
    /// What to fail.
    public struct Faults: Sendable {
        public var failReads = false
        public var failWrites = false
        public var failFlush = false
        /// Byte ranges whose reads fail.
        public var badReadRanges: [Range<UInt64>] = []
        /// Byte ranges whose writes fail.
        public var badWriteRanges: [Range<UInt64>] = []
        public init() {}
    }
    public let base: any BlockDevice
    public var path: String { base.path }
    public var sizeBytes: UInt64 { base.sizeBytes }
    public var logicalSectorSize: Int { base.logicalSectorSize }
    public var physicalSectorSize: Int { base.physicalSectorSize }
    public var discardZeroes: Bool { base.discardZeroes }
    public var isBuffered: Bool { base.isBuffered }
    private let faults = Mutex(Faults())
    private let budget: CrashBudget?
    private let hook = Mutex<(@Sendable (DeviceError) -> Void)?>(nil)
    private let errorCount = Atomic<Int>(0)

    public init(_ base: any BlockDevice, crashBudget: CrashBudget? = nil) {
        self.base = base
        self.budget = crashBudget
    }

    /// Replaces the active faults.
    public func setFaults(_ f: Faults) { faults.withLock { $0 = f } }
    /// Edits the active faults.
    public func updateFaults(_ body: (inout Faults) -> Void) { faults.withLock { body(&$0) } }
    /// Called (on the I/O thread) just before an injected error is thrown.
    public func onError(_ h: (@Sendable (DeviceError) -> Void)?) { hook.withLock { $0 = h } }
    /// Number of injected errors so far.
    public var injectedErrors: Int { errorCount.load(ordering: .relaxed) }

    private func fail(_ op: DeviceOperation, _ offset: UInt64?, _ len: Int?) throws(DeviceError) -> Never {
        let e = DeviceError(path: path, operation: op, offset: offset, length: len.map { UInt64($0) }, errno: EIO,
                            detail: "injected fault")
        errorCount.add(1, ordering: .relaxed)
        if let h = hook.withLock({ $0 }) { h(e) }
        throw e
    }

    private static func overlaps(_ ranges: [Range<UInt64>], _ offset: UInt64, _ count: Int) -> Bool {
        let r = offset..<(offset + UInt64(count))
        return ranges.contains { $0.overlaps(r) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        let f = faults.withLock { $0 }
        if f.failReads || Self.overlaps(f.badReadRanges, offset, buffer.count) { try fail(.read, offset, buffer.count) }
        try base.read(into: buffer, at: offset)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        let f = faults.withLock { $0 }
        if f.failWrites || Self.overlaps(f.badWriteRanges, offset, buffer.count) { try fail(.write, offset, buffer.count) }
        if let budget {
            let n = budget.take(buffer.count)
            if n < buffer.count {
                if n > 0 { try base.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), at: offset) }
                try fail(.write, offset, buffer.count)
            }
        }
        try base.write(buffer, at: offset)
    }

    public func flush() throws(DeviceError) {
        if faults.withLock({ $0.failFlush }) || (budget?.crashed ?? false) { try fail(.flush, nil, nil) }
        try base.flush()
    }

    public func discard(offset: UInt64, length: UInt64) throws(DeviceError) {
        let f = faults.withLock { $0 }
        if f.failWrites { try fail(.discard, offset, Int(length)) }
        try base.discard(offset: offset, length: length)
    }
}
