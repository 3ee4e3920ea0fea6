/// Wire constants of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md).
enum NBDWire {
    static let nbdMagic: UInt64 = 0x4e42_444d_4147_4943          // "NBDMAGIC"
    static let optMagic: UInt64 = 0x4948_4156_454f_5054          // "IHAVEOPT"
    static let optReplyMagic: UInt64 = 0x3_e889_0455_65a9
    static let requestMagic: UInt32 = 0x2560_9513
    static let simpleReplyMagic: UInt32 = 0x6744_6698
    static let structuredReplyMagic: UInt32 = 0x668e_33ef

    // Handshake flags (server) and client flags.
    static let flagFixedNewstyle: UInt16 = 1 << 0
    static let flagNoZeroes: UInt16 = 1 << 1
    static let clientFlagFixedNewstyle: UInt32 = 1 << 0
    static let clientFlagNoZeroes: UInt32 = 1 << 1

    // Transmission flags.
    static let flagHasFlags: UInt16 = 1 << 0
    static let flagReadOnly: UInt16 = 1 << 1
    static let flagSendFlush: UInt16 = 1 << 2
    static let flagSendFUA: UInt16 = 1 << 3
    static let flagSendTrim: UInt16 = 1 << 5
    static let flagSendWriteZeroes: UInt16 = 1 << 6
    static let flagCanMultiConn: UInt16 = 1 << 8

    // Options.
    static let optExportName: UInt32 = 1
    static let optAbort: UInt32 = 2
    static let optList: UInt32 = 3
    static let optStartTLS: UInt32 = 5
    static let optInfo: UInt32 = 6
    static let optGo: UInt32 = 7
    static let optStructuredReply: UInt32 = 8

    // Option replies.
    static let repAck: UInt32 = 1
    static let repServer: UInt32 = 2
    static let repInfo: UInt32 = 3
    static let repErrUnsup: UInt32 = 0x8000_0001
    static let repErrPolicy: UInt32 = 0x8000_0002
    static let repErrInvalid: UInt32 = 0x8000_0003
    static let repErrTLSReqd: UInt32 = 0x8000_0005
    static let repErrUnknown: UInt32 = 0x8000_0006
    static let repErrShutdown: UInt32 = 0x8000_0007
    static let repErrTooBig: UInt32 = 0x8000_0009

    // Info types.
    static let infoExport: UInt16 = 0
    static let infoName: UInt16 = 1
    static let infoDescription: UInt16 = 2
    static let infoBlockSize: UInt16 = 3

    // Commands.
    static let cmdRead: UInt16 = 0
    static let cmdWrite: UInt16 = 1
    static let cmdDisc: UInt16 = 2
    static let cmdFlush: UInt16 = 3
    static let cmdTrim: UInt16 = 4
    static let cmdWriteZeroes: UInt16 = 6

    // Command flags.
    static let cmdFlagFUA: UInt16 = 1 << 0
    static let cmdFlagNoHole: UInt16 = 1 << 1

    /// Size of a request header.
    static let requestHeaderSize = 28
    /// Size of a simple reply header.
    static let simpleReplyHeaderSize = 16

    // Structured reply chunks (negotiated with NBD_OPT_STRUCTURED_REPLY).
    static let replyFlagDone: UInt16 = 1 << 0
    static let replyTypeOffsetData: UInt16 = 1
    static let replyTypeError: UInt16 = 0x8001
    /// Size of a structured reply chunk header.
    static let structuredReplyHeaderSize = 20
    /// Longest error message sent in an error chunk, in characters (the protocol allows 4096 bytes).
    static let maxErrorMessageCharacters = 1000
    /// Payloads up to this size are never treated as denial of service (proto.md "Size constraints").
    static let portablePayloadLimit: UInt64 = 1 << 25

    static func commandName(_ type: UInt16) -> String {
        switch type {
        case cmdRead: "READ"
        case cmdWrite: "WRITE"
        case cmdDisc: "DISC"
        case cmdFlush: "FLUSH"
        case cmdTrim: "TRIM"
        case 5: "CACHE"
        case cmdWriteZeroes: "WRITE_ZEROES"
        case 7: "BLOCK_STATUS"
        default: "command \(type)"
        }
    }
}
