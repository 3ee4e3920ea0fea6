import Foundation
import Testing
import MetaModel

/// The mirror rules of ``SetModel``, without devices: side failure (Needs Maintenance, Last
/// Erred), offline and online with the regions written meanwhile, attach and detach limits,
/// a crash's dirty regions handed to a resync, and the mirror's derived state.
@Suite("Mirror model")
struct MirrorModelTests {
    static func config(_ states: [SubmirrorState], dirty: [UInt64] = []) -> SetConfig {
        var vols = (0..<max(states.count, 5)).map { VolumeRecord(name: "d1\($0)", type: .concat) }
        var m = VolumeRecord(name: "d0", type: .mirror)
        m.mirror = MirrorRecord(submirrors: states.enumerated().map { SubmirrorRecord(volume: "d1\($0.offset)", state: $0.element) },
                                regionBlocks: 2048)
        m.dirtyRegions = dirty
        vols.append(m)
        vols.append(VolumeRecord(name: "r5", type: .raid5))
        return SetConfig(setName: "t", volumes: vols)
    }
    static func mirror(_ c: SetConfig) -> MirrorRecord { c.volume(named: "d0")!.mirror! }
    static func states(_ c: SetConfig) -> [SubmirrorState] { mirror(c).submirrors.map(\.state) }

    @Test func aFailedSideNeedsMaintenanceAndTheLastReadableOneIsLastErred() throws {
        var c = Self.config([.okay, .okay])
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1), to: &c)
        #expect(Self.states(c) == [.okay, .needsMaintenance])
        #expect(c.volume(named: "d0")!.derivedState == .needsMaintenance)
        // Failing again changes nothing; the last readable side becomes Last Erred.
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1), to: &c)
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 0), to: &c)
        #expect(Self.states(c) == [.lastErred, .needsMaintenance])
        #expect(c.volume(named: "d0")!.derivedState == .lastErred)
        // A resyncing side that fails drops its resync.
        var r = Self.config([.okay, .resyncing])
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1), to: &r)
        #expect(Self.mirror(r).submirrors[1] == SubmirrorRecord(volume: "d11", state: .needsMaintenance))
    }

    @Test func offlineRecordsTheRegionsWrittenAndOnlineResyncsOnlyThose() throws {
        var c = Self.config([.okay, .okay], dirty: [4])
        try SetModel.apply(.submirrorOffline(volume: "d0", submirror: 1), to: &c)
        #expect(Self.states(c) == [.okay, .offline])
        #expect(Self.mirror(c).submirrors[1].staleRegions == [4])  // a write may be in flight there
        // The only Okay side stays in service.
        #expect(throws: ModelError.self) { try SetModel.apply(.submirrorOffline(volume: "d0", submirror: 0), to: &c) }
        try SetModel.apply(.dirtyRegions(volume: "d0", regions: [9]), to: &c)
        try SetModel.apply(.dirtyRegions(volume: "d0", regions: [2, 9]), to: &c)
        #expect(Self.mirror(c).submirrors[1].staleRegions == [2, 4, 9])
        #expect(c.volume(named: "d0")!.derivedState == .needsMaintenance)
        try SetModel.apply(.submirrorOnline(volume: "d0", submirror: 1), to: &c)
        let s = Self.mirror(c).submirrors[1]
        #expect(s.state == .resyncing && s.resyncRegions == [2, 4, 9] && s.resyncDoneBlocks == 0 && s.staleRegions == nil)
        #expect(throws: ModelError.self) { try SetModel.apply(.submirrorOnline(volume: "d0", submirror: 1), to: &c) }
        try SetModel.apply(.mirrorResyncCheckpoint(volume: "d0", submirror: 1, doneBlocks: 2048), to: &c)
        #expect(Self.mirror(c).submirrors[1].resyncDoneBlocks == 2048)
        try SetModel.apply(.mirrorResyncFinished(volume: "d0", submirror: 1), to: &c)
        #expect(Self.mirror(c).submirrors[1] == SubmirrorRecord(volume: "d11", state: .okay))
        #expect(c.volume(named: "d0")!.derivedState == .okay)
        // A Needs Maintenance side resyncs every region.
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 0), to: &c)
        try SetModel.apply(.submirrorOnline(volume: "d0", submirror: 0), to: &c)
        #expect(Self.mirror(c).submirrors[0].state == .resyncing && Self.mirror(c).submirrors[0].resyncRegions == nil)
    }

    @Test func anOfflineSideThatMissedNothingIsOkayAtOnce() throws {
        var c = Self.config([.okay, .okay])
        try SetModel.apply(.submirrorOffline(volume: "d0", submirror: 1), to: &c)
        try SetModel.apply(.submirrorOnline(volume: "d0", submirror: 1), to: &c)
        #expect(Self.mirror(c).submirrors[1] == SubmirrorRecord(volume: "d11", state: .okay))
    }

    @Test func onlineNeedsAReadableSideToCopyFrom() throws {
        var c = Self.config([.lastErred, .needsMaintenance])
        try SetModel.apply(.submirrorOnline(volume: "d0", submirror: 1), to: &c)  // from the Last Erred one
        var d = Self.config([.needsMaintenance, .resyncing])
        #expect(throws: ModelError.self) { try SetModel.apply(.submirrorOnline(volume: "d0", submirror: 0), to: &d) }
    }

    @Test func attachAndDetachKeepAnOkaySideAndAtMostFour() throws {
        var c = Self.config([.okay])
        try SetModel.apply(.submirrorAttached(volume: "d0", submirror: "d11", resync: true), to: &c)
        #expect(Self.states(c) == [.okay, .resyncing])
        #expect(Self.mirror(c).submirrors[1].resyncRegions == nil)
        try SetModel.apply(.submirrorAttached(volume: "d0", submirror: "d12", resync: false), to: &c)
        try SetModel.apply(.submirrorAttached(volume: "d0", submirror: "d13", resync: false), to: &c)
        #expect(throws: ModelError.self) { try SetModel.apply(.submirrorAttached(volume: "d0", submirror: "d14", resync: false), to: &c) }
        #expect(throws: ModelError.self) { try SetModel.apply(.submirrorAttached(volume: "d0", submirror: "d12", resync: false), to: &c) }
        var r = Self.config([.okay])
        #expect(throws: ModelError.self) { try SetModel.apply(.submirrorAttached(volume: "d0", submirror: "r5", resync: true), to: &r) }
        // A resyncing side leaves only with force; the last Okay side never.
        #expect(throws: ModelError.self) { try SetModel.apply(.submirrorDetached(volume: "d0", submirror: 1, force: false), to: &c) }
        try SetModel.apply(.submirrorDetached(volume: "d0", submirror: 1, force: true), to: &c)
        #expect(Self.mirror(c).submirrors.map(\.volume) == ["d10", "d12", "d13"])
        try SetModel.apply(.submirrorDetached(volume: "d0", submirror: 2, force: false), to: &c)
        try SetModel.apply(.submirrorDetached(volume: "d0", submirror: 1, force: false), to: &c)
        #expect(throws: ModelError.self) { try SetModel.apply(.submirrorDetached(volume: "d0", submirror: 0, force: true), to: &c) }
    }

    @Test func aSideCannotBeClearedAndAClearedMirrorLeavesItsSides() throws {
        var c = Self.config([.okay, .okay])
        #expect(throws: ModelError.self) { try SetModel.apply(.cleared(volume: "d11"), to: &c) }
        #expect(c.mirror(using: "d11")?.name == "d0")
        try SetModel.apply(.cleared(volume: "d0"), to: &c)
        #expect(c.volume(named: "d10") != nil && c.volume(named: "d11") != nil)
        #expect(c.mirror(using: "d11") == nil)
    }

    @Test func aCrashsDirtyRegionsAreResyncedFromTheFirstOkaySide() throws {
        var c = Self.config([.needsMaintenance, .okay, .okay, .offline], dirty: [3, 7])
        try SetModel.apply(.mirrorDirtyResync(volume: "d0", regions: [3, 7]), to: &c)
        let m = Self.mirror(c)
        #expect(m.submirrors.map(\.state) == [.needsMaintenance, .okay, .resyncing, .offline])
        #expect(m.submirrors[2].resyncRegions == [3, 7])
        #expect(m.submirrors[3].staleRegions == [3, 7])
        #expect(c.volume(named: "d0")!.dirtyRegions.isEmpty)
        // A Last Erred side may differ there too; with no Okay side, the first Last Erred one is the source.
        var le = Self.config([.lastErred, .okay, .lastErred], dirty: [1])
        try SetModel.apply(.mirrorDirtyResync(volume: "d0", regions: [1]), to: &le)
        #expect(Self.states(le) == [.resyncing, .okay, .resyncing])
        var none = Self.config([.needsMaintenance, .lastErred, .lastErred], dirty: [1])
        try SetModel.apply(.mirrorDirtyResync(volume: "d0", regions: [1]), to: &none)
        #expect(Self.states(none) == [.needsMaintenance, .lastErred, .resyncing])
        // A resync of every region goes back to the first dirty region it had passed.
        var r = Self.config([.okay, .resyncing], dirty: [2])
        try SetModel.apply(.mirrorResyncCheckpoint(volume: "d0", submirror: 1, doneBlocks: 5 * 2048), to: &r)
        try SetModel.apply(.mirrorDirtyResync(volume: "d0", regions: [2]), to: &r)
        #expect(Self.mirror(r).submirrors[1].resyncDoneBlocks == 2 * 2048)
        // A partial one that lists the region goes back to it; one that lacks it starts over.
        var p = Self.config([.okay, .okay])
        try SetModel.apply(.submirrorOffline(volume: "d0", submirror: 1), to: &p)
        try SetModel.apply(.dirtyRegions(volume: "d0", regions: [1, 5, 8]), to: &p)
        try SetModel.apply(.submirrorOnline(volume: "d0", submirror: 1), to: &p)
        try SetModel.apply(.mirrorResyncCheckpoint(volume: "d0", submirror: 1, doneBlocks: 3 * 2048), to: &p)
        try SetModel.apply(.mirrorDirtyResync(volume: "d0", regions: [5]), to: &p)
        #expect(Self.mirror(p).submirrors[1].resyncDoneBlocks == 1 * 2048)
        try SetModel.apply(.mirrorDirtyResync(volume: "d0", regions: [6]), to: &p)
        #expect(Self.mirror(p).submirrors[1].resyncRegions == [1, 5, 6, 8])
        #expect(Self.mirror(p).submirrors[1].resyncDoneBlocks == 0)
    }

    @Test func aSidesComponentIsReplacedAndTheSideResyncsEverything() throws {
        let old = UUID(), new = UUID()
        var c = Self.config([.okay, .needsMaintenance])
        c.devices = [DeviceRecord(uuid: old, lastPath: "/dev/a", sizeBytes: 1 << 30, dataStartBlock: 2048, replicaCount: 0, role: .component),
                     DeviceRecord(uuid: new, lastPath: "/dev/b", sizeBytes: 1 << 30, dataStartBlock: 2048, replicaCount: 0, role: .component)]
        let vi = c.volumeIndex(named: "d11")!
        c.volumes[vi].rows = [RowRecord(interlaceBlocks: 1, componentBlocks: 1000, components: [ComponentRecord(device: old)])]
        let effects = try SetModel.apply(.sideComponentReplaced(volume: "d0", submirror: 1, row: 0, component: 0, device: new), to: &c)
        #expect(c.volume(named: "d11")!.rows[0].components[0].device == new)
        #expect(Self.mirror(c).submirrors[1].state == .resyncing && Self.mirror(c).submirrors[1].resyncRegions == nil)
        #expect(effects == [.releaseDevice(old)] && c.device(old) == nil)
        // Nothing to copy from: refused.
        var d = Self.config([.needsMaintenance, .needsMaintenance])
        d.devices = c.devices
        #expect(throws: ModelError.self) { try SetModel.apply(.sideComponentReplaced(volume: "d0", submirror: 1, row: 0, component: 0, device: new), to: &d) }
    }

    @Test func policiesAndPass() throws {
        var c = Self.config([.okay, .okay])
        try SetModel.apply(.mirrorParameters(volume: "d0", read: .geometric, write: .serial, pass: 0), to: &c)
        #expect(Self.mirror(c).readPolicy == .geometric && Self.mirror(c).writePolicy == .serial && Self.mirror(c).pass == 0)
        #expect(throws: ModelError.self) { try SetModel.apply(.mirrorParameters(volume: "d0", read: nil, write: nil, pass: 10), to: &c) }
        #expect(throws: ModelError.self) { try SetModel.apply(.mirrorParameters(volume: "r5", read: .first, write: nil, pass: nil), to: &c) }
    }
}
