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
        for i in 0..<sides { devices.append(SimDevice(path: "sim\(i)", sizeBytes: size, sectorSize: sector, fate: fate)) }
        let dbDev = SimDevice(path: "db0", sizeBytes: size, sectorSize: sector, fate: fate)
        devices.append(dbDev)
        let db = try SetDatabase.create(setName: "sim", devices: devices.map { ($0, 1) }, slotSize: DiskLayout.minimumSlotSize)
        let noResync = options.noInit ?? rng.chance(0.5)
        let read = MirrorReadPolicy.allCases[rng.below(MirrorReadPolicy.allCases.count)]
        let write: MirrorWritePolicy = rng.chance(0.3) ? .serial : .parallel
        let blocks = options.lines * options.interlaceBlocks
        try db.commit { cfg in
            var subs: [SubmirrorRecord] = []
            for i in 0..<sides {
                cfg.devices[i].role = .component
                cfg.volumes.append(VolumeRecord(name: Self.sideNames[i], type: .concat, rows: [
                    RowRecord(interlaceBlocks: 1, componentBlocks: blocks, components: [ComponentRecord(device: cfg.devices[i].uuid)])]))
                var s = SubmirrorRecord(volume: Self.sideNames[i])
                if i > 0 && !noResync { s.state = .resyncing; s.resyncDoneBlocks = 0 }
                subs.append(s)
            }
            cfg.devices[sides].role = .replica
            var v = VolumeRecord(name: name, type: .mirror)
            v.mirror = MirrorRecord(submirrors: subs, readPolicy: read, writePolicy: write,
                                    regionBlocks: options.linesPerRegion * options.interlaceBlocks)
            v.resyncRate = ResyncRate(minBytesPerSecond: UInt64.max / 4, maxBytesPerSecond: UInt64.max)
            cfg.volumes.append(v)
        }
        self.db = db
        note("create: mirror of \(sides) one-device concats, \(blocks) blocks each, read \(read.rawValue), write \(write.rawValue)\(noResync ? ", --no-resync" : "")\(sector != 512 ? ", \(sector)-byte sectors" : "")")
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
            let comps = db.config.volume(named: s.volume)?.allComponents ?? []
            if comps.contains(where: { db.device($0.activeDevice) == nil }) {
                note("  side \(s.volume) is missing its device")
                try? mv.apply(.submirrorFailed(volume: name, submirror: i))
            }
        }
        try? mv.resyncDirtyRegions()
        if serve { mv.startResync() }
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
                guard let sv = db.config.volume(named: sides[i].volume), let old = sv.rows.first?.components.first,
                      let side = e.sideEngines[i] as? StripeVolume else { clientWrite(); return }
                replaced += 1
                let d = SimDevice(path: "new\(replaced)", sizeBytes: devices[0].sizeBytes, sectorSize: sector, fate: fate)
                devices.append(d)
                count("mirror-replace")
                note("replace d10 \((db.device(old.device) as? SimDevice)?.path ?? "?") \(d.path) (side \(sides[i].volume), \(sides[i].state.rawValue))")
                try e.change {
                    try db.commit { cfg in
                        let rec = try db.addDevice(d, role: .component, replicaCopies: 0, in: &cfg)
                        try db.record(.sideComponentReplaced(volume: name, submirror: i, row: 0, component: 0, device: rec.uuid), in: &cfg)
                    }
                    try side.reload()
                }
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
        guard let db, let m = rec.mirror, let e = mirrorEngine, rec.derivedState == .okay else { return }
        count("final-mirror-compare")
        let size = Int(e.sizeBytes)
        var first: [UInt8]? = nil
        for s in m.submirrors {
            guard let comp = db.config.volume(named: s.volume)?.allComponents.first,
                  let d = db.device(comp.activeDevice) as? SimDevice, let dr = db.config.device(comp.activeDevice) else {
                violation("final: side \(s.volume) of an Okay mirror has no device")
                return
            }
            let bytes = d.peek(count: size, at: dr.dataStartBlock * 512)
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

    /// Where block `b` is on each side (for the trace).
    func mirrorWhereIs(_ b: Int) -> String {
        guard let db, let m = record?.mirror else { return "?" }
        var parts = ["block \(b):"]
        for name in Self.sideNames {
            guard let comp = db.config.volume(named: name)?.allComponents.first else { continue }
            let state = m.submirrors.first { $0.volume == name }?.state.rawValue ?? "detached"
            guard let d = db.device(comp.activeDevice) as? SimDevice, let dr = db.config.device(comp.activeDevice) else {
                parts.append("\(name) \(state): missing"); continue
            }
            let bytes = d.peek(count: 512, at: (dr.dataStartBlock + UInt64(b)) * 512)
            let id = bytes.withUnsafeBytes { SimModel.identify($0, block: b) }
            parts.append("\(name) \(state): \(id.map { "write \($0)" } ?? "not this block's data")")
        }
        return parts.joined(separator: " ")
    }
}
