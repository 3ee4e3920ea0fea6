#if canImport(Glibc)
import Glibc
#endif

/// The operation that failed on a device, carried by ``DeviceError``.
public enum DeviceOperation: String, Sendable, Codable {
    case open, stat, lock, read, write, flush, discard, zero, ioctl, probe, enumerate
}

/// A typed error from the device layer: which device, which operation, where, and the errno.
public struct DeviceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Path of the device or file at fault.
    public var path: String
    /// What was being done.
    public var operation: DeviceOperation
    /// Byte offset of the failed I/O, if any.
    public var offset: UInt64?
    /// Byte length of the failed I/O, if any.
    public var length: UInt64?
    /// The errno (positive), 0 when the error is not a system error.
    public var errno: Int32
    /// Extra words, e.g. "short read at end of device".
    public var detail: String?

    public init(path: String, operation: DeviceOperation, offset: UInt64? = nil, length: UInt64? = nil,
                errno: Int32, detail: String? = nil) {
        self.path = path
        self.operation = operation
        self.offset = offset
        self.length = length
        self.errno = errno
        self.detail = detail
    }

    /// The system's text for ``errno``.
    public var errnoText: String {
        errno == 0 ? "" : String(cString: strerror(errno))
    }

    public var description: String {
        var s = "\(path): \(operation.rawValue)"
        if let offset { s += " at offset \(offset)" }
        if let length { s += " length \(length)" }
        var why: [String] = []
        if let detail { why.append(detail) }
        if errno != 0 { why.append(errnoText) }
        if !why.isEmpty { s += ": " + why.joined(separator: ": ") }
        return s
    }
}
