import Foundation
import Logging
import MetaNBD
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOSSL

// The TLS target: a server that requires TLS (pre-shared keys), a client that asks for
// NBD_OPT_STARTTLS, then the input as the client's TLS bytes. Whatever they are, the server
// must not crash, must answer STARTTLS with one ACK and from then on send nothing but whole
// TLS records (no NBD byte in the clear after the upgrade), and must leave nothing attached
// once the client is gone.

/// A server requiring TLS with one pre-shared key, for the TLS target.
final class FuzzTLS: Sendable {
    static let lock = NIOLock()
    let server: NBDServer

    init?() {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("metactl-fuzz-tls-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("keys.psk").path
        guard (try? "alice:\(String(repeating: "5a", count: 32))\n".write(toFile: file, atomically: true, encoding: .utf8)) != nil,
              let credentials = try? NBDTLSCredentials.psk(file: file) else { return nil }
        try? FileManager.default.removeItem(at: dir)  // read once: the context holds the keys
        var c = NBDServer.Configuration()
        c.ioThreads = 0
        c.eventLoopThreads = 1
        c.maxOptionLength = 4096
        c.tls = NBDTLSSettings(mode: .require, credentials: credentials)
        let export = FuzzExport(name: "disk", description: "fuzz export", size: 64 << 10, readOnly: false,
                                minimumBlockSize: 512, features: true)
        server = NBDServer(configuration: c, exports: NBDExportRegistry([export]),
                           logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    static let shared = FuzzTLS()

    /// What a client sends before its TLS bytes: fixed newstyle without zero padding, then
    /// NBD_OPT_STARTTLS.
    static let prefix: [UInt8] = {
        var s: [UInt8] = []
        func u32(_ v: UInt32) { for i in (0..<4).reversed() { s.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        func u64(_ v: UInt64) { for i in (0..<8).reversed() { s.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        u32(3)
        u64(0x4948_4156_454f_5054); u32(5); u32(0)
        return s
    }()

    /// A real TLS ClientHello (what NIOSSL's client sends first), for the seeds.
    static func clientHello() -> [UInt8] {
        guard let ctx = try? NIOSSLContext(configuration: {
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateVerification = .none
            return c
        }()) else { return [] }
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        guard let h = try? NIOSSLClientHandler(context: ctx, serverHostname: nil),
              (try? channel.pipeline.syncOperations.addHandler(h)) != nil,
              (try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 10809)).wait()) != nil else { return [] }
        channel.embeddedEventLoop.run()
        var out: [UInt8] = []
        while let b = try? channel.readOutbound(as: ByteBuffer.self) { out += b.readableBytesView }
        return out
    }
}

/// The TLS target: byte 0 is the piece size the client's TLS bytes (the rest) are fed in.
@Sendable public func fuzzNBDTLS(_ data: Data) throws(FuzzFailure) {
    guard data.count >= 1, let tls = FuzzTLS.shared else { return }
    FuzzTLS.lock.lock()
    defer { FuzzTLS.lock.unlock() }
    let b = [UInt8](data)
    let stream = Array(b[1...])
    let channel = EmbeddedChannel()
    var output: [UInt8] = []
    func collect() throws(FuzzFailure) {
        do {
            while let o = try channel.readOutbound(as: ByteBuffer.self) { output += o.readableBytesView }
        } catch { throw FuzzFailure("outbound: \(error)") }
    }
    func feed(_ bytes: ArraySlice<UInt8>) throws(FuzzFailure) {
        var buf = channel.allocator.buffer(capacity: bytes.count)
        buf.writeBytes(bytes)
        do { try channel.writeInbound(buf) } catch { throw FuzzFailure("writeInbound: \(error)") }
        for _ in 0..<3 { channel.embeddedEventLoop.run() }
        try collect()
    }
    do {
        try tls.server.addConnectionHandlers(to: channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 10809)).wait()
    } catch { throw FuzzFailure("cannot set up the channel: \(error)") }
    channel.embeddedEventLoop.run()
    try feed(ArraySlice(FuzzTLS.prefix))
    // The greeting (magic, IHAVEOPT, flags), then the ACK of STARTTLS (reply magic, option 5,
    // NBD_REP_ACK, no data).
    let ack: [UInt8] = [0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0]
    guard output.count >= 18 + ack.count, Array(output[18..<18 + ack.count]) == ack else {
        throw FuzzFailure("STARTTLS was not answered with one ACK: \(output.prefix(64).map { String(format: "%02x", $0) }.joined())")
    }
    let clear = 18 + ack.count
    let step = max(1, Int(b[0]), stream.count / 256)
    var fed = 0
    while fed < stream.count && channel.isActive {
        let n = min(step, stream.count - fed)
        try feed(stream[fed..<fed + n])
        fed += n
    }
    for _ in 0..<3 { channel.embeddedEventLoop.run() }
    try collect()
    _ = try? channel.close().wait()
    channel.embeddedEventLoop.run()
    let before = output.count
    try collect()
    if output.count != before { throw FuzzFailure("the server wrote after the client closed") }
    _ = try? channel.finish(acceptAlreadyClosed: true)
    if tls.server.openConnections(toExport: "disk") != 0 { throw FuzzFailure("a closed connection is still attached") }
    // After the ACK: whole TLS records only (content type 20–24, version 3.x, a legal length).
    var at = clear
    while at < output.count {
        guard output.count - at >= 5 else { throw FuzzFailure("a partial TLS record header after STARTTLS at byte \(at)") }
        let type = output[at], major = output[at + 1]
        let length = Int(output[at + 3]) << 8 | Int(output[at + 4])
        guard (20...24).contains(type), major == 3, length <= 16384 + 2048 else {
            throw FuzzFailure("bytes that are not a TLS record after STARTTLS at byte \(at): type \(type), version \(major), length \(length)")
        }
        guard output.count - at - 5 >= length else { throw FuzzFailure("a TLS record cut short after STARTTLS at byte \(at)") }
        at += 5 + length
    }
}
