import Foundation
import MetaModel
import MetaDevices

/// A set's state database: labels on every device, replicas of the configuration,
/// atomic commits across replicas, and the SVM quorum rule.
///
/// The database opens every device of the set once (exclusively, in read-write mode) and
/// shares them: the engine gets them through ``device(_:)``.
///
/// Commit protocol: the new configuration gets generation `highest + 1` (`highest + 2` for
/// the first commit after an open that could not read every replica) and is written to
/// every replica the new configuration lists, one after another, each into the slot that
/// does not hold that replica's newest copy, flushed after each write. It counts as
/// committed when strictly more than half of those replicas took it. Otherwise it is
/// rolled back: the slots the failed commit wrote are erased, so no later load sees it. A
/// load takes the newest intact generation found on any replica of the set, and among
/// different payloads of that generation the one most replicas hold. A crash during a
/// commit therefore leaves either the old or the new configuration visible. See
/// docs/FORMAT.md ("Commit", "Load").
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
    private var registryFailure: String?
    /// Replicas whose write failed during this open: not written again until the set is
    /// reopened (they still count in every commit's majority, as failed writes).
    private var erred: Set<ReplicaLocation> = []
    /// Replicas holding an outvoted configuration of the loaded generation (rewritten on a
    /// read-write open with a new generation).
    private var outvoted: [ReplicaLocation]
    /// Equally many replicas hold different configurations of the newest generation: the set
    /// opens read-only only.
    private let conflict: String?
    /// The next commit skips one generation number (the open did not read every replica).
    private var skipGeneration: Bool
    private var isClosed = false
    var setLock: FileLock?
    let configDir: String?
    /// Devices labelled inside the running commit (wiped again if it fails).
    private var pendingAdds: [UUID] = []
    private var inCommit = false
    private var pendingReleases: [UUID] = []

    /// Called at the end of every commit that got past its checks, inside the commit (so
    /// in commit order; keep it short: queue the work), with the configuration before and
    /// after (equal when the commit failed) and whether the set still has quorum. The server
    /// derives `metactl monitor`'s events from it. Set it before the set is shared.
    public var commitObserver: (@Sendable (_ before: SetConfig, _ after: SetConfig, _ writable: Bool) -> Void)?

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
                 skipped: [String], outvoted: [ReplicaLocation] = [], conflict: String? = nil, incomplete: Bool = false) {
        self.setName = setName; self.setUUID = setUUID; self.mode = mode; self.configDir = configDir
        self.current = config; self.generation = generation; self.highestGeneration = highest
        self.devices = devices; self.labels = labels; self.statuses = statuses; self.newestSlot = newestSlot
        self.skipped = skipped
        self.outvoted = outvoted; self.conflict = conflict; self.skipGeneration = incomplete
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
        var loaded = try Self.load(setName: name, setUUID: setUUID, devices: devs, labels: labels)
        // Older copies of members (label stamp below the configuration's) are not used.
        let stale = loaded.config.devices.filter { rec in labels[rec.uuid].map { $0.epoch < (rec.epoch ?? 0) } ?? false }
        if !stale.isEmpty {
            for rec in stale {
                skipped.append(Self.staleNote(path: devs[rec.uuid]?.path ?? "?", device: rec.uuid,
                                              stamp: labels[rec.uuid]?.epoch ?? 0, expected: rec.epoch ?? 0))
                devs[rec.uuid] = nil
                labels[rec.uuid] = nil
            }
            loaded = try Self.load(setName: name, setUUID: setUUID, devices: devs, labels: labels)
        }
        self.init(setName: name, setUUID: setUUID, mode: mode, configDir: nil, config: loaded.config,
                  generation: loaded.generation, highest: loaded.highest, devices: devs, labels: labels,
                  statuses: loaded.statuses, newestSlot: loaded.newestSlot, skipped: skipped + loaded.skipped,
                  outvoted: loaded.outvoted, conflict: loaded.conflict, incomplete: loaded.incomplete)
        try finishOpen(requireQuorum: requireQuorum)
    }

    struct Loaded {
        var config: SetConfig
        var generation: UInt64
        var highest: UInt64
        var statuses: [ReplicaStatus]
        var newestSlot: [ReplicaLocation: (slot: Int, generation: UInt64)]
        var skipped: [String]
        /// Replicas holding another configuration of the winning generation (outvoted).
        var outvoted: [ReplicaLocation] = []
        /// Set when two or more different configurations of the newest generation are held by
        /// equally many replicas: which one was acknowledged cannot be told (one line).
        var conflict: String?
        /// Whether some replica the configuration lists could not be read (device missing,
        /// I/O error): it may hold a generation up to one above `highest` (see ``generationGap``).
        var incomplete: Bool = false
    }

    /// Reads every replica on every labelled device and picks the configuration in force: the
    /// newest generation that has an intact, decodable copy; among different payloads of that
    /// generation, the one held by the most replicas (see docs/FORMAT.md, "Load").
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
        func where_(_ loc: ReplicaLocation) -> String { "\(devices[loc.device]?.path ?? loc.device.uuidString) replica \(loc.index)" }
        func key(_ loc: ReplicaLocation) -> String { "\(loc.device.uuidString)/\(loc.index)" }
        // Newest generation with a decodable configuration of this set; within it, group the
        // copies by payload bytes and take the payload held by the most replicas.
        struct Group { var payload: [UInt8]; var config: SetConfig; var locs: [ReplicaLocation] }
        var chosen: (group: Group, gen: UInt64)?
        var outvoted: [ReplicaLocation] = []
        var conflict: String?
        let byGeneration = Dictionary(grouping: found, by: { $0.content.header.generation })
        for gen in byGeneration.keys.sorted(by: >) {
            var payloads: [(payload: [UInt8], locs: [ReplicaLocation])] = []
            for f in byGeneration[gen]! {
                if let i = payloads.firstIndex(where: { $0.payload == f.content.payload }) {
                    if !payloads[i].locs.contains(f.loc) { payloads[i].locs.append(f.loc) }
                } else {
                    payloads.append((f.content.payload, [f.loc]))
                }
            }
            var groups: [Group] = []
            for p in payloads {
                switch ConfigCodec.decode(p.payload) {
                case .success(let cfg):
                    if cfg.setUUID == setUUID { groups.append(Group(payload: p.payload, config: cfg, locs: p.locs)) }
                    else { skipped.append("\(p.locs.map(where_).joined(separator: ", ")): configuration of another set") }
                case .failure(.newer(let v)):
                    throw DatabaseError.newerFormat(what: "the state database of set '\(setName)'", version: v)
                case .failure(.malformed(let why)):
                    skipped.append("\(p.locs.map(where_).joined(separator: ", ")) generation \(gen): undecodable configuration (\(why))")
                }
            }
            guard !groups.isEmpty else { continue }
            // Most replicas first; equal counts in an order that does not depend on how the
            // devices were found (only read-only opens ever use that order: see `conflict`).
            groups.sort { a, b in
                a.locs.count != b.locs.count ? a.locs.count > b.locs.count
                    : a.locs.map(key).min()! < b.locs.map(key).min()!
            }
            chosen = (groups[0], gen)
            if groups.count > 1 {
                let describe = { (g: Group) in "[\(g.locs.map(where_).joined(separator: ", "))]" }
                let tied = groups.filter { $0.locs.count == groups[0].locs.count }
                outvoted = groups.dropFirst().flatMap(\.locs).filter { !groups[0].locs.contains($0) }
                if tied.count > 1 {
                    conflict = "\(tied.count) different configurations of generation \(gen) are held by \(groups[0].locs.count) replica\(groups[0].locs.count == 1 ? "" : "s") each: \(tied.map(describe).joined(separator: " vs "))"
                    skipped.append("generation \(gen): \(conflict!); read-only: showing the first")
                } else {
                    skipped.append("generation \(gen): the configuration on \(describe(groups[0])) outvotes \(groups.dropFirst().map(describe).joined(separator: ", ")) (a commit that never reached a majority)")
                }
            }
            break
        }
        guard let (group, gen) = chosen else {
            let detail = skipped.isEmpty ? "no replica found on \(devices.count) device(s)" : skipped.joined(separator: "; ")
            throw DatabaseError.noReplica(set: setName, details: detail)
        }
        let config = group.config
        var statuses: [ReplicaStatus] = []
        var newestSlot: [ReplicaLocation: (slot: Int, generation: UInt64)] = [:]
        var incomplete = false
        for loc in config.replicas {
            let path = devices[loc.device]?.path ?? config.device(loc.device)?.lastPath ?? loc.device.uuidString
            guard devices[loc.device] != nil else {
                incomplete = true
                statuses.append(ReplicaStatus(location: loc, devicePath: path, state: .unreadable, generation: 0,
                                              problems: ["device missing"]))
                continue
            }
            guard let info = perReplica[loc] else {
                incomplete = true
                statuses.append(ReplicaStatus(location: loc, devicePath: path, state: .unreadable, generation: 0,
                                              problems: ["label does not list this replica"]))
                continue
            }
            if info.ioError { incomplete = true }
            if let g = info.newest {
                newestSlot[loc] = (info.slot, g)
                var state: ReplicaState = g == gen ? .active : (g < gen ? .stale : .newer)
                var problems = info.problems
                if outvoted.contains(loc) {
                    // Same generation, another payload: refreshed (with a new generation) like a stale one.
                    state = .stale
                    problems.append("holds another configuration of generation \(gen), outvoted")
                }
                statuses.append(ReplicaStatus(location: loc, devicePath: path, state: state, generation: g,
                                              problems: problems))
            } else {
                statuses.append(ReplicaStatus(location: loc, devicePath: path, state: .unreadable, generation: 0,
                                              problems: info.problems.isEmpty ? ["no intact copy"] : info.problems))
            }
        }
        return Loaded(config: config, generation: gen, highest: highest, statuses: statuses,
                      newestSlot: newestSlot, skipped: skipped, outvoted: outvoted, conflict: conflict,
                      incomplete: incomplete)
    }

    /// After a load: refuse a read-write open over conflicting configurations, enforce quorum
    /// (read-write) and refresh stale replicas.
    func finishOpen(requireQuorum: Bool) throws {
        if mode == .readWrite, let conflict {
            throw DatabaseError.conflictingConfigurations(set: setName, detail: conflict)
        }
        if mode == .readWrite && quorum.writable {
            if outvoted.isEmpty {
                refreshStale()
            } else {
                // Rewrite every replica with a new generation: refreshing an outvoted replica
                // with the same generation would leave both payloads of it on that replica.
                _ = try? commit(requireQuorum: true) { _ in }
            }
        }
        if mode == .readWrite && requireQuorum && !quorum.writable {
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
                guard !erred.contains(loc) else { continue }
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
            erred.insert(loc)
            return false
        }
    }

    /// Rollback of one replica: zeroes the header of the slot the failed commit wrote, so the
    /// replica's newest copy is again the one it had before (`previous`, in the other slot).
    private func eraseSlot(_ loc: ReplicaLocation, previous: (slot: Int, generation: UInt64)?) -> Bool {
        guard let dev = devices[loc.device], let written = newestSlot[loc] else { return false }
        let slotSize = loc.sizeBytes / 2
        let zero = [UInt8](repeating: 0, count: DiskLayout.ioAlignment)
        do {
            try dev.write(bytes: zero, at: loc.offsetBytes + UInt64(written.slot) * slotSize)
            try dev.flush()
            newestSlot[loc] = previous
            return true
        } catch {
            skipped.append("\(dev.path) replica \(loc.index): rollback failed: \(error)")
            erred.insert(loc)
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
        defer { commitObserver?(before, current, quorum.writable) }
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
    ///
    /// Replicas that failed a write earlier in this open (``erred``) are not written again:
    /// they count as failed writes, so the majority is always taken over every replica the
    /// configuration lists and skipping one never lets a commit succeed that would have
    /// failed had its write been tried.
    private func writeGeneration(_ new: SetConfig) throws {
        let payload = try ConfigCodec.encode(new)
        for loc in new.replicas where UInt64(payload.count + DiskLayout.slotHeaderSize) > loc.sizeBytes / 2 {
            throw DatabaseError.invalid("set '\(setName)': the configuration (\(payload.count) bytes) does not fit in the replica on \(devices[loc.device]?.path ?? loc.device.uuidString) (\(loc.sizeBytes / 2 - UInt64(DiskLayout.slotHeaderSize)) bytes per slot)")
        }
        guard !new.replicas.isEmpty else {
            throw DatabaseError.invalid("set '\(setName)': a set needs at least one state database replica")
        }
        // Never reuse a generation: after an open that could not read every replica, skip one
        // number, the one an unfinished commit of an earlier open may have left on them.
        let g = highestGeneration + (skipGeneration ? 2 : 1)
        skipGeneration = false
        highestGeneration = g
        let before = newestSlot
        var written: [ReplicaLocation] = []
        var failed: [ReplicaLocation] = []
        for loc in new.replicas {
            if erred.contains(loc) { failed.append(loc); continue }
            if writeReplica(loc, generation: g, payload: payload) { written.append(loc) } else { failed.append(loc) }
        }
        if written.count * 2 > new.replicas.count {
            current = new
            generation = g
            outvoted = []
            statuses = new.replicas.map { loc in
                let path = devices[loc.device]?.path ?? new.device(loc.device)?.lastPath ?? loc.device.uuidString
                if written.contains(loc) {
                    return ReplicaStatus(location: loc, devicePath: path, state: .active, generation: g)
                }
                return ReplicaStatus(location: loc, devicePath: path, state: .unreadable,
                                     generation: newestSlot[loc]?.generation ?? 0,
                                     problems: [devices[loc.device] == nil ? "device missing"
                                                : "write failed; not written again until the set is reopened"])
            }
            return
        }
        // Roll back: erase the slot each replica took, so that its previous copy is its newest
        // again. No generation is added: a commit that did not reach a majority leaves at
        // most its own generation `g` behind (where the erase failed too), never a higher one.
        let notErased = written.filter { !eraseSlot($0, previous: before[$0]) }
        let rolledBack = written.count - notErased.count
        // Replicas that were erased hold what they held before (their state is unchanged).
        for i in statuses.indices {
            let loc = statuses[i].location
            if failed.contains(loc) && devices[loc.device] != nil {
                statuses[i].state = .unreadable
                statuses[i].problems = ["write failed; not written again until the set is reopened"]
            } else if notErased.contains(loc) {
                statuses[i].state = .unreadable
                statuses[i].problems = ["rollback failed; not written again until the set is reopened"]
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
            var rec = DeviceRecord(uuid: label.deviceUUID, lastPath: dev.path, sizeBytes: dev.sizeBytes,
                                   dataStartBlock: label.dataStartBlock, replicaCount: replicaCopies, role: role)
            rec.logicalSectorSize = dev.logicalSectorSize
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
            erred = erred.filter { $0.device != u }
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
        erred = erred.filter { $0.device != uuid }
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

    /// What ``reattach(path:)`` found at a path.
    public enum Reattached: Equatable, Sendable {
        /// Not a device of this set (no label, another set's, or a device the configuration
        /// no longer lists).
        case notMember
        /// The member `uuid`, now used at `path` (reopened when its descriptor named another
        /// device node).
        case member(UUID)
        /// An older copy of member `uuid` (its freshness stamp is behind the configuration's):
        /// not used. The line says so.
        case stale(UUID, String)
    }

    /// A device that appeared (a kernel `add` event) at `path`. When its label names a
    /// device of this set, with a freshness stamp no older than the configuration expects,
    /// the set uses it from now on: a descriptor on another device node (a disk that went
    /// away and came back under a new name, whose old descriptor is dead) is replaced, and
    /// the new path recorded. Replicas on it stay as they were until the set is reopened.
    public func reattach(path: String) -> Reattached {
        guard mode == .readWrite, let peek = SetDatabase.readLabel(path: path), peek.setUUID == setUUID else { return .notMember }
        return lock.withLock { () -> Reattached in
            guard !isClosed, let rec = current.device(peek.deviceUUID) else { return .notMember }
            let want = rec.epoch ?? 0
            if peek.epoch < want {
                return .stale(rec.uuid, SetDatabase.staleNote(path: path, device: rec.uuid, stamp: peek.epoch, expected: want))
            }
            if let old = devices[rec.uuid] as? FileDevice, let fresh = try? FileDevice(path: path, options: OpenOptions(readOnly: true, exclusive: false)) {
                let same = fresh.sizeBytes == old.sizeBytes && DeviceIdentity.sameNode(old.fd, fresh.fd)
                fresh.close()
                if same { return .member(rec.uuid) }
            }
            guard let d = try? FileDevice(path: path, options: OpenOptions(readOnly: false, exclusive: true)) else { return .notMember }
            let r = Label.read(from: d)
            guard let l = r.label, l.setUUID == setUUID, l.deviceUUID == rec.uuid, l.epoch >= want else { d.close(); return .notMember }
            (devices[rec.uuid] as? FileDevice)?.close()
            devices[rec.uuid] = d
            labels[rec.uuid] = l
            // The configuration and the host registry name it at its new path.
            recordMovedDevices()
            return .member(rec.uuid)
        }
    }

    /// The problem line of a device that is an older copy of a member.
    static func staleNote(path: String, device: UUID, stamp: UInt64, expected: UInt64) -> String {
        "\(path): an older copy of member \(device) (freshness stamp \(stamp), the set expects \(expected)): not used; its component is unavailable until the member returns or is replaced"
    }

    /// Records that a server starts on the set: raises the freshness stamp (``Label/epoch``)
    /// of every present device, then commits the new stamps together with
    /// `cleanShutdown = false`. Labels go first: a crash in between leaves labels ahead of the
    /// configuration, which is accepted; a device whose label could not be written keeps its
    /// old expected stamp. From then on an older copy of any of these devices (a snapshot or
    /// clone taken before this start) is refused at open instead of being read as current.
    public func beginServing() throws {
        guard mode == .readWrite else { throw DatabaseError.readOnly(set: setName) }
        let (stamp, raised) = lock.withLock { () -> (UInt64, [UUID]) in
            let stamp = (current.devices.compactMap(\.epoch).max() ?? 0) + 1
            var raised: [UUID] = []
            for rec in current.devices {
                guard let d = devices[rec.uuid], var l = labels[rec.uuid] else { continue }
                l.epoch = stamp
                l.sequence += 1
                if (try? l.write(to: d)) != nil {
                    labels[rec.uuid] = l
                    raised.append(rec.uuid)
                }
            }
            return (stamp, raised)
        }
        try commit { c in
            c.cleanShutdown = false
            for i in c.devices.indices where raised.contains(c.devices[i].uuid) { c.devices[i].epoch = stamp }
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
                if c.devices[i].role == .replica {
                    for case .releaseDevice(let r) in c.retire(u, .now) { try self.releaseDevice(r) }
                }
            }
        }
    }

    /// Deletes the whole set (`metadb -d -f` of its last replicas): refused while it has
    /// volumes or hot spare pools. Wipes the label and replica headers of every device of
    /// the set that is present, drops the set from the host registry and closes the database.
    /// A missing device keeps its label; `create --force` overwrites such a stale label.
    /// Returns the paths of the devices wiped.
    public func destroy() throws -> [String] {
        try lock.withLock {
            guard !isClosed else { throw DatabaseError.closed(set: setName) }
            guard mode == .readWrite else { throw DatabaseError.readOnly(set: setName) }
            if !current.volumes.isEmpty || !current.hotSparePools.isEmpty {
                let names = current.volumes.map(\.name) + current.hotSparePools.map(\.name)
                throw DatabaseError.invalid("set '\(setName)' still has \(names.joined(separator: ", ")): clear the volumes and delete the hot spare pools first")
            }
        }
        let wiped = lock.withLock { devices.values.map(\.path).sorted() }
        lock.withLock { for u in Array(devices.keys) { wipeAndForget(u) } }
        if let configDir {
            try HostRegistry.update(configDir: configDir) { r in
                r.sets.removeAll { $0.uuid == setUUID }
            }
        }
        close()
        return wiped
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

    /// Returns (and forgets) why the last update of the host registry failed, if it did: the
    /// commit itself succeeded, but this host's record of the set's device paths is stale.
    public func takeRegistryFailure() -> String? {
        lock.withLock {
            defer { registryFailure = nil }
            return registryFailure
        }
    }

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
            registryFailure = "\(error)"
        }
    }
}

extension NSLocking {
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock(); defer { unlock() }
        return try body()
    }
}
