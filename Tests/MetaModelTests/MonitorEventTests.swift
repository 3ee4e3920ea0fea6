import Foundation
import Testing
import MetaModel

/// `metactl monitor`'s events derived from two configurations, where the second is the first
/// after real ``SetModel`` transitions (the way the server derives them from its commits).
@Suite("Monitor events from configuration changes")
struct MonitorEventTests {
    static func u(_ i: Int) -> UUID { UUID(uuidString: String(format: "00000000-0000-0000-0000-%012d", i))! }
    static let time = Date(timeIntervalSince1970: 1_800_000_000)

    /// d10: RAID-5 over /dev/d1…/dev/d4, pool hsp001 with /dev/s5.
    static func config() -> SetConfig {
        func dev(_ i: Int, _ name: String, _ role: DeviceRole) -> DeviceRecord {
            DeviceRecord(uuid: u(i), lastPath: "/dev/\(name)", sizeBytes: 1 << 30, dataStartBlock: 2048,
                         replicaCount: i == 1 ? 1 : 0, role: role)
        }
        let vol = VolumeRecord(name: "d10", type: .raid5, columns: (1...4).map { ComponentRecord(device: u($0)) },
                               originalColumnCount: 4, interlaceBlocks: 128, columnBlocks: 1 << 20, hotSparePool: "hsp001")
        return SetConfig(setName: "local",
                         devices: (1...4).map { dev($0, "d\($0)", .component) } + [dev(5, "s5", .hotSpare)],
                         volumes: [vol],
                         hotSparePools: [HotSparePoolRecord(name: "hsp001", spares: [HotSpareRecord(device: u(5))])])
    }

    static func changes(_ a: SetConfig, _ b: SetConfig) -> [MonitorEvent] {
        MonitorEvent.changes(set: "local", from: a, to: b, at: time)
    }

    @Test func mirrorSidesFailGoOfflineAndAreDetached() throws {
        var a = SetConfig(setName: "local", volumes: [VolumeRecord(name: "d11", type: .concat), VolumeRecord(name: "d12", type: .concat)])
        var m = VolumeRecord(name: "d0", type: .mirror)
        m.mirror = MirrorRecord(submirrors: [SubmirrorRecord(volume: "d11"), SubmirrorRecord(volume: "d12")], regionBlocks: 2048)
        a.volumes.append(m)
        var b = a
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1), to: &b)
        let failed = Self.changes(a, b)
        #expect(failed.map(\.kind) == [.componentFailed, .volumeState])
        #expect(failed[0].component == "d12" && failed[0].state == "Needs Maintenance" && failed[0].previous == "Okay")
        var c = b
        try SetModel.apply(.submirrorDetached(volume: "d0", submirror: 1, force: true), to: &c)
        let detached = Self.changes(b, c)
        #expect(detached.first?.kind == .componentState && detached.first?.state == "Detached")
        #expect(detached.last?.kind == .volumeState && detached.last?.state == "Okay")
        var d = c
        try SetModel.apply(.submirrorAttached(volume: "d0", submirror: "d12", resync: true), to: &d)
        #expect(Self.changes(c, d).first?.message == "d0: side d12 attached, Resyncing")
    }

    @Test func aSoftPartitionsStateFollowsItsParent() throws {
        var a = Self.config()
        var sp = VolumeRecord(name: "d1", type: .softpart)
        sp.softPartition = SoftPartitionRecord(parent: "d10", extents: [SoftExtent(watermarkBlock: 0, blocks: 2048)])
        a.volumes.append(sp)
        #expect(a.servedState(of: sp) == .okay)
        var b = a
        try SetModel.apply(.columnFailed(volume: "d10", column: 2, state: .maintenance), to: &b)
        #expect(b.servedState(of: sp) == .needsMaintenance)
        let states = Self.changes(a, b).filter { $0.kind == .volumeState }
        #expect(states.map(\.volume) == ["d10", "d1"])
        #expect(states.last?.state == "Needs Maintenance" && states.last?.previous == "Okay")
    }

    @Test func nothingChangedNothingReported() {
        let c = Self.config()
        #expect(Self.changes(c, c).isEmpty)
    }

    @Test func columnFailureSpareTakeoverRebuildAndReturn() throws {
        let c0 = Self.config()
        var c1 = c0
        try SetModel.apply(.columnFailed(volume: "d10", column: 3, state: .maintenance), to: &c1)
        let failed = Self.changes(c0, c1)
        #expect(failed.map(\.kind) == [.componentFailed, .volumeState])
        #expect(failed[0].volume == "d10" && failed[0].component == "column 3" && failed[0].device == "/dev/d4")
        #expect(failed[0].state == "Maintenance" && failed[0].previous == "Okay")
        #expect(failed[0].message == "d10 column 3 (/dev/d4): Okay → Maintenance")
        #expect(failed[1].state == "Needs Maintenance" && failed[1].previous == "Okay")

        var c2 = c1
        try SetModel.apply(.spareTaken(volume: "d10", column: 3, spare: Self.u(5)), to: &c2)
        let taken = Self.changes(c1, c2)
        #expect(taken.contains { $0.kind == .spareTaken && $0.device == "/dev/s5" && $0.component == "column 3" }, "\(taken)")
        #expect(taken.contains { $0.kind == .resyncStarted && $0.state == "regenerate" }, "\(taken)")
        #expect(taken.last?.kind == .volumeState && taken.last?.state == "Resyncing", "\(taken)")

        var c3 = c2
        let total = c2.volume(named: "d10")!.resync!.totalBlocks
        try SetModel.apply(.resyncCheckpoint(volume: "d10", column: 3, target: Self.u(5), doneBlocks: total / 2), to: &c3)
        let progress = Self.changes(c2, c3)
        #expect(progress.map(\.kind) == [.resyncProgress])
        #expect(progress[0].percent == 50)

        var c4 = c3
        try SetModel.apply(.resyncFinished(volume: "d10", kind: .regenerate), to: &c4)
        let done = Self.changes(c3, c4)
        #expect(done.first { $0.kind == .componentState }?.state == "Okay", "\(done)")
        #expect(done.contains { $0.kind == .resyncDone && $0.percent == 100 }, "\(done)")
        #expect(done.last?.kind == .volumeState && done.last?.state == "Okay")
        // Order: component changes, then spares and resync, then the volume's state.
        let kinds = done.map(\.kind)
        #expect(kinds.firstIndex(of: .componentState)! < kinds.firstIndex(of: .resyncDone)!)
    }

    @Test func lastErredAndLostBlocks() throws {
        let c0 = Self.config()
        var c1 = c0
        try SetModel.apply(.columnFailed(volume: "d10", column: 0, state: .maintenance), to: &c1)
        try SetModel.apply(.columnFailed(volume: "d10", column: 1, state: .lastErred), to: &c1)
        let e = Self.changes(c0, c1)
        #expect(e.filter { $0.kind == .componentFailed }.map(\.component) == ["column 0", "column 1"])
        #expect(e.last?.state == "Last Erred")
        var c2 = c0
        try SetModel.apply(.lostBlocks(volume: "d10", ranges: [LostRange(column: 2, start: 0, count: 128)]), to: &c2)
        let lost = Self.changes(c0, c2)
        #expect(lost.first?.kind == .lostBlocks && lost.first?.count == 128, "\(lost)")
    }

    @Test func unavailableCreatedCleared() throws {
        let c0 = Self.config()
        var c1 = c0
        try SetModel.apply(.columnsMissing(volume: "d10", columns: [2], dropCopy: false), to: &c1)
        #expect(Self.changes(c0, c1).first?.kind == .componentUnavailable)
        var empty = c0
        empty.volumes = []
        #expect(Self.changes(empty, c0).map(\.kind) == [.volumeCreated])
        #expect(Self.changes(c0, empty).map(\.kind) == [.volumeCleared])
    }

    /// A column whose device the kernel removed fails as `Unavailable` (not Maintenance);
    /// other states stay refused.
    @Test func removedColumnIsUnavailable() throws {
        let c0 = Self.config()
        var c1 = c0
        try SetModel.apply(.columnFailed(volume: "d10", column: 2, state: .unavailable), to: &c1)
        #expect(c1.volume(named: "d10")?.columns[2].state == .unavailable)
        #expect(c1.volume(named: "d10")?.derivedState == .needsMaintenance)
        #expect(Self.changes(c0, c1).first?.kind == .componentUnavailable)
        var c2 = c0
        #expect(throws: ModelError.self) { try SetModel.apply(.columnFailed(volume: "d10", column: 2, state: .resyncing), to: &c2) }
    }

    @Test func checkStartProgressEnd() throws {
        let c0 = Self.config()
        var c1 = c0
        try SetModel.apply(.checkBegun(volume: "d10", repair: false, totalLines: 100, at: Self.time), to: &c1)
        #expect(Self.changes(c0, c1).map(\.kind) == [.checkStarted])
        var c2 = c1
        var counts = CheckCounts()
        counts.mismatches = 2
        try SetModel.apply(.checkCheckpoint(volume: "d10", doneLines: 40, counts: counts), to: &c2)
        let p = Self.changes(c1, c2)
        #expect(p.map(\.kind) == [.checkProgress] && p[0].percent == 40 && p[0].count == 2)
        var c3 = c2
        try SetModel.apply(.checkEnded(volume: "d10", result: .completed, doneLines: 100, counts: counts, failure: nil, at: Self.time), to: &c3)
        let d = Self.changes(c2, c3)
        #expect(d.map(\.kind) == [.checkDone] && d[0].state == "completed" && d[0].count == 2)
        #expect(d[0].message == "d10: check completed: 2 mismatches")
    }

    @Test func eventsRoundTripThroughJSON() throws {
        let c0 = Self.config()
        var c1 = c0
        try SetModel.apply(.columnFailed(volume: "d10", column: 3, state: .maintenance), to: &c1)
        let enc = JSONEncoder()
        enc.dateEncodingStrategy = .iso8601
        let dec = JSONDecoder()
        dec.dateDecodingStrategy = .iso8601
        for e in Self.changes(c0, c1) {
            #expect(try dec.decode(MonitorEvent.self, from: enc.encode(e)) == e)
        }
    }
}
