import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine

extension SetManager {
    /// Finds the column of a RAID-5 volume whose device (or standing-in spare) is at `path`.
    func column(of vol: VolumeRecord, path: String) -> Int? {
        let want = canonicalPath(path)
        func matches(_ u: UUID) -> Bool {
            if let d = db.device(u), canonicalPath(d.path) == want { return true }
            if let rec = db.config.device(u), canonicalPath(rec.lastPath) == want { return true }
            return u.uuidString.lowercased() == path.lowercased()
        }
        return vol.columns.firstIndex { matches($0.device) } ?? vol.columns.firstIndex { $0.hotSpare.map(matches) ?? false }
    }

    /// `metactl replace NAME OLD NEW` / `metactl replace NAME --enable OLD`.
    public func replace(_ r: ReplaceRequest) throws -> ReplaceResult {
        let result: ReplaceResult
        do {
            opLockAcquire(); defer { opLockRelease() }
            result = try startReplace(r)
        }
        // Without a server the resync runs here; an enable that starts none (a Last Erred
        // column trusted again) has nothing to wait for.
        if !isServer && db.config.volume(named: r.name)?.resync != nil { try waitForResync(r.name) }
        return result
    }

    private func startReplace(_ r: ReplaceRequest) throws -> ReplaceResult {
        guard let vol = db.config.volume(named: r.name) else { throw OperationError("\(r.name): no such volume in set '\(setName)'", code: .notFound) }
        // A mirror, or a side of one: the side's component is replaced and the side resynced.
        if let done = try replaceSideComponent(r) { return done }
        guard vol.type.hasColumns else {
            throw OperationError("\(r.name): replace rebuilds RAID-5 and RAID-6 columns; a \(vol.type.rawValue) has no redundancy to rebuild from", code: .invalidArgument)
        }
        guard let c = column(of: vol, path: r.old) else { throw OperationError("\(r.old): not a component of \(r.name)", code: .notFound) }
        let col = vol.columns[c]
        // Lost blocks alone (no Last Erred column) do not stop a replace: they stay lost.
        // ReplaceRules holds the state checks; status builds its Invoke lines from them.
        if let e = ReplaceRules.lastErredFirst(vol, column: c, force: r.force) { throw e }
        guard let engine = try openEngine(r.name) as? RAID5Volume else { throw OperationError("\(r.name): not a RAID-5 engine", code: .internal) }
        if let rs = vol.resync {
            // A resync stopped by a second column's failure: re-enabling that (Last Erred)
            // column trusts it again and resumes the resync from its checkpoint.
            if r.new == nil && col.state == .lastErred && !engine.backgroundRunning
                && (rs.kind == .regenerate || rs.kind == .copy) {
                try db.apply(.lastErredEnabled(volume: r.name, column: c))
                try engine.reload()
                engine.startResync()
                return ReplaceResult(name: r.name, kind: "enable", messages: [
                    "\(r.old): enabled (Last Erred data trusted); the stopped \(rs.kind.rawValue) resumes from its checkpoint"])
            }
            throw OperationError("\(r.name): a \(rs.kind.rawValue) is in progress (\(rs.totalBlocks > 0 ? Int(Double(rs.doneBlocks) / Double(rs.totalBlocks) * 100) : 0)% done); wait for it to finish", code: .inUse)
        }

        if r.new == nil {
            // Re-enable in place.
            if let e = ReplaceRules.stateRefusal(vol, column: c, oldName: r.old, enable: true, force: r.force, oldReadable: false) {
                throw e
            }
            switch col.state {
            case .okay, .initializing, .resyncing:
                throw OperationError("\(r.old): is \(col.state.rawValue) in \(r.name); nothing to enable", code: .invalidArgument)
            case .lastErred:
                try db.apply(.lastErredEnabled(volume: r.name, column: c))
                try engine.reload()
                return ReplaceResult(name: r.name, kind: "enable", messages: ["\(r.old): enabled without a resync (Last Erred data kept)"])
            case .maintenance, .unavailable:
                guard db.device(col.activeDevice) != nil else {
                    throw OperationError("\(r.old): the device is not present (restart the server after it comes back, or replace it)", code: .notFound)
                }
                try db.apply(.enableRegenerate(volume: r.name, column: c))
                try engine.reload()
                engine.startResync()
                return ReplaceResult(name: r.name, kind: "regenerate", messages: ["\(r.name): regenerating \(r.old) from the other columns"])
            }
        }

        let newPath = r.new!
        if let e = Self.membershipError(newPath, config: db.config, currentPath: { self.db.device($0.uuid)?.path }) { throw e }
        let check = CreateRequest(name: r.name, type: .concat, devices: [newPath], force: r.force)
        let fit = SectorFit(volume: r.name, sectorSize: engine.sectorSize, interlaceBytes: vol.interlaceBlocks * 512)
        let sizes = try Self.validateDevices(check, replicaCopies: 0, configDir: configDir, fits: [fit])
        let needed = vol.blocksNeeded(column: c)
        guard let size = sizes.first?.dataBlocks, size >= needed else {
            throw OperationError("\(newPath): too small: column \(c) of \(r.name) needs \(needed) data blocks (\(needed * 512 + 1 << 20) bytes with the label area\(needed > vol.columnBlocks ? " and the write log" : ""))", code: .invalidArgument)
        }
        let readable = col.state == .okay && db.device(col.activeDevice) != nil
        if let second = r.second {
            return try startDoubleRegeneration(r, vol, first: c, second: second, engine: engine, fit: fit)
        }
        if let e = ReplaceRules.stateRefusal(vol, column: c, oldName: r.old, enable: false, force: r.force, oldReadable: readable) {
            throw e
        }
        try db.commit { cfg in
            let rec = try db.addDevice(path: newPath, role: .component, replicaCopies: 0, force: r.force, in: &cfg)
            // A regeneration retires the old device (and a spare standing in): they leave the
            // set (their labels are wiped once this commits, as `clear` does; a missing one
            // keeps its label, which `create --force` then overwrites) unless they hold
            // replicas: those stay as replica holders.
            try db.record(readable ? .copyBegun(volume: r.name, column: c, target: rec.uuid)
                                   : .regenerationBegun(volume: r.name, column: c, target: rec.uuid), in: &cfg)
        }
        try engine.reload()
        engine.startResync()
        let kind = readable ? "copy" : "regenerate"
        var messages: [String] = []
        if readable, let spare = col.hotSpare {
            let sparePath = db.device(spare)?.path ?? db.config.device(spare)?.lastPath ?? spare.uuidString
            messages.append("\(r.name): copying from hot spare \(sparePath) (standing in for \(r.old)) to \(newPath) (redundancy is kept throughout); the spare returns to its pool")
        } else {
            messages.append(readable ? "\(r.name): copying \(r.old) to \(newPath) (redundancy is kept throughout)"
                                     : "\(r.name): regenerating \(r.old) onto \(newPath) from the other columns")
        }
        if let note = Self.replicaNote(oldDevice: col.device, oldName: r.old, config: db.config) { messages.append(note) }
        return ReplaceResult(name: r.name, kind: kind, messages: messages)
    }

    /// `replace NAME OLD NEW OLD2 NEW2` of a RAID-6: both failed columns are rebuilt onto
    /// their new devices in one pass (one read of the other columns). Both must be erred
    /// (a readable column is copied, one at a time), and no third column may be.
    private func startDoubleRegeneration(_ r: ReplaceRequest, _ vol: VolumeRecord, first c: Int, second: ReplacePair,
                                         engine: RAID5Volume, fit: SectorFit) throws -> ReplaceResult {
        guard vol.type.parityCount >= 2 else {
            throw OperationError("\(r.name): two replacements at once need a RAID-6 volume (it is \(vol.type.displayName)); replace one column, then the other", code: .invalidArgument)
        }
        guard let c2 = column(of: vol, path: second.old) else { throw OperationError("\(second.old): not a component of \(r.name)", code: .notFound) }
        guard c2 != c else { throw OperationError("\(second.old): named twice", code: .invalidArgument) }
        guard let newPath = r.new, canonicalPath(newPath) != canonicalPath(second.new) else {
            throw OperationError("\(second.new): named twice", code: .invalidArgument)
        }
        for (col, old) in [(c, r.old), (c2, second.old)] {
            let s = vol.columns[col].state
            guard s == .maintenance || s == .unavailable else {
                throw OperationError("\(old): is \(s.rawValue) in \(r.name); only failed columns are rebuilt together (replace a readable one on its own: it is copied)", code: .invalidArgument)
            }
        }
        if let other = vol.columns.indices.first(where: { $0 != c && $0 != c2 && vol.columns[$0].state != .okay }) {
            throw OperationError("\(r.name): column \(other) is \(vol.columns[other].state.rawValue) too; with three columns out the data is not all there to rebuild from", code: .dataLost)
        }
        if let e = Self.membershipError(second.new, config: db.config, currentPath: { self.db.device($0.uuid)?.path }) { throw e }
        let check = CreateRequest(name: r.name, type: .concat, devices: [second.new], force: r.force)
        let sizes = try Self.validateDevices(check, replicaCopies: 0, configDir: configDir, fits: [fit])
        let needed = vol.blocksNeeded(column: c2)
        guard let size = sizes.first?.dataBlocks, size >= needed else {
            throw OperationError("\(second.new): too small: column \(c2) of \(r.name) needs \(needed) data blocks", code: .invalidArgument)
        }
        try db.commit { cfg in
            let a = try db.addDevice(path: newPath, role: .component, replicaCopies: 0, force: r.force, in: &cfg)
            let b = try db.addDevice(path: second.new, role: .component, replicaCopies: 0, force: r.force, in: &cfg)
            try db.record(.regenerationBegun(volume: r.name, column: c, target: a.uuid), in: &cfg)
            try db.record(.regenerationJoined(volume: r.name, column: c2, target: b.uuid, spare: false), in: &cfg)
        }
        try engine.reload()
        engine.startResync()
        var messages = ["\(r.name): regenerating \(r.old) onto \(newPath) and \(second.old) onto \(second.new) from the other columns, in one pass"]
        for (dev, name) in [(vol.columns[c].device, r.old), (vol.columns[c2].device, second.old)] {
            if let note = Self.replicaNote(oldDevice: dev, oldName: name, config: db.config) { messages.append(note) }
        }
        return ReplaceResult(name: r.name, kind: "regenerate", messages: messages)
    }

    /// Review finding 5: the replaced device still holds state database replicas (replicas
    /// never move with a column). Pulling it would cost the set those replicas, maybe its
    /// quorum: say so, with the command that removes them.
    static func replicaNote(oldDevice: UUID, oldName: String, config: SetConfig) -> String? {
        guard let d = config.device(oldDevice), d.replicaCount > 0 else { return nil }
        let total = config.replicas.count
        let left = total - d.replicaCount
        let s = config.setName == "local" ? "" : " -s \(config.setName)"
        let force = left < safeReplicaCount ? " --force" : ""
        return "warning: \(oldName) still holds \(d.replicaCount) of the \(total) state database replicas of set '\(config.setName)' (replicas do not move with a column); once the replace is done and before removing the device, delete them with `metactl db delete\(s)\(force) \(oldName)`" + (left < safeReplicaCount ? " and add replicas on another device with `metactl db add\(s) DEV` (at least \(safeReplicaCount) are recommended)" : "")
    }

    /// Called when a resync ends: a spare that failed as its target is Broken; releases
    /// devices left unused, takes the next spare after a target failed.
    public func resyncEnded(_ end: ResyncEnd) {
        let name = end.volume, outcome = end.outcome
        // (Only when this column's target is the one that failed: with two columns rebuilt
        // together, it may be the other's.)
        if case .targetFailed = outcome, let c = end.column, let t = end.target,
           db.config.volume(named: name)?.columns[safe: c]?.state == .maintenance,
           db.config.hotSparePools.contains(where: { $0.spares.contains { $0.device == t } }) {
            spareFailed(name, column: c, spare: t)
        }
        logger.info("\(name): resync ended: \(outcome)")
        releaseUnusedDevices()
        if case .targetFailed = outcome, isServer, db.config.volume(named: name)?.resync?.kind == .regenerate,
           let e = engine(name) as? RAID5Volume {
            // RAID-6: one of two columns rebuilt together failed; the other goes on from the
            // last checkpoint.
            logger.warning("\(name): the regeneration goes on for the column rebuilt with the one that failed")
            e.startResync()
        }
        if case .targetFailed = outcome { checkHotSpares(name) }
        if outcome == .completed, let rec = db.config.volume(named: name), rec.derivedState == .needsMaintenance {
            checkHotSpares(name)
        }
    }

    /// Drops devices whose role is `unused` and that nothing refers to, wiping their labels.
    func releaseUnusedDevices() {
        let cfg = db.config
        guard cfg.devices.contains(where: { $0.role == .unused && !cfg.isReferenced($0.uuid) }) else { return }
        do {
            try db.apply(.unusedDevicesReleased)
        } catch {
            logger.error("could not release unused devices: \(error)")
        }
    }

    /// SVM's check_4_hs: when a column of a volume with a pool is `Maintenance` and nothing
    /// else is erred or resyncing, reserve the first available spare that is large enough
    /// and regenerate onto it.
    public func checkHotSpares(_ name: String) {
        guard isServer else { return }
        opLockAcquire(); defer { opLockRelease() }
        if db.config.volume(named: name)?.type == .mirror { return checkMirrorSpares(name) }
        if let m = db.config.mirror(using: name) { return checkMirrorSpares(m.name) }
        guard let vol = db.config.volume(named: name), vol.type.hasColumns, vol.resync == nil,
              let poolName = vol.hotSparePool, let pool = db.config.pool(named: poolName) else { return }
        let erred = vol.columns.indices.filter { vol.columns[$0].state != .okay }
        // A failed column (Maintenance), or one missing since the start (Unavailable); on
        // RAID-6 up to two, rebuilt in one pass when the pool has a spare for each.
        guard !erred.isEmpty, erred.count <= vol.type.parityCount,
              erred.allSatisfy({ vol.columns[$0].state == .maintenance || vol.columns[$0].state == .unavailable })
        else { return }
        for c in erred where vol.columns[c].state == .maintenance {
            if let failedSpare = vol.columns[c].hotSpare {
                // A column in Maintenance on a spare: the spare that stood in has failed. It is
                // Broken; the column goes back to its original (failed) device for the next spare.
                spareFailed(name, column: c, spare: failedSpare)
            }
        }
        // A spare must be large enough, and its logical sector must divide the interlace and
        // not exceed the volume's sector (the pool may have been attached after it was filled).
        let sector = engine(name)?.sectorSize ?? 512
        var taken: [(column: Int, spare: UUID)] = []
        for c in erred {
            guard let spare = (db.config.pool(named: poolName) ?? pool).spares.first(where: { s in
                guard s.state == .available, !taken.contains(where: { $0.spare == s.device }), let dev = db.device(s.device) else { return false }
                let fit = SectorFit(volume: name, sectorSize: sector, interlaceBytes: vol.interlaceBlocks * 512)
                return (db.config.device(s.device)?.dataBlocks ?? 0) >= vol.blocksNeeded(column: c)
                    && (try? fit.check(path: dev.path, logicalSectorSize: dev.logicalSectorSize)) != nil
            }) else {
                logger.warning("\(name): column \(c) needs a spare but \(poolName) has none available that is large enough and has a fitting logical sector size")
                break
            }
            taken.append((c, spare.device))
        }
        guard let first = taken.first else { return }
        do {
            try db.commit { cfg in
                try db.record(.spareTaken(volume: name, column: first.column, spare: first.spare), in: &cfg)
                for more in taken.dropFirst() {
                    try db.record(.regenerationJoined(volume: name, column: more.column, target: more.spare, spare: true), in: &cfg)
                }
            }
            guard let engine = engine(name) as? RAID5Volume else { return }
            try engine.reload()
            for t in taken {
                logger.warning("\(name): column \(t.column) failed; hot spare \(db.device(t.spare)?.path ?? "?") from \(poolName) takes over")
            }
            engine.startResync()
        } catch {
            logger.error("\(name): could not take a hot spare: \(error)")
        }
    }

    /// A spare failed (while being rebuilt or while standing in): it becomes Broken and the
    /// column goes back to `Maintenance` on its original device, so the next spare can be
    /// tried; a resync onto it is dropped.
    func spareFailed(_ name: String, column c: Int, spare: UUID) {
        _ = try? db.apply(.spareFailed(volume: name, column: c, spare: spare))
        try? (engine(name) as? RAID5Volume)?.reload()
        logger.warning("\(name): hot spare \(db.device(spare)?.path ?? spare.uuidString) failed and is Broken")
    }

    /// Without a server, runs the resync in the foreground, reporting progress.
    func waitForResync(_ name: String) throws {
        guard let engine = engine(name) as? RAID5Volume else { return }
        follow(name, engine) { engine.progress.withLock { $0 }.map { ($0.kind.rawValue, $0.done, $0.total, $0.bytesPerSecond) } }
        if let rec = db.config.volume(named: name), rec.resync != nil || rec.derivedState != .okay {
            throw OperationError("\(name): resync did not complete; state \(rec.derivedState.rawValue)")
        }
    }

    /// Waits while `engine` runs background work in this process, passing what `progress`
    /// says to ``progressReporter`` once a second.
    func follow(_ name: String, _ engine: RAID5Volume,
                progress: () -> (kind: String, done: UInt64, total: UInt64, bytesPerSecond: Double)?) {
        var last = Date.distantPast
        while engine.backgroundRunning {
            if Date().timeIntervalSince(last) >= 1, let p = progress(), p.total > 0 {
                last = Date()
                progressReporter?(name, p.kind, Double(p.done) / Double(p.total) * 100, p.bytesPerSecond)
            }
            usleep(100_000)
        }
    }

    // MARK: hot spare pools

    /// `metactl hs create|add|delete|enable`.
    public func hotSpare(_ r: HotSpareRequest) throws -> [String: String] {
        opLockAcquire(); defer { opLockRelease() }
        switch r.action {
        case .create, .add:
            guard let name = r.pool, VolumeRules.validPoolName(name) else {
                throw OperationError("bad hot spare pool name '\(r.pool ?? "")': use hsp000 … hsp999", code: .invalidArgument)
            }
            let exists = db.config.pool(named: name) != nil
            if r.action == .create && exists { throw OperationError("\(name): hot spare pool already exists", code: .inUse) }
            if r.action == .add && !exists { throw OperationError("\(name): no such hot spare pool (create it with `metactl hs create \(name)`)", code: .notFound) }
            if r.action == .add && r.devices.isEmpty { throw OperationError("\(name): no devices given", code: .invalidArgument) }
            for p in r.devices {
                if let e = Self.membershipError(p, config: db.config, currentPath: { self.db.device($0.uuid)?.path }) { throw e }
            }
            // A spare must fit every RAID-5 volume that draws on the pool.
            let fits = db.config.volumes.filter { $0.type.hasColumns && $0.hotSparePool == name }.map { v in
                SectorFit(volume: v.name, sectorSize: (try? openEngine(v.name))?.sectorSize,
                          interlaceBytes: v.interlaceBlocks * 512)
            }
            let checked = try Self.validateDevices(CreateRequest(name: "hsp", type: .concat, devices: r.devices, force: r.force),
                                                   replicaCopies: 0, configDir: configDir, fits: fits)
            // Review finding 26: a spare smaller than a column of a volume using the pool can
            // never stand in for it; accepted (other volumes may fit) but said at once.
            var warnings: [String] = []
            for (p, c) in zip(r.devices, checked) {
                let small = db.config.volumes.filter { $0.type.hasColumns && $0.hotSparePool == name && c.dataBlocks < $0.originalColumnBlocksNeeded }
                if !small.isEmpty {
                    warnings.append("warning: \(p): too small to stand in for a column of \(small.map(\.name).joined(separator: ", ")) (its data area is \(c.dataBlocks) blocks, the columns use \(small.map(\.originalColumnBlocksNeeded).max() ?? 0) with their write log)")
                }
                // Mirror sides (concat, stripe): a spare stands in for one component of a row.
                let sides = db.config.volumes.filter { !$0.type.hasColumns && $0.hotSparePool == name && !$0.rows.isEmpty }
                let tooSmall = sides.filter { v in v.rows.contains { c.dataBlocks < $0.componentBlocks } }
                if !tooSmall.isEmpty {
                    let need = tooSmall.flatMap { $0.rows.map(\.componentBlocks) }.max() ?? 0
                    warnings.append("warning: \(p): too small to stand in for every component of \(tooSmall.map(\.name).joined(separator: ", ")) (its data area is \(c.dataBlocks) blocks, the largest component uses \(need))")
                }
            }
            try db.commit { cfg in
                if cfg.pool(named: name) == nil { cfg.hotSparePools.append(HotSparePoolRecord(name: name)) }
                guard let pi = cfg.hotSparePools.firstIndex(where: { $0.name == name }) else { return }
                for p in r.devices {
                    let rec = try db.addDevice(path: p, role: .hotSpare, replicaCopies: 0, force: r.force, in: &cfg)
                    cfg.hotSparePools[pi].spares.append(HotSpareRecord(device: rec.uuid))
                }
            }
            if isServer { for v in db.config.volumes where v.hotSparePool == name { checkHotSpares(v.name) } }
            if !warnings.isEmpty { return ["warnings": warnings.joined(separator: "\n")] }
        case .delete:
            guard let name = r.pool, let pool = db.config.pool(named: name) else {
                throw OperationError("\(r.pool ?? "?"): no such hot spare pool", code: .notFound)
            }
            var drop: [UUID] = []
            for p in r.devices {
                guard let s = pool.spares.first(where: { canonicalPath(db.device($0.device)?.path ?? db.config.device($0.device)?.lastPath ?? "") == canonicalPath(p) }) else {
                    throw OperationError("\(p): not a spare in \(name)", code: .notFound)
                }
                if s.state == .inUse { throw OperationError("\(p): is in use as a hot spare; replace the failed column first", code: .inUse) }
                drop.append(s.device)
            }
            if r.devices.isEmpty, let users = db.config.volumes.first(where: { $0.hotSparePool == name }) {
                throw OperationError("\(name): used by \(users.name); detach it with `metactl set \(users.name) --hot-spare-pool none`", code: .inUse)
            }
            if r.devices.isEmpty && pool.spares.contains(where: { $0.state == .inUse }) {
                throw OperationError("\(name): a spare is in use", code: .inUse)
            }
            if r.devices.isEmpty { drop = pool.spares.map(\.device) }
            try db.apply(.sparesRemoved(pool: name, devices: drop, deletePool: r.devices.isEmpty))
        case .enable:
            // Validate every device before committing anything: bad input changes nothing.
            guard !r.devices.isEmpty else { throw OperationError("hs enable: no devices given", code: .usage) }
            var toEnable: [UUID] = []
            for p in r.devices {
                let matches = db.config.hotSparePools.flatMap(\.spares).filter {
                    canonicalPath(db.device($0.device)?.path ?? db.config.device($0.device)?.lastPath ?? "") == canonicalPath(p)
                }
                guard let spare = matches.first else {
                    throw OperationError("\(p): not a hot spare of set '\(setName)'", code: .notFound)
                }
                guard db.device(spare.device) != nil else {
                    throw OperationError("\(p): the device is not present", code: .deviceFailed)
                }
                if matches.contains(where: { $0.state == .broken }) { toEnable.append(spare.device) }
            }
            if !toEnable.isEmpty {
                try db.commit { cfg in
                    for pi in cfg.hotSparePools.indices {
                        for si in cfg.hotSparePools[pi].spares.indices
                        where toEnable.contains(cfg.hotSparePools[pi].spares[si].device)
                            && cfg.hotSparePools[pi].spares[si].state == .broken {
                            cfg.hotSparePools[pi].spares[si].state = .available
                        }
                    }
                }
            }
            if isServer { for v in db.config.volumes where v.hotSparePool != nil { checkHotSpares(v.name) } }
        }
        return [:]
    }

    // MARK: parameters

    /// `metactl set NAME --hot-spare-pool HSP|none --resync-rate MIN:MAX`.
    public func setParams(_ r: SetParamsRequest) throws -> [String: String] {
        opLockAcquire(); defer { opLockRelease() }
        guard let vol = db.config.volume(named: r.name) else { throw OperationError("\(r.name): no such volume in set '\(setName)'", code: .notFound) }
        if let hsp = r.hotSparePool, hsp != "none" {
            guard vol.type.hasColumns || vol.type == .concat || vol.type == .stripe else {
                throw OperationError("\(r.name): hot spare pools apply to RAID-5 and RAID-6 volumes and to the concat and stripe volumes that are (or will be) sides of mirrors; it is a \(vol.type.displayName)", code: .invalidArgument)
            }
            guard VolumeRules.validPoolName(hsp) else {
                throw OperationError("bad hot spare pool name '\(hsp)': use hsp000 … hsp999", code: .invalidArgument)
            }
        }
        // As in `create`: naming a pool that does not exist creates it empty, and says so.
        var result: [String: String] = [:]
        if let rate = r.resyncRate, rate.minBytesPerSecond > rate.maxBytesPerSecond {
            throw OperationError("--resync-rate: the minimum is above the maximum", code: .invalidArgument)
        }
        try setMirrorParams(vol, r)
        if let dev = r.logDevice {
            try setLogDevice(vol, dev == "none" ? nil : dev, force: r.force == true)
        }
        let newLog = try r.writeLog.map { try writeLogChange(db.config.volume(named: r.name) ?? vol, $0) }
        if let newLog, newLog != db.config.volume(named: r.name)?.writeLog {
            // The engine switches (it waits for writes in flight and flushes first); without
            // an engine (no server), the commit alone.
            if let r5 = engine(r.name) as? RAID5Volume {
                try r5.setWriteLog(newLog)
            } else {
                try db.apply(.writeLogSet(volume: r.name, log: newLog))
            }
        }
        try db.commit { cfg in
            guard let vi = cfg.volumeIndex(named: r.name) else { return }
            if let hsp = r.hotSparePool { cfg.volumes[vi].hotSparePool = hsp == "none" ? nil : hsp }
            if let hsp = r.hotSparePool, hsp != "none", cfg.pool(named: hsp) == nil {
                cfg.hotSparePools.append(HotSparePoolRecord(name: hsp))
                result["note"] = "\(hsp): created (empty); add spares with `metactl hs add \(hsp) DEV`"
            }
            if let rate = r.resyncRate { cfg.volumes[vi].resyncRate = rate }
        }
        if isServer { checkHotSpares(r.name) }
        return result
    }
}

extension SetManager {
    /// `set NAME --log-device DEV|none`: the volume's records go to `path` (labelled into the
    /// set with role `log`; its data area, up to 64 MiB, is the log area), or back to the
    /// columns' areas. The old log device leaves the set. Writes in flight finish first.
    func setLogDevice(_ vol: VolumeRecord, _ path: String?, force: Bool) throws {
        guard vol.type.hasColumns else {
            throw OperationError("\(vol.name): --log-device applies to RAID-5 and RAID-6 volumes (it is a \(vol.type.rawValue))", code: .invalidArgument)
        }
        let base = vol.writeLog ?? WriteLogConfig(mode: .auto, areaBlocks: 0)
        var make: (inout SetConfig) throws -> WriteLogConfig?
        if let path {
            if let e = Self.membershipError(path, config: db.config, currentPath: { self.db.device($0.uuid)?.path }) { throw e }
            let check = CreateRequest(name: vol.name, type: .concat, devices: [path], force: force)
            let sizes = try Self.validateDevices(check, replicaCopies: 0, configDir: configDir, fits: [])
            guard let blocks = sizes.first?.dataBlocks, blocks >= 2048 else {
                throw OperationError("\(path): too small for a write log: it needs at least 1 MiB after its label area", code: .invalidArgument)
            }
            make = { [db] cfg in
                let rec = try db.addDevice(path: path, role: .log, replicaCopies: 0, force: force, in: &cfg)
                var log = base
                log.device = rec.uuid
                log.deviceAreaBlocks = min(blocks, WriteLogConfig.maxDeviceAreaBlocks)
                log.deviceFailed = nil
                log.epoch += 1
                return log
            }
        } else {
            guard base.device != nil else { return }
            make = { _ in
                var log = base
                log.device = nil; log.deviceAreaBlocks = nil; log.deviceFailed = nil
                log.epoch += 1
                return log.areaBlocks > 0 || log.mode == .auto ? log : nil
            }
        }
        if let r5 = engine(vol.name) as? RAID5Volume {
            try r5.setWriteLog(make)
        } else {
            try db.commit { cfg in try db.record(.writeLogSet(volume: vol.name, log: try make(&cfg)), in: &cfg) }
        }
        releaseUnusedDevices()
    }

    /// The write log `vol` gets for `--write-log mode`: an area already reserved is kept
    /// (and reused when the log is switched on again); a volume without one gets the default
    /// size when every original column's device has room for it after the column.
    func writeLogChange(_ vol: VolumeRecord, _ mode: WriteLogMode) throws -> WriteLogConfig? {
        guard vol.type.hasColumns else {
            throw OperationError("\(vol.name): --write-log applies to RAID-5 and RAID-6 volumes (it is a \(vol.type.rawValue))", code: .invalidArgument)
        }
        if var log = vol.writeLog, log.areaBlocks > 0 || log.device != nil {
            if log.mode == mode { return log }
            log.mode = mode
            log.epoch += 1
            return log
        }
        if mode == .none { return vol.writeLog }
        let area = WriteLogConfig.defaultAreaBlocks(columnDataBlocks: vol.columnBlocks)
        for c in 0..<vol.originalColumnCount {
            let uuid = vol.columns[c].activeDevice
            let dev = db.config.device(uuid)
            let room = (dev?.dataBlocks ?? 0) > vol.columnBlocks ? dev!.dataBlocks - vol.columnBlocks : 0
            if room < area {
                let path = db.device(uuid)?.path ?? dev?.lastPath ?? uuid.uuidString
                throw OperationError("\(vol.name): no room for a write log on column \(c) (\(path)): it needs \(humanBytes(area * 512)) after the column and the device has \(humanBytes(room * 512)); volumes created with --write-log none (or before metactl had a write log) keep no room for one", code: .invalidArgument)
            }
        }
        return WriteLogConfig(mode: .auto, areaBlocks: area)
    }
}

extension SetManager: EngineDelegate {
    /// A committed column failure: SVM's check_4_hs (in the server).
    public func columnFailed(volume: String, column: Int) { checkHotSpares(volume) }
}
