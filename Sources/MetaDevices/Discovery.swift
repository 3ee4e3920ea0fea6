#if canImport(Glibc)
import Glibc
#endif
import CUdev
import CMetaShim

/// What a block device is.
public enum DeviceKind: String, Sendable, Codable {
    /// A whole disk (including virtual disks such as zram, nbd, virtio).
    case disk
    /// A partition of a disk.
    case partition
    /// A loop device.
    case loop
    /// A device-mapper device (LVM, dm-crypt, multipath…).
    case dm
    /// A Linux md RAID array.
    case md
    /// An optical drive.
    case rom
}

/// One block device as discovery sees it: identity, geometry, what libblkid finds on it,
/// and what uses it.
public struct DeviceInfo: Sendable, Codable, Equatable {
    /// Device node, e.g. `/dev/loop3`.
    public var path: String
    /// Kernel name, e.g. `loop3`.
    public var name: String
    public var kind: DeviceKind
    public var major: UInt32
    public var minor: UInt32
    /// Size in bytes (0 for a detached loop device or an empty drive).
    public var sizeBytes: UInt64
    public var readOnly: Bool
    public var logicalSectorSize: Int
    public var physicalSectorSize: Int
    /// Model (udev `ID_MODEL`, else sysfs `device/model`).
    public var model: String?
    /// Serial number (udev `ID_SERIAL_SHORT`/`ID_SERIAL`, else sysfs `serial`/`device/serial`).
    public var serial: String?
    /// World-wide name (udev `ID_WWN`, else sysfs `wwid`/`device/wwid`).
    public var wwn: String?
    /// For an attached loop device: its backing file.
    public var backingFile: String?
    /// Devices stacked on this one (`/sys/class/block/X/holders`), as device paths.
    public var holders: [String]
    /// For a disk: its partitions, as device paths.
    public var partitions: [String]
    /// For a partition: its disk, as a device path.
    public var parent: String?
    /// Where it is mounted (from `/proc/self/mountinfo`, matched by major:minor).
    public var mountPoints: [String]
    /// Whether it is an active swap area.
    public var swap: Bool
    /// What libblkid found (nil when not probed or the probe failed).
    public var probe: ProbeResult?
    /// Why probing failed, when it did (e.g. permission denied).
    public var probeError: String?
    /// The set this device belongs to, if any (filled in by the caller's membership hook).
    public var set: String?
    /// Its role in that set (e.g. `replica`, `component`, `spare`).
    public var role: String?

    public init(path: String, name: String, kind: DeviceKind, major: UInt32, minor: UInt32, sizeBytes: UInt64,
                readOnly: Bool = false, logicalSectorSize: Int = 512, physicalSectorSize: Int = 512,
                model: String? = nil, serial: String? = nil, wwn: String? = nil, backingFile: String? = nil,
                holders: [String] = [], partitions: [String] = [], parent: String? = nil,
                mountPoints: [String] = [], swap: Bool = false, probe: ProbeResult? = nil,
                probeError: String? = nil, set: String? = nil, role: String? = nil) {
        self.path = path
        self.name = name
        self.kind = kind
        self.major = major
        self.minor = minor
        self.sizeBytes = sizeBytes
        self.readOnly = readOnly
        self.logicalSectorSize = logicalSectorSize
        self.physicalSectorSize = physicalSectorSize
        self.model = model
        self.serial = serial
        self.wwn = wwn
        self.backingFile = backingFile
        self.holders = holders
        self.partitions = partitions
        self.parent = parent
        self.mountPoints = mountPoints
        self.swap = swap
        self.probe = probe
        self.probeError = probeError
        self.set = set
        self.role = role
    }

    /// The first mount point, if any.
    public var mountpoint: String? { mountPoints.first }
    /// libblkid's TYPE, else PTTYPE; nil when blank or not probed.
    public var signature: String? { probe?.signature }

    /// A one-line description of what uses the device, nil when nothing does
    /// (set membership is not included: see ``set``).
    public var use: String? {
        if let m = mountpoint { return "mounted on \(m)" }
        if swap { return "swap" }
        if !holders.isEmpty { return "held by \(holders.joined(separator: ","))" }
        return nil
    }

    // JSON: SPEC's keys first (`path`, `sizeBytes`, `kind`, `model`, `serial`, `signature`,
    // `mountpoint`, `set`, `role`), always present with null where unknown, plus extra detail.
    enum CodingKeys: String, CodingKey {
        case path, name, kind, major, minor, sizeBytes, readOnly, logicalSectorSize, physicalSectorSize
        case model, serial, wwn, backingFile, holders, partitions, parent, mountpoint, mountPoints, swap
        case signature, type, ptType, uuid, label, usage, probeError, set, role
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(name, forKey: .name)
        try c.encode(kind, forKey: .kind)
        try c.encode(major, forKey: .major)
        try c.encode(minor, forKey: .minor)
        try c.encode(sizeBytes, forKey: .sizeBytes)
        try c.encode(readOnly, forKey: .readOnly)
        try c.encode(logicalSectorSize, forKey: .logicalSectorSize)
        try c.encode(physicalSectorSize, forKey: .physicalSectorSize)
        try c.encode(model, forKey: .model)
        try c.encode(serial, forKey: .serial)
        try c.encode(wwn, forKey: .wwn)
        try c.encode(backingFile, forKey: .backingFile)
        try c.encode(holders, forKey: .holders)
        try c.encode(partitions, forKey: .partitions)
        try c.encode(parent, forKey: .parent)
        try c.encode(mountpoint, forKey: .mountpoint)
        try c.encode(mountPoints, forKey: .mountPoints)
        try c.encode(swap, forKey: .swap)
        try c.encode(signature, forKey: .signature)
        try c.encode(probe?.type, forKey: .type)
        try c.encode(probe?.ptType, forKey: .ptType)
        try c.encode(probe?.uuid, forKey: .uuid)
        try c.encode(probe?.label, forKey: .label)
        try c.encode(probe?.usage, forKey: .usage)
        try c.encode(probeError, forKey: .probeError)
        try c.encode(set, forKey: .set)
        try c.encode(role, forKey: .role)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? Sysfs.baseName(path)
        kind = try c.decode(DeviceKind.self, forKey: .kind)
        major = try c.decodeIfPresent(UInt32.self, forKey: .major) ?? 0
        minor = try c.decodeIfPresent(UInt32.self, forKey: .minor) ?? 0
        sizeBytes = try c.decode(UInt64.self, forKey: .sizeBytes)
        readOnly = try c.decodeIfPresent(Bool.self, forKey: .readOnly) ?? false
        logicalSectorSize = try c.decodeIfPresent(Int.self, forKey: .logicalSectorSize) ?? 512
        physicalSectorSize = try c.decodeIfPresent(Int.self, forKey: .physicalSectorSize) ?? 512
        model = try c.decodeIfPresent(String.self, forKey: .model)
        serial = try c.decodeIfPresent(String.self, forKey: .serial)
        wwn = try c.decodeIfPresent(String.self, forKey: .wwn)
        backingFile = try c.decodeIfPresent(String.self, forKey: .backingFile)
        holders = try c.decodeIfPresent([String].self, forKey: .holders) ?? []
        partitions = try c.decodeIfPresent([String].self, forKey: .partitions) ?? []
        parent = try c.decodeIfPresent(String.self, forKey: .parent)
        var mps = try c.decodeIfPresent([String].self, forKey: .mountPoints) ?? []
        if mps.isEmpty, let m = try c.decodeIfPresent(String.self, forKey: .mountpoint) { mps = [m] }
        mountPoints = mps
        swap = try c.decodeIfPresent(Bool.self, forKey: .swap) ?? false
        let type = try c.decodeIfPresent(String.self, forKey: .type)
        let ptType = try c.decodeIfPresent(String.self, forKey: .ptType)
        let signature = try c.decodeIfPresent(String.self, forKey: .signature)
        if type != nil || ptType != nil || signature != nil {
            probe = ProbeResult(type: type ?? (ptType == nil ? signature : nil), ptType: ptType,
                                uuid: try c.decodeIfPresent(String.self, forKey: .uuid),
                                label: try c.decodeIfPresent(String.self, forKey: .label),
                                usage: try c.decodeIfPresent(String.self, forKey: .usage))
        } else {
            probe = nil
        }
        probeError = try c.decodeIfPresent(String.self, forKey: .probeError)
        set = try c.decodeIfPresent(String.self, forKey: .set)
        role = try c.decodeIfPresent(String.self, forKey: .role)
    }
}

/// Block-device discovery: libudev enumeration, sysfs for what udev does not know
/// (always the case when no udev daemon runs, e.g. in containers), mount points from
/// `/proc/self/mountinfo`, and libblkid probing.
///
/// libudev is not thread-safe: every udev object is created, used and freed within one
/// synchronous call of ``enumerate(probe:)`` on the calling thread, and nothing udev-owned
/// escapes it. Everything else is plain file reads.
public enum Discovery {
    /// The set/role hook: given a device path, the set and role it has, if any.
    public typealias Membership = @Sendable (String) -> (set: String, role: String)?

    /// All block devices, sorted by name (`loop2` before `loop10`).
    ///
    /// - Parameter probe: also run libblkid on each device with a non-zero size.
    public static func enumerate(probe: Bool = true) -> [DeviceInfo] {
        let raw = udevScan() ?? sysfsScan()
        let mounts = MountTable.current()
        let swaps = SwapTable.current()
        var out: [DeviceInfo] = []
        for r in raw {
            guard var info = build(sysDir: r.sysDir, devnode: r.devnode, props: r.props,
                                   mounts: mounts, swaps: swaps) else { continue }
            if probe { fillProbe(&info) }
            out.append(info)
        }
        return out.sorted { naturalLess($0.name, $1.name) }
    }

    /// What `metactl devices` lists: every block device, without zero-size loop devices
    /// unless `all`, each probed and tagged with its set and role by `membership`.
    public static func listDevices(all: Bool = false, membership: Membership = { _ in nil }) -> [DeviceInfo] {
        var devices = enumerate(probe: true)
        if !all { devices.removeAll { $0.kind == .loop && $0.sizeBytes == 0 } }
        for i in devices.indices {
            if let m = membership(devices[i].path) {
                devices[i].set = m.set
                devices[i].role = m.role
            }
        }
        return devices
    }

    /// One block device by number, from sysfs alone (no udev properties, no probe).
    public static func device(major: UInt32, minor: UInt32) -> DeviceInfo? {
        let dir = "/sys/dev/block/\(major):\(minor)"
        guard Sysfs.exists(dir) else { return nil }
        return build(sysDir: dir, devnode: nil, props: [:], mounts: .current(), swaps: .current())
    }

    /// One block device by path (symlinks such as `/dev/disk/by-id/…` are followed), from
    /// sysfs alone; nil when the path is not a block device.
    public static func device(path: String) -> DeviceInfo? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFBLK else { return nil }
        return device(major: metashim_major(UInt64(st.st_rdev)), minor: metashim_minor(UInt64(st.st_rdev)))
    }

    /// Runs libblkid on the device and records the result or the failure.
    static func fillProbe(_ info: inout DeviceInfo) {
        guard info.sizeBytes > 0 else { return }
        do {
            info.probe = try Probe.probe(path: info.path)
        } catch {
            info.probeError = error.description
        }
    }

    // MARK: - Scanning

    struct RawDevice {
        var sysDir: String
        var devnode: String?
        var props: [String: String]
    }

    /// libudev enumeration of the `block` subsystem; nil when libudev is unusable.
    /// All udev objects live and die inside this call.
    static func udevScan() -> [RawDevice]? {
        guard let udev = udev_new() else { return nil }
        defer { _ = udev_unref(udev) }
        guard let en = udev_enumerate_new(udev) else { return nil }
        defer { _ = udev_enumerate_unref(en) }
        guard udev_enumerate_add_match_subsystem(en, "block") >= 0,
              udev_enumerate_scan_devices(en) >= 0 else { return nil }
        var out: [RawDevice] = []
        var entry = udev_enumerate_get_list_entry(en)
        while let e = entry {
            defer { entry = udev_list_entry_get_next(e) }
            guard let sp = udev_list_entry_get_name(e) else { continue }
            var raw = RawDevice(sysDir: String(cString: sp), devnode: nil, props: [:])
            if let dev = udev_device_new_from_syspath(udev, sp) {
                if let dn = udev_device_get_devnode(dev) { raw.devnode = String(cString: dn) }
                var p = udev_device_get_properties_list_entry(dev)
                while let pe = p {
                    if let k = udev_list_entry_get_name(pe), let v = udev_list_entry_get_value(pe) {
                        raw.props[String(cString: k)] = String(cString: v)
                    }
                    p = udev_list_entry_get_next(pe)
                }
                _ = udev_device_unref(dev)
            }
            out.append(raw)
        }
        return out
    }

    /// Fallback when libudev is unusable: `/sys/class/block`.
    static func sysfsScan() -> [RawDevice] {
        Sysfs.list("/sys/class/block").map { RawDevice(sysDir: "/sys/class/block/\($0)", devnode: nil, props: [:]) }
    }

    /// Builds a ``DeviceInfo`` from a sysfs directory plus udev properties when there are any.
    static func build(sysDir rawDir: String, devnode: String?, props: [String: String],
                      mounts: MountTable, swaps: SwapTable) -> DeviceInfo? {
        let dir = Sysfs.realPath(rawDir) ?? rawDir
        guard let devAttr = Sysfs.attr("\(dir)/dev"), let (major, minor) = Sysfs.parseMajorMinor(devAttr) else {
            return nil
        }
        let name = Sysfs.baseName(dir)
        let uevent = parseUevent(Sysfs.readFile("\(dir)/uevent") ?? "")
        let path = devnode ?? uevent["DEVNAME"].map { $0.hasPrefix("/") ? $0 : "/dev/\($0)" } ?? "/dev/\(name)"
        let isPartition = Sysfs.exists("\(dir)/partition") || props["DEVTYPE"] == "partition"
        let parentDir = isPartition ? Sysfs.dirName(dir) : nil
        let kind: DeviceKind
        if isPartition { kind = .partition }
        else if major == 7 || (name.hasPrefix("loop") && Sysfs.isDirectory("\(dir)/loop")) { kind = .loop }
        else if Sysfs.isDirectory("\(dir)/dm") { kind = .dm }
        else if Sysfs.isDirectory("\(dir)/md") { kind = .md }
        else if major == 11 { kind = .rom }
        else { kind = .disk }

        let sectors = Sysfs.attr("\(dir)/size").flatMap { UInt64($0) } ?? 0
        let (size, overflow) = sectors.multipliedReportingOverflow(by: 512)
        let queueDir = "\(parentDir ?? dir)/queue"
        let lss = Sysfs.attr("\(queueDir)/logical_block_size").flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 512
        let pss = Sysfs.attr("\(queueDir)/physical_block_size").flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? lss

        // Identity: udev properties first (partitions inherit them from their disk in the udev
        // database), sysfs otherwise (the disk's attributes for a partition).
        let idDir = parentDir ?? dir
        let model = props["ID_MODEL"].map(unescapeUdev) ?? Sysfs.attr("\(idDir)/device/model")
        let serial = props["ID_SERIAL_SHORT"] ?? props["ID_SERIAL"]
            ?? Sysfs.attr("\(idDir)/serial") ?? Sysfs.attr("\(idDir)/device/serial")
        let wwn = props["ID_WWN_WITH_EXTENSION"] ?? props["ID_WWN"]
            ?? Sysfs.attr("\(idDir)/wwid") ?? Sysfs.attr("\(idDir)/device/wwid")

        let backing = kind == .loop ? Sysfs.attr("\(dir)/loop/backing_file") : nil
        let holders = Sysfs.list("\(dir)/holders").map { "/dev/\($0)" }
        var partitions: [String] = []
        if !isPartition {
            for child in Sysfs.list(dir) where child.hasPrefix(name) && Sysfs.exists("\(dir)/\(child)/partition") {
                partitions.append("/dev/\(child)")
            }
        }
        let parentPath = parentDir.map { "/dev/\(Sysfs.baseName($0))" }
        return DeviceInfo(path: path, name: name, kind: kind, major: major, minor: minor,
                          sizeBytes: overflow ? UInt64.max : size,
                          readOnly: Sysfs.attr("\(dir)/ro") == "1",
                          logicalSectorSize: lss, physicalSectorSize: pss,
                          model: model, serial: serial, wwn: wwn, backingFile: backing,
                          holders: holders, partitions: partitions, parent: parentPath,
                          mountPoints: mounts.mountPoints(major: major, minor: minor),
                          swap: swaps.contains(major: major, minor: minor))
    }

    static func parseUevent(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            out[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return out
    }

    /// udev encodes unsafe characters as `\x20`; undo it for display.
    static func unescapeUdev(_ s: String) -> String {
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count, b[i + 1] == UInt8(ascii: "x"),
               let v = UInt8(String(decoding: b[(i + 2)...(i + 3)], as: UTF8.self), radix: 16) {
                out.append(v)
                i += 4
                continue
            }
            out.append(b[i])
            i += 1
        }
        return Sysfs.trim(String(decoding: out, as: UTF8.self))
    }
}
