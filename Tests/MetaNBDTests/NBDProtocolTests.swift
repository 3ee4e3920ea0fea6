import Foundation
@testable import MetaNBD
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

private let EPERM_: UInt32 = 1
private let EINVAL_: UInt32 = 22
private let ENOSPC_: UInt32 = 28

private let repAck: UInt32 = 1
private let repServer: UInt32 = 2
private let repInfo: UInt32 = 3
private let errUnsup: UInt32 = 0x8000_0001
private let errPolicy: UInt32 = 0x8000_0002
private let errInvalid: UInt32 = 0x8000_0003
private let errUnknown: UInt32 = 0x8000_0006
private let errTooBig: UInt32 = 0x8000_0009

/// Protocol conformance and robustness, driven by a raw client that can misbehave on purpose.
@Suite struct NBDProtocolTests {
    /// A 1 MiB export whose first 64 KiB are known random bytes.
    private func makeExport(_ dir: TempDir, name: String = "vol", readOnly: Bool = false,
                            maximumRequestSize: UInt32 = 32 << 20) throws -> (FileExport, [UInt8]) {
        let path = try dir.image("\(name).img", size: 1 << 20)
        let head = Array(try writeRandomFile(dir.file("\(name).head"), size: 65536))
        let fd = open(path, O_WRONLY)
        _ = head.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
        close(fd)
        return (try FileExport(name: name, path: path, readOnly: readOnly, maximumRequestSize: maximumRequestSize), head)
    }

    /// Checks that a client still gets correct data (the server keeps serving).
    private func expectServing(_ client: RawNBDClient, head: [UInt8], cookie: UInt64 = 99,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try client.read(offset: 0, length: 4096, cookie: cookie)
        #expect(r.error == 0, sourceLocation: sourceLocation)
        #expect(r.cookie == cookie, sourceLocation: sourceLocation)
        #expect(r.data == Array(head[0..<4096]), sourceLocation: sourceLocation)
    }

    @Test func handshakeOptionsAndBasicCommands() async throws {
        let dir = try TempDir(prefix: "nbd-proto")
        let (export, head) = try makeExport(dir)
        try await withNBDServer(exports: [export], dir: dir) { s in
            let c = try RawNBDClient(socketPath: s.socketPath)
            #expect(try c.readGreeting() == 3)  // FIXED_NEWSTYLE | NO_ZEROES
            try c.sendClientFlags(3)

            // NBD_OPT_LIST: one server entry, then ACK.
            try c.sendOption(3)
            let entry = try c.readOptionReply()
            #expect(entry.type == repServer)
            #expect(be32(entry.data, 0) == 3 && Array(entry.data[4..<7]) == Array("vol".utf8))
            #expect(try c.readOptionReply().type == repAck)

            // NBD_OPT_INFO with the empty name (the only export) asking for name and block size.
            try c.sendOption(6, RawNBDClient.goData(name: "", infos: [1, 3]))
            var infos: [UInt16: [UInt8]] = [:]
            while true {
                let r = try c.readOptionReply()
                #expect(r.option == 6)
                if r.type == repAck { break }
                #expect(r.type == repInfo)
                infos[be16(r.data, 0)] = Array(r.data[2...])
            }
            #expect(be64(infos[0] ?? [], 0) == 1 << 20)
            let flags = be16(infos[0] ?? [], 8)
            #expect(flags & 0x1 != 0 && flags & 0x2 == 0)           // HAS_FLAGS, writable
            #expect(flags & 0x4 != 0 && flags & 0x8 != 0)           // FLUSH, FUA
            #expect(flags & 0x20 != 0 && flags & 0x40 != 0)         // TRIM, WRITE_ZEROES
            #expect(infos[1] == Array("vol".utf8))
            let bs = infos[3] ?? []
            #expect(bs.count == 12 && be32(bs, 0) == 512 && be32(bs, 4) == 4096 && be32(bs, 8) == 32 << 20)

            // Unsupported and malformed options get errors, and the handshake goes on.
            try c.sendOption(8, [1])
            #expect(try c.readOptionReply().type == errInvalid)     // STRUCTURED_REPLY with data
            try c.sendOption(5)
            #expect(try c.readOptionReply().type == errPolicy)      // STARTTLS
            try c.sendOption(4242, [1, 2, 3, 4, 5])
            #expect(try c.readOptionReply().type == errUnsup)
            try c.sendOption(3, [0])
            #expect(try c.readOptionReply().type == errInvalid)     // LIST with data
            try c.sendOption(7, enc32(100) + Array("vol".utf8) + enc16(0))
            #expect(try c.readOptionReply().type == errInvalid)     // name length beyond the option
            try c.sendOption(7, RawNBDClient.goData(name: "vol", infos: []) + [0])
            #expect(try c.readOptionReply().type == errInvalid)     // trailing garbage
            try c.sendOption(7, RawNBDClient.goData(name: "nosuch", infos: []))
            let unknown = try c.readOptionReply()
            #expect(unknown.type == errUnknown)
            #expect(String(decoding: unknown.data, as: UTF8.self).contains("nosuch"))

            // NBD_OPT_GO enters transmission.
            try c.sendOption(7, RawNBDClient.goData(name: "vol", infos: []))
            var acked = false
            while !acked { acked = try c.readOptionReply().type == repAck }
            try expectServing(c, head: head)

            let data = (0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            #expect(try c.write(offset: 65536, data: data, flags: 1).error == 0)   // FUA
            #expect(try c.read(offset: 65536, length: 8192).data == data)
            #expect(try c.command(3).error == 0)                                      // FLUSH
            #expect(try c.command(6, offset: 65536, length: 4096).error == 0)         // WRITE_ZEROES
            #expect(try c.command(6, flags: 2, offset: 69632, length: 4096).error == 0) // NO_HOLE
            #expect(try c.read(offset: 65536, length: 8192).data == [UInt8](repeating: 0, count: 8192))
            #expect(try c.command(4, offset: 0, length: 4096).error == 0)            // TRIM

            // NBD_CMD_DISC: the server closes the connection.
            try c.sendRequest(type: 2, cookie: 7, offset: 0, length: 0)
            #expect(c.waitForClose())
        }
    }

    @Test func exportNameOptionWithAndWithoutZeroes() async throws {
        let dir = try TempDir(prefix: "nbd-expname")
        let (export, head) = try makeExport(dir)
        try await withNBDServer(exports: [export], dir: dir) { s in
            let a = try RawNBDClient(socketPath: s.socketPath)
            _ = try a.readGreeting()
            try a.sendClientFlags(1)  // fixed newstyle, zeroes wanted
            try a.sendOption(1, Array("vol".utf8))
            let reply = try a.receive(134)
            #expect(be64(reply, 0) == 1 << 20)
            #expect(reply[10...].allSatisfy { $0 == 0 })
            try expectServing(a, head: head)

            let b = try RawNBDClient(socketPath: s.socketPath)
            _ = try b.readGreeting()
            try b.sendClientFlags(3)
            try b.sendOption(1, [])  // empty name: the only export
            let short = try b.receive(10)
            #expect(be64(short, 0) == 1 << 20)
            try expectServing(b, head: head)

            // An unknown name cannot be answered with an error: the server hangs up.
            let c = try RawNBDClient(socketPath: s.socketPath)
            _ = try c.readGreeting()
            try c.sendClientFlags(3)
            try c.sendOption(1, Array("nosuch".utf8))
            #expect(c.waitForClose())
            try expectServing(a, head: head)

            // NBD_OPT_ABORT is acknowledged, then the connection ends.
            let d = try RawNBDClient(socketPath: s.socketPath)
            _ = try d.readGreeting()
            try d.sendClientFlags(3)
            try d.sendOption(2)
            #expect(try d.readOptionReply().type == repAck)
            #expect(d.waitForClose())
        }
    }

    @Test func malformedHandshakesDisconnectOnlyThatClient() async throws {
        let dir = try TempDir(prefix: "nbd-badhs")
        let (export, head) = try makeExport(dir)
        try await withNBDServer(exports: [export], dir: dir) { s in
            let good = try RawNBDClient(socketPath: s.socketPath)
            try good.connect(export: "vol")

            // Unknown client flags.
            let a = try RawNBDClient(socketPath: s.socketPath)
            _ = try a.readGreeting()
            try a.sendClientFlags(0x8000_0003)
            #expect(a.waitForClose())
            try expectServing(good, head: head)

            // Bad option magic.
            let b = try RawNBDClient(socketPath: s.socketPath)
            _ = try b.readGreeting()
            try b.sendClientFlags(3)
            try b.send(enc64(0x1122_3344_5566_7788) + enc32(7) + enc32(0))
            #expect(b.waitForClose())
            try expectServing(good, head: head)

            // An absurd option length: refused (NBD_REP_ERR_TOO_BIG) without the server reading 4 GiB.
            let c = try RawNBDClient(socketPath: s.socketPath)
            _ = try c.readGreeting()
            try c.sendClientFlags(3)
            try c.sendOption(7, [0, 0, 0, 3], declaredLength: 0xFFFF_FFF0)
            let r = try c.readOptionReply()
            #expect(r.type == errTooBig)
            #expect(c.waitForClose())
            try expectServing(good, head: head)

            // Truncated handshakes: the client vanishes mid-greeting and mid-option.
            let d = try RawNBDClient(socketPath: s.socketPath)
            _ = try d.readGreeting()
            try d.send([0, 0])
            d.shutdownWrite()
            #expect(d.waitForClose())
            let e = try RawNBDClient(socketPath: s.socketPath)
            _ = try e.readGreeting()
            try e.sendClientFlags(3)
            try e.sendOption(7, Array(RawNBDClient.goData(name: "vol", infos: [])), declaredLength: 200)
            e.shutdownWrite()
            #expect(e.waitForClose())
            try expectServing(good, head: head)

            // New clients still get in.
            let f = try RawNBDClient(socketPath: s.socketPath)
            try f.connect(export: "vol")
            try expectServing(f, head: head)
        }
    }

    @Test func badRequestsGetErrorsAndTheConnectionStaysInSync() async throws {
        let dir = try TempDir(prefix: "nbd-badreq")
        let (export, head) = try makeExport(dir, maximumRequestSize: 1 << 20)
        try await withNBDServer(exports: [export], dir: dir) { s in
            let c = try RawNBDClient(socketPath: s.socketPath)
            let (size, _) = try c.connect(export: "vol")
            #expect(size == 1 << 20)

            // Reads: beyond the end, overflowing offset, zero length, unaligned, larger than the maximum.
            #expect(try c.read(offset: size - 512, length: 1024).error == EINVAL_)
            #expect(try c.read(offset: UInt64.max - 511, length: 1024).error == EINVAL_)
            #expect(try c.read(offset: 0, length: 0).error == EINVAL_)
            #expect(try c.read(offset: 100, length: 512).error == EINVAL_)
            #expect(try c.read(offset: 0, length: 700).error == EINVAL_)
            #expect(try c.read(offset: 0, length: 2 << 20).error == EINVAL_)
            try expectServing(c, head: head)

            // Writes beyond the end: ENOSPC, and the payload is consumed (the next request parses fine).
            #expect(try c.write(offset: size - 512, data: [UInt8](repeating: 0xAB, count: 1024)).error == ENOSPC_)
            #expect(try c.write(offset: 3, data: [UInt8](repeating: 0xAB, count: 512)).error == EINVAL_)
            try expectServing(c, head: head)

            // A write larger than the maximum (but not absurd): EINVAL, payload skipped, still in sync.
            #expect(try c.write(offset: 0, data: [UInt8](repeating: 0xCD, count: 2 << 20)).error == EINVAL_)
            try expectServing(c, head: head)

            // Trim / write-zeroes range checks.
            #expect(try c.command(4, offset: size, length: 512).error == EINVAL_)
            #expect(try c.command(6, offset: size - 512, length: 1024).error == ENOSPC_)

            // Unknown command, unknown flags, flags not valid for the command, FLUSH with a range.
            #expect(try c.command(77, offset: 0, length: 512).error == EINVAL_)
            #expect(try c.command(5, offset: 0, length: 512).error == EINVAL_)   // CACHE (not advertised)
            #expect(try c.command(7, offset: 0, length: 512).error == EINVAL_)   // BLOCK_STATUS (not negotiated)
            #expect(try c.read(offset: 0, length: 512, cookie: 5).error == 0)
            try c.sendRequest(type: 0, flags: 0x40, cookie: 6, offset: 0, length: 512)
            #expect(try c.readReply().error == EINVAL_)
            #expect(try c.command(4, flags: 2, offset: 0, length: 512).error == EINVAL_)  // NO_HOLE on TRIM
            #expect(try c.command(3, offset: 4096, length: 512).error == EINVAL_)
            try expectServing(c, head: head)

            // Nothing above changed the data.
            #expect(try c.read(offset: 0, length: 65536).data == head)
        }
    }

    @Test func structuredRepliesForReadsAndErrors() async throws {
        let dir = try TempDir(prefix: "nbd-structured")
        let (export, head) = try makeExport(dir)
        try await withNBDServer(exports: [export], dir: dir) { s in
            let c = try RawNBDClient(socketPath: s.socketPath)
            let (size, _) = try c.connect(export: "vol", structured: true)

            // A READ: one OFFSET_DATA chunk, flagged done, carrying its offset and the data.
            try c.sendRequest(type: 0, cookie: 41, offset: 4096, length: 8192)
            let data = try c.readChunk()
            #expect(data.type == 1 && data.done && data.cookie == 41)
            #expect(data.payload.count == 8 + 8192 && be64(data.payload, 0) == 4096)
            #expect(Array(data.payload[8...]) == Array(head[4096..<12288]))

            // A bad READ: an ERROR chunk (never a simple reply) with the error and a message.
            try c.sendRequest(type: 0, cookie: 42, offset: size - 512, length: 1024)
            let bad = try c.readChunk()
            #expect(bad.type == 0x8001 && bad.done && bad.cookie == 42)
            #expect(be32(bad.payload, 0) == EINVAL_)
            let messageLength = Int(be16(bad.payload, 4))
            #expect(bad.payload.count == 6 + messageLength && messageLength > 0)
            #expect(String(decoding: bad.payload[6...], as: UTF8.self).contains("end of the export"))

            // Other commands: a simple reply on success, an error chunk on failure.
            #expect(try c.write(offset: 65536, data: [UInt8](repeating: 0x5A, count: 4096), cookie: 43).error == 0)
            try c.sendRequest(type: 6, cookie: 44, offset: size - 512, length: 1024)
            let noSpace = try c.readChunk()
            #expect(noSpace.type == 0x8001 && noSpace.done && noSpace.cookie == 44 && be32(noSpace.payload, 0) == ENOSPC_)

            // Many reads at once, answered in any order, each complete.
            for i in 0..<16 { try c.sendRequest(type: 0, cookie: 100 + UInt64(i), offset: UInt64(i) * 4096, length: 4096) }
            var seen = Set<UInt64>()
            for _ in 0..<16 {
                let r = try c.readChunk()
                let i = Int(r.cookie - 100)
                #expect(r.type == 1 && r.done && be64(r.payload, 0) == UInt64(i) * 4096)
                #expect(Array(r.payload[8...]) == Array(head[(i * 4096)..<((i + 1) * 4096)]))
                seen.insert(r.cookie)
            }
            #expect(seen.count == 16)
        }
    }

    @Test func protocolViolationsInTransmissionDisconnectOnlyThatClient() async throws {
        let dir = try TempDir(prefix: "nbd-violate")
        let (export, head) = try makeExport(dir, maximumRequestSize: 1 << 20)
        try await withNBDServer(exports: [export], dir: dir) { s in
            let good = try RawNBDClient(socketPath: s.socketPath)
            try good.connect(export: "vol")

            // Bad request magic.
            let a = try RawNBDClient(socketPath: s.socketPath)
            try a.connect(export: "vol")
            try a.sendRequest(type: 0, cookie: 1, offset: 0, length: 512, magic: 0xDEAD_BEEF)
            #expect(a.waitForClose())
            try expectServing(good, head: head)

            // A huge WRITE (1 GiB announced): answered with EINVAL, then the server hangs up without reading it.
            let b = try RawNBDClient(socketPath: s.socketPath)
            try b.connect(export: "vol")
            try b.sendRequest(type: 1, cookie: 42, offset: 0, length: 1 << 30)
            let r = try b.readReply()
            #expect(r.cookie == 42 && r.error == EINVAL_)
            #expect(b.waitForClose())
            try expectServing(good, head: head)

            // Truncated requests: half a header, and a write whose payload never fully arrives.
            let c = try RawNBDClient(socketPath: s.socketPath)
            try c.connect(export: "vol")
            try c.send(Array((enc32(0x2560_9513) + enc16(0) + enc16(0) + enc64(1))[0..<10]))
            c.shutdownWrite()
            #expect(c.waitForClose())
            let d = try RawNBDClient(socketPath: s.socketPath)
            try d.connect(export: "vol")
            try d.sendRequest(type: 1, cookie: 2, offset: 0, length: 65536, payload: [UInt8](repeating: 1, count: 1000))
            d.shutdownWrite()
            #expect(d.waitForClose())
            try expectServing(good, head: head)
            // The partial write was never applied.
            #expect(try good.read(offset: 0, length: 65536).data == head)
        }
    }

    @Test func readOnlyExportRefusesWritesWithEPERM() async throws {
        let dir = try TempDir(prefix: "nbd-ro")
        let (export, head) = try makeExport(dir, readOnly: true)
        try await withNBDServer(exports: [export], dir: dir) { s in
            let c = try RawNBDClient(socketPath: s.socketPath)
            let (_, flags) = try c.connect(export: "vol")
            #expect(flags & 0x2 != 0)
            #expect(try c.write(offset: 0, data: [UInt8](repeating: 9, count: 4096)).error == EPERM_)
            #expect(try c.command(4, offset: 0, length: 4096).error == EPERM_)
            #expect(try c.command(6, offset: 0, length: 4096).error == EPERM_)
            try expectServing(c, head: head)
            #expect(try c.read(offset: 0, length: 65536).data == head)
        }
    }

    @Test func requestsRunConcurrentlyAndAreAnsweredOutOfOrder() async throws {
        let dir = try TempDir(prefix: "nbd-ooo")
        let (base, head) = try makeExport(dir)
        let gated = GatedExport(base, gateOffset: 0)
        try await withNBDServer(exports: [gated], dir: dir) { s in
            let c = try RawNBDClient(socketPath: s.socketPath)
            try c.connect(export: "vol")
            try c.sendRequest(type: 0, cookie: 1, offset: 0, length: 4096)     // held in the export
            gated.entered.wait()
            try c.sendRequest(type: 0, cookie: 2, offset: 4096, length: 4096)
            try c.sendRequest(type: 1, cookie: 3, offset: 131072, length: 512, payload: [UInt8](repeating: 5, count: 512))
            let lengths: (UInt64) -> Int = { $0 == 3 ? 0 : 4096 }
            let first = try c.readReply(dataLength: lengths)
            let second = try c.readReply(dataLength: lengths)
            #expect(Set([first.cookie, second.cookie]) == [2, 3])
            #expect((first.cookie == 2 ? first : second).data == Array(head[4096..<8192]))
            gated.release.signal()
            let last = try c.readReply(dataLength: lengths)
            #expect(last.cookie == 1 && last.error == 0)
            #expect(last.data == Array(head[0..<4096]))
        }
    }

    @Test func slowReaderIsThrottledWithoutStallingOthers() async throws {
        let dir = try TempDir(prefix: "nbd-slow")
        let (export, head) = try makeExport(dir)
        try await withNBDServer(exports: [export], dir: dir, configure: {
            $0.maxInFlightBytesPerConnection = 256 << 10
            $0.maxInFlightRequestsPerConnection = 8
        }) { s in
            let slow = try RawNBDClient(socketPath: s.socketPath)
            try slow.connect(export: "vol")
            let count = 400  // 400 × 64 KiB = 25 MiB of replies the client does not read yet
            let sender = Thread {
                for i in 0..<count {
                    try? slow.sendRequest(type: 0, cookie: UInt64(i), offset: 0, length: 65536)
                }
            }
            sender.start()
            // Meanwhile another client is served normally.
            let other = try RawNBDClient(socketPath: s.socketPath)
            try other.connect(export: "vol")
            for i in 0..<20 { try expectServing(other, head: head, cookie: UInt64(1000 + i)) }
            // Now the slow client drains everything: every reply arrives, complete and correct.
            var seen = Set<UInt64>()
            for _ in 0..<count {
                let r = try slow.readReply { _ in 65536 }
                #expect(r.error == 0)
                #expect(r.data == head)
                seen.insert(r.cookie)
            }
            #expect(seen.count == count)
            try slow.sendRequest(type: 2, cookie: 0, offset: 0, length: 0)
            #expect(slow.waitForClose())
            try other.sendRequest(type: 2, cookie: 0, offset: 0, length: 0)
            #expect(other.waitForClose())
            // Dispatch stopped at the per-connection limit (8 requests of 64 KiB + bookkeeping).
            #expect(s.server.peakInFlightBytes > 0)
            #expect(s.server.peakInFlightBytes <= 8 * (65536 + 1024))
        }
    }

    @Test func exportsCanBeAddedAndRemovedWhileServing() async throws {
        let dir = try TempDir(prefix: "nbd-dyn")
        let (a, head) = try makeExport(dir, name: "a")
        try await withNBDServer(exports: [a], dir: dir) { s in
            let ca = try RawNBDClient(socketPath: s.socketPath)
            try ca.connect(export: "a")
            #expect(s.server.openConnections(toExport: "a") == 1)
            #expect(throws: RawNBDClient.Failure.self) { try RawNBDClient(socketPath: s.socketPath).connect(export: "b") }

            let (b, _) = try makeExport(dir, name: "b")
            s.server.exports.add(b)
            let cb = try RawNBDClient(socketPath: s.socketPath)
            try cb.connect(export: "b")
            #expect(s.server.openConnections(toExport: "b") == 1)
            #expect(s.server.connectionCount == 2)

            s.server.exports.remove(named: "a")
            #expect(throws: RawNBDClient.Failure.self) { try RawNBDClient(socketPath: s.socketPath).connect(export: "a") }
            try expectServing(ca, head: head)  // an open connection keeps its export
            try ca.sendRequest(type: 2, cookie: 0, offset: 0, length: 0)
            #expect(ca.waitForClose())
        }
    }

    @Test func shutdownDrainsInFlightRequests() async throws {
        let dir = try TempDir(prefix: "nbd-drain")
        let (base, head) = try makeExport(dir)
        let gated = GatedExport(base, gateOffset: 0)
        let s = try await NBDTestServer.start(exports: [gated], dir: dir)
        let c = try RawNBDClient(socketPath: s.socketPath)
        try c.connect(export: "vol")
        try c.sendRequest(type: 0, cookie: 11, offset: 0, length: 65536)
        gated.entered.wait()  // the read is now inside the export

        let shutdown = Task { await s.server.shutdown(drain: true) }
        // Wait until the server stopped accepting (polling a condition, not timing anything).
        while (try? RawNBDClient(socketPath: s.socketPath)) != nil {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        #expect(gated.finishedReads == 0)
        gated.release.signal()
        #expect(await shutdown.value, "every export call finished")
        #expect(gated.finishedReads == 1)
        // The reply was delivered before the connection closed.
        let r = try c.readReply { _ in 65536 }
        #expect(r.cookie == 11 && r.error == 0)
        #expect(r.data == head)
        #expect(c.waitForClose())
        #expect(!FileManager.default.fileExists(atPath: s.socketPath))
    }

    /// A request stuck in the export (a device that does not answer) does not keep the
    /// server from stopping: after the drain timeout the connection is closed, and after one
    /// more the server stops waiting for the stuck call and says so.
    @Test func shutdownGivesUpOnAStuckExportCall() async throws {
        let dir = try TempDir(prefix: "nbd-stuck")
        let (base, _) = try makeExport(dir)
        let gated = GatedExport(base, gateOffset: 0)
        let s = try await NBDTestServer.start(exports: [gated], dir: dir) { $0.drainTimeout = .milliseconds(300) }
        defer { gated.release.signal() }  // lets the stuck worker finish after the test
        let c = try RawNBDClient(socketPath: s.socketPath)
        try c.connect(export: "vol")
        try c.sendRequest(type: 0, cookie: 12, offset: 0, length: 4096)
        gated.entered.wait()  // the read is now stuck inside the export

        let finished = await s.server.shutdown(drain: true)
        #expect(!finished, "the stuck call is reported")
        #expect(gated.finishedReads == 0)
        #expect(c.waitForClose(), "the client was disconnected")
        #expect(!FileManager.default.fileExists(atPath: s.socketPath))
    }

    @Test func staleSocketIsReplacedButALiveServerOrAFileIsNot() async throws {
        let dir = try TempDir(prefix: "nbd-sock")
        let (export, head) = try makeExport(dir)
        // A stale socket: bound, then its owner went away without removing it.
        let path = dir.file("nbd.sock")
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let b = Array(path.utf8)
            raw.copyBytes(from: b)
            raw[b.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(rc == 0)
        close(fd)
        #expect(FileManager.default.fileExists(atPath: path))

        try await withNBDServer(exports: [export], dir: dir) { s in
            let c = try RawNBDClient(socketPath: s.socketPath)
            try c.connect(export: "vol")
            try expectServing(c, head: head)

            // A second server on the same path is refused while the first is alive.
            let second = NBDServer(configuration: .init(unixSocketPath: s.socketPath),
                                   exports: NBDExportRegistry([export]), logger: .init(label: "second"))
            await #expect(throws: NBDServerError.socketInUse(path: s.socketPath)) { try await second.start() }
            await second.shutdown()
            try expectServing(c, head: head)
        }

        // A regular file in the way is never removed.
        let file = dir.file("not-a-socket")
        #expect(FileManager.default.createFile(atPath: file, contents: Data("keep".utf8)))
        let third = NBDServer(configuration: .init(unixSocketPath: file), exports: NBDExportRegistry([export]),
                              logger: .init(label: "third"))
        await #expect(throws: NBDServerError.notASocket(path: file)) { try await third.start() }
        await third.shutdown()
        #expect(try readFile(file) == Data("keep".utf8))
    }

    @Test func tcpListenerServesClients() async throws {
        let dir = try TempDir(prefix: "nbd-tcp")
        let (export, head) = try makeExport(dir)
        try await withNBDServer(exports: [export], dir: dir, configure: {
            $0.tcpHost = "127.0.0.1"
            $0.tcpPort = 0
        }) { s in
            let port = try #require(s.server.tcpPort)
            #expect(port > 0)
            if Privileged.runnable(tools: ["nbdcopy"]) {
                try mustRun(["nbdcopy", "nbd://127.0.0.1:\(port)/vol", dir.file("tcp.out")])
                let out = try readFile(dir.file("tcp.out"))
                #expect(out.count == 1 << 20)
                #expect(Array(out.prefix(65536)) == head)
            }
        }
    }
}
