import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The write hole closed on real devices: ext4 on a RAID-5 (three loop devices and one that
/// fails on demand: nbdkit's error filter through nbdfuse and a loop device), served over
/// NBD and used through nbdfuse, a loop device and the kernel's ext4. Files are written and
/// synced; during heavy writes the failing column starts failing and the server is killed
/// with SIGKILL at the same moment; the server starts again with that column gone. The log's
/// replay makes every torn line whole, so the file system checks clean and every synced file
/// reads back.
@Suite("write log: kill -9 during writes with a column failing")
struct WriteLogE2ETests {
    /// RAID-5 with one column failing; RAID-6 (`--write-log auto`) with two failing at once,
    /// which the two copies of each record survive.
    @Test(.enabled(if: Privileged.fuseRunnable
                   && Privileged.runnable(tools: ["nbdkit", "nbdfuse", "fusermount3", "losetup", "mkfs.ext4", "mount",
                                                  "umount", "e2fsck", "fio", "sync"])),
          arguments: ["raid5", "raid6"])
    func killWithColumnsFailingKeepsEverySyncedFile(_ layout: String) throws {
        let f = try ServeFixture(prefix: "metactl-wlog")
        defer { f.cleanup() }
        let failingDevices = try (0..<(layout == "raid6" ? 2 : 1)).map { try FailingDevice(in: f.dir, name: "bad\($0)", size: 96 << 20) }
        defer { for d in failingDevices { d.cleanup() } }
        let loops = try f.images("c", count: 3, size: 96 << 20).map { try LoopDevice(file: $0, options: ["--direct-io=on"]) }
        defer { for l in loops { l.detach() } }
        // Sparse images read as zeroes: parity is valid from the start.
        try f.create("d10", layout, loops.map(\.path) + failingDevices.map(\.path),
                     extra: ["--no-init"] + (layout == "raid6" ? ["--write-log", "auto"] : []))
        #expect(try f.mustRun(["status", "d10"]).contains("Write log: on"))
        var server = try f.startServer()
        var client: Ext4Client? = try Ext4Client(f, volume: "d10", tag: "1")
        defer { client?.close(lazy: true) }
        try MetaTestSupport.mustRun(["mkfs.ext4", "-q", "-F", client!.device])
        try client!.mount()

        // Files with known contents, synced.
        var written: [String: Data] = [:]
        for i in 0..<12 {
            written["f\(i)"] = try writeRandomFile("\(client!.mnt)/f\(i)", size: (i + 1) * 300_000 + 4321)
        }
        try MetaTestSupport.mustRun(["sync", "-f", client!.mnt])

        // Heavy writes (random 4 KiB and 64 KiB, direct, many in flight) to other files.
        let fio = Process()
        fio.executableURL = URL(fileURLWithPath: try #require(Privileged.which("fio")))
        fio.arguments = ["--name=load", "--directory=\(client!.mnt)", "--rw=randwrite", "--bsrange=4k-64k", "--size=24m",
                         "--numjobs=2", "--ioengine=psync", "--direct=1", "--time_based", "--runtime=60",
                         "--output=\(f.dir.file("fio.out"))"]
        fio.standardOutput = FileHandle.nullDevice
        fio.standardError = FileHandle.nullDevice
        try fio.run()
        defer { if fio.isRunning { kill(fio.processIdentifier, SIGKILL); fio.waitUntilExit() } }
        usleep(3_000_000)
        #expect(fio.isRunning, "fio should still be writing when the server dies")

        // The columns fail and the server dies at the same moment.
        for d in failingDevices { d.fail() }
        _ = server.stop(signal: SIGKILL)
        kill(fio.processIdentifier, SIGKILL)
        fio.waitUntilExit()
        client?.close(lazy: true)
        client = nil
        // The failed columns do not come back.
        for d in failingDevices { d.cleanup() }

        server = try f.startServer()
        let deadline = Date().addingTimeInterval(60)
        while !server.log.contains("write log record") && Date() < deadline { usleep(100_000) }
        #expect(server.log.contains("replaying"), "log:\n\(server.log)")
        let status = try f.mustRun(["status", "d10"])
        #expect(status.contains("Needs Maintenance"), "\(status)")
        #expect(!status.contains("Lost:"), "\(status)")

        // The file system: the journal replays at mount, every synced file reads back, and
        // after unmounting the check is clean.
        client = try Ext4Client(f, volume: "d10", tag: "2")
        try client!.mount()
        for (name, data) in written.sorted(by: { $0.key < $1.key }) {
            let back = try? Data(contentsOf: URL(fileURLWithPath: "\(client!.mnt)/\(name)"))
            #expect(back == data, "\(name) does not read back")
        }
        try client!.unmount()
        let fsck = try runCommand(["e2fsck", "-fn", client!.device])
        #expect(fsck.status == 0, "e2fsck -fn:\n\(fsck.stdout)\(fsck.stderr)")
        client?.close()
        client = nil
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }
}

/// `set --write-log` while the volume is served and written: off, on again, then kill -9
/// and a restart without a column: everything written reads back.
@Suite("write log: switching online")
struct WriteLogOnlineTests {
    /// Random bytes the size of the volume, written through NBD; returns them.
    func fill(_ f: ServeFixture, _ name: String, size: Int) throws -> Data {
        let file = f.dir.file(name)
        let data = try writeRandomFile(file, size: size)
        try MetaTestSupport.mustRun(["nbdcopy", file, f.uri("d10")])
        return data
    }

    /// kill -9 of `server`, then a start without `column`'s image: the volume must read back
    /// `expected`. Stops the new server.
    func crashThenVerify(_ f: ServeFixture, _ server: ServeProcess, without column: String, expected: Data) throws {
        _ = server.stop(signal: SIGKILL)
        try FileManager.default.moveItem(atPath: column, toPath: column + ".gone")
        let restarted = try f.startServer()
        let back = f.dir.file("back.bin")
        try MetaTestSupport.mustRun(["nbdcopy", f.uri("d10"), back])
        #expect(try Data(contentsOf: URL(fileURLWithPath: back)) == expected)
        #expect(try f.mustRun(["status", "d10"]).contains("Needs Maintenance"))
        #expect(restarted.stop() == 0, "log:\n\(restarted.log)")
    }

    func volumeSize(_ f: ServeFixture) throws -> Int {
        try #require((f.statusJSON()["volumes"] as? [[String: Any]])?.first?["sizeBytes"] as? Int)
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy"])))
    func switchOffAndOnWhileServedThenCrash() throws {
        let f = try ServeFixture(prefix: "metactl-wlon")
        defer { f.cleanup() }
        let imgs = try f.images("c", count: 3, size: 40 << 20)
        try f.create("d10", "raid5", imgs, extra: ["--no-init"])
        let server = try f.startServer()
        let size = try volumeSize(f)
        _ = try fill(f, "a.bin", size: size)
        _ = try f.mustRun(["set", "d10", "--write-log", "none"])
        #expect(try f.mustRun(["status", "d10"]).contains("Write log: off"))
        _ = try fill(f, "b.bin", size: size)
        _ = try f.mustRun(["set", "d10", "--write-log", "auto"])
        #expect(try f.mustRun(["status", "d10"]).contains("Write log: on"))
        let expected = try fill(f, "c.bin", size: size)
        try crashThenVerify(f, server, without: imgs[2], expected: expected)
    }

    /// A dedicated log device (an image file): data written through NBD, kill -9, restart
    /// without a column: everything reads back.
    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy"])))
    func logDeviceThenCrashWithAColumnGone() throws {
        let f = try ServeFixture(prefix: "metactl-wldev")
        defer { f.cleanup() }
        let imgs = try f.images("c", count: 3, size: 40 << 20)
        let logImg = try f.images("log", count: 1, size: 16 << 20)[0]
        try f.create("d10", "raid5", imgs, extra: ["--no-init"])
        _ = try f.mustRun(["set", "d10", "--log-device", logImg])
        let server = try f.startServer()
        #expect(try f.mustRun(["status", "d10"]).contains("Write log: on, on \(logImg)"))
        let expected = try fill(f, "a.bin", size: try volumeSize(f))
        try crashThenVerify(f, server, without: imgs[0], expected: expected)
    }

    /// The dedicated log device (nbdkit's error filter through nbdfuse and a loop device)
    /// fails while the volume is written: writes go on, logged in the columns' areas; the
    /// server says so, `status` shows it; after kill -9 and a restart without a column,
    /// everything reads back.
    @Test(.enabled(if: Privileged.fuseRunnable && Privileged.runnable(tools: ["nbdkit", "nbdfuse", "fusermount3", "losetup", "nbdcopy"])))
    func failingLogDeviceFallsBackToTheColumns() throws {
        let f = try ServeFixture(prefix: "metactl-wlfail")
        defer { f.cleanup() }
        let logDev = try FailingDevice(in: f.dir, name: "logdev", size: 16 << 20)
        defer { logDev.cleanup() }
        let imgs = try f.images("c", count: 3, size: 40 << 20)
        try f.create("d10", "raid5", imgs, extra: ["--no-init"])
        _ = try f.mustRun(["set", "d10", "--log-device", logDev.path])
        let server = try f.startServer()
        let size = try volumeSize(f)
        _ = try fill(f, "a.bin", size: size)
        logDev.failWrites()
        let expected = try fill(f, "b.bin", size: size)
        #expect(server.log.contains("the write log's device \(logDev.path) failed"), "log:\n\(server.log)")
        #expect(server.log.contains("writes are logged in the columns' areas from now on"))
        let status = try f.mustRun(["status", "d10"])
        #expect(status.contains("the log device \(logDev.path) failed"), "\(status)")
        #expect(status.contains("State: Okay"), "the columns are fine: \(status)")
        try crashThenVerify(f, server, without: imgs[1], expected: expected)
    }
}
