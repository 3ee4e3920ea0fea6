import Foundation
import MetaControl
import MetaDB
import MetaModel
import Prometheus
import Synchronization

/// What `serve --metrics` exports, in Prometheus' text format (docs/METRICS.md): the I/O
/// counters of every export, kept in one registry for the server's life, and gauges of the
/// set's state, made fresh from the configuration at every scrape (so a device path or a
/// state that no longer applies is not reported as if it still did).
package final class ServeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let set: String
    private let stats = Mutex<[String: VolumeIOStats]>([:])

    package init(set: String) { self.set = set }

    /// The I/O counters of `volume` (the same object for every export of that name).
    package func stats(volume: String) -> VolumeIOStats {
        stats.withLock { s in
            if let v = s[volume] { return v }
            let v = VolumeIOStats(registry: registry, set: set, volume: volume)
            s[volume] = v
            return v
        }
    }

    /// The whole exposition: I/O counters and the state of the set now.
    package func text(manager: SetManager, openConnections: (String) -> Int) -> String {
        var out = registry.emitToBuffer()
        out.append(contentsOf: Self.stateGauges(set: set, config: manager.config,
                                                 quorum: manager.db.quorum,
                                                 sizeBytes: { manager.engine($0)?.sizeBytes },
                                                 openConnections: openConnections))
        return String(decoding: out, as: UTF8.self)
    }

    private static func gauge(_ r: PrometheusCollectorRegistry, _ name: String, _ help: String,
                              _ labels: [(String, String)], _ value: Double) {
        r.makeGauge(descriptor: MetricNameDescriptor(namespace: "metactl", metricName: name, unitName: "", helpText: help),
                    labels: labels).set(value)
    }

    /// Gauges of a configuration (pure but for the registry: tested without a server).
    static func stateGauges(set: String, config: SetConfig, quorum: Quorum, sizeBytes: (String) -> UInt64?,
                            openConnections: (String) -> Int) -> [UInt8] {
        let r = PrometheusCollectorRegistry()
        gauge(r, "replicas_readable", "State database replicas that could be read", [("set", set)], Double(quorum.readable))
        gauge(r, "replicas", "State database replicas the configuration lists", [("set", set)], Double(quorum.total))
        gauge(r, "quorum", "1 while a majority of the replicas can be written (the set's state can change)", [("set", set)],
              quorum.writable ? 1 : 0)
        for v in config.volumes {
            let vl = [("set", set), ("volume", v.name)]
            let state = config.servedState(of: v)
            for s in VolumeState.allCases {
                gauge(r, "volume_state", "1 for the volume's state (Okay, Initializing, Resyncing, Needs Maintenance, Last Erred), 0 for the others",
                      vl + [("state", s.rawValue)], s == state ? 1 : 0)
            }
            if let size = sizeBytes(v.name) {
                gauge(r, "volume_size_bytes", "Size of the volume as its clients see it", vl, Double(size))
            }
            gauge(r, "open_connections", "NBD connections open on the volume", vl, Double(openConnections(v.name)))
            gauge(r, "lost_blocks", "512-byte blocks the volume knows it cannot return (they fail with EIO until rewritten)",
                  vl, Double(v.lostDataBlocks))
            let slots: [ComponentSlot] = v.type.hasColumns
                ? v.columns.indices.map { .column($0) }
                : v.rows.indices.flatMap { r in v.rows[r].components.indices.map { .row(r, $0) } }
            for slot in slots {
                let c = v.component(slot)
                let device = config.device(c.activeDevice)?.lastPath ?? c.activeDevice.uuidString
                for s in ComponentState.allCases {
                    gauge(r, "component_state", "1 for the component's state (Okay, Resyncing, Maintenance, Last Erred, Unavailable, …), 0 for the others",
                          vl + [("component", slot.description), ("device", device), ("state", s.rawValue)], s == c.state ? 1 : 0)
                }
            }
            gauge(r, "resync_running", "1 while a resync (initialisation, rebuild, copy, parity repair) runs", vl, v.resync == nil ? 0 : 1)
            if let rs = v.resync {
                gauge(r, "resync_progress_ratio", "Done part of the running resync at its last checkpoint (0 to 1)",
                      vl + [("kind", rs.kind.rawValue)], rs.totalBlocks == 0 ? 1 : Double(rs.doneBlocks) / Double(rs.totalBlocks))
            }
            if let c = v.check {
                gauge(r, "check_running", "1 while a check runs", vl, c.running ? 1 : 0)
                gauge(r, "check_progress_ratio", "Done part of the running or last check (0 to 1)", vl,
                      c.totalLines == 0 ? 1 : Double(c.doneLines) / Double(c.totalLines))
                gauge(r, "check_mismatches", "Lines whose parity did not match in the running or last check", vl, Double(c.counts.mismatches))
                gauge(r, "check_repaired", "Lines repaired by the running or last check", vl, Double(c.counts.repaired))
            }
        }
        for p in config.hotSparePools {
            for s in [HotSpareState.available, .inUse, .broken] {
                gauge(r, "hot_spares", "Hot spares of the pool in each state", [("set", set), ("pool", p.name), ("state", s.rawValue)],
                      Double(p.spares.filter { $0.state == s }.count))
            }
        }
        return r.emitToBuffer()
    }
}
