import Foundation
import MetaDB
import MetaEngine
import MetaModel

/// `metactl attach|detach|offline|online MIRROR SIDE` (SVM's metattach, metadetach,
/// metaoffline, metaonline).
public struct MirrorRequest: Codable, Sendable, Equatable {
    public enum Operation: String, Codable, Sendable { case attach, detach, offline, online }
    public var operation: Operation
    public var mirror: String
    public var side: String
    /// detach: also a side that is not Okay or offline.
    public var force: Bool
    /// attach: the side holds the mirror's data already (the user's promise): no resync.
    public var noResync: Bool
    public init(operation: Operation, mirror: String, side: String, force: Bool = false, noResync: Bool = false) {
        self.operation = operation; self.mirror = mirror; self.side = side; self.force = force; self.noResync = noResync
    }
}

/// What a mirror operation did: the side's state afterwards and notes.
public struct MirrorReply: Codable, Sendable, Equatable {
    public var mirror: String
    public var side: String
    /// The side's state now (`Detached` after detach).
    public var state: String
    /// Regions the side resyncs (online, attach; nil: every region or none).
    public var resyncRegions: Int?
    public var messages: [String]
}

extension SetManager {
    /// A volume that may become a side: a concat or stripe, not a side already, not carved
    /// into soft partitions, not served to clients.
    private func checkSideCandidate(_ name: String, for mirror: String, force: Bool) throws -> VolumeRecord {
        guard let v = db.config.volume(named: name) else {
            throw OperationError("\(name): no such volume in set '\(setName)' (a mirror's sides are concat or stripe volumes of the set)", code: .notFound)
        }
        guard v.type == .concat || v.type == .stripe else {
            throw OperationError("\(name): is a \(v.type.displayName); the sides of a mirror are concat or stripe volumes", code: .invalidArgument)
        }
        if let m = db.config.mirror(using: name) { throw OperationError("\(name): is already a side of \(m.name)", code: .inUse) }
        let children = db.config.softPartitions(of: name).map(\.name)
        if !children.isEmpty {
            throw OperationError("\(name): soft partitions \(children.joined(separator: ", ")) are carved from it; a side of a mirror is written only through the mirror", code: .inUse)
        }
        if let n = openCountProvider?(name), n > 0, !force {
            throw OperationError("\(name): is open by \(n) client\(n == 1 ? "" : "s") through the server; disconnect them (a side is written only through its mirror) or use -f", code: .inUse)
        }
        return v
    }

    /// `create NAME mirror SIDE…`: `r.devices` are the sides' volume names.
    func createMirror(_ r: CreateRequest) throws -> CreateResult {
        opLockAcquire(); defer { opLockRelease() }
        try Self.checkNewVolumeName(r.name, config: db.config)
        if r.interlaceBytes != nil || r.writeLog != nil || r.softPartition != nil {
            throw OperationError("\(r.name): a mirror takes its sides (concat or stripe volumes); -i and --write-log do not apply", code: .invalidArgument)
        }
        if let hsp = r.hotSparePool, !VolumeRules.validPoolName(hsp) {
            throw OperationError("bad hot spare pool name '\(hsp)': use hsp000 … hsp999", code: .invalidArgument)
        }
        guard (1...MirrorRecord.maxSubmirrors).contains(r.devices.count) else {
            throw OperationError("\(r.name): a mirror has 1 to \(MirrorRecord.maxSubmirrors) sides, \(r.devices.count) given", code: .invalidArgument)
        }
        if Set(r.devices).count != r.devices.count { throw OperationError("\(r.name): a side is named twice", code: .invalidArgument) }
        let sides = try r.devices.map { try checkSideCandidate($0, for: r.name, force: r.force) }
        let engines = try sides.map { try openEngine($0.name) }
        let sizes = engines.map(\.sizeBytes)
        let size = sizes.min() ?? 0
        var notes: [String] = []
        for (e, s) in zip(engines, sizes) where s > size {
            notes.append("\(e.name): \(humanBytes(s - size)) unused: larger than the smallest side")
        }
        let resync = !r.noInit && sides.count > 1
        var subs = sides.map { SubmirrorRecord(volume: $0.name) }
        for i in subs.indices.dropFirst() where resync {
            subs[i].state = .resyncing
            subs[i].resyncDoneBlocks = 0
        }
        var rec = VolumeRecord(name: r.name, type: .mirror)
        rec.mirror = MirrorRecord(submirrors: subs, regionBlocks: context.dirtyRegionColumnBytes / 512)
        try db.commit { cfg in
            cfg.volumes.append(rec)
            // --hot-spare-pool: every side's components take spares from it.
            if let hsp = r.hotSparePool {
                for s in sides { if let i = cfg.volumeIndex(named: s.name) { cfg.volumes[i].hotSparePool = hsp } }
                if cfg.pool(named: hsp) == nil {
                    cfg.hotSparePools.append(HotSparePoolRecord(name: hsp))
                    notes.append("\(hsp): created (empty); add spares with `metactl hs add \(hsp) DEV`")
                }
            }
        }
        // The sides are reached only through the mirror from now on.
        onVolumesChanged?()
        let engine = try openEngine(r.name)
        if resync {
            notes.append(isServer ? "\(r.name): \(sides.dropFirst().map(\.name).joined(separator: ", ")) resync\(sides.count == 2 ? "s" : "") from \(sides[0].name) in the background"
                                  : "\(r.name): \(sides.dropFirst().map(\.name).joined(separator: ", ")) will resync from \(sides[0].name) when the set is served (metactl serve); until then reads come from \(sides[0].name)")
        }
        logger.info("\(r.name): created mirror of \(sides.map(\.name).joined(separator: ", ")), \(engine.sizeBytes) bytes")
        return CreateResult(name: r.name, sizeBytes: engine.sizeBytes, messages: notes, createdDatabase: false)
    }

    /// `attach`, `detach`, `offline`, `online`.
    public func mirrorOperation(_ r: MirrorRequest) throws -> MirrorReply {
        opLockAcquire(); defer { opLockRelease() }
        guard let rec = db.config.volume(named: r.mirror) else {
            throw OperationError("\(r.mirror): no such volume in set '\(setName)'", code: .notFound)
        }
        guard let m = rec.mirror else {
            throw OperationError("\(r.mirror): is a \(rec.type.displayName), not a mirror", code: .invalidArgument)
        }
        guard let engine = try openEngine(r.mirror) as? MirrorVolume else {
            throw OperationError("\(r.mirror): its engine is not a mirror's", code: .general)
        }
        var messages: [String] = []
        // (A refusal is a ModelError: a coded error, its kind kept across the control socket.)
        func commit(_ event: SetEvent, children: [Volume]? = nil) throws { try engine.apply(event, children: children) }
        switch r.operation {
        case .attach:
            let side = try checkSideCandidate(r.side, for: r.mirror, force: r.force)
            let se = try openEngine(side.name)
            guard se.sizeBytes >= engine.sizeBytes else {
                throw OperationError("\(side.name): \(se.sizeBytes) bytes, smaller than \(r.mirror) (\(engine.sizeBytes) bytes)", code: .invalidArgument)
            }
            guard se.sectorSize <= engine.sectorSize else {
                throw OperationError("\(side.name): its \(se.sectorSize)-byte sector is larger than the \(engine.sectorSize)-byte sector of \(r.mirror): its clients may send \(engine.sectorSize)-byte requests", code: .invalidArgument)
            }
            try commit(.submirrorAttached(volume: r.mirror, submirror: side.name, resync: !r.noResync),
                       children: engine.sideNames.compactMap { self.engine($0) } + [se])
            onVolumesChanged?()
            if !r.noResync {
                messages.append(isServer ? "\(side.name): resyncing every region in the background"
                                         : "\(side.name): will resync when the set is served (metactl serve)")
            }
        case .detach, .offline, .online:
            guard let i = m.index(of: r.side) else {
                throw OperationError("\(r.side): is not a side of \(r.mirror) (its sides: \(m.submirrors.map(\.volume).joined(separator: ", ")))", code: .notFound)
            }
            switch r.operation {
            case .detach:
                let rest = engine.sideNames.enumerated().filter { $0.offset != i }.compactMap { self.engine($0.element) }
                try commit(.submirrorDetached(volume: r.mirror, submirror: i, force: r.force), children: rest)
                // What it received as a side is durable before it is used on its own.
                do { try self.engine(r.side)?.flush() } catch {
                    messages.append("\(r.side): detached, but flushing it failed: \(error)")
                }
                onVolumesChanged?()
            case .offline:
                try commit(.submirrorOffline(volume: r.mirror, submirror: i))
            default:
                try commit(.submirrorOnline(volume: r.mirror, submirror: i))
                if !isServer { messages.append("\(r.side): will resync when the set is served (metactl serve)") }
            }
        }
        if isServer { engine.startResync() }
        let after = db.config.volume(named: r.mirror)?.mirror
        let s = after?.submirrors.first { $0.volume == r.side }
        logger.info("\(r.mirror): \(r.operation.rawValue) \(r.side)")
        return MirrorReply(mirror: r.mirror, side: r.side, state: s?.state.rawValue ?? "Detached",
                           resyncRegions: s?.state == .resyncing ? s?.resyncRegions?.count : nil, messages: messages)
    }

    /// Mirror parameters of `set` (read and write policy, pass).
    func setMirrorParams(_ vol: VolumeRecord, _ r: SetParamsRequest) throws {
        guard r.readPolicy != nil || r.writePolicy != nil || r.pass != nil else { return }
        guard vol.mirror != nil else {
            throw OperationError("\(vol.name): --read-policy, --write-policy and --pass apply to mirrors (it is a \(vol.type.displayName))", code: .invalidArgument)
        }
        if let p = r.pass, !(0...9).contains(p) { throw OperationError("--pass \(p): use 0 to 9", code: .invalidArgument) }
        let event = SetEvent.mirrorParameters(volume: vol.name, read: r.readPolicy, write: r.writePolicy, pass: r.pass)
        if let e = engine(vol.name) as? MirrorVolume { try e.apply(event) } else { try db.apply(event) }
    }

    /// Opens a mirror's engine over its sides' engines, then what opening asks: a crash's
    /// dirty regions handed to a resync, sides whose devices are missing out of service,
    /// the resync started (server only).
    func openMirror(_ rec: VolumeRecord) throws -> Volume {
        let children = try (rec.mirror?.submirrors ?? []).map { try openEngine($0.volume) }
        let engine = try VolumeFactory.open(rec, context: context, children: children)
        (engine as? MirrorVolume)?.delegate = self
        guard let mv = engine as? MirrorVolume, db.quorum.writable else { return engine }
        for (i, s) in (rec.mirror?.submirrors ?? []).enumerated() where s.state != .offline && s.state != .needsMaintenance {
            guard let sv = db.config.volume(named: s.volume) else { continue }
            var missing: (row: Int, column: Int, device: UUID)? = nil
            for (r, row) in sv.rows.enumerated() {
                for (c, comp) in row.components.enumerated() where missing == nil && dataDevices.device(comp.activeDevice, in: db) == nil {
                    missing = (r, c, comp.activeDevice)
                }
            }
            if let missing {
                logger.error("\(rec.name): side \(s.volume) is missing \(db.config.device(missing.device)?.lastPath ?? "a device")")
                let at = sv.stripeLayout?.logicalBlock(row: missing.row, column: missing.column, componentBlock: 0)
                try? mv.apply(.submirrorFailed(volume: rec.name, submirror: i, at: at))
            }
        }
        do { try mv.resyncDirtyRegions() } catch {
            logger.error("\(rec.name): cannot hand the dirty regions to a resync: \(error); reads come from the first Okay side")
        }
        return engine
    }
}

extension SetManager {
    /// `replace MIRROR OLD NEW` or `replace SIDE OLD NEW`, where OLD is a component of a side
    /// of a mirror: NEW takes its place in the side, which resyncs every region from the
    /// other sides (SVM's metareplace of a submirror's component). `replace … --enable OLD`
    /// brings the side back as `online` does.
    func replaceSideComponent(_ r: ReplaceRequest) throws -> ReplaceResult? {
        let cfg = db.config
        guard let named = cfg.volume(named: r.name) else { return nil }
        let mirrorRec: VolumeRecord
        if named.type == .mirror { mirrorRec = named } else if let m = cfg.mirror(using: r.name) { mirrorRec = m } else { return nil }
        guard let m = mirrorRec.mirror else { return nil }
        let canon = canonicalPath(r.old)
        var found: (side: Int, row: Int, comp: Int)? = nil
        for (i, s) in m.submirrors.enumerated() where named.type == .mirror || s.volume == r.name {
            guard let sv = cfg.volume(named: s.volume) else { continue }
            for (ri, row) in sv.rows.enumerated() {
                for (ci, c) in row.components.enumerated() {
                    let paths = [cfg.device(c.device)?.lastPath, db.device(c.device)?.path].compactMap { $0 }
                    if paths.contains(where: { canonicalPath($0) == canon }) { found = (i, ri, ci) }
                }
            }
        }
        guard let f = found else { throw OperationError("\(r.old): not a component of a side of \(mirrorRec.name)", code: .notFound) }
        if r.second != nil { throw OperationError("\(r.name): a mirror side's components are replaced one at a time", code: .invalidArgument) }
        let sideName = m.submirrors[f.side].volume
        guard let mv = try openEngine(mirrorRec.name) as? MirrorVolume else { throw OperationError("\(mirrorRec.name): its engine is not a mirror's", code: .internal) }
        guard let newPath = r.new else {
            let reply = try mirrorOperation(MirrorRequest(operation: .online, mirror: mirrorRec.name, side: sideName))
            return ReplaceResult(name: mirrorRec.name, kind: "resync", messages: reply.messages + ["\(mirrorRec.name): \(sideName) resyncs from the other sides"])
        }
        if let e = Self.membershipError(newPath, config: cfg, currentPath: { self.db.device($0.uuid)?.path }) { throw e }
        guard let sv = cfg.volume(named: sideName) else { throw OperationError("\(sideName): no such volume", code: .notFound) }
        let row = sv.rows[f.row]
        let check = CreateRequest(name: sideName, type: .concat, devices: [newPath], force: r.force)
        let fit = SectorFit(volume: mirrorRec.name, sectorSize: mv.sectorSize,
                            interlaceBytes: row.components.count > 1 ? row.interlaceBlocks * 512 : nil)
        let sizes = try Self.validateDevices(check, replicaCopies: 0, configDir: configDir, fits: [fit])
        guard let size = sizes.first?.dataBlocks, size >= row.componentBlocks else {
            throw OperationError("\(newPath): too small: \(sideName) uses \(row.componentBlocks) data blocks (\(humanBytes(row.componentBlocks * 512))) of each component of that row", code: .invalidArgument)
        }
        let sideEngine = engine(sideName) as? StripeVolume
        try mv.change {
            try db.commit { cfg in
                let rec = try db.addDevice(path: newPath, role: .component, replicaCopies: 0, force: r.force, in: &cfg)
                try db.record(.sideComponentReplaced(volume: mirrorRec.name, submirror: f.side, row: f.row, component: f.comp, device: rec.uuid), in: &cfg)
            }
            try sideEngine?.reload()
        }
        if isServer { mv.startResync() }
        logger.info("\(mirrorRec.name): \(r.old) of side \(sideName) replaced by \(newPath)")
        return ReplaceResult(name: mirrorRec.name, kind: "resync", messages: [
            isServer ? "\(mirrorRec.name): \(sideName) resyncs every region from the other sides onto \(newPath)"
                     : "\(mirrorRec.name): \(sideName) will resync when the set is served (metactl serve)"])
    }
}

extension SetManager {
    /// SVM's hot spares for submirror components: a side that needs maintenance, with a
    /// component in `Maintenance` and a hot spare pool, takes the first available spare that
    /// is large enough (and whose logical sector fits) in that component's place, and
    /// resyncs that row's regions plus those written since it left service.
    func checkMirrorSpares(_ name: String) {
        guard isServer, let rec = db.config.volume(named: name), let m = rec.mirror,
              let mv = engine(name) as? MirrorVolume else { return }
        for (i, s) in m.submirrors.enumerated() where s.state == .needsMaintenance {
            guard let sv = db.config.volume(named: s.volume), let poolName = sv.hotSparePool,
                  let pool = db.config.pool(named: poolName) else { continue }
            guard let r = sv.rows.indices.first(where: { r in sv.rows[r].components.contains { $0.state == .maintenance } }),
                  let c = sv.rows[r].components.firstIndex(where: { $0.state == .maintenance }) else { continue }
            let row = sv.rows[r]
            let fit = SectorFit(volume: name, sectorSize: mv.sectorSize,
                                interlaceBytes: row.components.count > 1 ? row.interlaceBlocks * 512 : nil)
            guard let spare = pool.spares.first(where: { sp in
                guard sp.state == .available, let dev = db.device(sp.device) else { return false }
                return (db.config.device(sp.device)?.dataBlocks ?? 0) >= row.componentBlocks
                    && (try? fit.check(path: dev.path, logicalSectorSize: dev.logicalSectorSize)) != nil
            }) else {
                logger.warning("\(name): side \(s.volume) needs a spare but \(poolName) has none available that is large enough and has a fitting logical sector size")
                continue
            }
            do {
                try mv.apply(.sideSpareTaken(volume: name, submirror: i, row: r, component: c, spare: spare.device))
            } catch {
                logger.error("\(name): could not take a hot spare for \(s.volume): \(error)")
                continue
            }
            let resync = db.config.volume(named: name)?.mirror?.submirrors[safe: i]?.resyncRegions
            logger.warning("\(name): a component of side \(s.volume) failed; hot spare \(db.device(spare.device)?.path ?? "?") from \(poolName) takes over and \(resync.map { "\($0.count) region(s)" } ?? "every region") resync from the other sides")
            mv.startResync()
        }
    }
}
