#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Unix-domain socket address (`sockaddr_un`) for a path, or for an abstract name (a path
/// starting with `@`, as systemd's `NOTIFY_SOCKET` may be): the one place that builds one.
public struct UnixSocketAddress: Sendable {
    /// The path does not fit in `sun_path` (108 bytes on Linux, its terminating zero included).
    public struct TooLong: Error, Sendable, CustomStringConvertible {
        public let path: String
        public var description: String { "\(path): socket path too long" }
    }

    private var address = sockaddr_un()
    /// The address's length as `connect(2)`, `bind(2)` and `sendto(2)` take it.
    public let length: socklen_t

    /// The address of `path`; with `abstract`, a leading `@` names an abstract socket (its
    /// first byte zero, its length exactly the name's).
    public init(path: String, abstract: Bool = false) throws(TooLong) {
        var bytes = Array(path.utf8)
        let isAbstract = abstract && bytes.first == UInt8(ascii: "@")
        if isAbstract { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw TooLong(path: path) }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        length = isAbstract ? socklen_t(MemoryLayout<sa_family_t>.size + bytes.count) : socklen_t(MemoryLayout<sockaddr_un>.size)
    }

    /// Runs `body` with the address as a `sockaddr` pointer and its length.
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        try withUnsafePointer(to: address) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }

    /// `connect(2)` of `fd` to this address, retried when a signal interrupts it; returns 0,
    /// or the `errno` of the failure.
    public func connect(_ fd: Int32) -> Int32 {
        while true {
            #if canImport(Glibc)
            let rc = withSockaddr { Glibc.connect(fd, $0, $1) }
            #else
            let rc = withSockaddr { Darwin.connect(fd, $0, $1) }
            #endif
            if rc == 0 { return 0 }
            if errno != EINTR { return errno }
        }
    }
}
