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

    /// Two sides, each a concat of two 4096-block devices (regions of 2048 blocks: row 0
    /// holds regions 0–1, row 1 regions 2–3), and a pool with two spares.
    static func sparedConfig() -> (SetConfig, devices: [UUID], spares: [UUID]) {
        var c = config([.okay, .okay])
        let devs = (0..<4).map { _ in UUID() }, spares = [UUID(), UUID()]
        c.devices = (devs + spares).enumerated().map {
            DeviceRecord(uuid: $0.element, lastPath: "/dev/x\($0.offset)", sizeBytes: 8 << 20, dataStartBlock: 2048, replicaCount: 0,
                         role: $0.offset < 4 ? .component : .hotSpare)
        }
        for (side, name) in ["d10", "d11"].enumerated() {
            let vi = c.volumeIndex(named: name)!
            c.volumes[vi].rows = (0..<2).map { r in
                RowRecord(interlaceBlocks: 1, componentBlocks: 4096, components: [ComponentRecord(device: devs[side * 2 + r])])
            }
            c.volumes[vi].hotSparePool = "hsp001"
        }
        c.hotSparePools = [HotSparePoolRecord(name: "hsp001", spares: spares.map { HotSpareRecord(device: $0) })]
        return (c, devs, spares)
    }

    @Test func aFailedComponentTakesASpareAndOnlyItsRowAndTheMissedWritesResync() throws {
        var (c, devs, spares) = Self.sparedConfig()
        c.volumes[c.volumeIndex(named: "d0")!].dirtyRegions = [1]
        #expect(c.mirrorRegions(Self.mirror(c), side: 1, row: 1) == [2, 3])
        // d11's second device (row 1) fails at its block 5000: it is Maintenance, and the
        // side records the regions written from now on (a write may be in flight in 1).
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1, at: 5000), to: &c)
        #expect(c.volume(named: "d11")!.rows[1].components[0].state == .maintenance)
        #expect(c.volume(named: "d11")!.rows[0].components[0].state == .okay)
        #expect(Self.mirror(c).submirrors[1].staleRegions == [1])
        #expect(c.volume(named: "d11")!.derivedState == .needsMaintenance)
        try SetModel.apply(.dirtyRegions(volume: "d0", regions: [0]), to: &c)
        #expect(Self.mirror(c).submirrors[1].staleRegions == [0, 1])
        // The spare takes the component's place: the row's regions and the missed ones resync.
        try SetModel.apply(.sideSpareTaken(volume: "d0", submirror: 1, row: 1, component: 0, spare: spares[0]), to: &c)
        let comp = c.volume(named: "d11")!.rows[1].components[0]
        #expect(comp.device == devs[3] && comp.hotSpare == spares[0] && comp.state == .okay)
        #expect(c.pool(named: "hsp001")!.spares.map(\.state) == [.inUse, .available])
        let s = Self.mirror(c).submirrors[1]
        #expect(s.state == .resyncing && s.resyncRegions == [0, 1, 2, 3] && s.staleRegions == nil)
        // The spare fails during its resync: it is Broken, the slot is back on its own
        // device (Maintenance), and the next spare resyncs the same regions again.
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1, at: 4096), to: &c)
        #expect(c.volume(named: "d11")!.rows[1].components[0].hotSpare == nil)
        #expect(c.volume(named: "d11")!.rows[1].components[0].state == .maintenance)
        #expect(c.pool(named: "hsp001")!.spares.map(\.state) == [.broken, .available])
        #expect(Self.mirror(c).submirrors[1].staleRegions == [0, 1, 2, 3])
        try SetModel.apply(.sideSpareTaken(volume: "d0", submirror: 1, row: 1, component: 0, spare: spares[1]), to: &c)
        #expect(Self.mirror(c).submirrors[1].resyncRegions == [0, 1, 2, 3])
        // Not a spare that is in use, nor onto a side that is in service.
        var d = c
        #expect(throws: ModelError.self) {
            try SetModel.apply(.sideSpareTaken(volume: "d0", submirror: 1, row: 0, component: 0, spare: spares[1]), to: &d)
        }
        try SetModel.apply(.mirrorResyncFinished(volume: "d0", submirror: 1), to: &c)
        // Replacing the spared device gives the spare back; an Okay side resyncs only the row.
        let new = UUID()
        c.devices.append(DeviceRecord(uuid: new, lastPath: "/dev/new", sizeBytes: 8 << 20, dataStartBlock: 2048, replicaCount: 0, role: .component))
        let effects = try SetModel.apply(.sideComponentReplaced(volume: "d0", submirror: 1, row: 1, component: 0, device: new), to: &c)
        #expect(effects == [.releaseDevice(devs[3])])
        #expect(c.volume(named: "d11")!.rows[1].components[0] == ComponentRecord(device: new))
        #expect(c.pool(named: "hsp001")!.spares.map(\.state) == [.broken, .available])
        #expect(Self.mirror(c).submirrors[1].resyncRegions == [2, 3])
    }

    @Test func aFailureWithoutAPlaceAndAFailedResyncFallBackToEveryRegion() throws {
        var (c, _, spares) = Self.sparedConfig()
        // A flush failure names no component: nothing is Maintenance (no spare can stand
        // in), and `online` resyncs every region.
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1), to: &c)
        #expect(c.volume(named: "d11")!.allComponents.allSatisfy { $0.state == .okay })
        try SetModel.apply(.submirrorOnline(volume: "d0", submirror: 1), to: &c)
        #expect(Self.mirror(c).submirrors[1].resyncRegions == nil)
        // A side that fails during a full resync lacks every region: a spare resyncs them all.
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1, at: 10), to: &c)
        #expect(Self.mirror(c).submirrors[1].staleRegions == nil)
        try SetModel.apply(.sideSpareTaken(volume: "d0", submirror: 1, row: 0, component: 0, spare: spares[0]), to: &c)
        #expect(Self.mirror(c).submirrors[1].state == .resyncing && Self.mirror(c).submirrors[1].resyncRegions == nil)
        // `online` of a side with a Maintenance component trusts its components again.
        var o = Self.sparedConfig().0
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 0, at: 0), to: &o)
        #expect(o.volume(named: "d10")!.rows[0].components[0].state == .maintenance)
        try SetModel.apply(.submirrorOnline(volume: "d0", submirror: 0), to: &o)
        #expect(o.volume(named: "d10")!.allComponents.allSatisfy { $0.state == .okay })
        // A crash's dirty regions are stale on a side out of service too.
        var k = Self.sparedConfig().0
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1, at: 0), to: &k)
        try SetModel.apply(.mirrorDirtyResync(volume: "d0", regions: [3]), to: &k)
        #expect(Self.mirror(k).submirrors[1].staleRegions == [3])
    }

    /// Seed 1701063: a spare that stood in for row 1 failed with the side out of service, so
    /// row 1 went back to its own device, which missed everything since the spare took over;
    /// a later replacement of row 0's device must resync row 1 too.
    @Test func aReplacementAlsoResyncsTheRowsWhoseComponentIsUntrusted() throws {
        var (c, _, spares) = Self.sparedConfig()
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1, at: 5000), to: &c)
        try SetModel.apply(.sideSpareTaken(volume: "d0", submirror: 1, row: 1, component: 0, spare: spares[0]), to: &c)
        try SetModel.apply(.mirrorResyncFinished(volume: "d0", submirror: 1), to: &c)
        // The spare goes away at a start: Broken, row 1 back on its own (stale) device.
        try SetModel.apply(.submirrorFailed(volume: "d0", submirror: 1, at: 4096), to: &c)
        #expect(c.volume(named: "d11")!.rows[1].components[0].hotSpare == nil)
        #expect(Self.mirror(c).submirrors[1].staleRegions == [])
        let new = UUID()
        c.devices.append(DeviceRecord(uuid: new, lastPath: "/dev/new", sizeBytes: 8 << 20, dataStartBlock: 2048, replicaCount: 0, role: .component))
        try SetModel.apply(.sideComponentReplaced(volume: "d0", submirror: 1, row: 0, component: 0, device: new), to: &c)
        #expect(Self.mirror(c).submirrors[1].resyncRegions == [0, 1, 2, 3])
        #expect(c.volume(named: "d11")!.allComponents.allSatisfy { $0.state == .okay })
    }

    @Test func growingTheSidesGrowsTheMirrorAndResyncsOnlyTheNewSpace() throws {
        var (c, _, _) = Self.sparedConfig()  // sides of 8192 blocks, regions of 2048
        let more = (0..<2).map { i in
            DeviceRecord(uuid: UUID(), lastPath: "/dev/g\(i)", sizeBytes: 4 << 20, dataStartBlock: 2048, replicaCount: 0, role: .component)
        }
        c.devices += more
        let grown = try #require(more.first?.dataBlocks)
        // The first side grows: the mirror is still its smallest side's size, nothing resyncs.
        try SetModel.apply(.rowAppended(volume: "d10", devices: [more[0].uuid], interlaceBlocks: 1, sectorBlocks: 1), to: &c)
        #expect(c.mirrorBlocks(Self.mirror(c)) == 8192)
        #expect(Self.states(c) == [.okay, .okay])
        // The second: the mirror takes the new space, which d11 resyncs from d10.
        try SetModel.apply(.rowAppended(volume: "d11", devices: [more[1].uuid], interlaceBlocks: 1, sectorBlocks: 1), to: &c)
        #expect(c.mirrorBlocks(Self.mirror(c)) == 8192 + grown)
        let s = Self.mirror(c).submirrors[1]
        #expect(s.state == .resyncing && s.resyncRegions == Array(4...(8192 + grown - 1) / 2048))
        // A side of a mirror that is not Okay does not grow.
        var d = Self.sparedConfig().0
        d.devices += more
        try SetModel.apply(.submirrorOffline(volume: "d0", submirror: 1), to: &d)
        #expect(throws: ModelError.self) {
            try SetModel.apply(.rowAppended(volume: "d10", devices: [more[0].uuid], interlaceBlocks: 1, sectorBlocks: 1), to: &d)
        }
    }

    @Test func policiesAndPass() throws {
        var c = Self.config([.okay, .okay])
        try SetModel.apply(.mirrorParameters(volume: "d0", read: .geometric, write: .serial, pass: 0), to: &c)
        #expect(Self.mirror(c).readPolicy == .geometric && Self.mirror(c).writePolicy == .serial && Self.mirror(c).pass == 0)
        #expect(throws: ModelError.self) { try SetModel.apply(.mirrorParameters(volume: "d0", read: nil, write: nil, pass: 10), to: &c) }
        #expect(throws: ModelError.self) { try SetModel.apply(.mirrorParameters(volume: "r5", read: .first, write: nil, pass: nil), to: &c) }
    }
}
