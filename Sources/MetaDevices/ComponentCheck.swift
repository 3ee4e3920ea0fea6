#if canImport(Glibc)
import Glibc
#endif
import CMetaShim

/// A path that passed ``ComponentCheck``: what it is and what was found on it.
public struct ComponentCandidate: Sendable, Equatable {
    /// The path as the user gave it.
    public var path: String
    /// The path with symlinks resolved (e.g. `/dev/disk/by-id/…` → `/dev/sdb`).
    public var canonicalPath: String
    /// Block device or regular file.
    public var kind: ComponentKind
    public var sizeBytes: UInt64
    public var logicalSectorSize: Int
    public var physicalSectorSize: Int
    /// `st_rdev` for a block device, `st_dev` for a file.
    public var deviceNumber: UInt64
    /// Inode of a regular file (0 for block devices).
    public var inode: UInt64
    /// The signature that `--force` allowed to be overwritten, if any.
    public var overriddenSignature: ProbeResult?

    /// What makes two candidates the same device: the device number of a block device, the
    /// file system and inode of a file (so two paths of one device are caught).
    public var identity: String {
        kind == .blockDevice ? "b:\(deviceNumber)" : "f:\(deviceNumber):\(inode)"
    }

    /// The one wording for a device named twice in one command: `P: given twice` when the
    /// same path was repeated, `P: same device as FIRST` when two paths name one device.
    public static func duplicate(_ path: String, first: String) -> String {
        path == first ? "\(path): given twice" : "\(path): same device as \(first)"
    }
}

/// Why a path may not become a component. ``description`` is one line naming the path
/// and the reason, e.g. `/dev/loop3: has an ext4 file system (use --force to overwrite)`.
public enum ComponentCheckError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The path does not exist or cannot be examined.
    case cannotStat(path: String, errno: Int32)
    /// Neither a block device nor a regular file.
    case notBlockOrFile(path: String)
    /// The device, or `partition` of it, is mounted on `mountPoint`.
    case mounted(path: String, partition: String?, mountPoint: String)
    /// The device, or `partition` of it, is an active swap area.
    case swap(path: String, partition: String?)
    /// The device, or `partition` of it, is held by other block devices (device-mapper, md…).
    case held(path: String, partition: String?, holders: [String])
    /// The path backs the loop device `loop` (a file, or a block device under a loop device).
    case loopBacking(path: String, loop: String)
    /// Already a member of set `set`.
    case member(path: String, set: String)
    /// Opened exclusively by another program (`O_EXCL` refused with `EBUSY`).
    case busy(path: String)
    /// A regular file locked by another process (`flock`).
    case locked(path: String)
    /// Read-only device or file.
    case readOnly(path: String)
    /// Zero bytes long (e.g. a detached loop device).
    case empty(path: String)
    /// Opening for the check failed for another reason.
    case cannotOpen(path: String, errno: Int32)
    /// libblkid could not probe it.
    case probeFailed(path: String, detail: String)
    /// It carries a signature; allowed with `--force`.
    case hasSignature(path: String, probe: ProbeResult)

    /// The path at fault.
    public var path: String {
        switch self {
        case .cannotStat(let p, _), .notBlockOrFile(let p), .mounted(let p, _, _), .swap(let p, _),
             .held(let p, _, _), .loopBacking(let p, _), .member(let p, _), .busy(let p), .locked(let p),
             .readOnly(let p), .empty(let p), .cannotOpen(let p, _), .probeFailed(let p, _),
             .hasSignature(let p, _):
            return p
        }
    }

    /// Whether `--force` would let the path through.
    public var overridableByForce: Bool {
        if case .hasSignature = self { return true }
        return false
    }

    public var description: String { "\(path): \(reason)" }

    /// The reason alone (no path).
    public var reason: String {
        func errText(_ e: Int32) -> String { String(cString: strerror(e)) }
        switch self {
        case .cannotStat(_, let e): return e == ENOENT ? "does not exist" : "cannot be examined: \(errText(e))"
        case .notBlockOrFile: return "is not a block device or regular file"
        case .mounted(_, let part, let mp):
            return part.map { "its partition \($0) is mounted on \(mp)" } ?? "is mounted on \(mp)"
        case .swap(_, let part):
            return part.map { "its partition \($0) is in use as swap" } ?? "is in use as swap"
        case .held(_, let part, let holders):
            let h = holders.joined(separator: ", ")
            return part.map { "its partition \($0) is in use by \(h)" } ?? "is in use by \(h)"
        case .loopBacking(_, let loop): return "is the backing file of \(loop)"
        case .member(_, let set): return "is already a member of set '\(set)'"
        case .busy: return "is in use (opened exclusively by another program)"
        case .locked: return "is in use (locked by another process)"
        case .readOnly: return "is read-only"
        case .empty: return "is empty (0 bytes)"
        case .cannotOpen(_, let e): return "cannot be opened: \(errText(e))"
        case .probeFailed(_, let d): return "cannot be probed: \(d)"
        case .hasSignature(_, let probe):
            return "has \(probe.phrase ?? "a signature") (use --force to overwrite)"
        }
    }
}

/// The single "may this path become a component?" check every command that takes a
/// device runs before writing to it.
///
/// Always refused (in this order): a path that is not a block device or regular file; a
/// device that is mounted, swap, or held by another block device (dm, md…), or has a
/// partition that is; the backing file (or backing block device) of an attached loop
/// device; a member of a set (per the caller's membership lookup); a device opened
/// exclusively by another program (our `O_EXCL` open fails with `EBUSY`) or a file locked
/// by another process (our `flock(LOCK_EX|LOCK_NB)` fails); read-only or empty devices.
/// Refused unless `force`: any libblkid signature (file system, partition table, RAID or
/// LVM member, swap, crypto…).
///
/// The check opens the path briefly (exclusive, read-write, buffered) and closes it again;
/// it never writes.
public enum ComponentCheck {
    /// Membership lookup: given the canonical path and the candidate's identity, the name
    /// of the set it already belongs to, if any.
    public typealias MembershipLookup = (_ canonicalPath: String) -> String?

    /// Checks `path` with set membership given as a map from device path to set name
    /// (keys are compared after resolving symlinks).
    public static func check(path: String, force: Bool,
                             knownMembers: [String: String] = [:]) throws(ComponentCheckError) -> ComponentCandidate {
        var canonical: [String: String] = [:]
        for (p, set) in knownMembers { canonical[Sysfs.realPath(p) ?? p] = set }
        return try check(path: path, force: force, memberOf: { canonical[$0] })
    }

    /// Checks `path`; `memberOf` answers whether a canonical path is already in a set.
    public static func check(path: String, force: Bool,
                             memberOf: MembershipLookup) throws(ComponentCheckError) -> ComponentCandidate {
        var st = stat()
        guard stat(path, &st) == 0 else { throw .cannotStat(path: path, errno: errno) }
        let mode = st.st_mode & S_IFMT
        guard mode == S_IFBLK || mode == S_IFREG else { throw .notBlockOrFile(path: path) }
        let canonicalPath = Sysfs.realPath(path) ?? path
        let isBlock = mode == S_IFBLK

        if isBlock {
            let rdev = UInt64(st.st_rdev)
            try checkBlockUse(path: path, major: metashim_major(rdev), minor: metashim_minor(rdev))
            for loop in LoopBacking.all() where loop.rdev == rdev {
                throw .loopBacking(path: path, loop: loop.loopPath)
            }
        } else {
            for loop in LoopBacking.all()
            where loop.isBacked(byFileDevice: UInt64(st.st_dev), inode: UInt64(st.st_ino)) {
                throw .loopBacking(path: path, loop: loop.loopPath)
            }
            if SwapTable.current().files.contains([UInt64(st.st_dev), UInt64(st.st_ino)]) {
                throw .swap(path: path, partition: nil)
            }
        }

        if let set = memberOf(canonicalPath) ?? (canonicalPath != path ? memberOf(path) : nil) {
            throw .member(path: path, set: set)
        }

        // Exclusivity: the same open the engine will do, minus O_DIRECT.
        let dev: FileDevice
        do {
            dev = try FileDevice(path: path, options: OpenOptions(readOnly: false, exclusive: true, direct: .never))
        } catch {
            switch (error.operation, error.errno) {
            case (.open, EBUSY): throw .busy(path: path)
            case (.lock, EWOULDBLOCK): throw .locked(path: path)
            case (_, EROFS): throw .readOnly(path: path)
            default: throw .cannotOpen(path: path, errno: error.errno)
            }
        }
        let candidate = ComponentCandidate(path: path, canonicalPath: canonicalPath, kind: dev.kind,
                                           sizeBytes: dev.sizeBytes, logicalSectorSize: dev.logicalSectorSize,
                                           physicalSectorSize: dev.physicalSectorSize,
                                           deviceNumber: dev.deviceNumber, inode: isBlock ? 0 : dev.inode,
                                           overriddenSignature: nil)
        let readOnly = dev.isReadOnly
        dev.close()
        if readOnly { throw .readOnly(path: path) }
        if candidate.sizeBytes == 0 { throw .empty(path: path) }

        let probe: ProbeResult
        do {
            probe = try Probe.probe(path: path)
        } catch {
            switch error {
            case .cannotOpen(_, let e): throw .cannotOpen(path: path, errno: e)
            case .probeFailed(_, let d): throw .probeFailed(path: path, detail: d)
            }
        }
        var result = candidate
        if probe.hasSignature {
            if !force { throw .hasSignature(path: path, probe: probe) }
            result.overriddenSignature = probe
        }
        return result
    }

    /// Mounted / swap / held, for the device itself and each of its partitions.
    private static func checkBlockUse(path: String, major: UInt32, minor: UInt32) throws(ComponentCheckError) {
        let mounts = MountTable.current()
        let swaps = SwapTable.current()
        let dir = "/sys/dev/block/\(major):\(minor)"
        let resolved = Sysfs.realPath(dir) ?? dir
        let name = Sysfs.baseName(resolved)

        func use(_ ma: UInt32, _ mi: UInt32, _ d: String, _ partition: String?) throws(ComponentCheckError) {
            if let mp = mounts.mountPoints(major: ma, minor: mi).first {
                throw .mounted(path: path, partition: partition, mountPoint: mp)
            }
            if swaps.contains(major: ma, minor: mi) { throw .swap(path: path, partition: partition) }
            let holders = Sysfs.list("\(d)/holders").map { "/dev/\($0)" }
            if !holders.isEmpty { throw .held(path: path, partition: partition, holders: holders) }
        }

        try use(major, minor, resolved, nil)
        for child in Sysfs.list(resolved) where child.hasPrefix(name) && Sysfs.exists("\(resolved)/\(child)/partition") {
            let d = "\(resolved)/\(child)"
            guard let devAttr = Sysfs.attr("\(d)/dev"), let (ma, mi) = Sysfs.parseMajorMinor(devAttr) else { continue }
            try use(ma, mi, d, "/dev/\(child)")
        }
    }
}
