import Foundation

/// The set's state machine: every change to a set's configuration, as pure functions.
///
/// ``apply(_:to:)`` edits a configuration for one ``SetEvent`` and returns the
/// ``Effect``s to run once that configuration is committed. It does no I/O and keeps no
/// state: the same event on the same configuration always gives the same result, so every
/// SVM rule is tested here without devices (`Tests/MetaModelTests`). The state database
/// commits the result as one transaction (`ConfigStore.apply`).
public enum SetModel {
    /// Applies `event` to `config`. On a thrown error `config` is unchanged.
    public static func apply(_ event: SetEvent, to config: inout SetConfig) throws(ModelError) -> [Effect] {
        var c = config
        let effects = try transition(event, &c)
        config = c
        return effects
    }

    private static func transition(_ event: SetEvent, _ cfg: inout SetConfig) throws(ModelError) -> [Effect] {
        switch event {
        case .columnFailed(let name, let column, let state):
            guard let vi = cfg.volumeIndex(named: name), cfg.volumes[vi].columns.indices.contains(column) else { return [] }
            guard state == .maintenance || state == .lastErred || state == .unavailable else {
                throw ModelError(.invalidState, "\(name): a failed column becomes Maintenance, Last Erred or (its device removed) Unavailable, not \(state.rawValue)")
            }
            let prior = cfg.volumes[vi].columns[column].state
            cfg.volumes[vi].columns[column].state = state
            cfg.volumes[vi].columns[column].staleRegions = state == .unavailable && prior == .okay
                ? cfg.volumes[vi].regionsTrackableWhileAway : nil
            if prior == .resyncing, let r = cfg.volumes[vi].resync, r.kind == .regenerate, r.rebuiltColumns.contains(column) {
                cfg.volumes[vi].resync = r.dropping(column: column)
            }
            return []

        case .columnsMissing(let name, let columns, let dropCopy):
            guard let vi = cfg.volumeIndex(named: name) else { return [] }
            // A Last Erred column used as an ordinary one (every other column healthy, none
            // missing now) is missing like an ordinary one: Unavailable, written around, and
            // rebuilt when it returns, not read as the only source of its data (seed 102001372).
            let before = cfg.volumes[vi].columns
            let parityCount = cfg.volumes[vi].type.parityCount
            let ordinaryLastErred = { (c: Int) -> Bool in
                before[c].state == .lastErred && ColumnHealth.lastErredIsOrdinary(othersErred: before.indices.filter { i in
                    i != c && (before[i].state.isErred || before[i].state == .resyncing || columns.contains(i))
                }.count >= parityCount)
            }
            for c in columns where cfg.volumes[vi].columns.indices.contains(c)
                && (!cfg.volumes[vi].columns[c].state.isErred || ordinaryLastErred(c)) {
                let prior = cfg.volumes[vi].columns[c].state
                cfg.volumes[vi].columns[c].state = .unavailable
                cfg.volumes[vi].columns[c].staleRegions = prior == .okay ? cfg.volumes[vi].regionsTrackableWhileAway : nil
                if let r = cfg.volumes[vi].resync, r.kind == .regenerate, r.rebuiltColumns.contains(c) {
                    cfg.volumes[vi].resync = r.dropping(column: c)
                }
            }
            if dropCopy, let r = cfg.volumes[vi].resync, r.kind == .copy, let t = r.target {
                cfg.volumes[vi].resync = nil
                return cfg.retire(t, .whenIdle)
            }
            return []

        case .writeLogEpoch(let name, let epoch, let untrusted, let deviceFailed):
            guard let vi = cfg.volumeIndex(named: name), cfg.volumes[vi].writeLog != nil else { return [] }
            guard epoch > cfg.volumes[vi].writeLog!.epoch else {
                throw ModelError(.invalidState, "\(name): the write log's epoch only moves forward (\(cfg.volumes[vi].writeLog!.epoch) to \(epoch))")
            }
            cfg.volumes[vi].writeLog!.epoch = epoch
            if untrusted { cfg.volumes[vi].writeLog!.repairPending = true }
            if deviceFailed && cfg.volumes[vi].writeLog!.device != nil { cfg.volumes[vi].writeLog!.deviceFailed = true }
            return []

        case .writeLogRepaired(let name):
            guard let vi = cfg.volumeIndex(named: name), cfg.volumes[vi].writeLog != nil else { return [] }
            cfg.volumes[vi].writeLog!.repairPending = nil
            return []

        case .writeLogSet(let name, let log):
            guard let vi = cfg.volumeIndex(named: name) else { throw ModelError(.notFound, "\(name): no such volume") }
            guard cfg.volumes[vi].type.hasColumns else {
                throw ModelError(.invalidState, "\(name): only RAID-5 and RAID-6 volumes have a write log (it is a \(cfg.volumes[vi].type.rawValue))")
            }
            let old = cfg.volumes[vi].writeLog?.device
            cfg.volumes[vi].writeLog = log
            // A log device the volume no longer uses leaves the set (or stays for its replicas).
            if let old, old != log?.device { return cfg.retire(old, .whenIdle) }
            return []

        case .dirtyRegions(let name, let regions):
            guard let vi = cfg.volumeIndex(named: name) else { return [] }
            cfg.volumes[vi].dirtyRegions = regions.sorted()
            if cfg.volumes[vi].mirror != nil { cfg.volumes[vi].mirror!.addStale(regions) }
            // A region dirty now may be written while a column is away: it is stale there.
            for c in cfg.volumes[vi].columns.indices {
                guard cfg.volumes[vi].columns[c].state == .unavailable, let stale = cfg.volumes[vi].columns[c].staleRegions else { continue }
                cfg.volumes[vi].columns[c].staleRegions = Set(stale).union(regions).sorted()
            }
            return []

        case .lostBlocks(let name, let ranges):
            guard let vi = cfg.volumeIndex(named: name) else { return [] }
            cfg.volumes[vi].lostBlocks = ranges.isEmpty ? nil : ranges
            return []

        case .resyncCheckpoint(let name, let column, let target, let done):
            guard let vi = cfg.volumeIndex(named: name), let r = cfg.volumes[vi].resync,
                  r.column == column, r.target == target else { return [] }
            cfg.volumes[vi].resync?.doneBlocks = done
            return []

        case .initializeCheckpoint(let name, let done, let finished):
            guard let vi = cfg.volumeIndex(named: name) else { return [] }
            if finished {
                cfg.volumes[vi].resync = nil
                for c in cfg.volumes[vi].columns.indices where cfg.volumes[vi].columns[c].state == .initializing {
                    cfg.volumes[vi].columns[c].state = .okay
                }
            } else {
                cfg.volumes[vi].resync?.doneBlocks = done
            }
            return []

        case .submirrorFailed, .mirrorDirtyResync, .mirrorResyncCheckpoint, .mirrorResyncFinished,
             .submirrorOffline, .submirrorOnline, .submirrorAttached, .submirrorDetached, .mirrorParameters,
             .sideComponentReplaced, .sideSpareTaken:
            return try mirrorTransition(event, &cfg)

        case .resyncFinished(let name, let kind):
            return finishResync(name, kind, &cfg)

        case .copyAbandoned(let name, let target):
            guard let vi = cfg.volumeIndex(named: name) else { return [] }
            if cfg.volumes[vi].resync?.kind == .copy && cfg.volumes[vi].resync?.target == target {
                cfg.volumes[vi].resync = nil
            }
            return cfg.retire(target, .whenIdle)

        case .copyBecameRegeneration(let name, let c, let target, let done):
            guard let vi = cfg.volumeIndex(named: name), cfg.volumes[vi].columns.indices.contains(c) else { return [] }
            var col = cfg.volumes[vi].columns[c]
            if let spare = col.hotSpare { cfg.setSpareState(spare, .broken) }
            let old = col.device
            col.hotSpare = nil
            col.device = target
            col.state = .resyncing
            col.staleRegions = nil
            cfg.volumes[vi].columns[c] = col
            cfg.volumes[vi].resync = ResyncCheckpoint(kind: .regenerate, column: c, target: target,
                                                      doneBlocks: done, totalBlocks: cfg.volumes[vi].columnBlocks)
            // The engine cannot make the column a log holder again here (writes are not held
            // off), so its lines' records go to the next columns until the regeneration ends:
            // a replay must know (WriteLogTests.aConvertedCopysRecords…).
            if cfg.volumes[vi].writeLog?.active == true { cfg.volumes[vi].resync?.logExcluded = true }
            return cfg.retire(old, .whenIdle)

        case .lastErredEnabled(let name, let c):
            let vi = try column(name, c, in: cfg)
            guard cfg.volumes[vi].columns[c].state == .lastErred else {
                throw ModelError(.invalidState, "\(name): column \(c) is \(cfg.volumes[vi].columns[c].state.rawValue), not Last Erred")
            }
            cfg.volumes[vi].columns[c].state = .okay
            return []

        case .enableRegenerate(let name, let c):
            let vi = try column(name, c, in: cfg)
            cfg.volumes[vi].columns[c].state = .resyncing
            cfg.volumes[vi].columns[c].staleRegions = nil
            cfg.volumes[vi].resync = ResyncCheckpoint(kind: .regenerate, column: c, target: cfg.volumes[vi].columns[c].activeDevice,
                                                      totalBlocks: cfg.volumes[vi].columnBlocks)
            return []

        case .deviceReturned(let name, let c):
            let vi = try column(name, c, in: cfg)
            let col = cfg.volumes[vi].columns[c]
            guard col.state == .unavailable, col.hotSpare == nil else {
                throw ModelError(.invalidState, "\(name): column \(c) is \(col.state.rawValue)\(col.hotSpare == nil ? "" : " on a hot spare"); only an Unavailable column's own device returns")
            }
            if let r = cfg.volumes[vi].resync {
                throw ModelError(.inUse, "\(name): a \(r.kind.rawValue) is in progress; the returned device is rebuilt once it has finished")
            }
            var r = ResyncCheckpoint(kind: .regenerate, column: c, target: col.device, totalBlocks: cfg.volumes[vi].columnBlocks)
            r.regions = col.staleRegions
            cfg.volumes[vi].columns[c].state = .resyncing
            cfg.volumes[vi].columns[c].staleRegions = nil
            cfg.volumes[vi].resync = r
            return []

        case .copyBegun(let name, let c, let target):
            let vi = try column(name, c, in: cfg)
            cfg.volumes[vi].resync = ResyncCheckpoint(kind: .copy, column: c, target: target,
                                                      source: cfg.volumes[vi].columns[c].activeDevice,
                                                      totalBlocks: cfg.volumes[vi].columnBlocks)
            return []

        case .regenerationBegun(let name, let c, let target):
            let vi = try column(name, c, in: cfg)
            var col = cfg.volumes[vi].columns[c]
            let dropped = [col.device] + (col.hotSpare.map { [$0] } ?? [])
            if let spare = col.hotSpare { cfg.setSpareState(spare, .broken) }
            col.device = target
            col.hotSpare = nil
            col.state = .resyncing
            col.staleRegions = nil
            cfg.volumes[vi].columns[c] = col
            cfg.volumes[vi].resync = ResyncCheckpoint(kind: .regenerate, column: c, target: target,
                                                      totalBlocks: cfg.volumes[vi].columnBlocks)
            return dropped.flatMap { cfg.retire($0, .now) }

        case .spareTaken(let name, let c, let spare):
            let vi = try column(name, c, in: cfg)
            cfg.setSpareState(spare, .inUse)
            cfg.volumes[vi].columns[c].hotSpare = spare
            cfg.volumes[vi].columns[c].state = .resyncing
            cfg.volumes[vi].columns[c].staleRegions = nil
            cfg.volumes[vi].resync = ResyncCheckpoint(kind: .regenerate, column: c, target: spare,
                                                      totalBlocks: cfg.volumes[vi].columnBlocks)
            return []

        case .spareFailed(let name, let c, let spare):
            let vi = try column(name, c, in: cfg)
            cfg.setSpareState(spare, .broken)
            if cfg.volumes[vi].columns[c].hotSpare == spare {
                cfg.volumes[vi].columns[c].hotSpare = nil
                cfg.volumes[vi].columns[c].state = .maintenance
            }
            if let r = cfg.volumes[vi].resync {
                if r.target == spare, let primary = r.column {
                    cfg.volumes[vi].resync = r.dropping(column: primary)
                } else if let joined = r.more?.first(where: { $0.target == spare }) {
                    cfg.volumes[vi].resync = r.dropping(column: joined.column)
                }
            }
            return []

        case .regenerationJoined(let name, let c, let target, let spare):
            let vi = try column(name, c, in: cfg)
            let v = cfg.volumes[vi]
            guard v.type.parityCount >= 2, let r = v.resync, r.kind == .regenerate, r.doneBlocks == 0,
                  r.more?.isEmpty ?? true, let first = r.column, first != c else {
                throw ModelError(.invalidState, "\(name): column \(c) can join only a RAID-6 regeneration of one other column that has not begun")
            }
            var col = v.columns[c]
            var dropped: [UUID] = []
            if spare {
                cfg.setSpareState(target, .inUse)
                col.hotSpare = target
            } else {
                dropped = [col.device] + (col.hotSpare.map { [$0] } ?? [])
                if let s = col.hotSpare { cfg.setSpareState(s, .broken) }
                col.device = target
                col.hotSpare = nil
            }
            col.state = .resyncing
            col.staleRegions = nil
            cfg.volumes[vi].columns[c] = col
            cfg.volumes[vi].resync?.more = [RebuildTarget(column: c, target: target)]
            // Both columns are rebuilt over every line (the joining one has no current data).
            cfg.volumes[vi].resync?.regions = nil
            return dropped.flatMap { cfg.retire($0, .now) }

        case .checkBegun(let name, let repair, let total, let at):
            guard let vi = cfg.volumeIndex(named: name) else { throw ModelError(.notFound, "\(name): no such volume") }
            let v = cfg.volumes[vi]
            guard v.type.hasColumns || v.type == .mirror else {
                throw ModelError(.invalidState, "\(name): check verifies redundancy; a \(v.type.rawValue) volume has none")
            }
            if let m = v.mirror {
                guard m.submirrors.count > 1 else { throw ModelError(.invalidState, "\(name): has one side; there is nothing to compare it with") }
                if let s = m.submirrors.first(where: { $0.state != .okay }) {
                    throw ModelError(.invalidState, "\(name): side \(s.volume) is \(s.state.rawValue); check compares the sides when every one is Okay")
                }
            }
            if v.check?.running == true { throw ModelError(.inUse, "\(name): a check is already running (stop it with `metactl check \(name) --stop`)") }
            if let r = v.resync {
                throw ModelError(.inUse, "\(name): a \(r.kind.rawValue) is in progress; check it once that has finished")
            }
            if v.pendingGrow != nil { throw ModelError(.inUse, "\(name): a grow is in progress; check it once that has finished") }
            if let c = v.columns.firstIndex(where: { $0.state != .okay }) {
                throw ModelError(.invalidState, "\(name): column \(c) is \(v.columns[c].state.rawValue); check needs every column Okay (replace or enable it first)")
            }
            cfg.volumes[vi].check = CheckRecord(repair: repair, totalLines: total, startedAt: at)
            return []

        case .checkCheckpoint(let name, let done, let counts):
            guard let vi = cfg.volumeIndex(named: name), cfg.volumes[vi].check?.running == true else { return [] }
            cfg.volumes[vi].check?.doneLines = done
            cfg.volumes[vi].check?.counts = counts
            return []

        case .checkEnded(let name, let result, let done, let counts, let failure, let at):
            guard let vi = cfg.volumeIndex(named: name), cfg.volumes[vi].check?.running == true else { return [] }
            cfg.volumes[vi].check?.running = false
            cfg.volumes[vi].check?.doneLines = done
            cfg.volumes[vi].check?.counts = counts
            cfg.volumes[vi].check?.result = result
            cfg.volumes[vi].check?.failure = failure
            cfg.volumes[vi].check?.endedAt = at
            return []

        case .cleared(let name):
            guard let vol = cfg.volume(named: name) else { throw ModelError(.notFound, "\(name): no such volume") }
            if let m = cfg.mirror(using: name) {
                throw ModelError(.inUse, "\(name): is a side of mirror \(m.name); detach it first (metactl detach \(m.name) \(name))")
            }
            let children = cfg.softPartitions(of: name).map(\.name)
            if !children.isEmpty {
                throw ModelError(.inUse, "\(name): soft partitions \(children.joined(separator: ", ")) are carved from it; clear them first")
            }
            for c in vol.allComponents { if let s = c.hotSpare { cfg.setSpareState(s, .available) } }
            cfg.volumes.removeAll { $0.name == name }
            let uuids = vol.allComponents.flatMap { [$0.device] + ($0.hotSpare.map { [$0] } ?? []) }
                + (vol.pendingGrow?.devices ?? []) + (vol.resync?.target.map { [$0] } ?? [])
            return unique(uuids).flatMap { cfg.retire($0, .now) }

        case .rowAppended(let name, let uuids, let il, let sectorBlocks):
            guard let vi = cfg.volumeIndex(named: name) else { throw ModelError(.notFound, "\(name): no such volume") }
            guard !cfg.volumes[vi].type.hasColumns else { throw ModelError(.invalidState, "\(name): a RAID volume grows by columns") }
            let recs = try uuids.map { u throws(ModelError) -> DeviceRecord in
                guard let d = cfg.device(u) else { throw ModelError(.notFound, "\(name): device \(u) is not in the set") }
                return d
            }
            guard !recs.isEmpty else { throw ModelError(.invalidState, "\(name): a row needs devices") }
            let mirror = cfg.mirror(using: name)
            let before = mirror.map { cfg.mirrorBlocks($0.mirror!) }
            if let mirror, mirror.derivedState != .okay {
                throw ModelError(.invalidState, "\(name): is a side of \(mirror.name), which is \(mirror.derivedState.rawValue); grow its sides when every side is Okay")
            }
            cfg.volumes[vi].rows.append(Grow.row(devices: recs, interlaceBlocks: il, sectorBlocks: sectorBlocks))
            if let mirror, let before { mirrorGrown(&cfg, mirror.name, from: before) }
            return []

        case .growBegun(let name, let devices):
            guard let vi = cfg.volumeIndex(named: name) else { throw ModelError(.notFound, "\(name): no such volume") }
            guard cfg.volumes[vi].type.hasColumns, cfg.volumes[vi].pendingGrow == nil, !devices.isEmpty else {
                throw ModelError(.inUse, "\(name): cannot begin a grow (not RAID-5 or RAID-6, or one is pending)")
            }
            if cfg.volumes[vi].check?.running == true {
                throw ModelError(.inUse, "\(name): a check is running; stop it with `metactl check \(name) --stop`, or grow once it has finished")
            }
            cfg.volumes[vi].pendingGrow = PendingGrow(devices: devices, totalBlocks: cfg.volumes[vi].columnBlocks)
            // A grow moves every line: a column away now needs a full rebuild.
            for c in cfg.volumes[vi].columns.indices { cfg.volumes[vi].columns[c].staleRegions = nil }
            return []

        case .growCheckpoint(let name, let devices, let zeroed):
            guard let vi = cfg.volumeIndex(named: name), cfg.volumes[vi].pendingGrow?.devices == devices else {
                throw ModelError(.invalidState, "\(name): the grow record changed while zeroing; stopped")
            }
            cfg.volumes[vi].pendingGrow?.zeroedBlocks = zeroed
            return []

        case .growCommitted(let name, let devices):
            guard let vi = cfg.volumeIndex(named: name), let pg = cfg.volumes[vi].pendingGrow, pg.devices == devices else {
                throw ModelError(.invalidState, "\(name): the grow record changed while zeroing; nothing committed")
            }
            guard cfg.volumes[vi].columns.allSatisfy({ $0.state == .okay }), cfg.volumes[vi].resync == nil else {
                throw ModelError(.invalidState, "\(name): a column failed while the new columns were zeroed; repair it, then repeat the grow to finish")
            }
            cfg.volumes[vi].columns += pg.devices.map { ComponentRecord(device: $0, state: .okay) }
            cfg.volumes[vi].pendingGrow = nil
            for u in pg.devices {
                if let di = cfg.devices.firstIndex(where: { $0.uuid == u }) { cfg.devices[di].role = .component }
            }
            return []

        case .growCancelled(let name):
            guard let vi = cfg.volumeIndex(named: name) else { throw ModelError(.notFound, "\(name): no such volume") }
            guard let p = cfg.volumes[vi].pendingGrow else { throw ModelError(.invalidState, "\(name): no interrupted grow to cancel") }
            cfg.volumes[vi].pendingGrow = nil
            return p.devices.flatMap { cfg.retire($0, .now) }

        case .sparesRemoved(let pool, let devices, let deletePool):
            guard let pi = cfg.hotSparePools.firstIndex(where: { $0.name == pool }) else {
                throw ModelError(.notFound, "\(pool): no such hot spare pool")
            }
            let drop = deletePool ? cfg.hotSparePools[pi].spares.map(\.device) : devices
            if cfg.hotSparePools[pi].spares.contains(where: { drop.contains($0.device) && $0.state == .inUse }) {
                throw ModelError(.inUse, "\(pool): a spare to remove is in use")
            }
            cfg.hotSparePools[pi].spares.removeAll { drop.contains($0.device) }
            if deletePool { cfg.hotSparePools.remove(at: pi) }
            return unique(drop).flatMap { cfg.retire($0, .now) }

        case .unusedDevicesReleased:
            let unused = cfg.devices.filter { $0.role == .unused && !cfg.isReferenced($0.uuid) }.map(\.uuid)
            return unused.flatMap { cfg.retire($0, .now) }
        }
    }

    /// The end of a regeneration or copy.
    private static func finishResync(_ name: String, _ kind: ResyncKind, _ cfg: inout SetConfig) -> [Effect] {
        guard let vi = cfg.volumeIndex(named: name), let r = cfg.volumes[vi].resync, let c = r.column,
              cfg.volumes[vi].columns.indices.contains(c) else { return [] }
        // Columns rebuilt in the same pass (RAID-6) are done too.
        for m in r.more ?? [] where cfg.volumes[vi].columns.indices.contains(m.column) {
            cfg.volumes[vi].columns[m.column].state = .okay
        }
        var col = cfg.volumes[vi].columns[c]
        var retired: [UUID] = []
        if kind == .copy, let target = r.target {
            let oldActive = col.activeDevice
            // Copy-back from a spare: the spare returns to its pool.
            if let spare = col.hotSpare, spare == oldActive { cfg.setSpareState(spare, .available) }
            retired = unique([col.device, oldActive])
            col.device = target
            col.hotSpare = nil
            if let di = cfg.devices.firstIndex(where: { $0.uuid == target }) { cfg.devices[di].role = .component }
        }
        col.state = .okay
        col.staleRegions = nil
        cfg.volumes[vi].columns[c] = col
        cfg.volumes[vi].resync = nil
        return retired.flatMap { cfg.retire($0, .whenIdle) }
    }

    /// The index of volume `name`, which must have column `c`.
    private static func column(_ name: String, _ c: Int, in cfg: SetConfig) throws(ModelError) -> Int {
        guard let vi = cfg.volumeIndex(named: name) else { throw ModelError(.notFound, "\(name): no such volume") }
        guard cfg.volumes[vi].columns.indices.contains(c) else {
            throw ModelError(.notFound, "\(name): no column \(c)")
        }
        return vi
    }

    private static func unique(_ uuids: [UUID]) -> [UUID] {
        var seen = Set<UUID>()
        return uuids.filter { seen.insert($0).inserted }
    }
}
