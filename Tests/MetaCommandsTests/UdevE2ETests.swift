import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `serve` follows the kernel's block-device uevents: a component pulled while served fails at
/// once, without any I/O (the test does none between the pull and the check), and a hot spare
/// takes over; a device that comes back is named in the log with the command that brings it
/// back, and that command works. The pull is a real kernel uevent: writing `remove` or `add`
/// to `/sys/class/block/loopN/uevent` makes the kernel send one (no udev daemon runs here).
@Suite("udev: pulled and returning disks")
struct UdevE2ETests {
    static var enabled: Bool { Privileged.runnable && Privileged.runnable(tools: ["losetup", "nbdcopy", "sha256sum"]) }

    /// Sends a real kernel uevent for a loop device.
    static func uevent(_ action: String, _ device: String) throws {
        let name = (device as NSString).lastPathComponent
        try Data("\(action)\n".utf8).write(to: URL(fileURLWithPath: "/sys/class/block/\(name)/uevent"))
    }

    static func rig(spare: Bool) throws -> (ResyncRig, [String], String?) {
        let rig = try ResyncRig()
        let devs = try (0..<4).map { try rig.loop("u\($0)", size: ResyncE2ETests.small) }
        try rig.f.create("d10", "raid5", devs, extra: ["--no-init"])
        guard spare else { return (rig, devs, nil) }
        let s = try rig.loop("spare", size: ResyncE2ETests.small)
        try rig.f.mustRun(["hs", "create", "hsp001", s])
        try rig.f.mustRun(["set", "d10", "--hot-spare-pool", "hsp001"])
        return (rig, devs, s)
    }

    /// Serves the rig, fills its volume, pulls `device` and waits until its column is
    /// Unavailable. Returns the server and the digest of the data.
    static func serveFillAndPull(_ rig: ResyncRig, _ device: String) throws -> (ServeProcess, String) {
        let server = try rig.f.startServer()
        let size = try #require(try rig.volume()["sizeBytes"] as? Int)
        let digest = try rig.fill(size: size)
        try uevent("remove", device)
        try rig.waitFor("the pulled column to be Unavailable", limit: 30, log: server) {
            ResyncRig.state(try rig.volume(), device) == "Unavailable"
        }
        return (server, digest)
    }

    @Test(.enabled(if: enabled), .timeLimit(.minutes(3)))
    func pulledDiskFailsAtOnceAndASpareTakesOver() throws {
        let (rig, devs, spare) = try Self.rig(spare: true)
        defer { rig.cleanup() }
        let server = try rig.f.startServer()
        let size = try #require(try rig.volume()["sizeBytes"] as? Int)
        let digest = try rig.fill(size: size)
        try Self.uevent("remove", devs[2])
        // No client I/O from here until the spare stands in.
        try rig.waitFor("the pulled column to fail", limit: 30, log: server) {
            let v = try rig.volume()
            return ResyncRig.component(v, devs[2])?["hotSpare"] as? String == spare
                || ResyncRig.state(v, devs[2]) == "Unavailable"
        }
        // The uevent fails the column (Unavailable), unless an I/O of the engine met the
        // removed device first (on a loaded machine the event can come later): then the
        // uevent finds the spare already taking over (Resyncing). Either way, at once.
        #expect(server.log.contains("d10: \(devs[2]) was removed (kernel uevent): column 2 is Unavailable")
                || server.log.contains("d10: column 2 (\(devs[2])) failed: \(devs[2]): read: the kernel removed the device"), "\(server.log)")
        let vol = try rig.waitForResyncEnd()
        #expect(vol["state"] as? String == "Okay")
        #expect(ResyncRig.component(vol, devs[2])?["hotSpare"] as? String == spare)
        #expect(try rig.readDigest() == digest)
        // Events of devices the volume does not use, or of a member in use, change nothing.
        let other = try rig.loop("other", size: 1 << 20)
        try Self.uevent("remove", other)
        try Self.uevent("add", devs[0])
        usleep(500_000)
        #expect(try rig.volume()["state"] as? String == "Okay")
        #expect(!server.log.contains("is back"))
        // The spare standing in is pulled too: the column fails again (no spare left).
        try Self.uevent("remove", spare!)
        try rig.waitFor("the column on the pulled spare to fail", limit: 30, log: server) {
            try rig.volume()["state"] as? String == "Needs Maintenance"
        }
        #expect(try rig.readDigest() == digest)
    }

    /// Pulled, then back at the same node: re-enabled on its own and rebuilt.
    @Test(.enabled(if: enabled), .timeLimit(.minutes(3)))
    func returningDiskIsReenabledAndRegenerated() throws {
        let (rig, devs, _) = try Self.rig(spare: false)
        defer { rig.cleanup() }
        let (server, digest) = try Self.serveFillAndPull(rig, devs[1])
        #expect(try rig.volume()["state"] as? String == "Needs Maintenance")
        #expect(try rig.readDigest() == digest)
        try Self.uevent("add", devs[1])
        try rig.waitFor("the returning disk to be regenerated", limit: 30, log: server) {
            server.log.contains("d10: \(devs[1]), the device of column 1 (Unavailable since it went away), is back: rebuilding the")
        }
        let vol = try rig.waitForResyncEnd()
        #expect(vol["state"] as? String == "Okay")
        #expect(ResyncRig.state(vol, devs[1]) == "Okay")
        #expect(try rig.readDigest() == digest)
        rig.f.cleanup()
        #expect(try rig.parityErrors().isEmpty)
    }

    /// Pulled, then back under another name (the same image file on another loop device): it
    /// is found by its label, used at its new path, and regenerated; a device of no column
    /// (a new one with no label) is ignored.
    @Test(.enabled(if: enabled), .timeLimit(.minutes(3)))
    func diskBackUnderAnotherNameIsFoundByItsLabel() throws {
        let (rig, devs, _) = try Self.rig(spare: false)
        defer { rig.cleanup() }
        let (server, digest) = try Self.serveFillAndPull(rig, devs[3])
        let stranger = try rig.loop("stranger", size: ResyncE2ETests.small)
        try Self.uevent("add", stranger)
        // The same bytes under a new device name.
        let again = try LoopDevice(file: rig.backingFile(devs[3]))
        defer { again.detach() }
        try Self.uevent("add", again.path)
        try rig.waitFor("the disk to be found at its new name", limit: 30, log: server) {
            server.log.contains("d10: \(again.path), the device of column 3 (Unavailable since it went away), is back: rebuilding the")
        }
        let vol = try rig.waitForResyncEnd()
        #expect(vol["state"] as? String == "Okay")
        #expect(ResyncRig.state(vol, again.path) == "Okay", "\(vol)")
        #expect(!server.log.contains(stranger))
        #expect(try rig.readDigest() == digest)
        rig.f.cleanup()
        #expect(try rig.parityErrors().isEmpty)
    }

    /// md's re-add with a write-intent bitmap: a disk pulled from a healthy volume and back
    /// is rebuilt over the dirty regions written while it was away only (here 2 of 4), and
    /// every byte and every line's parity is right afterwards.
    @Test(.enabled(if: enabled && Privileged.runnable(tools: ["qemu-io"])), .timeLimit(.minutes(4)))
    func returningDiskRebuildsOnlyTheRegionsWrittenWhileAway() throws {
        let rig = try ResyncRig()
        defer { rig.cleanup() }
        // 64 KiB interlace: a region is 1024 lines, 192 MiB of a 4-column volume's data; 260 MiB
        // devices give 4 regions (the last one partial).
        let devs = try (0..<4).map { try rig.loop("r\($0)", size: 260 << 20) }
        try rig.f.create("d10", "raid5", devs, extra: ["--no-init"])
        let server = try rig.f.startServer()
        let region = 192 << 20
        func write(_ pattern: Int, at offset: Int) throws {
            try MetaTestSupport.mustRun(["timeout", "60", "qemu-io", "-f", "raw", "-c", "write -P \(pattern) \(offset) 1M",
                                         "-c", "flush", rig.f.uri("d10")])
        }
        try write(0x11, at: 0)
        try Self.uevent("remove", devs[1])
        try rig.waitFor("the pulled column to be Unavailable", limit: 30, log: server) {
            ResyncRig.state(try rig.volume(), devs[1]) == "Unavailable"
        }
        // Written while it is away: regions 0 and 1 (region 0 may also have been dirty when
        // it went away; either way it is one of the two).
        try write(0x22, at: 512 << 10)
        try write(0x33, at: region + (4 << 20))
        let away = try rig.volume()
        #expect(ResyncRig.component(away, devs[1])?["staleRegions"] as? Int == 2, "\(away)")
        let text = try rig.f.mustRun(["status", "d10"])
        #expect(text.contains("\(devs[1]) is away: 2 regions written since; when it comes back only those are rebuilt"), "\(text)")
        let digest = try rig.readDigest()

        try Self.uevent("add", devs[1])
        try rig.waitFor("the returning disk to be rebuilt", limit: 30, log: server) {
            server.log.contains("d10: \(devs[1]), the device of column 1 (Unavailable since it went away), is back: rebuilding the 2 region(s) written while it was away")
        }
        let vol = try rig.waitForResyncEnd()
        #expect(server.log.contains("d10: rebuilding 2 region(s) written while the device was away"), "\(server.log)")
        #expect(vol["state"] as? String == "Okay")
        #expect(ResyncRig.state(vol, devs[1]) == "Okay")
        #expect(ResyncRig.component(vol, devs[1])?["staleRegions"] is NSNull)
        #expect(try rig.readDigest() == digest)
        for (pattern, offset) in [(0x11, 0), (0x22, 512 << 10), (0x33, region + (4 << 20))] {
            let n = pattern == 0x11 ? 512 << 10 : 1 << 20
            try MetaTestSupport.mustRun(["timeout", "60", "qemu-io", "-f", "raw", "-r", "-c", "read -P \(pattern) \(offset) \(n)", rig.f.uri("d10")])
        }
        rig.f.cleanup()
        #expect(try rig.parityErrors().isEmpty, "the rebuilt column's lines agree with their parity everywhere")
    }
}
