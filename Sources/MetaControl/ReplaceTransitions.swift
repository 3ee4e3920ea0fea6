import Foundation
import MetaDB

/// The configuration changes that start a resync of a RAID-5 column, shared by
/// ``SetManager`` (the real commands) and the simulator, so both run the same rules.
public enum ReplaceTransitions {
    /// `replace NAME --enable DEV` of a `Maintenance`/`Unavailable` column: rebuild it in place.
    public static func enableRegenerate(_ cfg: inout SetConfig, volume vi: Int, column c: Int) {
        cfg.volumes[vi].columns[c].state = .resyncing
        cfg.volumes[vi].resync = ResyncCheckpoint(kind: .regenerate, column: c, target: cfg.volumes[vi].columns[c].activeDevice,
                                                  totalBlocks: cfg.volumes[vi].columnBlocks)
    }

    /// A hot spare takes over a `Maintenance` column (SVM's check_4_hs): it is reserved and
    /// the column is regenerated onto it.
    public static func takeSpare(_ cfg: inout SetConfig, volume vi: Int, column c: Int, spare: UUID) {
        SetManager.markSpare(spare, .inUse, in: &cfg)
        cfg.volumes[vi].columns[c].hotSpare = spare
        cfg.volumes[vi].columns[c].state = .resyncing
        cfg.volumes[vi].resync = ResyncCheckpoint(kind: .regenerate, column: c, target: spare,
                                                  totalBlocks: cfg.volumes[vi].columnBlocks)
    }

    /// A spare failed (while being rebuilt or while standing in): it is Broken and the column
    /// goes back to `Maintenance` on its original device; a resync onto it is dropped (the
    /// next spare's, already taken, is kept).
    public static func spareFailed(_ cfg: inout SetConfig, volume vi: Int, column c: Int, spare: UUID) {
        SetManager.markSpare(spare, .broken, in: &cfg)
        if cfg.volumes[vi].columns[c].hotSpare == spare {
            cfg.volumes[vi].columns[c].hotSpare = nil
            cfg.volumes[vi].columns[c].state = .maintenance
        }
        if cfg.volumes[vi].resync?.target == spare { cfg.volumes[vi].resync = nil }
    }

    /// `replace NAME OLD NEW` where OLD is readable: copy it to `target` (redundancy kept).
    public static func beginCopy(_ cfg: inout SetConfig, volume vi: Int, column c: Int, target: UUID) {
        cfg.volumes[vi].resync = ResyncCheckpoint(kind: .copy, column: c, target: target,
                                                  source: cfg.volumes[vi].columns[c].activeDevice,
                                                  totalBlocks: cfg.volumes[vi].columnBlocks)
    }

    /// `replace NAME OLD NEW` where OLD is not readable: NEW becomes the column and is rebuilt
    /// from the others. Returns the devices the column no longer uses (to release when
    /// nothing else refers to them).
    @discardableResult
    public static func beginRegenerate(_ cfg: inout SetConfig, volume vi: Int, column c: Int, onto target: UUID) -> [UUID] {
        var col = cfg.volumes[vi].columns[c]
        let dropped = [col.device] + (col.hotSpare.map { [$0] } ?? [])
        if let spare = col.hotSpare { SetManager.markSpare(spare, .broken, in: &cfg) }
        col.device = target
        col.hotSpare = nil
        col.state = .resyncing
        cfg.volumes[vi].columns[c] = col
        cfg.volumes[vi].resync = ResyncCheckpoint(kind: .regenerate, column: c, target: target,
                                                  totalBlocks: cfg.volumes[vi].columnBlocks)
        return dropped.filter { !SetDatabase.isUsed($0, in: cfg) }
    }
}
