#if canImport(Glibc)
import Glibc
#endif

/// What kind of failure an error is: carried by every metactl error type, across the control
/// socket, into `--json` error objects, and mapped to the exit status of `metactl` (listed in
/// `metactl(8)`, EXIT STATUS). Raw values are stable (fields of the JSON schema).
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    /// The operation failed for a reason that has no more specific code.
    case general
    /// The command line is wrong (unknown option, missing argument).
    case usage
    /// An argument's value is wrong (bad size, bad name, out of range).
    case invalidArgument
    /// A volume, pool, set, device or replica named does not exist.
    case notFound
    /// The thing is busy: open, in use, locked, being resynced, already a member.
    case inUse
    /// The set is read-only: too few state-database replicas are readable.
    case noQuorum
    /// A device failed (I/O error, missing, too small to read).
    case deviceFailed
    /// Data is provably lost (a Last Erred volume).
    case dataLost
    /// Permission denied (run as root, or use your own --run-dir / --config-dir).
    case permission
    /// A bug in metactl.
    case `internal`

    /// The exit status of `metactl` for this code (documented in `metactl(8)`).
    public var exitStatus: Int32 {
        switch self {
        case .general: 1
        case .notFound: 2
        case .inUse: 3
        case .noQuorum: 4
        case .deviceFailed: 5
        case .dataLost: 6
        case .permission: 7
        case .usage: 64
        case .invalidArgument: 65
        case .internal: 70
        }
    }

    /// One line per code for `metactl(8)` and `--help`: status, code and meaning.
    public var meaning: String {
        switch self {
        case .general: "the operation failed (the message says why)"
        case .usage: "usage error: unknown option, missing or extra argument"
        case .invalidArgument: "an argument's value is wrong (size, name, range)"
        case .notFound: "no such volume, hot spare pool, set, device or replica"
        case .inUse: "in use or busy: open, locked, resyncing, already a member of a set"
        case .noQuorum: "quorum lost: too few state database replicas are readable, the set is read-only"
        case .deviceFailed: "a device failed or is missing (I/O error)"
        case .dataLost: "data is lost (a Last Erred volume)"
        case .permission: "permission denied"
        case .internal: "internal error (a bug: please report it)"
        }
    }

    /// The code of a system error number.
    public static func of(errno e: Int32) -> ErrorCode {
        switch e {
        case EACCES, EPERM, EROFS: .permission
        case ENOENT, ENXIO, ENODEV: .notFound
        case EBUSY, EWOULDBLOCK: .inUse
        case EINVAL, ENAMETOOLONG, ENOTDIR, EISDIR: .invalidArgument
        case EIO, ENOSPC: .deviceFailed
        default: .general
        }
    }

    /// The code of any error: its own when it is a ``CodedError``, else ``general``.
    public static func of(_ error: any Error) -> ErrorCode {
        (error as? any CodedError)?.code ?? .general
    }
}

/// An error that knows its ``ErrorCode``.
public protocol CodedError: Error {
    /// What kind of failure this is.
    var code: ErrorCode { get }
}

extension DeviceError: CodedError {
    /// ``ErrorCode/of(errno:)`` of the errno; an error without one is a device failure.
    public var code: ErrorCode {
        if errno == 0 { return .deviceFailed }
        let c = ErrorCode.of(errno: errno)
        return c == .general ? .deviceFailed : c
    }
}

extension ProbeError: CodedError {
    /// Open failures by errno, probe failures as device failures.
    public var code: ErrorCode {
        switch self {
        case .cannotOpen(_, let e): ErrorCode.of(errno: e)
        case .probeFailed: .deviceFailed
        }
    }
}

extension ComponentCheckError: CodedError {
    /// Why the path is refused, as a code.
    public var code: ErrorCode {
        switch self {
        case .cannotStat(_, let e), .cannotOpen(_, let e):
            let c = ErrorCode.of(errno: e)
            return c == .general ? .deviceFailed : c
        case .notBlockOrFile, .readOnly, .empty, .hasSignature: return .invalidArgument
        case .mounted, .swap, .held, .loopBacking, .member, .busy, .locked: return .inUse
        case .probeFailed: return .deviceFailed
        }
    }
}
