import Foundation
import Synchronization
import Logging
import MetaCommands
import MetaEngine
import MetaNBD
import NIOCore
import NIOEmbedded

/// The NBD layer in the simulation: some client requests go through the real server code
/// (``NBDServer``'s connection handler, on an `EmbeddedChannel`, with the export's I/O run
/// inline) and the real export of a volume (`VolumeExport`), as `metactl serve` answers them.
/// What it adds to the check: the bytes and the status a client sees are the engine's,
/// through the protocol's framing, flags (FUA) and error mapping.
enum SimNBD {
    /// One server for the process (its I/O runs inline, so it starts no I/O threads); each
    /// simulation registers its volume under a name of its own.
    static let server: NBDServer = {
        var c = NBDServer.Configuration()
        c.ioThreads = 0
        c.eventLoopThreads = 1
        return NBDServer(configuration: c, exports: NBDExportRegistry(),
                         logger: Logger(label: "metactl.sim.nbd", factory: { _ in SwiftLogNoOpLogHandler() }))
    }()
    private static let counter = Mutex(0)
    static func uniqueName() -> String { counter.withLock { $0 += 1; return "sim-\($0)" } }
}

/// Wire constants of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), client side.
private enum Wire {
    static let nbdMagic: UInt64 = 0x4e42_444d_4147_4943
    static let optMagic: UInt64 = 0x4948_4156_454f_5054
    static let requestMagic: UInt32 = 0x2560_9513
    static let simpleReplyMagic: UInt32 = 0x6744_6698
    static let optExportName: UInt32 = 1
    static let clientFlags: UInt32 = 1 | 2  // fixed newstyle, no zeroes
}

/// NBD command types the simulation sends.
enum SimNBDCommand: UInt16 {
    case read = 0, write = 1, flush = 3, trim = 4, writeZeroes = 6
}

/// One client connection to a volume's export, for one request: handshake
/// (`NBD_OPT_EXPORT_NAME`, simple replies), the request, its reply, disconnect.
struct SimNBDClient {
    /// What went wrong below the request (a broken protocol exchange: always a violation).
    struct ProtocolFailure: Error, CustomStringConvertible { var description: String }

    /// Sends one request for `volume` and returns the reply's error (0: success) and, for a
    /// successful read, the data.
    static func request(_ volume: Volume, _ cmd: SimNBDCommand, fua: Bool = false, offset: UInt64, length: UInt32,
                        payload: UnsafeRawBufferPointer? = nil) throws(ProtocolFailure) -> (error: UInt32, data: [UInt8]) {
        let name = SimNBD.uniqueName()
        let registry = SimNBD.server.exports
        registry.add(VolumeExport(volume: volume, readOnly: false, description: "simulated \(volume.name)", name: name))
        defer { registry.remove(named: name) }
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        var out: [UInt8] = []
        func pump() throws(ProtocolFailure) {
            for _ in 0..<3 { channel.embeddedEventLoop.run() }
            do {
                while let b = try channel.readOutbound(as: ByteBuffer.self) { out += b.readableBytesView }
            } catch { throw ProtocolFailure(description: "reading what the server sent: \(error)") }
        }
        func send(_ bytes: [UInt8]) throws(ProtocolFailure) {
            var b = channel.allocator.buffer(capacity: bytes.count)
            b.writeBytes(bytes)
            do { try channel.writeInbound(b) } catch { throw ProtocolFailure(description: "sending to the server: \(error)") }
            try pump()
        }
        func take(_ n: Int) throws(ProtocolFailure) -> [UInt8] {
            guard out.count >= n else { throw ProtocolFailure(description: "the server sent \(out.count) bytes where \(n) were due") }
            defer { out.removeFirst(n) }
            return Array(out[0..<n])
        }
        do {
            try SimNBD.server.addConnectionHandlers(to: channel)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 10809)).wait()
        } catch { throw ProtocolFailure(description: "cannot set up the channel: \(error)") }
        try pump()
        let greeting = try take(18)
        guard be(greeting, 0, 8) == Wire.nbdMagic, be(greeting, 8, 8) == Wire.optMagic else {
            throw ProtocolFailure(description: "bad greeting \(greeting)")
        }
        var hello: [UInt8] = []
        put(&hello, UInt64(Wire.clientFlags), 4)
        put(&hello, Wire.optMagic, 8)
        put(&hello, UInt64(Wire.optExportName), 4)
        put(&hello, UInt64(name.utf8.count), 4)
        hello += Array(name.utf8)
        try send(hello)
        let export = try take(10)
        guard be(export, 0, 8) == volume.sizeBytes else {
            throw ProtocolFailure(description: "export size \(be(export, 0, 8)), volume size \(volume.sizeBytes)")
        }
        var req: [UInt8] = []
        let cookie: UInt64 = 0x5349_4d00_0000_0001
        put(&req, UInt64(Wire.requestMagic), 4)
        put(&req, fua ? 1 : 0, 2)
        put(&req, UInt64(cmd.rawValue), 2)
        put(&req, cookie, 8)
        put(&req, offset, 8)
        put(&req, UInt64(length), 4)
        if let payload { req += payload }
        try send(req)
        let head = try take(16)
        guard be(head, 0, 4) == UInt64(Wire.simpleReplyMagic), be(head, 8, 8) == cookie else {
            throw ProtocolFailure(description: "bad reply header \(head) for cookie \(cookie)")
        }
        let error = UInt32(be(head, 4, 4))
        let data = cmd == .read && error == 0 ? try take(Int(length)) : []
        guard out.isEmpty else { throw ProtocolFailure(description: "\(out.count) bytes more than the reply") }
        var disc: [UInt8] = []
        put(&disc, UInt64(Wire.requestMagic), 4)
        put(&disc, 0, 2)
        put(&disc, 2, 2)
        put(&disc, cookie &+ 1, 8)
        put(&disc, 0, 8)
        put(&disc, 0, 4)
        try send(disc)
        return (error, data)
    }

    private static func be(_ b: [UInt8], _ at: Int, _ n: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<n { v = v << 8 | UInt64(b[at + i]) }
        return v
    }
    private static func put(_ b: inout [UInt8], _ v: UInt64, _ n: Int) {
        for i in (0..<n).reversed() { b.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}

/// Client requests of the simulation: on the engine's API, or (one in five, when aligned to
/// the volume's sector, as an NBD client must send them) through the NBD layer.
extension Simulation {
    private func throughNBD(_ e: Volume, offset: UInt64, length: Int) -> Bool {
        let s = UInt64(e.sectorSize)
        return offset % s == 0 && UInt64(length) % s == 0 && rng.below(5) == 0
    }

    private func nbd(_ e: Volume, _ cmd: SimNBDCommand, fua: Bool = false, offset: UInt64, length: Int,
                     payload: UnsafeRawBufferPointer? = nil) throws(VolumeIOError) -> [UInt8] {
        count("nbd-\(cmd)")
        let reply: (error: UInt32, data: [UInt8])
        do {
            reply = try SimNBDClient.request(e, cmd, fua: fua, offset: offset, length: UInt32(length), payload: payload)
        } catch {
            violation("NBD \(cmd) at \(offset) (\(length) bytes): \(error)")
            throw VolumeIOError(volume: e.name, code: .io, operation: "nbd \(cmd)", detail: "\(error)")
        }
        guard reply.error == 0 else {
            let code: VolumeIOError.Code = switch reply.error {
            case 22: .invalid
            case 28: .noSpace
            case 1: .readOnly
            default: .io
            }
            throw VolumeIOError(volume: e.name, code: code, operation: "nbd \(cmd)", detail: "NBD error \(reply.error)")
        }
        return reply.data
    }

    func ioRead(_ e: Volume, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(VolumeIOError) {
        let (e, offset) = throughSoftPartition(e, offset: offset, length: UInt64(buffer.count))
        guard throughNBD(e, offset: offset, length: buffer.count) else { try e.read(offset: offset, into: buffer); return }
        let data = try nbd(e, .read, offset: offset, length: buffer.count)
        buffer.copyBytes(from: data)
    }

    func ioWrite(_ e: Volume, offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool) throws(VolumeIOError) {
        let (e, offset) = throughSoftPartition(e, offset: offset, length: UInt64(buffer.count))
        guard throughNBD(e, offset: offset, length: buffer.count) else { try e.write(offset: offset, from: buffer, fua: fua); return }
        _ = try nbd(e, .write, fua: fua, offset: offset, length: buffer.count, payload: buffer)
    }

    func ioWriteZeroes(_ e: Volume, offset: UInt64, length: UInt64, fua: Bool) throws(VolumeIOError) {
        let (e, offset) = throughSoftPartition(e, offset: offset, length: length)
        guard throughNBD(e, offset: offset, length: Int(length)) else { try e.writeZeroes(offset: offset, length: length, fua: fua); return }
        _ = try nbd(e, .writeZeroes, fua: fua, offset: offset, length: Int(length))
    }

    func ioTrim(_ e: Volume, offset: UInt64, length: UInt64) throws(VolumeIOError) {
        let (e, offset) = throughSoftPartition(e, offset: offset, length: length)
        guard throughNBD(e, offset: offset, length: Int(length)) else { try e.discard(offset: offset, length: length); return }
        _ = try nbd(e, .trim, offset: offset, length: Int(length))
    }

    func ioFlush(_ e: Volume) throws(VolumeIOError) {
        guard rng.below(5) == 0 else { try e.flush(); return }
        _ = try nbd(e, .flush, offset: 0, length: 0)
    }
}
