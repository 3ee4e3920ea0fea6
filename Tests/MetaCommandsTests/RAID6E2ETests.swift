import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// RAID-6 end to end, through the `metactl` binary: two real block devices that fail
/// (nbdkit's error filter under nbdfuse and a loop device) one after the other under a fio
/// load that verifies every block it writes, then both replaced, every byte compared, and a
/// check of P and Q.
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

        // Both replaced: the second regeneration runs once the first is done (one resync at a
        // time); the dead devices stay dead.
        for (i, d) in bad.enumerated() {
            let new = try rig.loop("new\(i)", size: size)
            let rep = try f.run(["replace", "d10", d.path, new, "--wait"])
            #expect(rep.ok, "replace \(d.path): \(rep.stderr)")
            #expect(rep.stdout.contains("regenerating"), "\(rep.stdout)")
            #expect(rep.stdout.hasSuffix(i == 0 ? "d10: \(new) is Okay; the volume is still Needs Maintenance (Invoke: metactl replace d10 \(bad[1].path) <new device>)\n"
                                                : "d10: Okay\n"), "\(rep.stdout)")
        }
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
