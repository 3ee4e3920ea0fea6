import Foundation
import MetaSystem
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking NBD client over a Unix socket, able to send malformed traffic on purpose.
public final class RawNBDClient: @unchecked Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case closedByPeer
        case io(String)
        public var description: String {
            switch self {
            case .closedByPeer: "connection closed by server"
            case .io(let s): s
            }
        }
    }

    public struct OptionReply {
        public var option: UInt32
        public var type: UInt32
        public var data: [UInt8]
        public var isError: Bool { type & 0x8000_0000 != 0 }
    }

    /// One structured reply chunk.
    public struct Chunk {
        public var flags: UInt16
        public var type: UInt16
        public var cookie: UInt64
        public var payload: [UInt8]
        public var done: Bool { flags & 1 != 0 }
    }

    public struct SimpleReply {
        public var error: UInt32
        public var cookie: UInt64
        public var data: [UInt8]
    }

    public static let optMagic: UInt64 = 0x4948_4156_454f_5054
    public static let requestMagic: UInt32 = 0x2560_9513

    public let fd: Int32

    public init(socketPath: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure.io("socket: \(errno)") }
        let rc = (try? UnixSocketAddress(path: socketPath))?.connect(fd) ?? ENAMETOOLONG
        // No close here: `deinit` runs for an initializer that throws once every stored
        // property is set, and closes `fd`. Closing it twice could close a descriptor another
        // thread has been handed the same number for meanwhile (a server's accepted socket).
        guard rc == 0 else { throw Failure.io("connect \(socketPath): \(rc)") }
        // Safety net so a broken server cannot hang the test run (not an assertion on timing).
        var tv = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    // MARK: raw I/O

    public func send(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = retryingInterrupted { bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) } }
            guard n > 0 else { throw errno == EPIPE || errno == ECONNRESET ? Failure.closedByPeer : Failure.io("send: \(errno)") }
            done += n
        }
    }

    public func receive(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = retryingInterrupted { out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + done, count - done, 0) } }
            if n == 0 || (n < 0 && errno == ECONNRESET) { throw Failure.closedByPeer }
            guard n > 0 else { throw Failure.io("recv: errno \(errno)") }
            done += n
        }
        return out
    }

    /// True when the server has closed the connection (reads EOF), after discarding anything pending.
    public func waitForClose() -> Bool {
        var scratch = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 65536, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    public func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    // MARK: handshake

    /// Reads the server greeting and returns the handshake flags.
    public func readGreeting() throws -> UInt16 {
        let g = try receive(18)
        guard be64(g, 0) == 0x4e42_444d_4147_4943, be64(g, 8) == Self.optMagic else {
            throw Failure.io("bad greeting")
        }
        return be16(g, 16)
    }

    public func sendClientFlags(_ flags: UInt32) throws { try send(enc32(flags)) }

    public func sendOption(_ option: UInt32, _ data: [UInt8] = [], declaredLength: UInt32? = nil) throws {
        try send(enc64(Self.optMagic) + enc32(option) + enc32(declaredLength ?? UInt32(data.count)) + data)
    }

    public func readOptionReply() throws -> OptionReply {
        let h = try receive(20)
        guard be64(h, 0) == 0x3_e889_0455_65a9 else { throw Failure.io("bad option reply magic") }
        let length = Int(be32(h, 16))
        return OptionReply(option: be32(h, 8), type: be32(h, 12), data: length > 0 ? try receive(length) : [])
    }

    public static func goData(name: String, infos: [UInt16]) -> [UInt8] {
        let n = Array(name.utf8)
        return enc32(UInt32(n.count)) + n + enc16(UInt16(infos.count)) + infos.flatMap(enc16)
    }

    /// Greeting, client flags (fixed newstyle + no zeroes), NBD_OPT_STRUCTURED_REPLY when
    /// `structured`, and NBD_OPT_GO; returns (size, transmission flags).
    @discardableResult
    public func connect(export name: String, structured: Bool = false, infos: [UInt16] = [3]) throws -> (size: UInt64, flags: UInt16) {
        _ = try readGreeting()
        try sendClientFlags(3)
        if structured {
            try sendOption(8)
            let r = try readOptionReply()
            if r.type != 1 { throw Failure.io("NBD_OPT_STRUCTURED_REPLY refused: 0x\(String(r.type, radix: 16))") }
        }
        try sendOption(7, Self.goData(name: name, infos: infos))
        var result: (UInt64, UInt16)?
        while true {
            let r = try readOptionReply()
            if r.isError { throw Failure.io("NBD_OPT_GO failed: 0x\(String(r.type, radix: 16))") }
            if r.type == 1 { break }
            if r.type == 3, be16(r.data, 0) == 0 { result = (be64(r.data, 2), be16(r.data, 10)) }
        }
        guard let result else { throw Failure.io("no NBD_INFO_EXPORT") }
        return result
    }

    // MARK: transmission

    public func sendRequest(type: UInt16, flags: UInt16 = 0, cookie: UInt64, offset: UInt64, length: UInt32,
                     payload: [UInt8] = [], magic: UInt32 = requestMagic) throws {
        try send(enc32(magic) + enc16(flags) + enc16(type) + enc64(cookie) + enc64(offset) + enc32(length) + payload)
    }

    /// Reads one simple reply; `dataLength(cookie)` says how many data bytes follow a successful reply.
    public func readReply(dataLength: (UInt64) -> Int = { _ in 0 }) throws -> SimpleReply {
        let h = try receive(16)
        guard be32(h, 0) == 0x6744_6698 else { throw Failure.io("bad reply magic") }
        let error = be32(h, 4), cookie = be64(h, 8)
        let n = error == 0 ? dataLength(cookie) : 0
        return SimpleReply(error: error, cookie: cookie, data: n > 0 ? try receive(n) : [])
    }

    /// Reads one structured reply chunk (fails on any other reply).
    public func readChunk() throws -> Chunk {
        let h = try receive(20)
        guard be32(h, 0) == 0x668e_33ef else { throw Failure.io("expected a structured reply, got magic 0x\(String(be32(h, 0), radix: 16))") }
        let length = Int(be32(h, 16))
        return Chunk(flags: be16(h, 4), type: be16(h, 6), cookie: be64(h, 8), payload: length > 0 ? try receive(length) : [])
    }

    public func read(offset: UInt64, length: UInt32, cookie: UInt64 = 1) throws -> SimpleReply {
        try sendRequest(type: 0, cookie: cookie, offset: offset, length: length)
        return try readReply { _ in Int(length) }
    }

    public func write(offset: UInt64, data: [UInt8], flags: UInt16 = 0, cookie: UInt64 = 2) throws -> SimpleReply {
        try sendRequest(type: 1, flags: flags, cookie: cookie, offset: offset, length: UInt32(data.count), payload: data)
        return try readReply()
    }

    public func command(_ type: UInt16, flags: UInt16 = 0, offset: UInt64 = 0, length: UInt32 = 0,
                 cookie: UInt64 = 3) throws -> SimpleReply {
        try sendRequest(type: type, flags: flags, cookie: cookie, offset: offset, length: length)
        return try readReply()
    }
}

public func enc16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
public func enc32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
public func enc64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
public func be16(_ b: [UInt8], _ o: Int) -> UInt16 { b[o..<o + 2].reduce(0) { $0 << 8 | UInt16($1) } }
public func be32(_ b: [UInt8], _ o: Int) -> UInt32 { b[o..<o + 4].reduce(0) { $0 << 8 | UInt32($1) } }
public func be64(_ b: [UInt8], _ o: Int) -> UInt64 { b[o..<o + 8].reduce(0) { $0 << 8 | UInt64($1) } }
