import Foundation
import Testing
import MetaCommands
import MetaControl
import MetaDB
import MetaModel

/// `metactl status` rendering, from synthetic configurations run through the real
/// ``StatusReport/make`` for every volume state.
@Suite("metactl status formatting")
struct StatusTests {
    static func uuid(_ i: Int) -> UUID {
        UUID(uuidString: String(format: "00000000-0000-0000-0000-%012d", i))!
    }

    static func device(_ i: Int, blocks: UInt64 = 2_097_152, start: UInt64 = 2048, replica: Bool = true,
                       role: DeviceRole = .component) -> DeviceRecord {
        DeviceRecord(uuid: uuid(i), lastPath: "/dev/loop\(i)", sizeBytes: (blocks + start) * 512,
                     dataStartBlock: start, replicaCount: replica ? 1 : 0, role: role)
    }

    /// A RAID-5 record over loop devices `cols` with the given column states.
    static func raid(_ name: String = "d10", cols: [Int], states: [ComponentState]? = nil, original: Int? = nil,
                     columnBlocks: UInt64 = 2_097_152, resync: ResyncCheckpoint? = nil,
                     spares: [Int: Int] = [:], hsp: String? = nil) -> VolumeRecord {
        let comps = cols.enumerated().map { i, c in
            ComponentRecord(device: uuid(c), state: states?[i] ?? .okay, hotSpare: spares[c].map(uuid))
        }
        var v = VolumeRecord(name: name, type: .raid5, columns: comps, originalColumnCount: original ?? cols.count,
                             interlaceBlocks: 128, columnBlocks: columnBlocks, hotSparePool: hsp, resync: resync)
        // As `create` makes it: a write log of the default size for these columns.
        v.writeLog = WriteLogConfig(mode: .auto, areaBlocks: WriteLogConfig.defaultAreaBlocks(columnDataBlocks: columnBlocks))
        return v
    }

    typealias Progress = (kind: ResyncKind, done: UInt64, total: UInt64, bytesPerSecond: Double)

    static func make(_ cfg: SetConfig, quorum: Quorum = Quorum(readable: 3, total: 3), live: Bool = false,
                     missing: Set<Int> = [], progress: [String: Progress] = [:]) -> StatusReport {
        StatusReport.make(config: cfg, quorum: quorum, live: live, devicePaths: { _ in nil },
                          present: { u in !missing.contains { uuid($0) == u } },
                          progress: { progress[$0] }, openCount: { _ in live ? 0 : nil })
    }

    static func lines(_ s: String) -> [String] { s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }

    // MARK: golden texts

    @Test func resyncingRAID5MatchesTheSpecForm() {
        // 812 MiB/s written to the rebuilt column, 77952 lines of one 64 KiB unit left = exactly
        // 6 s; 70811 of 148763 = 47.6 %.
        let cfg = SetConfig(setName: "local",
                            devices: [0, 1, 2].map { Self.device($0) } + [Self.device(4, blocks: 2_097_152 - 2048, replica: false, role: .hotSpare)],
                            volumes: [Self.raid(cols: [0, 1, 2], states: [.okay, .resyncing, .okay],
                                                resync: ResyncCheckpoint(kind: .regenerate, column: 1, totalBlocks: 2_097_152))],
                            hotSparePools: [HotSparePoolRecord(name: "hsp001", spares: [HotSpareRecord(device: Self.uuid(4))])])
        let report = Self.make(cfg, live: true,
                               progress: ["d10": (.regenerate, 70811, 148763, 812 * 1_048_576)])
        let expected = """
        d10: RAID
            State: Resyncing
            Resync in progress: 47.6% done (812 MiB/s, 00:00:06 left)
            Interlace: 128 blocks
            Write log: on (16.0 MiB per column)
            Size: 4194304 blocks (2.0 GiB)
        Original device:
            Size: 4194304 blocks (2.0 GiB)
                Device      Start Block  Dbase  State        Reloc  Hot Spare
                /dev/loop0         2048  Yes    Okay         No
                /dev/loop1         2048  Yes    Resyncing    No
                /dev/loop2         2048  Yes    Okay         No

        hsp001: 1 hot spare
                Device      Status     Length          Reloc
                /dev/loop4  Available  2097152 blocks  No

        """
        #expect(StatusFormatter.report(report) == expected)
    }

    static func concatStripeConfig() -> SetConfig {
        var d0 = Self.device(0, blocks: 1_048_576, start: 10240)
        d0.replicaCount = 1
        let rows = [
            RowRecord(interlaceBlocks: 1024, componentBlocks: 1_048_576, components: [ComponentRecord(device: uuid(0))]),
            RowRecord(interlaceBlocks: 1, componentBlocks: 1_048_576, components: [ComponentRecord(device: uuid(1))]),
        ]
        return SetConfig(setName: "local", devices: [d0, Self.device(1, blocks: 1_048_576, replica: false)],
                         volumes: [VolumeRecord(name: "d0", type: .stripe, rows: rows)])
    }

    @Test func concatStripeMatchesMetastatForm() {
        let expected = """
        d0: Concat/Stripe
            Size: 2097152 blocks (1.0 GiB)
            Stripe 0: (interlace: 1024 blocks)
                Device      Start Block  Dbase  State  Reloc  Hot Spare
                /dev/loop0        10240  Yes    Okay   No
            Stripe 1:
                Device      Start Block  Dbase  State  Reloc  Hot Spare
                /dev/loop1         2048  No     Okay   No

        """
        #expect(StatusFormatter.report(Self.make(Self.concatStripeConfig())) == expected)
    }

    /// d10 RAID-5 (with hsp001), d0 a 2-row concat, d1 a 3-wide stripe, hsp001 two spares.
    static func mixedConfig(set: String = "local") -> SetConfig {
        let devs = (0...9).map { Self.device($0) }
        let d0 = VolumeRecord(name: "d0", type: .concat, rows: [
            RowRecord(interlaceBlocks: 1, componentBlocks: 2_097_152, components: [ComponentRecord(device: uuid(5))]),
            RowRecord(interlaceBlocks: 1, componentBlocks: 2_097_152, components: [ComponentRecord(device: uuid(6))]),
        ])
        let d1 = VolumeRecord(name: "d1", type: .stripe, rows: [
            RowRecord(interlaceBlocks: 1024, componentBlocks: 2_097_152,
                      components: [7, 8, 9].map { ComponentRecord(device: uuid($0)) }),
        ])
        return SetConfig(setName: set, devices: devs,
                         volumes: [Self.raid(cols: [0, 1, 2], hsp: "hsp001"), d0, d1],
                         hotSparePools: [HotSparePoolRecord(name: "hsp001", spares: [HotSpareRecord(device: uuid(3)),
                                                                                      HotSpareRecord(device: uuid(4))])])
    }

    @Test func mdTabLinesAndMetactlCommands() {
        let expected = """
        # md.tab lines (metainit syntax); the comment lines before each are the metactl commands
        # that recreate it, to be run in order.
        # metactl hs create hsp001 /dev/loop3 /dev/loop4
        hsp001 /dev/loop3 /dev/loop4
        # metactl create d10 raid5 -i 64k --hot-spare-pool hsp001 /dev/loop0 /dev/loop1 /dev/loop2
        d10 -r /dev/loop0 /dev/loop1 /dev/loop2 -i 128b -h hsp001
        # metactl create d0 concat /dev/loop5 /dev/loop6
        d0 2 1 /dev/loop5 1 /dev/loop6
        # metactl create d1 stripe -i 512k /dev/loop7 /dev/loop8 /dev/loop9
        d1 1 3 /dev/loop7 /dev/loop8 /dev/loop9 -i 1024b

        """
        #expect(StatusFormatter.mdTab(Self.make(Self.mixedConfig())) == expected)
        // Another set: the commands name it.
        let other = StatusFormatter.mdTab(Self.make(Self.mixedConfig(set: "red")))
        #expect(other.contains("# metactl -s red create d0 concat /dev/loop5 /dev/loop6\n"))
    }

    @Test func conciseLinesAreAligned() {
        let expected = """
        d10     r  2.0GB  /dev/loop0 /dev/loop1 /dev/loop2
        d0      s  2.0GB  /dev/loop5 /dev/loop6
        d1      s  3.0GB  /dev/loop7 /dev/loop8 /dev/loop9
        hsp001  h      -  /dev/loop3 /dev/loop4

        """
        #expect(StatusFormatter.concise(Self.make(Self.mixedConfig())) == expected)

        // A state column appears when something is not Okay, and erred components are marked.
        var cfg = Self.mixedConfig()
        cfg.volumes[0].columns[1].state = .maintenance
        let lines = Self.lines(StatusFormatter.concise(Self.make(cfg)))
        #expect(lines[0] == "d10     r  2.0GB  Needs Maintenance  /dev/loop0 /dev/loop1 (Maintenance) /dev/loop2")
        #expect(lines[1] == "d0      s  2.0GB                     /dev/loop5 /dev/loop6")
    }

    // MARK: every state

    @Test func initializingShowsProgressAndWhetherItRuns() {
        let cfg = SetConfig(setName: "local", devices: [0, 1, 2].map { Self.device($0) },
                            volumes: [Self.raid(cols: [0, 1, 2], states: [.initializing, .initializing, .initializing],
                                                resync: ResyncCheckpoint(kind: .initialize, doneBlocks: 524_288, totalBlocks: 2_097_152))])
        // Read from the devices (no server): the checkpoint's progress, and that it waits for serve.
        let offline = Self.lines(StatusFormatter.report(Self.make(cfg)))
        #expect(offline[1] == "    State: Initializing")
        #expect(offline[2] == "    Initialization in progress: 25.0% done (not running: runs while the set is served by metactl serve)")
        #expect(offline.contains("        /dev/loop0         2048  Yes    Initializing  No"))
        // Live, with a rate but no estimate yet.
        let live = Self.make(cfg, live: true, progress: ["d10": (.initialize, 1, 3, 1.5 * 1_073_741_824)])
        let report = StatusFormatter.report(live)
        #expect(Self.lines(report)[2].hasPrefix("    Initialization in progress: 33.3% done (1.5 GiB/s, "))
        #expect(StatusFormatter.concise(live).contains("Initializing 33.3%"))
        // Live but stalled: no rate, no estimate.
        let stalled = Self.make(cfg, live: true, progress: ["d10": (.initialize, 1, 4, 0)])
        #expect(Self.lines(StatusFormatter.report(stalled))[2] == "    Initialization in progress: 25.0% done (0 B/s, unknown left)")
    }

    @Test func needsMaintenanceNamesTheReplaceCommand() {
        let cfg = SetConfig(setName: "local", devices: [0, 1, 2].map { Self.device($0) },
                            volumes: [Self.raid(cols: [0, 1, 2], states: [.okay, .maintenance, .okay])])
        let lines = Self.lines(StatusFormatter.report(Self.make(cfg)))
        #expect(lines[1] == "    State: Needs Maintenance")
        #expect(lines[2] == "    Invoke: metactl replace d10 /dev/loop1 <new device>")
        #expect(lines.contains("        /dev/loop1         2048  Yes    Maintenance  No"))
    }

    @Test func lastErredNamesBothSteps() {
        let cfg = SetConfig(setName: "local", devices: [0, 1, 2].map { Self.device($0) },
                            volumes: [Self.raid(cols: [0, 1, 2], states: [.maintenance, .lastErred, .okay])])
        let lines = Self.lines(StatusFormatter.report(Self.make(cfg)))
        #expect(lines[1] == "    State: Last Erred")
        // Review finding 9: the order replace accepts (ReplaceRules): trust the Last Erred
        // column again first, then replace the Maintenance one.
        #expect(lines[2] == "    Invoke: metactl replace d10 --enable /dev/loop1 --force; then metactl replace d10 /dev/loop0 <new device>")
        #expect(lines.contains("        /dev/loop1         2048  Yes    Last Erred   No"))
    }

    @Test func unavailableComponent() {
        let cfg = SetConfig(setName: "local", devices: [0, 1, 2, 3].map { Self.device($0) },
                            volumes: [Self.raid(cols: [0, 1, 2, 3], states: [.okay, .okay, .unavailable, .okay])])
        let report = Self.make(cfg, missing: [2])
        #expect(report.volumes[0].components[2].present == false)
        let lines = Self.lines(StatusFormatter.report(report))
        #expect(lines[1] == "    State: Needs Maintenance")
        #expect(lines[2] == "    Invoke: metactl replace d10 /dev/loop2 <new device>")
        #expect(lines.contains("        /dev/loop2         2048  Yes    Unavailable  No"))
        // Size: 3 data columns of 2097152 blocks, and so is the original device's (not grown).
        #expect(lines.filter { $0 == "    Size: 6291456 blocks (3.0 GiB)" }.count == 2)
    }

    /// Without a server, a missing column is shown as the server will record it (the
    /// newcomer review: text and `-c` said Okay, only `--json` said `present: false`).
    @Test func missingComponentWithoutAServerIsUnavailable() {
        let cfg = SetConfig(setName: "local", devices: [0, 1, 2].map { Self.device($0) },
                            volumes: [Self.raid(cols: [0, 1, 2], states: [.okay, .okay, .okay])])
        let report = Self.make(cfg, missing: [1])
        #expect(report.volumes[0].components[1].present == false)
        #expect(report.volumes[0].components[1].state == "Unavailable")
        #expect(report.volumes[0].state == "Needs Maintenance")
        let lines = Self.lines(StatusFormatter.report(report))
        #expect(lines.contains("        /dev/loop1         2048  Yes    Unavailable  No"))
        // A running server reports what it recorded.
        #expect(Self.make(cfg, live: true, missing: [1]).volumes[0].components[1].state == "Okay")
    }

    /// `Invoke:` lines of another set name it (the newcomer review: they omitted `-s`).
    @Test func invokeOfAnotherSetNamesIt() {
        let cfg = SetConfig(setName: "data", devices: [0, 1, 2].map { Self.device($0) },
                            volumes: [Self.raid(cols: [0, 1, 2], states: [.okay, .maintenance, .okay])])
        #expect(Self.make(cfg).volumes[0].invoke == "metactl replace -s data d10 /dev/loop1 <new device>")
    }

    @Test func hotSpareInUseShowsInTheHotSpareColumn() {
        let cfg = SetConfig(setName: "local", devices: [0, 1, 2].map { Self.device($0) } + [Self.device(14, role: .hotSpare)],
                            volumes: [Self.raid(cols: [0, 1, 2], states: [.okay, .resyncing, .okay],
                                                resync: ResyncCheckpoint(kind: .regenerate, column: 1, target: Self.uuid(14),
                                                                         doneBlocks: 0, totalBlocks: 100),
                                                spares: [1: 14], hsp: "hsp001")],
                            hotSparePools: [HotSparePoolRecord(name: "hsp001", spares: [HotSpareRecord(device: Self.uuid(14), state: .inUse)])])
        let text = StatusFormatter.report(Self.make(cfg))
        let lines = Self.lines(text)
        let header = try! #require(lines.first { $0.contains("Hot Spare") })
        let row = try! #require(lines.first { $0.hasPrefix("        /dev/loop1 ") })
        let col = header.distance(from: header.startIndex, to: header.range(of: "Hot Spare")!.lowerBound)
        #expect(row.distance(from: row.startIndex, to: row.range(of: "/dev/loop14")!.lowerBound) == col)
        #expect(lines.contains("    Hot spare pool: hsp001"))
        #expect(lines.contains("hsp001: 1 hot spare"))
        #expect(lines.contains { $0.hasPrefix("        /dev/loop14  In use ") })
        #expect(StatusFormatter.concise(Self.make(cfg)).contains("/dev/loop1 (Resyncing) (spare /dev/loop14)"))
    }

    /// Review finding 19: during a copy replace the new device appears (text and JSON).
    @Test func copyReplaceShowsSourceAndTarget() throws {
        let cfg = SetConfig(setName: "local", devices: [0, 1, 2, 15].map { Self.device($0) },
                            volumes: [Self.raid(cols: [0, 1, 2], states: [.okay, .okay, .okay],
                                                resync: ResyncCheckpoint(kind: .copy, column: 1, target: Self.uuid(15),
                                                                         source: Self.uuid(1), doneBlocks: 30, totalBlocks: 100))])
        let report = Self.make(cfg)
        let lines = Self.lines(StatusFormatter.report(report))
        #expect(lines.contains("    Copying /dev/loop1 to /dev/loop15"), "\(lines)")
        let json = try StatusFormatter.json(report)
        #expect(json.contains("\"source\" : \"/dev/loop1\""), "\(json)")
        #expect(json.contains("\"target\" : \"/dev/loop15\""), "\(json)")
        // A regeneration names the device it writes.
        var regen = cfg
        regen.volumes[0].resync = ResyncCheckpoint(kind: .regenerate, column: 1, target: Self.uuid(15), totalBlocks: 100)
        #expect(Self.lines(StatusFormatter.report(Self.make(regen))).contains("    Rebuilding onto /dev/loop15 from the other columns"))
    }

    /// Review finding 25: the rate set with `set --resync-rate` shows in the report, in
    /// `-p` (so it recreates it) and in JSON; `0` or `max` as maximum is unlimited.
    @Test func resyncRateIsShown() throws {
        var vol = Self.raid(cols: [0, 1, 2])
        vol.resyncRate = ResyncRate(minBytesPerSecond: 10 << 20, maxBytesPerSecond: 0)
        let cfg = SetConfig(setName: "local", devices: [0, 1, 2].map { Self.device($0) }, volumes: [vol])
        let report = Self.make(cfg)
        #expect(Self.lines(StatusFormatter.report(report)).contains("    Resync rate: 10 MiB/s to unlimited"))
        #expect(StatusFormatter.metactlCommands(report.volumes[0]).last == "set d10 --resync-rate 10m:max")
        let json = try StatusFormatter.json(report)
        #expect(json.contains("\"minBytesPerSecond\" : 10485760") && json.contains("\"maxBytesPerSecond\" : null"), "\(json)")
        #expect(try StatusFormatter.json(Self.make(SetConfig(setName: "local", devices: [0, 1, 2].map { Self.device($0) },
                                                             volumes: [Self.raid(cols: [0, 1, 2])]))).contains("\"resyncRate\" : null"))
    }

    @Test func grownRAID5ListsConcatenatedDevices() {
        let cfg = SetConfig(setName: "local", devices: [0, 1, 2, 3, 4].map { Self.device($0) },
                            volumes: [Self.raid(cols: [0, 1, 2, 3, 4], original: 3)])
        let lines = Self.lines(StatusFormatter.report(Self.make(cfg)))
        // 2 data columns from the original 3, plus 2 added: 4 × 2097152 blocks.
        #expect(lines.contains("    Size: 8388608 blocks (4.0 GiB)"))
        let orig = try! #require(lines.firstIndex(of: "Original device:"))
        let conc = try! #require(lines.firstIndex(of: "Concatenated Devices:"))
        // The original device's data capacity: 2 data columns of the original 3.
        #expect(lines[orig + 1] == "    Size: 4194304 blocks (2.0 GiB)")
        #expect(lines[conc + 1] == "    Size: 4194304 blocks (2.0 GiB)")
        #expect(conc == orig + 2 + 1 + 3)
        #expect(lines[conc + 3].hasPrefix("        /dev/loop3 "))
        #expect(lines[conc + 4].hasPrefix("        /dev/loop4 "))
        let report = Self.make(cfg)
        #expect(StatusFormatter.mdTabLine(report.volumes[0]) == "d10 -r /dev/loop0 /dev/loop1 /dev/loop2 /dev/loop3 /dev/loop4 -i 128b -o 3")
        #expect(StatusFormatter.metactlCommands(report.volumes[0]) == [
            "create d10 raid5 -i 64k /dev/loop0 /dev/loop1 /dev/loop2", "grow d10 /dev/loop3 /dev/loop4",
        ])
    }

    @Test func readOnlySetSaysWhyFirst() {
        let report = Self.make(Self.concatStripeConfig(), quorum: Quorum(readable: 1, total: 3))
        let lines = Self.lines(StatusFormatter.report(report))
        #expect(lines[0].hasPrefix("set 'local' is read-only: only 1 of 3 state database replicas are readable"))
        #expect(lines[1] == "")
        #expect(lines[2] == "d0: Concat/Stripe")
    }

    @Test func stripeWithSeveralRowsAndAnErredComponent() {
        var devs = (0...5).map { Self.device($0) }
        devs[5].dataStartBlock = 4096
        let rows = [
            RowRecord(interlaceBlocks: 128, componentBlocks: 1000,
                      components: [0, 1, 2].map { ComponentRecord(device: Self.uuid($0)) }),
            RowRecord(interlaceBlocks: 1, componentBlocks: 5000, components: [ComponentRecord(device: Self.uuid(3))]),
            RowRecord(interlaceBlocks: 256, componentBlocks: 4096,
                      components: [ComponentRecord(device: Self.uuid(4), state: .maintenance), ComponentRecord(device: Self.uuid(5))]),
        ]
        let cfg = SetConfig(setName: "local", devices: devs, volumes: [VolumeRecord(name: "big", type: .stripe, rows: rows)])
        let report = Self.make(cfg)
        let lines = Self.lines(StatusFormatter.report(report))
        // Rows: 3 × 896 (interlace-rounded) + 5000 + 2 × 4096.
        #expect(lines[0] == "big: Concat/Stripe")
        #expect(lines[1] == "    State: Needs Maintenance")
        // replace refuses a stripe (nothing to rebuild from): the line says what is true.
        #expect(lines[2] == "    Invoke: restore big from a backup: /dev/loop4 failed and a stripe has no redundancy (`metactl clear big`, then create it again on working devices)")
        let blocks: UInt64 = 3 * 896 + 5000 + 2 * 4096
        let human = Output.humanSize(blocks * 512)
        #expect(lines[3] == "    Size: \(blocks) blocks (\(human))")
        #expect(lines.contains("    Stripe 0: (interlace: 128 blocks)"))
        #expect(lines.contains("    Stripe 1:"))
        #expect(lines.contains("    Stripe 2: (interlace: 256 blocks)"))
        #expect(lines.contains("        /dev/loop4         2048  Yes    Maintenance  No"))
        #expect(lines.contains("        /dev/loop5         4096  Yes    Okay         No"))
        #expect(StatusFormatter.mdTabLine(report.volumes[0])
                == "big 3 3 /dev/loop0 /dev/loop1 /dev/loop2 -i 128b 1 /dev/loop3 2 /dev/loop4 /dev/loop5 -i 256b")
        #expect(StatusFormatter.metactlCommands(report.volumes[0]) == [
            "create big stripe -i 64k /dev/loop0 /dev/loop1 /dev/loop2", "grow big /dev/loop3",
            "grow big -i 128k /dev/loop4 /dev/loop5",
        ])
    }

    @Test func emptyPoolsAndEmptySets() {
        let cfg = SetConfig(setName: "blue", hotSparePools: [HotSparePoolRecord(name: "hsp000")])
        #expect(StatusFormatter.report(Self.make(cfg)) == "hsp000: is empty\n")
        #expect(StatusFormatter.report(Self.make(SetConfig(setName: "blue"))) == "set 'blue' has no volumes or hot spare pools\n")
        #expect(StatusFormatter.mdTab(Self.make(SetConfig(setName: "blue"))) == "")
    }

    @Test func namesSelectVolumesAndPools() {
        let r = Self.make(Self.mixedConfig())
        let pools = StatusFormatter.filtered(r, names: ["hsp001"])
        #expect(pools.volumes.isEmpty && pools.hotSparePools.map(\.name) == ["hsp001"])
        let vols = StatusFormatter.filtered(r, names: ["d1", "d0"])
        #expect(vols.volumes.map(\.name) == ["d0", "d1"] && vols.hotSparePools.isEmpty)
        #expect(StatusFormatter.filtered(r, names: []) == r)
    }

    @Test func unitsAndQuoting() {
        #expect(StatusFormatter.rate(812 * 1_048_576) == "812 MiB/s")
        #expect(StatusFormatter.rate(1.5 * 1_073_741_824) == "1.5 GiB/s")
        #expect(StatusFormatter.rate(0) == "0 B/s")
        #expect(StatusFormatter.duration(12) == "00:00:12")
        #expect(StatusFormatter.duration(3 * 3600 + 61.4) == "03:01:01")
        #expect(StatusFormatter.duration(nil) == "unknown")
        #expect(StatusFormatter.duration(.infinity) == "unknown")
        #expect(StatusFormatter.compactSize(3 << 30) == "3.0GB")
        #expect(StatusFormatter.compactSize(700) == "700B")
        var cfg = Self.concatStripeConfig()
        cfg.devices[0].lastPath = "/tmp/my disk.img"
        #expect(StatusFormatter.metactlCommands(Self.make(cfg).volumes[0])[0] == "create d0 stripe -i 512k '/tmp/my disk.img'")
    }

    // MARK: JSON

    @Test func jsonHasEveryKeyWithNullsAndRoundTrips() throws {
        var cfg = Self.mixedConfig()
        cfg.volumes[0].columns[1].state = .maintenance
        let report = Self.make(cfg, quorum: Quorum(readable: 1, total: 3))
        let text = try StatusFormatter.json(report)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        for key in ["set", "volumes", "hotSparePools", "quorum", "readOnlyReason", "live"] {
            #expect(doc.keys.contains(key), "missing \(key)")
        }
        let vols = try #require(doc["volumes"] as? [[String: Any]])
        let volumeKeys = ["name", "type", "state", "sizeBytes", "interlaceBytes", "hotSparePool", "resync", "components",
                          "rows", "originalColumns", "invoke", "openCount"]
        for v in vols { for k in volumeKeys { #expect(v.keys.contains(k), "volume \(v["name"] ?? "?") lacks \(k)") } }
        let d0 = try #require(vols.first { $0["name"] as? String == "d0" })
        #expect(d0["resync"] is NSNull)
        #expect(d0["interlaceBytes"] is NSNull)
        #expect(d0["hotSparePool"] is NSNull)
        #expect(d0["openCount"] is NSNull)
        #expect(d0["type"] as? String == "concat")
        #expect((d0["rows"] as? [Any])?.count == 2)
        let d10 = try #require(vols.first { $0["name"] as? String == "d10" })
        #expect(d10["state"] as? String == "Needs Maintenance")
        #expect(d10["rows"] is NSNull)
        #expect(d10["interlaceBytes"] as? Int == 65536)
        #expect(d10["sizeBytes"] as? Int == 2 * 2_097_152 * 512)
        #expect(d10["originalColumns"] as? Int == 3)
        #expect(d10["hotSparePool"] as? String == "hsp001")
        let comps = try #require(d10["components"] as? [[String: Any]])
        for c in comps {
            for k in ["device", "uuid", "startBlock", "hasReplica", "state", "hotSpare", "present", "sizeBytes"] {
                #expect(c.keys.contains(k), "component lacks \(k)")
            }
        }
        #expect(comps[1]["state"] as? String == "Maintenance")
        #expect(comps[1]["hotSpare"] is NSNull)
        #expect(comps[0]["device"] as? String == "/dev/loop0")
        #expect(comps[0]["uuid"] as? String == Self.uuid(0).uuidString)
        #expect(doc["readOnlyReason"] is String)
        let pools = try #require(doc["hotSparePools"] as? [[String: Any]])
        #expect((pools.first?["spares"] as? [[String: Any]])?.first?["state"] as? String == "Available")

        // Nothing lost: it decodes back to the same report.
        #expect(try JSONDecoder().decode(StatusReport.self, from: Data(text.utf8)) == report)
    }

    /// The explicit encoders must know every key the report has: compare with the
    /// synthesised encoding of a report where every optional is set.
    @Test func jsonKeysCoverTheSynthesisedEncoding() throws {
        let cfg = SetConfig(setName: "local", devices: [0, 1, 2].map { Self.device($0) } + [Self.device(14)],
                            volumes: [Self.raid(cols: [0, 1, 2], states: [.maintenance, .resyncing, .okay],
                                                resync: ResyncCheckpoint(kind: .regenerate, totalBlocks: 10),
                                                spares: [1: 14], hsp: "hsp001")],
                            hotSparePools: [HotSparePoolRecord(name: "hsp001", spares: [HotSpareRecord(device: Self.uuid(14), state: .inUse)])])
        var report = Self.make(cfg, quorum: Quorum(readable: 1, total: 3), live: true,
                               progress: ["d10": (.regenerate, 1, 10, 1000)])
        report.volumes.append(Self.make(Self.concatStripeConfig()).volumes[0])
        report.volumes[1].openCount = 2
        report.volumes[1].invoke = "x"
        report.volumes[1].hotSparePool = "hsp001"
        report.volumes[1].resync = report.volumes[0].resync
        report.volumes[1].originalColumns = 1
        report.volumes[0].rows = report.volumes[1].rows
        report.volumes[0].resyncRate = .init(minBytesPerSecond: 1 << 20, maxBytesPerSecond: 10 << 20)
        func keyPaths(_ any: Any, _ prefix: String = "") -> Set<String> {
            var out: Set<String> = []
            if let d = any as? [String: Any] {
                for (k, v) in d { out.insert(prefix + k); out.formUnion(keyPaths(v, prefix + k + ".")) }
            } else if let a = any as? [Any] {
                for v in a { out.formUnion(keyPaths(v, prefix)) }
            }
            return out
        }
        let synthesised = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report))
        let ours = try JSONSerialization.jsonObject(with: Data(try StatusFormatter.json(report).utf8))
        let missing = keyPaths(synthesised).subtracting(keyPaths(ours))
        #expect(missing.isEmpty, "StatusFormatter.json drops \(missing.sorted())")
        #expect(keyPaths(synthesised).contains("volumes.resync.secondsLeft"))
        #expect(try JSONDecoder().decode(StatusReport.self, from: Data(try StatusFormatter.json(report).utf8)) == report)
    }
}
