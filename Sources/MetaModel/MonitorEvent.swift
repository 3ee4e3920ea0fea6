import Foundation

/// One thing that happened to a set, as `metactl monitor` reports it (docs/MONITOR.md).
///
/// Most events are derived from two committed configurations by
/// ``changes(set:from:to:at:)``: every state the set reports is in its state database, so
/// the difference between two commits is exactly what happened between them, whoever
/// committed it (the engine, a command, the server's start-up). The server adds the few that
/// are not in the configuration (its start and stop, quorum).
public struct MonitorEvent: Codable, Sendable, Equatable {
    /// What happened. The raw values are the event names of the text and JSON output and of
    /// `$METACTL_EVENT`.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// The server listens (after its sockets accept connections).
        case serverStarted = "server-started"
        /// The server received SIGTERM/SIGINT and is stopping.
        case serverStopping = "server-stopping"
        case volumeCreated = "volume-created"
        case volumeCleared = "volume-cleared"
        /// The state of a volume changed (`state`, `previous`).
        case volumeState = "volume-state"
        /// A component became `Maintenance` or `Last Erred`.
        case componentFailed = "component-failed"
        /// A component's device is missing or stopped answering (`Unavailable`).
        case componentUnavailable = "component-unavailable"
        /// Any other change of a component's state (`Resyncing`, back to `Okay`, …).
        case componentState = "component-state"
        /// Another device took a component's place (`replace`, a finished copy-back).
        case componentReplaced = "component-replaced"
        /// A hot spare took the place of a failed component.
        case spareTaken = "spare-taken"
        /// A hot spare went back to its pool (`Available`).
        case spareReturned = "spare-returned"
        /// A hot spare failed (`Broken`).
        case spareBroken = "spare-broken"
        case resyncStarted = "resync-started"
        /// A resync checkpoint was committed (`percent`).
        case resyncProgress = "resync-progress"
        case resyncDone = "resync-done"
        case checkStarted = "check-started"
        case checkProgress = "check-progress"
        /// A check ended (`state`: completed, stopped or abandoned; the message counts mismatches).
        case checkDone = "check-done"
        case growStarted = "grow-started"
        case growDone = "grow-done"
        /// Blocks the volume knows it cannot return changed (`count` lost blocks now).
        case lostBlocks = "lost-blocks"
        /// Fewer than a majority of the state database replicas can be written.
        case quorumLost = "quorum-lost"
        case quorumRegained = "quorum-regained"
    }

    public var kind: Kind
    /// The set.
    public var set: String
    /// The volume, when the event is about one.
    public var volume: String?
    /// The component slot: `column 2`, `row 0 component 1`.
    public var component: String?
    /// The device concerned (its last known path).
    public var device: String?
    /// The new state (component, volume, spare), resync kind or check result.
    public var state: String?
    /// The state before, for state changes.
    public var previous: String?
    /// Progress of a resync, check or grow, 0–100.
    public var percent: Double?
    /// A count that goes with the event (lost blocks, check mismatches).
    public var count: UInt64?
    /// One line for people, without the time and set.
    public var message: String
    /// When the server saw it.
    public var time: Date

    public init(kind: Kind, set: String, volume: String? = nil, component: String? = nil, device: String? = nil,
                state: String? = nil, previous: String? = nil, percent: Double? = nil, count: UInt64? = nil,
                message: String, time: Date) {
        self.kind = kind; self.set = set; self.volume = volume; self.component = component; self.device = device
        self.state = state; self.previous = previous; self.percent = percent; self.count = count
        self.message = message; self.time = time
    }
}

extension MonitorEvent {
    /// The events between two committed configurations of set `set`, in a stable order:
    /// volumes created, then per volume (in configuration order) component changes, spares,
    /// resync, check, grow, lost blocks and last the volume's state; then volumes cleared.
    public static func changes(set: String, from before: SetConfig, to after: SetConfig, at time: Date) -> [MonitorEvent] {
        var out: [MonitorEvent] = []
        func path(_ u: UUID?) -> String? {
            guard let u else { return nil }
            return after.device(u)?.lastPath ?? before.device(u)?.lastPath
        }
        func event(_ kind: Kind, _ volume: String?, _ message: String, component: String? = nil, device: String? = nil,
                   state: String? = nil, previous: String? = nil, percent: Double? = nil, count: UInt64? = nil) {
            out.append(MonitorEvent(kind: kind, set: set, volume: volume, component: component, device: device,
                                    state: state, previous: previous, percent: percent, count: count,
                                    message: message, time: time))
        }
        for v in after.volumes where before.volume(named: v.name) == nil {
            let state = after.servedState(of: v)
            event(.volumeCreated, v.name, "\(v.name): \(v.type.displayName) volume created (\(state.rawValue))",
                  state: state.rawValue)
        }
        for v in after.volumes {
            guard let old = before.volume(named: v.name) else { continue }
            componentChanges(old, v, path: path, event: event)
            spareChanges(old, v, before: before, after: after, path: path, event: event)
            resyncChanges(old, v, path: path, event: event)
            checkChanges(old, v, event: event)
            growChanges(old, v, event: event)
            sideChanges(old, v, event: event)
            let lostBefore = old.lostDataBlocks, lostAfter = v.lostDataBlocks
            if lostBefore != lostAfter {
                event(.lostBlocks, v.name, lostAfter == 0
                      ? "\(v.name): no lost blocks any more"
                      : "\(v.name): \(lostAfter) blocks cannot be read back (they fail with EIO until rewritten)",
                      count: lostAfter)
            }
            // (A soft partition's state is its parent's: it changes with it.)
            let s0 = before.servedState(of: old), s1 = after.servedState(of: v)
            if s0 != s1 {
                event(.volumeState, v.name, "\(v.name): \(s0.rawValue) → \(s1.rawValue)",
                      state: s1.rawValue, previous: s0.rawValue)
            }
        }
        for v in before.volumes where after.volume(named: v.name) == nil {
            event(.volumeCleared, v.name, "\(v.name): volume cleared")
        }
        return out
    }

    private typealias Emit = (Kind, String?, String, String?, String?, String?, String?, Double?, UInt64?) -> Void

    /// A mirror's sides: a side that fails (`component-failed`), changes state, is attached
    /// or detached (`component-state`, state `Detached`); `component` names the side's volume.
    private static func sideChanges(_ old: VolumeRecord, _ v: VolumeRecord, event: Emit) {
        let before = old.mirror?.submirrors ?? [], after = v.mirror?.submirrors ?? []
        for s in after {
            let prior = before.first { $0.volume == s.volume }
            guard prior?.state != s.state else { continue }
            let failed = s.state == .needsMaintenance || s.state == .lastErred
            let what = prior == nil ? "attached, \(s.state.rawValue)" : "\(prior!.state.rawValue) → \(s.state.rawValue)"
            event(failed ? .componentFailed : .componentState, v.name, "\(v.name): side \(s.volume) \(what)",
                  s.volume, nil, s.state.rawValue, prior?.state.rawValue, nil, nil)
        }
        for s in before where !after.contains(where: { $0.volume == s.volume }) {
            event(.componentState, v.name, "\(v.name): side \(s.volume) detached", s.volume, nil, "Detached", s.state.rawValue, nil, nil)
        }
    }

    /// Slots present before and after (a grow adds slots; they are new, not changed).
    private static func slots(_ v: VolumeRecord, _ old: VolumeRecord) -> [ComponentSlot] {
        if v.type.hasColumns {
            return (0..<min(v.columns.count, old.columns.count)).map { .column($0) }
        }
        var s: [ComponentSlot] = []
        for r in 0..<min(v.rows.count, old.rows.count) {
            for c in 0..<min(v.rows[r].components.count, old.rows[r].components.count) { s.append(.row(r, c)) }
        }
        return s
    }

    private static func componentChanges(
        _ old: VolumeRecord, _ v: VolumeRecord, path: (UUID?) -> String?,
        event: Emit
    ) {
        for slot in slots(v, old) {
            let a = old.component(slot), b = v.component(slot)
            let where_ = "\(v.name) \(slot)"
            if a.device != b.device {
                event(.componentReplaced, v.name, "\(where_): \(path(a.device) ?? "?") replaced by \(path(b.device) ?? "?")",
                      slot.description, path(b.device), b.state.rawValue, nil, nil, nil)
            }
            guard a.state != b.state else { continue }
            let dev = path(b.activeDevice)
            let kind: Kind
            switch b.state {
            case .maintenance, .lastErred: kind = .componentFailed
            case .unavailable: kind = .componentUnavailable
            default: kind = .componentState
            }
            event(kind, v.name, "\(where_) (\(dev ?? "?")): \(a.state.rawValue) → \(b.state.rawValue)",
                  slot.description, dev, b.state.rawValue, a.state.rawValue, nil, nil)
        }
    }

    private static func spareChanges(
        _ old: VolumeRecord, _ v: VolumeRecord, before: SetConfig, after: SetConfig, path: (UUID?) -> String?,
        event: Emit
    ) {
        for slot in slots(v, old) {
            let a = old.component(slot), b = v.component(slot)
            guard a.hotSpare != b.hotSpare else { continue }
            if let s = b.hotSpare {
                event(.spareTaken, v.name, "\(v.name) \(slot): hot spare \(path(s) ?? "?") takes the place of \(path(b.device) ?? "?")",
                      slot.description, path(s), nil, nil, nil, nil)
            }
            if let s = a.hotSpare {
                let state = after.hotSparePools.lazy.flatMap(\.spares).first { $0.device == s }?.state
                if state == .broken {
                    event(.spareBroken, v.name, "\(v.name) \(slot): hot spare \(path(s) ?? "?") failed (Broken)",
                          slot.description, path(s), HotSpareState.broken.rawValue, nil, nil, nil)
                } else if state == .available {
                    event(.spareReturned, v.name, "\(v.name) \(slot): hot spare \(path(s) ?? "?") returned to its pool",
                          slot.description, path(s), HotSpareState.available.rawValue, nil, nil, nil)
                }
            }
        }
    }

    private static func resyncChanges(
        _ old: VolumeRecord, _ v: VolumeRecord, path: (UUID?) -> String?,
        event: Emit
    ) {
        func percent(_ r: ResyncCheckpoint) -> Double {
            r.totalBlocks == 0 ? 100 : (Double(r.doneBlocks) / Double(r.totalBlocks) * 1000).rounded() / 10
        }
        func what(_ r: ResyncCheckpoint) -> String {
            let cols = r.rebuiltColumns
            return cols.isEmpty ? r.kind.rawValue : "\(r.kind.rawValue) of column\(cols.count > 1 ? "s" : "") \(cols.map(String.init).joined(separator: " and "))"
        }
        let a = old.resync, b = v.resync
        let same = a != nil && b != nil && a!.kind == b!.kind && a!.rebuiltColumns == b!.rebuiltColumns && a!.target == b!.target
        if let a, !same {
            event(.resyncDone, v.name, "\(v.name): \(what(a)) \(b == nil ? "done" : "ended")",
                  a.column.map { "column \($0)" }, path(a.target), a.kind.rawValue, nil, b == nil ? 100 : percent(a), nil)
        }
        if let b, !same {
            event(.resyncStarted, v.name, "\(v.name): \(what(b)) started\(b.doneBlocks > 0 ? " at \(percent(b))%" : "")",
                  b.column.map { "column \($0)" }, path(b.target), b.kind.rawValue, nil, percent(b), nil)
        }
        if same, let a, let b, a.doneBlocks != b.doneBlocks {
            event(.resyncProgress, v.name, "\(v.name): \(what(b)) \(percent(b))%",
                  b.column.map { "column \($0)" }, path(b.target), b.kind.rawValue, nil, percent(b), nil)
        }
    }

    private static func checkChanges(
        _ old: VolumeRecord, _ v: VolumeRecord,
        event: Emit
    ) {
        guard let b = v.check else { return }
        let a = old.check
        func percent(_ c: CheckRecord) -> Double {
            c.totalLines == 0 ? 100 : (Double(c.doneLines) / Double(c.totalLines) * 1000).rounded() / 10
        }
        let begun = b.running && (a == nil || a!.running == false || a!.startedAt != b.startedAt)
        if begun {
            event(.checkStarted, v.name, "\(v.name): check\(b.repair ? " --repair" : "") started",
                  nil, nil, nil, nil, percent(b), nil)
        } else if b.running, let a, a.doneLines != b.doneLines {
            event(.checkProgress, v.name, "\(v.name): check \(percent(b))%, \(b.counts.mismatches) mismatches",
                  nil, nil, nil, nil, percent(b), b.counts.mismatches)
        }
        if !b.running, a?.running == true || (a?.startedAt != b.startedAt), let result = b.result {
            let repaired = b.repair ? ", \(b.counts.repaired) repaired" : ""
            event(.checkDone, v.name, "\(v.name): check \(result.rawValue): \(b.counts.mismatches) mismatches\(repaired)\(b.failure.map { " (\($0))" } ?? "")",
                  nil, nil, result.rawValue, nil, percent(b), b.counts.mismatches)
        }
    }

    private static func growChanges(
        _ old: VolumeRecord, _ v: VolumeRecord,
        event: Emit
    ) {
        switch (old.pendingGrow, v.pendingGrow) {
        case (nil, .some(let g)):
            event(.growStarted, v.name, "\(v.name): grow by \(g.devices.count) device\(g.devices.count == 1 ? "" : "s") started",
                  nil, nil, nil, nil, 0, nil)
        case (.some, nil):
            let grown = v.columns.count != old.columns.count || v.rows != old.rows
            event(.growDone, v.name, "\(v.name): grow \(grown ? "done" : "cancelled")", nil, nil, grown ? "done" : "cancelled", nil, nil, nil)
        default:
            if old.pendingGrow == nil && (v.columns.count > old.columns.count || v.rows.count > old.rows.count) {
                // A grow committed in one step (concat, stripe).
                event(.growDone, v.name, "\(v.name): grown", nil, nil, "done", nil, nil, nil)
            }
        }
    }
}
