import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Error raised by test helpers.
public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Gate for tests that need root, loop devices or FUSE.
///
/// Tests use `.enabled(if: Privileged.runnable)` so they skip with a message when the
/// machine cannot run them; with `METACTL_REQUIRE_PRIVILEGED_TESTS=1` (CI) ``runnable`` is
/// always true, so the test runs and fails loudly on whatever is missing.
public enum Privileged {
    /// Whether CI asked for privileged tests to be mandatory.
    public static var required: Bool {
        ProcessInfo.processInfo.environment["METACTL_REQUIRE_PRIVILEGED_TESTS"] == "1"
    }
    /// Whether we are root with `/dev/loop-control`.
    public static var hasLoop: Bool {
        getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/loop-control")
    }
    /// Whether FUSE is usable (root and `/dev/fuse`).
    public static var hasFuse: Bool {
        getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/fuse")
    }
    /// Whether a loop-device test should run (it then fails if the machine lacks what it needs).
    public static var runnable: Bool { required || hasLoop }
    /// Whether a FUSE test should run.
    public static var fuseRunnable: Bool { required || (hasLoop && hasFuse) }
    /// Whether `tool` is on PATH.
    public static func has(_ tool: String) -> Bool { which(tool) != nil }
    /// Whether a test needing `tools` should run (CI: always, so missing tools fail).
    public static func runnable(tools: [String]) -> Bool { required || tools.allSatisfy(has) }
    /// Full path of a command on PATH.
    public static func which(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin:/usr/sbin:/sbin"
        for dir in (path + ":/usr/sbin:/sbin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }
}

/// A temporary directory removed when the object goes away (or on ``remove()``).
public final class TempDir: @unchecked Sendable {
    public let path: String
    public init(prefix: String = "metactl-test") throws {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestSupportError("mkdtemp failed")
        }
        path = String(cString: p)
    }
    /// A path inside the directory.
    public func file(_ name: String) -> String { "\(path)/\(name)" }
    /// Creates a sparse file of `size` bytes and returns its path.
    @discardableResult
    public func image(_ name: String, size: UInt64) throws -> String {
        let p = file(name)
        let fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TestSupportError("cannot create \(p)") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else { throw TestSupportError("cannot size \(p)") }
        return p
    }
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
    deinit { remove() }
}

/// Result of running a command.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var ok: Bool { status == 0 }
}

/// Runs a command to completion, capturing its output (no shell).
@discardableResult
public func runCommand(_ argv: [String], environment: [String: String]? = nil, stdin: String? = nil) throws -> CommandResult {
    let p = Process()
    guard let exe = argv.first.flatMap({ $0.hasPrefix("/") ? $0 : Privileged.which($0) }) else {
        throw TestSupportError("command not found: \(argv.first ?? "")")
    }
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = Array(argv.dropFirst())
    if let environment {
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = Pipe()
    p.standardInput = inPipe
    try p.run()
    if let stdin { inPipe.fileHandleForWriting.write(Data(stdin.utf8)) }
    try? inPipe.fileHandleForWriting.close()
    // Read both pipes concurrently so neither fills up.
    nonisolated(unsafe) var errData = Data()
    let g = DispatchGroup()
    g.enter()
    DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); g.leave() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    g.wait()
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// Runs a command and throws with its stderr when it fails.
@discardableResult
public func mustRun(_ argv: [String], environment: [String: String]? = nil) throws -> String {
    let r = try runCommand(argv, environment: environment)
    guard r.ok else {
        throw TestSupportError("\(argv.joined(separator: " ")) exited \(r.status): \(r.stderr)")
    }
    return r.stdout
}

/// Unmounts `mountPoint`. A mount is briefly "busy" while a child process that another test
/// thread is starting still holds a copy of a file descriptor opened under it (the copy lives
/// from fork until the child closes it before exec); such a hold ends by itself, so a busy
/// unmount is retried for a few seconds. If it stays busy, the error names who holds it.
public func unmount(_ mountPoint: String, attempts: Int = 40) throws {
    var last = CommandResult(status: 0, stdout: "", stderr: "")
    for attempt in 0..<max(1, attempts) {
        last = try runCommand(["umount", mountPoint])
        if last.ok { return }
        guard last.stderr.contains("busy") else { break }
        if attempt + 1 < attempts { usleep(250_000) }
    }
    let holders = (try? runCommand(["fuser", "-vm", mountPoint])).map { $0.stdout + $0.stderr } ?? ""
    throw TestSupportError("umount \(mountPoint) exited \(last.status): \(last.stderr)"
                           + (holders.isEmpty ? "" : "\nheld by:\n\(holders)"))
}

/// A loop device attached over a file, detached on ``detach()`` or deinit.
public final class LoopDevice: @unchecked Sendable {
    public let path: String
    public let backingFile: String
    private var attached = true
    /// `options` go to `losetup` before the file, e.g. `["--direct-io=on", "-b", "4096"]`
    /// for a device with 4096-byte logical sectors.
    public init(file: String, options: [String] = []) throws {
        let out = try mustRun(["losetup", "--find", "--show"] + options + [file])
        path = out.trimmingCharacters(in: .whitespacesAndNewlines)
        backingFile = file
        guard path.hasPrefix("/dev/loop") else { throw TestSupportError("losetup printed \(out)") }
    }
    public func detach() {
        guard attached else { return }
        attached = false
        _ = try? runCommand(["losetup", "-d", path])
    }
    deinit { detach() }
}

/// Deterministic random numbers for property tests (SplitMix64): the same seed gives the
/// same sequence on every machine, so a failing seed can be replayed.
public struct SeededRNG: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A value in `0..<n` (multiply-high; the bias is irrelevant for tests). `n` must be > 0.
    public mutating func below(_ n: UInt64) -> UInt64 {
        n.multipliedFullWidth(by: next()).high
    }
    /// `count` random bytes, eight at a time.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var i = 0
            while i + 8 <= count { raw.storeBytes(of: next(), toByteOffset: i, as: UInt64.self); i += 8 }
            while i < count { raw[i] = UInt8(truncatingIfNeeded: next()); i += 1 }
        }
        return out
    }
}
