import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `metactl serve` end to end: the built binary serves volumes on image files, and real NBD
/// clients (libnbd's tools, qemu-img, fio, nbdfuse + a loop device + ext4) use them.
@Suite("metactl serve end to end")
struct ServeTests {
    /// 16 MiB images: 5 MiB go to the label and the state database replica, 11 MiB to data.
    static let imageSize: UInt64 = 20 << 20

    /// A RAID-5 of four images and a stripe of two, served.
    static func raidAndStripe(init initialise: Bool = true) throws -> ServeFixture {
        let f = try ServeFixture()
        try f.create("d10", "raid5", try f.images("r", count: 4, size: imageSize), extra: initialise ? [] : ["--no-init"])
        try f.create("d20", "stripe", try f.images("s", count: 2, size: imageSize), extra: ["-i", "64k"])
        return f
    }

    static func volumeSizes(_ f: ServeFixture) throws -> [String: Int] {
        let vols = try #require(try f.statusJSON()["volumes"] as? [[String: Any]])
        var out: [String: Int] = [:]
        for v in vols { if let n = v["name"] as? String, let s = v["sizeBytes"] as? Int { out[n] = s } }
        return out
    }

    // MARK: nbdinfo

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func nbdinfoShowsEachExportWithSizeBlockSizesAndFlags() throws {
        let f = try Self.raidAndStripe()
        try f.create("d30", "concat", try f.images("c", count: 1, size: Self.imageSize))
        defer { f.cleanup() }
        let sizes = try Self.volumeSizes(f)
        #expect(sizes.count == 3)
        try f.startServer()

        for (name, trim) in [("d10", false), ("d20", true), ("d30", true)] {
            let e = try nbdinfoJSON(f.uri(name))
            #expect(e["export-name"] as? String == name)
            #expect(e["export-size"] as? Int == sizes[name], "\(name) size")
            #expect((e["export-size"] as? Int ?? 0) > 0)
            #expect(e["block_size_minimum"] as? Int == 512, "\(name)")
            #expect((e["block_size_preferred"] as? Int ?? 0) >= 512, "\(name)")
            #expect((e["block_size_maximum"] as? Int ?? 0) >= 1 << 20, "\(name)")
            #expect(e["is_read_only"] as? Bool == false, "\(name)")
            #expect(e["can_flush"] as? Bool == true, "\(name)")
            #expect(e["can_fua"] as? Bool == true, "\(name)")
            #expect(e["can_multi_conn"] as? Bool == true, "\(name)")
            #expect(e["can_zero"] as? Bool == true, "\(name)")
            #expect(e["can_trim"] as? Bool == trim, "\(name) can_trim")
            #expect((e["description"] as? String ?? "").contains(name))
        }

        // Every volume is listed by name; with three, the empty name selects none.
        let list = try MetaTestSupport.mustRun(["nbdinfo", "--list", "--json", "nbd+unix://?socket=\(f.socketPath)"])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [String: Any])
        let exports = try #require(doc["exports"] as? [[String: Any]])
        #expect(Set(exports.compactMap { $0["export-name"] as? String }) == ["d10", "d20", "d30"])
        for e in exports {
            let n = e["export-name"] as? String ?? ""
            #expect(e["export-size"] as? Int == sizes[n], "\(n) in --list")
        }
        #expect(!(try runCommand(["nbdinfo", "--json", f.uri("")])).ok, "empty name with 3 volumes must fail")
        #expect(!(try runCommand(["nbdinfo", "--json", f.uri("nosuch")])).ok)
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func emptyExportNameSelectsTheOnlyVolume() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.create("d40", "stripe", try f.images("s", count: 2, size: Self.imageSize))
        try f.startServer()
        let e = try nbdinfoJSON("nbd+unix://?socket=\(f.socketPath)")
        #expect(e["export-size"] as? Int == (try Self.volumeSizes(f))["d40"])
        #expect(e["can_trim"] as? Bool == true)
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func exportsOnlyTheNamedVolumes() throws {
        let f = try Self.raidAndStripe(init: false)
        defer { f.cleanup() }
        try f.startServer(["d20"])
        #expect(try nbdinfoJSON(f.uri("d20"))["export-name"] as? String == "d20")
        #expect(!(try runCommand(["nbdinfo", "--json", f.uri("d10")])).ok, "d10 is not exported")
        // A name that is no volume is refused at start.
        let bad = try f.run(["serve", "--socket", f.dir.file("other.nbd"), "nosuch"])
        #expect(!bad.ok)
    }

    // MARK: data through real clients

    /// Served with each `--cache` mode; the restart always serves with O_DIRECT, so what the
    /// page-cache mode wrote must be in the files.
    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy", "sha256sum"])),
          arguments: ["d10", "d20"], ["none", "writeback"])
    func nbdcopyRoundTripSurvivesRestart(volume: String, cache: String) throws {
        let f = try Self.raidAndStripe()
        defer { f.cleanup() }
        let size = try #require(try Self.volumeSizes(f)[volume])
        let server = try f.startServer(["--cache", cache])
        let src = f.dir.file("in.bin"), out = f.dir.file("out.bin"), again = f.dir.file("again.bin")
        try writeRandomFile(src, size: size)
        try MetaTestSupport.mustRun(["nbdcopy", src, f.uri(volume)])
        try MetaTestSupport.mustRun(["nbdcopy", f.uri(volume), out])
        #expect(try sha256(out) == (try sha256(src)))

        // Through a clean restart, the data is still there.
        #expect(server.stop() == 0, "serve exit status; log:\n\(server.log)")
        try f.startServer()
        try MetaTestSupport.mustRun(["nbdcopy", f.uri(volume), again])
        #expect(try sha256(again) == (try sha256(src)))
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["qemu-img"])))
    func qemuImgConvertAndCompare() throws {
        let f = try Self.raidAndStripe()
        defer { f.cleanup() }
        let size = try #require(try Self.volumeSizes(f)["d10"])
        try f.startServer()
        let src = f.dir.file("src.raw"), back = f.dir.file("back.raw")
        // A partly sparse source: random data with a zero hole in the middle.
        var data = try writeRandomFile(src, size: size)
        data.replaceSubrange(size / 4..<size / 2, with: Data(count: size / 4))
        try data.write(to: URL(fileURLWithPath: src))
        let uri = f.uri("d10")
        try MetaTestSupport.mustRun(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, uri])
        try MetaTestSupport.mustRun(["qemu-img", "compare", "-f", "raw", "-F", "raw", src, uri])
        try MetaTestSupport.mustRun(["qemu-img", "convert", "-f", "raw", "-O", "raw", uri, back])
        #expect(try Data(contentsOf: URL(fileURLWithPath: back)) == data)
        // A difference of one sector is noticed (the comparison is real).
        var changed = data
        changed[size / 3] ^= 0xFF
        let other = f.dir.file("changed.raw")
        try changed.write(to: URL(fileURLWithPath: other))
        let differ = try runCommand(["qemu-img", "compare", "-f", "raw", "-F", "raw", other, uri])
        #expect(differ.status == 1, "compare of different images: \(differ.stdout) \(differ.stderr)")
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["fio"])))
    func fioConcurrentRandomWritesVerify() throws {
        let f = try Self.raidAndStripe()
        defer { f.cleanup() }
        let size = try #require(try Self.volumeSizes(f)["d10"])
        let perJob = 16 << 20
        #expect(size >= 2 * perJob)
        let server = try f.startServer()
        // Two jobs, two connections, each on its own 16 MiB region, while parity is being
        // initialised in the background.
        let r = try runCommand([
            "fio", "--name=serveverify", "--ioengine=nbd", "--uri=\(f.uri("d10"))",
            "--rw=randwrite", "--bs=4k", "--iodepth=16", "--numjobs=2", "--thread", "--size=16m", "--offset_increment=16m",
            "--verify=crc32c", "--verify_fatal=1", "--do_verify=1", "--verify_state_save=0",
            "--runtime=300", "--output-format=json",
        ])
        #expect(r.ok, "fio failed: \(r.stderr)\n\(r.stdout)")
        let text = r.stdout.firstIndex(of: "{").map { String(r.stdout[$0...]) } ?? r.stdout
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let jobs = try #require(doc["jobs"] as? [[String: Any]])
        #expect(jobs.count == 2)
        for j in jobs {
            #expect(j["error"] as? Int == 0)
            let w = try #require(j["write"] as? [String: Any]), rd = try #require(j["read"] as? [String: Any])
            #expect(w["io_bytes"] as? Int == perJob)
            #expect(rd["io_bytes"] as? Int == perJob, "verify read everything back")
        }
        #expect(server.isRunning)
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }

    /// Large sequential writes span several RAID-5 lines, so each request fans out over lines
    /// (each under its line lock) and then over columns; with several requests in flight the
    /// pieces of different requests meet in the engine's I/O pool. The server must keep
    /// answering (a hang here is a deadlock between line locks and the pool), and the data
    /// must be right afterwards.
    @Test(.enabled(if: Privileged.runnable(tools: ["fio", "nbdcopy"])))
    func raid5MultiLineWritesFromConcurrentRequestsNeverHang() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.create("d10", "raid5", try f.images("r", count: 4, size: Self.imageSize), extra: ["--no-init"])
        let size = try #require(try Self.volumeSizes(f)["d10"])
        let server = try f.startServer()
        let status = try runBounded([
            "fio", "--name=lines", "--ioengine=nbd", "--uri=\(f.uri("d10"))", "--rw=write", "--bs=1m",
            "--iodepth=8", "--numjobs=2", "--thread", "--size=\(size / 2 / (1 << 20))m", "--offset_increment=\(size / 2 / (1 << 20))m",
            "--time_based", "--runtime=5",
        ], limit: 180)
        #expect(status != nil, "fio did not finish: the server stopped answering; log:\n\(server.log)")
        #expect(status == 0)
        guard status != nil else { return }
        // Then a multi-connection copy of random data reads back identical.
        let src = f.dir.file("in.bin"), out = f.dir.file("out.bin")
        try writeRandomFile(src, size: size)
        #expect(try runBounded(["nbdcopy", "--flush", src, f.uri("d10")], limit: 180) == 0)
        #expect(try runBounded(["nbdcopy", f.uri("d10"), out], limit: 180) == 0)
        #expect(try sha256(out) == (try sha256(src)))
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }

    @Test(.enabled(if: Privileged.fuseRunnable
                   && Privileged.runnable(tools: ["nbdfuse", "fusermount3", "losetup", "mkfs.ext4", "mount", "umount", "e2fsck"])))
    func ext4OverNbdfuseAndLoop() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.create("d10", "raid5", try f.images("r", count: 4, size: 24 << 20))
        let server = try f.startServer()
        let client = try Ext4Client(f, volume: "d10", tag: "ext4")
        defer { client.close(lazy: true) }
        let dev = client.device
        try MetaTestSupport.mustRun(["mkfs.ext4", "-q", "-F", dev])
        try client.mount()
        var written: [String: Data] = [:]
        for i in 0..<6 {
            written["f\(i)"] = try writeRandomFile("\(client.mnt)/f\(i)", size: (i + 1) * 700_000 + 123)
        }
        try client.unmount()
        try MetaTestSupport.mustRun(["e2fsck", "-fn", dev])
        try MetaTestSupport.mustRun(["mount", "-o", "ro", dev, client.mnt])
        client.mounted = true
        for (name, data) in written {
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(client.mnt)/\(name)")) == data, "\(name)")
        }
        try client.unmount()
        client.close()
        #expect(client.fuse.terminationStatus == 0)
        #expect(server.log.contains("d10"))
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }

    // MARK: lifecycle

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy", "fio", "sha256sum"])))
    func sigtermUnderLoadKeepsFlushedDataAndShutsDownCleanly() throws {
        let f = try Self.raidAndStripe(init: false)
        defer { f.cleanup() }
        let size = try #require(try Self.volumeSizes(f)["d10"])
        let server = try f.startServer()
        // Region A (the first 8 MiB): written and flushed by nbdcopy.
        let regionA = 8 << 20
        let src = f.dir.file("a.bin")
        try writeRandomFile(src, size: regionA)
        try MetaTestSupport.mustRun(["nbdcopy", "--flush", src, f.uri("d10")])

        // Region B (the rest): a fio write load, stopped by SIGTERM to the server mid-way.
        let fio = Process()
        fio.executableURL = URL(fileURLWithPath: Privileged.which("fio") ?? "/usr/bin/fio")
        fio.arguments = ["--name=load", "--ioengine=nbd", "--uri=\(f.uri("d10"))", "--rw=randwrite", "--bs=64k",
                         "--iodepth=16", "--numjobs=2", "--thread", "--offset=\(regionA)", "--size=\(size - regionA)",
                         "--time_based", "--runtime=120", "--fsync=8"]
        fio.standardOutput = FileHandle.nullDevice
        fio.standardError = FileHandle.nullDevice
        try fio.run()
        defer {
            if fio.isRunning { kill(fio.processIdentifier, SIGKILL) }
            fio.waitUntilExit()
        }
        // Wait until both fio connections are in.
        let deadline = Date().addingTimeInterval(60)
        while !(try f.statusJSON(["d10"])["volumes"] as? [[String: Any]] ?? []).contains(where: { ($0["openCount"] as? Int ?? 0) >= 2 }) {
            guard fio.isRunning else { throw TestSupportError("fio exited early with \(fio.terminationStatus)") }
            guard Date() < deadline else { throw TestSupportError("fio never connected") }
            usleep(50_000)
        }
        usleep(500_000)  // let writes be in flight
        #expect(fio.isRunning, "the load must still be running when the server is stopped")
        let status = server.stop(signal: SIGTERM)
        #expect(status == 0, "exit status after SIGTERM under load; log:\n\(server.log)")
        #expect(server.exitedNormally)
        #expect(server.log.contains("signal 15: shutting down"))
        #expect(server.log.contains("stopped"))
        fio.waitUntilExit()
        #expect(fio.terminationStatus != 0, "fio lost its server mid-run")

        let again = try f.startServer()
        #expect(!again.log.contains("did not shut down cleanly"), "restart log:\n\(again.log)")
        let back = f.dir.file("a.back")
        try MetaTestSupport.mustRun(["nbdcopy", f.uri("d10"), back])
        let whole = try Data(contentsOf: URL(fileURLWithPath: back))
        #expect(whole.count == size)
        #expect(whole.prefix(regionA) == (try Data(contentsOf: URL(fileURLWithPath: src))), "the flushed region changed")
        let vol = try #require((try f.statusJSON(["d10"])["volumes"] as? [[String: Any]])?.first)
        #expect(vol["state"] as? String == "Okay")
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func killNineIsNoticedAtTheNextStart() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.create("d20", "stripe", try f.images("s", count: 2, size: Self.imageSize))
        let first = try f.startServer()
        #expect(!first.log.contains("did not shut down cleanly"), "a fresh set starts clean:\n\(first.log)")
        first.stop(signal: SIGKILL)
        #expect(!first.exitedNormally)
        // Stale sockets and PID file are left behind; the next start takes over and says so.
        #expect(FileManager.default.fileExists(atPath: f.socketPath))
        let second = try f.startServer()
        #expect(second.log.contains("did not shut down cleanly"), "log:\n\(second.log)")
        #expect(try nbdinfoJSON(f.uri("d20"))["export-name"] as? String == "d20")
        #expect(second.stop() == 0)
        let third = try f.startServer()
        #expect(!third.log.contains("did not shut down cleanly"), "after a clean stop:\n\(third.log)")
        #expect(third.stop() == 0)
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func secondServerForTheSameSetIsRefused() throws {
        let f = try Self.raidAndStripe(init: false)
        defer { f.cleanup() }
        let server = try f.startServer()
        let pid = try String(contentsOfFile: "\(f.runDir)/\(f.set).pid", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(pid == String(server.pid))
        let r = try f.run(["serve", "--socket", f.dir.file("second.nbd")])
        #expect(!r.ok)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line: \(r.stderr)")
        #expect(r.stderr.contains("already served"))
        #expect(r.stderr.contains(pid))
        // The first one is unharmed.
        #expect(server.isRunning)
        #expect(try nbdinfoJSON(f.uri("d10"))["export-name"] as? String == "d10")
        #expect(server.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: "\(f.runDir)/\(f.set).pid"), "PID file removed at exit")
    }

    /// Two servers started at the same moment: one serves, the other is refused at once
    /// (well before the 30 s the set lock would make it wait), with one line.
    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func twoServersStartedTogetherOneIsRefusedAtOnce() throws {
        let f = try Self.raidAndStripe(init: false)
        defer { f.cleanup() }
        let sockets = [f.dir.file("a.nbd"), f.dir.file("b.nbd")]
        let procs = try sockets.enumerated().map { i, sock in
            try ServeProcess(metactl: f.metactl, arguments: ["serve", "--socket", sock],
                             environment: f.environment, logPath: f.dir.file("serve-\(i).log"))
        }
        defer { for p in procs where p.isRunning { kill(p.pid, SIGKILL); p.process.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(20)
        while procs.allSatisfy(\.isRunning) && Date() < deadline { usleep(50_000) }
        let loser = try #require(procs.first { !$0.isRunning }, "one of the two exits within 20 s")
        let winner = try #require(procs.first { $0 !== loser })
        #expect(loser.process.terminationStatus != 0)
        let lines = loser.log.split(separator: "\n")
        #expect(lines.count == 1 && loser.log.contains("already served"), "refusal: \(loser.log)")
        try winner.waitUntilServing()
        let socket = sockets[procs.firstIndex { $0 === winner }!]
        #expect(try nbdinfoJSON("nbd+unix:///d10?socket=\(socket)")["export-name"] as? String == "d10")
        #expect(winner.stop() == 0)
    }

    // MARK: control path and TCP

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy"])))
    func liveStatusMatchesTheDevicesAfterShutdown() throws {
        let f = try Self.raidAndStripe(init: false)
        defer { f.cleanup() }
        let offline = try f.statusJSON()
        #expect(offline["live"] as? Bool == false)
        let server = try f.startServer()
        let live = try f.statusJSON()
        #expect(live["live"] as? Bool == true)
        let vols = try #require(live["volumes"] as? [[String: Any]])
        #expect(vols.allSatisfy { $0["openCount"] as? Int == 0 })
        #expect(server.stop() == 0)
        let after = try f.statusJSON()
        #expect(after["live"] as? Bool == false)
        #expect(NSDictionary(dictionary: stripLiveFields(live)) == NSDictionary(dictionary: stripLiveFields(after)),
                "live:\n\(live)\nafter:\n\(after)")
        #expect(NSDictionary(dictionary: stripLiveFields(offline)) == NSDictionary(dictionary: stripLiveFields(after)))
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo", "nbdcopy", "sha256sum"])))
    func tcpListenerOnAnEphemeralPort() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.create("d10", "raid5", try f.images("r", count: 3, size: Self.imageSize), extra: ["--no-init"])
        let server = try f.startServer(["--listen", "127.0.0.1:0"])
        let port = try #require(server.tcpPort, "no port in the log:\n\(server.log)")
        #expect(port > 0)
        let uri = "nbd://127.0.0.1:\(port)/d10"
        let e = try nbdinfoJSON(uri)
        #expect(e["export-size"] as? Int == (try Self.volumeSizes(f))["d10"])
        // The Unix socket serves too, and both see the same data.
        let src = f.dir.file("t.bin"), back = f.dir.file("t.back")
        try writeRandomFile(src, size: 1 << 20)
        try MetaTestSupport.mustRun(["nbdcopy", src, uri])
        try MetaTestSupport.mustRun(["nbdcopy", f.uri("d10"), back])
        #expect(try Data(contentsOf: URL(fileURLWithPath: back)).prefix(1 << 20) == (try Data(contentsOf: URL(fileURLWithPath: src))))
        #expect(!server.log.contains("not loopback"))
        #expect(server.stop() == 0)
    }
}
