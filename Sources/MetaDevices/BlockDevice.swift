/// A component's storage: a block device, an image file, or a test double.
///
/// Offsets and lengths are in bytes. Implementations are thread-safe: positional
/// reads and writes from several threads at once are allowed. Reads and writes
/// transfer the whole range or throw; a short transfer at the end of the device
/// is an error, never a partial success.
public protocol BlockDevice: AnyObject, Sendable {
    /// The path the device was opened with (or a descriptive name for doubles).
    var path: String { get }
    /// Usable size in bytes.
    var sizeBytes: UInt64 { get }
    /// Logical sector size: the granularity of I/O offsets and lengths.
    var logicalSectorSize: Int { get }
    /// Physical sector size (alignment hint).
    var physicalSectorSize: Int { get }
    /// Reads `buffer.count` bytes at `offset`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DeviceError)
    /// Writes all of `buffer` at `offset`.
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DeviceError)
    /// Makes every completed write durable.
    func flush() throws(DeviceError)
    /// Tells the device that a range is no longer needed (reads of it return zeroes afterwards
    /// when ``discardZeroes`` is true).
    func discard(offset: UInt64, length: UInt64) throws(DeviceError)
    /// Whether a discarded range reads back as zeroes.
    var discardZeroes: Bool { get }
    /// Whether I/O goes through a memory cache (buffered file I/O, RAM), so that most calls
    /// finish at memory speed instead of waiting for a disk. Callers fan large requests out
    /// over threads only when this is false.
    var isBuffered: Bool { get }
}

extension BlockDevice {
    /// Devices are assumed to wait for a disk unless they say otherwise.
    public var isBuffered: Bool { false }

    /// Reads `count` bytes at `offset` into a new array (convenience for small metadata reads).
    public func read(count: Int, at offset: UInt64) throws(DeviceError) -> [UInt8] {
        let buf = AlignedBuffer(count: count)
        defer { withExtendedLifetime(buf) {} }  // pointers into it outlive its last use
        try read(into: buf.mutableBytes, at: offset)
        return Array(buf.bytes)
    }

    /// Writes an array at `offset` through an aligned bounce buffer.
    public func write(bytes: [UInt8], at offset: UInt64) throws(DeviceError) {
        let buf = AlignedBuffer(count: bytes.count)
        defer { withExtendedLifetime(buf) {} }  // pointers into it outlive its last use
        buf.mutableBytes.copyMemory(from: UnsafeRawBufferPointer(start: bytes.withUnsafeBytes { $0.baseAddress }, count: bytes.count))
        try write(UnsafeRawBufferPointer(buf.mutableBytes), at: offset)
    }
}
