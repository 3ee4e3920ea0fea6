import Foundation
import MetaDB
import MetaEngine

/// The log id the `log-record` target's records carry.
let fuzzLogID = UUID(uuid: (0x6d, 0x65, 0x74, 0x61, 0x63, 0x74, 0x6c, 0x2d, 0x77, 0x6c, 0x6f, 0x67, 0, 0, 0, 1))

/// Write-log records (`LogRecord.decodeHeader`, `LogRecord.scan`): input byte 0 holds flags
/// (bit 0: repair the header checksum of the record at offset 0 so that mutations reach the
/// field checks; bit 1: repair its payload checksum too), the rest is a log area. Every
/// record the scan finds must decode from its own bytes, re-seal to the same bytes, lie
/// inside the area and not overlap the next one found; a header that decodes must describe a
/// payload whose size matches its segments.
@Sendable public func fuzzLogRecord(_ data: Data) throws(FuzzFailure) {
    guard let flags = data.first else { return }
    var area = [UInt8](data.dropFirst().prefix(1 << 20))
    if area.count % 4096 != 0 { area += [UInt8](repeating: 0, count: 4096 - area.count % 4096) }
    if area.count >= 4096 && flags & 3 != 0 {
        if flags & 2 != 0, area.count >= 4096 {
            let declared = Int(area.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 56, as: UInt64.self) } & 0xFFFFF)
            if declared > 0 && 4096 + declared <= area.count { fixCRC(&area, over: 4096..<(4096 + declared), at: 12) }
        }
        for i in 8..<12 { area[i] = 0 }
        let c = CRC32C.checksum(area[0..<4096])
        for i in 0..<4 { area[8 + i] = UInt8(truncatingIfNeeded: c >> (8 * i)) }
    }
    let epoch = area.count >= 40 ? area.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) } : 0
    if let (r, _) = area.withUnsafeBytes({ LogRecord.decodeHeader($0) }) {
        try check(r.payloadBytes == r.segments.reduce(0) { $0 + $1.bytes }, "payload size disagrees with the segments")
        try check(r.segments.count <= LogRecord.maxSegments, "too many segments decoded")
    }
    let found = area.withUnsafeBytes { LogRecord.scan($0, logID: fuzzLogID, epoch: epoch) }
    var end = 0
    for (r, payloadOffset) in found {
        let start = payloadOffset - LogRecord.headerBytes
        try check(start >= end && start % 4096 == 0, "records overlap or are misaligned at \(start)")
        try check(start + r.recordBytes <= area.count, "a record runs past the area")
        end = start + r.recordBytes
        try check(r.logID == fuzzLogID && r.epoch == epoch, "scan returned a record of another log or epoch")
        var again = [UInt8](repeating: 0, count: r.recordBytes)
        for i in 0..<r.payloadBytes { again[LogRecord.headerBytes + i] = area[payloadOffset + i] }
        again.withUnsafeMutableBytes { r.seal($0) }
        try check(Array(area[start..<(start + LogRecord.headerBytes)]) == Array(again[0..<LogRecord.headerBytes]),
                  "a record found does not re-seal to its own header")
    }
}

extension FuzzSeeds {
    /// Log areas: one record, two records, a torn record then a whole one, and noise.
    static func logAreas() -> [(name: String, bytes: [UInt8])] {
        func record(seq: UInt64, segments: [LogRecord.Segment], fill: UInt8) -> [UInt8] {
            let r = LogRecord(logID: fuzzLogID, epoch: 7, seq: seq, segments: segments)
            var b = [UInt8](repeating: fill, count: r.recordBytes)
            b.withUnsafeMutableBytes { r.seal($0) }
            return b
        }
        let one = record(seq: 1, segments: [.init(column: 0, columnBlock: 128, blocks: 8), .init(column: 3, columnBlock: 128, blocks: 8)], fill: 0x11)
        let two = record(seq: 2, segments: [.init(column: 2, columnBlock: 4096, blocks: 1)], fill: 0x22)
        var torn = one
        for i in 5000..<5512 { torn[i] = 0 }
        return [("one", [3] + one), ("two", [0] + one + two), ("torn-then-whole", [0] + torn + two),
                ("noise", [1] + (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37) })]
    }
}
