import Foundation
import Logging
@testable import MetaNBD
import MetaTestSupport
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

private let optExportName: UInt32 = 1
private let optAbort: UInt32 = 2
private let optList: UInt32 = 3
private let optStartTLS: UInt32 = 5
private let optInfo: UInt32 = 6
private let optGo: UInt32 = 7
private let optStructuredReply: UInt32 = 8
private let repAck: UInt32 = 1
private let repServer: UInt32 = 2
private let errPolicy: UInt32 = 0x8000_0002
private let errInvalid: UInt32 = 0x8000_0003
private let errTLSReqd: UInt32 = 0x8000_0005

/// A reply to one option, as parsed from the server's bytes.
private struct OptionReply: Equatable {
    var option: UInt32
    var type: UInt32
    var data: [UInt8]
}

/// The server's connection handler on an `EmbeddedChannel`, spoken to byte by byte.
private final class EmbeddedNBD {
    let channel = EmbeddedChannel()
    let server: NBDServer
    var received: [UInt8] = []

    init(mode: NBDTLSMode?, credentials: NBDTLSCredentials?, exports: [any NBDExport]) throws {
        var config = NBDServer.Configuration()
        config.ioThreads = 0
        config.eventLoopThreads = 1
        if let mode, let credentials { config.tls = NBDTLSSettings(mode: mode, credentials: credentials) }
        var logger = Logger(label: "metactl.nbd.tls-test")
        logger.logLevel = ProcessInfo.processInfo.environment["NBD_TEST_LOG"] == "1" ? .debug : .critical
        server = NBDServer(configuration: config, exports: NBDExportRegistry(exports), logger: logger)
        try server.addConnectionHandlers(to: channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 10809)).wait()
    }

    /// Closes without `finish()`: a TLS handler waits for the peer's close_notify up to its
    /// shutdown timeout, which only passes when the embedded clock is advanced.
    deinit { closeEmbedded(channel) }

    func send(_ bytes: [UInt8]) throws {
        var b = channel.allocator.buffer(capacity: bytes.count)
        b.writeBytes(bytes)
        try channel.writeInbound(b)
        channel.embeddedEventLoop.run()
        try collect()
    }

    func collect() throws {
        while let b = try channel.readOutbound(as: ByteBuffer.self) { received += b.readableBytesView }
    }

    func take(_ n: Int) throws -> [UInt8] {
        try collect()
        guard received.count >= n else { throw NBDTestError("wanted \(n) bytes from the server, have \(received.count)") }
        defer { received.removeFirst(n) }
        return Array(received[0..<n])
    }

    /// Greeting, then the client flags (FIXED_NEWSTYLE | NO_ZEROES).
    func handshake() throws {
        let greeting = try take(18)
        #expect(be64(greeting, 0) == 0x4e42_444d_4147_4943)
        try send([0, 0, 0, 3])
    }

    func readReply() throws -> OptionReply {
        let h = try take(20)
        let length = Int(be32(h, 16))
        return OptionReply(option: be32(h, 8), type: be32(h, 12), data: try take(length))
    }
}

private func closeEmbedded(_ channel: EmbeddedChannel) {
    channel.close(promise: nil)
    channel.embeddedEventLoop.advanceTime(by: .seconds(60))
    channel.embeddedEventLoop.run()
}

/// An option request on the wire.
private func option(_ code: UInt32, _ data: [UInt8] = []) -> [UInt8] {
    var b: [UInt8] = []
    for shift in stride(from: 56, through: 0, by: -8) { b.append(UInt8(truncatingIfNeeded: UInt64(0x4948_4156_454f_5054) >> UInt64(shift))) }
    for v in [code, UInt32(data.count)] {
        for shift in stride(from: 24, through: 0, by: -8) { b.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }
    return b + data
}

private func goData(_ name: String) -> [UInt8] {
    let n = Array(name.utf8)
    var b: [UInt8] = [UInt8(n.count >> 24 & 0xff), UInt8(n.count >> 16 & 0xff), UInt8(n.count >> 8 & 0xff), UInt8(n.count & 0xff)]
    b += n
    b += [0, 0]
    return b
}

/// A small in-memory export.
private final class TinyExport: NBDExport, @unchecked Sendable {
    let name: String
    let exportDescription = "tiny"
    let sizeBytes: UInt64 = 1 << 16
    let readOnly = false
    let minimumBlockSize: UInt32 = 512
    let preferredBlockSize: UInt32 = 4096
    let maximumRequestSize: UInt32 = 1 << 16
    let canTrim = false
    let canWriteZeroes = false
    let canMultiConn = true
    var bytes = [UInt8](repeating: 0x5a, count: 1 << 16)
    init(name: String) { self.name = name }
    func read(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(NBDIOError) {
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
    }
    func write(offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool) throws(NBDIOError) {
        bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count]).copyMemory(from: buffer) }
    }
    func flush() throws(NBDIOError) {}
    func trim(offset: UInt64, length: UInt64, fua: Bool) throws(NBDIOError) { throw .notSupported() }
    func writeZeroes(offset: UInt64, length: UInt64, fua: Bool, noHole: Bool) throws(NBDIOError) { throw .notSupported() }
}

/// A PSK file with one user and its key; returns the credentials and the key.
private func pskCredentials(_ dir: TempDir, user: String = "alice") throws -> (NBDTLSCredentials, [UInt8]) {
    let key: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
    let hex = key.map { String(format: "%02x", $0) }.joined()
    let path = dir.file("keys.psk")
    try "\(user):\(hex)\n".write(toFile: path, atomically: true, encoding: .utf8)
    return (try NBDTLSCredentials.psk(file: path), key)
}

/// STARTTLS and the TLS modes, on the real connection handler driven through an `EmbeddedChannel`.
@Suite struct NBDTLSProtocolTests {
    @Test func requireRefusesEveryOptionButStartTLSAndAbort() throws {
        let dir = try TempDir(prefix: "nbd-tls-req")
        let (creds, _) = try pskCredentials(dir)
        let c = try EmbeddedNBD(mode: .require, credentials: creds, exports: [TinyExport(name: "vol")])
        try c.handshake()
        for (code, data) in [(optList, []), (optInfo, goData("vol")), (optGo, goData("vol")), (optStructuredReply, []),
                             (UInt32(4242), [1, 2])] as [(UInt32, [UInt8])] {
            try c.send(option(code, data))
            let r = try c.readReply()
            #expect(r.option == code)
            #expect(r.type == errTLSReqd, "option \(code)")
            #expect(String(decoding: r.data, as: UTF8.self).contains("TLS"))
        }
        #expect(c.channel.isActive)
        // NBD_OPT_EXPORT_NAME cannot be refused with an error: the server hangs up.
        try c.send(option(optExportName, Array("vol".utf8)))
        c.channel.embeddedEventLoop.run()
        #expect(!c.channel.isActive)
        #expect(try c.take(c.received.count).isEmpty)  // and sent no export data
    }

    @Test func requireStillAnswersAbort() throws {
        let dir = try TempDir(prefix: "nbd-tls-abort")
        let (creds, _) = try pskCredentials(dir)
        let c = try EmbeddedNBD(mode: .require, credentials: creds, exports: [TinyExport(name: "vol")])
        try c.handshake()
        try c.send(option(optAbort))
        #expect(try c.readReply().type == repAck)
        c.channel.embeddedEventLoop.run()
        #expect(!c.channel.isActive)
    }

    @Test func offRefusesStartTLSWithPolicy() throws {
        let c = try EmbeddedNBD(mode: nil, credentials: nil, exports: [TinyExport(name: "vol")])
        try c.handshake()
        try c.send(option(optStartTLS))
        let r = try c.readReply()
        #expect(r.type == errPolicy)
        try c.send(option(optList))
        #expect(try c.readReply().type == repServer)
        #expect(try c.readReply().type == repAck)
    }

    @Test func allowServesPlainClients() throws {
        let dir = try TempDir(prefix: "nbd-tls-allow")
        let (creds, _) = try pskCredentials(dir)
        let c = try EmbeddedNBD(mode: .allow, credentials: creds, exports: [TinyExport(name: "vol")])
        try c.handshake()
        try c.send(option(optList))
        #expect(try c.readReply().type == repServer)
        #expect(try c.readReply().type == repAck)
        #expect(c.channel.isActive)
    }

    @Test func startTLSWithDataIsInvalidAndBytesAfterItCloseTheConnection() throws {
        let dir = try TempDir(prefix: "nbd-tls-bad")
        let (creds, _) = try pskCredentials(dir)
        let c = try EmbeddedNBD(mode: .require, credentials: creds, exports: [TinyExport(name: "vol")])
        try c.handshake()
        try c.send(option(optStartTLS, [1]))
        #expect(try c.readReply().type == errInvalid)
        // A client that does not wait for the ACK before sending more is broken: the ACK, then a hang-up.
        try c.send(option(optStartTLS) + option(optList))
        #expect(try c.readReply().type == repAck)
        c.channel.embeddedEventLoop.run()
        #expect(!c.channel.isActive)
    }

    /// ACK in plaintext, then a TLS server handler in front of the codec; a PSK client on a second
    /// embedded channel completes the handshake, and option haggling goes on inside TLS.
    @Test(arguments: [NBDTLSMode.require, .allow])
    func startTLSSwitchesToTLSAndHagglingContinues(mode: NBDTLSMode) throws {
        let dir = try TempDir(prefix: "nbd-tls-switch")
        let (creds, key) = try pskCredentials(dir)
        let c = try EmbeddedNBD(mode: mode, credentials: creds, exports: [TinyExport(name: "vol")])
        try c.handshake()
        #expect((try? c.channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) == nil)
        try c.send(option(optStartTLS))
        let ack = try c.readReply()
        #expect(ack == OptionReply(option: optStartTLS, type: repAck, data: []))
        #expect(c.received.isEmpty)
        #expect((try? c.channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) != nil)

        // The client side of TLS, with the same key.
        var config = TLSConfiguration.makePreSharedKeyConfiguration()
        config.maximumTLSVersion = .tlsv12
        config.cipherSuites = NBDTLSCredentials.pskCipherSuites
        config.pskClientProvider = { _ in
            var b = NIOSSLSecureBytes()
            b.append(contentsOf: key)
            return PSKClientIdentityResponse(key: b, identity: "alice")
        }
        let client = EmbeddedChannel()
        defer { closeEmbedded(client) }
        let sslContext = try NIOSSLContext(configuration: config)
        try client.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: nil))
        var plain: [UInt8] = []
        func shuttle() throws {
            for _ in 0..<20 {
                var moved = false
                while let b = try client.readOutbound(as: ByteBuffer.self) {
                    try c.channel.writeInbound(b); moved = true
                }
                c.channel.embeddedEventLoop.run()
                while let b = try c.channel.readOutbound(as: ByteBuffer.self) {
                    try client.writeInbound(b); moved = true
                }
                client.embeddedEventLoop.run()
                while let b = try client.readInbound(as: ByteBuffer.self) { plain += b.readableBytesView }
                if !moved { break }
            }
        }
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 10809)).wait()
        try shuttle()
        let handler = try c.channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        #expect(handler.tlsVersion == .tlsv12)

        func clientSend(_ bytes: [UInt8]) throws {
            var b = client.allocator.buffer(capacity: bytes.count)
            b.writeBytes(bytes)
            client.writeAndFlush(b, promise: nil)
            try shuttle()
        }
        func clientReply() throws -> OptionReply {
            guard plain.count >= 20 else { throw NBDTestError("no reply through TLS (\(plain.count) bytes)") }
            let length = Int(be32(plain, 16))
            let r = OptionReply(option: be32(plain, 8), type: be32(plain, 12), data: Array(plain[20..<20 + length]))
            plain.removeFirst(20 + length)
            return r
        }
        // Inside TLS: LIST works, a second STARTTLS is invalid, GO enters transmission.
        try clientSend(option(optList))
        #expect(try clientReply().type == repServer)
        #expect(try clientReply().type == repAck)
        try clientSend(option(optStartTLS))
        #expect(try clientReply().type == errInvalid)
        try clientSend(option(optGo, goData("vol")))
        var last = try clientReply()
        while last.type != repAck && last.type & 0x8000_0000 == 0 { last = try clientReply() }
        #expect(last.type == repAck)
        // A READ of 512 bytes through TLS (simple reply: structured replies were not negotiated).
        var req: [UInt8] = [0x25, 0x60, 0x95, 0x13, 0, 0, 0, 0]
        req += [0, 0, 0, 0, 0, 0, 0, 7]              // cookie
        req += [0, 0, 0, 0, 0, 0, 2, 0]              // offset 512
        req += [0, 0, 2, 0]                          // length 512
        try clientSend(req)
        #expect(plain.count == 16 + 512)
        #expect(be32(plain, 0) == 0x6744_6698 && be32(plain, 4) == 0)
        #expect(plain[16...].allSatisfy { $0 == 0x5a })
    }

    @Test func wrongPSKFailsTheHandshakeAndClosesTheConnection() throws {
        let dir = try TempDir(prefix: "nbd-tls-wrong")
        let (creds, key) = try pskCredentials(dir)
        let c = try EmbeddedNBD(mode: .require, credentials: creds, exports: [TinyExport(name: "vol")])
        try c.handshake()
        try c.send(option(optStartTLS))
        #expect(try c.readReply().type == repAck)
        var config = TLSConfiguration.makePreSharedKeyConfiguration()
        config.maximumTLSVersion = .tlsv12
        config.cipherSuites = NBDTLSCredentials.pskCipherSuites
        let wrong = key.map { $0 ^ 0xff }
        config.pskClientProvider = { _ in
            var b = NIOSSLSecureBytes()
            b.append(contentsOf: wrong)
            return PSKClientIdentityResponse(key: b, identity: "alice")
        }
        let client = EmbeddedChannel()
        defer { closeEmbedded(client) }
        try client.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: try NIOSSLContext(configuration: config),
                                                                              serverHostname: nil))
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 10809)).wait()
        for _ in 0..<20 {
            while let b = try? client.readOutbound(as: ByteBuffer.self) { _ = try? c.channel.writeInbound(b) }
            c.channel.embeddedEventLoop.run()
            while let b = try? c.channel.readOutbound(as: ByteBuffer.self) { _ = try? client.writeInbound(b) }
            client.embeddedEventLoop.run()
            if !c.channel.isActive { break }
        }
        #expect(!c.channel.isActive)
    }
}

/// Parsing of psktool files and loading of certificate directories: every mistake is one line.
@Suite struct NBDTLSCredentialTests {
    @Test func pskFileParsing() throws {
        let keys = try NBDTLSCredentials.parsePSK("# comment\nalice:00ff10\n\nbob:ABCDEF12\n", file: "f")
        #expect(keys == ["alice": [0x00, 0xff, 0x10], "bob": [0xab, 0xcd, 0xef, 0x12]])
        let bad: [(String, String)] = [
            ("alice", "line 1: expected USERNAME:HEXKEY"),
            ("alice:abc\n", "line 1: the key of 'alice' is not an even number of hex digits"),
            ("alice:zz\n", "not an even number of hex digits"),
            (":0011\n", "line 1: empty user name"),
            ("a:00\na:11\n", "line 2: user 'a' appears twice"),
            ("\n# nothing\n", "no USERNAME:HEXKEY line"),
            ("alice:\n", "the key of 'alice'"),
        ]
        for (text, message) in bad {
            #expect {
                _ = try NBDTLSCredentials.parsePSK(text, file: "f")
            } throws: { error in
                "\(error)".contains(message) && !"\(error)".contains("\n")
            }
        }
    }

    @Test func unreadableOrMalformedFilesAreOneLineErrors() throws {
        let dir = try TempDir(prefix: "nbd-tls-files")
        #expect(throws: NBDTLSError.self) { try NBDTLSCredentials.psk(file: dir.file("missing.psk")) }
        try Data([0xff, 0xfe, 0x00, 0x80]).write(to: URL(fileURLWithPath: dir.file("binary.psk")))
        #expect(throws: NBDTLSError.self) { try NBDTLSCredentials.psk(file: dir.file("binary.psk")) }
        #expect(throws: NBDTLSError.self) { try NBDTLSCredentials.x509(directory: dir.file("nodir")) }
        // A directory without the files, then with garbage in them.
        #expect {
            try NBDTLSCredentials.x509(directory: dir.path)
        } throws: { "\($0)".contains("server-cert.pem: missing") }
        try "not a certificate\n".write(toFile: dir.file("server-cert.pem"), atomically: true, encoding: .utf8)
        try "not a key\n".write(toFile: dir.file("server-key.pem"), atomically: true, encoding: .utf8)
        #expect {
            try NBDTLSCredentials.x509(directory: dir.path)
        } throws: { "\($0)".contains("server-cert.pem") && !"\($0)".contains("\n") }
    }
}
