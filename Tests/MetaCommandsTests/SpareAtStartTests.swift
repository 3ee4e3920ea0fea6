import Foundation
import Logging
@testable import MetaControl
import MetaDB
import MetaModel
import MetaEngine
import MetaTestSupport
import Testing

/// A column missing when the server starts (`Unavailable`) takes a hot spare, as a column
/// that fails while served does (the newcomer review: it never did).
@Suite("hot spare for a column missing at start")
struct SpareAtStartTests {
    @Test func unavailableColumnTakesASpareAtStart() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CreateClearTests.CLI(dir)
        try cli.must(["db", "create"] + (try CreateClearTests.images(dir, ["r0", "r1", "r2"])))
        let cols = try CreateClearTests.images(dir, ["c0", "c1", "c2"])
        let spare = try CreateClearTests.images(dir, ["s0"])[0]
        try cli.must(["hs", "create", "hsp001", spare])
        try cli.create(["d10", "raid5", "--no-init", "--hot-spare-pool", "hsp001"] + cols)
        // Data, written through an engine opened without a server.
        let data = (0..<(256 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        do {
            let db = try SetDatabase.open(setName: "local", configDir: cli.configDir, runDir: cli.runDir, mode: .readWrite)
            let m = SetManager(db: db, configDir: cli.configDir, logger: Logger(label: "test"), isServer: false)
            try data.withUnsafeBytes { try m.openEngine("d10").write(offset: 0, from: $0, fua: true) }
            m.closeEngines(); db.close()
        }
        // Column 1's device is gone before the server starts.
        try FileManager.default.moveItem(atPath: cols[1], toPath: cols[1] + ".away")
        let db = try SetDatabase.open(setName: "local", configDir: cli.configDir, runDir: cli.runDir, mode: .readWrite)
        let m = SetManager(db: db, configDir: cli.configDir, logger: Logger(label: "test"), isServer: true)
        defer { m.closeEngines(); db.close() }
        let col = try #require(db.config.volume(named: "d10")?.columns[1])
        #expect(col.hotSpare != nil, "the spare stands in for the missing column")
        let engine = try #require(m.engine("d10") as? RAID5Volume)
        engine.waitForBackgroundWork()
        let after = try #require(db.config.volume(named: "d10"))
        #expect(after.columns[1].state == .okay)
        #expect(after.resync == nil)
        #expect(db.config.pool(named: "hsp001")?.spares.first?.state == .inUse)
        var back = [UInt8](repeating: 0, count: data.count)
        try back.withUnsafeMutableBytes { try engine.read(offset: 0, into: $0) }
        #expect(back == data)

        // Clearing the volume gives the spare back to its pool (it used to stay In use forever).
        try m.clear(name: "d10", force: true)
        #expect(db.config.pool(named: "hsp001")?.spares.first?.state == .available)
        #expect(SetDatabase.readLabel(path: spare) != nil, "the spare stays in the set")
    }
}
