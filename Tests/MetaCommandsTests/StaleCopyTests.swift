import Foundation
import MetaTestSupport
import Testing

/// Review item 13: an older copy of a RAID-5 column's device (here: a copy of its image file
/// taken before the server started) put where the device was must not be read as the column.
/// Before the freshness stamp it was opened as that column, `Okay`, and reads of its units
/// returned the old bytes without an error.
@Suite("stale copies of members")
struct StaleCopyTests {
    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy", "sha256sum"])))
    func olderCopyOfAColumnIsNotReadAsTheColumn() throws {
        let f = try ServeFixture(prefix: "metactl-stale")
        defer { f.cleanup() }
        try f.mustRun(["db", "create"] + (try f.images("r", count: 3, size: 16 << 20)))
        let cols = try f.images("c", count: 4, size: 40 << 20)
        try f.create("d10", "raid5", cols, extra: ["--no-init"])
        // The copy is taken now, before any server has started.
        try FileManager.default.copyItem(atPath: cols[2], toPath: f.dir.file("old-c2.img"))

        let server = try f.startServer()
        let size = try #require(((try f.statusJSON(["d10"])["volumes"] as? [[String: Any]])?.first?["sizeBytes"] as? NSNumber)?.intValue)
        let src = f.dir.file("in.bin"), out = f.dir.file("out.bin")
        try writeRandomFile(src, size: size)
        try MetaTestSupport.mustRun(["nbdcopy", src, f.uri("d10")])
        #expect(server.stop() == 0, "serve exit status; log:\n\(server.log)")

        // The old copy stands where column 2's device was.
        try FileManager.default.removeItem(atPath: cols[2])
        try FileManager.default.moveItem(atPath: f.dir.file("old-c2.img"), toPath: cols[2])
        let again = try f.startServer()
        try MetaTestSupport.mustRun(["nbdcopy", f.uri("d10"), out])
        #expect(try sha256(out) == (try sha256(src)), "every byte reads back as written (column 2 rebuilt from parity)")
        let vol = try #require((try f.statusJSON(["d10"])["volumes"] as? [[String: Any]])?.first)
        #expect(vol["state"] as? String == "Needs Maintenance", "\(vol)")
        let states = (vol["components"] as? [[String: Any]])?.map { $0["state"] as? String }
        #expect(states?[2] == "Unavailable", "\(vol)")
        #expect(again.log.contains("an older copy of member"), "serve names the stale copy; log:\n\(again.log)")
    }
}
