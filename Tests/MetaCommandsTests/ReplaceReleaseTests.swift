import Foundation
import MetaDB
import MetaModel
import MetaTestSupport
import Testing

/// `replace` drops the old device from the set and wipes its label (review item 14): the
/// regeneration branch (OLD missing or in Maintenance) and the copy branch (OLD readable).
/// Image files and the built binary, no server (foreground resync), no root needed.
@Suite("replace releases the replaced device (binary, image files)")
struct ReplaceReleaseTests {
    typealias CLI = CreateClearTests.CLI

    /// A set whose replicas live on their own images (so the columns hold none), with a
    /// 3-column RAID-5 `d10` over c0…c2 and spare images n0…n2.
    static func setUp(_ dir: TempDir) throws -> (cli: CLI, cols: [String], new: [String]) {
        let cli = try CLI(dir)
        let r = try CreateClearTests.images(dir, ["r0", "r1", "r2"])
        try cli.must(["db", "create"] + r)
        let cols = try CreateClearTests.images(dir, ["c0", "c1", "c2"])
        let new = try CreateClearTests.images(dir, ["n0", "n1", "n2"])
        try cli.create(["d10", "raid5", "--no-init"] + cols)
        return (cli, cols, new)
    }

    static func columnState(_ cli: CLI, _ path: String) throws -> String? {
        let (_, doc) = try cli.statusJSON(["d10"])
        let vol = try #require((doc["volumes"] as? [[String: Any]])?.first)
        return (vol["components"] as? [[String: Any]])?.first { $0["device"] as? String == path }?["state"] as? String
    }

    @Test func regenerationOntoNewWipesTheMaintenanceDevice() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let (cli, cols, new) = try Self.setUp(dir)
        // Column 1 in Maintenance (as a write error would leave it), device present.
        do {
            let db = try SetDatabase.open(setName: "local", configDir: cli.configDir, runDir: cli.runDir, mode: .readWrite)
            defer { db.close() }
            try db.commit { c in
                let vi = try #require(c.volumeIndex(named: "d10"))
                c.volumes[vi].columns[1].state = .maintenance
            }
        }
        #expect(try Self.columnState(cli, cols[1]) == "Maintenance")
        let out = try cli.must(["replace", "d10", cols[1], new[1]])
        #expect(out.contains("regenerating"))
        #expect(try Self.columnState(cli, new[1]) == "Okay")
        #expect(try Self.columnState(cli, cols[1]) == nil)
        // The old device carries no label and is free for another set, without --force.
        #expect(SetDatabase.readLabel(path: cols[1]) == nil)
        try cli.create(["-s", "other", "d20", "concat", cols[1]])
        #expect(SetDatabase.readLabel(path: cols[1])?.setName == "other")
    }

    @Test func regenerationOntoNewWithTheOldDeviceMissing() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let (cli, cols, new) = try Self.setUp(dir)
        let hidden = cols[1] + ".away"
        try FileManager.default.moveItem(atPath: cols[1], toPath: hidden)
        let out = try cli.must(["replace", "d10", cols[1], new[1]])
        #expect(out.contains("regenerating"))
        #expect(try Self.columnState(cli, new[1]) == "Okay")
        // It comes back: its label could not be wiped; it names the set, which no longer
        // lists it, so `create` refuses it without --force (saying why) and takes it with.
        try FileManager.default.moveItem(atPath: hidden, toPath: cols[1])
        #expect(SetDatabase.readLabel(path: cols[1])?.setName == "local")
        let refused = try cli.run(["create", "-s", "other", "d20", "concat", cols[1]])
        #expect(!refused.ok)
        #expect(refused.stderr.contains("stale label") && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(refused.stderr.split(separator: "\n").count == 1)
        try cli.create(["-s", "other", "d20", "concat", "--force", cols[1]])
        #expect(SetDatabase.readLabel(path: cols[1])?.setName == "other")
        // The set it left does not take it back by accident.
        #expect(try Self.columnState(cli, new[1]) == "Okay")
    }

    /// The copy branch (OLD readable): once the copy completes, the old device's role is
    /// unused and it is released (label wiped).
    @Test func copyOntoNewReleasesTheOldDevice() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let (cli, cols, new) = try Self.setUp(dir)
        let out = try cli.must(["replace", "d10", cols[0], new[0]])
        #expect(out.contains("copying"))
        #expect(try Self.columnState(cli, new[0]) == "Okay")
        #expect(try Self.columnState(cli, cols[0]) == nil)
        #expect(SetDatabase.readLabel(path: cols[0]) == nil)
        try cli.create(["-s", "other", "d20", "concat", cols[0]])
    }
}
