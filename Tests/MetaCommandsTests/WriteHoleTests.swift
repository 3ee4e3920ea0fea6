import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// kill -9 of the server during heavy writes, then a column failure: every block that was
/// written and flushed before, and not rewritten since, reads back correctly from the
/// degraded volume (the dirty-region log made the restart recompute parity).
@Suite("write hole: crash during writes, then a column failure")
struct WriteHoleTests {
    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy", "fio"])))
    func crashThenDegradedReadsAreRight() throws {
        let f = try ServeFixture(prefix: "metactl-hole")
        defer { f.cleanup() }
        let imgs = try f.images("c", count: 4, size: 40 << 20)
        // The dirty-region log alone (WriteLogE2ETests covers the write log).
        try f.create("d10", "raid5", imgs, extra: ["--no-init", "--write-log", "none"])
        var server = try f.startServer()
        let vols = try #require(f.statusJSON()["volumes"] as? [[String: Any]])
        let size = try #require(vols.first?["sizeBytes"] as? Int)

        // Known data everywhere, flushed (nbdcopy flushes before it exits).
        let a = f.dir.file("a.bin")
        let original = try writeRandomFile(a, size: size)
        try MetaTestSupport.mustRun(["nbdcopy", a, f.uri("d10")])

        // Heavy writes to every odd 4 KiB block of the first half, then kill -9 mid-way.
        let fio = Process()
        fio.executableURL = URL(fileURLWithPath: try #require(Privileged.which("fio")))
        fio.arguments = ["--name=hole", "--ioengine=nbd", "--uri=\(f.uri("d10"))", "--rw=write:4k", "--bs=4k",
                         "--offset=4096", "--size=\(size / 2)", "--iodepth=32", "--time_based", "--runtime=30",
                         "--output=\(f.dir.file("fio.out"))"]
        fio.standardOutput = FileHandle.nullDevice
        fio.standardError = FileHandle.nullDevice
        try fio.run()
        defer { if fio.isRunning { kill(fio.processIdentifier, SIGKILL); fio.waitUntilExit() } }
        usleep(2_500_000)
        #expect(fio.isRunning, "fio should still be writing when the server dies")
        _ = server.stop(signal: SIGKILL)
        fio.waitUntilExit()

        // Restart: the dirty regions get their parity recomputed.
        server = try f.startServer()
        let deadline = Date().addingTimeInterval(120)
        while !server.log.contains("parity repair done") && Date() < deadline { usleep(200_000) }
        #expect(server.log.contains("did not shut down cleanly"))
        #expect(server.log.contains("recomputing parity"))
        #expect(server.log.contains("parity repair done"))
        #expect(server.stop() == 0)

        // A column fails (its image is gone): degraded reads must be right.
        try FileManager.default.moveItem(atPath: imgs[1], toPath: imgs[1] + ".gone")
        server = try f.startServer()
        let comps = try #require((f.statusJSON()["volumes"] as? [[String: Any]])?.first?["components"] as? [[String: Any]])
        #expect(comps[1]["state"] as? String == "Unavailable")
        let b = f.dir.file("b.bin")
        try MetaTestSupport.mustRun(["nbdcopy", f.uri("d10"), b])
        let back = try Data(contentsOf: URL(fileURLWithPath: b))
        #expect(back.count == original.count)
        var wrong = 0
        let block = 4096
        for i in 0..<(size / block) {
            // Odd blocks of the first half may hold fio's data; everything else is the original.
            if i < size / 2 / block && i % 2 == 1 { continue }
            let r = (i * block)..<((i + 1) * block)
            if back[r] != original[r] { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) blocks read back wrong from the degraded volume")
    }
}
