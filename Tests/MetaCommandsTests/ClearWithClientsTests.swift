import Foundation
import Logging
@testable import MetaControl
import MetaDB
import MetaModel
import MetaEngine
import MetaTestSupport
import Testing

/// `clear -f` while clients hold the volume (review item 12), in process as the server
/// runs it (`isServer`, `--cache writeback`), on image files.
@Suite("clear -f with connected clients")
struct ClearWithClientsTests {
    @Test func clearedEngineRefusesIOAndANewVolumeOfTheSameNameIsUntouched() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CreateClearTests.CLI(dir)
        // Replicas on their own images, so the columns leave the set when cleared.
        try cli.must(["db", "create"] + (try CreateClearTests.images(dir, ["r0", "r1", "r2"])))
        let cols = try CreateClearTests.images(dir, ["c0", "c1", "c2"])
        try cli.create(["d10", "raid5", "--no-init"] + cols)

        let db = try SetDatabase.open(setName: "local", configDir: cli.configDir, runDir: cli.runDir, mode: .readWrite)
        let logger = Logger(label: "test")
        let m = SetManager(db: db, configDir: cli.configDir, logger: logger, isServer: true, cache: .writeback)
        defer { m.closeEngines(); db.close() }
        m.openCountProvider = { _ in 1 }  // one client connected
        let old = try m.openEngine("d10")
        let data = [UInt8](repeating: 0x11, count: 65536)
        try data.withUnsafeBytes { try old.write(offset: 0, from: $0, fua: true) }
        #expect(!m.dataDevices.reopenedDevices.isEmpty)

        #expect(throws: OperationError.self) { try m.clear(name: "d10", force: false) }
        try m.clear(name: "d10", force: true)
        #expect(old.isClosed)
        #expect(m.engine("d10") == nil)
        // The client's next requests fail; nothing reaches the released devices.
        for op in ["read", "write", "flush"] {
            do {
                var buf = [UInt8](repeating: 0, count: 4096)
                switch op {
                case "read": try buf.withUnsafeMutableBytes { try old.read(offset: 0, into: $0) }
                case "write": try buf.withUnsafeBytes { try old.write(offset: 0, from: $0) }
                default: try old.flushRequest()
                }
                Issue.record("\(op) on the cleared engine succeeded")
            } catch let e as VolumeIOError {
                #expect(e.code == .io && e.description.contains("volume was cleared"), "\(op): \(e)")
            }
        }
        for c in cols { #expect(SetDatabase.readLabel(path: c) == nil, "\(c) released") }
        // The writeback descriptors of the released devices are closed.
        #expect(m.dataDevices.reopenedDevices.isEmpty)

        // A new volume of the same name on the same devices: the old engine's requests are
        // still refused and its columns stay Okay (the old engine commits nothing by name).
        _ = try m.create(CreateRequest(name: "d10", type: .raid5, devices: cols, noInit: true))
        let fresh = try #require(m.engine("d10"))
        #expect(fresh !== old)
        let bad = [UInt8](repeating: 0x22, count: 4096)
        #expect(throws: VolumeIOError.self) { try bad.withUnsafeBytes { try old.write(offset: 0, from: $0) } }
        var back = [UInt8](repeating: 0xff, count: 4096)
        try back.withUnsafeMutableBytes { try fresh.read(offset: 0, into: $0) }
        #expect(back != bad)
        let vol = try #require(m.config.volume(named: "d10"))
        #expect(vol.columns.allSatisfy { $0.state == .okay })
    }
}
