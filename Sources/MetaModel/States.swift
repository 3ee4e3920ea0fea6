import Foundation

/// Component state, spelled as SVM spells it (these strings appear in `status` and JSON).
public enum ComponentState: String, Codable, Sendable, CaseIterable {
    case okay = "Okay"
    case initializing = "Initializing"
    case resyncing = "Resyncing"
    /// Erred: not used for reads or writes; its data is derived from the other columns.
    case maintenance = "Maintenance"
    /// Erred while another column was already erred: still used where it is the only source.
    case lastErred = "Last Erred"
    /// Missing when the set was opened.
    case unavailable = "Unavailable"

    /// Whether reads and writes may use this component normally.
    public var isUsable: Bool { self == .okay || self == .initializing }
    /// Whether the component counts as failed for redundancy.
    public var isErred: Bool { self == .maintenance || self == .lastErred || self == .unavailable }
}

/// Volume state, derived from component states and running work.
public enum VolumeState: String, Codable, Sendable, CaseIterable {
    case okay = "Okay"
    case initializing = "Initializing"
    case resyncing = "Resyncing"
    case needsMaintenance = "Needs Maintenance"
    case lastErred = "Last Erred"
}

/// A component slot of a volume: a row member of a concat/stripe or a RAID column.
public enum ComponentSlot: Sendable, Equatable, Hashable, CustomStringConvertible {
    case row(Int, Int)
    case column(Int)
    public var description: String {
        switch self {
        case .row(let r, let c): return "row \(r) component \(c)"
        case .column(let c): return "column \(c)"
        }
    }
}

extension VolumeRecord {
    /// The record of a slot.
    public func component(_ slot: ComponentSlot) -> ComponentRecord {
        switch slot {
        case .row(let r, let c): return rows[r].components[c]
        case .column(let c): return columns[c]
        }
    }
    /// Edits the record of a slot.
    public mutating func updateComponent(_ slot: ComponentSlot, _ body: (inout ComponentRecord) -> Void) {
        switch slot {
        case .row(let r, let c): body(&rows[r].components[c])
        case .column(let c): body(&columns[c])
        }
    }

    /// The volume state derived from its components and background work.
    public var derivedState: VolumeState {
        if let m = mirror { return m.derivedState }
        let comps = allComponents
        if comps.contains(where: { $0.state == .lastErred }) { return .lastErred }
        if !(lostBlocks ?? []).isEmpty && lostDataBlocks > 0 { return .lastErred }
        let erred = comps.filter { $0.state == .maintenance || $0.state == .unavailable }.count
        if type.hasColumns && erred > type.parityCount { return .lastErred }
        if erred > 0 && !type.hasColumns { return .needsMaintenance }
        if let r = resync {
            switch r.kind {
            case .initialize: return erred > 0 ? .needsMaintenance : .initializing
            case .regenerate, .copy, .parityRepair: return .resyncing
            case .zeroing: break
            }
        }
        if erred > 0 { return .needsMaintenance }
        if comps.contains(where: { $0.state == .resyncing }) { return .resyncing }
        if comps.contains(where: { $0.state == .initializing }) { return .initializing }
        return .okay
    }
}

extension SetConfig {
    /// The state a volume is served in: its own (``VolumeRecord/derivedState``), except a soft
    /// partition's, which is its parent's (it holds no devices: its data is as safe as its
    /// parent's). What `status`, `monitor` and the metrics report.
    public func servedState(of v: VolumeRecord) -> VolumeState {
        var seen: Set<String> = [v.name]
        var current = v
        while let p = current.softPartition?.parent, let parent = volume(named: p), seen.insert(p).inserted { current = parent }
        return current.derivedState
    }
}
