import Foundation
import MetaModel
import MetaDevices

/// What `metactl import` found for one set.
public struct ImportResult: Codable, Sendable, Equatable {
    public struct Device: Codable, Sendable, Equatable {
        public var uuid: UUID
        /// Where it was found now, or its last known path when missing.
        public var path: String
        public var role: DeviceRole
        public var found: Bool
        /// Whether it was found under a different path than the one recorded.
        public var moved: Bool
    }
    public var set: String
    public var uuid: UUID
    public var generation: UInt64
    public var devices: [Device]
    public var quorum: Quorum
    /// Whether the registry entry was written.
    public var recorded: Bool
    /// Why not, or what was skipped.
    public var problems: [String]
}

extension SetDatabase {
    /// Finds sets by their labels on the system's block devices (sysfs scan, unless
    /// `scanSystem` is false), on `paths` (image files, or devices named explicitly: each
    /// must carry a label), on `more` (paths that may) and on the paths the registry already
    /// names, loads each set's configuration read-only, and (re)writes its host registry
    /// entry with the paths where its devices are now. With `setName`, only the set of that
    /// name is recorded. A set whose name is taken on this host by a different set (already,
    /// or by one found earlier in this import) is reported, not recorded.
    public static func importSets(paths: [String], configDir: String, scanSystem: Bool = true,
                                  only setName: String? = nil, alsoLookAt more: [String] = []) throws -> [ImportResult] {
        var registry = try HostRegistry.load(configDir: configDir)
        var candidates: [String] = paths
        let known = more + registry.sets.flatMap { $0.devices.map(\.path) }
        for p in scanSystem ? DeviceScan.candidatePaths(extra: known) : known where !candidates.contains(p) {
            candidates.append(p)
        }
        // Group labelled devices by set; the first path found for a device wins.
        var bySet: [UUID: [UUID: String]] = [:]
        var order: [UUID] = []
        var seenReal = Set<String>()
        var foundOther = Set<String>()
        for p in candidates {
            let real = realPath(p)
            guard !seenReal.contains(real), let l = readLabel(path: p) else { continue }
            seenReal.insert(real)
            if let setName, l.setName != setName { foundOther.insert(l.setName); continue }
            if bySet[l.setUUID] == nil { order.append(l.setUUID); bySet[l.setUUID] = [:] }
            if bySet[l.setUUID]?[l.deviceUUID] == nil { bySet[l.setUUID]?[l.deviceUUID] = p }
        }
        // A path named explicitly must carry a label (before anything is recorded).
        for p in paths where readLabel(path: p) == nil {
            guard FileManager.default.fileExists(atPath: p) else { throw DatabaseError.badCandidate(path: p, reason: "does not exist") }
            if access(p, R_OK) != 0 && (errno == EACCES || errno == EPERM) {
                throw DatabaseError.permission(path: p, hint: "reading labels needs access to the device: run as root")
            }
            throw DatabaseError.badCandidate(path: p, reason: "no metactl label found")
        }
        if let setName, order.isEmpty {
            throw DatabaseError.setNotFound(set: setName, others: foundOther.sorted())
        }
        var results: [ImportResult] = []
        for setUUID in order {
            guard var found = bySet[setUUID] else { continue }
            var devs: [UUID: any BlockDevice] = [:]
            var labels: [UUID: Label] = [:]
            func open(_ found: [UUID: String]) {
                for (u, p) in found where devs[u] == nil {
                    guard let d = try? FileDevice(path: p, options: OpenOptions(readOnly: true, exclusive: false)) else { continue }
                    let l = Label.read(from: d).label
                    guard let l, l.setUUID == setUUID, l.deviceUUID == u else { d.close(); continue }
                    devs[u] = d
                    labels[u] = l
                }
            }
            open(found)
            defer { for d in devs.values { (d as? FileDevice)?.close() } }
            let name = labels.values.first?.setName ?? "?"
            var loaded: Loaded
            do {
                loaded = try load(setName: name, setUUID: setUUID, devices: devs, labels: labels)
                // Devices the configuration records at paths nobody scanned (image files):
                // look there before calling them missing.
                var more: [UUID: String] = [:]
                for rec in loaded.config.devices where found[rec.uuid] == nil && !seenReal.contains(realPath(rec.lastPath)) {
                    if let l = readLabel(path: rec.lastPath), l.setUUID == setUUID, l.deviceUUID == rec.uuid {
                        more[rec.uuid] = rec.lastPath
                        seenReal.insert(realPath(rec.lastPath))
                    }
                }
                if !more.isEmpty {
                    found.merge(more) { a, _ in a }
                    open(more)
                    loaded = try load(setName: name, setUUID: setUUID, devices: devs, labels: labels)
                }
            } catch {
                results.append(ImportResult(set: name, uuid: setUUID, generation: 0,
                                            devices: found.map { ImportResult.Device(uuid: $0.key, path: $0.value, role: labels[$0.key]?.role ?? .unused, found: true, moved: false) },
                                            quorum: Quorum(readable: 0, total: 0), recorded: false,
                                            problems: ["\(error)"]))
                continue
            }
            let cfg = loaded.config
            let devices = cfg.devices.map { rec in
                ImportResult.Device(uuid: rec.uuid, path: found[rec.uuid] ?? rec.lastPath, role: rec.role,
                                    found: found[rec.uuid] != nil,
                                    moved: found[rec.uuid].map { realPath($0) != realPath(rec.lastPath) } ?? false)
            }
            let quorum = Quorum(readable: loaded.statuses.filter { $0.state == .active || $0.state == .stale }.count,
                                total: loaded.statuses.count)
            var problems = loaded.skipped
            var recorded = false
            if let other = registry.sets.first(where: { $0.name == cfg.setName && $0.uuid != setUUID }) {
                problems.append("a different set named '\(cfg.setName)' (\(other.uuid)) is already known on this host; not recorded")
            } else {
                let entry = HostRegistry.Entry(name: cfg.setName, uuid: setUUID, devices: devices.map {
                    HostRegistry.Device(uuid: $0.uuid, path: $0.path, role: $0.role)
                })
                try HostRegistry.update(configDir: configDir) { r in
                    r.sets.removeAll { $0.uuid == setUUID || $0.name == entry.name }
                    r.sets.append(entry)
                }
                // A second set of the same name found later in this import is not recorded
                // over this one (the paths given come first, then the scan).
                registry.sets.removeAll { $0.uuid == setUUID || $0.name == entry.name }
                registry.sets.append(entry)
                recorded = true
            }
            results.append(ImportResult(set: cfg.setName, uuid: setUUID, generation: loaded.generation,
                                        devices: devices, quorum: quorum, recorded: recorded, problems: problems))
        }
        return results
    }
}
