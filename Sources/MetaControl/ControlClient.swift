import Foundation
import MetaSystem
import MetaDevices
#if canImport(Glibc)
import Glibc
#endif

/// Talks to a running `metactl serve` over its control socket (blocking; one request per
/// connection: a JSON line out, a JSON line back).
public enum ControlClient {
    /// `<runDir>/<set>.ctl`
    public static func socketPath(runDir: String, set: String) -> String { "\(runDir)/\(set).ctl" }

    /// Sends `request`; returns nil when no server listens on the socket.
    public static func send(_ request: ControlRequest, socketPath path: String, timeout: Double = 600) throws -> ControlResponse? {
        var reply = Data()
        guard try exchange(request, socketPath: path, timeout: timeout, line: { reply = $0; return false }) != nil else { return nil }
        guard !reply.isEmpty else { throw OperationError("\(path): the server closed the connection without answering", code: .internal) }
        return try JSONDecoder().decode(ControlResponse.self, from: reply)
    }

    /// Sends a streaming request (`monitor`) and hands `line` each line the server writes
    /// (without its newline) until the server closes the connection or `line` returns false.
    /// Returns nil when no server listens, false when the server closed the connection.
    public static func stream(_ request: ControlRequest, socketPath path: String,
                              line: (Data) throws -> Bool) throws -> Bool? {
        try exchange(request, socketPath: path, timeout: 0, line: line)
    }

    /// Sends `request`, then reads lines (a last one without its newline too) into `line`
    /// until it returns false (true) or the server closes (false); nil when no server listens.
    private static func exchange(_ request: ControlRequest, socketPath path: String, timeout: Double,
                                 line: (Data) throws -> Bool) throws -> Bool? {
        guard let fd = try connect(request, socketPath: path, timeout: timeout) else { return nil }
        defer { close(fd) }
        var pending = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = retryingInterrupted { read(fd, &buf, buf.count) }
            if n < 0 { throw OperationError("\(path): read: \(String(cString: strerror(errno)))") }
            if n == 0 {
                if !pending.isEmpty { _ = try line(pending) }
                return false
            }
            pending.append(contentsOf: buf[0..<n])
            while let nl = pending.firstIndex(of: 0x0A) {
                let l = Data(pending[pending.startIndex..<nl])
                pending = Data(pending[(nl + 1)...])
                if try !line(l) { return true }
            }
        }
    }

    /// Connects and sends `request`; returns the socket, or nil when no server listens.
    /// `timeout`: seconds a read may wait (0: no limit).
    private static func connect(_ request: ControlRequest, socketPath path: String, timeout: Double) throws -> Int32? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw OperationError("control socket: \(String(cString: strerror(errno)))") }
        var ok = false
        defer { if !ok { close(fd) } }
        let addr: UnixSocketAddress
        do { addr = try UnixSocketAddress(path: path) } catch { throw OperationError("\(error)") }
        let rc = addr.connect(fd)
        if rc != 0 {
            let e = rc
            if e == ECONNREFUSED || e == ENOENT { return nil }
            throw OperationError(e == EACCES || e == EPERM
                ? "\(path): cannot connect: permission denied (the server's control socket is mode 0600: run as its user, usually root)"
                : "\(path): cannot connect: \(String(cString: strerror(e)))", code: ErrorCode.of(errno: e))
        }
        if timeout > 0 {
            var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        var line = Data(try request.encodedLine())
        line.append(0x0A)
        try line.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = retryingInterrupted { write(fd, raw.baseAddress! + off, raw.count - off) }
                if n < 0 { throw OperationError("\(path): write: \(String(cString: strerror(errno)))") }
                off += n
            }
        }
        ok = true
        return fd
    }
}
