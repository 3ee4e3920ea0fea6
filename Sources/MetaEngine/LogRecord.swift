import Foundation
import MetaDB

/// One record of a RAID-5 write log, as it is on disk (`docs/FORMAT.md`, "Write log"): a
/// 4 KiB header naming the volume's log, the epoch, a sequence number and the column ranges
/// the record's payload holds, then the payload (the new bytes of those ranges, in order),
/// padded to 4 KiB. Both the header and the payload carry a CRC32C, so a record torn by a
/// crash (any subset of its sectors written) is recognised and ignored.
///
/// Pure: encoding and decoding do no I/O (the fuzzers and tests drive them directly).
public struct LogRecord: Equatable, Sendable {
    /// A run of blocks of one column: `blocks` 512-byte blocks at column data block `columnBlock`.
    public struct Segment: Equatable, Sendable {
        public var column: Int
        public var columnBlock: UInt64
        public var blocks: UInt64
        public init(column: Int, columnBlock: UInt64, blocks: UInt64) {
            self.column = column; self.columnBlock = columnBlock; self.blocks = blocks
        }
        public var bytes: Int { Int(blocks) * 512 }
    }

    /// "MTWLOG01" little-endian.
    public static let magic: UInt64 = 0x3130_474F_4C57_544D
    /// Bytes of the header (and the alignment of every record in a log area).
    public static let headerBytes = 4096
    static let segmentsOffset = 72
    static let segmentBytes = 24
    /// Most segments one header can name.
    public static let maxSegments = (headerBytes - segmentsOffset) / segmentBytes
    /// Largest payload a record may declare (a sanity bound for decoding).
    public static let maxPayloadBytes: UInt64 = 1 << 32

    public var logID: UUID
    public var epoch: UInt64
    public var seq: UInt64
    public var segments: [Segment]

    public init(logID: UUID, epoch: UInt64, seq: UInt64, segments: [Segment]) {
        self.logID = logID; self.epoch = epoch; self.seq = seq; self.segments = segments
    }

    /// Bytes of payload (the segments' data, unpadded).
    public var payloadBytes: Int { segments.reduce(0) { $0 + $1.bytes } }
    /// Bytes the record takes in a log area: header and payload padded to 4 KiB.
    public var recordBytes: Int { Self.headerBytes + (payloadBytes + Self.headerBytes - 1) / Self.headerBytes * Self.headerBytes }

    /// Fills the first ``headerBytes`` of `record` with the header, checksumming the payload
    /// that follows it (``payloadBytes`` bytes at offset ``headerBytes``; the padding after it
    /// is zeroed). `record` must hold ``recordBytes`` bytes.
    public func seal(_ record: UnsafeMutableRawBufferPointer) {
        precondition(record.count >= recordBytes && segments.count <= Self.maxSegments)
        let payload = payloadBytes
        let pad = recordBytes - Self.headerBytes - payload
        if pad > 0 {
            UnsafeMutableRawBufferPointer(rebasing: record[(Self.headerBytes + payload)..<(Self.headerBytes + payload + pad)])
                .initializeMemory(as: UInt8.self, repeating: 0)
        }
        let h = UnsafeMutableRawBufferPointer(rebasing: record[0..<Self.headerBytes])
        h.initializeMemory(as: UInt8.self, repeating: 0)
        h.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt64.self)
        let payloadCRC = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[Self.headerBytes..<(Self.headerBytes + payload)]))
        h.storeBytes(of: payloadCRC.littleEndian, toByteOffset: 12, as: UInt32.self)
        withUnsafeBytes(of: logID.uuid) { h.baseAddress!.advanced(by: 16).copyMemory(from: $0.baseAddress!, byteCount: 16) }
        h.storeBytes(of: epoch.littleEndian, toByteOffset: 32, as: UInt64.self)
        h.storeBytes(of: seq.littleEndian, toByteOffset: 40, as: UInt64.self)
        h.storeBytes(of: UInt64(payload).littleEndian, toByteOffset: 56, as: UInt64.self)
        h.storeBytes(of: UInt32(segments.count).littleEndian, toByteOffset: 64, as: UInt32.self)
        for (i, s) in segments.enumerated() {
            let at = Self.segmentsOffset + i * Self.segmentBytes
            h.storeBytes(of: UInt32(s.column).littleEndian, toByteOffset: at, as: UInt32.self)
            h.storeBytes(of: s.columnBlock.littleEndian, toByteOffset: at + 8, as: UInt64.self)
            h.storeBytes(of: s.blocks.littleEndian, toByteOffset: at + 16, as: UInt64.self)
        }
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(h))
        h.storeBytes(of: crc.littleEndian, toByteOffset: 8, as: UInt32.self)
    }

    /// Decodes a header: nil unless `header` (at least ``headerBytes``) is a whole, valid one
    /// in its only encoding (reserved fields and the bytes after the segments zero).
    /// Returns the record and the checksum its payload must have.
    public static func decodeHeader(_ header: UnsafeRawBufferPointer) -> (record: LogRecord, payloadCRC: UInt32)? {
        guard header.count >= headerBytes,
              UInt64(littleEndian: header.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) == magic else { return nil }
        let stored = UInt32(littleEndian: header.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        var copy = [UInt8](UnsafeRawBufferPointer(rebasing: header[0..<headerBytes]))
        copy.withUnsafeMutableBytes { $0.storeBytes(of: 0, toByteOffset: 8, as: UInt32.self) }
        guard CRC32C.checksum(copy) == stored else { return nil }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: header.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: header.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        let count = Int(u32(64))
        guard count <= maxSegments, u32(68) == 0 else { return nil }
        var raw = uuid_t(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: header[16..<32])) }
        var segments: [Segment] = []
        var total: UInt64 = 0
        for i in 0..<count {
            let at = segmentsOffset + i * segmentBytes
            let s = Segment(column: Int(u32(at)), columnBlock: u64(at + 8), blocks: u64(at + 16))
            guard u32(at + 4) == 0, s.blocks > 0, s.blocks <= maxPayloadBytes / 512,
                  s.columnBlock <= UInt64.max / 2 else { return nil }
            total += s.blocks * 512
            guard total <= maxPayloadBytes else { return nil }
            segments.append(s)
        }
        guard total == u64(56), u64(48) == 0 else { return nil }
        // Everything after the segment table is zero (one encoding per record).
        let tableEnd = segmentsOffset + count * segmentBytes
        guard UnsafeRawBufferPointer(rebasing: header[tableEnd..<headerBytes]).allSatisfy({ $0 == 0 }) else { return nil }
        return (LogRecord(logID: UUID(uuid: raw), epoch: u64(32), seq: u64(40), segments: segments), u32(12))
    }

    /// Whether `payload` (``payloadBytes`` bytes) is the payload the header vouches for.
    public static func payloadMatches(_ payload: UnsafeRawBufferPointer, crc: UInt32) -> Bool {
        CRC32C.checksum(payload) == crc
    }

    /// Every whole record of log `logID` and epoch `epoch` in `area` (the bytes of one log
    /// area, or a prefix of it): a scan at every 4 KiB boundary, skipping over each valid
    /// record. Torn records, records of other logs and epochs, and anything else are skipped.
    /// Returns each record with the byte offset of its payload in `area`.
    public static func scan(_ area: UnsafeRawBufferPointer, logID: UUID, epoch: UInt64) -> [(record: LogRecord, payloadOffset: Int)] {
        var out: [(LogRecord, Int)] = []
        var at = 0
        while at + headerBytes <= area.count {
            if let (r, crc) = decodeHeader(UnsafeRawBufferPointer(rebasing: area[at..<(at + headerBytes)])),
               r.logID == logID, r.epoch == epoch, at + r.recordBytes <= area.count,
               payloadMatches(UnsafeRawBufferPointer(rebasing: area[(at + headerBytes)..<(at + headerBytes + r.payloadBytes)]), crc: crc) {
                out.append((r, at + headerBytes))
                at += r.recordBytes
            } else {
                at += headerBytes
            }
        }
        return out
    }
}
