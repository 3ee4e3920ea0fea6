import Foundation
import MetaDevices

/// A set's state database: labels on every device, replicas of the configuration,
/// atomic commits across replicas, and the SVM quorum rule.
///
/// The database opens every device of the set once (exclusively, in read-write mode) and
/// shares them: the engine gets them through ``device(_:)``.
///
/// Commit protocol: the new configuration gets generation `highest + 1` and is written to
/// every replica the new configuration lists, one after another, each into the slot that
/// does not hold that replica's newest copy, flushed after each write. It counts as
/// committed when strictly more than half of those replicas took it. Otherwise it is
/// rolled back: the previous configuration is written with a still higher generation to
/// the replicas that took the failed one, so no later load sees the failed commit. A load
/// takes the newest intact generation found on any replica of the set. A crash during a
/// commit therefore leaves either the old or the new configuration visible.
public final class SetDatabase: ConfigStore, @unchecked Sendable {
    /// How the set is opened.
    public enum Mode: Sendable { case readWrite, readOnly }

    /// The set's name.
    public let setName: String
    /// The set's UUID.
    public let setUUID: UUID
    /// How the set was opened.
    public let mode: Mode

    private let lock = NSRecursiveLock()
    private var current: SetConfig { didSet { publish() } }
    private var generation: UInt64
    private var highestGeneration: UInt64
    private var devices: [UUID: any BlockDevice] { didSet { publish() } }
    /// What readers see (``config``, ``device(_:)``), behind its own lock so that they never
    /// wait for a commit's I/O.
    private let published = NSLock()
    private var publishedConfig: SetConfig
    private var publishedDevices: [UUID: any BlockDevice]
    private var labels: [UUID: Label]
    private var statuses: [ReplicaStatus]
    /// Per replica: the slot holding its newest intact copy and that copy's generation.
    private var newestSlot: [ReplicaLocation: (slot: Int, generation: UInt64)]
    private var skipped: [String]
    private var isClosed = false
    var setLock: FileLock?
    let configDir: String?
    /// Devices labelled inside the running commit (wiped again if it fails).
    private var pendingAdds: [UUID] = []
    private var inCommit = false
    private var pendingReleases: [UUID] = []

    // MARK: - Public state

    /// The last committed configuration.
    public var config: SetConfig { published.withLock { publishedConfig } }
    /// Generation of the configuration in force.
    public var currentGeneration: UInt64 { lock.withLock { generation } }
    /// The quorum verdict.
    public var quorum: Quorum {
        lock.withLock {
            Quorum(readable: statuses.filter { $0.state == .active || $0.state == .stale }.count,
                   total: statuses.count)
        }
    }
    /// One entry per replica the configuration lists, in configuration order.
    public var replicaStatus: [ReplicaStatus] { lock.withLock { statuses } }
    /// What the last load skipped (torn or corrupt slots and labels, I/O errors), one line each.
    public var skippedWhileLoading: [String] { lock.withLock { skipped } }
    /// Devices of the configuration that are not open (missing when the set was opened).
    public var missingDevices: [DeviceRecord] {
        lock.withLock { current.devices.filter { devices[$0.uuid] == nil } }
    }
    /// The label of an open device of the set.
    public func label(_ uuid: UUID) -> Label? { lock.withLock { labels[uuid] } }

    /// The opened device for a UUID in this set (component, spare, replica holder); nil if missing.
    public func device(_ uuid: UUID) -> (any BlockDevice)? { published.withLock { publishedDevices[uuid] } }

    private func publish() {
        let c = current, d = devices
        published.withLock { publishedConfig = c; publishedDevices = d }
    }

    // MARK: - Init / load

    init(setName: String, setUUID: UUID, mode: Mode, configDir: String?, config: SetConfig,
                 generation: UInt64, highest: UInt64, devices: [UUID: any BlockDevice], labels: [UUID: Label],
                 statuses: [ReplicaStatus], newestSlot: [ReplicaLocation: (slot: Int, generation: UInt64)],
                 skipped: [String]) {
        self.setName = setName; self.setUUID = setUUID; self.mode = mode; self.configDir = configDir
        self.current = config; self.generation = generation; self.highestGeneration = highest
        self.devices = devices; self.labels = labels; self.statuses = statuses; self.newestSlot = newestSlot
        self.skipped = skipped
        self.publishedConfig = config; self.publishedDevices = devices
    }

    /// Opens a set over already-opened devices (unit tests, or callers that open devices
    /// themselves). The devices are read for labels; every labelled device must belong to
    /// the same set. Devices are not registered anywhere and no process lock is taken.
    public convenience init(devices given: [any BlockDevice], mode: Mode = .readWrite,
                            requireQuorum: Bool = true) throws {
        var devs: [UUID: any BlockDevice] = [:]
        var labels: [UUID: Label] = [:]
        var skipped: [String] = []
        var setUUID: UUID?
        for d in given {
            let r = Label.read(from: d)
            for p in r.problems { skipped.append("\(d.path): label copy \(p.copy): \(p.failure)") }
            guard let l = r.label else {
                if case .newerVersion(let v)? = r.problems.first(where: { if case .newerVersion = $0.failure { true } else { false } })?.failure {
                    throw DatabaseError.newerFormat(what: "the label on \(d.path)", version: Int(v))
                }
                continue
            }
            if let s = setUUID, s != l.setUUID {
                throw DatabaseError.invalid("\(d.path) belongs to another set (\(l.setName))")
            }
            setUUID = l.setUUID
            devs[l.deviceUUID] = d
            labels[l.deviceUUID] = l
        }
        guard let setUUID else { throw DatabaseError.noReplica(set: "?", details: "no labelled device given") }
        let name = labels.values.first?.setName ?? "?"
        let loaded = try Self.load(setName: name, setUUID: setUUID, devices: devs, labels: labels)
        self.init(setName: name, setUUID: setUUID, mode: mode, configDir: nil, config: loaded.config,
                  generation: loaded.generation, highest: loaded.highest, devices: devs, labels: labels,
                  statuses: loaded.statuses, newestSlot: loaded.newestSlot, skipped: skipped + loaded.skipped)
        try finishOpen(requireQuorum: requireQuorum)
    }

    struct Loaded {
        var config: SetConfig
        var generation: UInt64
        var highest: UInt64
        var statuses: [ReplicaStatus]
        var newestSlot: [ReplicaLocation: (slot: Int, generation: UInt64)]
        var skipped: [String]
    }

    /// Reads every replica on every labelled device and picks the newest intact generation.
    static func load(setName: String, setUUID: UUID, devices: [UUID: any BlockDevice],
                             labels: [UUID: Label]) throws -> Loaded {
        struct Found { var loc: ReplicaLocation; var content: ReplicaIO.SlotContent }
        var found: [Found] = []
        var perReplica: [ReplicaLocation: (newest: UInt64?, slot: Int, ioError: Bool, problems: [String])] = [:]
        var skipped: [String] = []
        var highest: UInt64 = 0
        for (uuid, label) in labels.sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
            guard let dev = devices[uuid], label.replicaCount > 0 else { continue }
            for i in 0..<label.replicaCount {
                let loc = ReplicaLocation(device: uuid, index: i, offsetBytes: label.replicaOffset(i),
                                          sizeBytes: 2 * label.slotSize)
                let r = ReplicaIO.readSlots(dev, offset: loc.offsetBytes, slotSize: label.slotSize, setUUID: setUUID)
                for p in r.problems { skipped.append("\(dev.path) replica \(i) at \(loc.offsetBytes): \(p)") }
                let best = r.intact.max { $0.header.generation < $1.header.generation }
                perReplica[loc] = (best?.header.generation, best?.slot ?? 0, r.ioError, r.problems)
                for c in r.intact {
                    found.append(Found(loc: loc, content: c))
                    highest = max(highest, c.header.generation)
                }
            }
        }
        // Newest decodable generation wins.
        var chosen: (SetConfig, UInt64)?
        var newerUnusable: UInt64?
        for f in found.sorted(by: { $0.content.header.generation > $1.content.header.generation }) {
            if let c = chosen, f.content.header.generation <= c.1 { break }
            switch ConfigCodec.decode(f.content.payload) {
            case .success(let cfg):
                if cfg.setUUID == setUUID { chosen = (cfg, f.content.header.generation) }
                else { skipped.append("replica on \(devices[f.loc.device]?.path ?? "?"): configuration of another set") }
            case .failure(.newer(let v)):
                throw DatabaseError.newerFormat(what: "the state database of set '\(setName)'", version: v)
            case .failure(.malformed(let why)):
                newerUnusable = max(newerUnusable ?? 0, f.content.header.generation)
                skipped.append("replica on \(devices[f.loc.device]?.path ?? "?") generation \(f.content.header.generation): undecodable configuration (\(why))")
            }
        }
        guard let (config, gen) = chosen else {
            let detail = skipped.isEmpty ? "no replica found on \(devices.count) device(s)" : skipped.joined(separator: "; ")
            throw DatabaseError.noReplica(set: setName, details: detail)
        }
        _ = newerUnusable
        var statuses: [ReplicaStatus] = []
        var newestSlot: [ReplicaLocation: (slot: Int, generation: UInt64)] = [:]
        for loc in config.replicas {
            let path = devices[loc.device]?.path ?? config.device(loc.device)?.lastPath ?? loc.device.uuidString
            guard devices[loc.device] != nil else {
                statuses.append(ReplicaStatus(location: loc, devicePath: path, state: .unreadable, generation: 0,
                                              problems: ["device missing"]))
                continue
            }
            guard let info = perReplica[loc] else {
                statuses.append(ReplicaStatus(location: loc, devicePath: path, state: .unreadable, generation: 0,
                                              problems: ["label does not list this replica"]))
                continue
            }
            if let g = info.newest {
                newestSlot[loc] = (info.slot, g)
                let state: ReplicaState = g == gen ? .active : (g < gen ? .stale : .newer)
                statuses.append(ReplicaStatus(location: loc, devicePath: path, state: state, generation: g,
                                              problems: info.problems))
            } else {
                statuses.append(ReplicaStatus(location: loc, devicePath: path, state: .unreadable, generation: 0,
                                              problems: info.problems.isEmpty ? ["no intact copy"] : info.problems))
            }
        }
        return Loaded(config: config, generation: gen, highest: highest, statuses: statuses,
                      newestSlot: newestSlot, skipped: skipped)
    }

    /// After a load: enforce quorum (read-write) and refresh stale replicas.
    func finishOpen(requireQuorum: Bool) throws {
        let q = quorum
        if mode == .readWrite && q.writable {
            refreshStale()
        } else if mode == .readWrite && requireQuorum {
            throw noQuorumError()
        }
    }

    private func noQuorumError() -> DatabaseError {
        let q = quorum
        let missing = statuses.filter { $0.state != .active && $0.state != .stale }
            .map { "\($0.devicePath) (\($0.state.rawValue))" }
        return .noQuorum(set: setName, readable: q.readable, total: q.total, missing: missing)
    }

    /// Rewrites stale and damaged replicas with the configuration in force (same generation).
    private func refreshStale() {
        lock.withLock {
            guard let payload = try? ConfigCodec.encode(current) else { return }
            // Stale ones, and present devices whose replica has no intact copy (torn, blank).
            for i in statuses.indices where statuses[i].state == .stale
                || (statuses[i].state == .unreadable && devices[statuses[i].location.device] != nil) {
                let loc = statuses[i].location
                if writeReplica(loc, generation: generation, payload: payload) {
                    statuses[i].state = .active
                    statuses[i].generation = generation
                } else {
                    statuses[i].state = .unreadable
                }
            }
        }
    }

    /// Writes one replica into its older slot; returns whether it worked.
    private func writeReplica(_ loc: ReplicaLocation, generation g: UInt64, payload: [UInt8]) -> Bool {
        guard let dev = devices[loc.device] else { return false }
        let slotSize = loc.sizeBytes / 2
        guard UInt64(payload.count + DiskLayout.slotHeaderSize) <= slotSize else { return false }
        let target = newestSlot[loc].map { 1 - $0.slot } ?? 0
        do {
            try ReplicaIO.writeSlot(dev, offset: loc.offsetBytes, slotSize: slotSize, slot: target,
                                    setUUID: setUUID, generation: g, payload: payload)
            newestSlot[loc] = (target, g)
            return true
        } catch {
            skipped.append("\(dev.path) replica \(loc.index): write failed: \(error)")
            return false
        }
    }

    // MARK: - Commit

    /// Applies `body` to a copy of the configuration and commits it to the replicas as one
    /// transaction. Throws (changing nothing) if the set is read-only, lacks quorum, `body`
    /// throws, or fewer than a majority of replicas took the write.
    @discardableResult
    public func commit(_ body: (inout SetConfig) throws -> Void) throws -> SetConfig {
        try commit(requireQuorum: true, body)
    }

    @discardableResult
    func commit(requireQuorum: Bool, _ body: (inout SetConfig) throws -> Void) throws -> SetConfig {
        lock.lock(); defer { lock.unlock() }
        guard !isClosed else { throw DatabaseError.closed(set: setName) }
        guard mode == .readWrite else { throw DatabaseError.readOnly(set: setName) }
        guard !inCommit else { throw DatabaseError.invalid("nested commit on set '\(setName)'") }
        if requireQuorum && !quorum.writable { throw noQuorumError() }
        inCommit = true
        pendingAdds = []; pendingReleases = []
        defer { inCommit = false }
        let before = current
        var new = current
        do {
            try body(&new)
            new.setUUID = setUUID
            new.setName = setName
            new.formatVersion = SetConfig.currentFormatVersion
            try writeGeneration(new)
        } catch {
            undoPendingAdds()
            pendingReleases = []
            throw error
        }
        pendingAdds = []
        let devicesChanged = before.devices.map { [$0.uuid.uuidString, $0.lastPath, $0.role.rawValue] }
            != current.devices.map { [$0.uuid.uuidString, $0.lastPath, $0.role.rawValue] }
        let releases = pendingReleases
        pendingReleases = []
        for u in releases where current.device(u) == nil { wipeAndForget(u) }
        syncLabelsWithConfig()
        if devicesChanged || !releases.isEmpty { updateRegistry() }
        return current
    }

    /// Writes `new` as the next generation to every replica it lists; rolls back on failure.
    private func writeGeneration(_ new: SetConfig) throws {
        let payload = try ConfigCodec.encode(new)
        for loc in new.replicas where UInt64(payload.count + DiskLayout.slotHeaderSize) > loc.sizeBytes / 2 {
            throw DatabaseError.invalid("set '\(setName)': the configuration (\(payload.count) bytes) does not fit in the replica on \(devices[loc.device]?.path ?? loc.device.uuidString) (\(loc.sizeBytes / 2 - UInt64(DiskLayout.slotHeaderSize)) bytes per slot)")
        }
        guard !new.replicas.isEmpty else {
            throw DatabaseError.invalid("set '\(setName)': a set needs at least one state database replica")
        }
        let g = highestGeneration + 1
        var written: [ReplicaLocation] = []
        var failed: [ReplicaLocation] = []
        for loc in new.replicas {
            if writeReplica(loc, generation: g, payload: payload) { written.append(loc) } else { failed.append(loc) }
        }
        highestGeneration = g
        if written.count * 2 > new.replicas.count {
            current = new
            generation = g
            statuses = new.replicas.map { loc in
                let path = devices[loc.device]?.path ?? new.device(loc.device)?.lastPath ?? loc.device.uuidString
                return written.contains(loc)
                    ? ReplicaStatus(location: loc, devicePath: path, state: .active, generation: g)
                    : ReplicaStatus(location: loc, devicePath: path, state: .unreadable,
                                    generation: newestSlot[loc]?.generation ?? 0, problems: ["write failed"])
            }
            return
        }
        // Roll back: the previous configuration, with a higher generation, where the failed one landed.
        let old = try ConfigCodec.encode(current)
        let g2 = g + 1
        highestGeneration = g2
        var rolledBack = 0
        for loc in written where writeReplica(loc, generation: g2, payload: old) { rolledBack += 1 }
        generation = g2
        for i in statuses.indices {
            let loc = statuses[i].location
            if written.contains(loc) {
                statuses[i].state = .active; statuses[i].generation = g2
            } else if failed.contains(loc) {
                statuses[i].state = .unreadable
            } else if statuses[i].state == .active {
                statuses[i].state = .stale
            }
        }
        let detail = rolledBack == written.count ? "failed: \(failed.map { devices[$0.device]?.path ?? $0.device.uuidString }.joined(separator: ", "))"
            : "and the rollback reached only \(rolledBack) of \(written.count)"
        throw DatabaseError.commitFailed(set: setName, written: written.count, total: new.replicas.count, detail: detail)
    }

    // MARK: - Devices

    /// Labels a new device for this set inside a running ``commit(_:)``: adds its
    /// ``DeviceRecord`` (and its replicas) to `config` and returns the record. The label is
    /// written before the configuration commit; if the commit fails the label is wiped again.
    public func addDevice(path: String, role: DeviceRole, replicaCopies: Int, force: Bool,
                          in config: inout SetConfig) throws -> DeviceRecord {
        try lock.withLock {
            guard inCommit else { throw DatabaseError.invalid("addDevice must be called inside commit") }
            let real = Self.realPath(path)
            if let dup = config.devices.first(where: { Self.realPath(devices[$0.uuid]?.path ?? $0.lastPath) == real }) {
                throw DatabaseError.badCandidate(path: path, reason: "is already a member of set '\(setName)' (\(dup.role.rawValue))")
            }
            try DeviceCheck.checkCandidate(path: path, force: force, configDir: configDir,
                                           ownSet: (setUUID, Set(config.devices.map(\.uuid))))
            let dev: any BlockDevice
            do { dev = try FileDevice(path: path, options: OpenOptions(readOnly: false, exclusive: true)) } catch {
                throw DatabaseError.badCandidate(path: path, reason: "cannot open: \(error)")
            }
            let slot = config.replicas.first.map { $0.sizeBytes / 2 } ?? DiskLayout.defaultSlotSize
            let rec = try addDevice(dev, role: role, replicaCopies: replicaCopies, slotSize: slot, in: &config)
            return rec
        }
    }

    /// ``addDevice(path:role:replicaCopies:force:in:)`` for an already opened device (tests, doubles).
    public func addDevice(_ dev: any BlockDevice, role: DeviceRole, replicaCopies: Int, slotSize: UInt64? = nil,
                          in config: inout SetConfig) throws -> DeviceRecord {
        try lock.withLock {
            guard inCommit else { throw DatabaseError.invalid("addDevice must be called inside commit") }
            guard (0...16).contains(replicaCopies) else {
                throw DatabaseError.invalid("replica copies must be between 0 and 16, not \(replicaCopies)")
            }
            let slot = slotSize ?? config.replicas.first.map { $0.sizeBytes / 2 } ?? DiskLayout.defaultSlotSize
            let label = try Self.makeLabel(dev, setUUID: setUUID, setName: setName, role: role,
                                           copies: replicaCopies, slotSize: slot)
            do {
                if replicaCopies > 0 { try Label.wipe(dev, replicaCount: replicaCopies, slotSize: slot) }
                try label.write(to: dev)
            } catch let e as DeviceError { throw DatabaseError.device(e) }
            devices[label.deviceUUID] = dev
            labels[label.deviceUUID] = label
            pendingAdds.append(label.deviceUUID)
            let rec = DeviceRecord(uuid: label.deviceUUID, lastPath: dev.path, sizeBytes: dev.sizeBytes,
                                   dataStartBlock: label.dataStartBlock, replicaCount: replicaCopies, role: role)
            config.devices.append(rec)
            for i in 0..<replicaCopies {
                config.replicas.append(ReplicaLocation(device: label.deviceUUID, index: i,
                                                       offsetBytes: label.replicaOffset(i), sizeBytes: 2 * slot))
            }
            return rec
        }
    }

    static func makeLabel(_ dev: any BlockDevice, setUUID: UUID, setName: String, role: DeviceRole,
                          copies: Int, slotSize: UInt64) throws -> Label {
        guard slotSize >= DiskLayout.minimumSlotSize, slotSize % 4096 == 0 else {
            throw DatabaseError.invalid("replica slot size must be a multiple of 4 KiB and at least 64 KiB")
        }
        let start = DiskLayout.dataStartBlock(copies: copies, slotSize: slotSize)
        let need = role == .replica ? DiskLayout.replicaOffset(index: copies, slotSize: slotSize) : start * 512 + 512
        guard dev.sizeBytes >= need else {
            throw DatabaseError.badCandidate(path: dev.path, reason: "too small (\(dev.sizeBytes) bytes) for \(copies) replica(s)\(role == .replica ? "" : " and a data area"): needs at least \(need) bytes")
        }
        return Label(setUUID: setUUID, setName: setName, deviceUUID: UUID(), role: role, replicaCount: copies,
                     slotSize: slotSize, dataStartBlock: start, deviceSizeBytes: dev.sizeBytes)
    }

    private func undoPendingAdds() {
        for u in pendingAdds {
            if let d = devices[u], let l = labels[u] {
                try? Label.wipe(d, replicaCount: l.replicaCount, slotSize: l.slotSize)
                (d as? FileDevice)?.close()
            }
            devices[u] = nil
            labels[u] = nil
            for k in newestSlot.keys where k.device == u { newestSlot[k] = nil }
        }
        pendingAdds = []
    }

    /// Removes a device from the set: wipes its label (and replica headers). Called inside a
    /// commit that drops the device from the configuration, the wipe happens after that
    /// commit succeeds; called afterwards, immediately. Refused while the configuration
    /// still lists the device.
    public func releaseDevice(_ uuid: UUID) throws {
        try lock.withLock {
            if inCommit { pendingReleases.append(uuid); return }
            guard mode == .readWrite else { throw DatabaseError.readOnly(set: setName) }
            if current.device(uuid) != nil {
                throw DatabaseError.invalid("device \(devices[uuid]?.path ?? uuid.uuidString) is still in set '\(setName)'; drop it from the configuration first")
            }
            wipeAndForget(uuid)
            updateRegistry()
        }
    }

    private func wipeAndForget(_ uuid: UUID) {
        if let d = devices[uuid], let l = labels[uuid] {
            try? Label.wipe(d, replicaCount: l.replicaCount, slotSize: l.slotSize)
            (d as? FileDevice)?.close()
        }
        devices[uuid] = nil
        labels[uuid] = nil
        for k in newestSlot.keys where k.device == uuid { newestSlot[k] = nil }
    }

    /// Rewrites labels whose role or replica count no longer matches the configuration.
    private func syncLabelsWithConfig() {
        for rec in current.devices {
            guard let d = devices[rec.uuid], var l = labels[rec.uuid] else { continue }
            if l.role != rec.role || l.replicaCount != rec.replicaCount {
                l.role = rec.role
                l.replicaCount = rec.replicaCount
                l.sequence += 1
                if (try? l.write(to: d)) != nil { labels[rec.uuid] = l }
            }
        }
    }

    /// Removes the replicas on the given devices. Without `force` the set must be writable;
    /// with `force` it works without quorum (the way out of a lost majority) as long as a
    /// majority of the remaining replicas take the write. A replica-only device that no
    /// volume or pool uses leaves the set; any other device stays (its data start block
    /// cannot move).
    public func deleteReplicas(onDevices uuids: [UUID], force: Bool) throws {
        _ = try commit(requireQuorum: !force) { c in
            c.replicas.removeAll { uuids.contains($0.device) }
            guard !c.replicas.isEmpty else {
                throw DatabaseError.invalid("set '\(setName)': cannot delete every state database replica (the set keeps its configuration in them)")
            }
            for u in uuids {
                guard let i = c.devices.firstIndex(where: { $0.uuid == u }) else { continue }
                c.devices[i].replicaCount = 0
                if c.devices[i].role == .replica && !Self.isUsed(u, in: c) {
                    c.devices.remove(at: i)
                    try self.releaseDevice(u)
                }
            }
        }
    }

    /// Whether a volume or hot spare pool refers to a device.
    public static func isUsed(_ uuid: UUID, in c: SetConfig) -> Bool {
        c.volumes.contains { v in v.allComponents.contains { $0.device == uuid || $0.hotSpare == uuid } }
            || c.hotSparePools.contains { $0.spares.contains { $0.device == uuid } }
    }

    // MARK: - Close

    /// Closes the devices and releases the set lock. Later commits throw.
    public func close() {
        lock.withLock {
            guard !isClosed else { return }
            isClosed = true
            for d in devices.values { (d as? FileDevice)?.close() }
            setLock?.unlock()
            setLock = nil
        }
    }

    deinit {
        setLock?.unlock()
    }

    // MARK: - Registry hooks (file-backed sets)

    func updateRegistry() {
        guard let configDir else { return }
        let entry = HostRegistry.Entry(name: setName, uuid: setUUID, devices: current.devices.map {
            HostRegistry.Device(uuid: $0.uuid, path: devices[$0.uuid]?.path ?? $0.lastPath, role: $0.role)
        })
        do {
            try HostRegistry.update(configDir: configDir) { r in
                r.sets.removeAll { $0.name == entry.name || $0.uuid == entry.uuid }
                r.sets.append(entry)
            }
        } catch {
            skipped.append("could not update the host registry: \(error)")
        }
    }
}

extension NSLocking {
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock(); defer { unlock() }
        return try body()
    }
}
