import Foundation
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
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { if errno == EINTR { continue }; return false }
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
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw DatabaseError.lock(path: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        let deadline = Date().addingTimeInterval(timeout)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e != EWOULDBLOCK {
                close(fd)
                throw DatabaseError.lock(path: path, reason: String(cString: strerror(e)))
            }
            if Date() >= deadline {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                close(fd)
                throw DatabaseError.lock(path: path, reason: "\(what) is busy: held by another process"
                    + (holder.isEmpty ? "" : " (pid \(holder))") + " for more than \(Int(timeout)) s")
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
