import Foundation

/// State of one side (submirror) of a mirror, spelled as SVM's `metastat` spells it.
public enum SubmirrorState: String, Codable, Sendable, CaseIterable {
    /// Holds every block of the mirror: read and written.
    case okay = "Okay"
    /// Being brought up to date (``SubmirrorRecord/resyncRegions``): written, never read.
    case resyncing = "Resyncing"
    /// An I/O to it failed while another side was `Okay`: neither read nor written until
    /// `metactl online` (or a replacement) resyncs it.
    case needsMaintenance = "Needs Maintenance"
    /// Failed while it was the last `Okay` side: still read (it holds the only copy of
    /// what it still has), the mirror is `Last Erred`.
    case lastErred = "Last Erred"
    /// Taken out of service by `metactl offline`: not written; the regions written meanwhile
    /// are recorded (``SubmirrorRecord/staleRegions``) so that `online` resyncs only those.
    case offline = "Offline"

    /// Whether reads may be served from this side.
    public var isReadable: Bool { self == .okay || self == .lastErred }
    /// Whether writes go to this side.
    public var isWritten: Bool { self == .okay || self == .lastErred || self == .resyncing }
}

/// How a mirror chooses the side a read goes to (`metactl set NAME --read-policy`, SVM's
/// `metaparam -r`).
public enum MirrorReadPolicy: String, Codable, Sendable, CaseIterable {
    /// Alternate between the readable sides, request by request (the default).
    case roundrobin
    /// Each side serves its own share of the volume's address range (side i the i-th
    /// 1/n-th): sequential readers on different ranges use different disks.
    case geometric
    /// Always the first readable side.
    case first
}

/// How a mirror writes its sides (`metactl set NAME --write-policy`, SVM's `metaparam -w`).
public enum MirrorWritePolicy: String, Codable, Sendable, CaseIterable {
    /// Every side at once (the default).
    case parallel
    /// One side after the other, in order.
    case serial
}

/// One side of a mirror: a concat or stripe volume of the same set.
public struct SubmirrorRecord: Codable, Sendable, Equatable {
    /// The volume that is this side.
    public var volume: String
    public var state: SubmirrorState
    /// While ``SubmirrorState/offline``: the regions written since it went offline (the
    /// regions `online` resyncs). Nil otherwise.
    public var staleRegions: [UInt64]? = nil
    /// While ``SubmirrorState/resyncing``: the regions to copy onto it (nil: every region).
    public var resyncRegions: [UInt64]? = nil
    /// While resyncing: the blocks of those regions (in order) already copied and flushed.
    public var resyncDoneBlocks: UInt64? = nil

    public init(volume: String, state: SubmirrorState = .okay) { self.volume = volume; self.state = state }
}

/// A mirror (RAID-1, SVM's `metainit NAME -m`): two to four sides holding the same blocks.
public struct MirrorRecord: Codable, Sendable, Equatable {
    /// The most sides a mirror has (SVM's limit).
    public static let maxSubmirrors = 4
    public var submirrors: [SubmirrorRecord]
    public var readPolicy: MirrorReadPolicy
    public var writePolicy: MirrorWritePolicy
    /// SVM's pass number (0–9, `metaparam -p`), kept and shown for administrators' scripts.
    /// SVM skipped the boot-time resync of pass 0 mirrors; metactl never does (the sides
    /// could differ after an unclean stop), so the number changes no behaviour.
    public var pass: Int
    /// Blocks of the mirror per dirty region (the unit of the dirty-region log, of offline
    /// tracking and of resync after a crash).
    public var regionBlocks: UInt64

    public init(submirrors: [SubmirrorRecord], readPolicy: MirrorReadPolicy = .roundrobin,
                writePolicy: MirrorWritePolicy = .parallel, pass: Int = 1, regionBlocks: UInt64) {
        self.submirrors = submirrors; self.readPolicy = readPolicy; self.writePolicy = writePolicy
        self.pass = pass; self.regionBlocks = regionBlocks
    }

    /// The index of the side named `name`.
    public func index(of name: String) -> Int? { submirrors.firstIndex { $0.volume == name } }
}

extension SetConfig {
    /// The mirror that has `name` as a side, if any.
    public func mirror(using name: String) -> VolumeRecord? {
        volumes.first { $0.mirror?.submirrors.contains { $0.volume == name } == true }
    }
}

extension MirrorRecord {
    /// The mirror's state from its sides' states: `Last Erred` when a side is, `Needs
    /// Maintenance` when a side is erred or offline, `Resyncing` while one resyncs.
    public var derivedState: VolumeState {
        let s = submirrors.map(\.state)
        if s.contains(.lastErred) || !s.contains(where: \.isReadable) { return .lastErred }
        if s.contains(.needsMaintenance) || s.contains(.offline) { return .needsMaintenance }
        if s.contains(.resyncing) { return .resyncing }
        return .okay
    }

    /// The regions a resync of `side` copies, in order (all of `regionCount` when nil).
    public func resyncRegionList(_ side: Int, regionCount: UInt64) -> [UInt64] {
        if let r = submirrors[side].resyncRegions { return r.filter { $0 < regionCount }.sorted() }
        return Array(0..<regionCount)
    }
}

extension SetConfig {
    /// Blocks of mirror `m`: its smallest side's (0 when a side is missing).
    public func mirrorBlocks(_ m: MirrorRecord) -> UInt64 {
        m.submirrors.map { volume(named: $0.volume)?.totalBlocks ?? 0 }.min() ?? 0
    }

    /// The regions of mirror `m` that row `row` of side `side` holds, in order.
    public func mirrorRegions(_ m: MirrorRecord, side: Int, row: Int) -> [UInt64] {
        guard m.submirrors.indices.contains(side), let sv = volume(named: m.submirrors[side].volume),
              let layout = sv.stripeLayout, layout.rows.indices.contains(row), m.regionBlocks > 0 else { return [] }
        let start = layout.rowStarts[row]
        let end = min(start + layout.rows[row].capacityBlocks, mirrorBlocks(m))
        guard end > start else { return [] }
        return Array(start / m.regionBlocks...(end - 1) / m.regionBlocks)
    }

    /// What side `side` of `m` lacks once a component of its row `row` is new (a replacement
    /// or a hot spare): that row's regions, plus what it lacked before (the regions written
    /// while it was out of service, or those its resync had still to copy). Nil (every
    /// region) when that is not known.
    ///
    /// Every other row with a component in `Maintenance` is resynced too (its device is not
    /// trusted: a spare that stood in there failed, and the slot is back on a device that
    /// missed everything since the spare took over).
    func regionsAfterReplacing(_ m: MirrorRecord, side: Int, row: Int) -> [UInt64]? {
        let s = m.submirrors[side]
        let missed: [UInt64]?
        switch s.state {
        case .okay: missed = []
        case .offline, .needsMaintenance: missed = s.staleRegions
        case .resyncing: missed = s.resyncRegions
        case .lastErred: missed = nil
        }
        guard let missed else { return nil }
        var regions = Set(missed).union(mirrorRegions(m, side: side, row: row))
        for r in untrustedRows(of: s.volume) where r != row { regions.formUnion(mirrorRegions(m, side: side, row: r)) }
        return regions.sorted()
    }

    /// The rows of volume `name` with a component in `Maintenance`.
    func untrustedRows(of name: String) -> [Int] {
        guard let v = volume(named: name) else { return [] }
        return v.rows.indices.filter { r in v.rows[r].components.contains { $0.state == .maintenance } }
    }
}
