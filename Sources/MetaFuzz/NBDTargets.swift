import Foundation
import Logging
import MetaNBD
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded

// The NBD targets drive the real connection handler(s) (``NBDServer/addConnectionHandlers(to:logger:)``)
// on an `EmbeddedChannel`, with export I/O run inline, and check everything the server sends
// against an independent model of the protocol (proto.md) that reads the same client bytes:
// every option gets its replies ending in one final reply, every request exactly one reply with
// the right framing (and a READ the data a shadow copy of the export predicts), and the
// session ends with the connection closed exactly when the protocol says it must be.

/// A memory export whose I/O runs on the embedded loop's thread only (never concurrently).
final class FuzzExport: NBDExport, @unchecked Sendable {
    let name: String
    let exportDescription: String
    let sizeBytes: UInt64
    let readOnly: Bool
    let minimumBlockSize: UInt32
    let preferredBlockSize: UInt32 = 4096
    let maximumRequestSize: UInt32 = 4096
    let canTrim: Bool
    let canWriteZeroes: Bool
    let canMultiConn = true
    var data: [UInt8]

    init(name: String, description: String, size: UInt64, readOnly: Bool, minimumBlockSize: UInt32, features: Bool) {
        self.name = name; self.exportDescription = description; self.sizeBytes = size; self.readOnly = readOnly
        self.minimumBlockSize = minimumBlockSize; self.canTrim = features; self.canWriteZeroes = features
        data = FuzzExport.initialContent(size)
    }

    static func initialContent(_ size: UInt64) -> [UInt8] { (0..<Int(size)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) } }
    func reset() { data = FuzzExport.initialContent(sizeBytes) }

    func read(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(NBDIOError) {
        data.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
    }
    func write(offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool) throws(NBDIOError) {
        data.replaceSubrange(Int(offset)..<Int(offset) + buffer.count, with: buffer)
    }
    func flush() throws(NBDIOError) {}
    func trim(offset: UInt64, length: UInt64, fua: Bool) throws(NBDIOError) {
        try writeZeroes(offset: offset, length: length, fua: fua, noHole: false)
    }
    func writeZeroes(offset: UInt64, length: UInt64, fua: Bool, noHole: Bool) throws(NBDIOError) {
        for i in Int(offset)..<Int(offset + length) { data[i] = 0 }
    }
}

/// A server whose handlers the targets install on embedded channels. Sessions run one at a
/// time (``lock``): the exports' content and the server's connection counts are shared.
final class FuzzNBD: Sendable {
    static let lock = NIOLock()
    let server: NBDServer
    let exports: [FuzzExport]

    init(_ exports: [FuzzExport]) {
        var c = NBDServer.Configuration()
        c.ioThreads = 0
        c.eventLoopThreads = 1
        c.maxOptionLength = 4096
        self.exports = exports
        server = NBDServer(configuration: c, exports: NBDExportRegistry(exports),
                           logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// The export a name selects (the empty name selects the only export).
    func lookup(_ name: String) -> FuzzExport? {
        if let e = exports.first(where: { $0.name == name }) { return e }
        return name.isEmpty && exports.count == 1 ? exports[0] : nil
    }

    /// One export (the default one).
    static let single = FuzzNBD([FuzzExport(name: "disk", description: "fuzz export", size: 64 << 10, readOnly: false,
                                            minimumBlockSize: 512, features: true)])
    /// Two exports: a writable one with every feature, and a read-only one of odd size.
    static let pair = FuzzNBD([
        FuzzExport(name: "disk", description: "fuzz export", size: 64 << 10, readOnly: false, minimumBlockSize: 512, features: true),
        FuzzExport(name: "ro", description: "", size: 40_000, readOnly: true, minimumBlockSize: 1, features: false),
    ])
}

private enum W {
    static let nbdMagic: UInt64 = 0x4e42_444d_4147_4943
    static let optMagic: UInt64 = 0x4948_4156_454f_5054
    static let optReplyMagic: UInt64 = 0x3_e889_0455_65a9
    static let requestMagic: UInt32 = 0x2560_9513
    static let simpleMagic: UInt32 = 0x6744_6698
    static let structuredMagic: UInt32 = 0x668e_33ef
    static let repAck: UInt32 = 1, repServer: UInt32 = 2, repInfo: UInt32 = 3
    static let errUnsup: UInt32 = 0x8000_0001, errPolicy: UInt32 = 0x8000_0002, errInvalid: UInt32 = 0x8000_0003
    static let errUnknown: UInt32 = 0x8000_0006, errTooBig: UInt32 = 0x8000_0009
    static let portableLimit: UInt64 = 1 << 25
}

/// Big-endian reads from a byte array.
private struct Reader {
    var b: [UInt8]
    var at: Int
    var remaining: Int { b.count - at }
    mutating func u<T: FixedWidthInteger>(_: T.Type) -> T? {
        let n = MemoryLayout<T>.size
        guard at + n <= b.count else { return nil }
        var v: T = 0
        for i in 0..<n { v = v << 8 | T(b[at + i]) }
        at += n
        return v
    }
    mutating func bytes(_ n: Int) -> [UInt8]? {
        guard n >= 0, at + n <= b.count else { return nil }
        defer { at += n }
        return Array(b[at..<at + n])
    }
}

/// What the model expects from the server for one client message.
private enum Expectation {
    /// Option replies for `option`, the last one of type `final`; `intermediate` types may come
    /// before it. Then: `next` (.options, .transmission or .closed).
    case option(option: UInt32, final: UInt32, intermediate: Set<UInt32>, next: After, export: FuzzExport?)
    /// NBD_OPT_EXPORT_NAME for an existing export: size, flags (and 124 zero bytes).
    case exportName(FuzzExport, zeroes: Bool)
    /// The connection closes (after what was sent before).
    case close
    /// A transmission request (answered in any order).
    case request(Request)

    enum After { case options, transmission, closed }
}

private struct Request: CustomStringConvertible {
    var description: String { "command \(type) offset \(offset) length \(length) (\(ok ? "valid" : "invalid"))" }
    var cookie: UInt64
    var type: UInt16
    var offset: UInt64
    var length: UInt32
    var ok: Bool
    /// For a successful READ: the data the export must return.
    var data: [UInt8]?
}

/// The client side of a session: reads the bytes the client sends as the protocol defines
/// them, gives every request a unique cookie (patched into the bytes), and says what the
/// server must answer.
private struct ClientModel {
    let nbd: FuzzNBD
    var shadow: [String: [UInt8]] = [:]
    var expectations: [Expectation] = []
    var stream: [UInt8]
    var structured = false

    init(nbd: FuzzNBD, stream: [UInt8]) {
        self.nbd = nbd
        self.stream = stream
        for e in nbd.exports { shadow[e.name] = FuzzExport.initialContent(e.sizeBytes) }
    }

    mutating func run() {
        var r = Reader(b: stream, at: 0)
        guard let flags = r.u(UInt32.self) else { return }
        guard flags & ~3 == 0 else { expectations.append(.close); return }
        let noZeroes = flags & 2 != 0
        var export: FuzzExport?
        options: while export == nil {
            guard r.remaining >= 16 else { return }
            let start = r.at
            let magic = r.u(UInt64.self)!, option = r.u(UInt32.self)!, length = Int(r.u(UInt32.self)!)
            guard magic == W.optMagic else { expectations.append(.close); return }
            if length > nbd.server.configuration.maxOptionLength {
                if option != 1 {
                    expectations.append(.option(option: option, final: W.errTooBig, intermediate: [], next: .closed, export: nil))
                } else {
                    expectations.append(.close)
                }
                return
            }
            guard let data = r.bytes(length) else { r.at = start; return }
            switch option {
            case 1:  // EXPORT_NAME
                guard let e = nbd.lookup(String(decoding: data, as: UTF8.self)) else { expectations.append(.close); return }
                expectations.append(.exportName(e, zeroes: !noZeroes))
                export = e
            case 2:  // ABORT
                expectations.append(.option(option: option, final: W.repAck, intermediate: [], next: .closed, export: nil))
                return
            case 3:  // LIST
                expectations.append(.option(option: option, final: data.isEmpty ? W.repAck : W.errInvalid,
                                            intermediate: data.isEmpty ? [W.repServer] : [], next: .options, export: nil))
            case 6, 7:  // INFO, GO
                var d = Reader(b: data, at: 0)
                var malformed = true
                var found: FuzzExport?
                if data.count >= 6, let n = d.u(UInt32.self), UInt64(n) <= UInt64(data.count - 6),
                   let name = d.bytes(Int(n)), let count = d.u(UInt16.self), d.remaining == Int(count) * 2 {
                    malformed = false
                    found = nbd.lookup(String(decoding: name, as: UTF8.self))
                }
                let final = malformed ? W.errInvalid : found == nil ? W.errUnknown : W.repAck
                let go = option == 7 && final == W.repAck
                expectations.append(.option(option: option, final: final, intermediate: final == W.repAck ? [W.repInfo] : [],
                                            next: go ? .transmission : .options, export: found))
                if go { export = found }
            case 5:  // STARTTLS
                expectations.append(.option(option: option, final: W.errPolicy, intermediate: [], next: .options, export: nil))
            case 8:  // STRUCTURED_REPLY
                if data.isEmpty { structured = true }
                expectations.append(.option(option: option, final: data.isEmpty ? W.repAck : W.errInvalid, intermediate: [],
                                            next: .options, export: nil))
            default:
                expectations.append(.option(option: option, final: W.errUnsup, intermediate: [], next: .options, export: nil))
            }
        }
        guard let export else { return }
        var content = shadow[export.name]!
        var cookie: UInt64 = 0xC0DE_0000_0000_0000
        while r.remaining >= 28 {
            let start = r.at
            let magic = r.u(UInt32.self)!, flags = r.u(UInt16.self)!, type = r.u(UInt16.self)!
            _ = r.u(UInt64.self)!
            let offset = r.u(UInt64.self)!, length = r.u(UInt32.self)!
            guard magic == W.requestMagic else { expectations.append(.close); return }
            cookie += 1
            for i in 0..<8 { stream[start + 8 + i] = UInt8(truncatingIfNeeded: cookie >> (56 - 8 * i)) }
            if type == 1 && length > export.maximumRequestSize {
                expectations.append(.request(Request(cookie: cookie, type: type, offset: offset, length: length, ok: false)))
                if UInt64(length) > max(UInt64(export.maximumRequestSize), W.portableLimit) {
                    expectations.append(.close); return
                }
                if r.remaining < Int(length) { return }
                r.at += Int(length)
                continue
            }
            var payload: [UInt8] = []
            if type == 1 {
                guard let p = r.bytes(Int(length)) else { return }
                payload = p
            }
            if type == 2 { expectations.append(.close); return }  // DISC
            let ok = Self.valid(export, flags: flags, type: type, offset: offset, length: length)
            var req = Request(cookie: cookie, type: type, offset: offset, length: length, ok: ok)
            if ok {
                let range = Int(offset)..<Int(offset) + Int(length)
                switch type {
                case 0: req.data = Array(content[range])
                case 1: content.replaceSubrange(range, with: payload)
                case 4, 6: for i in range { content[i] = 0 }
                default: break
                }
            }
            expectations.append(.request(req))
        }
    }

    /// proto.md's rules for a request on `export` (server-side limits as advertised).
    static func valid(_ e: FuzzExport, flags: UInt16, type: UInt16, offset: UInt64, length: UInt32) -> Bool {
        guard [0, 1, 3, 4, 6].contains(type) else { return false }
        let allowed: UInt16 = type == 6 ? 3 : 1
        if flags & ~allowed != 0 { return false }
        if type == 3 { return offset == 0 && length == 0 }
        if e.readOnly && type != 0 { return false }
        if (type == 4 && !e.canTrim) || (type == 6 && !e.canWriteZeroes) { return false }
        if length == 0 { return false }
        let (end, o) = offset.addingReportingOverflow(UInt64(length))
        if o || end > e.sizeBytes { return false }
        let m = UInt64(e.minimumBlockSize)
        if offset % m != 0 || UInt64(length) % m != 0 { return false }
        if type == 0 && length > e.maximumRequestSize { return false }
        return true
    }
}

/// Runs one session: `stream` is everything the client sends after the greeting, fed in
/// pieces of `chunk` bytes (0: all at once).
private func runSession(_ nbd: FuzzNBD, stream raw: [UInt8], chunk: Int) throws(FuzzFailure) {
    FuzzNBD.lock.lock()
    defer { FuzzNBD.lock.unlock() }
    var model = ClientModel(nbd: nbd, stream: raw)
    model.run()
    let stream = model.stream
    for e in nbd.exports { e.reset() }

    let channel = EmbeddedChannel()
    var output: [UInt8] = []
    func collect() throws(FuzzFailure) {
        do {
            while let b = try channel.readOutbound(as: ByteBuffer.self) { output += b.readableBytesView }
        } catch { throw FuzzFailure("outbound: \(error)") }
    }
    do {
        try nbd.server.addConnectionHandlers(to: channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 10809)).wait()
    } catch { throw FuzzFailure("cannot set up the channel: \(error)") }
    var fed = 0
    // At most 256 pieces: each costs a pass of the event loop, and a run must stay fast.
    let step = chunk > 0 ? max(chunk, stream.count / 256) : max(stream.count, 1)
    while fed < stream.count && channel.isActive {
        let n = min(step, stream.count - fed)
        var buf = channel.allocator.buffer(capacity: n)
        buf.writeBytes(stream[fed..<fed + n])
        fed += n
        do { try channel.writeInbound(buf) } catch { throw FuzzFailure("writeInbound: \(error)") }
        for _ in 0..<3 { channel.embeddedEventLoop.run() }
        try collect()
    }
    for _ in 0..<3 { channel.embeddedEventLoop.run() }
    try collect()
    let stillOpen = channel.isActive
    // The client goes away; nothing may be sent after that, and nothing may stay attached.
    _ = try? channel.close().wait()
    channel.embeddedEventLoop.run()
    let before = output.count
    try collect()
    try check(output.count == before, "the server wrote after the client closed")
    _ = try? channel.finish(acceptAlreadyClosed: true)
    for e in nbd.exports {
        try check(nbd.server.openConnections(toExport: e.name) == 0, "a closed connection is still attached to \(e.name)")
    }
    try verify(output: output, model: model, stillOpen: stillOpen)
}

/// Checks the server's bytes against the model's expectations.
private func verify(output: [UInt8], model: ClientModel, stillOpen: Bool) throws(FuzzFailure) {
    var r = Reader(b: output, at: 0)
    try check(r.u(UInt64.self) == W.nbdMagic && r.u(UInt64.self) == W.optMagic && r.u(UInt16.self) == 3, "bad greeting")
    var pending: [UInt64: Request] = [:]
    var expectClose = false
    var export: FuzzExport?
    for e in model.expectations {
        switch e {
        case .close:
            expectClose = true
        case .exportName(let ex, let zeroes):
            try check(r.u(UInt64.self) == ex.sizeBytes, "EXPORT_NAME reply: wrong size")
            guard let flags = r.u(UInt16.self) else { throw FuzzFailure("EXPORT_NAME reply: short") }
            try checkTransmissionFlags(flags, ex)
            if zeroes { try check(r.bytes(124) == [UInt8](repeating: 0, count: 124), "EXPORT_NAME reply: no zero padding") }
            export = ex
        case .option(let option, let final, let intermediate, let next, let ex):
            while true {
                guard let magic = r.u(UInt64.self), let o = r.u(UInt32.self), let type = r.u(UInt32.self),
                      let len = r.u(UInt32.self), let payload = r.bytes(Int(len)) else {
                    throw FuzzFailure("option \(option): reply missing or truncated")
                }
                try check(magic == W.optReplyMagic, "option \(option): bad reply magic")
                try check(o == option, "option \(option): reply names option \(o)")
                if type == final { break }
                try check(intermediate.contains(type), "option \(option): reply type 0x\(String(type, radix: 16)), expected 0x\(String(final, radix: 16))")
                if type == W.repInfo, let ex { try checkInfo(payload, ex) }
                if type == W.repServer {
                    var p = Reader(b: payload, at: 0)
                    guard let n = p.u(UInt32.self), UInt64(n) <= UInt64(p.remaining) else {
                        throw FuzzFailure("NBD_REP_SERVER: bad name length")
                    }
                }
            }
            switch next {
            case .options: break
            case .closed: expectClose = true
            case .transmission: export = ex
            }
        case .request(let req):
            pending[req.cookie] = req
        }
        if expectClose { break }
    }
    _ = export
    // Transmission replies, in any order.
    while r.remaining > 0 {
        guard let magic = r.u(UInt32.self) else { throw FuzzFailure("truncated reply") }
        if magic == W.simpleMagic {
            guard let error = r.u(UInt32.self), let cookie = r.u(UInt64.self) else { throw FuzzFailure("truncated simple reply") }
            guard let req = pending.removeValue(forKey: cookie) else { throw FuzzFailure("simple reply for unknown cookie \(cookie)") }
            try check((error == 0) == req.ok, "request \(req) answered with error \(error)")
            if req.type == 0 && error == 0 {
                try check(!model.structured, "simple reply to a READ after structured replies were negotiated")
                guard let data = r.bytes(Int(req.length)) else { throw FuzzFailure("READ reply: data truncated") }
                try check(data == req.data, "READ returned the wrong data: \(req)")
            }
        } else if magic == W.structuredMagic {
            try check(model.structured, "structured reply without NBD_OPT_STRUCTURED_REPLY")
            guard let flags = r.u(UInt16.self), let type = r.u(UInt16.self), let cookie = r.u(UInt64.self),
                  let len = r.u(UInt32.self), let payload = r.bytes(Int(len)) else { throw FuzzFailure("truncated structured reply") }
            guard let req = pending.removeValue(forKey: cookie) else { throw FuzzFailure("structured reply for unknown cookie \(cookie)") }
            try check(flags == 1, "structured reply flags \(flags) (one chunk, done)")
            var p = Reader(b: payload, at: 0)
            if type == 1 {
                try check(req.ok && req.type == 0, "OFFSET_DATA chunk for \(req)")
                try check(p.u(UInt64.self) == req.offset, "OFFSET_DATA: wrong offset")
                try check(Array(payload.dropFirst(8)) == req.data, "READ returned the wrong data: \(req)")
            } else if type == 0x8001 {
                try check(!req.ok, "error chunk for a valid request \(req)")
                guard let error = p.u(UInt32.self), let n = p.u(UInt16.self) else { throw FuzzFailure("short error chunk") }
                try check(error != 0 && Int(n) == p.remaining, "error chunk: code \(error), message length \(n) of \(p.remaining)")
            } else {
                throw FuzzFailure("structured reply type \(type)")
            }
        } else {
            throw FuzzFailure("reply magic 0x\(String(magic, radix: 16))")
        }
    }
    try check(stillOpen == !expectClose, stillOpen ? "the connection stayed open where the protocol ends it"
                                                   : "the server closed the connection")
    if stillOpen {
        try check(pending.isEmpty, "\(pending.count) requests got no reply: \(pending.values.map { "\($0)" })")
    }
}

private func checkTransmissionFlags(_ flags: UInt16, _ e: FuzzExport) throws(FuzzFailure) {
    try check(flags & 1 != 0, "transmission flags without HAS_FLAGS")
    try check((flags & 2 != 0) == e.readOnly, "READ_ONLY flag does not match the export")
}

private func checkInfo(_ payload: [UInt8], _ e: FuzzExport) throws(FuzzFailure) {
    var p = Reader(b: payload, at: 0)
    guard let type = p.u(UInt16.self) else { throw FuzzFailure("empty NBD_REP_INFO") }
    switch type {
    case 0:
        try check(payload.count == 12 && p.u(UInt64.self) == e.sizeBytes, "NBD_INFO_EXPORT malformed")
        try checkTransmissionFlags(p.u(UInt16.self)!, e)
    case 1:
        try check(Array(payload.dropFirst(2)) == Array(e.name.utf8), "NBD_INFO_NAME wrong")
    case 2:
        try check(Array(payload.dropFirst(2)) == Array(e.exportDescription.utf8), "NBD_INFO_DESCRIPTION wrong")
    case 3:
        guard payload.count == 14, let mn = p.u(UInt32.self), let pref = p.u(UInt32.self), let mx = p.u(UInt32.self) else {
            throw FuzzFailure("NBD_INFO_BLOCK_SIZE malformed")
        }
        try check(mn == e.minimumBlockSize && pref == e.preferredBlockSize && mx == e.maximumRequestSize,
                  "NBD_INFO_BLOCK_SIZE values")
    default:
        throw FuzzFailure("unknown NBD_INFO type \(type)")
    }
}

/// NBD handshake: byte 0 picks the server (bit 0: two exports) and byte 1 the piece size the
/// bytes arrive in; the rest is what the client sends after the greeting (client flags,
/// options, and transmission requests once an export is open).
@Sendable public func fuzzNBDHandshake(_ data: Data) throws(FuzzFailure) {
    guard data.count >= 2 else { return }
    let b = [UInt8](data)
    try runSession(b[0] & 1 != 0 ? FuzzNBD.pair : FuzzNBD.single, stream: Array(b[2...]), chunk: Int(b[1]))
}

/// NBD transmission: byte 0 holds flags (bit 0: structured replies, bit 1: open with
/// NBD_OPT_EXPORT_NAME instead of NBD_OPT_GO, bit 2: the read-only export, bit 3: no zero
/// padding), byte 1 the piece size; the harness performs the handshake, the rest of the input
/// is the request stream.
@Sendable public func fuzzNBDTransmission(_ data: Data) throws(FuzzFailure) {
    guard data.count >= 2 else { return }
    let b = [UInt8](data)
    let flags = b[0]
    let name = Array((flags & 4 != 0 ? "ro" : "disk").utf8)
    var s: [UInt8] = []
    func u32(_ v: UInt32) { for i in (0..<4).reversed() { s.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    func u64(_ v: UInt64) { for i in (0..<8).reversed() { s.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    u32(flags & 8 != 0 ? 3 : 1)
    if flags & 1 != 0 { u64(W.optMagic); u32(8); u32(0) }
    if flags & 2 != 0 {
        u64(W.optMagic); u32(1); u32(UInt32(name.count)); s += name
    } else {
        u64(W.optMagic); u32(7); u32(UInt32(6 + name.count)); u32(UInt32(name.count)); s += name; s += [0, 0]
    }
    try runSession(FuzzNBD.pair, stream: s + b[2...], chunk: Int(b[1]))
}
