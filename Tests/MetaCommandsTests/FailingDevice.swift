import Foundation
import MetaTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A real block device that fails and recovers on demand.
///
/// An image file is exported by `nbdkit --filter=error` over a Unix socket (reads fail while
/// `trigger.read` exists, writes and zeroes while `trigger.write` exists), `nbdfuse` exposes
/// that export as a file, and the file is attached to a loop device with direct I/O on. With
/// direct I/O the loop driver reads and writes the FUSE file with O_DIRECT, so every request
/// reaches nbdkit and an injected error comes back as EIO from the loop device; with buffered
/// I/O the FUSE page cache would answer reads of recently written blocks and hide the fault.
///
/// Both helper processes run in the foreground as children (nbdkit with
/// `--exit-with-parent`) and are stopped by PID in ``cleanup()`` (called by deinit too),
/// after the loop device is detached and the FUSE mount unmounted. Stop whatever holds the
/// loop device open (the server) before calling it.
final class FailingDevice: @unchecked Sendable {
    /// The loop device, `/dev/loopN`.
    var path: String { loop }
    private var loop = ""
    /// The image file nbdkit serves (read it directly once everything is stopped).
    let image: String
    let dir: String
    private let readTrigger: String
    private let writeTrigger: String
    private let mountDir: String
    private let nbdkit: Process
    private var fuse: Process?
    private var loopAttached = false
    private var mounted = false
    private let lock = NSLock()

    /// Creates `<dir>/<name>/` with a sparse image of `size` bytes and brings the stack up.
    init(in parent: TempDir, name: String, size: UInt64) throws {
        dir = parent.file(name)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        image = try parent.image("\(name)/backing.img", size: size)
        readTrigger = "\(dir)/trigger.read"
        writeTrigger = "\(dir)/trigger.write"
        mountDir = "\(dir)/mnt"
        try FileManager.default.createDirectory(atPath: mountDir, withIntermediateDirectories: true)
        let socket = "\(dir)/nbdkit.sock", kitPid = "\(dir)/nbdkit.pid", fusePid = "\(dir)/nbdfuse.pid"
        let log = "\(dir)/helpers.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let logHandle = FileHandle(forWritingAtPath: log)
        defer { try? logHandle?.close() }

        nbdkit = Process()
        nbdkit.executableURL = URL(fileURLWithPath: Privileged.which("nbdkit") ?? "/usr/bin/nbdkit")
        nbdkit.arguments = ["-f", "--exit-with-parent", "--filter=error", "-U", socket, "-P", kitPid, "file", image,
                            "error=EIO",
                            "error-pread-rate=1", "error-pread-file=\(readTrigger)",
                            "error-pwrite-rate=1", "error-pwrite-file=\(writeTrigger)",
                            "error-zero-rate=1", "error-zero-file=\(writeTrigger)",
                            "error-trim-rate=1", "error-trim-file=\(writeTrigger)"]
        nbdkit.standardInput = FileHandle.nullDevice
        nbdkit.standardOutput = logHandle ?? FileHandle.nullDevice
        nbdkit.standardError = logHandle ?? FileHandle.nullDevice
        try nbdkit.run()
        do {
            try Self.waitFor(kitPid, process: nbdkit, what: "nbdkit", log: log)
            let fuse = Process()
            fuse.executableURL = URL(fileURLWithPath: Privileged.which("nbdfuse") ?? "/usr/bin/nbdfuse")
            fuse.arguments = ["-P", fusePid, "\(mountDir)/disk", "nbd+unix:///?socket=\(socket)"]
            fuse.standardInput = FileHandle.nullDevice
            fuse.standardOutput = logHandle ?? FileHandle.nullDevice
            fuse.standardError = logHandle ?? FileHandle.nullDevice
            try fuse.run()
            self.fuse = fuse
            mounted = true
            try Self.waitFor(fusePid, process: fuse, what: "nbdfuse", log: log)
            let out = try MetaTestSupport.mustRun(["losetup", "--find", "--show", "--direct-io=on", "\(mountDir)/disk"])
            loop = out.trimmingCharacters(in: .whitespacesAndNewlines)
            loopAttached = true
            guard loop.hasPrefix("/dev/loop") else { throw TestSupportError("losetup printed \(out)") }
        } catch {
            cleanup()
            throw error
        }
    }

    private static func waitFor(_ pidFile: String, process: Process, what: String, log: String) throws {
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: pidFile) {
            guard process.isRunning else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw TestSupportError("\(what) exited with \(process.terminationStatus) before it was ready: \(text)")
            }
            guard Date() < deadline else { throw TestSupportError("\(what) did not become ready") }
            usleep(20_000)
        }
    }

    /// Reads and writes fail with EIO from now on.
    func fail() { failReads(); failWrites() }
    /// Reads fail with EIO from now on (writes still work).
    func failReads() { _ = FileManager.default.createFile(atPath: readTrigger, contents: nil) }
    /// Writes (and zero/trim requests) fail with EIO from now on (reads still work).
    func failWrites() { _ = FileManager.default.createFile(atPath: writeTrigger, contents: nil) }
    /// The device works again.
    func recover() {
        try? FileManager.default.removeItem(atPath: readTrigger)
        try? FileManager.default.removeItem(atPath: writeTrigger)
    }

    /// Detaches the loop device, unmounts the FUSE file and stops nbdfuse and nbdkit (by PID).
    /// Safe to call more than once.
    func cleanup() {
        lock.lock()
        defer { lock.unlock() }
        recover()
        if loopAttached {
            loopAttached = false
            _ = try? runCommand(["losetup", "-d", loop])
        }
        if mounted {
            mounted = false
            // The loop driver lets go of the file asynchronously; retry, then unmount lazily.
            var done = false
            for _ in 0..<50 where !done {
                done = (try? runCommand(["fusermount3", "-u", mountDir]))?.ok ?? false
                if !done { usleep(100_000) }
            }
            if !done { _ = try? runCommand(["fusermount3", "-u", "-z", mountDir]) }
        }
        // nbdfuse exits by itself once unmounted; nbdkit is stopped by SIGTERM.
        if let fuse { Self.stop(fuse, grace: 2) }
        Self.stop(nbdkit, grace: 0)
    }

    /// Waits `grace` seconds, then SIGTERM, then SIGKILL; reaps the process.
    private static func stop(_ p: Process, grace: Double) {
        var deadline = Date().addingTimeInterval(grace)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGTERM) }
        deadline = Date().addingTimeInterval(10)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    deinit { cleanup() }
}
