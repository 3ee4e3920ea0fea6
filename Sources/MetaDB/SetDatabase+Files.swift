import Foundation
import MetaModel
import MetaDevices
#if canImport(Glibc)
import Glibc
#endif

extension SetDatabase {
    /// How long a read-write open waits for another process holding the set lock
    /// (`METACTL_LOCK_TIMEOUT` seconds, default 30). A value that is not a finite number of
    /// seconds from 0 to one year (`nan`, `-1`, `abc`) is ignored with a warning on stderr.
    public static let lockTimeout: Double = parseLockTimeout(ProcessInfo.processInfo.environment["METACTL_LOCK_TIMEOUT"],
                                                             warn: { FileHandle.standardError.write(Data("metactl: \($0)\n".utf8)) })

    /// The lock timeout `text` gives (default 30 s when nil or invalid; `warn` is told why).
    public static func parseLockTimeout(_ text: String?, warn: (String) -> Void) -> Double {
        guard let text else { return 30 }
        if let v = Double(text.trimmingCharacters(in: .whitespaces)), v.isFinite, v >= 0, v <= 365 * 86400 { return v }
        warn("METACTL_LOCK_TIMEOUT='\(text)' is not a number of seconds between 0 and 31536000; using 30")
        return 30
    }

    /// Path of the lock file that serialises processes changing a set.
    public static func lockPath(setName: String, runDir: String) -> String { "\(runDir)/\(setName).lock" }

    /// The PID written in the set's lock file by its holder (nil when none is recorded).
    /// Only meaningful while the lock is known to be held.
    public static func lockHolder(setName: String, runDir: String) -> Int32? {
        (try? String(contentsOfFile: lockPath(setName: setName, runDir: runDir), encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Throws unless `name` is a valid name for a new set: up to 63 lower-case ASCII letters,
    /// digits, `_`, `.`, `-`, starting with a letter or digit. Lower case, as volume names
    /// are, so that `local` and `LOCAL` cannot be two sets. (Sets created by older versions
    /// with upper-case names still open; only new names are checked.)
    public static func validateSetName(_ name: String) throws {
        func lowerOrDigit(_ c: Character) -> Bool { c.isASCII && (c.isLowercase || c.isNumber) }
        let ok = !name.isEmpty && name.utf8.count <= Label.maxSetNameBytes
            && name.allSatisfy { lowerOrDigit($0) || "_.-".contains($0) }
            && name.first.map(lowerOrDigit) == true
        guard ok else {
            throw DatabaseError.invalid("bad set name '\(name)': use up to 63 lower-case letters, digits, '_', '.', '-', starting with a letter or digit")
        }
    }

    /// Creates a new set with replicas on the given devices (paths; `copies` replicas each),
    /// labels them (role `.replica`; change `DeviceRecord.role` in a later commit and the
    /// label follows), registers the set in the host registry under `configDir`, and returns
    /// it open read-write (holding the set lock).
    public static func create(setName: String, replicaDevices: [(path: String, copies: Int)], configDir: String,
                              runDir: String, force: Bool) throws -> SetDatabase {
        try create(setName: setName, replicaDevices: replicaDevices, configDir: configDir, runDir: runDir,
                   force: force, slotSize: DiskLayout.defaultSlotSize)
    }

    /// ``create(setName:replicaDevices:configDir:runDir:force:)`` with a chosen replica slot size.
    public static func create(setName: String, replicaDevices: [(path: String, copies: Int)], configDir: String,
                              runDir: String, force: Bool, slotSize: UInt64) throws -> SetDatabase {
        try validateSetName(setName)
        guard !replicaDevices.isEmpty else { throw DatabaseError.invalid("no device given for the state database") }
        let lock = try FileLock(path: lockPath(setName: setName, runDir: runDir), timeout: lockTimeout,
                                what: "set '\(setName)'")
        if let e = try HostRegistry.load(configDir: configDir).entry(named: setName) {
            lock.unlock()
            _ = e
            throw DatabaseError.setExists(setName)
        }
        var seen: [String: String] = [:]
        for d in replicaDevices {
            let real = realPath(d.path)
            if let first = seen[real] {
                lock.unlock()
                throw DatabaseError.invalid(ComponentCandidate.duplicate(d.path, first: first))
            }
            seen[real] = d.path
        }
        var opened: [(device: any BlockDevice, copies: Int)] = []
        do {
            for d in replicaDevices {
                try DeviceCheck.checkCandidate(path: d.path, force: force, configDir: configDir)
                let dev: FileDevice
                do { dev = try FileDevice(path: d.path, options: OpenOptions(readOnly: false, exclusive: true)) } catch {
                    throw DatabaseError.badCandidate(path: d.path, reason: "cannot open: \(error)")
                }
                opened.append((dev, d.copies))
            }
            let db = try create(setName: setName, devices: opened, slotSize: slotSize, configDir: configDir)
            db.setLock = lock
            db.updateRegistry()
            return db
        } catch {
            for o in opened { (o.device as? FileDevice)?.close() }
            lock.unlock()
            throw error
        }
    }

    /// Creates a set over already opened devices (unit tests, doubles): labels them, writes
    /// generation 1 to every replica, and returns it open read-write. Nothing is registered.
    public static func create(setName: String, devices: [(device: any BlockDevice, copies: Int)],
                              slotSize: UInt64 = DiskLayout.defaultSlotSize) throws -> SetDatabase {
        try create(setName: setName, devices: devices, slotSize: slotSize, configDir: nil)
    }

    static func create(setName: String, devices: [(device: any BlockDevice, copies: Int)], slotSize: UInt64,
                       configDir: String?) throws -> SetDatabase {
        try validateSetName(setName)
        guard devices.contains(where: { $0.copies > 0 }) else {
            throw DatabaseError.invalid("the state database needs at least one replica")
        }
        let setUUID = UUID()
        let empty = SetConfig(setName: setName, setUUID: setUUID)
        let db = SetDatabase(setName: setName, setUUID: setUUID, mode: .readWrite, configDir: configDir,
                             config: empty, generation: 0, highest: 0, devices: [:], labels: [:], statuses: [],
                             newestSlot: [:], skipped: [])
        try db.commit(requireQuorum: false) { c in
            for d in devices {
                _ = try db.addDevice(d.device, role: .replica, replicaCopies: d.copies, slotSize: slotSize, in: &c)
            }
        }
        return db
    }

    /// Opens a set this host knows (from the registry in `configDir`): finds its devices by
    /// label UUID (registry paths first, then a scan of the block devices in sysfs and of the
    /// image files the registry names), loads the newest intact configuration, refreshes stale
    /// replicas and computes the quorum. `.readWrite` takes the set lock (waiting up to
    /// ``lockTimeout``) and requires quorum unless `requireQuorum` is false (then only
    /// ``deleteReplicas(onDevices:force:)`` with `force` can commit); `.readOnly` opens
    /// whenever any replica is readable, takes no lock and opens devices shared.
    /// `lockTimeout` overrides how long to wait for the set lock.
    public static func open(setName: String, configDir: String, runDir: String, mode: Mode,
                            requireQuorum: Bool = true, lockTimeout: Double? = nil) throws -> SetDatabase {
        let registry = try HostRegistry.load(configDir: configDir)
        guard let entry = registry.entry(named: setName) else {
            throw DatabaseError.unknownSet(setName, configDir: configDir)
        }
        var lock: FileLock?
        if mode == .readWrite {
            lock = try FileLock(path: lockPath(setName: setName, runDir: runDir), timeout: lockTimeout ?? Self.lockTimeout,
                                what: "set '\(setName)'")
        }
        let finder = DeviceFinder(setUUID: entry.uuid, mode: mode, registry: registry)
        do {
            for d in entry.devices { finder.tryPath(d.path) }
            finder.findMissing(Set(entry.devices.map(\.uuid)))
            // Replica holders known; load, then look for the devices the configuration names.
            var loaded = try load(setName: setName, setUUID: entry.uuid, devices: finder.devices, labels: finder.labels)
            let wanted = Set(loaded.config.devices.map(\.uuid))
            let before = Set(finder.devices.keys)
            for rec in loaded.config.devices where finder.devices[rec.uuid] == nil { finder.tryPath(rec.lastPath) }
            finder.findMissing(wanted)
            // Older copies of members (a label stamp below the configuration's) are not used;
            // the member itself may be found elsewhere.
            finder.expectedEpoch = Dictionary(loaded.config.devices.map { ($0.uuid, $0.epoch ?? 0) }, uniquingKeysWith: max)
            if !finder.dropStale().isEmpty { finder.findMissing(wanted) }
            if Set(finder.devices.keys) != before || finder.droppedStale {
                loaded = try load(setName: setName, setUUID: entry.uuid, devices: finder.devices, labels: finder.labels)
            }
            // Devices of this set that the configuration no longer lists are not ours to hold.
            for (u, d) in finder.devices where !loaded.config.devices.contains(where: { $0.uuid == u }) {
                (d as? FileDevice)?.close()
                finder.devices[u] = nil
                finder.labels[u] = nil
            }
            let db = SetDatabase(setName: setName, setUUID: entry.uuid, mode: mode, configDir: configDir,
                                 config: loaded.config, generation: loaded.generation, highest: loaded.highest,
                                 devices: finder.devices, labels: finder.labels, statuses: loaded.statuses,
                                 newestSlot: loaded.newestSlot, skipped: finder.problems + loaded.skipped,
                                 outvoted: loaded.outvoted, conflict: loaded.conflict, incomplete: loaded.incomplete)
            db.setLock = lock
            do { try db.finishOpen(requireQuorum: requireQuorum) } catch { db.close(); throw error }
            if mode == .readWrite && db.quorum.writable { db.recordMovedDevices() }
            return db
        } catch {
            for d in finder.devices.values { (d as? FileDevice)?.close() }
            lock?.unlock()
            if case DatabaseError.noReplica = error { throw finder.cause(setName: setName, runDir: runDir) ?? error }
            throw error
        }
    }

    /// Commits new `lastPath`s for devices found under another name, and refreshes the registry.
    func recordMovedDevices() {
        let moved = config.devices.compactMap { rec -> (UUID, String)? in
            guard let d = device(rec.uuid), d.path != rec.lastPath else { return nil }
            return (rec.uuid, d.path)
        }
        if !moved.isEmpty {
            _ = try? commit { c in
                for (u, p) in moved { if let i = c.devices.firstIndex(where: { $0.uuid == u }) { c.devices[i].lastPath = p } }
            }
        }
        updateRegistry()
    }

    /// Which set and role each device path the registry knows belongs to (for
    /// `metactl devices` and in-use checks). Unreadable registry: empty.
    public static func membership(configDir: String) -> [String: (set: String, role: String)] {
        guard let r = try? HostRegistry.load(configDir: configDir) else { return [:] }
        var out: [String: (set: String, role: String)] = [:]
        for s in r.sets { for d in s.devices { out[d.path] = (s.name, d.role.rawValue) } }
        return out
    }

    /// Reads the label of a device or image file without locking it; nil when there is none,
    /// the path cannot be read, or both copies are damaged. Never traps on garbage.
    public static func readLabel(path: String) -> Label? {
        readLabelResult(path: path)?.label
    }

    /// Both label copies' verdict for a path (nil when it cannot be opened).
    public static func readLabelResult(path: String) -> Label.ReadResult? {
        guard let d = try? FileDevice(path: path, options: OpenOptions(readOnly: true, exclusive: false, direct: .never))
        else { return nil }
        defer { d.close() }
        return Label.read(from: d)
    }

    /// `p` with symlinks resolved (itself when it cannot be resolved).
    public static func canonicalPath(_ p: String) -> String { realPath(p) }

    static func realPath(_ p: String) -> String {
        guard let r = Glibc.realpath(p, nil) else { return p }
        defer { free(r) }
        return String(cString: r)
    }
}

/// Finds the devices of one set by label UUID.
final class DeviceFinder {
    let setUUID: UUID
    let mode: SetDatabase.Mode
    let registry: HostRegistry
    var devices: [UUID: any BlockDevice] = [:]
    var labels: [UUID: Label] = [:]
    var problems: [String] = []
    /// The stamp each device's label must carry (``DeviceRecord/epoch``), once the
    /// configuration is known: a device below it is a stale copy and is not opened.
    var expectedEpoch: [UUID: UInt64] = [:]
    /// Whether ``dropStale()`` closed a device already opened.
    private(set) var droppedStale = false
    /// Paths of the set that could not be opened, with the errno: what to blame when no
    /// replica is readable.
    var openFailures: [(path: String, errno: Int32)] = []
    private var openedPaths = Set<String>()
    /// Paths found holding stale copies (not tried again).
    private var stalePaths = Set<String>()
    private var scanned: [UUID: [String]]?

    init(setUUID: UUID, mode: SetDatabase.Mode, registry: HostRegistry) {
        self.setUUID = setUUID; self.mode = mode; self.registry = registry
    }

    private var options: OpenOptions {
        mode == .readWrite ? OpenOptions(readOnly: false, exclusive: true) : OpenOptions(readOnly: true, exclusive: false)
    }

    /// Opens `path` if it carries a label of this set (under whatever device UUID it names).
    func tryPath(_ path: String) {
        let real = SetDatabase.realPath(path)
        guard !openedPaths.contains(real), !stalePaths.contains(real), FileManager.default.fileExists(atPath: path) else { return }
        // Peek without locking first: a device of another set must not be locked by us.
        guard let peek = SetDatabase.readLabel(path: path) else {
            if access(path, R_OK) != 0 && (errno == EACCES || errno == EPERM) { openFailures.append((path, EACCES)) }
            return
        }
        guard peek.setUUID == setUUID, devices[peek.deviceUUID] == nil else { return }
        let d: FileDevice
        do { d = try FileDevice(path: path, options: options) } catch {
            problems.append("\(path): \(error)")
            openFailures.append((path, error.errno))
            return
        }
        let r = Label.read(from: d)
        guard let l = r.label, l.setUUID == setUUID, devices[l.deviceUUID] == nil else { d.close(); return }
        if let want = expectedEpoch[l.deviceUUID], l.epoch < want {
            d.close()
            noteStale(path: path, real: real, label: l, expected: want)
            return
        }
        for p in r.problems { problems.append("\(path): label copy \(p.copy): \(p.failure)") }
        devices[l.deviceUUID] = d
        labels[l.deviceUUID] = l
        openedPaths.insert(real)
    }

    /// Why no device of the set could be opened, when the cause is one the user can act on:
    /// permission (not root), or the devices held exclusively by another process (a server
    /// of the set started with another --run-dir).
    func cause(setName: String, runDir: String) -> DatabaseError? {
        if let f = openFailures.first(where: { $0.errno == EACCES || $0.errno == EPERM }) {
            return .permission(path: f.path, hint: "reading set '\(setName)' needs access to its devices: run as root")
        }
        // EBUSY: a block device opened exclusively elsewhere; EWOULDBLOCK: an image file
        // another process holds the lock of.
        if let f = openFailures.first(where: { $0.errno == EBUSY || $0.errno == EWOULDBLOCK }) {
            return .devicesHeld(set: setName, path: f.path,
                                holder: f.errno == EWOULDBLOCK ? FileLockHolder.pid(of: f.path) : nil, runDir: runDir)
        }
        return nil
    }

    /// Scans sysfs block devices and every path in the registry for the missing UUIDs.
    func findMissing(_ wanted: Set<UUID>) {
        let missing = wanted.subtracting(devices.keys)
        guard !missing.isEmpty else { return }
        if scanned == nil {
            var found: [UUID: [String]] = [:]
            for p in DeviceScan.candidatePaths(extra: registry.sets.flatMap { $0.devices.map(\.path) }) {
                if let l = SetDatabase.readLabel(path: p), l.setUUID == setUUID { found[l.deviceUUID, default: []].append(p) }
            }
            scanned = found
        }
        for u in missing {
            for p in scanned?[u] ?? [] where devices[u] == nil && !stalePaths.contains(SetDatabase.realPath(p)) { tryPath(p) }
        }
    }

    /// Closes the devices already opened whose label stamp is below ``expectedEpoch``.
    /// Returns their UUIDs.
    func dropStale() -> [UUID] {
        var dropped: [UUID] = []
        for (u, l) in labels {
            guard let want = expectedEpoch[u], l.epoch < want, let d = devices[u] else { continue }
            (d as? FileDevice)?.close()
            devices[u] = nil
            labels[u] = nil
            let real = SetDatabase.realPath(d.path)
            openedPaths.remove(real)
            noteStale(path: d.path, real: real, label: l, expected: want)
            dropped.append(u)
        }
        if !dropped.isEmpty { droppedStale = true }
        return dropped
    }

    private func noteStale(path: String, real: String, label l: Label, expected: UInt64) {
        stalePaths.insert(real)
        problems.append(SetDatabase.staleNote(path: path, device: l.deviceUUID, stamp: l.epoch, expected: expected))
    }
}

/// Enumerates the block devices of the system (sysfs) for label scans.
public enum DeviceScan {
    /// `/dev/NAME` for every block device in `/sys/class/block` with a non-zero size, then `extra`.
    public static func candidatePaths(extra: [String] = []) -> [String] {
        var out: [String] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/block")) ?? []
        for n in names.sorted() {
            guard let s = try? String(contentsOfFile: "/sys/class/block/\(n)/size", encoding: .utf8),
                  let blocks = UInt64(s.trimmingCharacters(in: .whitespacesAndNewlines)), blocks > 0 else { continue }
            let p = "/dev/\(n)"
            if FileManager.default.fileExists(atPath: p) { out.append(p) }
        }
        for e in extra where !out.contains(e) { out.append(e) }
        return out
    }
}

/// Checks that a device may join a set: `MetaDevices.ComponentCheck` (not a block device or
/// file, mounted, swap, held, loop backing file, busy, read-only, member of a set this host
/// knows: always refused; a libblkid signature: refused unless `force`), plus the label check
/// libblkid cannot do: a device carrying a metactl label of a set this host knows is always
/// refused, one of an unknown set (or of a newer format) unless `force`.
public enum DeviceCheck {
    /// Checks a path before it is opened for writing (it must not be open exclusively yet).
    ///
    /// `ownSet` (the set's UUID and the devices its configuration lists) lets a device through
    /// whose label names that set but a device UUID the configuration does not list: a label
    /// left behind by an interrupted add.
    public static func checkCandidate(path: String, force: Bool, configDir: String?,
                                      ownSet: (uuid: UUID, devices: Set<UUID>)? = nil) throws {
        var members: [String: String] = [:]
        if let configDir { for (p, m) in SetDatabase.membership(configDir: configDir) { members[p] = m.set } }
        do {
            _ = try ComponentCheck.check(path: path, force: force, knownMembers: members)
        } catch {
            throw DatabaseError.badCandidate(path: path, reason: error.reason)
        }
        guard let r = SetDatabase.readLabelResult(path: path) else { return }
        if let own = ownSet, let l = r.label, l.setUUID == own.uuid, !own.devices.contains(l.deviceUUID) { return }
        try checkLabel(r, path: path, force: force, configDir: configDir)
    }

    /// The label part of the check, on an opened device (test doubles use this alone).
    public static func checkLabel(device d: any BlockDevice, path: String, force: Bool, configDir: String?) throws {
        try checkLabel(Label.read(from: d), path: path, force: force, configDir: configDir)
    }

    static func checkLabel(_ r: Label.ReadResult, path: String, force: Bool, configDir: String?) throws {
        if let l = r.label {
            let known = configDir.flatMap { try? HostRegistry.load(configDir: $0) }?.sets.first { $0.uuid == l.setUUID }
            if let known {
                // A label whose device the set no longer lists was left behind (the device
                // was missing when it was dropped from the set): overwritable with --force.
                guard known.devices.contains(where: { $0.uuid == l.deviceUUID }) else {
                    if force { return }
                    throw DatabaseError.badCandidate(path: path, reason: "carries a stale label of set '\(known.name)', which no longer lists this device (it was missing when it left the set); use --force to overwrite")
                }
                throw DatabaseError.badCandidate(path: path, reason: "is already a member of set '\(known.name)' (\(l.role.rawValue))")
            }
            if !force {
                throw DatabaseError.badCandidate(path: path, reason: "carries the label of set '\(l.setName)', not known on this host (`metactl import` it, or use --force to overwrite)")
            }
            return
        }
        if !force, let p = r.problems.first(where: { if case .newerVersion = $0.failure { true } else { false } }),
           case .newerVersion(let v) = p.failure {
            throw DatabaseError.badCandidate(path: path, reason: "carries a label of a newer metactl (format \(v)); use --force to overwrite")
        }
    }
}
