import Foundation
import MetaDB
import MetaDevices
import MetaEngine
import MetaModel
#if canImport(Glibc)
import Glibc
#endif

extension SetManager {
    /// A kernel block-device uevent (`serve` runs a ``UdevMonitor``). `remove` of a device a
    /// RAID column is on fails that column at once (`Unavailable`; a hot spare takes over as
    /// for any failed column) instead of waiting for the next I/O to it. `add` of a device
    /// whose column is not in use only says how to bring it back: a device never joins a
    /// volume on its own. Returns one line per thing done, for the log and the tests.
    @discardableResult
    public func blockDeviceEvent(_ e: BlockDeviceEvent) -> [String] {
        guard isServer, e.action == "remove" || e.action == "add" else { return [] }
        let same = { (p: String) in e.concerns(p) || (e.devnode.map { canonicalPath($0) == canonicalPath(p) } ?? false) }
        let name = e.devnode ?? "\(e.major):\(e.minor)"
        var said: [String] = []
        if e.action == "remove" {
            for v in volumeNames {
                guard let r5 = engine(v) as? RAID5Volume else { continue }
                let failed = r5.deviceRemoved(path: name, sameDevice: same)
                for c in failed {
                    let state = db.config.volume(named: v)?.columns[safe: c]?.state.rawValue ?? "?"
                    said.append("\(v): \(name) was removed (kernel uevent): column \(c) is \(state)")
                }
            }
            for line in said { logger.error("\(line)") }
            return said
        }
        // add: a member of a column not in use now (its device went away or failed), found
        // by its label at whatever path it has now. A device of no column never joins.
        guard let node = e.devnode, let label = SetDatabase.readLabel(path: node), label.setUUID == db.setUUID,
              let (v, c) = db.config.volumes.lazy.compactMap({ v -> (VolumeRecord, Int)? in
                  guard v.type.hasColumns, let c = v.columns.firstIndex(where: { $0.device == label.deviceUUID && $0.hotSpare == nil }),
                        v.columns[c].state.isErred else { return nil }
                  return (v, c)
              }).first
        else { return [] }
        let state = v.columns[c].state
        let hint = "metactl replace \(v.name) --enable \(node)\(setName == "local" ? "" : " -s \(setName)")"
        switch db.reattach(path: node) {
        case .notMember:
            return []
        case .stale(_, let line):
            said.append("\(v.name): column \(c): \(line)")
        case .member:
            if state == .unavailable, v.columns[c].staleRegions != nil, v.resync == nil,
               label.epoch == db.config.device(label.deviceUUID)?.epoch ?? 0 {
                // The same device, not served anywhere since it went away (its freshness
                // stamp is the one the set expects): only what was written meanwhile is
                // rebuilt, as md's re-add with a write-intent bitmap.
                do {
                    let n = try rebuildReturned(v.name, column: c)
                    said.append("\(v.name): \(node), the device of column \(c) (Unavailable since it went away), is back: rebuilding the \(n) region(s) written while it was away")
                } catch {
                    said.append("\(v.name): \(node), the device of column \(c) (Unavailable), is back but cannot be re-enabled now (\(error)); later: \(hint)")
                }
            } else if state == .unavailable {
                // It was removed, not failing: it comes back into use (regenerated).
                do {
                    _ = try replace(ReplaceRequest(name: v.name, old: node, new: nil))
                    said.append("\(v.name): \(node), the device of column \(c) (Unavailable since it went away), is back: regenerating it")
                } catch {
                    said.append("\(v.name): \(node), the device of column \(c) (Unavailable), is back but cannot be re-enabled now (\(error)); later: \(hint)")
                }
            } else {
                said.append("\(v.name): \(node), the device of column \(c) (\(state.rawValue) after I/O errors), is back; if it is sound: \(hint)")
            }
        }
        for line in said { logger.warning("\(line)") }
        return said
    }

    /// Rebuilds the returned device of `Unavailable` column `c` in place over the regions
    /// written while it was away (``SetEvent/deviceReturned(volume:column:)``); returns how
    /// many regions that is.
    private func rebuildReturned(_ name: String, column c: Int) throws -> Int {
        opLockAcquire(); defer { opLockRelease() }
        guard let engine = try openEngine(name) as? RAID5Volume else { throw OperationError("\(name): not a RAID-5 engine", code: .internal) }
        try db.apply(.deviceReturned(volume: name, column: c))
        try engine.reload()
        engine.startResync()
        return db.config.volume(named: name)?.resync?.regions?.count ?? 0
    }
}
