#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// An in-memory ``BlockDevice``: the state database builds replica images in one, and tests
/// and benchmarks use it for the layers above the device layer. (The fault-injecting test
/// double, `FaultyDevice`, lives in `MetaTestSupport`, out of the production targets.)
public final class MemoryDevice: BlockDevice, @unchecked Sendable {
    public let path: String
    public let sizeBytes: UInt64
    public let logicalSectorSize: Int
    public let physicalSectorSize: Int
    public var discardZeroes: Bool { true }
    public var isBuffered: Bool { true }
    private let storage: Mutex<[UInt8]>
    /// Number of flushes seen (tests assert durability points with it).
    public var flushCount: Int { flushes.load(ordering: .relaxed) }
    private let flushes = Atomic<Int>(0)

    /// A zero-filled device of `sizeBytes` bytes. With a `sectorSize` above 512, reads and
    /// writes not aligned to it fail with `EINVAL`, as ``FileDevice`` with `O_DIRECT` does.
    public init(path: String = "mem", sizeBytes: UInt64, sectorSize: Int = 512) {
        self.path = path
        self.sizeBytes = sizeBytes
        self.logicalSectorSize = sectorSize
        self.physicalSectorSize = sectorSize
        self.storage = Mutex([UInt8](repeating: 0, count: Int(sizeBytes)))
    }

    private func check(_ op: DeviceOperation, _ offset: UInt64, _ count: Int) throws(DeviceError) {
        if offset > sizeBytes || UInt64(count) > sizeBytes - offset {
            throw DeviceError(path: path, operation: op, offset: offset, length: UInt64(count), errno: ENOSPC,
                              detail: "beyond end of device (\(sizeBytes) bytes)")
        }
        let sector = logicalSectorSize
        if sector > 512 && op != .discard && (offset % UInt64(sector) != 0 || count % sector != 0) {
            throw DeviceError(path: path, operation: op, offset: offset, length: UInt64(count), errno: EINVAL,
                              detail: "not aligned to the \(sector)-byte sector size")
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        try check(.read, offset, buffer.count)
        storage.withLock { s in
            s.withUnsafeBytes { src in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[Int(offset)..<Int(offset) + buffer.count]))
            }
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        try check(.write, offset, buffer.count)
        storage.withLock { s in
            s.withUnsafeMutableBytes { dst in
                UnsafeMutableRawBufferPointer(rebasing: dst[Int(offset)..<Int(offset) + buffer.count]).copyMemory(from: buffer)
            }
        }
    }

    public func flush() throws(DeviceError) { flushes.add(1, ordering: .relaxed) }

    public func discard(offset: UInt64, length: UInt64) throws(DeviceError) {
        try check(.discard, offset, Int(length))
        storage.withLock { s in
            for i in Int(offset)..<Int(offset + length) { s[i] = 0 }
        }
    }

    /// A copy of the whole contents.
    public func snapshot() -> [UInt8] { storage.withLock { $0 } }
    /// Replaces the whole contents (same size).
    public func restore(_ bytes: [UInt8]) {
        precondition(bytes.count == Int(sizeBytes))
        storage.withLock { $0 = bytes }
    }
}
