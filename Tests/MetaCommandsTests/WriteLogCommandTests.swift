import Foundation
import Testing
import MetaCommands
import MetaControl
import MetaTestSupport

/// `create --write-log`, `set --write-log` and how `status` shows the write log, through the
/// built binary on image files.
@Suite("metactl write log options (binary)")
struct WriteLogCommandTests {
    typealias CLI = CreateClearTests.CLI

    @Test func defaultOnSwitchOffAndOnAgain() throws {
        let dir = try TempDir()
        let cli = try CLI(dir)
        let imgs = try CreateClearTests.images(dir, ["a", "b", "c"], size: 48 << 20)
        let size = try cli.create(["d10", "raid5", "--no-init"] + imgs)
        var (report, doc) = try cli.statusJSON(["d10"])
        #expect(report.volumes.first?.writeLog == StatusReport.WriteLogStatus(mode: "auto", areaBytes: 1 << 20))
        let json = try #require((doc["volumes"] as? [[String: Any]])?.first?["writeLog"] as? [String: Any])
        #expect(json["mode"] as? String == "auto" && json["areaBytes"] as? Int == 1 << 20)
        #expect(try cli.must(["status", "d10"]).contains("    Write log: on (1.0 MiB per column)"))
        #expect(!(try cli.must(["status", "-p", "d10"]).contains("--write-log")))

        try cli.must(["set", "d10", "--write-log", "none"])
        (report, _) = try cli.statusJSON(["d10"])
        #expect(report.volumes.first?.writeLog == StatusReport.WriteLogStatus(mode: "none", areaBytes: 1 << 20))
        #expect(report.volumes.first?.sizeBytes == size, "switching the log off keeps its area (and the size)")
        #expect(try cli.must(["status", "d10"]).contains("    Write log: off (1.0 MiB per column reserved)"))
        #expect(try cli.must(["status", "-p", "d10"]).contains("create d10 raid5 -i 64k --write-log none"))

        try cli.must(["set", "d10", "--write-log", "auto"])
        (report, _) = try cli.statusJSON(["d10"])
        #expect(report.volumes.first?.writeLog?.mode == "auto")
    }

    @Test func createWithoutALogAndRefusals() throws {
        let dir = try TempDir()
        let cli = try CLI(dir)
        let imgs = try CreateClearTests.images(dir, ["a", "b", "c"], size: 48 << 20)
        let withLog = try CreateClearTests.images(dir, ["x", "y", "z"], size: 48 << 20)
        try cli.create(["d10", "raid5", "--no-init", "--write-log", "none"] + imgs)
        try cli.create(["d11", "raid5", "--no-init"] + withLog)
        let (report, _) = try cli.statusJSON(["d10"])
        #expect(report.volumes.first?.writeLog == StatusReport.WriteLogStatus(mode: "none", areaBytes: 0))
        #expect(try cli.must(["status", "d10"]).contains("    Write log: off"))

        // No room after the columns: refused, with the reason, nothing changed.
        let r = try cli.run(["set", "d10", "--write-log", "auto"])
        #expect(r.status == 65)
        #expect(r.stderr.contains("no room for a write log on column 0 (\(imgs[0]))"), "\(r.stderr)")
        #expect(try cli.statusJSON(["d10"]).0.volumes.first?.writeLog?.mode == "none")

        let bad = try cli.run(["set", "d10", "--write-log", "maybe"])
        #expect(bad.status != 0 && bad.stderr.contains("--write-log maybe: use auto or none"), "\(bad.stderr)")
        let concat = try CreateClearTests.images(dir, ["k"], size: 8 << 20)
        let c = try cli.run(["create", "c1", "concat", "--write-log", "none"] + concat)
        #expect(c.status != 0 && c.stderr.contains("--write-log applies to raid5 and raid6 volumes"), "\(c.stderr)")
    }

    /// RAID-6 logs its writes when asked to (`--write-log auto`; off by default), shows it,
    /// reprints it with `status -p`, and switches it off and on; one made without it has no
    /// room for it.
    @Test func raid6WriteLogIsAskedFor() throws {
        let dir = try TempDir()
        let cli = try CLI(dir)
        let imgs = try CreateClearTests.images(dir, ["a", "b", "c", "d"], size: 48 << 20)
        let plain = try CreateClearTests.images(dir, ["w", "x", "y", "z"], size: 48 << 20)
        try cli.create(["d20", "raid6", "--no-init", "--write-log", "auto"] + imgs)
        try cli.create(["d21", "raid6", "--no-init"] + plain)
        var (report, _) = try cli.statusJSON(["d20"])
        #expect(report.volumes.first?.writeLog == StatusReport.WriteLogStatus(mode: "auto", areaBytes: 1 << 20))
        #expect(try cli.must(["status", "d20"]).contains("    Write log: on (1.0 MiB per column)"))
        #expect(try cli.must(["status", "-p", "d20"]).contains("create d20 raid6 -i 64k --write-log auto"))
        #expect(try cli.statusJSON(["d21"]).0.volumes.first?.writeLog == nil)
        #expect(!(try cli.must(["status", "-p", "d21"]).contains("--write-log")))

        try cli.must(["set", "d20", "--write-log", "none"])
        (report, _) = try cli.statusJSON(["d20"])
        #expect(report.volumes.first?.writeLog?.mode == "none")
        try cli.must(["set", "d20", "--write-log", "auto"])
        #expect(try cli.statusJSON(["d20"]).0.volumes.first?.writeLog?.mode == "auto")

        let r = try cli.run(["set", "d21", "--write-log", "auto"])
        #expect(r.status == 65 && r.stderr.contains("no room for a write log on column 0 (\(plain[0]))"), "\(r.stderr)")

        // A dedicated log device, as for RAID-5 (one copy of each record there).
        let logImg = try dir.image("log6.img", size: 32 << 20)
        try cli.must(["set", "d20", "--log-device", logImg])
        let log = try #require(try cli.statusJSON(["d20"]).0.volumes.first?.writeLog)
        #expect(log.device == logImg && log.mode == "auto" && log.deviceFailed == false)
        try cli.must(["set", "d20", "--log-device", "none"])
        #expect(try cli.statusJSON(["d20"]).0.volumes.first?.writeLog?.device == nil)
    }

    @Test func logDeviceAttachAndDetach() throws {
        let dir = try TempDir()
        let cli = try CLI(dir)
        let imgs = try CreateClearTests.images(dir, ["a", "b", "c"], size: 48 << 20)
        let logImg = try dir.image("log.img", size: 32 << 20)
        try cli.create(["d10", "raid5", "--no-init"] + imgs)
        try cli.must(["set", "d10", "--log-device", logImg])
        var log = try #require(try cli.statusJSON(["d10"]).0.volumes.first?.writeLog)
        #expect(log.device == logImg && log.mode == "auto" && log.deviceFailed == false)
        #expect(log.deviceAreaBytes == (32 << 20) - (1 << 20), "the data area after the label")
        #expect(try cli.must(["status", "d10"]).contains("    Write log: on, on \(logImg) (31.0 MiB)"))
        // It is a member now: no volume can take it.
        let again = try cli.run(["create", "x1", "concat", logImg])
        #expect(!again.ok && again.stderr.contains(logImg))

        try cli.must(["set", "d10", "--log-device", "none"])
        log = try #require(try cli.statusJSON(["d10"]).0.volumes.first?.writeLog)
        #expect(log.device == nil && log.mode == "auto")
        // It left the set (its label wiped): it can be used again.
        try cli.create(["x1", "concat", logImg])

        let bad = try cli.run(["set", "d10", "--log-device", dir.file("nothere.img")])
        #expect(bad.status != 0 && bad.stderr.contains("nothere.img"), "\(bad.stderr)")
    }
}

