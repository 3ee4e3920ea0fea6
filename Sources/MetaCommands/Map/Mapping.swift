import Foundation
import MetaSystem
import MetaDevices
#if canImport(Glibc)
import Glibc
#endif

/// How a mapped volume reaches the host as a block device.
public enum MapPath: String, Codable, Sendable {
    /// `nbdfuse` (with `nbdkit`'s retry filter in front of the server) and a loop device with
    /// direct I/O: works wherever FUSE and loop devices do.
    case nbdfuse
    /// The kernel's `nbd` driver, configured over generic netlink (not implemented yet).
    case netlink

    /// How `map` and `status` name the path: `nbdfuse and a loop device`.
    public var description: String {
        switch self {
        case .nbdfuse: "nbdfuse and a loop device"
        case .netlink: "the kernel nbd driver"
        }
    }
}

/// A helper process a mapping started, named by its PID and its start time (clock ticks
/// after boot, `/proc/PID/stat` field 22), so a PID the kernel handed to another process
/// later is never taken for it, nor signalled.
public struct HelperProcess: Codable, Sendable, Equatable {
    /// `nbdfuse` or `nbdkit`.
    public var name: String
    public var pid: Int32
    public var startTime: UInt64

    /// The helper `pid`, if that process runs now (a zombie does not count).
    public static func current(_ name: String, pid: Int32) -> HelperProcess? {
        guard let (state, start) = ProcStat.read(pid), state != "Z" else { return nil }
        return HelperProcess(name: name, pid: pid, startTime: start)
    }

    /// Whether this very process still runs (same PID and start time, not a zombie).
    public var isRunning: Bool {
        guard let (state, start) = ProcStat.read(pid) else { return false }
        return state != "Z" && start == startTime
    }
}

/// `/proc/PID/stat`: the state letter and the start time.
enum ProcStat {
    static func read(_ pid: Int32) -> (Character, UInt64)? {
        guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // After "PID (comm) ": state is field 3, starttime field 22.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return (state, start)
    }
}

/// One volume mapped to a block device, as `metactl map` recorded it in
/// `<run-dir>/<set>.maps.json`; `metactl unmap` tears down exactly this.
public struct MapRecord: Codable, Sendable, Equatable {
    /// The volume's name.
    public var volume: String
    /// The block device: `/dev/loopN` (nbdfuse path) or `/dev/nbdN` (netlink).
    public var device: String
    /// The path taken.
    public var path: MapPath
    /// Mapped read-only (`map --read-only`).
    public var readOnly: Bool
    /// The NBD socket the mapping connects to.
    public var socket: String
    /// nbdfuse path: the FUSE mount point; the loop device's backing file is `FILE/nbd` in it.
    public var mountDir: String
    /// How long a request waits for the server to come back (seconds) before it fails.
    public var reconnectTimeout: Int
    /// The processes the mapping runs (nbdfuse, and nbdkit under it).
    public var helpers: [HelperProcess]
    /// When it was mapped (ISO 8601).
    public var mappedAt: String
    /// How the helper connects to a server that requires TLS (nil: plain). Absent in older
    /// maps files.
    public var tls: MapTLS? = nil

    /// The file the loop device reads and writes (nbdfuse path).
    public var backingFile: String { "\(mountDir)/nbd" }
}

/// TLS credentials of a mapping's client side (`map --tls-certificates DIR` or `--tls-psk
/// FILE [--tls-username USER]`), given to nbdkit's nbd plugin (`tls=require`) and nbdinfo.
public struct MapTLS: Codable, Sendable, Equatable {
    /// x509: a directory with ca-cert.pem (and client-cert.pem, client-key.pem when the
    /// server verifies clients), nbdkit's layout.
    public var certificates: String?
    /// PSK: a psktool key file holding the user's key.
    public var psk: String?
    /// The PSK user (default: the current user name, as nbdkit and libnbd take it).
    public var username: String?
    public init(certificates: String? = nil, psk: String? = nil, username: String? = nil) {
        self.certificates = certificates; self.psk = psk; self.username = username
    }

    /// nbdkit nbd plugin parameters.
    var nbdkitParameters: [String] {
        var p = ["tls=require"]
        if let c = certificates { p.append("tls-certificates=\(c)") }
        if let k = psk { p.append("tls-psk=\(k)") }
        if let u = username { p.append("tls-username=\(u)") }
        return p
    }

    /// An `nbds+unix://` URI of `volume` on `socket` with these credentials.
    func uri(volume: String, socket: String) -> String {
        var q = "socket=\(socket)"
        if let c = certificates { q += "&tls-certificates=\(c)" }
        if let k = psk { q += "&tls-psk-file=\(k)" }
        let user = psk != nil ? (username ?? ProcessInfo.processInfo.userName) + "@" : ""
        return "nbds+unix://\(user)/\(volume)?\(q)"
    }
}

/// The maps file `<run-dir>/<set>.maps.json` and its lock.
public enum MapStore {
    /// `<run-dir>/<set>.maps.json`.
    public static func path(runDir: String, set: String) -> String { "\(runDir)/\(set).maps.json" }
    /// `<run-dir>/<set>.map`: a directory per mapped volume (FUSE mount point), its log and PID files.
    public static func directory(runDir: String, set: String) -> String { "\(runDir)/\(set).map" }

    struct File: Codable { var mappings: [MapRecord] }

    /// The recorded mappings (none when the file does not exist).
    public static func load(runDir: String, set: String) throws -> [MapRecord] {
        let p = path(runDir: runDir, set: set)
        guard let data = FileManager.default.contents(atPath: p) else { return [] }
        do { return try JSONDecoder().decode(File.self, from: data).mappings } catch {
            throw UserError("\(p): not a maps file (\(error)); remove it once nothing it lists is mapped", code: .invalidArgument)
        }
    }

    /// Replaces the recorded mappings (written to a temporary file, then renamed); removes
    /// the file when there are none.
    public static func save(_ maps: [MapRecord], runDir: String, set: String) throws {
        let p = path(runDir: runDir, set: set)
        if maps.isEmpty { unlink(p); return }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do { try enc.encode(File(mappings: maps)).write(to: URL(fileURLWithPath: p), options: .atomic) } catch {
            throw UserError("cannot write \(p): \((error as NSError).localizedDescription)")
        }
    }

    /// Runs `body` holding `<run-dir>/<set>.maps.lock` (flock), so two `map`/`unmap` commands
    /// of a set never interleave.
    public static func withLock<T>(runDir: String, set: String, _ body: () throws -> T) throws -> T {
        let p = "\(runDir)/\(set).maps.lock"
        let fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            throw UserError("cannot open \(p): \(String(cString: strerror(e)))", code: e == EACCES ? .permission : .general)
        }
        defer { close(fd) }
        let deadline = Date().addingTimeInterval(60)
        while retryingInterrupted({ flock(fd, LOCK_EX | LOCK_NB) }) != 0 {
            if Date() > deadline { throw UserError("\(p): another map or unmap of set '\(set)' has held it for 60 s", code: .inUse) }
            usleep(50_000)
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}

/// Runs programs for ``Mapper``: a command to completion, or a helper detached from the caller.
enum Helpers {
    /// Full path of a command on PATH (and the sbin directories).
    static func which(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in (path + ":/usr/sbin:/sbin:/usr/bin:/bin").split(separator: ":") where access("\(dir)/\(tool)", X_OK) == 0 {
            return "\(dir)/\(tool)"
        }
        return nil
    }

    /// `tool`'s path, or an error naming the package to install.
    static func require(_ tool: String, package: String) throws -> String {
        guard let p = which(tool) else {
            throw UserError("\(tool) not found: map needs it (install the Debian package \(package); scripts/install-deps does)", code: .notFound)
        }
        return p
    }

    /// Runs `argv` to completion: exit status, stdout, stderr.
    static func run(_ argv: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        nonisolated(unsafe) var errData = Data()
        let g = DispatchGroup()
        g.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        g.wait()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    /// Starts `argv` in a session of its own (no controlling terminal, not in the caller's
    /// process group), stdin from /dev/null, stdout and stderr appended to `log`, no other
    /// descriptor inherited: it outlives `metactl map`.
    static func spawnDetached(_ argv: [String], log: String) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(0x80 /* POSIX_SPAWN_SETSID */ | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        closeFrom3(&actions)
        let args = argv.map { strdup($0) }
        defer { args.forEach { free($0) } }
        let env = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") }
        defer { env.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = (args + [nil]).withUnsafeBufferPointer { a in
            (env + [nil]).withUnsafeBufferPointer { e in
                posix_spawn(&pid, argv[0], &actions, &attr, UnsafeMutablePointer(mutating: a.baseAddress!),
                            UnsafeMutablePointer(mutating: e.baseAddress!))
            }
        }
        guard rc == 0 else { throw UserError("cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Adds "close every descriptor from 3 up" to `actions`: glibc's
    /// `posix_spawn_file_actions_addclosefrom_np` (2.34 and later; looked up at run time, as
    /// Swift does not see GNU extensions), else a close of each descriptor open now.
    static func closeFrom3(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let sym = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            let f = unsafeBitCast(sym, to: CloseFrom.self)
            if f(&actions, 3) == 0 { return }
        }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for fd in fds where fd >= 3 && fcntl(fd, F_GETFD) >= 0 { posix_spawn_file_actions_addclose(&actions, fd) }
    }

    /// Whether `path` is a mount point now (from /proc/self/mountinfo).
    static func isMountPoint(_ path: String) -> Bool {
        mounts().contains { $0.target == path }
    }

    /// The mounts: source and target, with `\040`-style escapes decoded.
    static func mounts() -> [(source: String, target: String)] {
        guard let text = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return [] }
        func unescape(_ s: Substring) -> String {
            var out = "", chars = Array(s), i = 0
            while i < chars.count {
                if chars[i] == "\\", i + 3 < chars.count, let v = UInt8(String(chars[i + 1...i + 3]), radix: 8) {
                    out.append(Character(UnicodeScalar(v))); i += 4
                } else { out.append(chars[i]); i += 1 }
            }
            return out
        }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            return f.count >= 2 ? (unescape(f[0]), unescape(f[1])) : nil
        }
    }

    /// The file a loop device reads (`/sys/block/loopN/loop/backing_file`), nil when detached.
    static func loopBackingFile(_ device: String) -> String? {
        let name = (device as NSString).lastPathComponent
        guard let s = try? String(contentsOfFile: "/sys/block/\(name)/loop/backing_file", encoding: .utf8) else { return nil }
        let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
        return t.isEmpty ? nil : t
    }

    /// Why `device` is busy (mounted on …, or open exclusively), nil when it is not.
    static func busyReason(_ device: String) -> String? {
        let fd = open(device, O_RDONLY | O_EXCL | O_CLOEXEC)
        if fd >= 0 { close(fd); return nil }
        guard errno == EBUSY else { return nil }
        if let m = mounts().first(where: { $0.source == device }) { return "mounted on \(m.target)" }
        let name = (device as NSString).lastPathComponent
        if let holders = try? FileManager.default.contentsOfDirectory(atPath: "/sys/block/\(name)/holders"), !holders.isEmpty {
            return "held by \(holders.sorted().map { "/dev/\($0)" }.joined(separator: ", "))"
        }
        return "open exclusively by another program"
    }
}
