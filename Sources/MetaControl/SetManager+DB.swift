import Foundation
import MetaDB
import MetaDevices
import MetaModel

/// Parameters of `metactl db add` / `db delete`.
public struct ReplicaRequest: Codable, Sendable, Equatable {
    public var devices: [String]
    public var copies: Int
    public var force: Bool
    public init(devices: [String], copies: Int = 1, force: Bool = false) {
        self.devices = devices; self.copies = copies; self.force = force
    }
}

/// Replica count after a `db add` / `db delete`.
public struct ReplicaResult: Codable, Sendable, Equatable {
    public var replicas: Int
    /// Whether the last replicas were deleted, and the set with them.
    public var setDeleted: Bool?
    public init(replicas: Int, setDeleted: Bool? = nil) { self.replicas = replicas; self.setDeleted = setDeleted }
}

extension SetManager {
    /// Refuses a command that names one device twice, by path or through a symlink, with
    /// the one wording (``ComponentCandidate/duplicate(_:first:)``).
    static func refuseRepeated(_ paths: [String]) throws {
        var seen: [String: String] = [:]
        for p in paths {
            let c = canonicalPath(p)
            if let first = seen[c] { throw OperationError(ComponentCandidate.duplicate(p, first: first), code: .invalidArgument) }
            seen[c] = p
        }
    }

    /// Fewer replicas than this are warned about, and deleting below it needs --force.
    public static let safeReplicaCount = 3

    /// `metactl db add`: labels the devices and gives each `copies` replicas, in one commit.
    public func dbAdd(_ r: ReplicaRequest) throws -> ReplicaResult {
        opLockAcquire(); defer { opLockRelease() }
        guard (1...16).contains(r.copies) else { throw OperationError("--copies must be between 1 and 16, not \(r.copies)", code: .invalidArgument) }
        guard !r.devices.isEmpty else { throw OperationError("no devices given", code: .invalidArgument) }
        try Self.refuseRepeated(r.devices)
        try db.commit { c in
            for d in r.devices {
                _ = try db.addDevice(path: d, role: .replica, replicaCopies: r.copies, force: r.force, in: &c)
            }
        }
        return ReplicaResult(replicas: db.config.replicas.count)
    }

    /// `metactl db delete`: removes every replica on the devices.
    public func dbDelete(_ r: ReplicaRequest) throws -> ReplicaResult {
        opLockAcquire(); defer { opLockRelease() }
        guard !r.devices.isEmpty else { throw OperationError("no devices given", code: .invalidArgument) }
        try Self.refuseRepeated(r.devices)
        let cfg = db.config
        var uuids: [UUID] = []
        for arg in r.devices {
            let want = canonicalPath(arg)
            guard let rec = cfg.devices.first(where: {
                canonicalPath(db.device($0.uuid)?.path ?? $0.lastPath) == want || canonicalPath($0.lastPath) == want
            }) else { throw OperationError("\(arg): not a device of set '\(setName)'", code: .notFound) }
            guard cfg.replicas.contains(where: { $0.device == rec.uuid }) else {
                throw OperationError("\(arg): holds no state database replica of set '\(setName)'", code: .notFound)
            }
            uuids.append(rec.uuid)
        }
        let remaining = cfg.replicas.filter { !uuids.contains($0.device) }.count
        if remaining == 0 {
            // Deleting the last replicas deletes the set (SVM: metadb -d -f of the last ones).
            let left = cfg.volumes.map(\.name) + cfg.hotSparePools.map(\.name)
            if !left.isEmpty {
                throw OperationError("cannot delete every state database replica of set '\(setName)': it still has \(left.joined(separator: ", ")) (clear the volumes and delete the hot spare pools first; deleting the last replicas deletes the set)", code: .inUse)
            }
            if isServer {
                throw OperationError("cannot delete set '\(setName)' while it is served: stop `metactl serve` (PID \(getpid())), then delete the last replicas", code: .inUse)
            }
            guard r.force else {
                throw OperationError("deleting every state database replica deletes set '\(setName)': use --force to delete the set", code: .invalidArgument)
            }
            _ = try db.destroy()
            return ReplicaResult(replicas: 0, setDeleted: true)
        }
        if !r.force {
            if remaining < Self.safeReplicaCount {
                throw OperationError("deleting would leave \(remaining) state database replica\(remaining == 1 ? "" : "s") (fewer than \(Self.safeReplicaCount)): use --force to delete anyway", code: .invalidArgument)
            }
            for u in uuids where cfg.isReferenced(u)
                && db.replicaStatus.contains(where: { $0.location.device == u && $0.state == .active }) {
                throw OperationError("\(db.device(u)?.path ?? u.uuidString): its replicas are readable on a volume's component: use --force to delete them anyway", code: .invalidArgument)
            }
        }
        try db.deleteReplicas(onDevices: uuids, force: r.force)
        return ReplicaResult(replicas: db.quorum.total)
    }
}
