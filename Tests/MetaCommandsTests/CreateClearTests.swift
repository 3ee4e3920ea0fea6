import Foundation
import Logging
import Testing
import MetaCommands
import MetaControl
import MetaDB
import MetaModel
import MetaEngine
import MetaTestSupport

/// `metactl create`, `status` and `clear` through the built binary, on image files (and,
/// privileged, loop devices), each test with its own config and run directories.
@Suite("metactl create/status/clear (binary)")
struct CreateClearTests {
    /// The binary with a private configuration (`METACTL_CONFIG_DIR`, `METACTL_RUN_DIR`).
    struct CLI {
        let bin: String
        let configDir: String
        let runDir: String
        init(_ dir: TempDir, name: String = "") throws {
            bin = try GeneratedDocsTests.metactl()
            configDir = dir.file("config\(name)")
            runDir = dir.file("run\(name)")
            try FileManager.default.createDirectory(atPath: configDir, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        }
        var environment: [String: String] { ["METACTL_CONFIG_DIR": configDir, "METACTL_RUN_DIR": runDir] }
        func run(_ args: [String]) throws -> CommandResult { try runCommand([bin] + args, environment: environment) }
        @discardableResult
        func must(_ args: [String]) throws -> String { try mustRun([bin] + args, environment: environment) }

        /// `create …`: the size it printed, in bytes.
        @discardableResult
        func create(_ args: [String]) throws -> UInt64 {
            let out = try must(["create"] + args)
            // "NAME: RAID is set up (N blocks, X)"
            guard let open = out.range(of: "("), let sp = out.range(of: " blocks", range: open.upperBound..<out.endIndex),
                  let blocks = UInt64(out[open.upperBound..<sp.lowerBound]) else {
                throw TestSupportError("create printed \(out)")
            }
            return blocks * 512
        }
        func statusJSON(_ names: [String] = []) throws -> (StatusReport, [String: Any]) {
            let text = try must(["status", "--json"] + names)
            let report = try JSONDecoder().decode(StatusReport.self, from: Data(text.utf8))
            guard let doc = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw TestSupportError("status --json printed \(text)")
            }
            return (report, doc)
        }
    }

    static func images(_ dir: TempDir, _ names: [String], size: UInt64 = 8 << 20) throws -> [String] {
        try names.map { try dir.image("\($0).img", size: size) }
    }

    // MARK: create, status, clear

    @Test func createStatusAndClearOnImageFiles() throws {
        let dir = try TempDir()
        let cli = try CLI(dir)
        let r = try Self.images(dir, ["r0", "r1", "r2", "r3"])
        let s = try Self.images(dir, ["s0", "s1"])
        let c = try Self.images(dir, ["c0", "c1"])
        let n = try Self.images(dir, ["n0", "n1", "n2"])

        let d10Size = try cli.create(["d10", "raid5"] + r)       // creates the set's database on r0…r3
        let s1Size = try cli.create(["s1", "stripe", "-i", "64k"] + s)
        let c1Size = try cli.create(["c1", "concat"] + c)
        let d11Size = try cli.create(["d11", "raid5", "--no-init"] + n)
        #expect(d10Size > 0 && s1Size > 0 && c1Size > 0 && d11Size > 0)

        // JSON: the documented keys, the sizes create printed, absolute device paths.
        let (report, doc) = try cli.statusJSON()
        #expect(report.set == "local")
        #expect(report.live == false)
        #expect(report.readOnlyReason == nil && doc["readOnlyReason"] is NSNull)
        #expect(report.volumes.map(\.name) == ["d10", "s1", "c1", "d11"])
        let vols = try #require(doc["volumes"] as? [[String: Any]])
        for v in vols {
            for k in ["name", "type", "state", "sizeBytes", "interlaceBytes", "hotSparePool", "resync", "components"] {
                #expect(v.keys.contains(k), "\(v["name"] ?? "?") lacks \(k)")
            }
        }
        func vol(_ name: String) throws -> StatusReport.VolumeStatus { try #require(report.volumes.first { $0.name == name }) }
        let d10 = try vol("d10"), s1 = try vol("s1"), c1 = try vol("c1"), d11 = try vol("d11")
        #expect(d10.type == "raid5" && d10.state == "Initializing" && d10.sizeBytes == d10Size)
        #expect(d10.interlaceBytes == 64 << 10 && d10.originalColumns == 4)
        #expect(d10.resync?.kind == "initialize")
        #expect(d10.components.map(\.device) == r)
        #expect(d10.components.allSatisfy { $0.hasReplica && $0.state == "Initializing" && $0.startBlock > 0 && $0.present })
        #expect(d11.type == "raid5" && d11.state == "Okay" && d11.resync == nil && d11.sizeBytes == d11Size)
        #expect(d11.components.map(\.device) == n && d11.components.allSatisfy { !$0.hasReplica && $0.state == "Okay" })
        #expect(s1.type == "stripe" && s1.state == "Okay" && s1.sizeBytes == s1Size && s1.interlaceBytes == 64 << 10)
        #expect(s1.components.map(\.device) == s && s1.rows?.count == 1)
        #expect(c1.type == "concat" && c1.sizeBytes == c1Size && c1.interlaceBytes == nil && c1.rows?.count == 2)
        #expect(c1.components.map(\.device) == c)
        let d11json = try #require(vols.first { $0["name"] as? String == "d11" })
        #expect(d11json["resync"] is NSNull)
        #expect(d11json["sizeBytes"] as? Int == Int(d11Size))
        for v in report.volumes { for comp in v.components { #expect(comp.device.hasPrefix("/")) } }
        // RAID-5 of 4 × 8 MiB: every column loses its label/replica area and the write log's
        // area (1 MiB, the smallest), one column is parity.
        let dataBytes = d10.components[0].sizeBytes - d10.components[0].startBlock * 512
        #expect(d10Size == 3 * ((dataBytes - (1 << 20)) / (64 << 10) * (64 << 10)))
        #expect(d10.writeLog == StatusReport.WriteLogStatus(mode: "auto", areaBytes: 1 << 20))

        // Default report.
        let text = try cli.must(["status"])
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains("d10: RAID"))
        #expect(lines.contains("    State: Initializing"))
        #expect(lines.contains { $0.hasPrefix("    Initialization in progress: 0.0% done") })
        #expect(lines.contains("    Interlace: 128 blocks"))
        #expect(lines.contains("    Size: \(d10Size / 512) blocks (\(Output.humanSize(d10Size)))"))
        for p in r { #expect(lines.contains { $0.hasPrefix("        \(p) ") && $0.contains("Yes") && $0.contains("Initializing") }) }
        #expect(lines.contains("s1: Concat/Stripe"))
        #expect(lines.contains("    Stripe 0: (interlace: 128 blocks)"))
        #expect(lines.contains("c1: Concat/Stripe"))
        #expect(lines.contains("    Stripe 1:"))
        let d11At = try #require(lines.firstIndex(of: "d11: RAID"))
        #expect(lines[d11At + 1] == "    State: Okay")
        #expect(lines[d11At - 1] == "")

        // Names select; an unknown name is a one-line error.
        let only = try cli.statusJSON(["c1"]).0
        #expect(only.volumes.map(\.name) == ["c1"])
        let bad = try cli.run(["status", "nosuch"])
        #expect(!bad.ok && bad.stdout.isEmpty)
        #expect(bad.stderr.hasPrefix("metactl: nosuch") && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
        let both = try cli.run(["status", "-p", "-c"])
        #expect(!both.ok && both.stderr.split(separator: "\n").count == 1)

        // -p: md.tab lines plus the metactl commands.
        let p = try cli.must(["status", "-p"])
        #expect(p.contains("\nd10 -r \(r.joined(separator: " ")) -i 128b\n"))
        #expect(p.contains("\n# metactl create d10 raid5 -i 64k \(r.joined(separator: " "))\n"))
        #expect(p.contains("\ns1 1 2 \(s[0]) \(s[1]) -i 128b\n"))
        #expect(p.contains("\n# metactl create s1 stripe -i 64k \(s[0]) \(s[1])\n"))
        #expect(p.contains("\nc1 2 1 \(c[0]) 1 \(c[1])\n"))
        #expect(p.contains("\n# metactl create c1 concat \(c[0]) \(c[1])\n"))
        #expect(p.contains("\nd11 -r \(n.joined(separator: " ")) -i 128b\n"))

        // -c: one line per volume.
        let cLines = try cli.must(["status", "-c"]).split(separator: "\n").map(String.init)
        #expect(cLines.count == 4)
        let d10c = try #require(cLines.first { $0.hasPrefix("d10 ") })
        #expect(d10c.contains(" r ") && d10c.contains("Initializing 0.0%") && d10c.hasSuffix(r.joined(separator: " ")))
        let c1c = try #require(cLines.first { $0.hasPrefix("c1 ") })
        #expect(c1c.contains(" s ") && c1c.hasSuffix(c.joined(separator: " ")))

        // clear: gone from status, and its devices are free again.
        try cli.must(["clear", "s1"])
        #expect(try cli.statusJSON().0.volumes.map(\.name) == ["d10", "c1", "d11"])
        let s2Size = try cli.create(["s2", "stripe", "-i", "64k"] + s)
        #expect(s2Size == s1Size)
        try cli.must(["clear", "c1", "s2"])
        #expect(try cli.statusJSON().0.volumes.map(\.name) == ["d10", "d11"])
        let clearBad = try cli.run(["clear", "c1"])
        #expect(!clearBad.ok && clearBad.stderr.split(separator: "\n").count == 1 && clearBad.stderr.contains("c1"))
        // The devices of d10 keep their replicas: still in the set after clearing d10.
        try cli.must(["clear", "d10"])
        #expect(try cli.statusJSON().0.volumes.map(\.name) == ["d11"])
        let reuse = try cli.run(["create", "x", "concat", r[0]])
        #expect(!reuse.ok && reuse.stderr.contains(r[0]))
    }

    // MARK: refusals

    /// Checksums (CRC, `cksum`: fast, and enough to see a change) of every image and every
    /// file under the config directories.
    static func snapshot(_ files: [String], dirs: [String]) throws -> String {
        var all = files
        for d in dirs {
            let found = try mustRun(["find", d, "-type", "f"]).split(separator: "\n").map(String.init)
            all += found.sorted()
        }
        return try mustRun(["cksum"] + all)
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["mkfs.ext4", "cksum"])))
    func createRefusesBadInputAndChangesNothing() throws {
        let dir = try TempDir()
        let withSet = try CLI(dir, name: "A")     // a set with d10 on a…d
        let noSet = try CLI(dir, name: "B")       // no set yet: create would make the database
        let members = try Self.images(dir, ["a", "b", "c", "d"])
        let free = try Self.images(dir, ["e", "f", "g"])
        let small = try dir.image("small.img", size: 512 << 10)
        let ext4 = try dir.image("ext4.img", size: 8 << 20)
        try mustRun(["mkfs.ext4", "-q", "-F", ext4])
        let link = dir.file("e-link")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: free[0])
        try withSet.create(["d10", "raid5", "--no-init"] + members)

        let (e, f, g) = (free[0], free[1], free[2])
        let missing = dir.file("missing.img")
        // (arguments, text the error must name)
        let cases: [([String], String)] = [
            (["D10", "stripe", e, f], "D10"),
            (["9lives", "concat", e], "9lives"),
            (["hsp001", "concat", e], "hsp001"),
            (["x1", "stripe", e, e], e),
            (["x1", "stripe", e, link], "same device"),
            (["x1", "raid5", e, f], "at least 3"),
            (["x1", "raid5", "-i", "4k", e, f, g], "interlace"),
            (["x1", "stripe", "-i", "200m", e, f], "interlace"),
            (["x1", "stripe", "-i", "8300", e, f], "interlace"),
            (["x1", "stripe", "-i", "12q", e, f], "12q"),
            (["x1", "concat", missing], missing),
            (["x1", "stripe", e, f, missing], missing),
            (["x1", "concat", ext4], ext4),
            (["x1", "stripe", e, ext4], ext4),
            (["x1", "concat", small], small),
            (["x1", "raid7", e, f, g], "raid7"),
            (["x1", "stripe", "--no-init", e, f], "--no-init"),
            (["x1", "raid5", "--hot-spare-pool", "pool1", e, f, g], "pool1"),
            (["x1", "concat", members[1]], members[1]),
            (["x1", "stripe"], "no devices"),
        ]
        let forSetOnly: [([String], String)] = [
            (["d10", "concat", e], "d10"),
            (["x1", "stripe", e, members[0]], members[0]),
        ]
        let files = members + free + [small, ext4]
        let before = try Self.snapshot(files, dirs: [withSet.configDir, noSet.configDir])
        for (cli, list) in [(withSet, cases + forSetOnly), (noSet, cases)] {
            for (args, names) in list {
                let res = try cli.run(["create"] + args)
                let what = "create \(args.joined(separator: " ")) [\(cli.configDir.hasSuffix("A") ? "set" : "no set")]"
                #expect(!res.ok, "\(what) succeeded")
                #expect(res.stdout.isEmpty, "\(what) printed \(res.stdout)")
                let errLines = res.stderr.split(separator: "\n")
                #expect(errLines.count == 1 && res.stderr.hasPrefix("metactl: "), "\(what): \(res.stderr)")
                #expect(res.stderr.contains(names), "\(what): error does not name \(names): \(res.stderr)")
                #expect(try Self.snapshot(files, dirs: [withSet.configDir, noSet.configDir]) == before, "\(what) changed something")
            }
        }
        // The set still holds exactly d10, and the no-set directory knows no set.
        #expect(try withSet.statusJSON().0.volumes.map(\.name) == ["d10"])
        #expect(!(try noSet.run(["status"])).ok)

        // --force accepts the device with a file system.
        let size = try withSet.create(["x1", "concat", "--force", ext4])
        #expect(size > 0)
        #expect(try withSet.statusJSON(["x1"]).0.volumes.first?.components.map(\.device) == [ext4])
    }

    // MARK: privileged

    /// A deterministic pattern (xorshift64*).
    static func pattern(count: Int, seed: UInt64) -> [UInt8] {
        var x = seed | 1
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in words.indices {
                x ^= x >> 12; x ^= x << 25; x ^= x >> 27
                words[i] = x &* 2_685_821_657_736_338_717
            }
        }
        return out
    }

    @Test(.enabled(if: Privileged.runnable))
    func raid5OverLoopDevicesWritesAndReadsBackThroughTheLibrary() throws {
        let dir = try TempDir()
        let cli = try CLI(dir)
        var loops: [LoopDevice] = []
        defer { for l in loops { l.detach() } }
        for i in 0..<4 { loops.append(try LoopDevice(file: try dir.image("l\(i).img", size: 16 << 20))) }
        let paths = loops.map(\.path)
        let created = try cli.create(["d10", "raid5", "-i", "32k"] + paths)
        let (report, _) = try cli.statusJSON()
        #expect(report.volumes.first?.components.map(\.device) == paths)
        #expect(report.volumes.first?.state == "Initializing")

        let logger = Logger(label: "test")
        let data = Self.pattern(count: Int(created), seed: 0x5eed)
        do {
            let db = try SetDatabase.open(setName: "local", configDir: cli.configDir, runDir: cli.runDir, mode: .readWrite)
            let manager = SetManager(db: db, configDir: cli.configDir, logger: logger, isServer: false)
            defer { manager.closeEngines(); db.close() }
            let volume = try manager.openEngine("d10")
            #expect(volume.sizeBytes == created)
            // Whole volume in 1 MiB pieces (full-stripe and partial-line writes), then a few
            // unaligned overwrites (read-modify-write of the sectors around them).
            var buf = data
            try buf.withUnsafeBytes { raw in
                var off = 0
                while off < raw.count {
                    let n = min(1 << 20, raw.count - off)
                    try volume.write(offset: UInt64(off), from: UnsafeRawBufferPointer(rebasing: raw[off..<off + n]))
                    off += n
                }
            }
            let patch = Self.pattern(count: 4096, seed: 7)
            for (off, len) in [(1000, 777), (65536 - 100, 300), (created / 2 + 3, 4000)] as [(UInt64, Int)] {
                try patch.withUnsafeBytes { try volume.write(offset: off, from: UnsafeRawBufferPointer(rebasing: $0[0..<len])) }
                buf.replaceSubrange(Int(off)..<Int(off) + len, with: patch[0..<len])
            }
            try volume.flush()
            var back = [UInt8](repeating: 0, count: buf.count)
            try back.withUnsafeMutableBytes { try volume.read(offset: 0, into: $0) }
            #expect(back == buf, "read back differs from what was written")
            // Parity is right: every line's columns XOR to zero, checked on the loop devices.
            manager.closeEngines()
            #expect(try Self.parityConsistent(paths: paths, report: report))
        }
        // After closing everything, a fresh open reads the same bytes from the loop devices.
        do {
            let db = try SetDatabase.open(setName: "local", configDir: cli.configDir, runDir: cli.runDir, mode: .readOnly)
            let manager = SetManager(db: db, configDir: cli.configDir, logger: logger, isServer: false)
            defer { manager.closeEngines(); db.close() }
            let volume = try manager.openEngine("d10")
            var back = [UInt8](repeating: 0, count: data.count)
            try back.withUnsafeMutableBytes { try volume.read(offset: 0, into: $0) }
            var expected = data
            let patch = Self.pattern(count: 4096, seed: 7)
            for (off, len) in [(1000, 777), (65536 - 100, 300), (Int(created / 2 + 3), 4000)] {
                expected.replaceSubrange(off..<off + len, with: patch[0..<len])
            }
            #expect(back == expected)
        }
        try cli.must(["clear", "d10"])
    }

    /// Reads every column's data area from the devices and checks that each line XORs to zero.
    static func parityConsistent(paths: [String], report: StatusReport) throws -> Bool {
        guard let v = report.volumes.first else { return false }
        let columnBytes = Int(v.sizeBytes) / (paths.count - 1)
        var acc = [UInt8](repeating: 0, count: columnBytes)
        for (i, p) in paths.enumerated() {
            guard let h = FileHandle(forReadingAtPath: p) else { throw TestSupportError("cannot open \(p)") }
            defer { try? h.close() }
            try h.seek(toOffset: v.components[i].startBlock * 512)
            guard let d = try h.read(upToCount: columnBytes), d.count == columnBytes else {
                throw TestSupportError("short read on \(p)")
            }
            d.withUnsafeBytes { src in
                acc.withUnsafeMutableBytes { dst in
                    let s = src.bindMemory(to: UInt64.self), t = dst.bindMemory(to: UInt64.self)
                    for k in t.indices { t[k] ^= s[k] }
                }
            }
        }
        return acc.allSatisfy { $0 == 0 }
    }
}
