import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Soft partitions on a RAID-5 over loop devices, served over NBD and read and written with
/// qemu-io: 200 of them, each with its own bytes, survive a server restart; after the state
/// database is wiped from every device, the RAID-5 is made again with --no-init and
/// `metactl recover` finds every soft partition from its watermarks, with the same bytes.
@Suite("soft partitions: 200 on a RAID-5, restart, recover")
struct SoftPartitionE2ETests {
    static var enabled: Bool { Privileged.runnable && Privileged.runnable(tools: ["losetup", "qemu-io", "dd"]) }
    static let count = 200

    /// What partition `i` holds: byte `i + 1` everywhere but 4 KiB at 8 KiB, which holds
    /// byte `255 - i` (so a partition read from another one's place, or shifted, fails).
    static func write(_ f: ServeFixture, _ i: Int) throws {
        _ = try MetaTestSupport.mustRun(["timeout", "60", "qemu-io", "-f", "raw", "-c", "write -P \(i + 1) 0 512k",
                                         "-c", "write -P \(255 - i) 8k 4k", "-c", "flush", f.uri("p\(i)")])
    }

    static func verify(_ f: ServeFixture, _ i: Int) throws {
        _ = try MetaTestSupport.mustRun(["timeout", "60", "qemu-io", "-f", "raw", "-r", "-c", "read -P \(i + 1) 0 8k",
                                         "-c", "read -P \(255 - i) 8k 4k", "-c", "read -P \(i + 1) 12k 500k", f.uri("p\(i)")])
    }

    @Test(.enabled(if: enabled), .timeLimit(.minutes(10)))
    func twoHundredSurviveARestartAndAreRecoveredFromTheirWatermarks() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        let f = rig.f
        let devs = try (0..<4).map { try rig.loop("sp\($0)", size: 72 << 20) }
        try f.create("d10", "raid5", devs, extra: ["--no-init"])
        var server = try f.startServer()
        for i in 0..<Self.count { try f.mustRun(["create", "p\(i)", "softpart", "d10", "512k"]) }
        for i in 0..<Self.count { try Self.write(f, i) }
        // Grown while in use: p7 gets a second extent, after every other partition.
        try f.mustRun(["grow", "p7", "1m"])
        _ = try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P 77 512k 1m", f.uri("p7")])
        let p7 = try #require((try f.statusJSON(["p7"])["volumes"] as? [[String: Any]])?.first)
        #expect(p7["sizeBytes"] as? Int == (512 << 10) + (1 << 20))
        #expect(((p7["softPartition"] as? [String: Any])?["extents"] as? [Any])?.count == 2)

        // Refusals, one line each, nothing changed.
        let clearParent = try f.run(["clear", "d10"])
        #expect(clearParent.status == 3)
        #expect(clearParent.stderr.contains("d10: soft partitions p0, p1, p2"), "\(clearParent.stderr)")
        let tooBig = try f.run(["create", "big", "softpart", "d10", "1g"])
        #expect(tooBig.status == 65)
        #expect(tooBig.stderr.contains("big: d10 has not 1073741824 bytes free for it; free:"), "\(tooBig.stderr)")
        let onSoft = try f.run(["create", "nested", "softpart", "p0", "1m"])
        #expect(onSoft.status == 65)
        #expect(onSoft.stderr.contains("p0: is a soft partition"), "\(onSoft.stderr)")
        let overlap = try f.run(["create", "manual", "softpart", "d10", "-o", "1m", "-b", "64k"])
        #expect(overlap.status == 65)
        #expect(overlap.stderr.contains("overlaps another soft partition of d10"), "\(overlap.stderr)")
        // A cleared partition's watermarks are marked free: recover does not bring it back.
        try f.mustRun(["clear", "p199"])

        #expect(server.stop() == 0)
        server = try f.startServer()
        for i in 0..<(Self.count - 1) { try Self.verify(f, i) }
        _ = try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-r", "-c", "read -P 77 512k 1m", f.uri("p7")])
        let status = try f.mustRun(["status", "p3"])
        #expect(status.contains("p3: Soft Partition\n    Device: d10\n    State: Okay\n    Size: 1024 blocks (512.0 KiB)"), "\(status)")
        #expect(server.stop() == 0)

        // The state database is lost: every device's label and replica area is zeroed and the
        // host forgets the set.
        let start = try #require((try f.statusJSON(["d10"])["volumes"] as? [[String: Any]])?.first?["components"] as? [[String: Any]])
            .compactMap { $0["startBlock"] as? Int }.first
        for d in devs {
            _ = try MetaTestSupport.mustRun(["dd", "if=/dev/zero", "of=\(d)", "bs=512", "count=\(start ?? 10240)", "conv=notrunc,fsync", "status=none"])
        }
        try FileManager.default.removeItem(atPath: f.configDir)
        #expect(try f.run(["status"]).status != 0, "the set is gone")
        try f.create("d10", "raid5", devs, extra: ["--no-init"])
        let dry = try f.mustRun(["recover", "d10", "-n"])
        #expect(dry.contains("p0: would recover (512.0 KiB, 1 extent)"), "\(dry)")
        #expect(try f.statusJSON()["volumes"].map { ($0 as? [Any])?.count } == 1, "a dry run changes nothing")
        let rec = try f.mustRun(["recover", "d10"])
        #expect(rec.components(separatedBy: ": recovered").count - 1 == Self.count - 1, "\(rec)")
        #expect(rec.contains("p7: recovered (1.5 MiB, 2 extents)"))
        #expect(!rec.contains("p199"))
        let again = try f.mustRun(["recover", "d10"])
        #expect(again.components(separatedBy: ": known").count - 1 == Self.count - 1)

        server = try f.startServer()
        for i in 0..<(Self.count - 1) { try Self.verify(f, i) }
        _ = try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-r", "-c", "read -P 77 512k 1m", f.uri("p7")])
        #expect(server.stop() == 0)
    }

    /// A failure below shows above: a column of the parent RAID-5 goes missing, the soft
    /// partitions say the parent's state (with the command to look at), and keep serving
    /// their bytes from the other columns.
    @Test(.enabled(if: Privileged.runnable(tools: ["qemu-io"])), .timeLimit(.minutes(3)))
    func aParentsFailureShowsInItsSoftPartitions() throws {
        let f = try ServeFixture(prefix: "metactl-spfail")
        defer { f.cleanup() }
        let imgs = try f.images("c", count: 3, size: 40 << 20)
        try f.create("d10", "raid5", imgs, extra: ["--no-init"])
        try f.mustRun(["create", "d1", "softpart", "d10", "8m"])
        try f.mustRun(["create", "d2", "softpart", "d10", "-o", "32m", "-b", "4m"])
        var server = try f.startServer()
        for (name, p) in [("d1", 17), ("d2", 34)] {
            _ = try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P \(p) 0 4m", "-c", "flush", f.uri(name)])
        }
        #expect(server.stop() == 0)
        try FileManager.default.moveItem(atPath: imgs[1], toPath: imgs[1] + ".gone")
        server = try f.startServer()
        let vols = try #require(try f.statusJSON()["volumes"] as? [[String: Any]])
        for v in vols { #expect(v["state"] as? String == "Needs Maintenance", "\(v)") }
        let d1 = try #require(vols.first { $0["name"] as? String == "d1" })
        #expect(d1["invoke"] as? String == "its state is its parent's: see metactl status d10")
        let text = try f.mustRun(["status", "d2"])
        #expect(text.contains("d2: Soft Partition\n    Device: d10\n    State: Needs Maintenance\n    Invoke: its state is its parent's: see metactl status d10"), "\(text)")
        #expect(text.contains("        Extent  Start Block  Block count\n             0        65536         8192"), "\(text)")
        for (name, p) in [("d1", 17), ("d2", 34)] {
            _ = try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-r", "-c", "read -P \(p) 0 4m", f.uri(name)])
        }
        #expect(server.stop() == 0)
    }

    /// Soft partitions on a device (SVM's on a slice): the first one makes the one-device
    /// concat over it (named after the device), the second is carved from the same concat;
    /// each keeps its own bytes through the server.
    @Test(.enabled(if: enabled))
    func softPartitionsOnADeviceShareItsConcat() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        let f = rig.f
        let dev = try rig.loop("raw", size: 64 << 20)
        let carrier = (dev as NSString).lastPathComponent
        let first = try f.run(["create", "p1", "softpart", dev, "8m"])
        #expect(first.ok && first.stderr.contains("\(carrier): one-device concat over \(dev) made"), "\(first.stdout) \(first.stderr)")
        let second = try f.run(["create", "p2", "softpart", dev, "8m"])
        #expect(second.ok && !second.stderr.contains("made"), "\(second.stderr)")
        let vols = try #require(try f.statusJSON()["volumes"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: vols.compactMap { v in (v["name"] as? String).map { ($0, v) } })
        #expect(byName[carrier]?["type"] as? String == "concat")
        for p in ["p1", "p2"] {
            #expect((byName[p]?["softPartition"] as? [String: Any])?["parent"] as? String == carrier)
        }
        let server = try f.startServer()
        for (i, p) in ["p1", "p2"].enumerated() {
            _ = try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-c", "write -P \(i + 7) 0 8m", f.uri(p)])
        }
        for (i, p) in ["p1", "p2"].enumerated() {
            _ = try MetaTestSupport.mustRun(["qemu-io", "-f", "raw", "-r", "-c", "read -P \(i + 7) 0 8m", f.uri(p)])
        }
        #expect(server.stop() == 0, "log:\n\(server.log)")
        try f.mustRun(["clear", "p1", "p2"])
        try f.mustRun(["clear", carrier])
    }


    /// A create or grow cut off between its commit and its watermarks leaves a configured
    /// soft partition that `recover` cannot find; the server's start writes its watermarks
    /// again from the configuration.
    @Test(.timeLimit(.minutes(3)))
    func aStartRewritesWatermarksThatDoNotMatchTheConfiguration() throws {
        let f = try ServeFixture(prefix: "metactl-sp-wm")
        defer { f.cleanup() }
        let img = try f.dir.image("d10.img", size: 32 << 20)
        try f.create("d10", "concat", [img])
        try f.mustRun(["create", "p1", "softpart", "d10", "4m"])
        func found() throws -> [String] {
            let out = try f.mustRun(["recover", "d10", "-n", "--json"])
            let doc = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
            return (doc?["partitions"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        }
        #expect(try found() == ["p1"])
        // The watermark (8 blocks before the extent's data) is lost, as if never written.
        let vols = try #require(try f.statusJSON()["volumes"] as? [[String: Any]])
        let parent = try #require(vols.first { $0["name"] as? String == "d10" })
        let p1 = try #require(vols.first { $0["name"] as? String == "p1" })
        let dataStart = try #require((((p1["softPartition"] as? [String: Any])?["extents"] as? [[String: Any]])?.first)?["startBlock"] as? Int)
        let compStart = try #require(((parent["components"] as? [[String: Any]])?.first)?["startBlock"] as? Int)
        let h = try #require(FileHandle(forWritingAtPath: img))
        try h.seek(toOffset: UInt64((compStart + dataStart - 8) * 512))
        h.write(Data(count: 4096))
        try h.close()
        #expect(try found().isEmpty)
        let server = try f.startServer()
        #expect(server.log.contains("p1: its watermarks in d10 did not match the configuration"), "\(server.log)")
        #expect(server.stop() == 0)
        #expect(try found() == ["p1"])
        // A start with every watermark in place writes none.
        let again = try f.startServer()
        #expect(!again.log.contains("did not match"), "\(again.log)")
        #expect(again.stop() == 0)
    }

}
