import Foundation
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
        // add: a member whose column does not use it now (it failed or went away before).
        let cfg = db.config
        for v in cfg.volumes where v.type.hasColumns {
            for (c, col) in v.columns.enumerated() where col.state.isErred {
                guard let dev = cfg.device(col.device), same(dev.lastPath) || dev.lastPath == e.devnode else { continue }
                said.append("\(v.name): \(name), the device of column \(c) (\(col.state.rawValue)), is back; to use it again: metactl replace \(v.name) --enable \(name)\(setName == "local" ? "" : " -s \(setName)")")
            }
        }
        for line in said { logger.warning("\(line)") }
        return said
    }
}
