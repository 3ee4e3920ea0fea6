import CISAL
import Foundation
import MetaModel
import MetaDevices

/// CRC32C (Castagnoli), computed by ISA-L's `crc32_iscsi`: initial value `0xFFFFFFFF`,
/// final XOR `0xFFFFFFFF` (the standard check value of "123456789" is `0xE3069283`).
public enum CRC32C {
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
        let p = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self))
        return UInt32(crc32_iscsi(p, Int32(bytes.count), 0xFFFF_FFFF)) ^ 0xFFFF_FFFF
    }
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}

/// Little-endian field access in a byte array (bounds-checked by the callers' fixed layouts).
enum LE {
    static func put<T: FixedWidthInteger>(_ v: T, _ b: inout [UInt8], _ at: Int) {
        var x = v.littleEndian
        withUnsafeBytes(of: &x) { raw in for i in 0..<raw.count { b[at + i] = raw[i] } }
    }
    static func get<T: FixedWidthInteger>(_ type: T.Type, _ b: [UInt8], _ at: Int) -> T {
        var x: T = 0
        withUnsafeMutableBytes(of: &x) { raw in for i in 0..<raw.count { raw[i] = b[at + i] } }
        return T(littleEndian: x)
    }
    static func putUUID(_ u: UUID, _ b: inout [UInt8], _ at: Int) {
        let t = u.uuid
        let bytes = [t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7, t.8, t.9, t.10, t.11, t.12, t.13, t.14, t.15]
        for i in 0..<16 { b[at + i] = bytes[i] }
    }
    static func getUUID(_ b: [UInt8], _ at: Int) -> UUID {
        let s = Array(b[at..<at + 16])
        return UUID(uuid: (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
                           s[8], s[9], s[10], s[11], s[12], s[13], s[14], s[15]))
    }
}

/// Fixed geometry of the metadata at the start of every device of a set (see docs/FORMAT.md).
public enum DiskLayout {
    /// Size of one label copy.
    public static let labelSize = 4096
    /// Offsets of the two label copies.
    public static let labelOffsets: [UInt64] = [0, 4096]
    /// Where the replica area begins.
    public static let replicaAreaOffset: UInt64 = 64 << 10
    /// Default size of one replica slot (a replica is two slots).
    public static let defaultSlotSize: UInt64 = 2 << 20
    /// Smallest accepted slot size.
    public static let minimumSlotSize: UInt64 = 64 << 10
    /// Data areas are aligned to this.
    public static let dataAlignment: UInt64 = 1 << 20
    /// Size of a slot header.
    public static let slotHeaderSize = 512
    /// Writes of replica slots are padded to this.
    public static let ioAlignment = 4096

    /// Byte offset of replica `index` (both slots) on a device.
    public static func replicaOffset(index: Int, slotSize: UInt64) -> UInt64 {
        replicaAreaOffset + UInt64(index) * 2 * slotSize
    }
    /// First 512-byte block of the data area of a device holding `copies` replicas.
    public static func dataStartBlock(copies: Int, slotSize: UInt64) -> UInt64 {
        if copies <= 0 { return dataAlignment / 512 }
        let end = replicaOffset(index: copies, slotSize: slotSize)
        return (end + dataAlignment - 1) / dataAlignment * dataAlignment / 512
    }
}

/// The label every device of a set carries (two copies, at offsets 0 and 4096).
public struct Label: Sendable, Equatable {
    /// `METALBL1`
    public static let magic: [UInt8] = Array("METALBL1".utf8)
    /// The label format this code writes; a higher one is refused.
    public static let currentVersion: UInt32 = 1
    /// Longest set name the label stores (UTF-8 bytes).
    public static let maxSetNameBytes = 63

    public var version: UInt32 = Label.currentVersion
    public var setUUID: UUID
    public var setName: String
    public var deviceUUID: UUID
    public var role: DeviceRole
    /// Replicas on this device.
    public var replicaCount: Int
    /// Size of one replica slot in bytes (each replica has two).
    public var slotSize: UInt64
    /// First 512-byte block of the data area.
    public var dataStartBlock: UInt64
    /// Device size in bytes when labelled.
    public var deviceSizeBytes: UInt64
    /// Bumped on every rewrite; the higher of two intact copies wins.
    public var sequence: UInt64
    /// Freshness stamp: raised on every present device each time a server starts on the set
    /// (``SetDatabase/beginServing()``); the configuration records the stamp each device must
    /// carry (``DeviceRecord/epoch``). A device with a lower stamp is an older copy of the
    /// member (a snapshot, a clone, an old image) and is not used. 0 in labels written before
    /// the stamp existed.
    public var epoch: UInt64 = 0

    public init(setUUID: UUID, setName: String, deviceUUID: UUID, role: DeviceRole, replicaCount: Int,
                slotSize: UInt64, dataStartBlock: UInt64, deviceSizeBytes: UInt64, sequence: UInt64 = 1) {
        self.setUUID = setUUID; self.setName = setName; self.deviceUUID = deviceUUID; self.role = role
        self.replicaCount = replicaCount; self.slotSize = slotSize; self.dataStartBlock = dataStartBlock
        self.deviceSizeBytes = deviceSizeBytes; self.sequence = sequence
    }

    /// Where replica `index` of this device begins.
    public func replicaOffset(_ index: Int) -> UInt64 { DiskLayout.replicaOffset(index: index, slotSize: slotSize) }

    static func roleCode(_ r: DeviceRole) -> UInt32 {
        switch r { case .unused: 0; case .component: 1; case .hotSpare: 2; case .replica: 3; case .log: 4 }
    }
    static func role(code: UInt32) -> DeviceRole? {
        switch code { case 0: .unused; case 1: .component; case 2: .hotSpare; case 3: .replica; case 4: .log; default: nil }
    }

    /// The 4096-byte on-disk form.
    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: DiskLayout.labelSize)
        for i in 0..<8 { b[i] = Label.magic[i] }
        LE.put(version, &b, 8)
        LE.put(UInt32(DiskLayout.labelSize), &b, 12)
        LE.putUUID(setUUID, &b, 16)
        LE.putUUID(deviceUUID, &b, 32)
        LE.put(Label.roleCode(role), &b, 48)
        LE.put(UInt32(clamping: replicaCount), &b, 52)
        LE.put(slotSize, &b, 56)
        LE.put(dataStartBlock, &b, 64)
        LE.put(deviceSizeBytes, &b, 72)
        LE.put(sequence, &b, 80)
        LE.put(DiskLayout.replicaAreaOffset, &b, 88)
        LE.put(epoch, &b, 104)
        let name = Array(setName.utf8.prefix(Label.maxSetNameBytes))
        LE.put(UInt16(name.count), &b, 96)
        for (i, c) in name.enumerated() { b[128 + i] = c }
        let crc = CRC32C.checksum(b[0..<(DiskLayout.labelSize - 4)])
        LE.put(crc, &b, DiskLayout.labelSize - 4)
        return b
    }

    /// Why a label copy could not be used.
    public enum DecodeFailure: Error, Sendable, Equatable, CustomStringConvertible {
        /// No label magic: the device is not labelled (or the copy is destroyed).
        case noMagic
        case badChecksum
        /// Intact, but written by a newer format version.
        case newerVersion(UInt32)
        case malformed(String)
        public var description: String {
            switch self {
            case .noMagic: "no label"
            case .badChecksum: "label checksum mismatch"
            case .newerVersion(let v):
                "label format version \(v) is newer than this metactl understands (\(Label.currentVersion)); upgrade metactl"
            case .malformed(let s): "malformed label: \(s)"
            }
        }
    }

    /// Decodes one label copy; never traps on garbage.
    public static func decode(_ b: [UInt8]) -> Result<Label, DecodeFailure> {
        guard b.count >= DiskLayout.labelSize else { return .failure(.malformed("short")) }
        guard Array(b[0..<8]) == magic else { return .failure(.noMagic) }
        let stored: UInt32 = LE.get(UInt32.self, b, DiskLayout.labelSize - 4)
        guard CRC32C.checksum(b[0..<(DiskLayout.labelSize - 4)]) == stored else { return .failure(.badChecksum) }
        let version: UInt32 = LE.get(UInt32.self, b, 8)
        if version > currentVersion { return .failure(.newerVersion(version)) }
        if version == 0 { return .failure(.malformed("version 0")) }
        guard let role = role(code: LE.get(UInt32.self, b, 48)) else { return .failure(.malformed("unknown role")) }
        let count = Int(LE.get(UInt32.self, b, 52))
        let slot: UInt64 = LE.get(UInt64.self, b, 56)
        let areaOffset: UInt64 = LE.get(UInt64.self, b, 88)
        guard count <= 64 else { return .failure(.malformed("replica count \(count)")) }
        guard count == 0 || (slot >= DiskLayout.minimumSlotSize && slot <= 1 << 32 && slot % 4096 == 0)
        else { return .failure(.malformed("slot size \(slot)")) }
        guard areaOffset == DiskLayout.replicaAreaOffset else { return .failure(.malformed("replica area offset")) }
        let nameLen = Int(LE.get(UInt16.self, b, 96))
        guard nameLen <= maxSetNameBytes, let name = String(validating: b[128..<(128 + nameLen)], as: UTF8.self)
        else { return .failure(.malformed("set name")) }
        var l = Label(setUUID: LE.getUUID(b, 16), setName: name, deviceUUID: LE.getUUID(b, 32), role: role,
                      replicaCount: count, slotSize: slot, dataStartBlock: LE.get(UInt64.self, b, 64),
                      deviceSizeBytes: LE.get(UInt64.self, b, 72), sequence: LE.get(UInt64.self, b, 80))
        l.version = version
        l.epoch = LE.get(UInt64.self, b, 104)
        return .success(l)
    }

    /// Result of reading both copies of a device's label.
    public struct ReadResult: Sendable {
        /// The label in force (the intact copy with the highest sequence), if any.
        public var label: Label?
        /// What was wrong with each copy that could not be used (index 0 or 1).
        public var problems: [(copy: Int, failure: DecodeFailure)]
        /// Whether both copies are intact and equal.
        public var bothIntact: Bool
    }

    /// Reads both label copies of a device. I/O errors count as a failed copy.
    public static func read(from device: any BlockDevice) -> ReadResult {
        var best: Label?
        var problems: [(Int, DecodeFailure)] = []
        var intact: [Label] = []
        for (i, off) in DiskLayout.labelOffsets.enumerated() {
            guard device.sizeBytes >= off + UInt64(DiskLayout.labelSize) else {
                problems.append((i, .malformed("device too small"))); continue
            }
            let bytes: [UInt8]
            do { bytes = try device.read(count: DiskLayout.labelSize, at: off) } catch {
                problems.append((i, .malformed("\(error)"))); continue
            }
            switch decode(bytes) {
            case .success(let l):
                intact.append(l)
                if best == nil || l.sequence > best!.sequence { best = l }
            case .failure(let f): problems.append((i, f))
            }
        }
        return ReadResult(label: best, problems: problems,
                          bothIntact: intact.count == 2 && intact[0] == intact[1])
    }

    /// Writes both copies (each flushed before the next, so a torn write leaves one intact).
    public func write(to device: any BlockDevice) throws(DeviceError) {
        let b = encoded()
        for off in DiskLayout.labelOffsets {
            try device.write(bytes: b, at: off)
            try device.flush()
        }
    }

    /// Destroys both label copies and the replica slot headers behind them.
    public static func wipe(_ device: any BlockDevice, replicaCount: Int, slotSize: UInt64) throws(DeviceError) {
        let zero = [UInt8](repeating: 0, count: DiskLayout.ioAlignment)
        for i in 0..<replicaCount {
            for s in 0..<2 {
                let off = DiskLayout.replicaOffset(index: i, slotSize: slotSize) + UInt64(s) * slotSize
                if off + UInt64(zero.count) <= device.sizeBytes { try device.write(bytes: zero, at: off) }
            }
        }
        try device.write(bytes: [UInt8](repeating: 0, count: 2 * DiskLayout.labelSize), at: 0)
        try device.flush()
    }
}
