import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Components with 4096-byte logical sectors end to end (review finding 5): loop devices made
/// with `losetup --direct-io=on -b 4096`, the built `metactl`, and real NBD clients. Cleanup
/// (``ResyncRig/cleanup()``: servers by PID, then `losetup -d`, then the temporary directory)
/// runs on every exit path.
@Suite("4096-byte logical sectors end to end")
struct SectorSizeE2ETests {
    static let tools = ["losetup", "nbdinfo", "qemu-io"]
    static let loopOptions = ["--direct-io=on", "-b", "4096"]
    static let imageSize: UInt64 = 32 << 20

    /// The state of every component of a volume, from `status --json`.
    static func componentStates(_ rig: ResyncRig, _ name: String = "d10") throws -> [String] {
        let v = try rig.volume(name)
        return (v["components"] as? [[String: Any]] ?? []).map { $0["state"] as? String ?? "?" }
    }

    /// A refused command: exit status 1 and exactly one line on stderr, containing `text`.
    static func expectRefused(_ rig: ResyncRig, _ args: [String], _ text: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try rig.f.run(args)
        #expect(!r.ok, "metactl \(args.joined(separator: " ")) succeeded", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(text), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test(.enabled(if: Privileged.runnable(tools: tools)))
    func raid5OnFourKSectorDevicesServesAlignedIOAndNeverFailsAColumn() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        let devs = try (0..<3).map { try rig.loop("k\($0)", size: Self.imageSize, options: Self.loopOptions) }
        for d in devs {
            let attr = "/sys/block/\((d as NSString).lastPathComponent)/queue/logical_block_size"
            let lbs = try String(contentsOfFile: attr, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            try #require(lbs == "4096", "\(d): logical sector \(lbs)")
        }

        // An interlace that is not a multiple of the sector is refused, naming the device.
        try Self.expectRefused(rig, ["create", "d10", "raid5", "-i", "10k"] + devs,
                               "\(devs[0]): logical sector size 4096 bytes: the interlace (10 KiB) must be a multiple of it")
        #expect(!(try rig.f.run(["status", "d10"])).ok, "nothing was created")

        try rig.f.create("d10", "raid5", devs)
        let server = try rig.f.startServer()
        try rig.waitFor("d10 to finish initialising", log: server) { try rig.volume()["state"] as? String == "Okay" }

        // The export advertises the sector as its minimum block size.
        let info = try nbdinfoJSON(rig.f.uri("d10"))
        #expect(info["block_size_minimum"] as? Int == 4096)
        #expect(info["block_size_preferred"] as? Int == 4096)

        // A client that ignores it and sends a 512-byte read at offset 512 gets EINVAL; no
        // column changes state (before the fix: Maintenance + Last Erred + Last Erred).
        let error = try rawNBDRead(socket: rig.f.socketPath, export: "d10", offset: 512, length: 512)
        #expect(error == UInt32(EINVAL))
        #expect(try Self.componentStates(rig) == ["Okay", "Okay", "Okay"], "server log:\n\(server.log)")

        // qemu honours the advertised minimum: its 512-byte read becomes a 4096-byte one.
        let small = try runCommand(["qemu-io", "-f", "raw", rig.f.uri("d10"), "-c", "read 512 512"])
        #expect(small.ok, "qemu-io read 512 512: \(small.stdout) \(small.stderr)")
        #expect(try Self.componentStates(rig) == ["Okay", "Okay", "Okay"], "server log:\n\(server.log)")
        #expect(try rig.volume()["state"] as? String == "Okay")

        // Aligned I/O works.
        let io = try runCommand(["qemu-io", "-f", "raw", rig.f.uri("d10"),
                                 "-c", "write -P 0x5a 0 64k", "-c", "read -P 0x5a 0 64k"])
        #expect(io.ok, "qemu-io: \(io.stdout) \(io.stderr)")
        #expect(!io.stdout.contains("Pattern verification failed"), "\(io.stdout)")
        #expect(!io.stderr.contains("failed"), "\(io.stderr)")
        #expect(try Self.componentStates(rig) == ["Okay", "Okay", "Okay"])
        #expect(!server.log.contains("marking it"), "a column was marked failed:\n\(server.log)")
    }

    /// Devices joining an existing volume (replacement, hot spare, grow) must fit its
    /// interlace and its sector; a concat mixing sector sizes starts each row on a sector.
    @Test(.enabled(if: Privileged.runnable(tools: ["losetup"])))
    func devicesJoiningAVolumeMustFitItsSector() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        let f = rig.f
        let big = try rig.loop("k0", size: 16 << 20, options: Self.loopOptions)
        try f.create("d20", "raid5", try f.images("r", count: 3, size: 16 << 20),
                     extra: ["-i", "10k", "--no-init", "--hot-spare-pool", "hsp001"])
        let r0 = f.dir.file("r0.img")
        try Self.expectRefused(rig, ["replace", "d20", r0, big],
                               "\(big): logical sector size 4096 bytes: the interlace of d20 (10 KiB) must be a multiple of it")
        try Self.expectRefused(rig, ["hs", "add", "hsp001", big],
                               "\(big): logical sector size 4096 bytes: the interlace of d20 (10 KiB) must be a multiple of it")

        // The interlace fits, but the volume's clients may use 512-byte sectors.
        try f.create("d30", "raid5", try f.images("s", count: 3, size: 16 << 20), extra: ["--no-init"])
        try Self.expectRefused(rig, ["replace", "d30", f.dir.file("s0.img"), big],
                               "\(big): logical sector size 4096 bytes is larger than the 512-byte sector of d30")
        try f.create("d40", "concat", try f.images("c", count: 1, size: 16 << 20))
        try Self.expectRefused(rig, ["grow", "d40", big],
                               "\(big): logical sector size 4096 bytes is larger than the 512-byte sector of d40")
        #expect(try Self.componentStates(rig, "d20") == ["Okay", "Okay", "Okay"])

        // grow -i: a new stripe row's interlace must suit its devices and the volume's sector.
        let k1 = try rig.loop("k1", size: 16 << 20, options: Self.loopOptions)
        let k2 = try rig.loop("k2", size: 16 << 20, options: Self.loopOptions)
        let k3 = try rig.loop("k3", size: 16 << 20, options: Self.loopOptions)
        try f.create("d60", "stripe", [k1, k2], extra: ["-i", "64k"])
        try Self.expectRefused(rig, ["grow", "d60", "-i", "10k", k3, big],
                               "\(k3): logical sector size 4096 bytes: the interlace (10 KiB) must be a multiple of it")
        try Self.expectRefused(rig, ["grow", "d60", "-i", "10k"] + (try f.images("g", count: 2, size: 16 << 20)),
                               "d60: -i: the interlace (10 KiB) must be a multiple of the volume's 4096-byte sector")

        // A concat of an image with an odd number of 512-byte blocks and a 4096-byte-sector
        // device: the first row is cut to whole 4096-byte sectors, so the second starts on one.
        let odd = try f.dir.image("odd.img", size: (16 << 20) + 512)
        try f.create("d50", "concat", [odd, big])
        let rows = try #require(try rig.volume("d50")["rows"] as? [[String: Any]])
        #expect(rows.count == 2)
        for r in rows { #expect((r["sizeBytes"] as? Int ?? 1) % 4096 == 0, "\(r)") }
        #expect((try rig.volume("d50")["sizeBytes"] as? Int ?? 1) % 4096 == 0)
    }
}

/// Sends one NBD_CMD_READ over a new connection (fixed newstyle, NBD_OPT_GO without
/// information requests, simple replies), ignoring the block sizes the server advertises,
/// and returns the reply's error value.
func rawNBDRead(socket path: String, export: String, offset: UInt64, length: UInt32) throws -> UInt32 {
    let c = try RawNBDClient(socketPath: path)
    try c.connect(export: export, infos: [])
    return try c.read(offset: offset, length: length).error
}
