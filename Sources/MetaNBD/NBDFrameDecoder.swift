import NIOCore

/// A transmission request's 28-byte header (`doc/proto.md`, "Transmission phase").
struct NBDRequestHeader: Sendable, Equatable {
    var flags: UInt16
    var type: UInt16
    var cookie: UInt64
    var offset: UInt64
    var length: UInt32
}

/// What the decoder found at the front of the client's bytes.
enum NBDFrame: Equatable {
    /// The 4-byte client flags that follow the server's greeting.
    case clientFlags(UInt32)
    /// An option (`NBD_OPT_*`) and its data.
    case option(code: UInt32, data: ByteBuffer)
    /// An option longer than the limit: only its 16-byte header was consumed (the caller
    /// answers, where a reply is allowed, and hangs up without reading the data).
    case optionTooLong(code: UInt32, length: Int)
    /// A request, with its payload for a WRITE.
    case request(NBDRequestHeader, payload: ByteBuffer?)
    /// A WRITE whose payload is over the export's maximum: only its header was consumed (the
    /// caller answers EINVAL, then skips the payload or hangs up).
    case writeTooLarge(NBDRequestHeader, maximum: UInt64)
}

/// The result of one decoding step.
enum NBDDecodeStep: Equatable {
    /// A frame, consumed from the buffer.
    case frame(NBDFrame)
    /// Not enough bytes yet: at least this many are needed from the reader index (nothing
    /// was consumed).
    case needMore(Int)
    /// Bytes that no valid client sends (nothing was consumed); the caller ends the
    /// connection with this message.
    case malformed(String)
}

/// Decodes the client's side of the NBD protocol from a byte buffer, one frame at a time:
/// pure (no channel, no state but what the caller passes), so that every partial or
/// malformed input can be tested with buffers alone. The connection handler keeps the phase
/// and decides what each frame means.
enum NBDFrameDecoder {
    /// The client flags (fixed newstyle, no zeroes; any other bit is malformed).
    static func clientFlags(_ buffer: inout ByteBuffer) -> NBDDecodeStep {
        guard let flags = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMore(4) }
        let known = NBDWire.clientFlagFixedNewstyle | NBDWire.clientFlagNoZeroes
        guard flags & ~known == 0 else { return .malformed("unknown client flags 0x\(String(flags, radix: 16))") }
        buffer.moveReaderIndex(forwardBy: 4)
        return .frame(.clientFlags(flags))
    }

    /// One option: `IHAVEOPT`, the option code, the data length and the data.
    static func option(_ buffer: inout ByteBuffer, maxLength: Int) -> NBDDecodeStep {
        let start = buffer.readerIndex
        guard let magic = buffer.getInteger(at: start, as: UInt64.self),
              let option = buffer.getInteger(at: start + 8, as: UInt32.self),
              let length32 = buffer.getInteger(at: start + 12, as: UInt32.self) else { return .needMore(16) }
        guard magic == NBDWire.optMagic else { return .malformed("bad option magic 0x\(String(magic, radix: 16))") }
        let length = Int(length32)
        if length > maxLength {
            buffer.moveReaderIndex(forwardBy: 16)
            return .frame(.optionTooLong(code: option, length: length))
        }
        guard buffer.readableBytes >= 16 + length else { return .needMore(16 + length) }
        buffer.moveReaderIndex(forwardBy: 16)
        let data = buffer.readSlice(length: length)!
        return .frame(.option(code: option, data: data))
    }

    /// One transmission request; a WRITE's payload must be whole (up to `maxWritePayload`).
    @inline(__always)
    static func request(_ buffer: inout ByteBuffer, maxWritePayload: UInt64) -> NBDDecodeStep {
        let headerSize = NBDWire.requestHeaderSize
        let s = buffer.readerIndex
        guard buffer.readableBytes >= headerSize,
              let magic = buffer.getInteger(at: s, as: UInt32.self),
              let flags = buffer.getInteger(at: s + 4, as: UInt16.self),
              let type = buffer.getInteger(at: s + 6, as: UInt16.self),
              let cookie = buffer.getInteger(at: s + 8, as: UInt64.self),
              let offset = buffer.getInteger(at: s + 16, as: UInt64.self),
              let length = buffer.getInteger(at: s + 24, as: UInt32.self) else { return .needMore(headerSize) }
        guard magic == NBDWire.requestMagic else { return .malformed("bad request magic 0x\(String(magic, radix: 16))") }
        let header = NBDRequestHeader(flags: flags, type: type, cookie: cookie, offset: offset, length: length)
        guard type == NBDWire.cmdWrite else {
            buffer.moveReaderIndex(forwardBy: headerSize)
            return .frame(.request(header, payload: nil))
        }
        if UInt64(length) > maxWritePayload {
            buffer.moveReaderIndex(forwardBy: headerSize)
            return .frame(.writeTooLarge(header, maximum: maxWritePayload))
        }
        guard buffer.readableBytes >= headerSize + Int(length) else { return .needMore(headerSize + Int(length)) }
        buffer.moveReaderIndex(forwardBy: headerSize)
        return .frame(.request(header, payload: buffer.readSlice(length: Int(length))))
    }
}
