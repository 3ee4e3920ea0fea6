import NIOCore
import Testing
@testable import MetaNBD

/// The pure decoder of the client's bytes: every frame, every partial prefix of it (asks for
/// more, consumes nothing), and malformed input (named, consumes nothing), with buffers alone.
@Suite("NBD frame decoder")
struct NBDFrameDecoderTests {
    func option(_ code: UInt32, _ data: [UInt8], magic: UInt64 = NBDWire.optMagic) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(magic)
        b.writeInteger(code)
        b.writeInteger(UInt32(data.count))
        b.writeBytes(data)
        return b
    }

    func request(type: UInt16, length: UInt32, payload: [UInt8] = [], magic: UInt32 = NBDWire.requestMagic) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(magic)
        b.writeInteger(UInt16(1))  // flags: FUA
        b.writeInteger(type)
        b.writeInteger(UInt64(0xC00C1E))
        b.writeInteger(UInt64(4096))
        b.writeInteger(length)
        b.writeBytes(payload)
        return b
    }

    /// Every strict prefix of `whole` asks for more bytes (at least one more than it has)
    /// and leaves the buffer as it was.
    func everyPrefixWantsMore(_ whole: ByteBuffer, _ decode: (inout ByteBuffer) -> NBDDecodeStep) {
        for n in 0..<whole.readableBytes {
            var part = whole.getSlice(at: whole.readerIndex, length: n)!
            let step = decode(&part)
            guard case .needMore(let want) = step else {
                Issue.record("prefix of \(n) bytes: \(step), expected needMore")
                return
            }
            #expect(want > n, "prefix of \(n) bytes asks for \(want)")
            #expect(part.readableBytes == n, "a prefix must not be consumed")
        }
    }

    @Test func clientFlags() {
        var b = ByteBuffer()
        b.writeInteger(NBDWire.clientFlagFixedNewstyle | NBDWire.clientFlagNoZeroes)
        everyPrefixWantsMore(b) { NBDFrameDecoder.clientFlags(&$0) }
        #expect(NBDFrameDecoder.clientFlags(&b) == .frame(.clientFlags(NBDWire.clientFlagFixedNewstyle | NBDWire.clientFlagNoZeroes)))
        #expect(b.readableBytes == 0)
        var bad = ByteBuffer()
        bad.writeInteger(UInt32(0x80))
        #expect(NBDFrameDecoder.clientFlags(&bad) == .malformed("unknown client flags 0x80"))
        #expect(bad.readableBytes == 4)
    }

    @Test func options() {
        let data: [UInt8] = Array("d10".utf8)
        var b = option(NBDWire.optExportName, data)
        b.writeBytes([9, 9])  // the next frame's first bytes stay
        everyPrefixWantsMore(option(NBDWire.optExportName, data)) { NBDFrameDecoder.option(&$0, maxLength: 4096) }
        #expect(NBDFrameDecoder.option(&b, maxLength: 4096) == .frame(.option(code: NBDWire.optExportName, data: ByteBuffer(bytes: data))))
        #expect(b.readableBytes == 2)

        // Too long: only the header is consumed, whatever of the data has arrived.
        var long = option(7, [UInt8](repeating: 0, count: 100))
        long.moveWriterIndex(to: 16 + 10)
        #expect(NBDFrameDecoder.option(&long, maxLength: 64) == .frame(.optionTooLong(code: 7, length: 100)))
        #expect(long.readableBytes == 10)

        var bad = option(1, [], magic: 0x1234)
        #expect(NBDFrameDecoder.option(&bad, maxLength: 64) == .malformed("bad option magic 0x1234"))
        #expect(bad.readableBytes == 16)
    }

    @Test func requests() {
        let header = NBDRequestHeader(flags: 1, type: NBDWire.cmdRead, cookie: 0xC00C1E, offset: 4096, length: 512)
        var read = request(type: NBDWire.cmdRead, length: 512)
        everyPrefixWantsMore(read) { NBDFrameDecoder.request(&$0, maxWritePayload: 1 << 20) }
        #expect(NBDFrameDecoder.request(&read, maxWritePayload: 1 << 20) == .frame(.request(header, payload: nil)))
        #expect(read.readableBytes == 0)

        // A WRITE is one frame only with its whole payload.
        let payload = [UInt8](repeating: 0xAB, count: 512)
        var write = request(type: NBDWire.cmdWrite, length: 512, payload: payload)
        everyPrefixWantsMore(write) { NBDFrameDecoder.request(&$0, maxWritePayload: 1 << 20) }
        var wh = header
        wh.type = NBDWire.cmdWrite
        #expect(NBDFrameDecoder.request(&write, maxWritePayload: 1 << 20) == .frame(.request(wh, payload: ByteBuffer(bytes: payload))))
        #expect(write.readableBytes == 0)

        // Over the maximum: the header alone, so that the caller can answer and skip.
        var big = request(type: NBDWire.cmdWrite, length: 4096, payload: [1, 2, 3])
        var bh = header
        bh.type = NBDWire.cmdWrite
        bh.length = 4096
        #expect(NBDFrameDecoder.request(&big, maxWritePayload: 1024) == .frame(.writeTooLarge(bh, maximum: 1024)))
        #expect(big.readableBytes == 3)

        var bad = request(type: NBDWire.cmdRead, length: 0, magic: 0xDEAD)
        #expect(NBDFrameDecoder.request(&bad, maxWritePayload: 1024) == .malformed("bad request magic 0xdead"))
        #expect(bad.readableBytes == NBDWire.requestHeaderSize)
    }
}
