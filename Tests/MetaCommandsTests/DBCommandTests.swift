import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport
import Testing

/// Runs the built `metactl` binary (next to the test bundle) against a private config/run dir.
struct MetactlRunner {
    let dir: TempDir
    var configDir: String { dir.file("etc") }
    var runDir: String { dir.file("run") }

    static var binary: String? {
        var candidates: [String] = []
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        candidates.append(argv0.deletingLastPathComponent().appendingPathComponent("metactl").path)
        // …/debug/metactlPackageTests.xctest/Contents/MacOS/… or …/debug/X.xctest
        var u = argv0
        for _ in 0..<4 {
            u = u.deletingLastPathComponent()
            candidates.append(u.appendingPathComponent("metactl").path)
        }
        candidates.append(URL(fileURLWithPath: Bundle.main.bundlePath).deletingLastPathComponent()
            .appendingPathComponent("metactl").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @discardableResult
    func run(_ args: [String], set: String = "local") throws -> CommandResult {
        guard let bin = Self.binary else { throw TestSupportError("metactl binary not found next to the test bundle") }
        return try runCommand([bin] + args + ["-s", set], environment: environment)
    }

    var environment: [String: String] {
        ["METACTL_CONFIG_DIR": configDir, "METACTL_RUN_DIR": runDir, "METACTL_LOCK_TIMEOUT": "120"]
    }

    @discardableResult
    func ok(_ args: [String], set: String = "local") throws -> String {
        let r = try run(args, set: set)
        if !r.ok { throw TestSupportError("metactl \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)") }
        return r.stdout
    }

    func statusJSON(set: String = "local") throws -> [String: Any] {
        let out = try ok(["db", "status", "--json"], set: set)
        guard let doc = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] else {
            throw TestSupportError("bad JSON: \(out)")
        }
        return doc
    }
}

@Suite("metactl db / import", .enabled(if: MetactlRunner.binary != nil))
struct DBCommandTests {
    static let imageSize: UInt64 = 16 << 20

    func images(_ t: TempDir, _ names: [String]) throws -> [String] {
        try names.map { try t.image($0, size: Self.imageSize) }
    }

    @Test func createStatusTableAndJSON() throws {
        let t = try TempDir()
        let m = MetactlRunner(dir: t)
        let imgs = try images(t, ["a.img", "b.img", "c.img"])
        let created = try m.run(["db", "create"] + imgs)
        #expect(created.ok, "\(created.stderr)")
        #expect(created.stderr.isEmpty) // three replicas: no warning
        let doc = try m.statusJSON()
        #expect(doc["set"] as? String == "local")
        let reps = try #require(doc["replicas"] as? [[String: Any]])
        #expect(reps.count == 3)
        #expect(reps.map { $0["device"] as? String } == imgs)
        for r in reps {
            #expect(r["state"] as? String == "active")
            #expect(r["offsetBytes"] as? Int == 65536)
            #expect(r["sizeBytes"] as? Int == Int(2 * DiskLayout.defaultSlotSize))
            #expect((r["generation"] as? Int ?? 0) >= 1)
        }
        let q = try #require(doc["quorum"] as? [String: Any])
        #expect(q["readable"] as? Int == 3)
        #expect(q["total"] as? Int == 3)
        #expect(q["writable"] as? Bool == true)
        let table = try m.ok(["db", "status"])
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("Device"))
        for h in ["Offset", "Size", "State", "Generation"] { #expect(lines[0].contains(h)) }
        #expect(lines.count == 5)
        #expect(lines[4].contains("3 of 3") && lines[4].contains("writable"))
        // Registry and membership.
        let members = SetDatabase.membership(configDir: m.configDir)
        for p in imgs { #expect(members[p]?.set == "local" && members[p]?.role == "replica") }
        // A second create of the same set, and a device already in a set, are refused.
        let again = try m.run(["db", "create", try t.image("d.img", size: Self.imageSize)])
        #expect(!again.ok && again.stderr.contains("already exists"))
        let other = try m.run(["db", "create", imgs[0]], set: "other")
        #expect(!other.ok && other.stderr.contains("member of set 'local'"))
        #expect(other.stderr.split(separator: "\n").count == 1)
    }

    @Test func fewReplicasWarnAndDeleteRules() throws {
        let t = try TempDir()
        let m = MetactlRunner(dir: t)
        let imgs = try images(t, ["a.img", "b.img", "c.img", "d.img"])
        let created = try m.run(["db", "create", imgs[0]])
        #expect(created.ok)
        #expect(created.stderr.contains("at least 3"))
        try m.ok(["db", "add", "--copies", "2", imgs[1], imgs[2]])
        try m.ok(["db", "add", imgs[3]])
        #expect(try m.statusJSON()["replicas"].map { ($0 as? [Any])?.count } == 6)
        // 6 → 4: fine. 4 → 2: needs --force. The last replicas: only with --force, and that
        // deletes the set (NewcomerReviewTests.finding15…).
        try m.ok(["db", "delete", imgs[1]])
        let below = try m.run(["db", "delete", imgs[2]])
        #expect(!below.ok && below.stderr.contains("--force"))
        try m.ok(["db", "delete", "--force", imgs[2]])
        let last = try m.run(["db", "delete", imgs[0], imgs[3]])
        #expect(!last.ok && last.stderr.contains("deleting every state database replica deletes set 'local': use --force"), "\(last.stderr)")
        let q = try #require(try m.statusJSON()["quorum"] as? [String: Any])
        #expect(q["total"] as? Int == 2)
        // Replica-only devices that were deleted left the set: their labels are gone.
        #expect(SetDatabase.readLabel(path: imgs[1]) == nil)
        #expect(SetDatabase.readLabel(path: imgs[0])?.setName == "local")
        let notInSet = try m.run(["db", "delete", imgs[1]])
        #expect(!notInSet.ok && notInSet.stderr.contains("not a device of set"))
    }

    @Test func lostMajorityIsReadOnlyUntilForcedDelete() throws {
        let t = try TempDir()
        let m = MetactlRunner(dir: t)
        let imgs = try images(t, ["a.img", "b.img", "c.img"])
        try m.ok(["db", "create"] + imgs)
        // Two devices go away.
        for p in imgs.prefix(2) { try FileManager.default.moveItem(atPath: p, toPath: p + ".away") }
        let status = try m.ok(["db", "status"])
        #expect(status.contains("1 of 3") && status.contains("read-only") && status.contains("db delete --force"))
        let doc = try m.statusJSON()
        #expect((doc["quorum"] as? [String: Any])?["writable"] as? Bool == false)
        let states = (doc["replicas"] as? [[String: Any]])?.map { $0["state"] as? String }
        #expect(states == ["unreadable", "unreadable", "active"])
        // Every mutating command fails with one line saying what to do.
        let add = try m.run(["db", "add", try t.image("d.img", size: Self.imageSize)])
        #expect(!add.ok)
        #expect(add.stderr.contains("read-only") && add.stderr.contains("db delete --force"))
        #expect(add.stderr.split(separator: "\n").count == 1)
        let noForce = try m.run(["db", "delete", imgs[0], imgs[1]])
        #expect(!noForce.ok && noForce.stderr.contains("read-only"))
        try m.ok(["db", "delete", "--force", imgs[0], imgs[1]])
        let q = try #require(try m.statusJSON()["quorum"] as? [String: Any])
        #expect(q["readable"] as? Int == 1 && q["total"] as? Int == 1 && q["writable"] as? Bool == true)
        try m.ok(["db", "add", t.file("d.img"), try t.image("e.img", size: Self.imageSize)])
        #expect((try m.statusJSON()["quorum"] as? [String: Any])?["total"] as? Int == 3)
    }

    @Test func importFindsMovedImageFiles() throws {
        let t = try TempDir()
        let m = MetactlRunner(dir: t)
        let imgs = try images(t, ["a.img", "b.img", "c.img"])
        try m.ok(["db", "create"] + imgs)
        // Move the files under new names (in a shuffled order) and forget the host registry.
        try FileManager.default.createDirectory(atPath: t.file("moved"), withIntermediateDirectories: true)
        let moved = [t.file("moved/x.img"), t.file("moved/y.img"), t.file("moved/z.img")]
        try FileManager.default.moveItem(atPath: imgs[0], toPath: moved[2])
        try FileManager.default.moveItem(atPath: imgs[1], toPath: moved[0])
        try FileManager.default.moveItem(atPath: imgs[2], toPath: moved[1])
        try FileManager.default.removeItem(atPath: HostRegistry.path(configDir: m.configDir))
        let unknown = try m.run(["db", "status"])
        #expect(!unknown.ok && unknown.stderr.contains("metactl import"))
        let out = try m.ok(["import", "--json", "--no-scan"] + moved)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let sets = try #require(doc["sets"] as? [[String: Any]])
        #expect(sets.count == 1)
        #expect(sets.first?["set"] as? String == "local")
        #expect(sets.first?["recorded"] as? Bool == true)
        let devs = try #require(sets.first?["devices"] as? [[String: Any]])
        #expect(Set(devs.compactMap { $0["path"] as? String }) == Set(moved))
        #expect(devs.allSatisfy { $0["found"] as? Bool == true && $0["moved"] as? Bool == true && $0["role"] as? String == "replica" })
        // The set opens with the devices at their new paths, in the right slots.
        let st = try m.statusJSON()
        let reps = try #require(st["replicas"] as? [[String: Any]])
        #expect(reps.map { $0["device"] as? String } == [moved[2], moved[0], moved[1]])
        #expect(reps.allSatisfy { $0["state"] as? String == "active" })
        // A read-write open records the new paths in the configuration.
        try m.ok(["db", "add", try t.image("d.img", size: Self.imageSize)])
        let db = try SetDatabase.open(setName: "local", configDir: m.configDir, runDir: m.runDir, mode: .readOnly)
        defer { db.close() }
        #expect(db.config.devices.prefix(3).map(\.lastPath) == [moved[2], moved[0], moved[1]])
        // Paths without labels are refused clearly.
        let bare = try m.run(["import", "--no-scan", try t.image("bare.img", size: 1 << 20)])
        #expect(!bare.ok && bare.stderr.contains("no metactl label"))
    }

    /// Several processes changing the set at once: serialised by the set lock, every change lands.
    @Test func concurrentProcessesAllLand() throws {
        let t = try TempDir()
        let m = MetactlRunner(dir: t)
        let imgs = try images(t, ["a.img", "b.img", "c.img"])
        try m.ok(["db", "create"] + imgs)
        let extra = try images(t, ["p0.img", "p1.img", "p2.img", "p3.img"])
        guard let bin = MetactlRunner.binary else { return }
        let procs = extra.map { img -> (Process, Pipe) in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = ["db", "add", img]
            p.environment = ProcessInfo.processInfo.environment.merging(m.environment) { $1 }
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            return (p, err)
        }
        for (p, _) in procs { try p.run() }
        for (p, err) in procs {
            let msg = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(msg)")
        }
        let doc = try m.statusJSON()
        let reps = try #require(doc["replicas"] as? [[String: Any]])
        #expect(Set(reps.compactMap { $0["device"] as? String }) == Set(imgs + extra))
        #expect(reps.allSatisfy { $0["state"] as? String == "active" })
        let gens = Set(reps.compactMap { $0["generation"] as? Int })
        #expect(gens.count == 1 && (gens.first ?? 0) >= 5)
    }

    /// A newer label on a candidate is refused with a clear message; garbage never crashes.
    @Test func garbageAndForeignLabels() throws {
        let t = try TempDir()
        let m = MetactlRunner(dir: t)
        let junk = try t.image("junk.img", size: Self.imageSize)
        let fd = FileHandle(forWritingAtPath: junk)!
        var rng = SystemRandomNumberGenerator()
        fd.write(Data((0..<(128 << 10)).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        try fd.close()
        #expect(SetDatabase.readLabel(path: junk) == nil)
        let r = try m.run(["import", "--no-scan", junk])
        #expect(!r.ok && r.stderr.contains("no metactl label"))
        // A set created elsewhere (another config dir) is foreign here: refused without --force.
        let other = MetactlRunner(dir: try TempDir())
        let img = try t.image("f.img", size: Self.imageSize)
        try other.ok(["db", "create", img], set: "far")
        let refused = try m.run(["db", "create", img])
        #expect(!refused.ok && refused.stderr.contains("set 'far'"))
    }
}
