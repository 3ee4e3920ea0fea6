import Foundation

/// Whether a RAID-5 volume logs its writes before it makes them in place.
public enum WriteLogMode: String, Codable, Sendable, CaseIterable {
    /// Every write is logged (the default): a crash together with the loss of any one
    /// column loses nothing acknowledged and flushed.
    case auto
    /// No log: the dirty-region log alone (a crash with a column missing may lose the data
    /// of torn lines; it is reported lost, never returned wrong).
    case none
}

/// The write log of a RAID-5 volume (`docs/FORMAT.md`, "Write log").
///
/// The log area is `areaBlocks` blocks at the end of every original column's data area, at
/// column block `columnBlocks`; each record is written whole to the area of its line's parity column.
/// Records carry `epoch`: only records of the epoch in this record are replayed, and the
/// epoch moves on (in a commit) after every replay and every time the areas are reused.
public struct WriteLogConfig: Codable, Sendable, Equatable {
    public var mode: WriteLogMode
    /// Blocks of the log area on each original column (0: the volume has no log area).
    public var areaBlocks: UInt64
    /// Records of this epoch may be pending replay; records of any other are ignored.
    public var epoch: UInt64
    /// Names this volume's records (a random identifier chosen when the area is made).
    public var id: UUID
    /// A replay could not make every torn line whole (an area was unreadable, or a column
    /// failed a replay write): until the dirty-region repair has gone over every dirty
    /// region, the dirty regions stay untrusted whatever later replays do. Absent when not.
    public var repairPending: Bool? = nil
    /// A dedicated log device (`set --log-device`): records go there, one copy, while it
    /// works. Absent when none.
    public var device: UUID? = nil
    /// Blocks of the log area on the dedicated device (from its data start).
    public var deviceAreaBlocks: UInt64? = nil
    /// The dedicated device failed: records go to the columns' areas (or, without them,
    /// nowhere: the dirty-region log alone) until it is replaced. Absent when not.
    public var deviceFailed: Bool? = nil

    public init(mode: WriteLogMode, areaBlocks: UInt64, epoch: UInt64 = 1, id: UUID = UUID()) {
        self.mode = mode; self.areaBlocks = areaBlocks; self.epoch = epoch; self.id = id
    }

    /// Whether writes are logged (somewhere: the columns' areas or a working log device).
    public var active: Bool { mode == .auto && (areaBlocks > 0 || (device != nil && deviceFailed != true)) }

    /// The largest log area used on a dedicated device (a replay reads it whole).
    public static let maxDeviceAreaBlocks: UInt64 = 64 << 11

    /// The default area size for columns of `columnDataBlocks` blocks: 1/32 of the column,
    /// at least 1 MiB and at most 16 MiB (whole MiB; a replay reads every area whole).
    public static func defaultAreaBlocks(columnDataBlocks: UInt64) -> UInt64 {
        let mib: UInt64 = 2048
        let want = columnDataBlocks / 32 / mib * mib
        return min(16 * mib, max(mib, want))
    }
}

extension VolumeRecord {
    /// Blocks a device must offer in its data area to hold column `column` of this RAID-5
    /// volume: the column's data, and for an original column the write log area after it.
    public func blocksNeeded(column: Int) -> UInt64 {
        columnBlocks + (column < originalColumnCount ? (writeLog?.areaBlocks ?? 0) : 0)
    }

    /// Blocks a device must offer to stand in for any original column.
    public var originalColumnBlocksNeeded: UInt64 { columnBlocks + (writeLog?.areaBlocks ?? 0) }
}
