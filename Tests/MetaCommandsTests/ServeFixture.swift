import Foundation
import MetaTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A set on image files in its own temporary directory, with its own config and run
/// directories, and `metactl serve` started as a child process.
///
/// Every command runs the built `metactl` binary (found next to the test bundle, whatever the
/// scratch path) with `METACTL_CONFIG_DIR`/`METACTL_RUN_DIR` pointing into the temporary
/// directory, so tests running in parallel never meet. Servers are stopped by PID (SIGTERM,
/// then SIGKILL) in ``cleanup()``, which deinit calls too, so a failing test leaves nothing
/// running.
final class ServeFixture: @unchecked Sendable {
    let dir: TempDir
    let set: String
    let configDir: String
    let runDir: String
    let metactl: String
    private var servers: [ServeProcess] = []
    private let lock = NSLock()

    init(set: String = "local", prefix: String = "metactl-serve") throws {
        dir = try TempDir(prefix: prefix)
        self.set = set
        configDir = dir.file("etc")
        runDir = dir.file("run")
        metactl = try GeneratedDocsTests.metactl()
    }

    /// Environment for every `metactl` run.
    var environment: [String: String] {
        ["METACTL_CONFIG_DIR": configDir, "METACTL_RUN_DIR": runDir, "LC_ALL": "C"]
    }

    /// `<run-dir>/<set>.nbd`
    var socketPath: String { "\(runDir)/\(set).nbd" }

    /// `nbd+unix:///NAME?socket=…`
    func uri(_ volume: String) -> String { "nbd+unix:///\(volume)?socket=\(socketPath)" }

    /// Creates `count` sparse image files of `size` bytes named `<prefix>0.img`….
    func images(_ prefix: String, count: Int, size: UInt64) throws -> [String] {
        try (0..<count).map { try dir.image("\(prefix)\($0).img", size: size) }
    }

    /// Runs `metactl ARGS` (with `-s SET` unless the set is "local").
    @discardableResult
    func run(_ args: [String]) throws -> CommandResult {
        let setArgs = set == "local" ? [] : ["-s", set]
        guard let sub = args.first else { return try runCommand([metactl], environment: environment) }
        return try runCommand([metactl, sub] + setArgs + args.dropFirst(), environment: environment)
    }

    /// Runs `metactl ARGS` and throws with its stderr when it fails.
    @discardableResult
    func mustRun(_ args: [String]) throws -> String {
        let r = try run(args)
        guard r.ok else { throw TestSupportError("metactl \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)") }
        return r.stdout
    }

    /// Creates a volume: `metactl create NAME TYPE DEVS… EXTRA…`.
    func create(_ name: String, _ type: String, _ devices: [String], extra: [String] = []) throws {
        try mustRun(["create", name, type] + extra + devices)
    }

    /// `metactl status --json` parsed.
    func statusJSON(_ names: [String] = []) throws -> [String: Any] {
        let out = try mustRun(["status", "--json"] + names)
        guard let doc = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] else {
            throw TestSupportError("status --json printed no object: \(out)")
        }
        return doc
    }

    /// Starts `metactl serve ARGS` and waits until it serves (its "serving set" log line).
    @discardableResult
    func startServer(_ args: [String] = []) throws -> ServeProcess {
        let setArgs = set == "local" ? [] : ["-s", set]
        let n = lock.withLock { servers.count }
        let s = try ServeProcess(metactl: metactl, arguments: ["serve"] + setArgs + args, environment: environment,
                                 logPath: dir.file("serve\(n).log"))
        lock.withLock { servers.append(s) }
        try s.waitUntilServing()
        return s
    }

    /// Stops every server this fixture started (SIGTERM, then SIGKILL after a grace period).
    func cleanup() {
        let all = lock.withLock { servers }
        for s in all { _ = s.stop() }
    }

    deinit { cleanup() }
}

/// One `metactl serve` child process; stderr goes to a log file.
final class ServeProcess: @unchecked Sendable {
    let process: Process
    let logPath: String
    var pid: Int32 { process.processIdentifier }

    init(metactl: String, arguments: [String], environment: [String: String], logPath: String) throws {
        self.logPath = logPath
        guard FileManager.default.createFile(atPath: logPath, contents: nil),
              let log = FileHandle(forWritingAtPath: logPath) else {
            throw TestSupportError("cannot create \(logPath)")
        }
        defer { try? log.close() }
        process = Process()
        process.executableURL = URL(fileURLWithPath: metactl)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    /// What the server logged so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    var isRunning: Bool { process.isRunning }

    /// Waits (bounded) until the server logs that it serves; throws with its log if it exits
    /// or never gets there.
    func waitUntilServing(limit: Double = 120) throws {
        let deadline = Date().addingTimeInterval(limit)
        while true {
            if log.contains("serving set") { return }
            if !process.isRunning {
                process.waitUntilExit()
                throw TestSupportError("metactl serve exited with \(process.terminationStatus) before serving:\n\(log)")
            }
            if Date() > deadline {
                throw TestSupportError("metactl serve did not start serving within \(Int(limit)) s:\n\(log)")
            }
            usleep(20_000)
        }
    }

    /// The TCP port from the "serving set … on SOCK and HOST:PORT; control …" log line.
    var tcpPort: Int? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("serving set") }),
              let and = line.range(of: " and ", options: .backwards) else { return nil }
        let rest = line[and.upperBound...]
        guard let semi = rest.firstIndex(of: ";"), let colon = rest[..<semi].lastIndex(of: ":") else { return nil }
        return Int(rest[rest.index(after: colon)..<semi])
    }

    /// Sends `signal` and waits (bounded) for the exit; escalates to SIGKILL after `grace`
    /// seconds. Returns the exit status (or the signal number for a signal death), nil if the
    /// process could not be reaped.
    @discardableResult
    func stop(signal sig: Int32 = SIGTERM, grace: Double = 60) -> Int32? {
        if process.isRunning { kill(pid, sig) }
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            let hard = Date().addingTimeInterval(30)
            while process.isRunning && Date() < hard { usleep(20_000) }
        }
        if process.isRunning { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Whether the process ended by `exit` (not by a signal).
    var exitedNormally: Bool { !process.isRunning && process.terminationReason == .exit }
}

/// Writes `size` random bytes to `path` and returns them.
@discardableResult
func writeRandomFile(_ path: String, size: Int) throws -> Data {
    var g = SystemRandomNumberGenerator()
    var bytes = [UInt8](repeating: 0, count: size)
    bytes.withUnsafeMutableBytes { raw in
        var i = 0
        while i + 8 <= raw.count {
            raw.storeBytes(of: g.next(), toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < raw.count { raw[i] = UInt8.random(in: 0...255, using: &g); i += 1 }
    }
    let data = Data(bytes)
    guard FileManager.default.createFile(atPath: path, contents: data) else {
        throw TestSupportError("cannot write \(path)")
    }
    return data
}

/// `sha256sum FILE`'s digest.
func sha256(_ path: String) throws -> String {
    let out = try MetaTestSupport.mustRun(["sha256sum", path])
    return String(out.prefix { !$0.isWhitespace })
}

/// `nbdinfo --json URI` parsed (the export object).
func nbdinfoJSON(_ uri: String) throws -> [String: Any] {
    let out = try MetaTestSupport.mustRun(["nbdinfo", "--json", uri])
    guard let doc = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
          let exports = doc["exports"] as? [[String: Any]], let first = exports.first else {
        throw TestSupportError("nbdinfo --json \(uri) printed \(out)")
    }
    return first
}

/// Removes fields that legitimately differ between a live report and one read from the
/// devices: `live`, each volume's `openCount` and `resync` (rates).
func stripLiveFields(_ status: [String: Any]) -> [String: Any] {
    var s = status
    s.removeValue(forKey: "live")
    if let vols = s["volumes"] as? [[String: Any]] {
        s["volumes"] = vols.map { v -> [String: Any] in
            var v = v
            v.removeValue(forKey: "openCount")
            v.removeValue(forKey: "resync")
            return v
        }
    }
    return s
}

/// Runs a command with output discarded; when it has not finished after `limit` seconds,
/// kills its whole process group (SIGKILL) so helpers it forked go too. Returns its exit
/// status, or nil when it had to be killed.
///
/// Uses posix_spawn and waitpid rather than Foundation's Process, which notices an exit only
/// when every process holding its monitoring socket is gone (forked children keep it open).
func runBounded(_ argv: [String], limit: Double) throws -> Int32? {
    guard let exe = argv.first.flatMap({ $0.hasPrefix("/") ? $0 : Privileged.which($0) }) else {
        throw TestSupportError("command not found: \(argv.first ?? "")")
    }
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
    posix_spawnattr_setpgroup(&attr, 0)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for fd: Int32 in [0, 1, 2] {
        posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
    }
    let args = ([exe] + argv.dropFirst()).map { strdup($0) }
    defer { args.forEach { free($0) } }
    let env = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") }
    defer { env.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = (args + [nil]).withUnsafeBufferPointer { a in
        (env + [nil]).withUnsafeBufferPointer { e in
            posix_spawn(&pid, exe, &actions, &attr, UnsafeMutablePointer(mutating: a.baseAddress!),
                        UnsafeMutablePointer(mutating: e.baseAddress!))
        }
    }
    guard rc == 0 else { throw TestSupportError("cannot start \(exe): \(String(cString: strerror(rc)))") }
    let deadline = Date().addingTimeInterval(limit)
    var status: Int32 = 0
    while true {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { break }
        if r < 0 && errno != EINTR { throw TestSupportError("waitpid \(pid): \(String(cString: strerror(errno)))") }
        if Date() > deadline {
            kill(-pid, SIGKILL)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return nil
        }
        usleep(50_000)
    }
    // The group may still hold forked helpers (they would be orphans): end them.
    kill(-pid, SIGKILL)
    if status & 0x7f == 0 { return (status >> 8) & 0xff }
    return 128 + (status & 0x7f)
}
