import Foundation
import MetaLayout

/// Volume layout type.
public enum VolumeType: String, Codable, Sendable, CaseIterable {
    case concat, stripe, raid5, raid6
    /// A soft partition: extents of another volume (SVM's `metainit -p`).
    case softpart
    /// A mirror: two to four sides (concat or stripe volumes) with the same blocks (SVM's
    /// `metainit -m`).
    case mirror

    /// Parity units per line: 0 (concat, stripe), 1 (RAID-5: P), 2 (RAID-6: P and Q). Also
    /// the number of columns that may be missing while every block stays readable.
    public var parityCount: Int {
        switch self {
        case .concat, .stripe, .softpart, .mirror: return 0
        case .raid5: return 1
        case .raid6: return 2
        }
    }
    /// Whether the volume is built of parity columns (RAID-5 or RAID-6) rather than rows.
    public var hasColumns: Bool { parityCount > 0 }
    /// How messages name the type: "concat", "stripe", "RAID-5", "RAID-6".
    public var displayName: String {
        switch self {
        case .concat, .stripe: return rawValue
        case .softpart: return "soft partition"
        case .mirror: return "mirror"
        case .raid5: return "RAID-5"
        case .raid6: return "RAID-6"
        }
    }
    /// The fewest columns a volume of this type has (3 for RAID-5, 4 for RAID-6; 1 otherwise).
    public var minimumColumns: Int { hasColumns ? parityCount + 2 : 1 }
}

/// One component slot of a volume (a row member of a stripe, or a RAID column).
public struct ComponentRecord: Codable, Sendable, Equatable {
    /// The device in this slot.
    public var device: UUID
    public var state: ComponentState
    /// A hot spare currently standing in for this slot's device, if any.
    public var hotSpare: UUID?
    /// While the column is `Unavailable` after its device went away from an `Okay` column:
    /// every dirty region of the volume since then (md's write-intent bitmap), so that the
    /// same device coming back is rebuilt over these regions only. Nil: not tracked (the
    /// column needs a full rebuild). Absent in older encodings.
    public var staleRegions: [UInt64]? = nil

    public init(device: UUID, state: ComponentState = .okay, hotSpare: UUID? = nil) {
        self.device = device; self.state = state; self.hotSpare = hotSpare
    }
    /// The device that really holds the data now (the spare when one is in use).
    public var activeDevice: UUID { hotSpare ?? device }
}

/// One row of a concat/stripe volume: N components striped with one interlace.
public struct RowRecord: Codable, Sendable, Equatable {
    public var interlaceBlocks: UInt64
    /// Blocks used on each component of this row (the smallest component's data size).
    public var componentBlocks: UInt64
    public var components: [ComponentRecord]
    public init(interlaceBlocks: UInt64, componentBlocks: UInt64, components: [ComponentRecord]) {
        self.interlaceBlocks = interlaceBlocks; self.componentBlocks = componentBlocks; self.components = components
    }
}

/// Kind of background work on a volume.
public enum ResyncKind: String, Codable, Sendable {
    /// RAID-5 parity initialisation after create.
    case initialize
    /// Rebuild a column from the others (parity).
    case regenerate
    /// Copy a still-readable column to its replacement.
    case copy
    /// Re-compute parity of dirty regions after an unclean shutdown.
    case parityRepair = "parity-repair"
    /// Zero new RAID-5 columns before a grow commits.
    case zeroing
}

/// Persistent progress of background work, so a restart resumes instead of starting over.
public struct ResyncCheckpoint: Codable, Sendable, Equatable {
    public var kind: ResyncKind
    /// Column (RAID-5) being rebuilt, if any.
    public var column: Int?
    /// Device being written (replacement or spare).
    public var target: UUID?
    /// Device being read in a copy resync.
    public var source: UUID?
    /// Blocks (of the column, or of the volume's lines) already done.
    public var doneBlocks: UInt64
    public var totalBlocks: UInt64
    /// RAID-6: further columns this regeneration rebuilds in the same pass, each onto its
    /// target (nil or empty: none). Absent in older encodings.
    public var more: [RebuildTarget]? = nil
    /// A regeneration of the returning device of an `Unavailable` column: only the lines of
    /// these dirty regions are rebuilt, the rest of the column is current (nil: every line).
    /// Absent in older encodings.
    public var regions: [UInt64]? = nil
    /// A copy turned into this regeneration while the volume logged its writes: the column
    /// could not hold write-log records from then on (they went to the next columns), yet its
    /// target is trusted below the checkpoint. A replay that lost a column's log area cannot
    /// vouch for torn lines then (true; absent otherwise and in older encodings).
    public var logExcluded: Bool? = nil
    public init(kind: ResyncKind, column: Int? = nil, target: UUID? = nil, source: UUID? = nil,
                doneBlocks: UInt64 = 0, totalBlocks: UInt64) {
        self.kind = kind; self.column = column; self.target = target; self.source = source
        self.doneBlocks = doneBlocks; self.totalBlocks = totalBlocks
    }
}

/// A column a regeneration rebuilds, and the device it writes.
public struct RebuildTarget: Codable, Sendable, Equatable {
    public var column: Int
    public var target: UUID
    public init(column: Int, target: UUID) { self.column = column; self.target = target }
}

extension ResyncCheckpoint {
    /// The columns a regeneration rebuilds: its own, then ``more``'s.
    public var rebuiltColumns: [Int] { (column.map { [$0] } ?? []) + (more ?? []).map(\.column) }

    /// The same work without column `c` (it failed, or went missing): when `c` is the first
    /// column, the next of ``more`` takes its place (same progress: they were rebuilt
    /// together); nil when no column is left.
    public func dropping(column c: Int) -> ResyncCheckpoint? {
        var r = self
        r.more = (more ?? []).filter { $0.column != c }
        if column == c {
            guard let next = r.more?.first else { return nil }
            r.column = next.column
            r.target = next.target
            r.more = Array(r.more!.dropFirst())
        }
        if r.more?.isEmpty == true { r.more = nil }
        return r
    }
}

/// Resync rate limits in bytes per second (md's speed_limit_min/max).
public struct ResyncRate: Codable, Sendable, Equatable {
    public var minBytesPerSecond: UInt64
    public var maxBytesPerSecond: UInt64
    public init(minBytesPerSecond: UInt64, maxBytesPerSecond: UInt64) {
        self.minBytesPerSecond = minBytesPerSecond; self.maxBytesPerSecond = maxBytesPerSecond
    }
    public static let `default` = ResyncRate(minBytesPerSecond: 50 << 20, maxBytesPerSecond: UInt64.max)
}

/// A volume (metadevice).
public struct VolumeRecord: Codable, Sendable, Equatable {
    public var name: String
    public var type: VolumeType
    /// concat/stripe: the rows, in order.
    public var rows: [RowRecord]
    /// raid5: the columns, in order (original columns first, then columns added by grow).
    public var columns: [ComponentRecord]
    /// raid5: how many leading columns take part in parity rotation.
    public var originalColumnCount: Int
    /// raid5: stripe unit in 512-byte blocks.
    public var interlaceBlocks: UInt64
    /// raid5: blocks used on every column.
    public var columnBlocks: UInt64
    public var hotSparePool: String?
    /// Background work in progress, if any.
    public var resync: ResyncCheckpoint?
    public var resyncRate: ResyncRate?
    /// Dirty-region log: indices of regions with writes possibly in flight (RAID-5).
    public var dirtyRegions: [UInt64]
    public var createdAt: Date
    /// A RAID-5 grow whose new columns are being zeroed (nil when none): the devices are
    /// labelled (role `unused`) but not yet part of the volume. Absent in older encodings.
    public var pendingGrow: PendingGrow? = nil
    /// RAID-5: column blocks whose data is known to be gone (nil or empty when none). Reads
    /// of them fail with EIO until they are written again. Absent in older encodings.
    public var lostBlocks: [LostRange]? = nil
    /// RAID-5: the write log (nil: the volume has none; created before it existed, or with
    /// `--write-log none` on columns without room). Absent in older encodings.
    public var writeLog: WriteLogConfig? = nil
    /// RAID-5: the current or last `metactl check` (nil: never checked). Absent in older
    /// encodings.
    public var check: CheckRecord? = nil
    /// A soft partition: its parent volume and extents. Absent in older encodings.
    public var softPartition: SoftPartitionRecord? = nil
    /// A mirror: its sides and policies. Absent in older encodings.
    public var mirror: MirrorRecord? = nil

    public init(name: String, type: VolumeType, rows: [RowRecord] = [], columns: [ComponentRecord] = [],
                originalColumnCount: Int = 0, interlaceBlocks: UInt64 = 0, columnBlocks: UInt64 = 0,
                hotSparePool: String? = nil, resync: ResyncCheckpoint? = nil, resyncRate: ResyncRate? = nil,
                dirtyRegions: [UInt64] = [], createdAt: Date = Date()) {
        self.name = name; self.type = type; self.rows = rows; self.columns = columns
        self.originalColumnCount = originalColumnCount; self.interlaceBlocks = interlaceBlocks
        self.columnBlocks = columnBlocks; self.hotSparePool = hotSparePool; self.resync = resync
        self.resyncRate = resyncRate; self.dirtyRegions = dirtyRegions; self.createdAt = createdAt
    }

    /// Every component slot, rows first then columns.
    public var allComponents: [ComponentRecord] { rows.flatMap(\.components) + columns }
}

/// A grow that has labelled its devices but not committed the new geometry yet: the new
/// RAID-5 columns are zeroed first, with progress checkpointed here so that a restart
/// resumes (`metactl grow NAME` with the same devices) instead of starting over.
public struct PendingGrow: Codable, Sendable, Equatable {
    /// The devices being added, in column order (their records have role `unused`).
    public var devices: [UUID]
    /// Blocks of each new column's data area already zeroed (the same on every device).
    public var zeroedBlocks: UInt64
    /// Blocks to zero on each new column (the volume's column size).
    public var totalBlocks: UInt64
    public var startedAt: Date
    public init(devices: [UUID], zeroedBlocks: UInt64 = 0, totalBlocks: UInt64, startedAt: Date = Date()) {
        self.devices = devices; self.zeroedBlocks = zeroedBlocks; self.totalBlocks = totalBlocks
        self.startedAt = startedAt
    }
}

/// A run of blocks of one RAID-5 column whose data is gone: a crash tore lines while the
/// column was missing (or a write failed half-way), and the column was then rebuilt from
/// that untrusted parity. Offsets are column data blocks (line × interlace + offset).
public struct LostRange: Codable, Sendable, Equatable, Hashable {
    public var column: Int
    public var start: UInt64
    public var count: UInt64
    public init(column: Int, start: UInt64, count: UInt64) { self.column = column; self.start = start; self.count = count }
    public var end: UInt64 { start + count }
}

extension VolumeRecord {
    /// What a column that goes away now starts its ``ComponentRecord/staleRegions`` with: the
    /// regions dirty now (writes in flight may have missed it). Nil when the volume has no
    /// dirty-region log or when work that writes outside it runs (parity initialisation, a
    /// grow's zeroing, a check that may repair): the column then needs a full rebuild.
    public var regionsTrackableWhileAway: [UInt64]? {
        guard type.hasColumns, pendingGrow == nil, check?.running != true else { return nil }
        if let r = resync, r.kind == .initialize || r.kind == .zeroing { return nil }
        return dirtyRegions
    }
}

/// A soft partition's place in its parent volume.
public struct SoftPartitionRecord: Codable, Sendable, Equatable {
    /// The volume it is carved from.
    public var parent: String
    /// Its identity in the watermarks (`metactl recover` matches extents by it).
    public var id: UUID
    /// Extents in order; each begins with its watermark (``SoftPartitionLayout``).
    public var extents: [SoftExtent]
    /// Incremented whenever the extents change (grow); written in every watermark, so that
    /// recovery takes the newest set of extents.
    public var generation: UInt64
    public init(parent: String, id: UUID = UUID(), extents: [SoftExtent], generation: UInt64 = 1) {
        self.parent = parent; self.id = id; self.extents = extents; self.generation = generation
    }
    /// The extents as the layout takes them.
    public var layoutExtents: [SoftPartitionLayout.Extent] {
        extents.map { SoftPartitionLayout.Extent(watermarkBlock: $0.watermarkBlock, blocks: $0.blocks) }
    }
    public var layout: SoftPartitionLayout { SoftPartitionLayout(extents: layoutExtents) }
}

/// One extent of a soft partition, in 512-byte blocks of the parent volume: the watermark at
/// `watermarkBlock`, then `blocks` blocks of data.
public struct SoftExtent: Codable, Sendable, Equatable {
    public var watermarkBlock: UInt64
    public var blocks: UInt64
    public init(watermarkBlock: UInt64, blocks: UInt64) { self.watermarkBlock = watermarkBlock; self.blocks = blocks }
    public init(_ e: SoftPartitionLayout.Extent) { self.init(watermarkBlock: e.watermarkBlock, blocks: e.blocks) }
    public var dataBlock: UInt64 { watermarkBlock + SoftPartitionLayout.watermarkBlocks }
}

extension SetConfig {
    /// The soft partitions carved from volume `parent`.
    public func softPartitions(of parent: String) -> [VolumeRecord] {
        volumes.filter { $0.softPartition?.parent == parent }
    }
    /// Every extent in use in volume `parent` (all its soft partitions').
    public func softExtents(of parent: String) -> [SoftPartitionLayout.Extent] {
        softPartitions(of: parent).flatMap { $0.softPartition!.layoutExtents }
    }
}
