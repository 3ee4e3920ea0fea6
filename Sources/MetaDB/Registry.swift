import Foundation
import MetaSystem
import MetaModel
#if canImport(Glibc)
import Glibc
#endif

/// The host's record of the sets it knows (`<configDir>/sets.json`, like SVM's `mddb.cf`):
/// set name and UUID, and every device of the set by UUID with the path it was last seen at.
public struct HostRegistry: Codable, Sendable, Equatable {
    public struct Device: Codable, Sendable, Equatable {
        public var uuid: UUID
        public var path: String
        public var role: DeviceRole
        public init(uuid: UUID, path: String, role: DeviceRole) { self.uuid = uuid; self.path = path; self.role = role }
    }
    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        public var uuid: UUID
        public var devices: [Device]
        public init(name: String, uuid: UUID, devices: [Device]) { self.name = name; self.uuid = uuid; self.devices = devices }
    }
    public var version: Int = 1
    public var sets: [Entry] = []
    public init() {}

    public func entry(named name: String) -> Entry? { sets.first { $0.name == name } }

    /// Path of the registry file.
    public static func path(configDir: String) -> String { "\(configDir)/sets.json" }

    /// Loads the registry (empty when the file does not exist).
    public static func load(configDir: String) throws -> HostRegistry {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: configDir, isDirectory: &isDir), !isDir.boolValue {
            throw DatabaseError.invalid("\(configDir): not a directory (the config directory, --config-dir or METACTL_CONFIG_DIR)")
        }
        let p = path(configDir: configDir)
        guard FileManager.default.fileExists(atPath: p) else { return HostRegistry() }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: p)) } catch {
            throw DatabaseError.registry(path: p, reason: "cannot read: \(error.localizedDescription)")
        }
        do { return try decode(data) } catch {
            throw DatabaseError.registry(path: p, reason: "malformed (run `metactl import` to rebuild it)")
        }
    }

    /// When `<configDir>/sets.json` exists and cannot be decoded, renames it to
    /// `sets.json.bad` (replacing an older one) so `metactl import` can rebuild the registry;
    /// returns the new path, or nil when the registry is fine or absent.
    public static func setAsideMalformed(configDir: String) throws -> String? {
        let p = path(configDir: configDir)
        guard let data = FileManager.default.contents(atPath: p),
              (try? decode(data)) == nil else { return nil }
        let bad = p + ".bad"
        guard rename(p, bad) == 0 else {
            throw DatabaseError.registry(path: p, reason: "malformed, and cannot be moved to \(bad): \(String(cString: strerror(errno)))")
        }
        return bad
    }

    /// The device paths still legible in a malformed registry file (`"path" : "…"` pairs), so
    /// an import can look at them again.
    public static func salvagePaths(fromMalformed file: String) -> [String] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8),
              let re = try? NSRegularExpression(pattern: #""path"\s*:\s*"((?:[^"\\]|\\.)+)""#) else { return [] }
        var out: [String] = []
        for m in re.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            guard let r = Range(m.range(at: 1), in: text) else { continue }
            let p = text[r].replacingOccurrences(of: "\\/", with: "/")
            if !out.contains(p) { out.append(p) }
        }
        return out
    }

    /// Parses the registry file's content.
    public static func decode(_ data: Data) throws -> HostRegistry {
        try JSONDecoder().decode(HostRegistry.self, from: data)
    }

    /// The registry file's content (pretty, sorted keys, trailing newline); sets are written
    /// in the order they are in.
    public func encoded() throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(self)) + [10]
    }

    /// Loads, edits and atomically rewrites the registry under `<configDir>/sets.json.lock`.
    public static func update(configDir: String, _ body: (inout HostRegistry) throws -> Void) throws {
        try FileManager.default.createDirectory(atPath: configDir, withIntermediateDirectories: true)
        let lock = try FileLock(path: "\(configDir)/sets.json.lock", timeout: 30, what: "host registry")
        defer { lock.unlock() }
        var r = (try? load(configDir: configDir)) ?? HostRegistry()
        try body(&r)
        r.sets.sort { $0.name < $1.name }
        try atomicWrite(try r.encoded(), to: path(configDir: configDir))
    }

    /// Writes a file atomically: temp file, fsync, rename, fsync of the directory.
    static func atomicWrite(_ bytes: [UInt8], to path: String) throws {
        let tmp = "\(path).tmp.\(getpid())"
        let fd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DatabaseError.registry(path: tmp, reason: String(cString: strerror(errno))) }
        var ok = bytes.withUnsafeBytes { raw -> Bool in
            var done = 0
            while done < raw.count {
                let n = retryingInterrupted { Glibc.write(fd, raw.baseAddress! + done, raw.count - done) }
                if n < 0 { return false }
                done += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(tmp)
            throw DatabaseError.registry(path: path, reason: "cannot write: \(why)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}

/// An `flock` on a lock file, taken with a timeout (polling, so a waiter can give up
/// with a clear message naming the holder's PID).
final class FileLock: @unchecked Sendable {
    let path: String
    private var fd: Int32

    init(path: String, timeout: Double, what: String) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        let hint = "run as root, or use your own --run-dir"
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                let e = errno
                try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                if !FileManager.default.fileExists(atPath: dir) {
                    if e == EACCES || e == EPERM || e == EROFS { throw DatabaseError.permission(path: dir, hint: "cannot create it: \(hint)") }
                    throw DatabaseError.lock(path: path, reason: "cannot create \(dir): \(String(cString: strerror(e)))")
                }
            }
        }
        fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            if e == EACCES || e == EPERM { throw DatabaseError.permission(path: path, hint: hint) }
            if e == EROFS { throw DatabaseError.lock(path: path, reason: "cannot create it: read-only file system") }
            if e == ENOTDIR { throw DatabaseError.lock(path: path, reason: "\(dir): not a directory") }
            throw DatabaseError.lock(path: path, reason: "cannot open: \(String(cString: strerror(e)))")
        }
        let timeout = timeout.isFinite ? max(0, timeout) : 30
        let deadline = Date().addingTimeInterval(timeout)
        while retryingInterrupted({ flock(fd, LOCK_EX | LOCK_NB) }) != 0 {
            let e = errno
            if e != EWOULDBLOCK {
                close(fd)
                throw DatabaseError.lock(path: path, reason: String(cString: strerror(e)))
            }
            if Date() >= deadline {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                close(fd)
                throw DatabaseError.lockBusy(path: path, what: what, holder: Int32(holder), seconds: timeout)
            }
            usleep(20_000)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    func unlock() {
        guard fd >= 0 else { return }
        _ = ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }
    deinit { unlock() }
}
