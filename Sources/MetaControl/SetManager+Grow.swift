import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine

/// `metactl grow`, in the manner of SVM's `metattach`: the new geometry is built beside the
/// old one and committed in one state-database transaction, so a crash leaves one or the
/// other; existing data never moves.
///
/// - concat/stripe: one transaction labels the devices and appends the row.
/// - RAID-5: (1) a transaction labels the new devices (role `unused`) and records a
///   ``PendingGrow`` on the volume; (2) the new columns' data areas are zeroed, with the
///   progress checkpointed in the record every couple of seconds; (3) one transaction
///   appends the columns, makes the devices components and drops the record. A crash in
///   (2) leaves the old volume plus the record: the next open reports it, and `grow` with
///   the same devices resumes the zeroing where the checkpoint says; `grow --cancel`
///   releases the devices instead, and `clear` of the volume releases them too.
///
/// Test hook (not for production use): `METACTL_TEST_GROW_PAUSE=<seconds>` zeroes in
/// 1 MiB chunks, checkpoints after every chunk and sleeps that long after each chunk,
/// after the zeroing, and after the final commit, so a test can kill the process at
/// each of those points.
extension SetManager {
    /// Checkpoint interval of the zeroing.
    static let growCheckpointInterval: TimeInterval = 2
    /// Zeroing chunk per device (blocks).
    static let growChunkBlocks: UInt64 = 128 << 11 // 128 MiB

    /// The test pause (seconds), when the hook is set.
    static var growTestPause: Double? {
        guard let s = ProcessInfo.processInfo.environment["METACTL_TEST_GROW_PAUSE"], let v = Double(s), v >= 0 else { return nil }
        return v
    }

    /// `metactl grow`: appends a row (concat/stripe) or data columns (RAID-5, RAID-6).
    public func grow(_ r: GrowRequest) throws -> GrowResult {
        opLockAcquire(); defer { opLockRelease() }
        guard let vol = db.config.volume(named: r.name) else {
            throw OperationError("\(r.name): no such volume in set '\(setName)'", code: .notFound)
        }
        if r.cancel == true {
            guard r.devices.isEmpty, r.interlaceBytes == nil else {
                throw OperationError("\(r.name): --cancel takes no devices and no -i", code: .invalidArgument)
            }
            return try cancelGrow(vol)
        }
        if let m = vol.mirror {
            let sides = m.submirrors.map(\.volume)
            throw OperationError("\(r.name): a mirror grows with its sides: grow each of them (\(sides.map { "metactl grow \($0) DEV…" }.joined(separator: "; "))); the mirror takes the new space, resynced, once its smallest side has it", code: .invalidArgument)
        }
        if vol.type == .softpart {
            guard let size = r.sizeBytes, r.devices.isEmpty, r.interlaceBytes == nil else {
                throw OperationError("\(r.name): a soft partition grows by a size (metactl grow \(r.name) 512m), not by devices", code: .invalidArgument)
            }
            return try growSoftPartition(vol, sizeBytes: size)
        }
        if r.sizeBytes != nil {
            throw OperationError("\(r.name): a \(vol.type.displayName) volume grows by devices; a size grows soft partitions", code: .invalidArgument)
        }
        guard !r.devices.isEmpty else {
            if let p = vol.pendingGrow {
                throw OperationError("\(r.name): no devices given; the interrupted grow onto \(pendingPaths(p).joined(separator: " ")) resumes with `metactl grow \(r.name) \(pendingPaths(p).joined(separator: " "))`", code: .invalidArgument)
            }
            throw OperationError("\(r.name): no devices given", code: .invalidArgument)
        }
        try Self.refuseRepeated(r.devices)
        switch vol.type {
        case .concat, .stripe: return try growRows(r, vol)
        case .raid5, .raid6: return try growRAID5(r, vol)
        case .softpart: throw OperationError("\(r.name): a soft partition grows by a size", code: .invalidArgument)
        case .mirror: throw OperationError("\(r.name): a mirror grows with its sides", code: .invalidArgument)
        }
    }

    // MARK: checks

    /// Refuses a volume that is not entirely healthy (every component Okay and present, no
    /// background work).
    func checkGrowable(_ v: VolumeRecord) throws {
        let state = v.derivedState
        switch state {
        case .okay: break
        case .initializing:
            throw OperationError("\(v.name): is Initializing (parity is being initialised); grow when it is Okay (metactl status \(v.name))", code: .inUse)
        case .resyncing:
            throw OperationError("\(v.name): is Resyncing; grow when the resync has finished (metactl status \(v.name))", code: .inUse)
        case .needsMaintenance, .lastErred:
            throw OperationError("\(v.name): is \(state.rawValue); replace the failed component before growing (metactl status \(v.name))", code: .inUse)
        }
        if let rs = v.resync {
            throw OperationError("\(v.name): a \(rs.kind.rawValue) is in progress; grow when it has finished", code: .inUse)
        }
        for c in v.allComponents {
            let path = db.device(c.activeDevice)?.path ?? db.config.device(c.activeDevice)?.lastPath ?? c.activeDevice.uuidString
            if c.state != .okay {
                throw OperationError("\(v.name): component \(path) is \(c.state.rawValue); grow needs every component Okay", code: .inUse)
            }
            if db.device(c.activeDevice) == nil {
                throw OperationError("\(v.name): component \(path) is missing; grow needs every component present", code: .notFound)
            }
        }
    }

    /// Checks devices that are about to join the set (in use, signatures, labels, same
    /// device twice, already a member, logical sector size against `fit`); returns each
    /// one's data blocks.
    func checkNewDevices(_ paths: [String], force: Bool, fit: SectorFit) throws -> [UInt64] {
        let cfg = db.config
        var seen: [String: String] = [:]
        var sizes: [UInt64] = []
        let slot = cfg.replicas.first.map { $0.sizeBytes / 2 } ?? DiskLayout.defaultSlotSize
        let start = DiskLayout.dataStartBlock(copies: 0, slotSize: slot)
        for p in paths {
            if let e = Self.membershipError(p, config: cfg, currentPath: { self.db.device($0.uuid)?.path }) { throw e }
            let cand: ComponentCandidate
            do { cand = try ComponentCheck.check(path: p, force: force, knownMembers: [:]) } catch {
                throw OperationError("\(p): \(error.reason)", code: error.code)
            }
            let key = cand.identity
            if let other = seen[key] { throw OperationError(ComponentCandidate.duplicate(p, first: other), code: .invalidArgument) }
            seen[key] = p
            try fit.check(path: p, logicalSectorSize: cand.logicalSectorSize)
            do {
                try DeviceCheck.checkCandidate(path: p, force: force, configDir: configDir,
                                               ownSet: (db.setUUID, Set(cfg.devices.map(\.uuid))))
            } catch {
                throw OperationError("\(error)", code: ErrorCode.of(error))
            }
            let blocks = cand.sizeBytes / 512
            guard blocks > start else {
                throw OperationError("\(p): too small (\(cand.sizeBytes) bytes): the label area alone needs \(start * 512) bytes", code: .invalidArgument)
            }
            sizes.append(blocks - start)
        }
        return sizes
    }

    // MARK: concat / stripe

    private func growRows(_ r: GrowRequest, _ vol: VolumeRecord) throws -> GrowResult {
        try checkGrowable(vol)
        guard vol.rows.count < VolumeGrowth.maxRows else {
            throw OperationError("\(r.name): already has \(vol.rows.count) rows, the most a concat/stripe may have", code: .invalidArgument)
        }
        guard r.devices.count <= VolumeGrowth.maxRowComponents else {
            throw OperationError("\(r.name): \(r.devices.count) devices in one row; a stripe row takes at most \(VolumeGrowth.maxRowComponents)", code: .invalidArgument)
        }
        var il: UInt64 = 1
        if r.devices.count == 1 {
            if r.interlaceBytes != nil {
                throw OperationError("\(r.name): -i applies to a stripe row of two or more devices; one device is appended as a concatenation", code: .invalidArgument)
            }
        } else if let bytes = r.interlaceBytes {
            do { try VolumeRules.checkInterlace(bytes) } catch { throw OperationError("\(r.name): -i: \(error)", code: .invalidArgument) }
            il = bytes / 512
        } else {
            il = vol.rows.last(where: { $0.components.count > 1 })?.interlaceBlocks ?? VolumeRules.defaultStripeInterlace / 512
        }
        // The new devices' logical sectors must divide the row's interlace and not exceed the
        // volume's sector; the row's interlace must be a multiple of that sector too, so that
        // rows after it start on a sector boundary.
        let sector = engine(r.name)?.sectorSize
        let sizes = try checkNewDevices(r.devices, force: r.force,
                                        fit: SectorFit(volume: r.name, sectorSize: sector,
                                                       interlaceBytes: r.devices.count == 1 ? nil : il * 512,
                                                       interlaceOfVolume: false))
        if r.devices.count > 1, let sector, (il * 512) % UInt64(sector) != 0 {
            throw OperationError("\(r.name): -i: the interlace (\(VolumeRules.interlaceText(il * 512))) must be a multiple of the volume's \(sector)-byte sector", code: .invalidArgument)
        }
        let need = r.devices.count == 1 ? 1 : il
        for (p, s) in zip(r.devices, sizes) where s < need {
            throw OperationError("\(p): too small: its data area (\(s) blocks) is less than one interlace (\(need) blocks)", code: .invalidArgument)
        }
        let oldSize = VolumeGrowth.sizeBytes(of: vol)
        var notes: [String] = []
        // A side of a mirror: the commit (which may also put the other sides into a resync of
        // the new space) and the reload happen while no write is between its dirty-region
        // commit and its choice of sides, and the mirror takes the new states before the
        // side's engine shows the new size.
        let mirror = db.config.mirror(using: r.name)
        let mv = mirror.flatMap { engine($0.name) as? MirrorVolume }
        let mirrorBefore = mirror.map { db.config.mirrorBlocks($0.mirror!) }
        func commitRow() throws {
          try db.commit { cfg in
            guard cfg.volumeIndex(named: r.name) != nil else { throw OperationError("\(r.name): no such volume in set '\(setName)'", code: .notFound) }
            var recs: [DeviceRecord] = []
            for p in r.devices {
                recs.append(try db.addDevice(path: p, role: .component, replicaCopies: 0, force: r.force, in: &cfg))
            }
            let row = Grow.row(devices: recs, interlaceBlocks: il, sectorBlocks: UInt64(sector ?? 512) / 512)
            if recs.count > 1 {
                let used = row.componentBlocks / il * il
                for d in recs where d.dataBlocks > used {
                    notes.append("\(d.lastPath): \(d.dataBlocks - used) blocks (\(humanBytes((d.dataBlocks - used) * 512))) unusable: larger than the smallest device of the row")
                }
            }
            try db.record(.rowAppended(volume: r.name, devices: recs.map(\.uuid), interlaceBlocks: il,
                                       sectorBlocks: UInt64(sector ?? 512) / 512), in: &cfg)
          }
        }
        if let mv {
            try mv.change {
                try commitRow()
                mv.takeRecord()
                reloadAfterGrow(r.name)
            }
        } else {
            try commitRow()
            reloadAfterGrow(r.name)
        }
        let newSize = VolumeGrowth.sizeBytes(of: db.config.volume(named: r.name) ?? vol)
        logger.info("\(r.name): grown by a row of \(r.devices.count) device(s): \(oldSize) → \(newSize) bytes")
        if let mirror, let before = mirrorBefore, let m = db.config.volume(named: mirror.name)?.mirror {
            let after = db.config.mirrorBlocks(m)
            if after > before {
                let others = m.submirrors.dropFirst().map(\.volume)
                notes.append("\(mirror.name): grows from \(humanBytes(before * 512)) to \(humanBytes(after * 512)); \(others.joined(separator: ", ")) resync\(others.count == 1 ? "s" : "") the new space from \(m.submirrors[0].volume)\(isServer ? "" : " when the set is served (metactl serve)")")
                if isServer { mv?.startResync() }
            } else {
                let short = m.submirrors.filter { (db.config.volume(named: $0.volume)?.totalBlocks ?? 0) == after }.map(\.volume)
                notes.append("\(mirror.name): stays \(humanBytes(after * 512)) until \(short.joined(separator: ", ")) \(short.count == 1 ? "grows" : "grow") too")
            }
        }
        return GrowResult(name: r.name, oldSizeBytes: oldSize, newSizeBytes: newSize, messages: notes)
    }

    // MARK: RAID-5

    private func growRAID5(_ r: GrowRequest, _ vol: VolumeRecord) throws -> GrowResult {
        if r.interlaceBytes != nil {
            throw OperationError("\(r.name): -i: a \(vol.type.displayName) volume's interlace is fixed (\(vol.interlaceBlocks * 512 / 1024) KiB); leave -i out", code: .invalidArgument)
        }
        var notes: [String] = []
        let pending: PendingGrow
        if let p = vol.pendingGrow {
            let have = Set(pendingPaths(p).map(canonicalPath))
            let want = Set(r.devices.map(canonicalPath))
            guard have == want else {
                throw OperationError("\(r.name): an interrupted grow onto \(pendingPaths(p).joined(separator: " ")) is pending: finish it with `metactl grow \(r.name) \(pendingPaths(p).joined(separator: " "))` or release those devices with `metactl grow \(r.name) --cancel`", code: .inUse)
            }
            try checkGrowable(vol)
            for u in p.devices where db.device(u) == nil {
                throw OperationError("\(r.name): device \(db.config.device(u)?.lastPath ?? u.uuidString) of the interrupted grow is missing", code: .notFound)
            }
            pending = p
            notes.append("\(r.name): resuming the interrupted grow (\(percent(p.zeroedBlocks, p.totalBlocks)) zeroed)")
        } else {
            try checkGrowable(vol)
            guard vol.columns.count + r.devices.count <= VolumeGrowth.maxRAID5Columns else {
                throw OperationError("\(r.name): \(vol.columns.count) + \(r.devices.count) columns exceed the limit of \(VolumeGrowth.maxRAID5Columns) columns of a \(vol.type.displayName) volume", code: .invalidArgument)
            }
            let fit = SectorFit(volume: r.name, sectorSize: engine(r.name)?.sectorSize,
                                interlaceBytes: vol.interlaceBlocks * 512)
            let sizes = try checkNewDevices(r.devices, force: r.force, fit: fit)
            for (p, s) in zip(r.devices, sizes) where s < vol.columnBlocks {
                throw OperationError("\(p): too small for a column of \(r.name): its data area is \(s) blocks (\(humanBytes(s * 512))), the columns use \(vol.columnBlocks) blocks (\(humanBytes(vol.columnBlocks * 512)))", code: .invalidArgument)
            }
            for (p, s) in zip(r.devices, sizes) where s > vol.columnBlocks {
                notes.append("\(p): \(s - vol.columnBlocks) blocks (\(humanBytes((s - vol.columnBlocks) * 512))) unusable: larger than the column size")
            }
            var created: PendingGrow?
            try db.commit { cfg in
                guard cfg.volumeIndex(named: r.name) != nil else { throw OperationError("\(r.name): no such volume in set '\(setName)'", code: .notFound) }
                var uuids: [UUID] = []
                for p in r.devices {
                    uuids.append(try db.addDevice(path: p, role: .unused, replicaCopies: 0, force: r.force, in: &cfg).uuid)
                }
                try db.record(.growBegun(volume: r.name, devices: uuids), in: &cfg)
                created = cfg.volume(named: r.name)?.pendingGrow
            }
            guard let created else { throw OperationError("\(r.name): internal error: grow record not created", code: .internal) }
            pending = created
            logger.info("\(r.name): grow: labelled \(r.devices.joined(separator: ", ")); zeroing \(r.devices.count) new column(s) of \(humanBytes(pending.totalBlocks * 512))")
        }
        let oldSize = VolumeGrowth.sizeBytes(of: vol)
        try zeroPending(r.name, pending)
        let pause = Self.growTestPause
        logger.info("\(r.name): grow: zeroing complete, committing the new geometry")
        if let pause { Thread.sleep(forTimeInterval: pause) }
        try db.apply(.growCommitted(volume: r.name, devices: pending.devices))
        logger.info("\(r.name): grow: committed")
        if let pause { Thread.sleep(forTimeInterval: pause) }
        let newSize = VolumeGrowth.sizeBytes(of: db.config.volume(named: r.name) ?? vol)
        reloadAfterGrow(r.name)
        logger.info("\(r.name): grown by \(pending.devices.count) column(s): \(oldSize) → \(newSize) bytes")
        return GrowResult(name: r.name, oldSizeBytes: oldSize, newSizeBytes: newSize, messages: notes)
    }

    /// Zeroes the pending columns from the checkpoint to the end, checkpointing progress.
    private func zeroPending(_ name: String, _ p: PendingGrow) throws {
        var targets: [VolumeGrowth.ZeroTarget] = []
        for u in p.devices {
            guard let dev = db.device(u), let rec = db.config.device(u) else {
                throw OperationError("\(name): device \(db.config.device(u)?.lastPath ?? u.uuidString) of the grow is missing", code: .notFound)
            }
            targets.append(.init(device: dev, dataStartBlock: rec.dataStartBlock))
        }
        let pause = Self.growTestPause
        let chunk: UInt64 = pause != nil ? 2048 : Self.growChunkBlocks
        let total = p.totalBlocks
        var done = min(p.zeroedBlocks, total)
        let began = Date()
        let startDone = done
        var lastCheckpoint = Date()
        let r5 = engine(name) as? RAID5Volume
        let lineBlocks = max(1, db.config.volume(named: name)?.interlaceBlocks ?? 1)
        defer { r5?.progress.withLock { $0 = nil } }
        func report() {
            let elapsed = Date().timeIntervalSince(began)
            let bps = elapsed > 0 ? Double(done - startDone) * 512 * Double(targets.count) / elapsed : 0
            r5?.progress.withLock { $0 = (.zeroing, done / lineBlocks, total / lineBlocks, bps) }
            progressReporter?(name, ResyncKind.zeroing.rawValue, total == 0 ? 100 : Double(done) / Double(total) * 100, bps)
        }
        report()
        while done < total {
            let n = min(chunk, total - done)
            do { try VolumeGrowth.zero(targets, fromBlock: done, blocks: n) } catch {
                throw OperationError("\(name): zeroing the new columns failed: \(error); nothing committed (repeat the grow to retry, or `metactl grow \(name) --cancel`)")
            }
            done += n
            report()
            if pause != nil || Date().timeIntervalSince(lastCheckpoint) >= Self.growCheckpointInterval || done == total {
                lastCheckpoint = Date()
                do { try VolumeGrowth.flush(targets) } catch {
                    throw OperationError("\(name): flushing the new columns failed: \(error); nothing committed")
                }
                let checkpoint = done
                try db.apply(.growCheckpoint(volume: name, devices: p.devices, zeroedBlocks: checkpoint))
                logger.info("\(name): grow: zeroed \(checkpoint) of \(total) blocks (\(percent(checkpoint, total)))")
                if let pause { Thread.sleep(forTimeInterval: pause) }
            }
        }
    }

    /// `grow --cancel`: forgets an interrupted grow and releases its devices.
    private func cancelGrow(_ vol: VolumeRecord) throws -> GrowResult {
        guard let p = vol.pendingGrow else { throw OperationError("\(vol.name): no interrupted grow to cancel", code: .notFound) }
        let paths = pendingPaths(p)
        try db.apply(.growCancelled(volume: vol.name))
        logger.info("\(vol.name): interrupted grow cancelled; released \(paths.joined(separator: ", "))")
        let size = VolumeGrowth.sizeBytes(of: vol)
        return GrowResult(name: vol.name, oldSizeBytes: size, newSizeBytes: size,
                          messages: ["\(vol.name): interrupted grow cancelled; released \(paths.joined(separator: " "))"])
    }

    // MARK: helpers

    func pendingPaths(_ p: PendingGrow) -> [String] {
        p.devices.map { db.device($0)?.path ?? db.config.device($0)?.lastPath ?? $0.uuidString }
    }

    private func percent(_ a: UInt64, _ b: UInt64) -> String {
        b == 0 ? "100%" : String(format: "%.0f%%", Double(a) / Double(b) * 100)
    }

    /// Makes the running engine pick up the committed geometry (new NBD connections then
    /// see the new size).
    private func reloadAfterGrow(_ name: String) {
        guard let e = engine(name) else { return }
        do { try e.reloadGeometry() } catch {
            logger.error("\(name): the grow is committed but the running engine could not reload it: \(error); restart the server")
        }
    }

    /// Logs interrupted grows (and devices left labelled but unused) when the set is opened.
    func reportPendingGrows() {
        let cfg = db.config
        var referenced = Set<UUID>()
        for v in cfg.volumes {
            guard let p = v.pendingGrow else { continue }
            referenced.formUnion(p.devices)
            let paths = pendingPaths(p).joined(separator: " ")
            logger.warning("\(v.name): a grow onto \(paths) was interrupted (\(percent(p.zeroedBlocks, p.totalBlocks)) zeroed, nothing committed): finish it with `metactl grow \(v.name) \(paths)` or release the devices with `metactl grow \(v.name) --cancel`")
        }
        for d in cfg.devices where d.role == .unused && !referenced.contains(d.uuid) {
            logger.warning("device \(db.device(d.uuid)?.path ?? d.lastPath) is labelled for set '\(setName)' but unused")
        }
    }
}
