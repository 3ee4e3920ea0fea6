import Foundation
import MetaModel
import MetaDevices

/// Errors of the state database. Each reads as one line naming the thing at fault.
public enum DatabaseError: Error, Sendable, CustomStringConvertible {
    /// The set is not in this host's registry.
    case unknownSet(String, configDir: String)
    /// A set of that name is already registered.
    case setExists(String)
    /// No replica of the set could be read.
    case noReplica(set: String, details: String)
    /// The set is read-only: too few replicas. Names the missing ones.
    case noQuorum(set: String, readable: Int, total: Int, missing: [String])
    /// A commit reached too few replicas; it was rolled back.
    case commitFailed(set: String, written: Int, total: Int, detail: String)
    /// The database was opened read-only.
    case readOnly(set: String)
    /// Something written by a newer metactl.
    case newerFormat(what: String, version: Int)
    /// A device cannot join the set.
    case badCandidate(path: String, reason: String)
    /// Device I/O failed.
    case device(DeviceError)
    /// The host registry is unreadable or unwritable.
    case registry(path: String, reason: String)
    /// The set lock could not be taken.
    case lock(path: String, reason: String)
    /// The set lock is held by another process (PID when recorded) for longer than the timeout.
    case lockBusy(path: String, what: String, holder: Int32?, seconds: Double)
    /// A file or directory metactl needs cannot be opened or created for lack of permission.
    case permission(path: String, hint: String)
    /// No device of the set could be opened because another process holds them (`path` is
    /// one of them; `holder` its lock holder's PID when known): typically a `metactl serve`
    /// started with another run directory than `runDir`.
    case devicesHeld(set: String, path: String, holder: Int32?, runDir: String)
    /// `import -s NAME`: no device carries a label of a set named NAME (`others`: the names
    /// of the sets that were found).
    case setNotFound(set: String, others: [String])
    /// Bad argument (replica count, set name, ...).
    case invalid(String)
    /// The database has been closed.
    case closed(set: String)
    /// Different configurations of the newest generation are held by equally many replicas:
    /// which one was committed cannot be told, so the set opens read-only only.
    case conflictingConfigurations(set: String, detail: String)

    public var description: String {
        switch self {
        case .unknownSet(let s, let dir):
            "set '\(s)' is not known on this host (no entry in \(dir)/sets.json): create it with `metactl db create`, or find its devices with `metactl import`"
        case .setExists(let s): "set '\(s)' already exists on this host"
        case .noReplica(let s, let d): "set '\(s)': no readable replica of the state database (\(d))"
        case .noQuorum(let s, let r, let t, let missing):
            "set '\(s)' is read-only: only \(r) of \(t) state database replicas are readable (missing: \(missing.joined(separator: ", "))); bring the devices back, or remove the dead replicas with `metactl -s \(s) db delete --force DEV...`"
        case .commitFailed(let s, let w, let t, let d):
            "set '\(s)': commit reached only \(w) of \(t) replicas and was rolled back (\(d)); check the devices with `metactl db status`"
        case .readOnly(let s): "set '\(s)' was opened read-only"
        case .newerFormat(let what, let v):
            "\(what) was written by a newer metactl (format version \(v)); upgrade metactl to use it"
        case .badCandidate(let p, let r): "\(p): \(r)"
        case .device(let e): e.description
        case .registry(let p, let r): "host registry \(p): \(r)"
        case .lock(let p, let r): "lock \(p): \(r)"
        case .lockBusy(let p, let what, let holder, let seconds):
            "lock \(p): \(what) is busy: held by another process\(holder.map { " (PID \($0))" } ?? "") for more than \(Int(seconds)) s"
        case .permission(let p, let hint): "\(p): permission denied (\(hint))"
        case .setNotFound(let s, let others):
            "no device carries a label of set '\(s)'" + (others.isEmpty ? " (no metactl label found)" : " (sets found: \(others.joined(separator: ", ")))")
        case .devicesHeld(let s, let p, let holder, let runDir):
            "set '\(s)': its devices are held by another process (\(p)\(holder.map { " is locked by PID \($0)" } ?? " is open exclusively")); is a `metactl serve` of this set running with another run directory than \(runDir)?"
        case .invalid(let s): s
        case .closed(let s): "set '\(s)': state database is closed"
        case .conflictingConfigurations(let s, let d):
            "set '\(s)': cannot open read-write: \(d); inspect them with `metactl -s \(s) db status`, disconnect the devices holding the configuration to drop and open the set again"
        }
    }
}

extension DatabaseError: CodedError {
    /// What kind of failure this is (exit status and `--json` error code).
    public var code: ErrorCode {
        switch self {
        case .unknownSet: .notFound
        case .setExists: .inUse
        case .noReplica: .deviceFailed
        case .noQuorum, .readOnly, .conflictingConfigurations: .noQuorum
        case .commitFailed: .deviceFailed
        case .newerFormat: .general
        case .badCandidate: .invalidArgument
        case .device(let e): e.code
        case .registry(_, let r): r.contains("ermission denied") ? .permission : .general
        case .lock: .general
        case .lockBusy: .inUse
        case .permission: .permission
        case .devicesHeld: .inUse
        case .setNotFound: .notFound
        case .invalid: .invalidArgument
        case .closed: .internal
        }
    }
}
