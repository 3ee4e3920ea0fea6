import Foundation
import Testing
import MetaCommands
@testable import MetaControl
import MetaDB
import MetaModel

/// RAID-6 in `status` (text, -c, -p, --json), in SVM's states with two parity units, in the
/// replace rules and the Invoke line, and in what `create` and `grow` refuse.
@Suite("RAID-6 status and rules")
struct RAID6StatusTests {
    static func raid6(states: [ComponentState]) -> SetConfig {
        var v = StatusTests.raid(cols: Array(0..<states.count), states: states)
        v.type = .raid6
        v.writeLog = nil
        return SetConfig(setName: "local", devices: (0..<states.count).map { StatusTests.device($0) }, volumes: [v])
    }

    @Test func textCompactAndMdTab() {
        let cfg = Self.raid6(states: [.okay, .maintenance, .okay, .okay, .okay])
        let report = StatusTests.make(cfg)
        let text = StatusFormatter.report(report)
        #expect(text.hasPrefix("""
        d10: RAID-6
            State: Needs Maintenance
            Invoke: metactl replace d10 /dev/loop1 <new device>
            Interlace: 128 blocks
            Size: 6291456 blocks (3.0 GiB)
        Original device:
            Size: 6291456 blocks (3.0 GiB)

        """), "\(text)")
        #expect(!text.contains("Write log"), "RAID-6 has no write log")
        #expect(StatusFormatter.concise(report).hasPrefix("d10  r6  3.0GB  Needs Maintenance  /dev/loop0 /dev/loop1 (Maintenance)"))
        let tab = StatusFormatter.mdTab(report)
        #expect(tab.contains("# metactl create d10 raid6 -i 64k /dev/loop0 /dev/loop1 /dev/loop2 /dev/loop3 /dev/loop4\n"), "\(tab)")
        #expect(tab.contains("d10 -r6 /dev/loop0 /dev/loop1 /dev/loop2 /dev/loop3 /dev/loop4 -i 128b\n"), "\(tab)")
        #expect(report.volumes[0].type == "raid6")
        #expect(report.volumes[0].writeLog == nil)
    }

    @Test func statesWithTwoParityUnits() {
        func state(_ s: [ComponentState]) -> VolumeState { Self.raid6(states: s).volumes[0].derivedState }
        #expect(state([.okay, .okay, .okay, .okay]) == .okay)
        #expect(state([.maintenance, .okay, .okay, .okay]) == .needsMaintenance)
        #expect(state([.maintenance, .unavailable, .okay, .okay]) == .needsMaintenance)
        #expect(state([.maintenance, .maintenance, .maintenance, .okay]) == .lastErred)
        #expect(state([.maintenance, .maintenance, .lastErred, .okay]) == .lastErred)
        #expect(VolumeType.raid6.parityCount == 2 && VolumeType.raid6.minimumColumns == 4)
        #expect(VolumeType.raid5.parityCount == 1 && !VolumeType.stripe.hasColumns)
    }

    @Test func invokeNamesBothReplacementsInOrder() {
        let cfg = Self.raid6(states: [.okay, .maintenance, .okay, .maintenance, .okay])
        let inv = StatusTests.make(cfg).volumes[0].invoke
        #expect(inv == "metactl replace d10 /dev/loop1 <new device>; then metactl replace d10 /dev/loop3 <new device>")
        // RAID-5 with two columns out: the same columns are not replaceable (data is lost).
        var r5 = cfg
        r5.volumes[0].type = .raid5
        #expect(StatusTests.make(r5).volumes[0].invoke != inv)
    }

    @Test func twoColumnsRebuiltInOnePassAreBothNamed() {
        var cfg = Self.raid6(states: [.okay, .resyncing, .okay, .resyncing, .okay])
        cfg.devices += [StatusTests.device(7), StatusTests.device(8)]
        cfg.volumes[0].columns[1].device = StatusTests.uuid(7)
        cfg.volumes[0].columns[3].device = StatusTests.uuid(8)
        var r = ResyncCheckpoint(kind: .regenerate, column: 1, target: StatusTests.uuid(7), totalBlocks: 2_097_152)
        r.more = [RebuildTarget(column: 3, target: StatusTests.uuid(8))]
        cfg.volumes[0].resync = r
        let report = StatusTests.make(cfg)
        #expect(report.volumes[0].resync?.target == "/dev/loop7" && report.volumes[0].resync?.moreTargets == ["/dev/loop8"])
        let text = StatusFormatter.report(report)
        #expect(text.contains("    Rebuilding onto /dev/loop7 and /dev/loop8 from the other columns\n"), "\(text)")
    }

    @Test func replaceRulesCountParityUnits() {
        let two = Self.raid6(states: [.okay, .maintenance, .okay, .maintenance, .okay]).volumes[0]
        #expect(ReplaceRules.stateRefusal(two, column: 1, oldName: "/dev/loop1", enable: false, force: false, oldReadable: false) == nil,
                "one other column out: a RAID-6 column is still rebuilt")
        let three = Self.raid6(states: [.maintenance, .maintenance, .okay, .maintenance, .okay]).volumes[0]
        let refusal = ReplaceRules.stateRefusal(three, column: 1, oldName: "/dev/loop1", enable: false, force: false, oldReadable: false)
        #expect(refusal?.message == "d10: 2 other columns are not Okay; regenerating /dev/loop1 needs all but one of the other columns")
    }
}

/// `metactl create … raid6` and what it refuses, through the binary on image files.
@Suite("metactl create raid6")
struct RAID6CreateTests {
    @Test func createRefusalsAndGrow() throws {
        let f = try ServeFixture(prefix: "metactl-raid6")
        defer { f.cleanup() }
        let imgs = try f.images("c", count: 5, size: 16 << 20)
        let three = try f.run(["create", "d20", "raid6"] + imgs.prefix(3))
        #expect(three.status == 65 && three.stderr == "metactl: d20: raid6 needs at least 4 devices, 3 given\n", "\(three.stderr)")
        #expect(!FileManager.default.fileExists(atPath: f.configDir + "/local"), "nothing half-made")

        let made = try f.run(["create", "d20", "raid6", "--no-init", "-i", "64k"] + imgs.prefix(4))
        #expect(made.ok, "\(made.stderr)")
        let vol = try #require((try f.statusJSON(["d20"])["volumes"] as? [[String: Any]])?.first)
        #expect(vol["type"] as? String == "raid6" && vol["state"] as? String == "Okay")
        // Two data columns' worth of the smallest column's whole 64 KiB units.
        let comps = try #require(vol["components"] as? [[String: Any]])
        let start = try #require(comps.first?["startBlock"] as? Int)
        let columnBytes = ((16 << 20) - start * 512) / 65536 * 65536
        #expect(vol["sizeBytes"] as? Int == 2 * columnBytes)
        #expect(vol["writeLog"] is NSNull, "RAID-6 has a write log only when asked for")

        // grow appends a zeroed data column (P and Q stay valid), as for RAID-5.
        let grow = try f.run(["grow", "d20", imgs[4]])
        #expect(grow.ok, "\(grow.stderr)")
        let grown = try #require((try f.statusJSON(["d20"])["volumes"] as? [[String: Any]])?.first)
        #expect(grown["sizeBytes"] as? Int == 3 * columnBytes)
        #expect(grown["originalColumns"] as? Int == 4)
        let text = try f.mustRun(["status", "d20"])
        #expect(text.hasPrefix("d20: RAID-6\n    State: Okay\n"), "\(text)")
        #expect(text.contains("Concatenated Devices:"), "\(text)")
        let tab = try f.mustRun(["status", "-p", "d20"])
        #expect(tab.contains("# metactl grow d20 \(imgs[4])\n"), "\(tab)")
        #expect(tab.contains(" -o 4"), "\(tab)")
    }
}
