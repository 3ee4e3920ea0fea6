#if canImport(Glibc)
import Glibc
#endif
import MetaDevices

/// An I/O error returned by a volume to its user (the NBD server, a command, a test).
public struct VolumeIOError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Data could not be read or written (EIO).
        case io
        /// Bad offset or length (EINVAL).
        case invalid
        /// Beyond the end of the volume (ENOSPC).
        case noSpace
        /// The set is read-only (EROFS/EPERM).
        case readOnly
    }
    public var volume: String
    public var code: Code
    public var operation: String
    public var offset: UInt64?
    public var length: UInt64?
    public var detail: String
    /// The device error behind it, if any.
    public var underlying: DeviceError?

    public init(volume: String, code: Code, operation: String, offset: UInt64? = nil, length: UInt64? = nil,
                detail: String, underlying: DeviceError? = nil) {
        self.volume = volume; self.code = code; self.operation = operation; self.offset = offset
        self.length = length; self.detail = detail; self.underlying = underlying
    }

    /// The errno a block protocol should return.
    public var errno: Int32 {
        switch code {
        case .io: return EIO
        case .invalid: return EINVAL
        case .noSpace: return ENOSPC
        case .readOnly: return EROFS
        }
    }

    public var description: String {
        var s = "\(volume): \(operation)"
        if let offset { s += " at offset \(offset)" }
        if let length { s += " length \(length)" }
        return s + ": " + detail
    }
}
