import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs the real `metactl` binary for the grow tests, against a private config/run dir
/// (METACTL_CONFIG_DIR / METACTL_RUN_DIR), and serves the set as a child process.
struct GrowCLI {
    let dir: TempDir
    var configDir: String { dir.file("etc") }
    var runDir: String { dir.file("run") }
    var nbdSocket: String { "\(runDir)/local.nbd" }
    func uri(_ name: String) -> String { "nbd+unix:///\(name)?socket=\(nbdSocket)" }

    /// The `metactl` built next to the test bundle (any scratch path).
    static var binary: String? {
        var candidates: [String] = []
        var u = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<5 {
            u = u.deletingLastPathComponent()
            candidates.append(u.appendingPathComponent("metactl").path)
        }
        candidates.append(URL(fileURLWithPath: Bundle.main.bundlePath).deletingLastPathComponent().appendingPathComponent("metactl").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    var environment: [String: String] {
        ["METACTL_CONFIG_DIR": configDir, "METACTL_RUN_DIR": runDir, "METACTL_LOCK_TIMEOUT": "120"]
    }

    @discardableResult
    func run(_ args: [String]) throws -> CommandResult {
        guard let bin = Self.binary else { throw TestSupportError("metactl binary not found next to the test bundle") }
        return try runCommand([bin] + args, environment: environment)
    }

    @discardableResult
    func ok(_ args: [String]) throws -> String {
        let r = try run(args)
        guard r.ok else { throw TestSupportError("metactl \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)") }
        return r.stdout
    }

    /// `status --json` of one volume.
    func volume(_ name: String) throws -> [String: Any] {
        let out = try ok(["status", "--json", name])
        guard let doc = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
              let vols = doc["volumes"] as? [[String: Any]], let v = vols.first else {
            throw TestSupportError("bad status JSON: \(out)")
        }
        return v
    }

    func size(_ name: String) throws -> Int { try volume(name)["sizeBytes"] as? Int ?? -1 }

    /// Starts `metactl serve` (stderr to a log file); returns once it listens.
    func serve(extraEnvironment: [String: String] = [:]) throws -> GrowServer {
        try GrowServer(cli: self, extraEnvironment: extraEnvironment)
    }

    /// Checks RAID-5 parity directly on the image files: every line of every column XORs to zero.
    func raid5ParityErrors(_ name: String) throws -> Int {
        let v = try volume(name)
        guard let comps = v["components"] as? [[String: Any]], let il = v["interlaceBytes"] as? Int,
              let orig = v["originalColumns"] as? Int, let size = v["sizeBytes"] as? Int else {
            throw TestSupportError("status JSON lacks RAID-5 fields")
        }
        let columnBytes = size / (orig - 1 + comps.count - orig)
        var acc = [UInt64](repeating: 0, count: columnBytes / 8)
        for c in comps {
            guard let p = c["device"] as? String, let s = c["startBlock"] as? Int, let h = FileHandle(forReadingAtPath: p) else {
                throw TestSupportError("cannot open a column")
            }
            defer { try? h.close() }
            try h.seek(toOffset: UInt64(s * 512))
            let d = try h.read(upToCount: columnBytes) ?? Data()
            guard d.count == columnBytes else { throw TestSupportError("short read of column \(p)") }
            d.withUnsafeBytes { raw in
                for i in 0..<acc.count { acc[i] ^= raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) }
            }
        }
        var bad = 0
        let wordsPerLine = il / 8
        for line in 0..<(acc.count / wordsPerLine) where acc[(line * wordsPerLine)..<((line + 1) * wordsPerLine)].contains(where: { $0 != 0 }) {
            bad += 1
        }
        return bad
    }
}

/// A `metactl serve` child process; killed (SIGKILL) when dropped if still running.
final class GrowServer: @unchecked Sendable {
    let process = Process()
    let logPath: String
    let cli: GrowCLI

    init(cli: GrowCLI, extraEnvironment: [String: String]) throws {
        guard let bin = GrowCLI.binary else { throw TestSupportError("metactl binary not found") }
        self.cli = cli
        try FileManager.default.createDirectory(atPath: cli.runDir, withIntermediateDirectories: true)
        let pidFile = "\(cli.runDir)/local.pid"
        try? FileManager.default.removeItem(atPath: pidFile)
        logPath = cli.dir.file("serve-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = ["serve"]
        process.environment = ProcessInfo.processInfo.environment.merging(cli.environment.merging(extraEnvironment) { $1 }) { $1 }
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: pidFile) {
            guard process.isRunning else { throw TestSupportError("metactl serve exited: \(log)") }
            guard Date() < deadline else { kill9(); throw TestSupportError("metactl serve did not start: \(log)") }
            usleep(20_000)
        }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until the log contains `text` (or the server exits).
    func waitForLog(_ text: String) throws {
        let deadline = Date().addingTimeInterval(300)
        while !log.contains(text) {
            guard process.isRunning else { throw TestSupportError("server exited before logging '\(text)': \(log)") }
            guard Date() < deadline else { throw TestSupportError("server never logged '\(text)': \(log)") }
            usleep(20_000)
        }
    }

    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// SIGTERM and wait: a clean shutdown.
    func stop() -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { kill9() }
}

/// A `metactl` command running in the background.
final class GrowBackgroundCommand: @unchecked Sendable {
    let process = Process()
    let out: String
    init(_ cli: GrowCLI, _ args: [String]) throws {
        guard let bin = GrowCLI.binary else { throw TestSupportError("metactl binary not found") }
        out = cli.dir.file("cmd-\(UUID().uuidString.prefix(8)).out")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = args
        process.environment = ProcessInfo.processInfo.environment.merging(cli.environment) { $1 }
        let h = FileHandle(forWritingAtPath: out)
        process.standardOutput = h
        process.standardError = h
        try process.run()
    }
    func wait() -> (Int32, String) {
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }
    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
}

/// Random bytes from a seed (reproducible patterns).
func growPattern(_ count: Int, seed: UInt64) -> Data {
    var s = seed &+ 0x9E37_79B9_7F4A_7C15
    var d = Data(count: count)
    d.withUnsafeMutableBytes { raw in
        let p = raw.bindMemory(to: UInt8.self)
        var i = 0
        while i < count {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            for k in 0..<8 where i + k < count { p[i + k] = UInt8(truncatingIfNeeded: z >> (8 * UInt64(k))) }
            i += 8
        }
    }
    return d
}

@Suite("metactl grow", .enabled(if: GrowCLI.binary != nil))
struct GrowTests {
    static let imageSize: UInt64 = 16 << 20

    /// Creates a volume of `type` on three images; returns the CLI and the created images.
    func makeVolume(_ t: TempDir, _ type: String) throws -> GrowCLI {
        let cli = GrowCLI(dir: t)
        let imgs = try ["a", "b", "c"].map { try t.image("\($0).img", size: Self.imageSize) }
        var args = ["create", "d0", type]
        if type == "raid5" { args.append("--no-init") }
        if type == "stripe" { args += ["-i", "32k"] }
        try cli.ok(args + imgs)
        return cli
    }

    /// Writes `data` over the start of the volume through the server, with nbdcopy.
    func writeThroughServer(_ cli: GrowCLI, _ data: Data, name: String = "d0") throws {
        let f = cli.dir.file("in-\(UUID().uuidString.prefix(6)).bin")
        try data.write(to: URL(fileURLWithPath: f))
        try mustRun(["nbdcopy", f, cli.uri(name)])
        try? FileManager.default.removeItem(atPath: f)
    }

    /// Reads the whole volume through the server.
    func readThroughServer(_ cli: GrowCLI, name: String = "d0") throws -> Data {
        let f = cli.dir.file("out-\(UUID().uuidString.prefix(6)).bin")
        try mustRun(["nbdcopy", cli.uri(name), f])
        defer { try? FileManager.default.removeItem(atPath: f) }
        return try Data(contentsOf: URL(fileURLWithPath: f))
    }

    func nbdSize(_ cli: GrowCLI, name: String = "d0") throws -> Int {
        Int(try mustRun(["nbdinfo", "--size", cli.uri(name)]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test("grow each type while served: old data intact, new space usable, new connections see the new size",
          .enabled(if: Privileged.runnable(tools: ["nbdcopy", "nbdinfo"])),
          arguments: ["concat", "stripe", "raid5"])
    func growServed(_ type: String) throws {
        let t = try TempDir(prefix: "grow-\(type)")
        let cli = try makeVolume(t, type)
        let server = try cli.serve()
        defer { server.kill9() }
        let oldSize = try cli.size("d0")
        let old = growPattern(oldSize, seed: 1)
        try writeThroughServer(cli, old)
        #expect(try nbdSize(cli) == oldSize)

        let added = type == "raid5" ? ["d", "e"] : (type == "stripe" ? ["d", "e"] : ["d"])
        let imgs = try added.map { try t.image("\($0).img", size: Self.imageSize) }
        let out = try cli.ok(["grow", "d0"] + imgs)
        #expect(out.contains("grown from"))
        let newSize = try cli.size("d0")
        let expectedGain: Int
        switch type {
        case "raid5": expectedGain = 2 * (oldSize / 2) // two more columns of the same size
        case "stripe": expectedGain = 2 * (15 << 20)   // 16 MiB images, 1 MiB label area
        default: expectedGain = 15 << 20
        }
        #expect(newSize == oldSize + expectedGain)
        #expect(try nbdSize(cli) == newSize)
        let back = try readThroughServer(cli)
        #expect(back.count == newSize)
        #expect(back.prefix(oldSize) == old, "old data changed by the grow")
        if type == "raid5" { #expect(back.suffix(from: oldSize) == Data(count: newSize - oldSize)) }
        // The whole new size is writable and reads back.
        var full = old
        full.append(growPattern(newSize - oldSize, seed: 2))
        try writeThroughServer(cli, full)
        #expect(try readThroughServer(cli) == full)
        #expect(server.stop() == 0)
        // Without the server: same geometry from the state database, parity clean.
        #expect(try cli.size("d0") == newSize)
        if type == "raid5" {
            #expect(try cli.raid5ParityErrors("d0") == 0)
            let comps = try cli.volume("d0")["components"] as? [[String: Any]]
            #expect(comps?.count == 5)
            #expect(try cli.volume("d0")["originalColumns"] as? Int == 3)
        }
        // status -p recreates the grown volume: create + grow lines.
        let p = try cli.ok(["status", "-p", "d0"])
        if type == "concat" {
            // A concat grown by one device is a longer concat: one create recreates it.
            #expect(p.contains("# metactl create d0 concat ") && p.contains("/d.img"))
        } else {
            #expect(p.contains("# metactl grow d0 ") && p.contains("/d.img"))
        }
        if type == "raid5" { #expect(p.contains(" -o 3")) }
    }

    @Test("grow a RAID-5 and a stripe while fio verifies on a connection that stays open",
          .enabled(if: Privileged.runnable(tools: ["fio", "nbdinfo"])),
          arguments: ["stripe", "raid5"])
    func growUnderFio(_ type: String) throws {
        let t = try TempDir(prefix: "grow-fio")
        let cli = try makeVolume(t, type)
        let server = try cli.serve()
        defer { server.kill9() }
        let oldSize = try cli.size("d0")
        let fio = Process()
        fio.executableURL = URL(fileURLWithPath: Privileged.which("fio") ?? "/usr/bin/fio")
        fio.arguments = ["--name=growverify", "--ioengine=nbd", "--uri=\(cli.uri("d0"))", "--rw=randwrite", "--bs=4k",
                         "--size=8m", "--iodepth=8", "--verify=crc32c", "--verify_fatal=1", "--verify_backlog=64",
                         "--time_based", "--runtime=6", "--verify_state_save=0", "--output-format=json"]
        let fioOut = t.file("fio.json")
        _ = FileManager.default.createFile(atPath: fioOut, contents: nil)
        fio.standardOutput = FileHandle(forWritingAtPath: fioOut)
        _ = FileManager.default.createFile(atPath: t.file("fio.err"), contents: nil)
        fio.standardError = FileHandle(forWritingAtPath: t.file("fio.err"))
        try fio.run()
        defer { if fio.isRunning { kill(fio.processIdentifier, SIGKILL); fio.waitUntilExit() } }
        // Grow once fio is connected.
        while (try cli.volume("d0")["openCount"] as? Int ?? 0) < 1 {
            guard fio.isRunning else { break }
            usleep(50_000)
        }
        #expect(fio.isRunning, "fio ended before the grow")
        let imgs = try ["d", "e"].map { try t.image("\($0).img", size: Self.imageSize) }
        try cli.ok(["grow", "d0"] + imgs)
        let newSize = try cli.size("d0")
        #expect(newSize > oldSize)
        // A new connection sees the new size while fio's connection is still open.
        #expect(try nbdSize(cli) == newSize)
        let stillOpen = fio.isRunning
        fio.waitUntilExit()
        #expect(stillOpen, "fio's connection should still have been open during the grow")
        let text = (try? String(contentsOfFile: fioOut, encoding: .utf8)) ?? ""
        #expect(fio.terminationStatus == 0, "fio failed: \(text) \((try? String(contentsOfFile: t.file("fio.err"), encoding: .utf8)) ?? "")")
        let json = text.firstIndex(of: "{").map { String(text[$0...]) } ?? text
        let doc = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        let job = (doc?["jobs"] as? [[String: Any]])?.first
        #expect(job?["error"] as? Int == 0)
        #expect(((job?["read"] as? [String: Any])?["io_bytes"] as? Int ?? 0) > 0, "fio verified nothing")
        #expect(server.stop() == 0)
        if type == "raid5" { #expect(try cli.raid5ParityErrors("d0") == 0) }
    }

    @Test("refusals: one line each, nothing changed")
    func refusals() throws {
        let t = try TempDir(prefix: "grow-refuse")
        let cli = try makeVolume(t, "raid5")
        let stripe = GrowCLI(dir: t)
        let s1 = try t.image("s1.img", size: Self.imageSize)
        try stripe.ok(["create", "s0", "stripe", "-i", "32k", s1, try t.image("s2.img", size: Self.imageSize)])
        let small = try t.image("small.img", size: 8 << 20)
        let d = try t.image("d.img", size: Self.imageSize)
        let before = try cli.ok(["status", "--json"])
        func refused(_ args: [String], _ text: String) throws {
            let r = try cli.run(args)
            #expect(!r.ok, "\(args) should fail")
            #expect(r.stderr.contains(text), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
            #expect(try cli.ok(["status", "--json"]) == before, "\(args) changed the set")
        }
        try refused(["grow", "nosuch", d], "nosuch: no such volume")
        try refused(["grow", "d0", "-i", "64k", d], "interlace is fixed")
        try refused(["grow", "d0", small], "too small for a column of d0")
        try refused(["grow", "d0", d, d], "given twice")
        try refused(["grow", "d0", t.file("a.img")], "a.img: is already a component of d0 in set 'local'")
        try refused(["grow", "d0", t.file("missing.img")], "missing.img")
        try refused(["grow", "d0", "--cancel"], "no interrupted grow")
        try refused(["grow", "d0"], "no devices given")
        try refused(["grow", "d0"] + (0..<30).map { t.file("x\($0).img") }, "limit of 32 columns")
        try refused(["grow", "s0", "-i", "32k", d], "-i applies to a stripe row of two or more")
        try refused(["grow", "s0", "-i", "1k", d, small], "s0: -i")
        // A file system on the new device: refused without --force.
        try mustRun(["mkfs.ext4", "-q", "-F", d])
        try refused(["grow", "d0", d], "d.img")
        // An initialising RAID-5 (parity init runs when served) refuses to grow.
        let i = try ["i1", "i2", "i3"].map { try t.image("\($0).img", size: Self.imageSize) }
        try cli.ok(["create", "d1", "raid5"] + i)
        let before2 = try cli.ok(["status", "--json"])
        let r = try cli.run(["grow", "d1", try t.image("e.img", size: Self.imageSize)])
        #expect(!r.ok && r.stderr.contains("Initializing"), "\(r.stderr)")
        #expect(try cli.ok(["status", "--json"]) == before2)
        // With --force the signature is overwritten and the grow works.
        try cli.ok(["grow", "--force", "d0", d])
        #expect(try cli.raid5ParityErrors("d0") == 0)
    }

    enum KillPoint: String, CaseIterable, Sendable { case midZeroing, beforeCommit, afterCommit, cancelAfterCrash }

    @Test("kill -9 during a RAID-5 grow: old or new geometry, data intact, the grow completes when repeated",
          .enabled(if: Privileged.runnable(tools: ["nbdcopy"])),
          arguments: KillPoint.allCases)
    func killDuringGrow(_ point: KillPoint) throws {
        let t = try TempDir(prefix: "grow-kill")
        let cli = try makeVolume(t, "raid5")
        let oldSize = try cli.size("d0")
        let data = growPattern(oldSize, seed: 7)
        do {
            let s = try cli.serve()
            defer { s.kill9() }
            try writeThroughServer(cli, data)
            #expect(s.stop() == 0)
        }
        let imgs = try ["d", "e"].map { try t.image("\($0).img", size: 48 << 20) }
        let server = try cli.serve(extraEnvironment: ["METACTL_TEST_GROW_PAUSE": "0.5"])
        defer { server.kill9() }
        let grow = try GrowBackgroundCommand(cli, ["grow", "d0"] + imgs)
        switch point {
        case .midZeroing, .cancelAfterCrash: try server.waitForLog("d0: grow: zeroed 4096 of")
        case .beforeCommit: try server.waitForLog("d0: grow: zeroing complete")
        case .afterCommit: try server.waitForLog("d0: grow: committed")
        }
        server.kill9()
        let (status, _) = grow.wait()
        #expect(status != 0) // the client lost its server

        // Restart: old or new geometry, never a mix.
        let again = try cli.serve()
        defer { again.kill9() }
        let v = try cli.volume("d0")
        let cols = (v["components"] as? [[String: Any]])?.count
        let size = v["sizeBytes"] as? Int
        if point == .afterCommit {
            #expect(cols == 5 && size == 2 * oldSize)
        } else {
            #expect(cols == 3 && size == oldSize)
            #expect(again.log.contains("was interrupted"), "the interrupted grow is not reported: \(again.log)")
        }
        let back = try readThroughServer(cli)
        #expect(back.prefix(oldSize) == data, "data changed by the crash")

        switch point {
        case .afterCommit:
            // Committed: repeating it is refused (the devices are members now).
            let r = try cli.run(["grow", "d0"] + imgs)
            #expect(!r.ok && r.stderr.contains("is already a component of d0"), "\(r.stderr)")
        case .midZeroing, .beforeCommit:
            let out = try cli.run(["grow", "d0"] + imgs)
            #expect(out.ok, "\(out.stderr)")
            #expect(out.stderr.contains("resuming the interrupted grow"))
        case .cancelAfterCrash:
            // Another device instead: refused while the interrupted grow is pending…
            let f = try t.image("f.img", size: Self.imageSize)
            let other = try cli.run(["grow", "d0", f])
            #expect(!other.ok && other.stderr.contains("--cancel"), "\(other.stderr)")
            // …cancel releases the devices (labels wiped), and they can be used again.
            try cli.ok(["grow", "d0", "--cancel"])
            #expect(SetDatabase.readLabel(path: imgs[0]) == nil && SetDatabase.readLabel(path: imgs[1]) == nil)
            try cli.ok(["grow", "d0", imgs[1], imgs[0]])
        }
        let final = try cli.volume("d0")
        #expect(final["sizeBytes"] as? Int == 2 * oldSize)
        #expect(final["state"] as? String == "Okay")
        let all = try readThroughServer(cli)
        #expect(all.prefix(oldSize) == data)
        #expect(all.suffix(from: oldSize) == Data(count: all.count - oldSize))
        #expect(again.stop() == 0)
        #expect(try cli.raid5ParityErrors("d0") == 0)
        // The set opens clean: nothing pending is reported any more.
        let st = try cli.run(["status", "d0"])
        #expect(!st.stderr.contains("interrupted"))
    }

    @Test("ext4 on a served RAID-5 through nbdfuse + loop: grow, re-attach, resize2fs, fsck clean, files intact",
          .enabled(if: Privileged.fuseRunnable
                   && Privileged.runnable(tools: ["nbdfuse", "fusermount3", "losetup", "mkfs.ext4", "mount", "umount",
                                                  "e2fsck", "resize2fs"])))
    func ext4EndToEnd() throws {
        let t = try TempDir(prefix: "grow-ext4")
        let cli = try makeVolume(t, "raid5")
        let server = try cli.serve()
        defer { server.kill9() }
        let fuseDir = t.file("fuse"), mnt = t.file("mnt")
        try FileManager.default.createDirectory(atPath: fuseDir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        var fuse: Process?
        var loop: LoopDevice?
        var mounted = false
        func cleanup() {
            if mounted { _ = try? runCommand(["umount", mnt]); mounted = false }
            loop?.detach(); loop = nil
            if let f = fuse {
                _ = try? runCommand(["fusermount3", "-u", fuseDir])
                if f.isRunning { kill(f.processIdentifier, SIGTERM) }
                f.waitUntilExit()
                fuse = nil
            }
        }
        defer { cleanup() }
        func attach() throws -> String {
            let pidFile = t.file("nbdfuse-\(UUID().uuidString.prefix(6)).pid")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Privileged.which("nbdfuse") ?? "/usr/bin/nbdfuse")
            p.arguments = ["-P", pidFile, fuseDir, cli.uri("d0")]
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            fuse = p
            while !FileManager.default.fileExists(atPath: pidFile) {
                guard p.isRunning else { throw TestSupportError("nbdfuse exited with \(p.terminationStatus)") }
                usleep(20_000)
            }
            loop = try LoopDevice(file: "\(fuseDir)/nbd")
            return loop!.path
        }
        var dev = try attach()
        try mustRun(["mkfs.ext4", "-q", "-F", dev])
        try mustRun(["mount", dev, mnt])
        mounted = true
        var files: [String: Data] = [:]
        for i in 0..<6 {
            let d = growPattern(200_000 * (i + 1), seed: UInt64(100 + i))
            try d.write(to: URL(fileURLWithPath: "\(mnt)/f\(i).bin"))
            files["f\(i).bin"] = d
        }
        try mustRun(["sync"])
        let oldSize = try cli.size("d0")

        // Grow while the file system is mounted.
        let imgs = try ["d", "e"].map { try t.image("\($0).img", size: Self.imageSize) }
        try cli.ok(["grow", "d0"] + imgs)
        let newSize = try cli.size("d0")
        #expect(newSize == 2 * oldSize)

        // Pick the new size up: the nbdfuse file keeps the size its connection negotiated, so
        // reconnect it (unmount, detach, restart nbdfuse, attach; `losetup -c` refreshes the loop).
        try unmount(mnt); mounted = false
        cleanup()
        dev = try attach()
        try mustRun(["losetup", "-c", dev])
        let bytes = Int(try mustRun(["blockdev", "--getsize64", dev]).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(bytes == newSize)
        try mustRun(["e2fsck", "-fn", dev])
        try mustRun(["e2fsck", "-fp", dev]) // records the check resize2fs wants (nothing to fix)
        try mustRun(["resize2fs", dev])
        try mustRun(["e2fsck", "-fn", dev])
        try mustRun(["mount", dev, mnt])
        mounted = true
        for i in 6..<9 {
            let d = growPattern(1_500_000, seed: UInt64(100 + i))
            try d.write(to: URL(fileURLWithPath: "\(mnt)/f\(i).bin"))
            files["f\(i).bin"] = d
        }
        try mustRun(["sync"])
        try unmount(mnt); mounted = false
        try mustRun(["e2fsck", "-fn", dev])
        let blocks = try mustRun(["dumpe2fs", "-h", dev])
        let count = blocks.split(separator: "\n").first { $0.hasPrefix("Block count:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        let bsz = blocks.split(separator: "\n").first { $0.hasPrefix("Block size:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        #expect(count * bsz > oldSize, "the file system did not grow")
        try mustRun(["mount", "-o", "ro", dev, mnt])
        mounted = true
        for (n, d) in files {
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(mnt)/\(n)")) == d, "\(n) differs")
        }
        cleanup()
        #expect(server.stop() == 0)
        #expect(try cli.raid5ParityErrors("d0") == 0)
    }
}
