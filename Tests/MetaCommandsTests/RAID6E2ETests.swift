import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// RAID-6 end to end, through the `metactl` binary: two real block devices that fail
/// (nbdkit's error filter under nbdfuse and a loop device) one after the other under a fio
/// load that verifies every block it writes, then both replaced at once (one pass), every
/// byte compared, and a check of P and Q.
@Suite("RAID-6 end to end")
struct RAID6E2ETests {
    @Test(.enabled(if: ResyncE2ETests.enabled))
    func twoColumnsFailUnderFioThenBothAreReplaced() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        let f = rig.f
        let size: UInt64 = 32 << 20
        var devs: [String] = []
        for i in 0..<3 { devs.append(try rig.loop("r\(i)", size: size)) }
        let bad = [try rig.failingDevice("fail0", size: size), try rig.failingDevice("fail1", size: size)]
        devs += bad.map(\.path)
        try f.create("d10", "raid6", devs, extra: ["--no-init"])
        let created = try rig.volume()
        #expect(created["type"] as? String == "raid6")
        #expect(created["state"] as? String == "Okay")
        let server = try f.startServer()

        // A verified load on [0, 24 MiB): one column fails, then another, while it runs.
        let out = f.dir.file("fio.json")
        let fio = try rig.spawn(rig.fioJob("a", offset: "0", size: "24m"), output: out)
        try rig.waitForClients(1, fio)
        for (i, d) in bad.enumerated() {
            usleep(400_000)
            d.fail()
            try rig.waitFor("column \(i + 1) failing to be noticed", log: server) {
                ResyncRig.state(try rig.volume(), d.path) == "Maintenance"
            }
        }
        let a = try rig.fioResult(fio, out)
        #expect(a.status == 0, "fio: \(a.stderr)")
        for j in a.jobs {
            #expect(j["error"] as? Int == 0, "fio reported an error: \(a.stderr)")
            #expect(((j["write"] as? [String: Any])?["io_bytes"] as? Int ?? 0) > 0)
        }
        let live = try rig.volume()
        #expect(live["state"] as? String == "Needs Maintenance", "two failed columns leave a RAID-6 working, not Last Erred")
        for d in devs.prefix(3) { #expect(ResyncRig.state(live, d) == "Okay", "\(d)") }
        let invoke = live["invoke"] as? String ?? ""
        #expect(invoke.contains("metactl replace d10 \(bad[0].path) <new device>"), "\(invoke)")

        // What the volume holds, read with two columns missing (every byte through P and Q).
        let snap = f.dir.file("before.bin")
        try MetaTestSupport.mustRun(["timeout", "300", "nbdcopy", f.uri("d10"), snap])
        let before = try Data(contentsOf: URL(fileURLWithPath: snap))

        // Both replaced at once: one pass reads the three good columns and writes both new
        // devices (the dead devices stay dead).
        let news = [try rig.loop("new0", size: size), try rig.loop("new1", size: size)]
        let rep = try f.run(["replace", "d10", bad[0].path, news[0], bad[1].path, news[1], "--wait"])
        #expect(rep.ok, "replace: \(rep.stderr)")
        #expect(rep.stdout.contains("d10: regenerating \(bad[0].path) onto \(news[0]) and \(bad[1].path) onto \(news[1]) from the other columns, in one pass\n"), "\(rep.stdout)")
        #expect(rep.stdout.hasSuffix("d10: Okay\n"), "\(rep.stdout)")
        #expect(server.log.contains("d10: regenerate resync from line 0"), "\(server.log)")
        let done = try rig.volume()
        #expect(done["state"] as? String == "Okay")
        for d in bad { #expect(ResyncRig.component(done, d.path) == nil, "the dead device left the volume") }

        let after = f.dir.file("after.bin")
        try MetaTestSupport.mustRun(["timeout", "300", "nbdcopy", f.uri("d10"), after])
        #expect(try Data(contentsOf: URL(fileURLWithPath: after)) == before, "the rebuilt volume reads differently")
        // P and Q of every line agree with the data.
        let check = try f.run(["check", "d10", "--wait"])
        #expect(check.ok, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.hasSuffix("d10: check completed: 0 mismatches\n"), "\(check.stdout)")
        let text = try f.mustRun(["status", "d10"])
        #expect(text.hasPrefix("d10: RAID-6\n    State: Okay\n"), "\(text)")
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }
}

/// RAID-6 silent corruption end to end: a byte flipped in one column's image file behind
/// the server's back; `check` names the line and the column; `check --repair` rewrites only
/// that unit, so the volume reads back exactly what was written; the next check is clean.
@Suite("RAID-6 check end to end")
struct RAID6CheckE2ETests {
    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy"])), .timeLimit(.minutes(5)))
    func aCorruptedUnitIsLocatedAndRewritten() throws {
        let f = try ServeFixture(prefix: "metactl-check6")
        defer { f.cleanup() }
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        let cols = try f.images("c", count: 5, size: 16 << 20)
        try f.create("d10", "raid6", cols, extra: ["--no-init", "-i", "64k"])
        let vol = try #require((try f.statusJSON(["d10"])["volumes"] as? [[String: Any]])?.first)
        let start = try #require((vol["components"] as? [[String: Any]])?.first?["startBlock"] as? Int)
        let size = try #require(vol["sizeBytes"] as? Int)
        let server = try f.startServer()
        let src = f.dir.file("data.bin")
        try writeRandomFile(src, size: size)
        try MetaTestSupport.mustRun(["nbdcopy", "--flush", src, f.uri("d10")])

        // Column 3's unit of line 9 (data, P or Q: the syndromes tell which).
        try CheckE2ETests.flip(cols[3], at: UInt64(start) * 512 + 9 * 65536 + 4321)
        let found = try f.run(["check", "d10", "--wait"])
        #expect(found.status == 1, "\(found.stdout)\(found.stderr)")
        #expect(found.stdout.hasSuffix("d10: check completed: 1 mismatch (line 9), wrong unit on column 3 in line 9\n"), "\(found.stdout)")
        let c = try CheckE2ETests.check(f)
        #expect((c["located"] as? [[String: Any]])?.first?["column"] as? Int == 3, "\(c)")

        let fixed = try f.run(["check", "d10", "--repair", "--wait"])
        #expect(fixed.ok, "\(fixed.stderr)")
        #expect(fixed.stdout.hasSuffix("d10: check completed: 1 mismatch (line 9), wrong unit on column 3 in line 9, 1 repaired\n"), "\(fixed.stdout)")
        let clean = try f.run(["check", "d10", "--wait"])
        #expect(clean.ok && clean.stdout.hasSuffix("d10: check completed: 0 mismatches\n"), "\(clean.stdout)\(clean.stderr)")
        // Only the wrong unit was rewritten, from P and Q: every byte is what was written.
        let back = f.dir.file("back.bin")
        try MetaTestSupport.mustRun(["nbdcopy", f.uri("d10"), back])
        #expect(try sha256(back) == (try sha256(src)))
        #expect(server.stop() == 0, "log:\n\(server.log)")
        #expect(server.log.contains("d10: check: line 9: column 3 (\(cols[3])) holds a wrong unit; rewriting it"), "\(server.log)")

        // The monthly script checks RAID-6 volumes too (`status -c` type r6).
        let bin = URL(fileURLWithPath: f.metactl).deletingLastPathComponent().path
        let env = f.environment.merging(["PATH": "\(bin):\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"]) { $1 }
        let all = try runCommand(["sh", "\(GeneratedDocsTests.packageRoot)/contrib/metactl-check-all", "local"], environment: env)
        #expect(all.ok && all.stdout.hasSuffix("d10: check completed: 0 mismatches\n"), "\(all.stdout)\(all.stderr)")
    }
}
