import Foundation
import Logging

/// What `metactl serve` does with the set's mappings: `--restore-maps` maps again, once the
/// server listens, every recorded mapping that no longer stands; `--unmap-on-exit` unmaps
/// them all before the server stops. By default the server leaves mappings alone: they wait
/// for it across a restart and reconnect.
enum ServeMaps {
    /// Re-creates each recorded mapping whose helpers are gone (on its old loop device when
    /// that is free), connected to `socket`. Mappings that still stand are left as they are.
    static func restore(set: String, runDir: String, socket: String, logger: Logger) {
        let mapper = Mapper(set: set, runDir: runDir)
        let maps: [MapRecord]
        do { maps = try MapStore.load(runDir: runDir, set: set) } catch {
            logger.error("--restore-maps: \(error)")
            return
        }
        for old in maps {
            if mapper.isAlive(old) {
                logger.info("\(old.volume): still mapped to \(old.device)")
                continue
            }
            let device = Helpers.loopBackingFile(old.device) == nil || Helpers.loopBackingFile(old.device) == old.backingFile
                ? old.device : nil
            do {
                let rec = try mapper.map(.init(volume: old.volume, device: device, socket: socket, readOnly: old.readOnly,
                                               reconnectTimeout: old.reconnectTimeout, tls: old.tls))
                logger.info("\(rec.volume): mapped again to \(rec.device)\(rec.readOnly ? " read-only" : "") (\(rec.path.description))")
            } catch {
                logger.error("\(old.volume): cannot map it again: \(error)")
            }
        }
    }

    /// Unmaps every recorded mapping of the set; one in use (mounted) is left mapped, and said so.
    static func unmapAll(set: String, runDir: String, logger: Logger) {
        let mapper = Mapper(set: set, runDir: runDir)
        let maps = (try? MapStore.load(runDir: runDir, set: set)) ?? []
        for m in maps {
            do {
                let rec = try mapper.unmap(m.volume, force: false)
                logger.info("\(rec.volume): unmapped from \(rec.device)")
            } catch {
                logger.error("--unmap-on-exit: \(error)")
            }
        }
    }
}
