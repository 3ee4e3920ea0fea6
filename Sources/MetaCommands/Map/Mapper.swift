import Foundation
import MetaDevices
#if canImport(Glibc)
import Glibc
#endif

/// Maps volumes of one set to block devices and tears mappings down (`metactl map`,
/// `metactl unmap`).
///
/// The path today is nbdfuse plus a loop device: `nbdfuse DIR/nbd [ nbdkit --filter=retry
/// nbd socket=… export=NAME ]` exposes the export as a file, `losetup --direct-io=on` turns
/// the file into `/dev/loopN`. nbdkit's retry filter reopens the connection to the server and
/// retries a failed request, once a second for ``MapRecord/reconnectTimeout`` seconds, so a
/// server that is restarted (or killed and started again) under a mounted file system is
/// not noticed. Every step is undone when a later one fails; what was set up is recorded in
/// the maps file (``MapStore``) and `unmap` undoes exactly that.
public struct Mapper: Sendable {
    /// The set's name.
    public var set: String
    /// The run directory (sockets, PID files, the maps file).
    public var runDir: String

    /// A mapper for `set` under `runDir`.
    public init(set: String, runDir: String) { self.set = set; self.runDir = runDir }

    /// Whether the kernel's `nbd` driver is there (loaded, or a `/dev/nbd0` node exists).
    public static var kernelNBDAvailable: Bool {
        FileManager.default.fileExists(atPath: "/sys/module/nbd") || FileManager.default.fileExists(atPath: "/dev/nbd0")
    }

    /// The line `map` prints on stderr about the path it took.
    public static func pathNote(_ path: MapPath, device: String) -> String {
        if kernelNBDAvailable {
            return "the kernel nbd driver is present, but metactl does not drive it yet: mapped through \(path.description) (\(device))"
        }
        return "nbd module not available: mapped through \(path.description) (\(device))"
    }

    /// What ``map(volume:device:socket:readOnly:reconnectTimeout:)`` asks for.
    public struct Request: Sendable {
        /// The volume to map.
        public var volume: String
        /// A loop device to use (`/dev/loop7`); nil: the first free one.
        public var device: String?
        /// The server's NBD Unix socket.
        public var socket: String
        /// Map read-only (nbdfuse, nbdkit and the loop device).
        public var readOnly: Bool
        /// Seconds a request waits for an absent server before it fails (at least 1).
        public var reconnectTimeout: Int
        /// TLS for a server that requires it (nil: plain).
        public var tls: MapTLS?
        /// A request; `reconnectTimeout` defaults to 60 s.
        public init(volume: String, device: String? = nil, socket: String, readOnly: Bool = false, reconnectTimeout: Int = 60,
                    tls: MapTLS? = nil) {
            self.volume = volume; self.device = device; self.socket = socket; self.readOnly = readOnly
            self.reconnectTimeout = reconnectTimeout; self.tls = tls
        }
    }

    /// The recorded mapping of `nameOrDevice` (a volume name, or the device it is mapped to).
    public func find(_ nameOrDevice: String, in maps: [MapRecord]) -> MapRecord? {
        if let m = maps.first(where: { $0.volume == nameOrDevice }) { return m }
        let resolved = URL(fileURLWithPath: nameOrDevice).resolvingSymlinksInPath().path
        return maps.first { $0.device == nameOrDevice || $0.device == resolved }
    }

    /// Whether a recorded mapping still stands: its nbdfuse runs and the loop device still reads its file.
    public func isAlive(_ r: MapRecord) -> Bool {
        r.helpers.first(where: { $0.name == "nbdfuse" })?.isRunning == true
            && Helpers.loopBackingFile(r.device) == r.backingFile
    }

    /// Maps a volume: starts nbdfuse (and nbdkit under it), attaches the loop device, records
    /// the mapping and returns it. Refuses a volume already mapped (naming the device), an
    /// absent socket, a device that is not a free loop device. Leaves nothing behind when it fails.
    public func map(_ req: Request) throws -> MapRecord {
        let base = MapStore.directory(runDir: runDir, set: set)
        do { try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true) } catch {
            throw UserError("cannot create \(base): \((error as NSError).localizedDescription)", code: .permission)
        }
        return try MapStore.withLock(runDir: runDir, set: set) {
            var maps = try MapStore.load(runDir: runDir, set: set)
            if let old = maps.first(where: { $0.volume == req.volume }) {
                if isAlive(old) {
                    throw UserError("\(req.volume): already mapped to \(old.device) (unmap it first: `\(unmapCommand(req.volume))`)", code: .inUse)
                }
                // Stale (its helpers died, or the loop device went): tidy up what is left.
                teardownQuietly(old)
                maps.removeAll { $0.volume == req.volume }
                try MapStore.save(maps, runDir: runDir, set: set)
            }
            if let dev = req.device, let other = maps.first(where: { $0.device == dev }) {
                throw UserError("\(dev): already the device of volume \(other.volume)", code: .inUse)
            }
            let record = try setUp(req)
            maps.append(record)
            do { try MapStore.save(maps, runDir: runDir, set: set) } catch {
                teardownQuietly(record)
                throw error
            }
            return record
        }
    }

    /// `metactl unmap NAME` with `-s SET` when the set is not `local`.
    func unmapCommand(_ name: String) -> String {
        "metactl unmap \(set == "local" ? "" : "-s \(set) ")\(name)"
    }

    private func setUp(_ req: Request) throws -> MapRecord {
        let nbdfuse = try Helpers.require("nbdfuse", package: "nbdfuse")
        let nbdkit = try Helpers.require("nbdkit", package: "nbdkit")
        let losetup = try Helpers.require("losetup", package: "util-linux")
        _ = try Helpers.require("fusermount3", package: "fuse3")
        guard FileManager.default.fileExists(atPath: req.socket) else {
            throw UserError("\(req.socket): no NBD socket there (is the server listening elsewhere? map --socket PATH)", code: .notFound)
        }
        if let dev = req.device {
            guard (dev as NSString).lastPathComponent.hasPrefix("loop"), FileManager.default.fileExists(atPath: dev) else {
                throw UserError("\(dev): not a loop device (without the kernel nbd driver map uses a loop device: /dev/loopN, or none to take the first free one)", code: .invalidArgument)
            }
            if let file = Helpers.loopBackingFile(dev) {
                throw UserError("\(dev): in use (attached to \(file))", code: .inUse)
            }
        }
        let sector = try Self.minimumBlockSize(volume: req.volume, socket: req.socket, tls: req.tls)
        let base = MapStore.directory(runDir: runDir, set: set)
        let mountDir = "\(base)/\(req.volume)"
        let log = "\(base)/\(req.volume).log", fusePid = "\(base)/\(req.volume).nbdfuse.pid",
            kitPid = "\(base)/\(req.volume).nbdkit.pid"
        if Helpers.isMountPoint(mountDir) { _ = try? Helpers.run([Helpers.which("fusermount3") ?? "fusermount3", "-u", "-z", mountDir]) }
        try? FileManager.default.createDirectory(atPath: mountDir, withIntermediateDirectories: true)
        for p in [log, fusePid, kitPid] { unlink(p) }
        var record = MapRecord(volume: req.volume, device: "", path: .nbdfuse, readOnly: req.readOnly, socket: req.socket,
                               mountDir: mountDir, reconnectTimeout: max(1, req.reconnectTimeout), helpers: [],
                               mappedAt: ISO8601DateFormatter().string(from: Date()))
        record.tls = req.tls
        let ro = req.readOnly ? ["-r"] : []
        let argv = [nbdfuse] + ro + ["-P", fusePid, record.backingFile,
                    "[", nbdkit, "--exit-with-parent", "-P", kitPid] + ro + ["--filter=retry", "nbd",
                    "socket=\(req.socket)", "export=\(req.volume)"] + (req.tls?.nbdkitParameters ?? []) + [
                    "retries=\(record.reconnectTimeout)", "retry-delay=1", "retry-exponential=no", "]"]
        let pid = try Helpers.spawnDetached(argv, log: log)
        do {
            // nbdfuse writes its PID file once the export is connected and the file is there.
            let deadline = Date().addingTimeInterval(60)
            while !FileManager.default.fileExists(atPath: fusePid) {
                var st: Int32 = 0
                if waitpid(pid, &st, WNOHANG) == pid {
                    throw UserError("\(req.volume): nbdfuse failed: \(Self.lastLine(log) ?? "exited with status \(st >> 8)")")
                }
                if Date() > deadline {
                    kill(pid, SIGKILL)
                    throw UserError("\(req.volume): nbdfuse did not connect within 60 s (\(Self.lastLine(log) ?? "no message"))")
                }
                usleep(20_000)
            }
            if let h = HelperProcess.current("nbdfuse", pid: pid) { record.helpers.append(h) }
            let kitDeadline = Date().addingTimeInterval(10)
            while record.helpers.count < 2 && Date() < kitDeadline {
                if let text = try? String(contentsOfFile: kitPid, encoding: .utf8),
                   let k = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                   let h = HelperProcess.current("nbdkit", pid: k) {
                    record.helpers.append(h)
                } else { usleep(20_000) }
            }
            guard record.helpers.count == 2 else {
                throw UserError("\(req.volume): nbdfuse or nbdkit exited at start (\(Self.lastLine(log) ?? "no message"))")
            }
            // The loop device's logical sector is the export's minimum block size (4096 for
            // a volume on 4096-byte-sector components), so no request is smaller.
            var args = [losetup, "--direct-io=on", "--sector-size", "\(sector)"] + ro
            args += req.device.map { ["--show", $0] } ?? ["--find", "--show"]
            let r = try Helpers.run(args + [record.backingFile])
            let dev = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
            guard r.status == 0 else {
                let why = r.err.split(separator: "\n").first.map(String.init) ?? "exit status \(r.status)"
                throw UserError("\(req.volume): losetup failed: \(why)", code: .general)
            }
            record.device = dev.isEmpty ? (req.device ?? "") : dev
            guard record.device.hasPrefix("/dev/") else {
                throw UserError("\(req.volume): losetup printed no device (\(r.out))")
            }
        } catch {
            teardownQuietly(record, spawned: pid)
            throw error
        }
        return record
    }

    /// The export's minimum block size (`nbdinfo --json`), 512 when it advertises none.
    static func minimumBlockSize(volume: String, socket: String, tls: MapTLS? = nil) throws -> Int {
        let nbdinfo = try Helpers.require("nbdinfo", package: "libnbd-bin")
        let uri = tls?.uri(volume: volume, socket: socket) ?? "nbd+unix:///\(volume)?socket=\(socket)"
        let r = try Helpers.run([nbdinfo, "--json", uri])
        guard r.status == 0 else {
            throw UserError("\(volume): the server does not export it (nbdinfo: \(r.err.split(separator: "\n").first ?? ""))", code: .notFound)
        }
        guard let doc = try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any],
              let export = (doc["exports"] as? [[String: Any]])?.first else {
            throw UserError("\(volume): nbdinfo --json printed no export")
        }
        let size = (export["block_size_minimum"] as? Int) ?? 512
        return [512, 1024, 2048, 4096].contains(size) ? size : 512
    }

    /// Unmaps `nameOrDevice` (a volume or its device). Refuses, changing nothing, while the
    /// device is mounted or open exclusively, unless `force` (then the file system on it sees
    /// I/O errors, as when a disk is pulled). Returns the record it removed.
    public func unmap(_ nameOrDevice: String, force: Bool) throws -> MapRecord {
        try MapStore.withLock(runDir: runDir, set: set) {
            var maps = try MapStore.load(runDir: runDir, set: set)
            guard let r = find(nameOrDevice, in: maps) else {
                let what = nameOrDevice.hasPrefix("/") ? "\(nameOrDevice): no volume of set '\(set)' is mapped to it"
                                                       : "\(nameOrDevice): not mapped (set '\(set)')"
                throw UserError(what, code: .notFound)
            }
            if !force, Helpers.loopBackingFile(r.device) == r.backingFile, let why = Helpers.busyReason(r.device) {
                throw UserError("\(r.volume): \(r.device) is in use (\(why)): unmount it first, or `\(unmapCommand(r.volume)) --force`", code: .inUse)
            }
            try teardown(r, force: force)
            maps.removeAll { $0.volume == r.volume }
            try MapStore.save(maps, runDir: runDir, set: set)
            return r
        }
    }

    /// Undoes a mapping: detaches the loop device (only if it still reads this mapping's
    /// file), unmounts the FUSE file system (nbdfuse then exits, and nbdkit with it), and
    /// ends any recorded helper still running after that, by PID.
    func teardown(_ r: MapRecord, force: Bool) throws {
        if !r.device.isEmpty, Helpers.loopBackingFile(r.device) == r.backingFile, let losetup = Helpers.which("losetup") {
            let out = try Helpers.run([losetup, "-d", r.device])
            if out.status != 0 && Helpers.loopBackingFile(r.device) == r.backingFile && !force {
                throw UserError("\(r.volume): losetup -d \(r.device) failed: \(out.err.split(separator: "\n").first ?? "")")
            }
        }
        // The loop driver lets go of the file asynchronously: retry a busy unmount briefly.
        let fusermount = Helpers.which("fusermount3") ?? "fusermount3"
        let deadline = Date().addingTimeInterval(10)
        while Helpers.isMountPoint(r.mountDir) {
            let out = try Helpers.run([fusermount, "-u", r.mountDir])
            if out.status == 0 { break }
            if Date() > deadline || force {
                _ = try Helpers.run([fusermount, "-u", "-z", r.mountDir])
                break
            }
            usleep(100_000)
        }
        Self.stop(r.helpers)
        rmdir(r.mountDir)
        let base = MapStore.directory(runDir: runDir, set: set)
        for suffix in ["log", "nbdfuse.pid", "nbdkit.pid"] { unlink("\(base)/\(r.volume).\(suffix)") }
    }

    /// Waits up to 10 s for the helpers to exit by themselves, then SIGTERM, then SIGKILL,
    /// each only to the process recorded (PID and start time).
    static func stop(_ helpers: [HelperProcess]) {
        func waitGone(_ seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while helpers.contains(where: \.isRunning) {
                if Date() > deadline { return false }
                usleep(20_000)
            }
            return true
        }
        if waitGone(10) { return }
        for h in helpers where h.isRunning { kill(h.pid, SIGTERM) }
        if waitGone(5) { return }
        for h in helpers where h.isRunning { kill(h.pid, SIGKILL) }
        _ = waitGone(5)
    }

    private func teardownQuietly(_ r: MapRecord, spawned: pid_t? = nil) {
        var r = r
        if let spawned, !r.helpers.contains(where: { $0.pid == spawned }), let h = HelperProcess.current("nbdfuse", pid: spawned) {
            r.helpers.append(h)
        }
        try? teardown(r, force: true)
        if let spawned { var st: Int32 = 0; _ = waitpid(spawned, &st, WNOHANG) }
    }

    /// The last non-empty line of a helper's log.
    static func lastLine(_ log: String) -> String? {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map(String.init)
    }
}
