import Foundation
import MetaLayout
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A RAID-5 set for resync tests: loop devices over image files, ``FailingDevice``s, and the
/// ``ServeFixture`` that runs `metactl`. ``cleanup()`` (and deinit) stops the servers first,
/// then detaches the loop devices and takes the failing devices down.
final class ResyncRig: @unchecked Sendable {
    let f: ServeFixture
    private(set) var loops: [LoopDevice] = []
    private(set) var failing: [FailingDevice] = []
    private var backing: [String: String] = [:]
    private var helpers: [Process] = []

    init() throws { f = try ServeFixture(prefix: "metactl-resync") }

    /// A loop device over a fresh sparse image of `size` bytes (`options` go to `losetup`).
    func loop(_ name: String, size: UInt64, options: [String] = []) throws -> String {
        let img = try f.dir.image("\(name).img", size: size)
        let l = try LoopDevice(file: img, options: options)
        loops.append(l)
        backing[l.path] = img
        return l.path
    }

    /// A ``FailingDevice`` of `size` bytes.
    func failingDevice(_ name: String, size: UInt64) throws -> FailingDevice {
        let d = try FailingDevice(in: f.dir, name: name, size: size)
        failing.append(d)
        backing[d.path] = d.image
        return d
    }

    /// The file holding a device's bytes (for reading columns directly).
    func backingFile(_ device: String) -> String { backing[device] ?? device }

    /// Starts a helper process (fio, nbdfuse) that ``cleanup()`` kills if it still runs.
    func spawn(_ argv: [String], output: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Privileged.which(argv[0]) ?? argv[0])
        p.arguments = Array(argv.dropFirst())
        p.standardInput = FileHandle.nullDevice
        if let output {
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: output)
            p.standardError = FileHandle(forWritingAtPath: output + ".err")
        } else {
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
        }
        try p.run()
        helpers.append(p)
        return p
    }

    func cleanup() {
        for p in helpers where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for p in helpers { p.waitUntilExit() }
        helpers = []
        f.cleanup()
        for l in loops { l.detach() }
        for d in failing { d.cleanup() }
    }

    deinit { cleanup() }

    // MARK: status

    /// The volume object of `status --json NAME`.
    func volume(_ name: String = "d10") throws -> [String: Any] {
        guard let v = (try f.statusJSON([name])["volumes"] as? [[String: Any]])?.first else {
            throw TestSupportError("status --json \(name): no volume")
        }
        return v
    }

    /// The component object whose device (or hot spare) is `path`.
    static func component(_ vol: [String: Any], _ path: String) -> [String: Any]? {
        (vol["components"] as? [[String: Any]])?.first { $0["device"] as? String == path }
    }

    static func state(_ vol: [String: Any], _ path: String) -> String? { component(vol, path)?["state"] as? String }

    /// The pool's spares: device → state.
    func spares(_ pool: String = "hsp001") throws -> [String: String] {
        let pools = try f.statusJSON()["hotSparePools"] as? [[String: Any]] ?? []
        var out: [String: String] = [:]
        for p in pools where p["name"] as? String == pool {
            for s in p["spares"] as? [[String: Any]] ?? [] {
                if let d = s["device"] as? String, let st = s["state"] as? String { out[d] = st }
            }
        }
        return out
    }

    /// Polls (bounded: it fails only if the condition never holds) until `cond` is true.
    func waitFor(_ what: String, limit: Double = 300, log server: ServeProcess? = nil, _ cond: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(limit)
        while try !cond() {
            guard Date() < deadline else {
                let status = (try? f.run(["status"]))?.stdout ?? ""
                throw TestSupportError("gave up waiting for \(what)\n\(status)\n\(server?.log ?? "")")
            }
            usleep(50_000)
        }
    }

    /// Waits until the volume has no resync running (live progress gone, none recorded).
    func waitForResyncEnd(_ name: String = "d10") throws -> [String: Any] {
        var last: [String: Any] = [:]
        try waitFor("the resync of \(name) to end") {
            last = try volume(name)
            return last["resync"] is NSNull || last["resync"] == nil
        }
        return last
    }

    /// Live resync percent (0 when none).
    func percent(_ name: String = "d10") throws -> Double {
        ((try volume(name))["resync"] as? [String: Any])?["percent"] as? Double ?? 0
    }

    // MARK: data

    /// Writes `size` random bytes through the server (flushed) and returns their digest.
    func fill(_ name: String = "d10", size: Int) throws -> String {
        let src = f.dir.file("\(name).fill")
        try writeRandomFile(src, size: size)
        try MetaTestSupport.mustRun(["timeout", "300", "nbdcopy", "--flush", src, f.uri(name)])
        return try sha256(src)
    }

    /// Reads the whole volume through the server and returns its digest.
    func readDigest(_ name: String = "d10") throws -> String {
        let out = f.dir.file("\(name).back")
        try? FileManager.default.removeItem(atPath: out)
        try MetaTestSupport.mustRun(["timeout", "300", "nbdcopy", f.uri(name), out])
        defer { try? FileManager.default.removeItem(atPath: out) }
        return try sha256(out)
    }

    /// With no server running: XORs the RAID-5's columns (read from their backing files at
    /// each component's data start) and returns the byte offsets of lines whose XOR is not 0.
    func parityErrors(_ name: String = "d10") throws -> [UInt64] {
        let vol = try volume(name)
        let comps = vol["components"] as? [[String: Any]] ?? []
        guard comps.count >= 3, let size = vol["sizeBytes"] as? Int, let il = vol["interlaceBytes"] as? Int else {
            throw TestSupportError("status of \(name) lacks components/size: \(vol)")
        }
        let columnBytes = UInt64(size / (comps.count - 1))
        let handles = try comps.map { c -> (FileHandle, UInt64) in
            guard let dev = (c["hotSpare"] as? String) ?? (c["device"] as? String), let start = c["startBlock"] as? Int,
                  let h = FileHandle(forReadingAtPath: backingFile(dev)) else {
                throw TestSupportError("cannot open the column \(c)")
            }
            return (h, UInt64(start) * 512)
        }
        defer { for (h, _) in handles { try? h.close() } }
        var bad: [UInt64] = []
        var at: UInt64 = 0
        let chunk = UInt64(il)
        while at < columnBytes {
            var acc = [UInt8](repeating: 0, count: Int(chunk))
            for (h, start) in handles {
                try h.seek(toOffset: start + at)
                let d = try h.read(upToCount: Int(chunk)) ?? Data()
                guard d.count == Int(chunk) else { throw TestSupportError("short column read at \(at)") }
                d.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in for i in 0..<Int(chunk) { acc[i] ^= raw[i] } }
            }
            if acc.contains(where: { $0 != 0 }) { bad.append(at) }
            at += chunk
        }
        return bad
    }

    // MARK: fio

    /// fio arguments for a verified random read/write job on `[offset, offset+size)`.
    func fioJob(_ job: String, offset: String, size: String, rate: String? = "2m,2m", volume: String = "d10") -> [String] {
        ["fio", "--name=\(job)", "--ioengine=nbd", "--uri=\(f.uri(volume))", "--rw=randrw", "--bs=4k", "--iodepth=8",
         "--offset=\(offset)", "--size=\(size)", "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0",
         "--runtime=300", "--output-format=json"] + (rate.map { ["--rate=\($0)"] } ?? [])
    }

    /// Waits for a fio run started with ``spawn(_:output:)`` and returns its jobs (throws
    /// when fio printed no JSON).
    func fioResult(_ p: Process, _ output: String) throws -> (status: Int32, jobs: [[String: Any]], stderr: String) {
        p.waitUntilExit()
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: output + ".err", encoding: .utf8)) ?? ""
        let json = text.firstIndex(of: "{").map { String(text[$0...]) } ?? ""
        guard let doc = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let jobs = doc["jobs"] as? [[String: Any]] else {
            throw TestSupportError("fio exited \(p.terminationStatus) without a JSON report: \(text) \(err)")
        }
        return (p.terminationStatus, jobs, err)
    }

    /// Waits until `count` NBD clients are connected to d10.
    func waitForClients(_ count: Int, _ p: Process, volume name: String = "d10") throws {
        try waitFor("\(count) client(s) on \(name)") {
            guard p.isRunning else { throw TestSupportError("the client exited early with \(p.terminationStatus)") }
            return (try volume(name)["openCount"] as? Int ?? 0) >= count
        }
    }
}

/// The resync engine end to end, through the `metactl` binary: real failing block devices
/// (nbdkit's error filter under nbdfuse and a loop device), fio load, `replace`, hot spares,
/// kill -9 in the middle of a resync, failures during a resync, and the offline replace.
/// NBD clients run under `timeout` so a server that stops answering fails the test instead of
/// hanging the suite.
@Suite("resync end to end")
struct ResyncE2ETests {
    static let tools = ["nbdkit", "nbdfuse", "fusermount3", "losetup", "fio", "nbdcopy", "sha256sum"]
    static var enabled: Bool { Privileged.fuseRunnable && Privileged.runnable(tools: tools) }
    /// Small images: 5 MiB of label and state database replica, the rest data.
    static let small: UInt64 = 16 << 20

    /// d10: RAID-5 over loop devices r0…r(n-2) and the failing device last, zeroed (no init).
    static func rig(columns: Int = 4, size: UInt64 = small, failingColumns: Int = 1) throws
        -> (ResyncRig, [String], [FailingDevice]) {
        let rig = try ResyncRig()
        var devs: [String] = []
        for i in 0..<(columns - failingColumns) { devs.append(try rig.loop("r\(i)", size: size)) }
        var fds: [FailingDevice] = []
        for i in 0..<failingColumns {
            let fd = try rig.failingDevice("fail\(i)", size: size)
            fds.append(fd)
            devs.append(fd.path)
        }
        try rig.f.create("d10", "raid5", devs, extra: ["--no-init"])
        return (rig, devs, fds)
    }

    // MARK: column failure under load, replace under load

    @Test(.enabled(if: enabled))
    func columnFailsUnderFioThenReplaceUnderLoad() throws {
        let (rig, devs, fds) = try Self.rig(size: 32 << 20)
        defer { rig.cleanup() }
        let f = rig.f
        let bad = fds[0]
        let server = try f.startServer()

        // Load A on [0, 16 MiB): the column fails while it runs.
        let outA = f.dir.file("fio-a.json")
        let jobA = rig.fioJob("a", offset: "0", size: "24m")
        let fioA = try rig.spawn(jobA, output: outA)
        try rig.waitForClients(1, fioA)
        usleep(500_000)
        bad.fail()
        try rig.waitFor("the failed column to be noticed") {
            ResyncRig.state(try rig.volume(), bad.path) == "Maintenance"
        }
        let a = try rig.fioResult(fioA, outA)
        #expect(a.status == 0, "fio A: \(a.stderr)")
        for j in a.jobs {
            #expect(j["error"] as? Int == 0, "fio A reported an error: \(a.stderr)")
            #expect(((j["write"] as? [String: Any])?["io_bytes"] as? Int ?? 0) > 0)
        }
        let live = try rig.volume()
        #expect(live["state"] as? String == "Needs Maintenance")
        #expect(ResyncRig.state(live, bad.path) == "Maintenance")
        for d in devs.dropLast() { #expect(ResyncRig.state(live, d) == "Okay", "\(d)") }
        #expect((live["invoke"] as? String ?? "").contains("metactl replace d10 \(bad.path)"))

        // What the volume holds now (A's blocks, zeroes elsewhere), read in degraded mode.
        let snap = f.dir.file("before.bin")
        try MetaTestSupport.mustRun(["timeout", "300", "nbdcopy", f.uri("d10"), snap])
        let before = try Data(contentsOf: URL(fileURLWithPath: snap))

        // The state is committed: the devices say the same once the server is gone.
        #expect(server.stop() == 0, "log:\n\(server.log)")
        let offline = try rig.volume()
        #expect(offline["state"] as? String == "Needs Maintenance")
        #expect(ResyncRig.state(offline, bad.path) == "Maintenance")

        // Load B on [32, 48) MiB while the column is replaced (the dead device stays dead).
        try f.startServer()
        let newDev = try rig.loop("new", size: 32 << 20)
        let outB = f.dir.file("fio-b.json")
        let jobB = rig.fioJob("b", offset: "32m", size: "16m")
        let fioB = try rig.spawn(jobB, output: outB)
        try rig.waitForClients(1, fioB)
        #expect(fioB.isRunning, "the load runs while replace starts")
        let rep = try f.run(["replace", "d10", bad.path, newDev, "--wait"])
        #expect(rep.ok, "replace: \(rep.stderr)")
        #expect(rep.stdout.contains("regenerating"))
        #expect(rep.stdout.contains("d10: Okay"))
        let b = try rig.fioResult(fioB, outB)
        #expect(b.status == 0, "fio B: \(b.stderr)")
        for j in b.jobs { #expect(j["error"] as? Int == 0, "fio B reported an error: \(b.stderr)") }

        // B verified its own region (fio's verify pass reads back every block it wrote);
        // everything else, load A's region included, is byte for byte what it was before the
        // rebuild. (fio --verify_only cannot replay a randrw job, so A is checked this way.)
        let after = f.dir.file("after.bin")
        try MetaTestSupport.mustRun(["timeout", "300", "nbdcopy", f.uri("d10"), after])
        let whole = try Data(contentsOf: URL(fileURLWithPath: after))
        #expect(whole.count == before.count)
        let bRange = (32 << 20)..<(48 << 20)
        #expect(whole[..<bRange.lowerBound] == before[..<bRange.lowerBound], "data before B's region changed")
        #expect(whole[bRange.upperBound...] == before[bRange.upperBound...], "data after B's region changed")
        let done = try rig.volume()
        #expect(done["state"] as? String == "Okay")
        #expect(ResyncRig.state(done, newDev) == "Okay")
        #expect(ResyncRig.component(done, bad.path) == nil, "the dead device left the volume")
        f.cleanup()
        #expect(try rig.parityErrors().isEmpty)
    }

    // MARK: copy keeps redundancy

    @Test(.enabled(if: enabled))
    func copyReplaceSurvivesAnotherColumnFailing() throws {
        let (rig, devs, fds) = try Self.rig(size: 12 << 20)
        defer { rig.cleanup() }
        let f = rig.f
        try f.startServer()
        let size = try #require(try rig.volume()["sizeBytes"] as? Int)
        let digest = try rig.fill(size: size)
        try f.mustRun(["set", "d10", "--resync-rate", "1m:1m"])
        let newDev = try rig.loop("new", size: 12 << 20)
        let rep = try f.run(["replace", "d10", devs[0], newDev])
        #expect(rep.ok, "replace: \(rep.stderr)")
        #expect(rep.stdout.contains("copying"))
        try rig.waitFor("the copy to make progress") { try rig.percent() > 0 }
        let copying = try rig.volume()
        #expect(copying["state"] as? String == "Resyncing")
        for d in devs { #expect(ResyncRig.state(copying, d) == "Okay", "a copy keeps every column Okay: \(d)") }

        // Another column dies mid-copy: every byte is still there.
        fds[0].fail()
        #expect(try rig.readDigest() == digest)
        let during = try rig.volume()
        #expect(ResyncRig.state(during, fds[0].path) == "Maintenance")
        #expect((during["resync"] as? [String: Any])?["kind"] as? String == "copy", "the copy goes on")

        try f.mustRun(["set", "d10", "--resync-rate", "50m:max"])
        let end = try rig.waitForResyncEnd()
        #expect(end["state"] as? String == "Needs Maintenance")
        #expect(ResyncRig.state(end, newDev) == "Okay")
        #expect(ResyncRig.component(end, devs[0]) == nil, "the copied device left the volume")
        #expect(ResyncRig.state(end, fds[0].path) == "Maintenance")
        for d in devs[1..<3] { #expect(ResyncRig.state(end, d) == "Okay") }
        #expect(try rig.readDigest() == digest)
    }

    // MARK: kill -9 mid-resync

    @Test(.enabled(if: enabled))
    func killNineMidResyncResumesFromTheCheckpoint() throws {
        let (rig, _, fds) = try Self.rig()
        defer { rig.cleanup() }
        let f = rig.f
        let first = try f.startServer()
        let size = try #require(try rig.volume()["sizeBytes"] as? Int)
        let digest = try rig.fill(size: size)
        fds[0].fail()
        #expect(try rig.readDigest() == digest)
        #expect(ResyncRig.state(try rig.volume(), fds[0].path) == "Maintenance")
        try f.mustRun(["set", "d10", "--resync-rate", "1m:1m"])
        let newDev = try rig.loop("new", size: Self.small)
        try f.mustRun(["replace", "d10", fds[0].path, newDev])
        // At 1 MiB/s at most, 40% of an 11 MiB column takes over 4 s: at least one
        // checkpoint (every 2 s) is committed by then.
        try rig.waitFor("the regeneration to pass 40%") { try rig.percent() >= 40 }
        first.stop(signal: SIGKILL)
        #expect(!first.exitedNormally)

        let second = try f.startServer()
        try rig.waitFor("the resync to restart") { second.log.contains("resync from line") }
        let line = second.log.split(separator: "\n").first { $0.contains("resync from line") }.map(String.init) ?? ""
        let from = line.components(separatedBy: "resync from line ").last?.split(separator: " ").first.flatMap { Int($0) }
        #expect((from ?? 0) > 0, "resumed from the checkpoint, not from zero: \(line)")
        let vol = try rig.volume()
        let pct = (vol["resync"] as? [String: Any])?["percent"] as? Double
        #expect(pct == nil || pct! > 0, "progress right after the restart: \(vol["resync"] ?? "none")")
        #expect(vol["state"] as? String != "Okay" || pct == nil)
        try f.mustRun(["set", "d10", "--resync-rate", "50m:max"])
        let end = try rig.waitForResyncEnd()
        #expect(end["state"] as? String == "Okay")
        #expect(ResyncRig.state(end, newDev) == "Okay")
        #expect(try rig.readDigest() == digest)
        f.cleanup()
        #expect(try rig.parityErrors().isEmpty)
    }

    // MARK: hot spares

    @Test(.enabled(if: enabled))
    func hotSpareTakeoverCopyBackAndSpareFailure() throws {
        let (rig, devs, fds) = try Self.rig()
        defer { rig.cleanup() }
        let f = rig.f
        let spare1 = try rig.failingDevice("spare1", size: Self.small)
        let spare2Dev = try rig.failingDevice("spare2", size: Self.small)
        let spare2 = spare2Dev.path
        let server = try f.startServer()
        let size = try #require(try rig.volume()["sizeBytes"] as? Int)
        let digest = try rig.fill(size: size)
        try f.mustRun(["hs", "create", "hsp001", spare1.path, spare2])
        try f.mustRun(["set", "d10", "--hot-spare-pool", "hsp001"])
        #expect(try rig.spares() == [spare1.path: "Available", spare2: "Available"])

        // Takeover: the column fails, spare1 (first in pool order) is rebuilt.
        fds[0].fail()
        #expect(try rig.readDigest() == digest)
        try rig.waitFor("spare1 to stand in", log: server) {
            ResyncRig.component(try rig.volume(), fds[0].path)?["hotSpare"] as? String == spare1.path
        }
        var vol = try rig.waitForResyncEnd()
        #expect(vol["state"] as? String == "Okay")
        #expect(ResyncRig.component(vol, fds[0].path)?["hotSpare"] as? String == spare1.path)
        #expect(try rig.spares()[spare1.path] == "In use")
        #expect(try rig.readDigest() == digest)

        // Copy-back: replacing the failed device copies from the spare, which is released.
        let newDev = try rig.failingDevice("new", size: Self.small)
        let rep = try f.run(["replace", "d10", fds[0].path, newDev.path, "--wait"])
        #expect(rep.ok, "replace: \(rep.stderr)")
        #expect(rep.stdout.contains("copying"))
        vol = try rig.volume()
        #expect(vol["state"] as? String == "Okay")
        #expect(ResyncRig.state(vol, newDev.path) == "Okay")
        #expect(ResyncRig.component(vol, newDev.path)?["hotSpare"] is NSNull)
        #expect(try rig.spares() == [spare1.path: "Available", spare2: "Available"])
        #expect(try rig.readDigest() == digest)

        // Spare failure: the new device fails, spare1 is taken and fails mid-rebuild:
        // it becomes Broken and spare2 is rebuilt instead.
        try f.mustRun(["set", "d10", "--resync-rate", "1m:1m"])
        newDev.fail()
        #expect(try rig.readDigest() == digest)
        try rig.waitFor("spare1 to be rebuilt again", log: server) {
            let v = try rig.volume()
            return ResyncRig.component(v, newDev.path)?["hotSpare"] as? String == spare1.path
                && ((v["resync"] as? [String: Any])?["percent"] as? Double ?? 0) > 0
        }
        spare1.failWrites()
        try rig.waitFor("spare2 to take over", log: server) {
            ResyncRig.component(try rig.volume(), newDev.path)?["hotSpare"] as? String == spare2
        }
        #expect(try rig.spares()[spare1.path] == "Broken")
        try f.mustRun(["set", "d10", "--resync-rate", "50m:max"])
        vol = try rig.waitForResyncEnd()
        #expect(vol["state"] as? String == "Okay")
        #expect(try rig.spares() == [spare1.path: "Broken", spare2: "In use"])
        #expect(try rig.readDigest() == digest)
        for d in devs.dropLast() { #expect(ResyncRig.state(vol, d) == "Okay") }

        // A spare that fails while standing in is Broken too; the column is Maintenance on
        // its original device, and the data is still served from parity.
        spare2Dev.fail()
        #expect(try rig.readDigest() == digest)
        try rig.waitFor("spare2 to be Broken", log: server) { try rig.spares()[spare2] == "Broken" }
        vol = try rig.volume()
        #expect(ResyncRig.state(vol, newDev.path) == "Maintenance")
        #expect(ResyncRig.component(vol, newDev.path)?["hotSpare"] is NSNull)
        #expect(try rig.readDigest() == digest)

        // After the fault is fixed, the spare is enabled again and takes over.
        spare1.recover()
        try f.mustRun(["hs", "enable", spare1.path])
        try rig.waitFor("spare1 to stand in again", log: server) {
            ResyncRig.component(try rig.volume(), newDev.path)?["hotSpare"] as? String == spare1.path
        }
        vol = try rig.waitForResyncEnd()
        #expect(vol["state"] as? String == "Okay")
        #expect(try rig.spares() == [spare1.path: "In use", spare2: "Broken"])
        #expect(try rig.readDigest() == digest)
        f.cleanup()
        #expect(try rig.parityErrors().isEmpty)
    }

    // MARK: failures during a resync

    @Test(.enabled(if: enabled))
    func targetWriteErrorLeavesTheTargetInMaintenance() throws {
        let (rig, _, fds) = try Self.rig()
        defer { rig.cleanup() }
        let f = rig.f
        try f.startServer()
        let size = try #require(try rig.volume()["sizeBytes"] as? Int)
        let digest = try rig.fill(size: size)
        fds[0].fail()
        #expect(try rig.readDigest() == digest)
        try f.mustRun(["set", "d10", "--resync-rate", "1m:1m"])
        let target = try rig.failingDevice("target", size: Self.small)
        try f.mustRun(["replace", "d10", fds[0].path, target.path])
        try rig.waitFor("the regeneration to make progress") { try rig.percent() > 0 }
        target.failWrites()
        let end = try rig.waitForResyncEnd()
        #expect(ResyncRig.state(end, target.path) == "Maintenance")
        #expect(end["state"] as? String == "Needs Maintenance")
        #expect(try rig.readDigest() == digest, "nothing wrong is returned")
        // The target is the column's device now; once it works again it can be re-enabled.
        target.recover()
        try f.mustRun(["set", "d10", "--resync-rate", "50m:max"])
        let r = try f.run(["replace", "d10", "--enable", target.path, "--wait"])
        #expect(r.ok, "replace --enable: \(r.stderr)")
        #expect(try rig.volume()["state"] as? String == "Okay")
        #expect(try rig.readDigest() == digest)
        f.cleanup()
        #expect(try rig.parityErrors().isEmpty)
    }

    @Test(.enabled(if: enabled))
    func secondColumnReadErrorMakesItLastErredAndKeepsRecoverableDataReadable() throws {
        let (rig, devs, fds) = try Self.rig(failingColumns: 2)
        defer { rig.cleanup() }
        let f = rig.f
        try f.startServer()
        let vol0 = try rig.volume()
        let size = try #require(vol0["sizeBytes"] as? Int)
        let il = try #require(vol0["interlaceBytes"] as? Int)
        let src = f.dir.file("d10.fill")
        let data = try writeRandomFile(src, size: size)
        try MetaTestSupport.mustRun(["timeout", "300", "nbdcopy", "--flush", src, f.uri("d10")])
        let (first, second) = (fds[0], fds[1])
        first.fail()
        #expect(try rig.readDigest() == (try sha256(src)))
        try f.mustRun(["set", "d10", "--resync-rate", "1m:1m"])
        let newDev = try rig.loop("new", size: Self.small)
        try f.mustRun(["replace", "d10", first.path, newDev])
        try rig.waitFor("the regeneration to make progress") { try rig.percent() > 0 }
        second.failReads()
        var end: [String: Any] = [:]
        try rig.waitFor("the second column to be Last Erred") {
            end = try rig.volume()
            return ResyncRig.state(end, second.path) == "Last Erred"
        }
        try rig.waitFor("the regeneration to stop") { (try rig.volume()["resync"] as? [String: Any])?["bytesPerSecond"] as? Double == 0 }
        #expect(ResyncRig.state(end, second.path) == "Last Erred")
        #expect(end["state"] as? String == "Last Erred")

        // Unit by unit: what can be read is right; what sits on the healthy columns is readable.
        let layout = RAID5Layout(originalColumns: 4, interlaceBlocks: UInt64(il / 512),
                                 columnBlocks: UInt64(size / 3 / 512))
        let units = size / il
        var good = 0, failed = 0
        var healthyUnreadable: [Int] = []
        try withVolumeFile(rig) { fd in
            let buf = UnsafeMutableRawPointer.allocate(byteCount: il, alignment: 4096)
            defer { buf.deallocate() }
            for u in 0..<units {
                let n = pread(fd, buf, il, off_t(u * il))
                let column = layout.locate(UInt64(u * il / 512)).column
                if n == il {
                    good += 1
                    let same = data.withUnsafeBytes { memcmp($0.baseAddress! + u * il, buf, il) == 0 }
                    #expect(same, "unit \(u) (column \(column)) returned wrong data")
                } else {
                    failed += 1
                    if column < 2 { healthyUnreadable.append(u) }
                }
            }
        }
        #expect(healthyUnreadable.isEmpty, "units on healthy columns failed: \(healthyUnreadable)")
        #expect(good >= units / 2, "good \(good) of \(units)")
        #expect(failed > 0)
        _ = devs

        // Replace is refused on a Last Erred volume without --force.
        let other = try rig.loop("other", size: Self.small)
        let refused = try f.run(["replace", "d10", newDev, other])
        #expect(!refused.ok)
        #expect(refused.stderr.split(separator: "\n").count == 1, "one line: \(refused.stderr)")
        #expect(refused.stderr.contains("Last Erred"), "\(refused.stderr)")
        #expect(try rig.volume()["state"] as? String == "Last Erred", "nothing changed")
    }

    #if arch(x86_64) || arch(i386)
    static let oDirect: Int32 = 0o40000
    #else
    static let oDirect: Int32 = 0o200000
    #endif

    /// Mounts d10 read-only through nbdfuse and hands an O_DIRECT descriptor to `body`.
    func withVolumeFile(_ rig: ResyncRig, _ body: (Int32) throws -> Void) throws {
        let mnt = rig.f.dir.file("volmnt")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        let pidFile = rig.f.dir.file("volfuse.pid")
        let fuse = try rig.spawn(["nbdfuse", "-r", "-P", pidFile, "\(mnt)/d10", rig.f.uri("d10")])
        defer {
            _ = try? runCommand(["fusermount3", "-u", mnt])
            fuse.waitUntilExit()
        }
        try rig.waitFor("nbdfuse") {
            guard fuse.isRunning else { throw TestSupportError("nbdfuse exited with \(fuse.terminationStatus)") }
            return FileManager.default.fileExists(atPath: pidFile)
        }
        let fd = open("\(mnt)/d10", O_RDONLY | Self.oDirect)
        guard fd >= 0 else { throw TestSupportError("cannot open \(mnt)/d10: errno \(errno)") }
        defer { close(fd) }
        try body(fd)
    }

    // MARK: without a server

    @Test(.enabled(if: enabled))
    func offlineReplaceRunsInTheForeground() throws {
        let (rig, _, fds) = try Self.rig()
        defer { rig.cleanup() }
        let f = rig.f
        let server = try f.startServer()
        let size = try #require(try rig.volume()["sizeBytes"] as? Int)
        let digest = try rig.fill(size: size)
        #expect(server.stop() == 0)
        // The device dies while nothing runs: at the next open it is missing.
        fds[0].fail()
        try f.mustRun(["set", "d10", "--resync-rate", "4m:4m"])
        let newDev = try rig.loop("new", size: Self.small)
        let r = try f.run(["replace", "d10", fds[0].path, newDev])
        #expect(r.ok, "replace: \(r.stderr)")
        #expect(r.stdout.contains("regenerating"))
        let progress = r.stderr.split(separator: "\n").filter { $0.contains("% done") }
        #expect(!progress.isEmpty, "progress lines on stderr: \(r.stderr)")
        #expect(progress.allSatisfy { $0.hasPrefix("d10: regenerate") }, "\(progress)")
        #expect(!r.stderr.contains("\r"), "no bar when stderr is not a terminal")
        let vol = try rig.volume()
        #expect(vol["live"] == nil)
        #expect(vol["state"] as? String == "Okay")
        #expect(vol["resync"] is NSNull)
        #expect(ResyncRig.state(vol, newDev) == "Okay")
        #expect(try rig.parityErrors().isEmpty)
        try f.startServer()
        #expect(try rig.readDigest() == digest)
    }
}
