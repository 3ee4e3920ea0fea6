import Foundation
import MetaCommands
import MetaControl
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `metactl map` / `metactl unmap` end to end with the built binary: a served RAID-5 mapped
/// to a real loop device (nbdfuse and nbdkit underneath), ext4 on it, the server restarted
/// and killed under the mounted file system.
@Suite("metactl map and unmap")
struct MapTests {
    static let tools = ["nbdfuse", "nbdkit", "fusermount3", "losetup", "mkfs.ext4", "mount", "umount", "e2fsck", "dd"]
    static var runnable: Bool { Privileged.fuseRunnable && Privileged.runnable(tools: tools) }

    /// A served RAID-5 of four images.
    static func served(set: String = "local") throws -> (ServeFixture, ServeProcess) {
        let f = try ServeFixture(set: set, prefix: "metactl-map")
        try f.create("d10", "raid5", try f.images("r", count: 4, size: 24 << 20))
        return (f, try f.startServer())
    }

    /// Tears down whatever a test left mapped, whatever state it is in: the file system
    /// mounted on `mnt` (lazily), then `unmap --force`, then the recorded helpers by PID.
    static func forceCleanup(_ f: ServeFixture, mnt: String?) {
        if let mnt, isMountPoint(mnt) { _ = try? runCommand(["umount", "-l", mnt]) }
        let maps = (try? MapStore.load(runDir: f.runDir, set: f.set)) ?? []
        for m in maps {
            _ = try? f.run(["unmap", "--force", m.volume])
            for h in m.helpers where h.isRunning { kill(h.pid, SIGKILL) }
            if isMountPoint(m.mountDir) { _ = try? runCommand(["fusermount3", "-u", "-z", m.mountDir]) }
        }
    }

    static func isMountPoint(_ path: String) -> Bool {
        let text = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first.map(String.init) == path }
    }

    static func loopBackingFile(_ dev: String) -> String? {
        let name = (dev as NSString).lastPathComponent
        return (try? String(contentsOfFile: "/sys/block/\(name)/loop/backing_file", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Processes (not zombies) whose command line mentions `text`.
    static func processes(mentioning text: String) -> [Int32] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        return pids.filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let state = stat[stat.index(after: close)...].split(separator: " ").first
            return state != "Z" && String(decoding: data, as: UTF8.self).contains(text)
        }
    }

    /// Starts `argv` in the background (output discarded).
    static func background(_ argv: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Privileged.which(argv[0]) ?? argv[0])
        p.arguments = Array(argv.dropFirst())
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Waits (bounded) for `p`; kills it when it overstays. Returns its exit status, nil when killed.
    static func wait(_ p: Process, limit: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(limit)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); return nil }
        p.waitUntilExit()
        return p.terminationStatus
    }

    // MARK: the fallback path, end to end

    @Test(.enabled(if: runnable, "needs root, /dev/loop-control, /dev/fuse and \(tools.joined(separator: ", "))"))
    func ext4OnMappedVolumeSurvivesServerRestartsAndUnmapLeavesNothing() throws {
        let (f, server) = try Self.served()
        let mnt = f.dir.file("mnt")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        defer { Self.forceCleanup(f, mnt: mnt); f.cleanup() }

        let r = try f.run(["map", "d10"])
        #expect(r.status == 0, "\(r.stderr)")
        let dev = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(dev.hasPrefix("/dev/loop"), "map printed \(r.stdout)")
        #expect(r.stderr.contains("mapped through nbdfuse and a loop device"), "\(r.stderr)")
        let rec = try #require(try MapStore.load(runDir: f.runDir, set: f.set).first)
        #expect(rec.volume == "d10" && rec.device == dev && rec.helpers.map(\.name) == ["nbdfuse", "nbdkit"])
        #expect(rec.helpers.allSatisfy { $0.isRunning })
        #expect(Self.loopBackingFile(dev) == rec.backingFile)
        // Direct I/O on the loop device: every request reaches the server.
        #expect(try MetaTestSupport.mustRun(["losetup", "--noheadings", "-O", "DIO", dev]).contains("1"))

        // status shows it (text and JSON); a second map is refused naming the device.
        #expect(try f.mustRun(["status", "d10"]).contains("    Mapped: \(dev) (nbdfuse and a loop device)"))
        let vol = try #require((try f.statusJSON()["volumes"] as? [[String: Any]])?.first)
        let mapped = try #require(vol["mapped"] as? [String: Any])
        #expect(mapped["device"] as? String == dev && mapped["via"] as? String == "nbdfuse" && mapped["readOnly"] as? Bool == false)
        let again = try f.run(["map", "d10"])
        #expect(again.status == 3)
        #expect(again.stderr == "metactl: d10: already mapped to \(dev) (unmap it first: `metactl unmap d10`)\n")

        // ext4 on it, files written.
        try MetaTestSupport.mustRun(["mkfs.ext4", "-q", "-F", dev])
        try MetaTestSupport.mustRun(["mount", dev, mnt])
        var written: [String: Data] = [:]
        for i in 0..<4 { written["f\(i)"] = try writeRandomFile("\(mnt)/f\(i)", size: (i + 1) * 900_000 + 77) }
        try MetaTestSupport.mustRun(["sync", "-f", "\(mnt)/f0"])

        // Mounted: unmap refuses with one line and changes nothing.
        let busy = try f.run(["unmap", "d10"])
        #expect(busy.status == 3)
        #expect(busy.stderr == "metactl: d10: \(dev) is in use (mounted on \(mnt)): unmount it first, or `metactl unmap d10 --force`\n")
        #expect(Self.loopBackingFile(dev) == rec.backingFile && rec.helpers.allSatisfy { $0.isRunning })

        // The server goes away (SIGTERM, then kill -9) and comes back under the mounted file
        // system; I/O issued while it is away waits for it and succeeds.
        var servers = [server]
        for (round, sig) in [(0, SIGTERM), (1, SIGKILL)] {
            let src = f.dir.file("during\(round).src")
            written["during\(round)"] = try writeRandomFile(src, size: 3_000_000 + round)
            let stopped = servers.last!.stop(signal: sig)
            #expect(sig == SIGKILL || stopped == 0, "server exit")
            let writer = try Self.background(["dd", "if=\(src)", "of=\(mnt)/during\(round)", "bs=256k", "conv=fsync"])
            let reader = try Self.background(["dd", "if=\(mnt)/f\(round)", "of=\(f.dir.file("readback\(round)"))",
                                              "bs=64k", "iflag=direct"])
            usleep(2_000_000)
            #expect(writer.isRunning, "the write (with fsync) finished while the server was away")
            servers.append(try f.startServer())
            #expect(Self.wait(writer, limit: 120) == 0, "round \(round): write during the outage failed")
            #expect(Self.wait(reader, limit: 120) == 0, "round \(round): direct read during the outage failed")
            #expect(try Data(contentsOf: URL(fileURLWithPath: f.dir.file("readback\(round)"))) == written["f\(round)"])
            #expect(rec.helpers.allSatisfy { $0.isRunning }, "round \(round): the mapping's helpers died")
        }
        // More writes on the restarted server, then everything verifies.
        written["after"] = try writeRandomFile("\(mnt)/after", size: 1_500_000)
        for (name, data) in written {
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(mnt)/\(name)")) == data, "\(name)")
        }
        try MetaTestSupport.unmount(mnt)
        try MetaTestSupport.mustRun(["e2fsck", "-fn", dev])

        // Unmap by device: no loop device, no FUSE mount, no helper, no record left.
        let un = try f.run(["unmap", dev])
        #expect(un.status == 0, "\(un.stderr)")
        #expect(un.stdout == "d10: unmapped from \(dev)\n")
        #expect(Self.loopBackingFile(dev) != rec.backingFile)
        #expect(!Self.isMountPoint(rec.mountDir))
        #expect(!rec.helpers.contains { $0.isRunning })
        #expect(Self.processes(mentioning: f.runDir).filter { pid in !servers.contains { $0.pid == pid } }.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: MapStore.path(runDir: f.runDir, set: f.set)))
        #expect(!FileManager.default.fileExists(atPath: rec.mountDir))
        #expect(try f.statusJSON()["volumes"].flatMap { ($0 as? [[String: Any]])?.first?["mapped"] } is NSNull)
        #expect(servers.last!.stop() == 0, "log:\n\(servers.last!.log)")
    }

    @Test(.enabled(if: runnable, "needs root, /dev/loop-control, /dev/fuse and \(tools.joined(separator: ", "))"))
    func readOnlyMapRefusesWritesAndUnmapForceTearsDownAMountedDevice() throws {
        let (f, server) = try Self.served(set: "gs")
        let mnt = f.dir.file("mnt")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        defer { Self.forceCleanup(f, mnt: mnt); f.cleanup() }
        // A file system first, through a writable mapping.
        let dev = try f.mustRun(["map", "d10"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try MetaTestSupport.mustRun(["mkfs.ext4", "-q", "-F", dev])
        #expect(try f.mustRun(["unmap", "d10"]) == "d10: unmapped from \(dev)\n")

        let r = try f.run(["map", "--read-only", "d10"])
        #expect(r.status == 0, "\(r.stderr)")
        let ro = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try MetaTestSupport.mustRun(["blockdev", "--getro", ro]).hasPrefix("1"))
        #expect(try f.mustRun(["status", "d10"]).contains("    Mapped: \(ro) read-only (nbdfuse and a loop device)"))
        let write = try runCommand(["dd", "if=/dev/zero", "of=\(ro)", "bs=4096", "count=1", "oflag=direct"])
        #expect(write.status != 0)
        try MetaTestSupport.mustRun(["mount", "-o", "ro", ro, mnt])
        #expect(FileManager.default.fileExists(atPath: "\(mnt)/lost+found"))
        let rec = try #require(try MapStore.load(runDir: f.runDir, set: f.set).first)
        // --force while mounted: torn down all the same, nothing left but the mount (whose
        // reads now fail).
        let forced = try f.run(["unmap", "--force", "d10"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(!rec.helpers.contains { $0.isRunning })
        #expect(!Self.isMountPoint(rec.mountDir))
        #expect(try MapStore.load(runDir: f.runDir, set: f.set).isEmpty)
        _ = try? runCommand(["umount", "-l", mnt])
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }

    @Test(.enabled(if: runnable, "needs root, /dev/loop-control, /dev/fuse and \(tools.joined(separator: ", "))"))
    func aFailingLosetupLeavesNothingBehind() throws {
        let (f, server) = try Self.served()
        defer { Self.forceCleanup(f, mnt: nil); f.cleanup() }
        // A losetup that fails, found first on PATH: nbdfuse and nbdkit are up by then.
        let bin = f.dir.file("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let fake = "\(bin)/losetup"
        try "#!/bin/sh\necho 'losetup: injected failure' >&2\nexit 1\n".write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let r = try runCommand([f.metactl, "map", "d10"], environment: f.environment.merging(["PATH": path]) { $1 })
        #expect(r.status == 1)
        #expect(r.stderr == "metactl: d10: losetup failed: losetup: injected failure\n")
        #expect(r.stdout.isEmpty)
        #expect(Self.processes(mentioning: f.runDir).filter { $0 != server.pid }.isEmpty)
        #expect(!Self.isMountPoint(MapStore.directory(runDir: f.runDir, set: f.set) + "/d10"))
        #expect(try MapStore.load(runDir: f.runDir, set: f.set).isEmpty)
        // A device that is not a loop device, and one in use, are refused before anything starts.
        let notLoop = try f.run(["map", "d10", f.dir.file("r0.img")])
        #expect(notLoop.status == 65)
        #expect(notLoop.stderr.hasPrefix("metactl: \(f.dir.file("r0.img")): not a loop device"))
        let other = try LoopDevice(file: f.dir.image("other.img", size: 1 << 20))
        defer { other.detach() }
        let inUse = try f.run(["map", "d10", other.path])
        #expect(inUse.status == 3)
        #expect(inUse.stderr == "metactl: \(other.path): in use (attached to \(other.backingFile))\n")
        // And a map that works afterwards, onto the device asked for: a free one (other
        // tests running at the same time may take a free device first: then try the next).
        other.detach()
        var asked = other.path
        var ok = try f.run(["map", "d10", asked])
        for _ in 0..<5 where ok.status == 3 && ok.stderr.contains("in use (attached to") {
            asked = try MetaTestSupport.mustRun(["losetup", "--find"]).trimmingCharacters(in: .whitespacesAndNewlines)
            ok = try f.run(["map", "d10", asked])
        }
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout == "\(asked)\n")
        #expect(try f.run(["unmap", "d10"]).status == 0)
        #expect(server.stop() == 0)
    }

    @Test(.enabled(if: runnable, "needs root, /dev/loop-control, /dev/fuse and \(tools.joined(separator: ", "))"))
    func aVolumeOn4096ByteSectorsMapsToA4096ByteSectorDevice() throws {
        let f = try ServeFixture(prefix: "metactl-map")
        let mnt = f.dir.file("mnt")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        let loops = try (0..<2).map { try LoopDevice(file: f.dir.image("c\($0).img", size: 24 << 20),
                                                    options: ["--direct-io=on", "-b", "4096"]) }
        var server: ServeProcess?
        defer {
            Self.forceCleanup(f, mnt: mnt)
            f.cleanup()
            loops.forEach { $0.detach() }
        }
        try f.create("d1", "concat", loops.map(\.path))
        server = try f.startServer()
        let dev = try f.mustRun(["map", "d1"]).trimmingCharacters(in: .whitespacesAndNewlines)
        // Smaller requests would be refused by the server (EINVAL): the device has its sector.
        #expect(try MetaTestSupport.mustRun(["blockdev", "--getss", dev]).hasPrefix("4096"))
        try MetaTestSupport.mustRun(["mkfs.ext4", "-q", "-F", dev])
        try MetaTestSupport.mustRun(["mount", dev, mnt])
        let data = try writeRandomFile("\(mnt)/x", size: 2_000_001)
        try MetaTestSupport.unmount(mnt)
        try MetaTestSupport.mustRun(["e2fsck", "-fn", dev])
        try MetaTestSupport.mustRun(["mount", "-o", "ro", dev, mnt])
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(mnt)/x")) == data)
        try MetaTestSupport.unmount(mnt)
        #expect(try f.mustRun(["unmap", "d1"]) == "d1: unmapped from \(dev)\n")
        #expect(server?.stop() == 0)
    }

    // MARK: serve --restore-maps, --unmap-on-exit

    /// Waits (bounded) until the server's log contains `text`.
    static func waitForLog(_ s: ServeProcess, _ text: String, limit: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(limit)
        while !s.log.contains(text) {
            if Date() > deadline || !s.isRunning { return false }
            usleep(50_000)
        }
        return true
    }

    @Test(.enabled(if: runnable, "needs root, /dev/loop-control, /dev/fuse and \(tools.joined(separator: ", "))"))
    func serveRestoresLostMappingsAndUnmapsOnExitOnlyWhenAsked() throws {
        let (f, first) = try Self.served()
        defer { Self.forceCleanup(f, mnt: nil); f.cleanup() }
        let dev = try f.mustRun(["map", "d10"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let rec = try #require(try MapStore.load(runDir: f.runDir, set: f.set).first)
        let data = (0..<65536).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try Data(data).write(to: URL(fileURLWithPath: f.dir.file("block")))
        try MetaTestSupport.mustRun(["dd", "if=\(f.dir.file("block"))", "of=\(dev)", "bs=64k", "oflag=direct", "conv=fsync"])

        // Default: a stopped server leaves the mapping standing.
        #expect(first.stop() == 0)
        #expect(rec.helpers.allSatisfy { $0.isRunning } && Self.loopBackingFile(dev) == rec.backingFile)

        // The mapping is lost (its helpers killed, the loop device detached, as after a crash
        // of the host's FUSE side); --restore-maps maps it again, on the same loop device when
        // it is still free (a test running alongside may have taken it: then on another).
        for h in rec.helpers { kill(h.pid, SIGKILL) }
        _ = try? runCommand(["losetup", "-d", dev])
        _ = try? runCommand(["fusermount3", "-u", "-z", rec.mountDir])
        let second = try f.startServer(["--restore-maps", "--unmap-on-exit"])
        #expect(Self.waitForLog(second, "d10: mapped again to /dev/loop"), "log:\n\(second.log)")
        let again = try #require(try MapStore.load(runDir: f.runDir, set: f.set).first)
        let dev2 = again.device
        #expect(second.log.contains("d10: mapped again to \(dev2) (nbdfuse and a loop device)"), "log:\n\(second.log)")
        #expect(again.helpers.allSatisfy { $0.isRunning } && again.helpers != rec.helpers)
        let back = f.dir.file("back")
        try MetaTestSupport.mustRun(["dd", "if=\(dev2)", "of=\(back)", "bs=64k", "count=1", "iflag=direct"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: back)) == Data(data))

        // --unmap-on-exit: stopping the server unmaps.
        #expect(second.stop() == 0, "log:\n\(second.log)")
        #expect(second.log.contains("d10: unmapped from \(dev2)"))
        #expect(!again.helpers.contains { $0.isRunning })
        #expect(Self.loopBackingFile(dev2) != again.backingFile)
        #expect(try MapStore.load(runDir: f.runDir, set: f.set).isEmpty)
    }

    // MARK: refusals that need no privileges

    @Test func mapNeedsAServerAndAKnownVolume() throws {
        let f = try ServeFixture(set: "gs", prefix: "metactl-map")
        defer { f.cleanup() }
        try f.create("d10", "concat", try f.images("c", count: 1, size: 20 << 20))
        let none = try f.run(["map", "d10"])
        #expect(none.status == 2)
        #expect(none.stderr == "metactl: set 'gs' is not served: map needs its server (start it: `metactl serve -s gs &`)\n")
        #expect(none.stdout.isEmpty)
        let notMapped = try f.run(["unmap", "d10"])
        #expect(notMapped.status == 2)
        #expect(notMapped.stderr == "metactl: d10: not mapped (set 'gs')\n")
        let byDevice = try f.run(["unmap", "/dev/loop99"])
        #expect(byDevice.stderr == "metactl: /dev/loop99: no volume of set 'gs' is mapped to it\n")
        let badTimeout = try f.run(["map", "--reconnect-timeout", "0", "d10"])
        #expect(badTimeout.status == 65)
        #expect(badTimeout.stderr == "metactl: --reconnect-timeout 0: expected 1 to 86400 seconds\n")
        // The hint works: the server it names starts, and then an unknown volume is named.
        let server = try f.startServer()
        let unknown = try f.run(["map", "d99"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr == "metactl: d99: no such volume in set 'gs'\n")
        #expect(server.stop() == 0)
    }

    // MARK: the kernel nbd driver

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/nbd0") && runnable,
                   "no /dev/nbd0 here (the nbd kernel module is not available): the kernel nbd path cannot be exercised"))
    func whereTheKernelDriverExistsMapSaysWhichPathItTook() throws {
        let (f, server) = try Self.served()
        defer { Self.forceCleanup(f, mnt: nil); f.cleanup() }
        let r = try f.run(["map", "d10"])
        #expect(r.status == 0, "\(r.stderr)")
        // metactl does not drive the kernel's nbd driver yet: it must say so, not pretend.
        #expect(r.stderr.contains("the kernel nbd driver is present, but metactl does not drive it yet: mapped through nbdfuse and a loop device"))
        #expect(try f.run(["unmap", "d10"]).status == 0)
        #expect(server.stop() == 0)
    }

    // MARK: status output

    @Test func statusShowsTheMappingInTextAndJSONAndLeavesMdTabAlone() throws {
        var report = StatusTests.make(StatusTests.mixedConfig())
        let plainMdTab = StatusFormatter.mdTab(report)
        let plainJSON = try JSONSerialization.jsonObject(with: Data(try StatusFormatter.json(report).utf8)) as? [String: Any]
        for v in (plainJSON?["volumes"] as? [[String: Any]]) ?? [] { #expect(v["mapped"] is NSNull) }
        let i = try #require(report.volumes.firstIndex { $0.name == "d10" })
        report.volumes[i].mapped = .init(device: "/dev/loop7", via: "nbdfuse", readOnly: true)
        #expect(StatusFormatter.report(report).contains("    Mapped: /dev/loop7 read-only (nbdfuse and a loop device)\n"))
        #expect(StatusFormatter.mdTab(report) == plainMdTab)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(try StatusFormatter.json(report).utf8)) as? [String: Any])
        let d10 = try #require((doc["volumes"] as? [[String: Any]])?.first { $0["name"] as? String == "d10" })
        let mapped = try #require(d10["mapped"] as? [String: Any])
        #expect(mapped["device"] as? String == "/dev/loop7" && mapped["via"] as? String == "nbdfuse")
        #expect(mapped["readOnly"] as? Bool == true)
        #expect(mapped.count == 3)
        #expect(try JSONDecoder().decode(StatusReport.self, from: Data(try StatusFormatter.json(report).utf8)) == report)
    }

    /// A server that requires TLS (PSK here): map connects with the client side's key,
    /// bytes written to the device come back through the server over TLS, a map without
    /// credentials is refused with one line, and the mapping keeps them for --restore-maps.
    @Test(.enabled(if: runnable && Privileged.runnable(tools: ["nbdcopy", "cmp"]), "needs root, /dev/loop-control, /dev/fuse and \(tools.joined(separator: ", "))"))
    func mapReachesAServerThatRequiresTLS() throws {
        let f = try ServeFixture(prefix: "metactl-maptls")
        defer { Self.forceCleanup(f, mnt: nil); f.cleanup() }
        try f.create("d0", "concat", try f.images("c", count: 1, size: 24 << 20))
        let psk = f.dir.file("keys.psk")
        var g = SystemRandomNumberGenerator()
        let hex = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
        try "alice:\(hex)\n".write(toFile: psk, atomically: true, encoding: .utf8)
        let server = try f.startServer(["--tls-psk", psk])

        let plain = try f.run(["map", "d0"])
        #expect(plain.status != 0)
        #expect(plain.stderr.split(separator: "\n").count == 1, "\(plain.stderr)")
        #expect(try MapStore.load(runDir: f.runDir, set: f.set).isEmpty, "nothing left of the refused map")

        let r = try f.run(["map", "d0", "--tls-psk", psk, "--tls-username", "alice"])
        #expect(r.status == 0, "\(r.stderr)")
        let dev = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(dev.hasPrefix("/dev/loop"), "\(r.stdout)")
        let rec = try #require(try MapStore.load(runDir: f.runDir, set: f.set).first)
        #expect(rec.tls == MapTLS(psk: psk, username: "alice"))
        let data = f.dir.file("data")
        _ = try writeRandomFile(data, size: 4 << 20)
        _ = try MetaTestSupport.mustRun(["dd", "if=\(data)", "of=\(dev)", "bs=1M", "oflag=direct", "conv=fsync", "status=none"])
        let back = f.dir.file("back")
        _ = try MetaTestSupport.mustRun(["nbdcopy", "nbds+unix://alice@/d0?socket=\(f.socketPath)&tls-psk-file=\(psk)", back])
        _ = try MetaTestSupport.mustRun(["cmp", "-n", "\(4 << 20)", data, back])
        #expect(try f.mustRun(["unmap", "d0"]) == "d0: unmapped from \(dev)\n")
        #expect(server.stop() == 0)
    }
}
