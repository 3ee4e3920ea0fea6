import Foundation
import MetaDB
import MetaModel
import MetaDevices

/// A fixed set UUID for the replica targets.
let fuzzSetUUID = UUID(uuid: (0x6d, 0x65, 0x74, 0x61, 0x63, 0x74, 0x6c, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0, 0, 0, 1))
/// Slot size of the replica target: small (labels accept 64 KiB and up; the slot code takes
/// any size from 4 KiB), so a run stays cheap and both slots are within reach of mutations.
let fuzzSlotSize: UInt64 = 16 << 10

/// Overwrites the little-endian CRC32C at `crcAt` with the checksum of `bytes[range]`.
func fixCRC(_ b: inout [UInt8], over range: Range<Int>, at crcAt: Int) {
    guard range.upperBound <= b.count, crcAt + 4 <= b.count else { return }
    let c = CRC32C.checksum(b[range])
    for i in 0..<4 { b[crcAt + i] = UInt8(truncatingIfNeeded: c >> (8 * i)) }
}

/// Label: input byte 0 holds flags (bit 0: repair the checksums of both copies, so mutations
/// reach the field checks), the rest is the two 4 KiB copies. A decoded copy must re-encode
/// to a label that decodes to the same value, and re-encode identically (canonical form);
/// `Label.read` must pick an intact copy with the highest sequence.
@Sendable public func fuzzLabel(_ data: Data) throws(FuzzFailure) {
    guard let flags = data.first else { return }
    let size = DiskLayout.labelSize
    var image = [UInt8](data.dropFirst().prefix(2 * size))
    if image.count < 2 * size { image += [UInt8](repeating: 0, count: 2 * size - image.count) }
    if flags & 1 != 0 {
        for c in 0..<2 { fixCRC(&image, over: c * size..<(c + 1) * size - 4, at: (c + 1) * size - 4) }
    }
    var decoded: [Label] = []
    for c in 0..<2 {
        let copy = Array(image[c * size..<(c + 1) * size])
        guard case .success(let label) = Label.decode(copy) else { continue }
        decoded.append(label)
        let again = label.encoded()
        try check(again.count == size, "label encodes to \(again.count) bytes")
        guard case .success(let back) = Label.decode(again) else {
            throw FuzzFailure("a decoded label re-encodes to bytes that do not decode: \(label)")
        }
        try check(back == label, "label round trip changed it: \(label) -> \(back)")
        try check(back.encoded() == again, "label encoding is not canonical")
        _ = label.replicaOffset(Int(label.replicaCount))
        _ = DiskLayout.dataStartBlock(copies: label.replicaCount, slotSize: label.slotSize)
    }
    let dev = MemoryDevice(path: "label", sizeBytes: UInt64(2 * size))
    do { try dev.write(bytes: image, at: 0) } catch { throw FuzzFailure("memory device write: \(error)") }
    let read = Label.read(from: dev)
    try check(read.problems.count + decoded.count == 2, "Label.read reports \(read.problems.count) problems for \(decoded.count) intact copies")
    if decoded.isEmpty {
        try check(read.label == nil, "Label.read found a label where no copy decodes")
    } else {
        guard let best = read.label else { throw FuzzFailure("Label.read found no label but a copy decodes") }
        try check(decoded.contains(best) && decoded.allSatisfy { $0.sequence <= best.sequence },
                  "Label.read did not pick the copy with the highest sequence")
    }
}

/// Replica slots: input byte 0 holds flags (bit 0: repair header checksum, bit 1: repair
/// payload checksum and length, bit 2: same for slot 1, bit 3: the set is the one slot 0's
/// header names, else a fixed one), the rest is the two slots' images.
/// Each intact slot's payload goes through the configuration decoder (``fuzzConfig``'s checks).
@Sendable public func fuzzReplica(_ data: Data) throws(FuzzFailure) {
    guard let flags = data.first else { return }
    let slot = Int(fuzzSlotSize)
    let header = DiskLayout.slotHeaderSize
    var image = [UInt8](data.dropFirst().prefix(2 * slot))
    if image.count < 2 * slot { image += [UInt8](repeating: 0, count: 2 * slot - image.count) }
    for s in 0..<2 where flags & (s == 0 ? 0b011 : 0b110) != 0 {
        let base = s * slot
        if flags & 0b110 != 0 {
            // Make the length field cover the payload up to its last non-zero byte.
            var end = base + slot
            while end > base + header && image[end - 1] == 0 { end -= 1 }
            let len = UInt64(max(1, end - base - header))
            for i in 0..<8 { image[base + 40 + i] = UInt8(truncatingIfNeeded: len >> (8 * i)) }
            let payloadEnd = base + header + Int(len)
            let c = CRC32C.checksum(image[(base + header)..<payloadEnd])
            for i in 0..<4 { image[base + 48 + i] = UInt8(truncatingIfNeeded: c >> (8 * i)) }
        }
        fixCRC(&image, over: base..<base + header - 4, at: base + header - 4)
    }
    var setUUID = fuzzSetUUID
    if flags & 8 != 0 {
        let u = image[16..<32].map { $0 }
        setUUID = UUID(uuid: (u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]))
    }
    let result = ReplicaImage.decode(image, slotSize: fuzzSlotSize, setUUID: setUUID)
    try check(result.intact.count + result.problems.count <= 2, "more than two results for two slots")
    for s in result.intact {
        try check(s.index == 0 || s.index == 1, "slot index \(s.index)")
        try check(s.payload.count > 0 && s.payload.count <= slot - header, "payload of \(s.payload.count) bytes")
        // A slot as a commit would write it decodes to the same generation and payload.
        var rewritten = [UInt8](repeating: 0, count: 2 * slot)
        let one = ReplicaImage.encodeSlot(setUUID: setUUID, generation: s.generation, payload: s.payload)
        rewritten.replaceSubrange(s.index * slot..<s.index * slot + one.count, with: one)
        let again = ReplicaImage.decode(rewritten, slotSize: fuzzSlotSize, setUUID: setUUID)
        try check(again.intact == [s], "a re-encoded slot does not decode to the same content")
        try checkConfigPayload(s.payload)
    }
}

/// The configuration decoder: a decoded configuration re-encodes to bytes that decode to the
/// same value, and that encoding is canonical.
@Sendable public func fuzzConfig(_ data: Data) throws(FuzzFailure) {
    try checkConfigPayload([UInt8](data))
}

func checkConfigPayload(_ payload: [UInt8]) throws(FuzzFailure) {
    guard case .success(let config) = ConfigCodec.decode(payload) else { return }
    let encoded: [UInt8]
    do { encoded = try ConfigCodec.encode(config) } catch {
        throw FuzzFailure("a decoded configuration does not encode: \(error)")
    }
    guard case .success(let back) = ConfigCodec.decode(encoded) else {
        throw FuzzFailure("a decoded configuration re-encodes to bytes that do not decode")
    }
    try check(back == config, "configuration round trip changed it")
    let again: [UInt8]
    do { again = try ConfigCodec.encode(back) } catch { throw FuzzFailure("re-encoding failed: \(error)") }
    try check(again == encoded, "configuration encoding is not canonical")
}

/// Host registry: a decoded registry re-encodes to bytes that decode to the same value, and
/// that encoding is canonical.
@Sendable public func fuzzRegistry(_ data: Data) throws(FuzzFailure) {
    guard let registry = try? HostRegistry.decode(data) else { return }
    let encoded: [UInt8]
    do { encoded = try registry.encoded() } catch { throw FuzzFailure("a decoded registry does not encode: \(error)") }
    guard let back = try? HostRegistry.decode(Data(encoded)) else {
        throw FuzzFailure("a decoded registry re-encodes to bytes that do not decode")
    }
    try check(back == registry, "registry round trip changed it")
    let again: [UInt8]
    do { again = try back.encoded() } catch { throw FuzzFailure("re-encoding failed: \(error)") }
    try check(again == encoded, "registry encoding is not canonical")
    for e in registry.sets { try check(registry.entry(named: e.name) != nil, "entry(named:) misses \(e.name)") }
}
