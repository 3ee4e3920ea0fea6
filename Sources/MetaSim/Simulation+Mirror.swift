import Foundation
import MetaDB
import MetaEngine
import MetaModel

/// Mirrors in the simulation (`SimOptions.mirror`, `metactl-torture --mirror`): the volume is
/// a mirror `d10` of two or three one-device concats (`m0`, `m1`, `m2`), with a state
/// database replica on a device of its own as well (so that one failed side leaves a
/// majority). Besides client I/O, faults, crashes and restarts, the schedule takes sides
/// offline and online, detaches and attaches them, and changes the policies; every read is
/// checked against ``SimModel`` and, at the end, an `Okay` mirror's sides must hold the same
/// bytes.
extension Simulation {
    /// The mirror's engine, when the volume is a mirror.
    var mirrorEngine: MirrorVolume? { volumeEngine as? MirrorVolume }

    /// Whether this schedule's volume is a mirror.
    var isMirror: Bool { options.mirror }

    /// The components the volume's data is on: a mirror's sides' components, else the
    /// volume's own.
    func simComponents(_ rec: VolumeRecord) -> [ComponentRecord] {
        guard let m = rec.mirror, let cfg = db?.config else { return rec.allComponents }
        return m.submirrors.flatMap { cfg.volume(named: $0.volume)?.allComponents ?? [] }
    }

    /// The side volumes' names this schedule made (a detached one stays a volume).
    static let sideNames = ["m0", "m1", "m2"]

    func setUpMirror(sides: Int, size: UInt64) throws {
        // (Their own random numbers: the seed's other choices stay what they were.)
        var layoutRng = SimRandom(seed: seed ^ 0x4D49_5252_4F52)
        let rows = options.mirrorSideRows ?? (layoutRng.chance(0.5) ? 2 : 1)
        let spareCount = options.mirrorSpares ?? (layoutRng.chance(0.5) ? 1 + layoutRng.below(2) : 0)
        for i in 0..<sides * rows { devices.append(SimDevice(path: "sim\(i)", sizeBytes: size, sectorSize: sector, fate: fate)) }
        let dbDev = SimDevice(path: "db0", sizeBytes: size, sectorSize: sector, fate: fate)
        devices.append(dbDev)
        for i in 0..<spareCount { devices.append(SimDevice(path: "spare\(i)", sizeBytes: size, sectorSize: sector, fate: fate)) }
        let db = try SetDatabase.create(setName: "sim", devices: devices.map { ($0, 1) }, slotSize: DiskLayout.minimumSlotSize)
        let noResync = options.noInit ?? rng.chance(0.5)
        let read = MirrorReadPolicy.allCases[rng.below(MirrorReadPolicy.allCases.count)]
        let write: MirrorWritePolicy = rng.chance(0.3) ? .serial : .parallel
        let blocks = options.lines * options.interlaceBlocks
        // Rows of a side split its blocks (the first row takes the odd remainder).
        let rowBlocks: [UInt64] = rows == 1 ? [blocks] : [blocks - blocks / 2, blocks / 2]
        try db.commit { cfg in
            var subs: [SubmirrorRecord] = []
            for i in 0..<sides {
                var side = VolumeRecord(name: Self.sideNames[i], type: .concat)
                for r in 0..<rows {
                    cfg.devices[i * rows + r].role = .component
                    side.rows.append(RowRecord(interlaceBlocks: 1, componentBlocks: rowBlocks[r],
                                               components: [ComponentRecord(device: cfg.devices[i * rows + r].uuid)]))
                }
                if spareCount > 0 { side.hotSparePool = "hsp001" }
                cfg.volumes.append(side)
                var s = SubmirrorRecord(volume: Self.sideNames[i])
                if i > 0 && !noResync { s.state = .resyncing; s.resyncDoneBlocks = 0 }
                subs.append(s)
            }
            cfg.devices[sides * rows].role = .replica
            if spareCount > 0 {
                let spares = cfg.devices[(sides * rows + 1)...].map(\.uuid)
                for u in spares { if let di = cfg.devices.firstIndex(where: { $0.uuid == u }) { cfg.devices[di].role = .hotSpare } }
                cfg.hotSparePools = [HotSparePoolRecord(name: "hsp001", spares: spares.map { HotSpareRecord(device: $0) })]
            }
            var v = VolumeRecord(name: name, type: .mirror)
            v.mirror = MirrorRecord(submirrors: subs, readPolicy: read, writePolicy: write,
                                    regionBlocks: options.linesPerRegion * options.interlaceBlocks)
            v.resyncRate = ResyncRate(minBytesPerSecond: UInt64.max / 4, maxBytesPerSecond: UInt64.max)
            cfg.volumes.append(v)
        }
        self.db = db
        note("create: mirror of \(sides) concats of \(rows) device\(rows == 1 ? "" : "s") (\(rowBlocks.map(String.init).joined(separator: "+")) blocks each), \(spareCount) spare(s), read \(read.rawValue), write \(write.rawValue)\(noResync ? ", --no-resync" : "")\(sector != 512 ? ", \(sector)-byte sectors" : "")")
        try openEngine()
        model = SimModel(blocks: Int(volumeEngine!.sizeBytes / 512))
    }

    /// Opens the mirror as ``SetManager`` does: its sides first, then the mirror; sides whose
    /// device is missing leave service, a crash's dirty regions go to a resync (with a
    /// writable state database); `serve` then starts the resync.
    func openMirrorEngine(_ rec: VolumeRecord, serve: Bool = true) throws {
        guard let db else { return }
        let sides = try (rec.mirror?.submirrors ?? []).map { s throws -> Volume in
            guard let sv = db.config.volume(named: s.volume) else { throw SimFailure(seed: seed, message: "no side \(s.volume)", trace: []) }
            return try VolumeFactory.open(sv, context: context)
        }
        let e = try VolumeFactory.open(rec, context: context, children: sides)
        volumeEngine = e
        guard let mv = e as? MirrorVolume, db.quorum.writable else { return }
        for (i, s) in (rec.mirror?.submirrors ?? []).enumerated() where s.state != .offline && s.state != .needsMaintenance {
            guard let sv = db.config.volume(named: s.volume) else { continue }
            var missing: (row: Int, column: Int)? = nil
            for (r, row) in sv.rows.enumerated() {
                for (c, comp) in row.components.enumerated() where missing == nil && db.device(comp.activeDevice) == nil { missing = (r, c) }
            }
            if let missing {
                note("  side \(s.volume) is missing its device in row \(missing.row)")
                let at = sv.stripeLayout?.logicalBlock(row: missing.row, column: missing.column, componentBlock: 0)
                try? mv.apply(.submirrorFailed(volume: name, submirror: i, at: at))
            }
        }
        try? mv.resyncDirtyRegions()
        if serve { mv.startResync() }
        // A check the last run did not finish resumes, as the server does it.
        if serve, db.config.volume(named: name)?.check?.running == true { mv.startCheck() }
    }

    /// Whether a request may fail now: no side in service on a healthy device.
    func mirrorMayFail() -> Bool {
        guard let db, let m = record?.mirror else { return true }
        let healthy = m.submirrors.filter { s in
            s.state.isReadable && (db.config.volume(named: s.volume)?.allComponents ?? []).allSatisfy {
                (db.device($0.activeDevice) as? SimDevice).map { !$0.faulty } ?? false
            }
        }
        return healthy.isEmpty
    }

    /// Sides in service whose device is faulty or missing.
    func mirrorFaultySides() -> Int {
        guard let db, let m = record?.mirror else { return 0 }
        return m.submirrors.filter { s in
            s.state.isWritten && (db.config.volume(named: s.volume)?.allComponents ?? []).contains {
                (db.device($0.activeDevice) as? SimDevice)?.faulty ?? true
            }
        }.count
    }

    /// Sides detached by the schedule (volumes of their own now, not written by it).
    var detachedSides: [String] {
        guard let cfg = db?.config else { return [] }
        return Self.sideNames.filter { cfg.volume(named: $0) != nil && cfg.mirror(using: $0) == nil }
    }

    /// An administrator's mirror command, chosen by the seed: offline, online (after fixing
    /// the side's device), detach, attach, or a policy change.
    func mirrorOp() {
        guard let db, let m = record?.mirror, let e = mirrorEngine, !fate.dead, db.quorum.writable else { clientWrite(); return }
        let sides = m.submirrors
        do {
            switch rng.below(7) {
            case 0:
                let i = rng.below(sides.count)
                count("mirror-offline")
                note("offline d10 \(sides[i].volume)")
                try e.apply(.submirrorOffline(volume: name, submirror: i))
            case 1, 2:
                guard let i = sides.indices.first(where: { sides[$0].state == .offline || sides[$0].state == .needsMaintenance || sides[$0].state == .lastErred }) else {
                    clientWrite(); return
                }
                // The administrator fixed its device first (most of the time).
                if rng.chance(0.8) {
                    for c in db.config.volume(named: sides[i].volume)?.allComponents ?? [] { (db.device(c.activeDevice) as? SimDevice)?.heal() }
                }
                count("mirror-online")
                note("online d10 \(sides[i].volume) (\(sides[i].state.rawValue)\(sides[i].staleRegions.map { ", stale regions \($0)" } ?? ""))")
                try e.apply(.submirrorOnline(volume: name, submirror: i))
                e.startResync()
            case 3:
                let i = rng.below(sides.count)
                let force = rng.chance(0.5)
                count("mirror-detach")
                note("detach\(force ? " -f" : "") d10 \(sides[i].volume) (\(sides[i].state.rawValue))")
                let rest = e.sideNames.indices.filter { $0 != i }
                try e.apply(.submirrorDetached(volume: name, submirror: i, force: force), children: rest.map { e.sideEngines[$0] })
            case 4:
                guard let side = detachedSides.first, let sv = db.config.volume(named: side) else { clientWrite(); return }
                count("mirror-attach")
                note("attach d10 \(side)")
                let se = try VolumeFactory.open(sv, context: context)
                try e.apply(.submirrorAttached(volume: name, submirror: side, resync: true), children: e.sideEngines + [se])
                e.startResync()
            case 5:
                // `replace d10 OLD NEW`: a side's device is replaced by a new one; the side
                // resyncs everything onto it.
                let i = rng.below(sides.count)
                guard let sv = db.config.volume(named: sides[i].volume), !sv.rows.isEmpty,
                      let side = e.sideEngines[i] as? StripeVolume else { clientWrite(); return }
                let row = sv.rows.count == 1 ? 0 : softRng.below(sv.rows.count)
                guard let old = sv.rows[row].components.first else { clientWrite(); return }
                replaced += 1
                let d = SimDevice(path: "new\(replaced)", sizeBytes: devices[0].sizeBytes, sectorSize: sector, fate: fate)
                devices.append(d)
                count("mirror-replace")
                note("replace d10 \((db.device(old.device) as? SimDevice)?.path ?? "?") \(d.path) (side \(sides[i].volume) row \(row), \(sides[i].state.rawValue))")
                try e.change {
                    try db.commit { cfg in
                        let rec = try db.addDevice(d, role: .component, replicaCopies: 0, in: &cfg)
                        try db.record(.sideComponentReplaced(volume: name, submirror: i, row: row, component: 0, device: rec.uuid), in: &cfg)
                    }
                    try side.reload()
                }
                note("  \(sides[i].volume) resyncs regions \(record?.mirror?.submirrors[i].resyncRegions.map { "\($0)" } ?? "all")")
                e.startResync()
            default:
                let read = MirrorReadPolicy.allCases[rng.below(MirrorReadPolicy.allCases.count)]
                let write: MirrorWritePolicy = rng.chance(0.3) ? .serial : .parallel
                count("mirror-policy")
                note("set d10 --read-policy \(read.rawValue) --write-policy \(write.rawValue)")
                try e.apply(.mirrorParameters(volume: name, read: read, write: write, pass: nil))
            }
            note("  sides now \(record?.mirror?.submirrors.map { "\($0.volume) \($0.state.rawValue)" } ?? [])")
        } catch {
            note("  refused or failed: \(error)")
        }
    }

    /// An administrator grows a mirror: `metactl grow SIDE NEW` of each side in turn (in an
    /// order chosen by the seed), as ``SetManager`` does it: the row is appended in one commit
    /// (which puts the other sides into a resync of the mirror's new space, when the mirror
    /// grows), the mirror takes the new states, then the side's engine shows its new size.
    /// The new blocks read as zeroes (every new device's). A crash may come between sides.
    func mirrorGrow() {
        guard let m = record?.mirror, mirrorEngine != nil else { clientRead(); return }
        count("mirror-grow")
        var order = Array(m.submirrors.indices)
        if rng.chance(0.5) { order.reverse() }
        for i in order {
            guard let db, let e = mirrorEngine, !fate.dead, db.quorum.writable, let m = record?.mirror,
                  m.submirrors.indices.contains(i) else { return }
            let sideName = m.submirrors[i].volume
            guard let sv = db.config.volume(named: sideName), sv.rows.count < 4, let side = e.sideEngines[i] as? StripeVolume else { return }
            let new = SimDevice(path: "grow\(devices.count)", sizeBytes: devices[0].sizeBytes, sectorSize: sector, fate: fate)
            devices.append(new)
            let before = e.sizeBytes / 512
            note("grow \(sideName) \(new.path) (mirror \(record?.derivedState.rawValue ?? "?"))")
            do {
                try e.change {
                    try db.commit { cfg in
                        let r = try db.addDevice(new, role: .component, replicaCopies: 0, in: &cfg)
                        try db.record(.rowAppended(volume: sideName, devices: [r.uuid], interlaceBlocks: 1,
                                                   sectorBlocks: UInt64(sector / 512)), in: &cfg)
                    }
                    e.takeRecord()
                    try side.reload()
                }
            } catch { note("  refused or failed: \(error)"); return }
            let after = e.sizeBytes / 512
            if after > before {
                count("mirror-grown")
                model.grow(to: Int(after))
                note("  the mirror grew to \(after) blocks; sides now \(record?.mirror?.submirrors.map { "\($0.volume) \($0.state.rawValue)\($0.resyncRegions.map { " \($0)" } ?? "")" } ?? [])")
                e.startResync()
            } else {
                note("  the mirror stays \(after) blocks")
            }
        }
    }

    /// The end of a mirror schedule: detached sides come back, every side not in service is
    /// brought online (its device healed), and the resyncs run to their end.
    func finishMirror() {
        guard let db, let e = mirrorEngine, !fate.dead, db.quorum.writable else { return }
        for side in detachedSides {
            guard let sv = db.config.volume(named: side), let se = try? VolumeFactory.open(sv, context: context) else { continue }
            note("final: attach d10 \(side)")
            try? e.apply(.submirrorAttached(volume: name, submirror: side, resync: true), children: e.sideEngines + [se])
        }
        for (i, s) in (record?.mirror?.submirrors ?? []).enumerated() where s.state == .offline || s.state == .needsMaintenance || s.state == .lastErred {
            note("final: online d10 \(s.volume)")
            try? e.apply(.submirrorOnline(volume: name, submirror: i))
        }
        e.startResync()
    }

    /// An `Okay` mirror's sides hold the same bytes, block for block (the mirror's "parity").
    func finalMirrorCompare() {
        guard let rec = record, rec.mirror != nil, !fate.dead else { return }
        // What the schedules end in (the coverage report).
        count("final-mirror-\(rec.derivedState.rawValue.lowercased().replacingOccurrences(of: " ", with: "-"))\(volumeEngine == nil ? "-closed" : "")")
        if let c = rec.check { count("final-mirror-check-\(c.running ? "running" : c.result?.rawValue ?? "?")") }
        guard db != nil, let m = rec.mirror, let e = mirrorEngine, rec.derivedState == .okay else { return }
        count("final-mirror-compare")
        let size = Int(e.sizeBytes)
        var first: [UInt8]? = nil
        for s in m.submirrors {
            guard let bytes = sideBytes(s.volume, count: size) else {
                violation("final: side \(s.volume) of an Okay mirror has no device")
                return
            }
            if let f = first {
                if let at = zip(f, bytes).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                    violation("the mirror is Okay but side \(s.volume) differs from \(m.submirrors[0].volume) at block \(at / 512)")
                    return
                }
            } else {
                first = bytes
            }
        }
        note("final: the \(m.submirrors.count) sides are identical")
    }

    /// The first `count` bytes of side `side`, read from its devices row after row (its
    /// rows are one device each); nil when a device is missing.
    func sideBytes(_ side: String, count: Int, from block: Int = 0) -> [UInt8]? {
        guard let db, let sv = db.config.volume(named: side) else { return nil }
        var out: [UInt8] = []
        var skip = UInt64(block)
        for row in sv.rows {
            guard out.count < count else { break }
            guard skip < row.componentBlocks else { skip -= row.componentBlocks; continue }
            guard let comp = row.components.first, let d = db.device(comp.activeDevice) as? SimDevice,
                  let dr = db.config.device(comp.activeDevice) else { return nil }
            let n = min(count - out.count, Int(row.componentBlocks - skip) * 512)
            out += d.peek(count: n, at: (dr.dataStartBlock + skip) * 512)
            skip = 0
        }
        return out.count == count ? out : nil
    }

    /// The hot-spare policy of ``SetManager/checkMirrorSpares(_:)``: a side that needs
    /// maintenance, with a `Maintenance` component, takes an available spare that is large
    /// enough in its place and resyncs.
    func checkMirrorSpares() {
        guard let db, let e = mirrorEngine, db.quorum.writable, let m = record?.mirror else { return }
        for (i, s) in m.submirrors.enumerated() where s.state == .needsMaintenance {
            guard let sv = db.config.volume(named: s.volume), let pool = sv.hotSparePool.flatMap({ db.config.pool(named: $0) }),
                  let r = sv.rows.indices.first(where: { r in sv.rows[r].components.contains { $0.state == .maintenance } }),
                  let c = sv.rows[r].components.firstIndex(where: { $0.state == .maintenance }) else { continue }
            guard let spare = pool.spares.first(where: { sp in
                sp.state == .available && db.device(sp.device) != nil
                    && (db.config.device(sp.device)?.dataBlocks ?? 0) >= sv.rows[r].componentBlocks
            }) else { continue }
            count("mirror-hot-spare")
            note("hot spare \(db.device(spare.device).map { ($0 as? SimDevice)?.path ?? "?" } ?? "?") takes over row \(r) of \(s.volume)")
            do {
                try e.apply(.sideSpareTaken(volume: name, submirror: i, row: r, component: c, spare: spare.device))
                note("  \(s.volume) resyncs regions \(record?.mirror?.submirrors[i].resyncRegions.map { "\($0)" } ?? "all")")
                e.startResync()
            } catch { note("  failed: \(error)") }
        }
    }

    /// Where block `b` is on each side (for the trace).
    func mirrorWhereIs(_ b: Int) -> String {
        guard let db, let m = record?.mirror else { return "?" }
        var parts = ["block \(b):"]
        for name in Self.sideNames {
            guard db.config.volume(named: name) != nil else { continue }
            let state = m.submirrors.first { $0.volume == name }?.state.rawValue ?? "detached"
            guard let bytes = sideBytes(name, count: 512, from: b) else {
                parts.append("\(name) \(state): missing"); continue
            }
            let id = bytes.withUnsafeBytes { SimModel.identify($0, block: b) }
            parts.append("\(name) \(state): \(id.map { "write \($0)" } ?? "not this block's data")")
        }
        return parts.joined(separator: " ")
    }
}
