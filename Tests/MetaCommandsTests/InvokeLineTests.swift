import Foundation
import MetaDB
import MetaModel
import MetaTestSupport
import Testing

/// Every kind of `Invoke:` line `status` prints, run as printed (issue 18, review findings 9,
/// 10, 20): the line comes from ``ReplaceRules``, the checks `replace` itself runs, so each
/// step must be accepted in the order given and leave the volume Okay. Image files, the built
/// binary, no server (foreground resync), no root.
@Suite("Invoke lines run as printed (binary, image files)")
struct InvokeLineTests {
    typealias CLI = CreateClearTests.CLI

    /// A set `set` with replicas on their own images, a 4-column RAID-5 `d10` over c0…c3, and
    /// new images n0…n3.
    static func setUp(_ dir: TempDir, set: String) throws -> (cli: CLI, cols: [String], new: [String]) {
        let cli = try CLI(dir)
        let r = try CreateClearTests.images(dir, ["r0", "r1", "r2"])
        try cli.must(["db", "create", "-s", set] + r)
        let cols = try CreateClearTests.images(dir, ["c0", "c1", "c2", "c3"])
        let new = try CreateClearTests.images(dir, ["n0", "n1", "n2", "n3"])
        try cli.create(["-s", set, "d10", "raid5", "--no-init"] + cols)
        return (cli, cols, new)
    }

    /// Sets column states (and whatever else `edit` changes) as a failure would leave them.
    static func edit(_ cli: CLI, set: String, _ body: (inout SetConfig, Int) throws -> Void) throws {
        let db = try SetDatabase.open(setName: set, configDir: cli.configDir, runDir: cli.runDir, mode: .readWrite)
        defer { db.close() }
        try db.commit { c in
            let vi = try #require(c.volumeIndex(named: "d10"))
            try body(&c, vi)
        }
    }

    static func volume(_ cli: CLI, set: String) throws -> [String: Any] {
        let out = try cli.must(["status", "-s", set, "--json", "d10"])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        return try #require((doc["volumes"] as? [[String: Any]])?.first)
    }

    /// Runs the Invoke line of d10 step by step (`<new device>` → the next new image); returns
    /// the steps. Every step must succeed; afterwards d10 is Okay with no Invoke line.
    @discardableResult
    static func runInvoke(_ cli: CLI, set: String, new: [String], expectSteps: Int,
                          sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        let vol = try volume(cli, set: set)
        let line = try #require(vol["invoke"] as? String, "no Invoke line: \(vol)", sourceLocation: sourceLocation)
        // The text report prints the same line.
        let text = try cli.must(["status", "-s", set, "d10"])
        #expect(text.contains("    Invoke: \(line)"), "\(text)", sourceLocation: sourceLocation)
        let steps = line.components(separatedBy: "; then ")
        #expect(steps.count == expectSteps, "\(line)", sourceLocation: sourceLocation)
        var fresh = new[...]
        for step in steps {
            var command = step
            if let r = command.range(of: "<new device>") {
                guard let next = fresh.popFirst() else { throw TestSupportError("more new devices named than prepared: \(line)") }
                command.replaceSubrange(r, with: next)
            }
            var argv = command.split(separator: " ").map(String.init)
            #expect(argv.first == "metactl", sourceLocation: sourceLocation)
            argv.removeFirst()
            if set != "local" { #expect(argv.starts(with: ["replace", "-s", set]), "\(step)", sourceLocation: sourceLocation) }
            let r = try cli.run(argv)
            #expect(r.ok, "\(step): \(r.stderr)", sourceLocation: sourceLocation)
        }
        let after = try volume(cli, set: set)
        #expect(after["state"] as? String == "Okay", "\(after)", sourceLocation: sourceLocation)
        #expect(after["invoke"] == nil || after["invoke"] is NSNull, "\(after)", sourceLocation: sourceLocation)
        return steps
    }

    @Test func maintenanceColumnIsReplaced() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let (cli, cols, new) = try Self.setUp(dir, set: "local")
        try Self.edit(cli, set: "local") { c, vi in c.volumes[vi].columns[1].state = .maintenance }
        let steps = try Self.runInvoke(cli, set: "local", new: new, expectSteps: 1)
        #expect(steps == ["metactl replace d10 \(cols[1]) <new device>"])
    }

    /// Review finding 9: Maintenance + Last Erred. The Last Erred column is re-enabled first
    /// (with --force: its data is the best left), then the Maintenance column is replaced —
    /// the order `replace` accepts. Also finding 10: another set's lines carry `-s SET`.
    @Test func lastErredRecipeIsAcceptedInOrder() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let (cli, cols, new) = try Self.setUp(dir, set: "gs")
        try Self.edit(cli, set: "gs") { c, vi in
            c.volumes[vi].columns[1].state = .maintenance
            c.volumes[vi].columns[2].state = .lastErred
        }
        #expect(try Self.volume(cli, set: "gs")["state"] as? String == "Last Erred")
        // The commands the old Invoke line named are refused, each saying what comes first.
        let first = try cli.run(["replace", "-s", "gs", "d10", cols[1], new[3]])
        #expect(!first.ok && first.stderr.contains("--enable"), "\(first.stderr)")
        let steps = try Self.runInvoke(cli, set: "gs", new: new, expectSteps: 2)
        #expect(steps == ["metactl replace -s gs d10 --enable \(cols[2]) --force",
                          "metactl replace -s gs d10 \(cols[1]) <new device>"])
    }

    @Test func lastErredAloneIsEnabled() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let (cli, cols, new) = try Self.setUp(dir, set: "local")
        try Self.edit(cli, set: "local") { c, vi in c.volumes[vi].columns[3].state = .lastErred }
        let steps = try Self.runInvoke(cli, set: "local", new: new, expectSteps: 1)
        #expect(steps == ["metactl replace d10 --enable \(cols[3])"])
    }

    /// Finding 10: a column Unavailable whose device is present again is re-enabled in place.
    @Test func unavailableColumnThatCameBackIsEnabled() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let (cli, cols, new) = try Self.setUp(dir, set: "local")
        try Self.edit(cli, set: "local") { c, vi in c.volumes[vi].columns[0].state = .unavailable }
        let steps = try Self.runInvoke(cli, set: "local", new: new, expectSteps: 1)
        #expect(steps == ["metactl replace d10 --enable \(cols[0])"])
    }

    /// Finding 20: a failed disk a hot spare stands in for is named (the column itself is
    /// Okay, as in SVM); replacing it copies from the spare and returns the spare to its pool.
    @Test func failedDiskUnderAHotSpareIsNamed() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let (cli, cols, new) = try Self.setUp(dir, set: "local")
        let spare = try dir.image("spare.img", size: 8 << 20)
        try cli.must(["hs", "create", "hsp001", spare])
        try cli.must(["set", "d10", "--hot-spare-pool", "hsp001"])
        try Self.edit(cli, set: "local") { c, vi in
            let u = try #require(c.hotSparePools.first?.spares.first?.device)
            c.hotSparePools[0].spares[0].state = .inUse
            c.volumes[vi].columns[2].hotSpare = u
        }
        let vol = try Self.volume(cli, set: "local")
        #expect(vol["state"] as? String == "Okay")
        #expect(vol["invoke"] as? String == "metactl replace d10 \(cols[2]) <new device>")
        // The Invoke line as printed; finding 18: replace says the data comes from the spare.
        let replaced = try cli.run(["replace", "d10", cols[2], new[3]])
        #expect(replaced.ok, "\(replaced.stderr)")
        #expect(replaced.stdout.hasPrefix("d10: copying from hot spare \(spare) (standing in for \(cols[2])) to \(new[3])"), "\(replaced.stdout) \(replaced.stderr)")
        let after = try Self.volume(cli, set: "local")
        #expect(after["state"] as? String == "Okay")
        #expect(after["invoke"] is NSNull, "\(after)")
        let out = try cli.must(["status", "-c", "hsp001"])
        #expect(out.contains(spare), "\(out)")
        let pools = try #require(try JSONSerialization.jsonObject(with: Data(try cli.must(["status", "--json"]).utf8)) as? [String: Any])
        let spares = (pools["hotSparePools"] as? [[String: Any]])?.first?["spares"] as? [[String: Any]]
        #expect(spares?.first?["state"] as? String == "Available", "\(pools)")
    }
}
