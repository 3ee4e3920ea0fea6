import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Mirrors through a real server: a mirror of two stripes over loop devices and a failing
/// device (nbdkit's error filter, nbdfuse, losetup) under fio with verify; offline, writes,
/// online with only the written regions resynced, and a `kill -9` during that resync.
@Suite("Mirror end to end", .serialized)
struct MirrorE2ETests {
    static var enabled: Bool { ResyncE2ETests.enabled }

    /// The side's object in `status --json`'s mirror.
    static func side(_ vol: [String: Any], _ name: String) -> [String: Any]? {
        ((vol["mirror"] as? [String: Any])?["sides"] as? [[String: Any]])?.first { $0["name"] as? String == name }
    }

    /// The whole export of `volume` as bytes (nbdcopy to a file).
    static func contents(_ rig: ResyncRig, _ volume: String) throws -> Data {
        let out = rig.f.dir.file("\(volume)-\(UUID().uuidString.prefix(8)).bin")
        try MetaTestSupport.mustRun(["timeout", "300", "nbdcopy", rig.f.uri(volume), out])
        defer { try? FileManager.default.removeItem(atPath: out) }
        return try Data(contentsOf: URL(fileURLWithPath: out))
    }

    @Test(.enabled(if: enabled))
    func aFailingSideIsServedAroundAndResyncedWhileWritten() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        let f = rig.f
        let a = try rig.loop("a", size: 32 << 20), b = try rig.loop("b", size: 32 << 20)
        let bad = try rig.failingDevice("bad", size: 32 << 20)
        let c = try rig.loop("c", size: 32 << 20)
        try f.create("d10", "stripe", [a, b])
        try f.create("d11", "stripe", [bad.path, c])
        try f.create("d0", "mirror", ["d10", "d11"], extra: ["--no-resync"])
        let server = try f.startServer()
        let list = try f.mustRun(["status", "-c"])
        #expect(list.contains("d0") && list.contains(" m "), "\(list)")
        // The sides are reached through the mirror only.
        let exports = try MetaTestSupport.mustRun(["nbdinfo", "--list", "--json", "nbd+unix:///?socket=\(f.socketPath)"])
        #expect(exports.contains("\"d0\"") && !exports.contains("\"d10\"") && !exports.contains("\"d11\""), "\(exports)")

        // Load A on [0, 16 MiB) with verify. The failing side's reads fail first (answered
        // from d10 and rewritten: it stays in service), then its writes too (out of service).
        let outA = f.dir.file("fio-a.json")
        let fioA = try rig.spawn(rig.fioJob("a", offset: "0", size: "16m", volume: "d0"), output: outA)
        try rig.waitForClients(1, fioA, volume: "d0")
        usleep(500_000)
        bad.failReads()
        try rig.waitFor("a read error answered from the other side", log: server) {
            server.log.contains("was answered from d10 and rewritten")
        }
        #expect(Self.side(try rig.volume("d0"), "d11")?["state"] as? String == "Okay")
        bad.fail()
        try rig.waitFor("the failing side to leave service", log: server) {
            Self.side(try rig.volume("d0"), "d11")?["state"] as? String == "Needs Maintenance"
        }
        let ra = try rig.fioResult(fioA, outA)
        #expect(ra.status == 0, "fio A: \(ra.stderr)")
        for j in ra.jobs { #expect(j["error"] as? Int == 0, "fio A reported an error: \(ra.stderr)") }
        let degraded = try rig.volume("d0")
        #expect(degraded["state"] as? String == "Needs Maintenance")
        #expect((degraded["invoke"] as? String ?? "").contains("metactl online d0 d11"))

        // The dead device is replaced (SVM's metareplace on the mirror): d11 resyncs every
        // region onto it while load B writes and verifies.
        let fresh = try rig.loop("new", size: 32 << 20)
        try f.mustRun(["set", "d0", "--resync-rate", "4m:4m"])
        let outB = f.dir.file("fio-b.json")
        let fioB = try rig.spawn(rig.fioJob("b", offset: "24m", size: "16m", volume: "d0"), output: outB)
        try rig.waitForClients(1, fioB, volume: "d0")
        let rep = try f.run(["replace", "d0", bad.path, fresh])
        #expect(rep.ok && rep.stdout.contains("d11 resyncs every region"), "\(rep.stdout) \(rep.stderr)")
        #expect((try rig.volume("d11"))["components"].map { "\($0)" }?.contains(fresh) == true)
        try rig.waitFor("the resync to run", log: server) {
            let v = try rig.volume("d0")
            return Self.side(v, "d11")?["state"] as? String == "Resyncing" && (v["resync"] as? [String: Any]) != nil
        }
        let rb = try rig.fioResult(fioB, outB)
        #expect(rb.status == 0, "fio B: \(rb.stderr)")
        for j in rb.jobs { #expect(j["error"] as? Int == 0, "fio B reported an error: \(rb.stderr)") }
        try f.mustRun(["set", "d0", "--resync-rate", "100m:max"])
        try rig.waitFor("d0 to be Okay", log: server) { (try rig.volume("d0"))["state"] as? String == "Okay" }

        // Every byte: detach d11 (it becomes a volume of its own, exported again) and compare.
        let whole = try Self.contents(rig, "d0")
        let det = try f.run(["detach", "d0", "d11"])
        #expect(det.ok, "\(det.stderr)")
        let alone = try Self.contents(rig, "d11")
        #expect(alone.count >= whole.count)
        #expect(alone.prefix(whole.count) == whole, "the resynced side differs from the mirror")
        // The last Okay side cannot be detached.
        let last = try f.run(["detach", "d0", "d10"])
        #expect(!last.ok && last.stderr.contains("last Okay side"), "\(last.stderr)")
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }

    /// SVM's hot spares for submirror components: a device of one side fails under writes, a
    /// spare from the side's pool takes its place, and only the regions of that device's row
    /// (4 of 7) resync. Replacing the failed device then gives the spare back. Every byte of
    /// the side is compared with the mirror at the end.
    @Test(.enabled(if: enabled))
    func aHotSpareTakesAFailedSideComponentsPlaceAndOnlyItsRowResyncs() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        let f = rig.f
        let size: UInt64 = 200 << 20
        let a = try rig.loop("a", size: size), b = try rig.loop("b", size: size), c = try rig.loop("c", size: size)
        let bad = try rig.failingDevice("bad", size: size)
        let spare = try rig.loop("spare", size: size)
        // Two rows per side: [0, ~196 MiB) holds regions 0–3 of 64 MiB, the second row 3–6.
        try f.create("d10", "concat", [a, b])
        try f.create("d11", "concat", [c, bad.path])
        try f.mustRun(["hs", "create", "hsp001", spare])
        try f.create("d0", "mirror", ["d10", "d11"], extra: ["--no-resync", "--hot-spare-pool", "hsp001"])
        #expect((try rig.volume("d11"))["hotSparePool"] as? String == "hsp001")
        let server = try f.startServer()
        let uri = f.uri("d0")
        try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P 0x11 8M 4M", uri])
        try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P 0x22 300M 4M", uri])
        try rig.waitFor("the dirty regions to be cleaned") {
            ((try rig.volume("d0"))["mirror"] as? [String: Any])?["dirtyRegions"] as? Int == 0
        }
        // The second row's device of d11 fails under a write there: no client error.
        bad.fail()
        try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P 0x33 250M 4M", uri])
        try rig.waitFor("the spare to take over", log: server) {
            ResyncRig.component(try rig.volume("d11"), bad.path)?["hotSpare"] as? String == spare
        }
        #expect(try rig.spares()[spare] == "In use")
        try rig.waitFor("d0 to be Okay", log: server) { (try rig.volume("d0"))["state"] as? String == "Okay" }
        #expect(server.log.contains("hot spare \(spare) from hsp001 takes over and 4 region(s) resync"), "\(server.log)")
        #expect(server.log.contains("resyncing side d11: 4 of 7 region(s)"), "\(server.log)")
        for (p, at) in [("0x11", "8M 4M"), ("0x22", "300M 4M"), ("0x33", "250M 4M")] {
            let r = try runCommand(["qemu-io", "-f", "raw", "-c", "read -P \(p) \(at)", uri])
            #expect(r.ok && !r.stdout.contains("Pattern verification failed"), "\(p): \(r.stdout)")
        }
        // The failed device is replaced: the spare goes back to its pool, the row resyncs.
        let fresh = try rig.loop("new", size: size)
        let rep = try f.run(["replace", "d0", bad.path, fresh])
        #expect(rep.ok, "\(rep.stderr)")
        #expect(try rig.spares()[spare] == "Available")
        try rig.waitFor("d0 to be Okay again", log: server) { (try rig.volume("d0"))["state"] as? String == "Okay" }
        // Every byte of d11 (its first row was never resynced) is the mirror's.
        let whole = try Self.contents(rig, "d0")
        try f.mustRun(["detach", "d0", "d11"])
        let alone = try Self.contents(rig, "d11")
        #expect(alone.prefix(whole.count) == whole, "the side differs from the mirror")
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }

    /// Growing a mirror the SVM way: each side grows (`grow d10 DEV`, `grow d11 DEV`); the
    /// mirror takes the new space once its smallest side has it, and the second side
    /// resyncs only the regions of the new space from the first. Every byte of the side is
    /// compared with the mirror at the end.
    @Test(.enabled(if: enabled))
    func growingBothSidesGrowsTheMirrorAndResyncsOnlyTheNewSpace() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        let f = rig.f
        let size: UInt64 = 100 << 20
        let a = try rig.loop("a", size: size), b = try rig.loop("b", size: size)
        let c = try rig.loop("c", size: size), d = try rig.loop("d", size: size)
        try f.create("d10", "concat", [a])
        try f.create("d11", "concat", [b])
        try f.create("d0", "mirror", ["d10", "d11"], extra: ["--no-resync"])
        var server = try f.startServer()
        try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P 0x11 1M 4M", f.uri("d0")])
        #expect(server.stop() == 0, "log:\n\(server.log)")
        let before = try #require(try rig.volume("d0")["sizeBytes"] as? Int)
        // The mirror itself is grown through its sides.
        let refused = try f.run(["grow", "d0", c])
        #expect(!refused.ok && refused.stderr.contains("metactl grow d10 DEV"), "\(refused.stderr)")
        // d11 first (d10 is the smaller side: its device holds the state database's replicas).
        let first = try f.run(["grow", "d11", c])
        #expect(first.ok && first.stderr.contains("until d10 grows too"), "\(first.stdout) \(first.stderr)")
        #expect(try rig.volume("d0")["sizeBytes"] as? Int == before)
        try f.mustRun(["grow", "d10", d])
        let after = try #require(try rig.volume("d0")["sizeBytes"] as? Int)
        #expect(after > before + Int(size) / 2)
        let region = 64 << 20
        let side = Self.side(try rig.volume("d0"), "d11")
        #expect(side?["state"] as? String == "Resyncing")
        #expect(side?["resyncRegions"] as? Int == (after - 1) / region - before / region + 1, "\(String(describing: side))")
        server = try f.startServer()
        try rig.waitFor("d0 to be Okay", log: server) { (try rig.volume("d0"))["state"] as? String == "Okay" }
        let uri = f.uri("d0")
        let tail = after - (4 << 20)
        try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P 0x22 \(tail) 4M", uri])
        for (p, at) in [("0x11", "1M 4M"), ("0x22", "\(tail) 4M")] {
            let r = try runCommand(["qemu-io", "-f", "raw", "-c", "read -P \(p) \(at)", uri])
            #expect(r.ok && !r.stdout.contains("Pattern verification failed"), "\(p): \(r.stdout) \(r.stderr)")
        }
        let whole = try Self.contents(rig, "d0")
        #expect(whole.count == after)
        try f.mustRun(["detach", "d0", "d11"])
        let alone = try Self.contents(rig, "d11")
        #expect(alone.prefix(whole.count) == whole, "the grown side differs from the mirror")
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }

    /// `metactl check` of a mirror (md's check and repair of RAID-1), without a server: a
    /// chunk of one side changed behind the mirror's back is found, `--repair` rewrites it
    /// from the first side, and a second check finds nothing.
    @Test(.enabled(if: enabled))
    func checkFindsAndRepairsSidesThatDiffer() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        let f = rig.f
        let a = try rig.loop("a", size: 64 << 20), b = try rig.loop("b", size: 64 << 20)
        try f.create("d10", "concat", [a])
        try f.create("d11", "concat", [b])
        try f.create("d0", "mirror", ["d10", "d11"], extra: ["--no-resync"])
        let server = try f.startServer()
        try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 16M", f.uri("d0")])
        #expect(server.stop() == 0, "log:\n\(server.log)")
        // 4 KiB of d11 at 3 MiB + 8 KiB changes on its device.
        let comp = try #require((try rig.volume("d11"))["components"] as? [[String: Any]]).first
        let start = try #require(comp?["startBlock"] as? Int) * 512
        let h = try #require(FileHandle(forWritingAtPath: rig.backingFile(b)))
        try h.seek(toOffset: UInt64(start + (3 << 20) + 8192))
        h.write(Data(repeating: 0xA5, count: 4096))
        try h.synchronize()
        try h.close()
        let found = try f.run(["check", "d0"])
        #expect(found.status == 1, "\(found.stdout) \(found.stderr)")
        #expect(found.stdout.contains("1 mismatch (chunk 3)"), "\(found.stdout)")
        #expect(found.stderr.contains("d0: its sides differ in 1 chunk of 1 MiB; `metactl check d0 --repair`"), "\(found.stderr)")
        let repaired = try f.run(["check", "d0", "--repair"])
        #expect(repaired.ok && repaired.stdout.contains("1 repaired"), "\(repaired.stdout) \(repaired.stderr)")
        let clean = try f.run(["check", "d0", "--json"])
        #expect(clean.ok, "\(clean.stderr)")
        let reply = try JSONSerialization.jsonObject(with: Data(clean.stdout.utf8)) as? [String: Any]
        #expect((reply?["check"] as? [String: Any])?["mismatches"] as? Int == 0, "\(clean.stdout)")
        let status = try f.mustRun(["status", "d0"])
        #expect(status.contains("Last check: completed"), "\(status)")
        // A one-sided mirror has nothing to compare.
        try f.create("d12", "concat", [try rig.loop("c", size: 64 << 20)])
        try f.create("d1", "mirror", ["d12"])
        let single = try f.run(["check", "d1"])
        #expect(!single.ok && single.stderr.contains("has one side"), "\(single.stderr)")
    }

    @Test(.enabled(if: enabled))
    func offlineWritesThenOnlineResyncsOnlyThoseRegionsAndSurvivesKill9() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        let f = rig.f
        let a = try rig.loop("a", size: 300 << 20), b = try rig.loop("b", size: 300 << 20)
        // The shorthand: one-device concats d0-s0 and d0-s1 (zeroed images: no resync).
        let made = try f.run(["create", "d0", "mirror", a, b, "--no-resync"])
        #expect(made.ok, "\(made.stderr)")
        var server = try f.startServer()
        let uri = f.uri("d0")
        try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P 0x11 0 4M", uri])
        try rig.waitFor("the dirty regions to be cleaned") {
            ((try rig.volume("d0"))["mirror"] as? [String: Any])?["dirtyRegions"] as? Int == 0
        }
        try f.mustRun(["offline", "d0", "d0-s1"])
        // Writes in regions 1 and 3 of 5 (64 MiB each) while d0-s1 is offline.
        try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P 0x22 70M 8M", uri])
        try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P 0x33 200M 8M", uri])
        let off = try rig.volume("d0")
        #expect(Self.side(off, "d0-s1")?["staleRegions"] as? Int == 2)
        #expect(off["state"] as? String == "Needs Maintenance")
        try f.mustRun(["set", "d0", "--resync-rate", "8m:8m"])
        let on = try f.run(["online", "d0", "d0-s1", "--json"])
        #expect(on.ok, "\(on.stderr)")
        let reply = try JSONSerialization.jsonObject(with: Data(on.stdout.utf8)) as? [String: Any]
        #expect(reply?["resyncRegions"] as? Int == 2)
        #expect(reply?["state"] as? String == "Resyncing")
        // Killed once the writes' dirty regions are clean (a crash's dirty regions are
        // resynced again from their first) and a checkpoint (once a second) is made.
        try rig.waitFor("the resync to checkpoint with no dirty region", log: server) {
            let v = try rig.volume("d0")
            return (v["mirror"] as? [String: Any])?["dirtyRegions"] as? Int == 0
                && (Self.side(v, "d0-s1")?["resyncPercent"] as? Double ?? 0) >= 15
        }
        usleep(1_100_000)
        #expect(server.log.contains("resyncing side d0-s1: 2 of 5 region(s)"), "\(server.log)")
        // kill -9: the restart resumes from the checkpoint, over the same two regions.
        _ = server.stop(signal: SIGKILL, grace: 5)
        let after = Self.side(try rig.volume("d0"), "d0-s1")
        #expect(after?["state"] as? String == "Resyncing")
        #expect(after?["resyncRegions"] as? Int == 2)
        #expect((after?["resyncPercent"] as? Double ?? 0) > 0)
        server = try f.startServer()
        try f.mustRun(["set", "d0", "--resync-rate", "200m:max"])
        try rig.waitFor("d0 to be Okay", log: server) { (try rig.volume("d0"))["state"] as? String == "Okay" }
        #expect(server.log.contains("resuming at"), "\(server.log)")
        for (p, at) in [("0x11", "0 4M"), ("0x22", "70M 8M"), ("0x33", "200M 8M")] {
            let r = try runCommand(["qemu-io", "-f", "raw", "-c", "read -P \(p) \(at)", uri])
            #expect(r.ok && !r.stdout.contains("Pattern verification failed"), "\(p): \(r.stdout)")
        }
        #expect(server.stop() == 0, "log:\n\(server.log)")
        // The two images hold the same data, each from its own data start.
        let vol = try rig.volume("d0-s0"), vol1 = try rig.volume("d0-s1")
        let size = try #require(try rig.volume("d0")["sizeBytes"] as? Int)
        func bytes(_ v: [String: Any], _ dev: String) throws -> Data {
            let comp = try #require((v["components"] as? [[String: Any]])?.first)
            let start = try #require(comp["startBlock"] as? Int) * 512
            let h = try #require(FileHandle(forReadingAtPath: rig.backingFile(dev)))
            defer { try? h.close() }
            try h.seek(toOffset: UInt64(start))
            return h.readData(ofLength: size)
        }
        #expect(try bytes(vol, a) == (try bytes(vol1, b)), "the sides differ after the resync")
    }

    /// ext4 on a mapped mirror of two stripes (nbdfuse and a loop device in front of the
    /// server): one side's device fails under the file system, the writes go on, and after an
    /// unmount the file system is clean and every file reads back.
    @Test(.enabled(if: enabled && MapTests.runnable))
    func ext4OnAMappedMirrorKeepsWorkingWhenASideFails() throws {
        let rig = try ResyncRig()
        let f = rig.f
        let mnt = f.dir.file("mnt")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        defer { MapTests.forceCleanup(f, mnt: mnt); rig.cleanup() }
        let a = try rig.loop("a", size: 48 << 20), b = try rig.loop("b", size: 48 << 20)
        let bad = try rig.failingDevice("bad", size: 48 << 20)
        let c = try rig.loop("c", size: 48 << 20)
        try f.create("d10", "stripe", [a, b], extra: ["-i", "64k"])
        try f.create("d11", "stripe", [bad.path, c], extra: ["-i", "64k"])
        try f.create("d0", "mirror", ["d10", "d11"], extra: ["--no-resync"])
        let server = try f.startServer()
        let dev = try f.mustRun(["map", "d0"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(dev.hasPrefix("/dev/loop"), "map printed \(dev)")
        try MetaTestSupport.mustRun(["mkfs.ext4", "-q", "-F", dev])
        try MetaTestSupport.mustRun(["mount", dev, mnt])
        var written: [String: Data] = [:]
        for i in 0..<3 { written["before\(i)"] = try writeRandomFile("\(mnt)/before\(i)", size: 2_000_000) }
        try MetaTestSupport.mustRun(["sync", "-f", "\(mnt)/before0"])
        bad.fail()
        for i in 0..<3 { written["after\(i)"] = try writeRandomFile("\(mnt)/after\(i)", size: 2_000_000) }
        try MetaTestSupport.mustRun(["sync", "-f", "\(mnt)/after0"])
        try rig.waitFor("the failed side to leave service", log: server) {
            Self.side(try rig.volume("d0"), "d11")?["state"] as? String == "Needs Maintenance"
        }
        try MetaTestSupport.unmount(mnt)
        try MetaTestSupport.mustRun(["e2fsck", "-fn", dev])
        try MetaTestSupport.mustRun(["mount", dev, mnt])
        for (name, data) in written {
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(mnt)/\(name)")) == data, "\(name)")
        }
        try MetaTestSupport.unmount(mnt)
        #expect(try f.run(["unmap", dev]).ok)
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }
}
