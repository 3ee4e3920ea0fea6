import Foundation
import Testing
import MetaModel
import MetaLayout

/// A small set for the transition tables: a 4-column RAID-5 `d10` (columns on devices
/// d0…d3, d0 holding replicas), a pool `hsp001` with spares s0, s1, a replica-only device r0
/// and, where a test adds it, a new device n0.
private struct Fixture {
    static let uuids: [String: UUID] = Dictionary(uniqueKeysWithValues:
        ["d0", "d1", "d2", "d3", "s0", "s1", "r0", "n0", "n1"].enumerated().map { (i, n) in
            (n, UUID(uuidString: String(format: "00000000-0000-0000-0000-%012d", i + 1))!)
        })
    static func u(_ n: String) -> UUID { uuids[n]! }

    var config: SetConfig

    init(states: [ComponentState] = [.okay, .okay, .okay, .okay]) {
        func dev(_ n: String, _ role: DeviceRole, replicas: Int = 0) -> DeviceRecord {
            DeviceRecord(uuid: Self.u(n), lastPath: "/dev/\(n)", sizeBytes: 1 << 30, dataStartBlock: 2048,
                         replicaCount: replicas, role: role)
        }
        let columns = states.enumerated().map { ComponentRecord(device: Self.u("d\($0.offset)"), state: $0.element) }
        let vol = VolumeRecord(name: "d10", type: .raid5, columns: columns, originalColumnCount: 4,
                               interlaceBlocks: 128, columnBlocks: 1 << 20, hotSparePool: "hsp001")
        config = SetConfig(setName: "local",
                           devices: [dev("d0", .component, replicas: 2), dev("d1", .component), dev("d2", .component),
                                     dev("d3", .component), dev("s0", .hotSpare), dev("s1", .hotSpare),
                                     dev("r0", .replica, replicas: 1)],
                           volumes: [vol],
                           hotSparePools: [HotSparePoolRecord(name: "hsp001", spares: [HotSpareRecord(device: Self.u("s0")),
                                                                                      HotSpareRecord(device: Self.u("s1"))])])
    }

    mutating func addDevice(_ n: String, role: DeviceRole = .component) {
        config.devices.append(DeviceRecord(uuid: Self.u(n), lastPath: "/dev/\(n)", sizeBytes: 1 << 30,
                                           dataStartBlock: 2048, replicaCount: 0, role: role))
    }

    @discardableResult
    mutating func apply(_ e: SetEvent) throws(ModelError) -> [Effect] { try SetModel.apply(e, to: &config) }

    var vol: VolumeRecord { config.volume(named: "d10")! }
    func spare(_ n: String) -> HotSpareState? { config.pool(named: "hsp001")?.spares.first { $0.device == Self.u(n) }?.state }
    func role(_ n: String) -> DeviceRole? { config.device(Self.u(n))?.role }
}

private func u(_ n: String) -> UUID { Fixture.u(n) }

@Suite("Column failure rules (SVM's Maintenance / Last Erred)")
struct ColumnHealthTests {
    /// Every (current state, others erred) pair, with SVM's answer.
    @Test(arguments: [
        (ComponentState.okay, false, ComponentState?.some(.maintenance)),
        (.okay, true, .lastErred),
        (.initializing, false, .maintenance),
        (.initializing, true, .lastErred),
        (.resyncing, false, .maintenance),
        (.resyncing, true, .maintenance),
        (.maintenance, false, nil),
        (.maintenance, true, nil),
        (.unavailable, false, nil),
        (.unavailable, true, nil),
        (.lastErred, true, nil),
        (.lastErred, false, .maintenance),
    ])
    func stateAfterFailure(current: ComponentState, othersErred: Bool, expected: ComponentState?) {
        #expect(ColumnHealth.stateAfterFailure(current: current, othersErred: othersErred) == expected)
    }

    @Test func lastErredAloneIsOrdinary() {
        #expect(ColumnHealth.lastErredIsOrdinary(othersErred: false))
        #expect(!ColumnHealth.lastErredIsOrdinary(othersErred: true))
    }

    @Test func columnFailedRecordsTheStateAndDropsItsOwnResync() throws {
        var f = Fixture(states: [.okay, .resyncing, .okay, .okay])
        f.config.volumes[0].resync = ResyncCheckpoint(kind: .regenerate, column: 1, target: u("d1"), doneBlocks: 64, totalBlocks: 1 << 20)
        try f.apply(.columnFailed(volume: "d10", column: 2, state: .lastErred))
        #expect(f.vol.columns[2].state == .lastErred)
        #expect(f.vol.resync?.column == 1, "another column's failure keeps the resync record")
        try f.apply(.columnFailed(volume: "d10", column: 1, state: .maintenance))
        #expect(f.vol.columns[1].state == .maintenance)
        #expect(f.vol.resync == nil, "the rebuilt column failed: its resync ends")
        #expect(f.vol.derivedState == .lastErred)
    }

    @Test func aFailedColumnCannotBecomeOkay() {
        var f = Fixture()
        let before = f.config
        #expect(throws: ModelError.self) { try f.apply(.columnFailed(volume: "d10", column: 0, state: .okay)) }
        #expect(f.config == before, "a refused transition changes nothing")
    }

    @Test func eventsAboutAClearedVolumeChangeNothing() throws {
        var f = Fixture()
        try f.apply(.cleared(volume: "d10"))
        let before = f.config
        for e: SetEvent in [.columnFailed(volume: "d10", column: 0, state: .maintenance),
                            .dirtyRegions(volume: "d10", regions: [1]),
                            .resyncFinished(volume: "d10", kind: .copy),
                            .initializeCheckpoint(volume: "d10", doneBlocks: 5, finished: true),
                            .copyAbandoned(volume: "d10", target: u("n0")),
                            .checkCheckpoint(volume: "d10", doneLines: 3, counts: CheckCounts()),
                            .checkEnded(volume: "d10", result: .completed, doneLines: 3, counts: CheckCounts(), failure: nil, at: Date())] {
            #expect(try f.apply(e) == [])
        }
        #expect(f.config == before)
    }

    @Test func missingColumnsBecomeUnavailableAndLoseTheirRegeneration() throws {
        var f = Fixture(states: [.okay, .resyncing, .maintenance, .okay])
        f.config.volumes[0].resync = ResyncCheckpoint(kind: .regenerate, column: 1, target: u("d1"), totalBlocks: 1 << 20)
        try f.apply(.columnsMissing(volume: "d10", columns: [1, 2], dropCopy: false))
        #expect(f.vol.columns.map(\.state) == [.okay, .unavailable, .maintenance, .okay], "an erred column keeps its state")
        #expect(f.vol.resync == nil)
    }

    /// Seed 102001372: a Last Erred column left alone (its partner rebuilt) that is missing
    /// at a start becomes Unavailable, to be rebuilt; one that is still the only source of
    /// its data stays Last Erred.
    @Test func anOrdinaryLastErredColumnThatIsMissingBecomesUnavailable() throws {
        var f = Fixture(states: [.lastErred, .okay, .okay, .okay])
        try f.apply(.columnsMissing(volume: "d10", columns: [0], dropCopy: false))
        #expect(f.vol.columns[0].state == .unavailable)
        #expect(f.vol.columns[0].staleRegions == nil, "a full rebuild when it returns")
        var g = Fixture(states: [.lastErred, .maintenance, .okay, .okay])
        try g.apply(.columnsMissing(volume: "d10", columns: [0], dropCopy: false))
        #expect(g.vol.columns[0].state == .lastErred)
        var h = Fixture(states: [.lastErred, .okay, .okay, .okay])
        try h.apply(.columnsMissing(volume: "d10", columns: [0, 2], dropCopy: false))
        #expect(h.vol.columns.map(\.state) == [.lastErred, .okay, .unavailable, .okay], "two missing at once: it stays the source")
    }

    @Test func aCopyWhoseTargetIsMissingIsAbandoned() throws {
        var f = Fixture()
        f.addDevice("n0")
        try f.apply(.copyBegun(volume: "d10", column: 3, target: u("n0")))
        try f.apply(.columnsMissing(volume: "d10", columns: [], dropCopy: true))
        #expect(f.vol.resync == nil)
        #expect(f.role("n0") == .unused, "released by the sweep once no engine uses it")
        #expect(try f.apply(.unusedDevicesReleased) == [.releaseDevice(u("n0"))])
        #expect(f.config.device(u("n0")) == nil)
    }
}

@Suite("Replace, copy and regeneration")
struct ReplaceTransitionTests {
    @Test func enableRegeneratesInPlace() throws {
        var f = Fixture(states: [.okay, .maintenance, .okay, .okay])
        try f.apply(.enableRegenerate(volume: "d10", column: 1))
        #expect(f.vol.columns[1].state == .resyncing)
        #expect(f.vol.resync == ResyncCheckpoint(kind: .regenerate, column: 1, target: u("d1"), totalBlocks: 1 << 20))
        #expect(f.vol.derivedState == .resyncing)
    }

    @Test func copyEndsWithTheTargetInPlaceAndTheOldDeviceRetired() throws {
        var f = Fixture()
        f.addDevice("n0")
        try f.apply(.copyBegun(volume: "d10", column: 2, target: u("n0")))
        #expect(f.vol.resync?.source == u("d2"))
        #expect(f.vol.columns[2].state == .okay, "redundancy is kept during a copy")
        try f.apply(.resyncCheckpoint(volume: "d10", column: 2, target: u("n0"), doneBlocks: 4096))
        #expect(f.vol.resync?.doneBlocks == 4096)
        try f.apply(.resyncCheckpoint(volume: "d10", column: 1, target: u("n0"), doneBlocks: 8192))
        #expect(f.vol.resync?.doneBlocks == 4096, "a checkpoint of other work is ignored")
        let effects = try f.apply(.resyncFinished(volume: "d10", kind: .copy))
        #expect(effects == [])
        #expect(f.vol.columns[2] == ComponentRecord(device: u("n0"), state: .okay))
        #expect(f.vol.resync == nil)
        #expect(f.role("d2") == .unused, "an engine may still write to it until reloaded")
        #expect(try f.apply(.unusedDevicesReleased) == [.releaseDevice(u("d2"))])
    }

    @Test func copyOfAReplicaHolderKeepsItAsAReplicaHolder() throws {
        var f = Fixture()
        f.addDevice("n0")
        try f.apply(.copyBegun(volume: "d10", column: 0, target: u("n0")))
        try f.apply(.resyncFinished(volume: "d10", kind: .copy))
        #expect(f.role("d0") == .replica)
        #expect(try f.apply(.unusedDevicesReleased) == [])
    }

    @Test func copyBackFromASpareReturnsTheSpare() throws {
        var f = Fixture(states: [.okay, .maintenance, .okay, .okay])
        try f.apply(.spareTaken(volume: "d10", column: 1, spare: u("s0")))
        #expect(f.spare("s0") == .inUse)
        try f.apply(.resyncFinished(volume: "d10", kind: .regenerate))
        #expect(f.vol.columns[1] == ComponentRecord(device: u("d1"), state: .okay, hotSpare: u("s0")))
        f.addDevice("n0")
        try f.apply(.copyBegun(volume: "d10", column: 1, target: u("n0")))
        #expect(f.vol.resync?.source == u("s0"))
        try f.apply(.resyncFinished(volume: "d10", kind: .copy))
        #expect(f.vol.columns[1] == ComponentRecord(device: u("n0"), state: .okay))
        #expect(f.spare("s0") == .available)
        #expect(f.role("s0") == .hotSpare)
        #expect(f.role("d1") == .unused)
    }

    @Test func copyAbandonedKeepsTheColumnOnItsSource() throws {
        var f = Fixture()
        f.addDevice("n0")
        try f.apply(.copyBegun(volume: "d10", column: 2, target: u("n0")))
        try f.apply(.copyAbandoned(volume: "d10", target: u("n0")))
        #expect(f.vol.columns[2] == ComponentRecord(device: u("d2"), state: .okay))
        #expect(f.vol.resync == nil)
        #expect(f.role("n0") == .unused)
    }

    @Test func copyTurnsIntoRegenerationWhenItsSourceFails() throws {
        var f = Fixture(states: [.okay, .maintenance, .okay, .okay])
        try f.apply(.spareTaken(volume: "d10", column: 1, spare: u("s0")))
        try f.apply(.resyncFinished(volume: "d10", kind: .regenerate))
        f.addDevice("n0")
        try f.apply(.copyBegun(volume: "d10", column: 1, target: u("n0")))
        try f.apply(.copyBecameRegeneration(volume: "d10", column: 1, target: u("n0"), doneBlocks: 512))
        #expect(f.vol.columns[1] == ComponentRecord(device: u("n0"), state: .resyncing))
        #expect(f.vol.resync == ResyncCheckpoint(kind: .regenerate, column: 1, target: u("n0"), doneBlocks: 512, totalBlocks: 1 << 20))
        #expect(f.spare("s0") == .broken, "the failed source was the spare")
        #expect(f.role("d1") == .unused)
    }

    @Test func regenerationOntoANewDeviceReleasesTheOldOneAtOnce() throws {
        var f = Fixture(states: [.okay, .okay, .maintenance, .okay])
        f.addDevice("n0")
        let effects = try f.apply(.regenerationBegun(volume: "d10", column: 2, target: u("n0")))
        #expect(effects == [.releaseDevice(u("d2"))])
        #expect(f.config.device(u("d2")) == nil)
        #expect(f.vol.columns[2] == ComponentRecord(device: u("n0"), state: .resyncing))
        try f.apply(.resyncFinished(volume: "d10", kind: .regenerate))
        #expect(f.vol.columns[2] == ComponentRecord(device: u("n0"), state: .okay))
        #expect(f.vol.derivedState == .okay)
    }

    @Test func regenerationOverASpareBreaksItAndKeepsAReplicaHolder() throws {
        var f = Fixture(states: [.maintenance, .okay, .okay, .okay])
        try f.apply(.spareTaken(volume: "d10", column: 0, spare: u("s1")))
        try f.apply(.spareFailed(volume: "d10", column: 0, spare: u("s1")))
        #expect(f.vol.columns[0] == ComponentRecord(device: u("d0"), state: .maintenance))
        #expect(f.spare("s1") == .broken)
        f.addDevice("n0")
        #expect(try f.apply(.regenerationBegun(volume: "d10", column: 0, target: u("n0"))) == [])
        #expect(f.role("d0") == .replica, "d0 holds replicas: it stays as a replica holder")
    }

    @Test func unknownColumnOrVolumeIsRefused() {
        var f = Fixture()
        let before = f.config
        #expect(throws: ModelError.self) { try f.apply(.enableRegenerate(volume: "d10", column: 9)) }
        #expect(throws: ModelError.self) { try f.apply(.spareTaken(volume: "d99", column: 0, spare: u("s0"))) }
        #expect(f.config == before)
    }
}

@Suite("Hot spares, clear, grow cancel, replicas")
struct LifecycleTransitionTests {
    @Test func spareFailureWhileStandingInReturnsTheColumnToMaintenance() throws {
        var f = Fixture(states: [.okay, .okay, .okay, .maintenance])
        try f.apply(.spareTaken(volume: "d10", column: 3, spare: u("s0")))
        #expect(f.vol.columns[3].activeDevice == u("s0"))
        #expect(f.vol.resync?.target == u("s0"))
        try f.apply(.spareFailed(volume: "d10", column: 3, spare: u("s0")))
        #expect(f.vol.columns[3] == ComponentRecord(device: u("d3"), state: .maintenance))
        #expect(f.vol.resync == nil)
        #expect(f.spare("s0") == .broken)
        // The next spare is taken; the failure of the first one later does not drop it.
        try f.apply(.spareTaken(volume: "d10", column: 3, spare: u("s1")))
        try f.apply(.spareFailed(volume: "d10", column: 3, spare: u("s0")))
        #expect(f.vol.columns[3].hotSpare == u("s1"))
        #expect(f.vol.resync?.target == u("s1"))
    }

    @Test func clearReturnsSparesAndReleasesDevicesButKeepsReplicaHolders() throws {
        var f = Fixture(states: [.okay, .okay, .maintenance, .okay])
        try f.apply(.spareTaken(volume: "d10", column: 2, spare: u("s0")))
        let effects = try f.apply(.cleared(volume: "d10"))
        #expect(Set(effects) == Set([u("d1"), u("d2"), u("d3")].map(Effect.releaseDevice)))
        #expect(f.config.volumes.isEmpty)
        #expect(f.spare("s0") == .available)
        #expect(f.role("s0") == .hotSpare)
        #expect(f.role("d0") == .replica)
        #expect(throws: ModelError.self) { try f.apply(.cleared(volume: "d10")) }
    }

    @Test func clearReleasesACopyTargetAndPendingGrowDevices() throws {
        var f = Fixture()
        f.addDevice("n0"); f.addDevice("n1", role: .unused)
        try f.apply(.copyBegun(volume: "d10", column: 1, target: u("n0")))
        f.config.volumes[0].pendingGrow = PendingGrow(devices: [u("n1")], totalBlocks: 1 << 20)
        #expect(!f.config.devices.filter { $0.uuid == u("n1") }.isEmpty)
        let effects = try f.apply(.cleared(volume: "d10"))
        #expect(effects.contains(.releaseDevice(u("n0"))))
        #expect(effects.contains(.releaseDevice(u("n1"))))
    }

    @Test func growCancelReleasesItsDevices() throws {
        var f = Fixture()
        f.addDevice("n0", role: .unused)
        #expect(throws: ModelError.self) { try f.apply(.growCancelled(volume: "d10")) }
        f.config.volumes[0].pendingGrow = PendingGrow(devices: [u("n0")], totalBlocks: 1 << 20)
        #expect(try f.apply(.unusedDevicesReleased) == [], "a pending grow's device is not swept")
        #expect(try f.apply(.growCancelled(volume: "d10")) == [.releaseDevice(u("n0"))])
        #expect(f.vol.pendingGrow == nil)
    }

    @Test func sparesRemovedRefusesOneInUse() throws {
        var f = Fixture(states: [.maintenance, .okay, .okay, .okay])
        try f.apply(.spareTaken(volume: "d10", column: 0, spare: u("s0")))
        let before = f.config
        #expect(throws: ModelError.self) { try f.apply(.sparesRemoved(pool: "hsp001", devices: [u("s0")], deletePool: false)) }
        #expect(throws: ModelError.self) { try f.apply(.sparesRemoved(pool: "hsp001", devices: [], deletePool: true)) }
        #expect(f.config == before)
        #expect(try f.apply(.sparesRemoved(pool: "hsp001", devices: [u("s1")], deletePool: false)) == [.releaseDevice(u("s1"))])
        #expect(f.config.pool(named: "hsp001")?.spares.map(\.device) == [u("s0")])
    }

    @Test func deletingAPoolReleasesItsSpares() throws {
        var f = Fixture()
        let effects = try f.apply(.sparesRemoved(pool: "hsp001", devices: [], deletePool: true))
        #expect(effects == [.releaseDevice(u("s0")), .releaseDevice(u("s1"))])
        #expect(f.config.hotSparePools.isEmpty)
    }

    @Test func retireFollowsOneRule() {
        var f = Fixture()
        #expect(f.config.retire(u("d1"), .now) == [], "referenced by a volume: nothing happens")
        f.config.volumes = []
        #expect(f.config.retire(u("d0"), .now) == [])
        #expect(f.role("d0") == .replica)
        #expect(f.config.retire(u("d1"), .whenIdle) == [])
        #expect(f.role("d1") == .unused)
        #expect(f.config.retire(u("d2"), .now) == [.releaseDevice(u("d2"))])
        #expect(f.config.device(u("d2")) == nil)
        #expect(f.config.retire(u("s0"), .now) == [], "still in a pool")
    }

    @Test func initialisationEndsOkay() throws {
        var f = Fixture(states: [.initializing, .initializing, .initializing, .initializing])
        f.config.volumes[0].resync = ResyncCheckpoint(kind: .initialize, totalBlocks: 1 << 20)
        #expect(f.vol.derivedState == .initializing)
        try f.apply(.initializeCheckpoint(volume: "d10", doneBlocks: 1024, finished: false))
        #expect(f.vol.resync?.doneBlocks == 1024)
        try f.apply(.initializeCheckpoint(volume: "d10", doneBlocks: 1 << 20, finished: true))
        #expect(f.vol.resync == nil)
        #expect(f.vol.derivedState == .okay)
    }

    @Test func dirtyRegionsAndLostBlocks() throws {
        var f = Fixture()
        try f.apply(.dirtyRegions(volume: "d10", regions: [7, 3]))
        #expect(f.vol.dirtyRegions == [3, 7])
        try f.apply(.lostBlocks(volume: "d10", ranges: [LostRange(column: 1, start: 0, count: 8)]))
        #expect(f.vol.derivedState == .lastErred, "lost data is reported, never hidden")
        try f.apply(.lostBlocks(volume: "d10", ranges: []))
        #expect(f.vol.lostBlocks == nil)
        #expect(f.vol.derivedState == .okay)
    }
}

@Suite("Derived volume state")
struct DerivedStateTests {
    @Test(arguments: [
        ([ComponentState.okay, .okay, .okay, .okay], VolumeState.okay),
        ([.okay, .maintenance, .okay, .okay], .needsMaintenance),
        ([.okay, .unavailable, .okay, .okay], .needsMaintenance),
        ([.okay, .maintenance, .unavailable, .okay], .lastErred),
        ([.okay, .lastErred, .maintenance, .okay], .lastErred),
        ([.okay, .resyncing, .okay, .okay], .resyncing),
        ([.initializing, .initializing, .initializing, .initializing], .initializing),
    ])
    func raid5(states: [ComponentState], expected: VolumeState) {
        #expect(Fixture(states: states).vol.derivedState == expected)
    }

    @Test func concatWithAFailedComponentNeedsMaintenance() {
        let v = VolumeRecord(name: "d1", type: .concat, rows: [RowRecord(interlaceBlocks: 0, componentBlocks: 100, components: [
            ComponentRecord(device: u("d0")), ComponentRecord(device: u("d1"), state: .maintenance)])])
        #expect(v.derivedState == .needsMaintenance)
    }

    @Test func lostBlocksArithmetic() {
        let r = [LostRange(column: 0, start: 10, count: 10)]
        #expect(LostBlocks.isLost(r, column: 0, start: 19, count: 1))
        #expect(!LostBlocks.isLost(r, column: 0, start: 20, count: 5))
        #expect(!LostBlocks.isLost(r, column: 1, start: 10, count: 1))
        #expect(LostBlocks.subtract(r, column: 0, start: 12, count: 3)
                == [LostRange(column: 0, start: 10, count: 2), LostRange(column: 0, start: 15, count: 5)])
        #expect(LostBlocks.union(r, [LostRange(column: 0, start: 20, count: 4), LostRange(column: 1, start: 0, count: 1)])
                == [LostRange(column: 0, start: 10, count: 14), LostRange(column: 1, start: 0, count: 1)])
    }
}

@Suite("Record geometry")
struct RecordLayoutTests {
    @Test func raid5RecordGivesItsLayoutAndSize() throws {
        let v = Fixture().vol
        let l = try #require(v.raid5Layout)
        #expect(l.totalBlocks == 3 << 20, "4 columns of 2^20 blocks hold 3 columns of data")
        #expect(v.totalBlocks == 3 << 20)
        #expect(v.stripeLayout == nil)
    }

    @Test func malformedRecordsHaveNoLayout() {
        var v = Fixture().vol
        v.originalColumnCount = 2
        #expect(v.raid5Layout == nil)
        #expect(v.totalBlocks == 0)
        let empty = VolumeRecord(name: "d1", type: .stripe, rows: [RowRecord(interlaceBlocks: 32, componentBlocks: 100, components: [])])
        #expect(empty.stripeLayout == nil)
        #expect(empty.totalBlocks == 0)
    }

    @Test func stripeRecordSize() {
        let v = VolumeRecord(name: "d1", type: .stripe, rows: [
            RowRecord(interlaceBlocks: 32, componentBlocks: 640, components: [ComponentRecord(device: u("d0")), ComponentRecord(device: u("d1"))]),
            RowRecord(interlaceBlocks: 0, componentBlocks: 100, components: [ComponentRecord(device: u("d2"))])])
        #expect(v.totalBlocks == 2 * 640 + 100)
    }
}

@Suite("Grow")
struct GrowTransitionTests {
    @Test func raid5GrowBeginsCheckpointsAndCommits() throws {
        var f = Fixture()
        f.addDevice("n0", role: .unused)
        try f.apply(.growBegun(volume: "d10", devices: [u("n0")]))
        #expect(f.vol.pendingGrow == PendingGrow(devices: [u("n0")], totalBlocks: 1 << 20, startedAt: f.vol.pendingGrow!.startedAt))
        #expect(throws: ModelError.self) { try f.apply(.growBegun(volume: "d10", devices: [u("n1")])) }
        try f.apply(.growCheckpoint(volume: "d10", devices: [u("n0")], zeroedBlocks: 4096))
        #expect(f.vol.pendingGrow?.zeroedBlocks == 4096)
        #expect(throws: ModelError.self) { try f.apply(.growCheckpoint(volume: "d10", devices: [u("n1")], zeroedBlocks: 1)) }
        try f.apply(.growCommitted(volume: "d10", devices: [u("n0")]))
        #expect(f.vol.columns.count == 5)
        #expect(f.vol.columns[4] == ComponentRecord(device: u("n0"), state: .okay))
        #expect(f.vol.pendingGrow == nil)
        #expect(f.role("n0") == .component)
        #expect(f.vol.totalBlocks == 4 << 20)
    }

    @Test func growIsNotCommittedOverAFailedColumn() throws {
        var f = Fixture()
        f.addDevice("n0", role: .unused)
        try f.apply(.growBegun(volume: "d10", devices: [u("n0")]))
        try f.apply(.columnFailed(volume: "d10", column: 1, state: .maintenance))
        let before = f.config
        #expect(throws: ModelError.self) { try f.apply(.growCommitted(volume: "d10", devices: [u("n0")])) }
        #expect(f.config == before)
    }

    @Test func concatGrowsByARow() throws {
        var f = Fixture()
        f.config.volumes.append(VolumeRecord(name: "d1", type: .concat, rows: []))
        f.addDevice("n0"); f.addDevice("n1")
        try f.apply(.rowAppended(volume: "d1", devices: [u("n0"), u("n1")], interlaceBlocks: 128, sectorBlocks: 1))
        let data = (1 << 30) / 512 - 2048
        #expect(f.config.volume(named: "d1")?.rows == [RowRecord(interlaceBlocks: 128, componentBlocks: UInt64(data),
                                                                 components: [ComponentRecord(device: u("n0")), ComponentRecord(device: u("n1"))])])
        #expect(throws: ModelError.self) { try f.apply(.rowAppended(volume: "d10", devices: [u("n0")], interlaceBlocks: 1, sectorBlocks: 1)) }
        #expect(Grow.row(devices: [f.config.device(u("n0"))!], interlaceBlocks: 64, sectorBlocks: 8).componentBlocks == UInt64(data) / 8 * 8)
    }
}

@Suite("Last Erred enable")
struct LastErredEnableTests {
    @Test func enablingTrustsTheColumnAgain() throws {
        var f = Fixture(states: [.okay, .lastErred, .maintenance, .okay])
        #expect(f.vol.derivedState == .lastErred)
        try f.apply(.lastErredEnabled(volume: "d10", column: 1))
        #expect(f.vol.columns[1].state == .okay)
        #expect(f.vol.derivedState == .needsMaintenance)
        #expect(throws: ModelError.self) { try f.apply(.lastErredEnabled(volume: "d10", column: 2)) }
    }
}

@Suite("write log rules")
struct WriteLogModelTests {
    @Test func epochOnlyMovesForward() throws {
        var f = Fixture()
        try f.apply(.writeLogSet(volume: "d10", log: WriteLogConfig(mode: .auto, areaBlocks: 2048, epoch: 3)))
        try f.apply(.writeLogEpoch(volume: "d10", epoch: 4))
        #expect(f.config.volume(named: "d10")?.writeLog?.epoch == 4)
        #expect(throws: ModelError.self) { try f.apply(.writeLogEpoch(volume: "d10", epoch: 4)) }
        #expect(f.config.volume(named: "d10")?.writeLog?.epoch == 4, "a refused event changes nothing")
    }

    @Test func onlyRAID5VolumesHaveALog() throws {
        var f = Fixture()
        f.config.volumes.append(VolumeRecord(name: "d0", type: .concat))
        #expect(throws: ModelError.self) { try f.apply(.writeLogSet(volume: "d0", log: WriteLogConfig(mode: .auto, areaBlocks: 2048))) }
        #expect(throws: ModelError.self) { try f.apply(.writeLogSet(volume: "nope", log: nil)) }
        // An engine event about a volume without a log changes nothing.
        try f.apply(.writeLogEpoch(volume: "d10", epoch: 9))
        #expect(f.config.volume(named: "d10")?.writeLog == nil)
    }

    /// A replacement for an original column must hold the column and the log area; a column
    /// added by grow holds data only.
    @Test func blocksNeededCountTheLogAreaOnOriginalColumns() {
        var v = VolumeRecord(name: "d10", type: .raid5, columns: (0..<4).map { _ in ComponentRecord(device: UUID()) },
                             originalColumnCount: 3, interlaceBlocks: 128, columnBlocks: 1 << 20)
        #expect(v.blocksNeeded(column: 0) == 1 << 20)
        v.writeLog = WriteLogConfig(mode: .auto, areaBlocks: 2048)
        #expect(v.blocksNeeded(column: 2) == (1 << 20) + 2048)
        #expect(v.blocksNeeded(column: 3) == 1 << 20)
        #expect(WriteLogConfig.defaultAreaBlocks(columnDataBlocks: 1 << 30) == 16 * 2048)
        #expect(WriteLogConfig.defaultAreaBlocks(columnDataBlocks: 10_000) == 2048)
    }
}

@Suite("check rules")
struct CheckModelTests {
    @Test func aCheckBeginsOnAHealthyRAID5AndRecordsItsProgressAndEnd() throws {
        var f = Fixture()
        let t0 = Date(timeIntervalSince1970: 1_000)
        try f.apply(.checkBegun(volume: "d10", repair: true, totalLines: 8192, at: t0))
        #expect(f.vol.check == CheckRecord(repair: true, totalLines: 8192, startedAt: t0))
        var counts = CheckCounts()
        counts.addMismatch(7, repaired: true)
        try f.apply(.checkCheckpoint(volume: "d10", doneLines: 100, counts: counts))
        #expect(f.vol.check?.doneLines == 100 && f.vol.check?.counts.lines == [7] && f.vol.check?.counts.repaired == 1)
        // A second check is refused while one runs; so is a grow.
        #expect(throws: ModelError.self) { try f.apply(.checkBegun(volume: "d10", repair: false, totalLines: 8192, at: t0)) }
        f.addDevice("n0")
        #expect(throws: ModelError.self) { try f.apply(.growBegun(volume: "d10", devices: [u("n0")])) }
        let t1 = Date(timeIntervalSince1970: 2_000)
        try f.apply(.checkEnded(volume: "d10", result: .completed, doneLines: 8192, counts: counts, failure: nil, at: t1))
        #expect(f.vol.check?.running == false && f.vol.check?.result == .completed && f.vol.check?.endedAt == t1)
        // Once ended, checkpoints and ends change nothing; a new check replaces the record.
        let ended = f.config
        try f.apply(.checkCheckpoint(volume: "d10", doneLines: 5, counts: CheckCounts()))
        try f.apply(.checkEnded(volume: "d10", result: .stopped, doneLines: 5, counts: CheckCounts(), failure: nil, at: t0))
        #expect(f.config == ended)
        try f.apply(.checkBegun(volume: "d10", repair: false, totalLines: 8192, at: t1))
        #expect(f.vol.check?.running == true && f.vol.check?.counts == CheckCounts())
    }

    @Test(arguments: [ComponentState.maintenance, .lastErred, .unavailable, .resyncing, .initializing])
    func aCheckNeedsEveryColumnOkay(_ state: ComponentState) {
        var f = Fixture(states: [.okay, state, .okay, .okay])
        #expect(throws: ModelError.self) { try f.apply(.checkBegun(volume: "d10", repair: false, totalLines: 1, at: Date())) }
        #expect(f.vol.check == nil)
    }

    @Test func aCheckWaitsForResyncAndGrowAndNeedsRedundancy() throws {
        var f = Fixture()
        f.config.volumes[0].resync = ResyncCheckpoint(kind: .initialize, totalBlocks: 10)
        #expect(throws: ModelError.self) { try f.apply(.checkBegun(volume: "d10", repair: false, totalLines: 1, at: Date())) }
        f.config.volumes[0].resync = nil
        f.config.volumes[0].pendingGrow = PendingGrow(devices: [u("n0")], totalBlocks: 10)
        #expect(throws: ModelError.self) { try f.apply(.checkBegun(volume: "d10", repair: false, totalLines: 1, at: Date())) }
        f.config.volumes.append(VolumeRecord(name: "d0", type: .concat))
        #expect(throws: ModelError.self) { try f.apply(.checkBegun(volume: "d0", repair: false, totalLines: 1, at: Date())) }
        #expect(throws: ModelError.self) { try f.apply(.checkBegun(volume: "d99", repair: false, totalLines: 1, at: Date())) }
    }

    @Test func countsKeepTheFirstSixteenLines() {
        var c = CheckCounts()
        for l in 0..<20 { c.addMismatch(UInt64(l) * 3, repaired: l.isMultiple(of: 2)) }
        #expect(c.mismatches == 20 && c.repaired == 10)
        #expect(c.lines == (0..<16).map { UInt64($0) * 3 })
    }
}

@Suite("RAID-6: two columns rebuilt in one pass")
struct TwoTargetTransitionTests {
    /// The fixture's volume as a RAID-6 with columns 1 and 3 failed, new devices n0 and n1.
    fileprivate static func twoFailed() -> Fixture {
        var f = Fixture(states: [.okay, .maintenance, .okay, .maintenance])
        f.config.volumes[0].type = .raid6
        f.addDevice("n0")
        f.addDevice("n1")
        return f
    }

    @Test func aSecondRegenerationJoinsTheFirstInOneTransaction() throws {
        var f = Self.twoFailed()
        try f.apply(.regenerationBegun(volume: "d10", column: 1, target: u("n0")))
        let effects = try f.apply(.regenerationJoined(volume: "d10", column: 3, target: u("n1"), spare: false))
        let v = f.config.volumes[0]
        #expect(v.resync?.rebuiltColumns == [1, 3])
        #expect(v.resync?.more == [RebuildTarget(column: 3, target: u("n1"))])
        #expect(v.columns[3].device == u("n1") && v.columns[3].state == .resyncing)
        #expect(effects.contains(.releaseDevice(u("d3"))), "the old device retires")
        #expect(v.derivedState == .resyncing)
        // Both are Okay at the end.
        try f.apply(.resyncFinished(volume: "d10", kind: .regenerate))
        #expect(f.config.volumes[0].columns.allSatisfy { $0.state == .okay } && f.config.volumes[0].resync == nil)
    }

    @Test func joiningIsRefusedOnRAID5AfterProgressAndTwice() throws {
        var r5 = Self.twoFailed()
        r5.config.volumes[0].type = .raid5
        try r5.apply(.regenerationBegun(volume: "d10", column: 1, target: u("n0")))
        #expect(throws: ModelError.self) { try r5.apply(.regenerationJoined(volume: "d10", column: 3, target: u("n1"), spare: false)) }
        var started = Self.twoFailed()
        try started.apply(.regenerationBegun(volume: "d10", column: 1, target: u("n0")))
        try started.apply(.resyncCheckpoint(volume: "d10", column: 1, target: u("n0"), doneBlocks: 128))
        #expect(throws: ModelError.self) { try started.apply(.regenerationJoined(volume: "d10", column: 3, target: u("n1"), spare: false)) }
        var same = Self.twoFailed()
        try same.apply(.regenerationBegun(volume: "d10", column: 1, target: u("n0")))
        #expect(throws: ModelError.self) { try same.apply(.regenerationJoined(volume: "d10", column: 1, target: u("n1"), spare: false)) }
    }

    @Test func aFailedTargetLeavesTheOtherToGoOn() throws {
        var f = Self.twoFailed()
        try f.apply(.regenerationBegun(volume: "d10", column: 1, target: u("n0")))
        try f.apply(.regenerationJoined(volume: "d10", column: 3, target: u("n1"), spare: false))
        try f.apply(.resyncCheckpoint(volume: "d10", column: 1, target: u("n0"), doneBlocks: 256))
        // The first column's target fails: the second takes its place, with the same progress.
        try f.apply(.columnFailed(volume: "d10", column: 1, state: .maintenance))
        let r = try #require(f.config.volumes[0].resync)
        #expect(r.column == 3 && r.target == u("n1") && r.doneBlocks == 256 && r.more == nil)
        // Then that one goes missing: nothing is left.
        try f.apply(.columnsMissing(volume: "d10", columns: [3], dropCopy: false))
        #expect(f.config.volumes[0].resync == nil)
    }

    @Test func twoSparesTakeOverAndOneFails() throws {
        var f = Self.twoFailed()
        try f.apply(.spareTaken(volume: "d10", column: 1, spare: u("s0")))
        try f.apply(.regenerationJoined(volume: "d10", column: 3, target: u("s1"), spare: true))
        #expect(f.spare("s0") == .inUse && f.spare("s1") == .inUse)
        #expect(f.config.volumes[0].columns[3].hotSpare == u("s1"))
        try f.apply(.spareFailed(volume: "d10", column: 3, spare: u("s1")))
        #expect(f.spare("s1") == .broken)
        let r = try #require(f.config.volumes[0].resync)
        #expect(r.rebuiltColumns == [1] && r.target == u("s0"))
        #expect(f.config.volumes[0].columns[3].state == .maintenance && f.config.volumes[0].columns[3].hotSpare == nil)
    }
}

@Suite("Re-add of a returned device (regions written while it was away)")
struct DeviceReturnedTests {
    @Test func anOkayColumnThatGoesAwayStartsTrackingWithTheDirtyRegions() throws {
        var f = Fixture()
        try f.apply(.dirtyRegions(volume: "d10", regions: [3, 1]))
        try f.apply(.columnFailed(volume: "d10", column: 2, state: .unavailable))
        #expect(f.vol.columns[2].staleRegions == [1, 3], "writes in flight when it went away may have missed it")
        try f.apply(.dirtyRegions(volume: "d10", regions: [7]))
        try f.apply(.dirtyRegions(volume: "d10", regions: []))
        #expect(f.vol.columns[2].staleRegions == [1, 3, 7], "cleaning a region does not make the away column current")
        #expect(f.vol.columns[0].staleRegions == nil, "present columns track nothing")
    }

    @Test func onlyAnOkayColumnThatGoesMissingIsTracked() throws {
        var f = Fixture(states: [.okay, .maintenance, .okay, .okay])
        try f.apply(.columnsMissing(volume: "d10", columns: [0, 1], dropCopy: false))
        #expect(f.vol.columns[0].state == .unavailable)
        #expect(f.vol.columns[0].staleRegions == [], "tracked from an Okay column with nothing dirty")
        #expect(f.vol.columns[1].staleRegions == nil, "a Maintenance column stays Maintenance and untracked")
        try f.apply(.columnFailed(volume: "d10", column: 0, state: .maintenance))
        #expect(f.vol.columns[0].staleRegions == nil, "an I/O failure needs a full rebuild")
    }

    @Test func workThatWritesOutsideTheLogIsNotTrackable() throws {
        var f = Fixture()
        f.config.volumes[0].resync = ResyncCheckpoint(kind: .initialize, totalBlocks: 1 << 20)
        try f.apply(.columnFailed(volume: "d10", column: 1, state: .unavailable))
        #expect(f.vol.columns[1].staleRegions == nil, "parity initialisation writes every line")

        var g = Fixture()
        try g.apply(.columnFailed(volume: "d10", column: 1, state: .unavailable))
        #expect(g.vol.columns[1].staleRegions == [])
        g.addDevice("n0", role: .unused)
        try g.apply(.growBegun(volume: "d10", devices: [u("n0")]))
        #expect(g.vol.columns[1].staleRegions == nil, "a grow moves every line")
    }

    @Test func theReturnedDeviceIsRebuiltOverItsRegionsOnly() throws {
        var f = Fixture()
        try f.apply(.columnFailed(volume: "d10", column: 3, state: .unavailable))
        try f.apply(.dirtyRegions(volume: "d10", regions: [2, 5]))
        try f.apply(.deviceReturned(volume: "d10", column: 3))
        #expect(f.vol.columns[3].state == .resyncing)
        #expect(f.vol.columns[3].staleRegions == nil)
        #expect(f.vol.resync?.kind == .regenerate)
        #expect(f.vol.resync?.column == 3)
        #expect(f.vol.resync?.target == u("d3"), "rebuilt in place, on its own device")
        #expect(f.vol.resync?.regions == [2, 5])
        try f.apply(.resyncFinished(volume: "d10", kind: .regenerate))
        #expect(f.vol.columns[3] == ComponentRecord(device: u("d3"), state: .okay))
        #expect(f.vol.resync == nil)
    }

    @Test func anUntrackedReturnIsAFullRebuild() throws {
        var f = Fixture(states: [.okay, .okay, .unavailable, .okay])
        try f.apply(.deviceReturned(volume: "d10", column: 2))
        #expect(f.vol.resync?.regions == nil)
        #expect(f.vol.columns[2].state == .resyncing)
    }

    @Test func deviceReturnedRefusals() throws {
        var f = Fixture(states: [.okay, .maintenance, .okay, .okay])
        let before = f.config
        #expect(throws: ModelError.self) { try f.apply(.deviceReturned(volume: "d10", column: 1)) }
        #expect(throws: ModelError.self) { try f.apply(.deviceReturned(volume: "d10", column: 0)) }
        #expect(throws: ModelError.self) { try f.apply(.deviceReturned(volume: "d10", column: 9)) }
        #expect(f.config == before)

        var g = Fixture()
        try g.apply(.columnFailed(volume: "d10", column: 1, state: .unavailable))
        try g.apply(.spareTaken(volume: "d10", column: 1, spare: u("s0")))
        #expect(g.vol.columns[1].staleRegions == nil, "a spare stands in: the old device is not current anywhere")
        #expect(throws: ModelError.self) { try g.apply(.deviceReturned(volume: "d10", column: 1)) }

        var h = Fixture(states: [.okay, .unavailable, .okay, .maintenance])
        h.config.volumes[0].columns[1].staleRegions = [4]
        try h.apply(.enableRegenerate(volume: "d10", column: 3))
        let during = h.config
        #expect(throws: ModelError.self) { try h.apply(.deviceReturned(volume: "d10", column: 1)) }
        #expect(h.config == during, "a resync in progress: refused, nothing changed")
    }

    @Test func aJoiningColumnMakesTheRebuildFull() throws {
        var f = Fixture()
        f.config.volumes[0].type = .raid6
        try f.apply(.columnFailed(volume: "d10", column: 0, state: .unavailable))
        try f.apply(.dirtyRegions(volume: "d10", regions: [1]))
        try f.apply(.deviceReturned(volume: "d10", column: 0))
        #expect(f.vol.resync?.regions == [1])
        try f.apply(.columnFailed(volume: "d10", column: 2, state: .maintenance))
        f.addDevice("n0")
        try f.apply(.regenerationJoined(volume: "d10", column: 2, target: u("n0"), spare: false))
        #expect(f.vol.resync?.regions == nil, "the joining column has no current data anywhere")
    }
}

@Suite("Soft partitions in the model")
struct SoftPartitionModelTests {
    @Test func aParentIsNotClearedUnderItsSoftPartitions() throws {
        var f = Fixture()
        var sp = VolumeRecord(name: "d1", type: .softpart)
        sp.softPartition = SoftPartitionRecord(parent: "d10", extents: [SoftExtent(watermarkBlock: 376, blocks: 1024)])
        f.config.volumes.append(sp)
        let before = f.config
        #expect(throws: ModelError.self) { try f.apply(.cleared(volume: "d10")) }
        #expect(f.config == before)
        #expect(f.config.softPartitions(of: "d10").map(\.name) == ["d1"])
        #expect(f.config.softExtents(of: "d10") == [SoftPartitionLayout.Extent(watermarkBlock: 376, blocks: 1024)])
        try f.apply(.cleared(volume: "d1"))
        try f.apply(.cleared(volume: "d10"))
        #expect(f.config.volumes.isEmpty)
    }

    @Test func aSoftPartitionRecordRoundTripsAndOlderRecordsHaveNone() throws {
        var sp = VolumeRecord(name: "d1", type: .softpart)
        sp.softPartition = SoftPartitionRecord(parent: "d10", extents: [SoftExtent(watermarkBlock: 0, blocks: 8)], generation: 3)
        let back = try JSONDecoder().decode(VolumeRecord.self, from: JSONEncoder().encode(sp))
        #expect(back == sp)
        #expect(back.softPartition?.layout.totalBlocks == 8)
        let old = try JSONDecoder().decode(VolumeRecord.self, from: JSONEncoder().encode(VolumeRecord(name: "d0", type: .concat)))
        #expect(old.softPartition == nil)
    }
}
