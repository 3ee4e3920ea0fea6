import Foundation

extension MirrorRecord {
    /// Regions dirty now are stale on every offline side, and on every side out of service
    /// that records them (they may be written while it is away).
    mutating func addStale(_ regions: [UInt64]) {
        for i in submirrors.indices {
            let s = submirrors[i]
            guard s.state == .offline || (s.state == .needsMaintenance && s.staleRegions != nil) else { continue }
            submirrors[i].staleRegions = Set(s.staleRegions ?? []).union(regions).sorted()
        }
    }

    /// Puts side `i` into resync over `regions` (nil: every region), from the start.
    mutating func startResync(_ i: Int, regions: [UInt64]?) {
        submirrors[i].state = .resyncing
        submirrors[i].staleRegions = nil
        submirrors[i].resyncRegions = regions
        submirrors[i].resyncDoneBlocks = 0
    }

    /// Leaves side `i` in `state` with no resync or stale tracking.
    mutating func settle(_ i: Int, _ state: SubmirrorState) {
        submirrors[i].state = state
        submirrors[i].staleRegions = nil
        submirrors[i].resyncRegions = nil
        submirrors[i].resyncDoneBlocks = nil
    }
}

extension SetModel {
    /// The mirror transitions of ``apply(_:to:)``.
    static func mirrorTransition(_ event: SetEvent, _ cfg: inout SetConfig) throws(ModelError) -> [Effect] {
        switch event {
        case .submirrorFailed(let name, let side, let at):
            guard let vi = cfg.volumeIndex(named: name), var m = cfg.volumes[vi].mirror, m.submirrors.indices.contains(side) else { return [] }
            let prior = m.submirrors[side]
            let dirty = cfg.volumes[vi].dirtyRegions
            switch prior.state {
            case .okay:
                let othersReadable = m.submirrors.indices.contains { $0 != side && m.submirrors[$0].state.isReadable }
                m.settle(side, othersReadable ? .needsMaintenance : .lastErred)
                // It holds every block but the failed component's and the writes in flight.
                if othersReadable { m.submirrors[side].staleRegions = dirty.sorted() }
            case .resyncing:
                m.settle(side, .needsMaintenance)
                // It lacks what its resync had still to copy (every region when that is all).
                m.submirrors[side].staleRegions = prior.resyncRegions.map { Set($0).union(dirty).sorted() }
            case .lastErred:
                // Once another side holds every block, a failing Last Erred side is an
                // ordinary failed one (it missed this write; it is not read again).
                guard m.submirrors.indices.contains(where: { $0 != side && m.submirrors[$0].state == .okay }) else {
                    markFailedComponent(&cfg, m.submirrors[side].volume, at, sideState: .lastErred)
                    return []
                }
                m.settle(side, .needsMaintenance)
                m.submirrors[side].staleRegions = dirty.sorted()
            case .needsMaintenance, .offline:
                return []
            }
            cfg.volumes[vi].mirror = m
            markFailedComponent(&cfg, prior.volume, at, sideState: m.submirrors[side].state)
            return []

        case .mirrorDirtyResync(let name, let regions):
            guard let vi = cfg.volumeIndex(named: name), var m = cfg.volumes[vi].mirror else { return [] }
            cfg.volumes[vi].dirtyRegions = []
            // The source: the first Okay side, or (none) the first Last Erred one.
            guard !regions.isEmpty, let first = m.submirrors.firstIndex(where: { $0.state == .okay })
                    ?? m.submirrors.firstIndex(where: { $0.state == .lastErred }) else {
                cfg.volumes[vi].mirror = m
                return []
            }
            for i in m.submirrors.indices where i != first {
                switch m.submirrors[i].state {
                case .okay, .lastErred:
                    // (A Last Erred side differs from the others only where regions were dirty.)
                    m.startResync(i, regions: regions.sorted())
                case .resyncing:
                    // Its copied part may have lost writes in the dirty regions: the resync goes
                    // back to the first of them (a partial resync that lacks one starts over
                    // with it added: its order changes).
                    let s = m.submirrors[i]
                    let done = s.resyncDoneBlocks ?? 0
                    if let r = s.resyncRegions {
                        if Set(regions).isSubset(of: r) {
                            let first = r.firstIndex { regions.contains($0) }.map { UInt64($0) * m.regionBlocks } ?? done
                            m.submirrors[i].resyncDoneBlocks = min(done, first)
                        } else {
                            m.startResync(i, regions: Set(r).union(regions).sorted())
                        }
                    } else if let low = regions.min() {
                        m.submirrors[i].resyncDoneBlocks = min(done, low * m.regionBlocks)
                    }
                case .offline, .needsMaintenance:
                    m.addStale(regions)
                }
            }
            cfg.volumes[vi].mirror = m
            return []

        case .mirrorResyncCheckpoint(let name, let side, let done):
            guard let vi = cfg.volumeIndex(named: name), let m = cfg.volumes[vi].mirror, m.submirrors.indices.contains(side),
                  m.submirrors[side].state == .resyncing else { return [] }
            cfg.volumes[vi].mirror!.submirrors[side].resyncDoneBlocks = done
            return []

        case .mirrorResyncFinished(let name, let side):
            guard let vi = cfg.volumeIndex(named: name), let m = cfg.volumes[vi].mirror, m.submirrors.indices.contains(side),
                  m.submirrors[side].state == .resyncing else { return [] }
            cfg.volumes[vi].mirror!.settle(side, .okay)
            return []

        case .submirrorOffline(let name, let side):
            var (vi, m) = try mirror(name, side, cfg)
            let s = m.submirrors[side]
            guard s.state == .okay else {
                throw ModelError(.invalidState, "\(name): side \(s.volume) is \(s.state.rawValue); only an Okay side can be taken offline")
            }
            guard m.submirrors.indices.contains(where: { $0 != side && m.submirrors[$0].state == .okay }) else {
                throw ModelError(.invalidState, "\(name): \(s.volume) is its only Okay side; taking it offline would leave no side with every block")
            }
            m.settle(side, .offline)
            // Regions dirty now may have writes in flight that it misses.
            m.submirrors[side].staleRegions = cfg.volumes[vi].dirtyRegions.sorted()
            cfg.volumes[vi].mirror = m
            return []

        case .submirrorOnline(let name, let side):
            var (vi, m) = try mirror(name, side, cfg)
            let s = m.submirrors[side]
            guard m.submirrors.indices.contains(where: { $0 != side && m.submirrors[$0].state.isReadable }) else {
                throw ModelError(.invalidState, "\(name): no other side is readable to resync \(s.volume) from")
            }
            switch s.state {
            case .offline:
                // Nothing written while it was away: it holds every block already.
                if (s.staleRegions ?? []).isEmpty { m.settle(side, .okay) } else { m.startResync(side, regions: s.staleRegions ?? []) }
            case .needsMaintenance:
                m.startResync(side, regions: nil)
                // Brought back as it is: its components are trusted again.
                clearFailedComponents(&cfg, s.volume)
            case .lastErred where m.submirrors.indices.contains(where: { $0 != side && m.submirrors[$0].state == .okay }):
                // Another side holds every block again: this one is brought back like a failed one.
                m.startResync(side, regions: nil)
            case .okay, .resyncing, .lastErred:
                throw ModelError(.invalidState, "\(name): side \(s.volume) is \(s.state.rawValue); online applies to an Offline or Needs Maintenance side (or a Last Erred one once another side is Okay)")
            }
            cfg.volumes[vi].mirror = m
            return []

        case .submirrorAttached(let name, let side, let resync):
            guard let vi = cfg.volumeIndex(named: name), var m = cfg.volumes[vi].mirror else {
                throw ModelError(.notFound, "\(name): no such mirror")
            }
            guard let sv = cfg.volume(named: side) else { throw ModelError(.notFound, "\(side): no such volume") }
            guard sv.type == .concat || sv.type == .stripe else {
                throw ModelError(.invalidState, "\(side): is a \(sv.type.displayName); the sides of a mirror are concat or stripe volumes")
            }
            if let other = cfg.mirror(using: side) { throw ModelError(.inUse, "\(side): is already a side of \(other.name)") }
            guard m.submirrors.count < MirrorRecord.maxSubmirrors else {
                throw ModelError(.invalidState, "\(name): has \(m.submirrors.count) sides already, the most a mirror has")
            }
            // A smaller side would shrink the mirror under its clients (and soft partitions).
            let size = cfg.mirrorBlocks(m)
            guard m.submirrors.isEmpty || sv.totalBlocks >= size else {
                throw ModelError(.invalidState, "\(side): \(sv.totalBlocks * 512) bytes, smaller than \(name) (\(size * 512) bytes)")
            }
            m.submirrors.append(SubmirrorRecord(volume: side))
            if resync { m.startResync(m.submirrors.count - 1, regions: nil) }
            cfg.volumes[vi].mirror = m
            return []

        case .submirrorDetached(let name, let side, let force):
            var (vi, m) = try mirror(name, side, cfg)
            let s = m.submirrors[side]
            guard m.submirrors.indices.contains(where: { $0 != side && m.submirrors[$0].state == .okay }) else {
                throw ModelError(.invalidState, "\(name): \(s.volume) is its last Okay side; clear the mirror instead (metactl clear \(name))")
            }
            if !force && s.state != .okay && s.state != .offline {
                throw ModelError(.invalidState, "\(name): side \(s.volume) is \(s.state.rawValue); detach it with -f")
            }
            m.submirrors.remove(at: side)
            cfg.volumes[vi].mirror = m
            return []

        case .sideComponentReplaced(let name, let side, let row, let component, let device):
            var (vi, m) = try mirror(name, side, cfg)
            let sideName = m.submirrors[side].volume
            guard m.submirrors.indices.contains(where: { $0 != side && m.submirrors[$0].state.isReadable }) else {
                throw ModelError(.invalidState, "\(name): no other side is readable to resync \(sideName) from")
            }
            guard let si = cfg.volumeIndex(named: sideName), cfg.volumes[si].rows.indices.contains(row),
                  cfg.volumes[si].rows[row].components.indices.contains(component) else {
                throw ModelError(.notFound, "\(sideName): has no component \(component) in row \(row)")
            }
            guard cfg.device(device) != nil else { throw ModelError(.notFound, "\(name): device \(device) is not in the set") }
            let old = cfg.volumes[si].rows[row].components[component]
            if let spare = old.hotSpare { cfg.setSpareState(spare, .available) }
            let regions = cfg.regionsAfterReplacing(m, side: side, row: row)
            cfg.volumes[si].rows[row].components[component] = ComponentRecord(device: device)
            m.startResync(side, regions: regions)
            // The other untrusted rows are resynced as well: their components are taken back.
            clearFailedComponents(&cfg, sideName)
            cfg.volumes[vi].mirror = m
            return cfg.retire(old.device, .now)

        case .sideSpareTaken(let name, let side, let row, let component, let spare):
            var (vi, m) = try mirror(name, side, cfg)
            let sideName = m.submirrors[side].volume
            guard m.submirrors[side].state == .needsMaintenance else {
                throw ModelError(.invalidState, "\(name): side \(sideName) is \(m.submirrors[side].state.rawValue); a hot spare stands in only on a side that needs maintenance")
            }
            guard m.submirrors.indices.contains(where: { $0 != side && m.submirrors[$0].state.isReadable }) else {
                throw ModelError(.invalidState, "\(name): no other side is readable to resync \(sideName) from")
            }
            guard let si = cfg.volumeIndex(named: sideName), cfg.volumes[si].rows.indices.contains(row),
                  cfg.volumes[si].rows[row].components.indices.contains(component) else {
                throw ModelError(.notFound, "\(sideName): has no component \(component) in row \(row)")
            }
            guard cfg.hotSparePools.contains(where: { $0.spares.contains { $0.device == spare && $0.state == .available } }) else {
                throw ModelError(.invalidState, "\(name): device \(spare) is not an available hot spare")
            }
            if let broken = cfg.volumes[si].rows[row].components[component].hotSpare, broken != spare {
                cfg.setSpareState(broken, .broken)
            }
            let regions = cfg.regionsAfterReplacing(m, side: side, row: row)
            cfg.setSpareState(spare, .inUse)
            cfg.volumes[si].rows[row].components[component].hotSpare = spare
            cfg.volumes[si].rows[row].components[component].state = .okay
            m.startResync(side, regions: regions)
            // The other untrusted rows are resynced as well: their components are taken back.
            clearFailedComponents(&cfg, sideName)
            cfg.volumes[vi].mirror = m
            return []

        case .mirrorParameters(let name, let read, let write, let pass):
            guard let vi = cfg.volumeIndex(named: name), cfg.volumes[vi].mirror != nil else {
                throw ModelError(.notFound, "\(name): no such mirror")
            }
            if let pass, !(0...9).contains(pass) { throw ModelError(.invalidState, "\(name): pass \(pass): use 0 to 9") }
            if let read { cfg.volumes[vi].mirror!.readPolicy = read }
            if let write { cfg.volumes[vi].mirror!.writePolicy = write }
            if let pass { cfg.volumes[vi].mirror!.pass = pass }
            return []

        default:
            return []
        }
    }

    /// The component of side `sideName` that holds block `at` becomes `Maintenance`. A hot
    /// spare standing in there failed: once the side is out of service, it is `Broken` and
    /// the slot is back on its own device (for the next spare). While the side is still read
    /// (`Last Erred`), the spare holds its data and stays.
    private static func markFailedComponent(_ cfg: inout SetConfig, _ sideName: String, _ at: UInt64?, sideState: SubmirrorState) {
        guard let at, let si = cfg.volumeIndex(named: sideName), let layout = cfg.volumes[si].stripeLayout,
              at < layout.totalBlocks else { return }
        let (r, c, _) = layout.locate(at)
        guard cfg.volumes[si].rows.indices.contains(r), cfg.volumes[si].rows[r].components.indices.contains(c) else { return }
        if !sideState.isReadable, let spare = cfg.volumes[si].rows[r].components[c].hotSpare {
            cfg.setSpareState(spare, .broken)
            cfg.volumes[si].rows[r].components[c].hotSpare = nil
        }
        cfg.volumes[si].rows[r].components[c].state = .maintenance
    }

    /// A side of mirror `name` grew (every side `Okay`): when the mirror is larger now (its
    /// smallest side is), the space beyond `from` blocks holds different bytes on each side,
    /// so every side but the first resyncs it (the regions from the one `from` falls in).
    /// Reads of it come from the first side until then.
    static func mirrorGrown(_ cfg: inout SetConfig, _ name: String, from: UInt64) {
        guard let vi = cfg.volumeIndex(named: name), var m = cfg.volumes[vi].mirror, m.regionBlocks > 0 else { return }
        let to = cfg.mirrorBlocks(m)
        guard to > from else { return }
        let regions = Array(from / m.regionBlocks...(to - 1) / m.regionBlocks)
        for i in m.submirrors.indices.dropFirst() { m.startResync(i, regions: regions) }
        cfg.volumes[vi].mirror = m
    }

    /// Every component of side `sideName` is trusted again.
    private static func clearFailedComponents(_ cfg: inout SetConfig, _ sideName: String) {
        guard let si = cfg.volumeIndex(named: sideName) else { return }
        for r in cfg.volumes[si].rows.indices {
            for c in cfg.volumes[si].rows[r].components.indices where cfg.volumes[si].rows[r].components[c].state != .okay {
                cfg.volumes[si].rows[r].components[c].state = .okay
            }
        }
    }

    private static func mirror(_ name: String, _ side: Int, _ cfg: SetConfig) throws(ModelError) -> (Int, MirrorRecord) {
        guard let vi = cfg.volumeIndex(named: name), let m = cfg.volumes[vi].mirror else {
            throw ModelError(.notFound, "\(name): no such mirror")
        }
        guard m.submirrors.indices.contains(side) else { throw ModelError(.notFound, "\(name): has no side \(side)") }
        return (vi, m)
    }
}
