#if canImport(Glibc)
import Glibc
#endif
import CBlkid
import CMetaShim

/// What libblkid found on a device or image file.
///
/// `type` is the superblock chain's `TYPE` (file system, swap, RAID or LVM member, crypto
/// container…), `ptType` the partition chain's `PTTYPE` (`dos`, `gpt`…). A device with
/// neither is blank as far as libblkid can tell.
public struct ProbeResult: Sendable, Codable, Equatable {
    /// `TYPE`, e.g. `ext4`, `xfs`, `swap`, `linux_raid_member`, `LVM2_member`.
    public var type: String?
    /// `PTTYPE`, e.g. `dos`, `gpt`.
    public var ptType: String?
    /// `UUID` of the file system (or `PTUUID` of the partition table when there is no file system).
    public var uuid: String?
    /// `LABEL`.
    public var label: String?
    /// `USAGE`: `filesystem`, `raid`, `crypto` or `other`.
    public var usage: String?
    /// Every type seen when libblkid found several conflicting signatures (an "ambivalent"
    /// result); empty otherwise.
    public var ambivalentTypes: [String]

    public init(type: String? = nil, ptType: String? = nil, uuid: String? = nil, label: String? = nil,
                usage: String? = nil, ambivalentTypes: [String] = []) {
        self.type = type
        self.ptType = ptType
        self.uuid = uuid
        self.label = label
        self.usage = usage
        self.ambivalentTypes = ambivalentTypes
    }

    /// The signature to show: `TYPE`, else `PTTYPE`, else the first ambivalent type; nil when blank.
    public var signature: String? { type ?? ptType ?? ambivalentTypes.first }

    /// Whether anything at all was found.
    public var hasSignature: Bool { signature != nil }

    /// Words for "has …", e.g. `an ext4 file system`, `a gpt partition table`,
    /// `a linux_raid_member RAID/LVM signature`; nil when blank.
    public var phrase: String? {
        if !ambivalentTypes.isEmpty && type == nil {
            return "several conflicting signatures (\(ambivalentTypes.joined(separator: ", ")))"
        }
        if let type {
            switch usage {
            case "filesystem": return "\(Self.article(type)) \(type) file system"
            case "raid": return "\(Self.article(type)) \(type) RAID/LVM member signature"
            case "crypto": return "\(Self.article(type)) \(type) encrypted volume"
            default: return "\(Self.article(type)) \(type) signature"
            }
        }
        if let ptType { return "\(Self.article(ptType)) \(ptType) partition table" }
        return nil
    }

    /// `a`/`an` by the way type names are usually read (`an ext4`, `an xfs`, `a gpt`).
    static func article(_ word: String) -> String {
        guard let c = word.lowercased().first else { return "a" }
        return "aeioux".contains(c) ? "an" : "a"
    }
}

/// Why probing failed.
public enum ProbeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The path could not be opened (errno carried).
    case cannotOpen(path: String, errno: Int32)
    /// libblkid could not set up or run a probe on the opened descriptor.
    case probeFailed(path: String, detail: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let e): return "\(path): cannot be opened: \(String(cString: strerror(e)))"
        case .probeFailed(let path, let detail): return "\(path): libblkid probe failed: \(detail)"
        }
    }

    /// The same failure as a ``DeviceError``.
    public var deviceError: DeviceError {
        switch self {
        case .cannotOpen(let path, let e): return DeviceError(path: path, operation: .open, errno: e)
        case .probeFailed(let path, let detail):
            return DeviceError(path: path, operation: .probe, errno: 0, detail: detail)
        }
    }
}

/// libblkid safe probing of block devices and image files.
///
/// Uses the superblock chain (TYPE, UUID, LABEL, USAGE) and the partition chain (PTTYPE)
/// with `blkid_do_safeprobe`, which refuses to guess when signatures conflict; in that
/// case the conflicting types are collected with low-level probing and reported in
/// ``ProbeResult/ambivalentTypes``. The device is opened read-only by this code (not by
/// `blkid_new_probe_from_filename`) so a failure to open is reported with its errno.
/// Garbage content never crashes: libblkid simply finds nothing.
public enum Probe {
    /// Probes `path` (a block device or a regular file).
    public static func probe(path: String) throws(ProbeError) -> ProbeResult {
        let fd = metashim_open(path, O_RDONLY | O_NONBLOCK | metashim_o_cloexec(), 0)
        if fd < 0 { throw .cannotOpen(path: path, errno: -fd) }
        defer { Glibc.close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw .cannotOpen(path: path, errno: Glibc.errno) }
        let mode = st.st_mode & S_IFMT
        guard mode == S_IFBLK || mode == S_IFREG else {
            throw .probeFailed(path: path, detail: "not a block device or regular file")
        }
        if mode == S_IFREG && st.st_size == 0 { return ProbeResult() }
        if mode == S_IFBLK {
            var size: UInt64 = 0
            if metashim_blkgetsize64(fd, &size) == 0 && size == 0 { return ProbeResult() }
        }
        guard let pr = blkid_new_probe() else { throw .probeFailed(path: path, detail: "cannot allocate a probe") }
        defer { blkid_free_probe(pr) }
        if blkid_probe_set_device(pr, fd, 0, 0) != 0 {
            throw .probeFailed(path: path, detail: "cannot attach the device to the probe")
        }
        configure(pr)
        let rc = blkid_do_safeprobe(pr)
        switch rc {
        case 0:
            return ProbeResult(type: value(pr, "TYPE"), ptType: value(pr, "PTTYPE"),
                               uuid: value(pr, "UUID") ?? value(pr, "PTUUID"),
                               label: value(pr, "LABEL"), usage: value(pr, "USAGE"))
        case 1:
            return ProbeResult()
        case -2:
            return ProbeResult(ambivalentTypes: ambivalent(pr))
        default:
            throw .probeFailed(path: path, detail: "blkid_do_safeprobe returned \(rc)")
        }
    }

    private static func configure(_ pr: OpaquePointer) {
        blkid_probe_enable_superblocks(pr, 1)
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE
                                              | BLKID_SUBLKS_USAGE)
        blkid_probe_enable_partitions(pr, 1)
        blkid_probe_set_partitions_flags(pr, 0)
    }

    /// Low-level probing after an ambivalent safe probe: one result per call, every chain.
    private static func ambivalent(_ pr: OpaquePointer) -> [String] {
        blkid_reset_probe(pr)
        var types: [String] = []
        var steps = 0
        while steps < 64, blkid_do_probe(pr) == 0 {
            steps += 1
            for key in ["TYPE", "PTTYPE"] {
                if let v = value(pr, key), !types.contains(v) { types.append(v) }
            }
        }
        return types
    }

    private static func value(_ pr: OpaquePointer, _ name: String) -> String? {
        var data: UnsafePointer<CChar>? = nil
        var len = 0
        guard blkid_probe_lookup_value(pr, name, &data, &len) == 0, let data else { return nil }
        let s = String(cString: data)
        return s.isEmpty ? nil : s
    }
}
