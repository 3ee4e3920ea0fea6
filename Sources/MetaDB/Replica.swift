import Foundation
import MetaModel
import MetaDevices

/// The header at the start of a replica slot (512 bytes; the payload follows it).
struct SlotHeader: Equatable {
    /// `METADB01`
    static let magic: [UInt8] = Array("METADB01".utf8)
    static let currentVersion: UInt32 = 1

    var version: UInt32 = SlotHeader.currentVersion
    var setUUID: UUID
    var generation: UInt64
    var payloadLength: UInt64
    var payloadCRC: UInt32

    func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: DiskLayout.slotHeaderSize)
        for i in 0..<8 { b[i] = SlotHeader.magic[i] }
        LE.put(version, &b, 8)
        LE.put(UInt32(DiskLayout.slotHeaderSize), &b, 12)
        LE.putUUID(setUUID, &b, 16)
        LE.put(generation, &b, 32)
        LE.put(payloadLength, &b, 40)
        LE.put(payloadCRC, &b, 48)
        let crc = CRC32C.checksum(b[0..<(DiskLayout.slotHeaderSize - 4)])
        LE.put(crc, &b, DiskLayout.slotHeaderSize - 4)
        return b
    }

    enum Failure: Error, Equatable, CustomStringConvertible {
        case empty, noMagic, badChecksum, newerVersion(UInt32), malformed(String)
        var description: String {
            switch self {
            case .empty: "empty"
            case .noMagic: "no replica header"
            case .badChecksum: "header checksum mismatch"
            case .newerVersion(let v): "replica format version \(v) is newer than this metactl understands"
            case .malformed(let s): "malformed header: \(s)"
            }
        }
    }

    static func decode(_ b: [UInt8], slotSize: UInt64) -> Result<SlotHeader, Failure> {
        guard b.count >= DiskLayout.slotHeaderSize else { return .failure(.malformed("short")) }
        // Never written: the whole first 4 KiB is zero (labelling zeroes it). A zeroed header
        // in front of a payload is damage, reported as such.
        if b.allSatisfy({ $0 == 0 }) { return .failure(.empty) }
        if b[0..<DiskLayout.slotHeaderSize].allSatisfy({ $0 == 0 }) { return .failure(.malformed("header zeroed")) }
        guard Array(b[0..<8]) == magic else { return .failure(.noMagic) }
        let stored = LE.get(UInt32.self, b, DiskLayout.slotHeaderSize - 4)
        guard CRC32C.checksum(b[0..<(DiskLayout.slotHeaderSize - 4)]) == stored else { return .failure(.badChecksum) }
        let v = LE.get(UInt32.self, b, 8)
        if v > currentVersion { return .failure(.newerVersion(v)) }
        let len = LE.get(UInt64.self, b, 40)
        guard len > 0, len <= slotSize - UInt64(DiskLayout.slotHeaderSize) else {
            return .failure(.malformed("payload length \(len)"))
        }
        var h = SlotHeader(setUUID: LE.getUUID(b, 16), generation: LE.get(UInt64.self, b, 32),
                           payloadLength: len, payloadCRC: LE.get(UInt32.self, b, 48))
        h.version = v
        return .success(h)
    }
}

/// State of one replica, as `db status` shows it.
public enum ReplicaState: String, Codable, Sendable {
    /// Holds the configuration in force.
    case active
    /// Readable, but holds an older generation (refreshed when the set is opened read-write).
    case stale
    /// Missing device, I/O error, or no intact slot.
    case unreadable
    /// Holds a newer generation that could not be used (written by a newer metactl).
    case newer
}

/// One replica as found when the set was loaded (and kept current by commits).
public struct ReplicaStatus: Sendable, Equatable, Codable {
    public var location: ReplicaLocation
    /// Path of the device holding it (last known when it is missing).
    public var devicePath: String
    public var state: ReplicaState
    /// Newest intact generation found on it (0 if none).
    public var generation: UInt64
    /// What was skipped on this replica (bad checksums, torn slots, I/O errors).
    public var problems: [String]

    public var offsetBytes: UInt64 { location.offsetBytes }
    public var sizeBytes: UInt64 { location.sizeBytes }
    public init(location: ReplicaLocation, devicePath: String, state: ReplicaState, generation: UInt64,
                problems: [String] = []) {
        self.location = location; self.devicePath = devicePath; self.state = state
        self.generation = generation; self.problems = problems
    }
}

/// The quorum verdict (SVM rules): writable while strictly more than half of the
/// replicas listed in the configuration are readable and current.
public struct Quorum: Sendable, Equatable, Codable {
    /// Replicas holding an intact copy of the configuration in force (after refresh).
    public var readable: Int
    /// Replicas the configuration lists.
    public var total: Int
    public var writable: Bool
    public init(readable: Int, total: Int) {
        self.readable = readable; self.total = total
        writable = total > 0 && readable * 2 > total
    }
}

/// Reading and writing replica slots on a device.
enum ReplicaIO {
    /// One intact slot.
    struct SlotContent {
        var slot: Int
        var header: SlotHeader
        var payload: [UInt8]
    }

    /// Reads both slots of a replica at `offset`, returning the intact ones and the problems.
    static func readSlots(_ dev: any BlockDevice, offset: UInt64, slotSize: UInt64, setUUID: UUID)
        -> (intact: [SlotContent], problems: [String], ioError: Bool) {
        var out: [SlotContent] = []
        var problems: [String] = []
        var ioError = false
        for s in 0..<2 {
            let base = offset + UInt64(s) * slotSize
            guard base + slotSize <= dev.sizeBytes else {
                problems.append("slot \(s): beyond end of device"); ioError = true; continue
            }
            let first: [UInt8]
            do { first = try dev.read(count: DiskLayout.ioAlignment, at: base) } catch {
                problems.append("slot \(s): \(error)"); ioError = true; continue
            }
            let h: SlotHeader
            switch SlotHeader.decode(first, slotSize: slotSize) {
            case .success(let x): h = x
            case .failure(.empty): continue
            case .failure(let f): problems.append("slot \(s): \(f)"); continue
            }
            guard h.setUUID == setUUID else { problems.append("slot \(s): belongs to another set"); continue }
            let total = DiskLayout.slotHeaderSize + Int(h.payloadLength)
            let padded = (total + DiskLayout.ioAlignment - 1) / DiskLayout.ioAlignment * DiskLayout.ioAlignment
            var all = first
            if padded > first.count {
                do { all += try dev.read(count: padded - first.count, at: base + UInt64(first.count)) } catch {
                    problems.append("slot \(s): \(error)"); ioError = true; continue
                }
            }
            let payload = Array(all[DiskLayout.slotHeaderSize..<total])
            guard CRC32C.checksum(payload) == h.payloadCRC else {
                problems.append("slot \(s): payload checksum mismatch (generation \(h.generation), torn write?)")
                continue
            }
            out.append(SlotContent(slot: s, header: h, payload: payload))
        }
        return (out, problems, ioError)
    }

    /// Writes one slot (header + payload in a single write) and flushes.
    static func writeSlot(_ dev: any BlockDevice, offset: UInt64, slotSize: UInt64, slot: Int, setUUID: UUID,
                          generation: UInt64, payload: [UInt8]) throws(DeviceError) {
        let b = ReplicaImage.encodeSlot(setUUID: setUUID, generation: generation, payload: payload)
        try dev.write(bytes: b, at: offset + UInt64(slot) * slotSize)
        try dev.flush()
    }
}

/// One replica (its two slots) decoded from a raw image, without a device: the checks set
/// loading applies (``SetDatabase``), exposed for format tools and the fuzz targets.
public enum ReplicaImage {
    /// An intact slot: its generation and configuration payload (not yet decoded).
    public struct Slot: Sendable, Equatable {
        /// 0 or 1.
        public var index: Int
        public var generation: UInt64
        public var payload: [UInt8]
    }

    /// Decodes both slots of a replica of `slotSize`-byte slots from `image` (shorter images are
    /// zero-filled, longer ones truncated to the two slots): the intact slots and what was wrong
    /// with the others, as ``SetDatabase`` would report them.
    public static func decode(_ image: [UInt8], slotSize: UInt64, setUUID: UUID)
        -> (intact: [Slot], problems: [String]) {
        let size = 2 * Int(slotSize)
        let dev = MemoryDevice(path: "image", sizeBytes: UInt64(size))
        let bytes = image.count > size ? Array(image[0..<size]) : image
        if !bytes.isEmpty { try? dev.write(bytes: bytes, at: 0) }
        let r = ReplicaIO.readSlots(dev, offset: 0, slotSize: slotSize, setUUID: setUUID)
        return (r.intact.map { Slot(index: $0.slot, generation: $0.header.generation, payload: $0.payload) }, r.problems)
    }

    /// The on-disk image of one slot holding `payload` (header, payload, zero padding to 4 KiB), as
    /// a commit writes it.
    public static func encodeSlot(setUUID: UUID, generation: UInt64, payload: [UInt8]) -> [UInt8] {
        let h = SlotHeader(setUUID: setUUID, generation: generation, payloadLength: UInt64(payload.count),
                           payloadCRC: CRC32C.checksum(payload))
        var b = h.encoded() + payload
        let padded = (b.count + DiskLayout.ioAlignment - 1) / DiskLayout.ioAlignment * DiskLayout.ioAlignment
        b += [UInt8](repeating: 0, count: padded - b.count)
        return b
    }
}

/// Encoding of the configuration payload: compact JSON (sorted keys; dates as seconds since
/// 2001-01-01, Foundation's reference date, so they round-trip exactly), versioned by
/// ``SetConfig/formatVersion``.
public enum ConfigCodec {
    public static func encode(_ c: SetConfig) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(c))
    }

    /// Why a payload holds no usable configuration.
    public enum Failure: Error, Sendable, Equatable {
        /// Written by a newer metactl (this `formatVersion`).
        case newer(Int)
        /// Not a configuration of any known version.
        case malformed(String)
    }

    /// Decodes a replica payload; never traps on garbage.
    public static func decode(_ b: [UInt8]) -> Result<SetConfig, Failure> {
        struct Probe: Decodable { var formatVersion: Int }
        let d = JSONDecoder()
        let data = Data(b)
        guard let probe = try? d.decode(Probe.self, from: data) else { return .failure(.malformed("no formatVersion")) }
        if probe.formatVersion > SetConfig.currentFormatVersion { return .failure(.newer(probe.formatVersion)) }
        do { return .success(try d.decode(SetConfig.self, from: data)) } catch {
            return .failure(.malformed("\(error)"))
        }
    }
}
