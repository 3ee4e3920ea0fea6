import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `metactl check` end to end: the built binary, a served RAID-5 on image files, bytes
/// flipped in a column's image file behind the server's back, a check that names the line,
/// a repair, a clean check after it, and a check that survives kill -9 of its server.
@Suite("metactl check end to end")
struct CheckE2ETests {
    static let columnBytes: UInt64 = 16 << 20

    /// A served 4-column RAID-5 `d10` (64 KiB interlace) filled with random data.
    static func served(_ f: ServeFixture) throws -> (columns: [String], server: ServeProcess, dataStart: UInt64) {
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        let cols = try f.images("c", count: 4, size: columnBytes)
        try f.create("d10", "raid5", cols, extra: ["--no-init", "-i", "64k"])
        let vol = try #require((try f.statusJSON(["d10"])["volumes"] as? [[String: Any]])?.first)
        let comps = try #require(vol["components"] as? [[String: Any]])
        let start = try #require(comps.first?["startBlock"] as? Int)
        let size = try #require(vol["sizeBytes"] as? Int)
        let server = try f.startServer()
        let src = f.dir.file("data.bin")
        try writeRandomFile(src, size: size)
        try MetaTestSupport.mustRun(["nbdcopy", "--flush", src, f.uri("d10")])
        return (cols, server, UInt64(start) * 512)
    }

    /// Flips one byte of `image` at `offset` (the server has it open: O_DIRECT reads see it).
    static func flip(_ image: String, at offset: UInt64) throws {
        let fd = open(image, O_RDWR)
        try #require(fd >= 0)
        defer { close(fd) }
        var b: UInt8 = 0
        #expect(pread(fd, &b, 1, off_t(offset)) == 1)
        b ^= 0xA5
        #expect(pwrite(fd, &b, 1, off_t(offset)) == 1)
        fsync(fd)
    }

    static func check(_ f: ServeFixture) throws -> [String: Any] {
        let vol = try #require((try f.statusJSON(["d10"])["volumes"] as? [[String: Any]])?.first)
        return try #require(vol["check"] as? [String: Any], "no check in \(vol)")
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy"])), .timeLimit(.minutes(5)))
    func silentCorruptionIsFoundRepairedAndGone() throws {
        let f = try ServeFixture(prefix: "metactl-check")
        defer { f.cleanup() }
        let (cols, server, start) = try Self.served(f)
        // Line 5 of column 2 (its data or its parity, whichever column 2 holds there).
        try Self.flip(cols[2], at: start + 5 * 65536 + 1000)

        let found = try f.run(["check", "d10", "--wait"])
        #expect(found.status == 1, "\(found.stdout)\(found.stderr)")
        #expect(found.stdout.hasPrefix("d10: check started\n"), "\(found.stdout)")
        #expect(found.stdout.hasSuffix("d10: check completed: 1 mismatch (line 5)\n"), "\(found.stdout)")
        #expect(found.stderr.hasSuffix("metactl: d10: the parity of 1 line does not match the data; `metactl check d10 --repair` rewrites it\n"),
                "\(found.stderr)")
        let c = try Self.check(f)
        #expect(c["result"] as? String == "completed" && c["running"] as? Bool == false)
        #expect(c["mismatches"] as? Int == 1 && c["mismatchLines"] as? [Int] == [5] && c["repaired"] as? Int == 0)
        let text = try f.mustRun(["status", "d10"])
        #expect(text.contains("    Last check: completed "), "\(text)")
        #expect(text.contains(" UTC: 1 mismatch (line 5)\n"), "\(text)")

        // The running command was told the right status code; a repair, then a clean check.
        let fixed = try f.run(["check", "d10", "--repair", "--wait"])
        #expect(fixed.ok, "\(fixed.stderr)")
        #expect(fixed.stdout.hasSuffix("d10: check completed: 1 mismatch (line 5), 1 repaired\n"), "\(fixed.stdout)")
        let clean = try f.run(["check", "d10", "--wait", "--json"])
        #expect(clean.ok, "\(clean.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(clean.stdout.utf8)) as? [String: Any])
        let cc = try #require(doc["check"] as? [String: Any])
        #expect(cc["mismatches"] as? Int == 0 && cc["result"] as? String == "completed", "\(clean.stdout)")

        // The record of the last check says it went over every line.
        #expect((try Self.check(f))["percent"] as? Double == 100)
        let none = try f.run(["check", "d10", "--stop"])
        #expect(none.status == 2 && none.stderr == "metactl: d10: no check is running\n", "\(none.stderr)")
        // Refusals: one line each, nothing changed.
        try f.create("d0", "concat", [try f.dir.image("cat.img", size: 8 << 20)])
        let refusals: [([String], Int32, String)] = [
            (["check", "d0"], 65, "metactl: d0: check verifies redundancy; a concat volume has none\n"),
            (["check", "d99"], 2, "metactl: d99: no such volume in set 'local'\n"),
            (["check", "d10", "--stop", "--repair"], 64, "metactl: check --stop takes neither --repair nor --wait\n"),
        ]
        for (args, status, message) in refusals {
            let r = try f.run(args)
            #expect(r.status == status && r.stderr == message, "\(args): \(r.status) \(r.stderr)")
        }
        #expect(server.stop() == 0, "log:\n\(server.log)")
        #expect(server.log.contains("d10: check completed: 1 mismatch; "), "\(server.log)")
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy"])), .timeLimit(.minutes(5)))
    func aCheckSurvivesKillNineAndResumesFromItsCheckpoint() throws {
        let f = try ServeFixture(prefix: "metactl-check")
        defer { f.cleanup() }
        let (cols, first, start) = try Self.served(f)
        try Self.flip(cols[0], at: start + 200 * 65536 + 7)
        // 16 MiB per column at 2 MiB/s: about 8 s, checkpointed every 2 s.
        try f.mustRun(["set", "d10", "--resync-rate", "2m:2m"])
        #expect(try f.mustRun(["check", "d10"]) == "d10: check started\n")
        let deadline = Date().addingTimeInterval(60)
        while (try Self.check(f))["percent"] as? Double ?? 0 < 40 && Date() < deadline { usleep(200_000) }
        first.stop(signal: SIGKILL)
        // No server: the record says where the check got to, and that it resumes.
        let offline = try Self.check(f)
        let done = try #require(offline["percent"] as? Double)
        #expect(done > 0 && done < 100 && offline["running"] as? Bool == true, "\(offline)")
        let text = try f.mustRun(["status", "d10"])
        #expect(text.contains("    Check in progress: "), "\(text)")
        #expect(text.contains("(not running: resumes while the set is served by metactl serve)"), "\(text)")

        try f.mustRun(["set", "d10", "--resync-rate", "50m:max"])
        let second = try f.startServer()
        let waited = try f.run(["status", "d10"])
        #expect(waited.ok)
        // Follow it to its end: it resumed past line 0 and found the flipped line.
        while (try Self.check(f))["running"] as? Bool == true && Date() < deadline.addingTimeInterval(60) { usleep(100_000) }
        let end = try Self.check(f)
        #expect(end["result"] as? String == "completed")
        #expect(end["mismatchLines"] as? [Int] == [200], "\(end)")
        let resumed = second.log.split(separator: "\n").first { $0.contains("d10: check from line ") }
        let from = resumed.flatMap { Int($0.split(separator: " ").drop { $0 != "line" }.dropFirst().first ?? "") }
        #expect((from ?? 0) > 0, "resumed from its checkpoint: \(second.log)")
        #expect(second.stop() == 0, "log:\n\(second.log)")

        // The monthly job's script (contrib/metactl-check-all), with no server: clean after a
        // repair, exit 0.
        try f.mustRun(["check", "d10", "--repair"])
        let bin = URL(fileURLWithPath: f.metactl).deletingLastPathComponent().path
        let env = f.environment.merging(["PATH": "\(bin):\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"]) { $1 }
        let script = "\(GeneratedDocsTests.packageRoot)/contrib/metactl-check-all"
        let all = try runCommand(["sh", script, "local"], environment: env)
        #expect(all.ok, "\(all.stdout)\(all.stderr)")
        #expect(all.stdout.hasSuffix("d10: check completed: 0 mismatches\n"), "\(all.stdout)")
    }
}
