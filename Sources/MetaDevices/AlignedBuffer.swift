import CMetaShim

/// A heap buffer aligned for `O_DIRECT` I/O (4096 bytes by default), zero-filled on creation.
///
/// The buffer is a reference type so it can be shared with the thread doing the I/O;
/// callers are responsible for not writing to it from two threads at once.
public final class AlignedBuffer: @unchecked Sendable {
    /// Alignment used by every buffer unless asked otherwise.
    public static let defaultAlignment = 4096
    /// Start of the memory.
    public let base: UnsafeMutableRawPointer
    /// Length in bytes.
    public let count: Int

    /// Allocates `count` zeroed bytes aligned to `alignment`.
    public init(count: Int, alignment: Int = AlignedBuffer.defaultAlignment) {
        precondition(count >= 0)
        let rounded = max(alignment, (count + alignment - 1) / alignment * alignment)
        guard let p = metashim_aligned_alloc(alignment, rounded) else {
            fatalError("out of memory allocating \(rounded) bytes")
        }
        p.initializeMemory(as: UInt8.self, repeating: 0, count: rounded)
        self.base = p
        self.count = count
    }

    /// Allocates `count` bytes aligned to `alignment` without zeroing them: for buffers that
    /// are filled completely (by device reads) before anything reads them.
    public init(uninitializedCount count: Int, alignment: Int = AlignedBuffer.defaultAlignment) {
        precondition(count >= 0)
        let rounded = max(alignment, (count + alignment - 1) / alignment * alignment)
        guard let p = metashim_aligned_alloc(alignment, rounded) else {
            fatalError("out of memory allocating \(rounded) bytes")
        }
        self.base = p
        self.count = count
    }

    deinit { metashim_free(base) }

    /// The whole buffer, mutable.
    public var mutableBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base, count: count)
    }
    /// The whole buffer, read-only.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// A slice of the buffer.
    public func mutableBytes(offset: Int, count: Int) -> UnsafeMutableRawBufferPointer {
        precondition(offset >= 0 && count >= 0 && offset + count <= self.count)
        return UnsafeMutableRawBufferPointer(start: base + offset, count: count)
    }

    /// Fills the buffer with zeroes.
    public func zero() { base.initializeMemory(as: UInt8.self, repeating: 0, count: count) }
}
