import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport
import Testing

@Suite struct CommitTests {
    @Test func createCommitReload() throws {
        let devs = memDevices(3)
        let db = try SetDatabase.create(setName: "t", devices: devs.map { ($0, 1) }, slotSize: testSlot)
        #expect(db.quorum == Quorum(readable: 3, total: 3))
        #expect(db.config.devices.count == 3)
        #expect(db.config.devices.allSatisfy { $0.role == .replica && $0.dataStartBlock == 2048 })
        try db.commit { $0.volumes.append(sampleVolume("d0", tag: 1)) }
        let expected = db.config
        let again = try SetDatabase(devices: devs, mode: .readOnly)
        #expect(again.config == expected)
        #expect(again.replicaStatus.allSatisfy { $0.state == .active && $0.generation == 2 })
        #expect(again.skippedWhileLoading.isEmpty)
        // The devices are shared through device(_:).
        for d in expected.devices { #expect(again.device(d.uuid) != nil) }
    }

    @Test func readOnlyRefusesCommit() throws {
        let devs = memDevices(1)
        _ = try SetDatabase.create(setName: "t", devices: [(devs[0], 1)], slotSize: testSlot)
        let ro = try SetDatabase(devices: devs, mode: .readOnly)
        #expect(throws: DatabaseError.self) { try ro.commit { $0.cleanShutdown = false } }
    }

    @Test func bodyErrorChangesNothing() throws {
        struct Boom: Error {}
        let devs = memDevices(3)
        let db = try SetDatabase.create(setName: "t", devices: devs.map { ($0, 1) }, slotSize: testSlot)
        let before = db.config
        let snaps = devs.map { $0.snapshot() }
        #expect(throws: Boom.self) {
            try db.commit { c in c.volumes.append(sampleVolume("d0", tag: 1)); throw Boom() }
        }
        #expect(db.config == before)
        #expect(devs.map { $0.snapshot() } == snaps)
    }

    @Test func slotsAlternateAndBothGenerationsSurvive() throws {
        let devs = memDevices(1)
        let db = try SetDatabase.create(setName: "t", devices: [(devs[0], 1)], slotSize: testSlot)
        for i in 0..<5 { try db.commit { $0.volumes = [sampleVolume("d\(i)", tag: i)] } }
        #expect(db.currentGeneration == 6)
        // Destroy the newest slot: the load falls back to the previous generation, and says so.
        let loc = db.config.replicas[0]
        let newestSlot = 6 % 2 == 0 ? 1 : 0 // gen1 → slot0, gen2 → slot1, ... gen6 → slot1
        let off = loc.offsetBytes + UInt64(newestSlot) * testSlot + 600
        var bytes = devs[0].snapshot()
        bytes[Int(off)] ^= 0xFF
        devs[0].restore(bytes)
        let again = try SetDatabase(devices: devs, mode: .readOnly)
        #expect(again.currentGeneration == 5)
        #expect(again.config.volumes.first?.name == "d3")
        #expect(!again.skippedWhileLoading.isEmpty)
    }

    @Test func writeFailuresBelowMajorityRollBack() throws {
        let mems = memDevices(3)
        _ = try SetDatabase.create(setName: "t", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        let faulty = mems.map { FaultyDevice($0) }
        let db = try SetDatabase(devices: faulty)
        try db.commit { $0.volumes = [sampleVolume("d0", tag: 0)] }
        let committed = db.config
        // Two of three replicas refuse writes: the commit cannot reach a majority.
        faulty[1].updateFaults { $0.failWrites = true }
        faulty[2].updateFaults { $0.failWrites = true }
        #expect(throws: DatabaseError.self) {
            try db.commit { $0.volumes = [sampleVolume("d1", tag: 1)] }
        }
        #expect(db.config == committed)
        #expect(!db.quorum.writable)
        // Heal the devices: no later load sees the failed commit.
        let again = try SetDatabase(devices: mems)
        #expect(again.config == committed)
        #expect(again.quorum.writable)
        #expect(again.replicaStatus.allSatisfy { $0.state == .active })
    }

    @Test func oneFailingReplicaStillCommits() throws {
        let mems = memDevices(3)
        _ = try SetDatabase.create(setName: "t", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        let faulty = mems.map { FaultyDevice($0) }
        let db = try SetDatabase(devices: faulty)
        faulty[0].updateFaults { $0.failWrites = true }
        try db.commit { $0.volumes = [sampleVolume("d1", tag: 1)] }
        #expect(db.replicaStatus.map(\.state) == [.unreadable, .active, .active])
        #expect(db.quorum == Quorum(readable: 2, total: 3))
        faulty[0].updateFaults { $0.failWrites = false }
        // The stale replica comes back: refreshed on the next read-write open, never trusted.
        let again = try SetDatabase(devices: mems)
        #expect(again.config.volumes.first?.name == "d1")
        #expect(again.replicaStatus.allSatisfy { $0.state == .active && $0.generation == again.currentGeneration })
        let alone = try SetDatabase(devices: [mems[0]], mode: .readOnly)
        #expect(alone.config.volumes.first?.name == "d1")
    }

    @Test func staleReplicaIsReportedReadOnlyAndRefreshedReadWrite() throws {
        let mems = memDevices(3)
        let db = try SetDatabase.create(setName: "t", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        let old = mems[2].snapshot()
        try db.commit { $0.volumes = [sampleVolume("d1", tag: 1)] }
        mems[2].restore(old) // device 2 "was away" during the commit
        let ro = try SetDatabase(devices: mems, mode: .readOnly)
        #expect(ro.replicaStatus.map(\.state) == [.active, .active, .stale])
        #expect(ro.config.volumes.first?.name == "d1")
        let rw = try SetDatabase(devices: mems)
        #expect(rw.replicaStatus.map(\.state) == [.active, .active, .active])
    }

    @Test func multipleCopiesPerDeviceAndDataStart() throws {
        let mems = memDevices(2, size: 8 << 20)
        let db = try SetDatabase.create(setName: "t", devices: [(mems[0], 3), (mems[1], 0)], slotSize: testSlot)
        #expect(db.config.replicas.count == 3)
        #expect(db.config.devices[0].dataStartBlock == 2048)
        #expect(db.config.devices[1].dataStartBlock == 2048)
        #expect(DiskLayout.dataStartBlock(copies: 1, slotSize: DiskLayout.defaultSlotSize) == 10240)
        #expect(DiskLayout.dataStartBlock(copies: 0, slotSize: DiskLayout.defaultSlotSize) == 2048)
        let offsets = db.config.replicas.map(\.offsetBytes)
        #expect(offsets == [65536, 65536 + 2 * testSlot, 65536 + 4 * testSlot])
    }

    @Test func addAndDeleteReplicaDevices() throws {
        let mems = memDevices(4)
        let db = try SetDatabase.create(setName: "t", devices: [(mems[0], 1)], slotSize: testSlot)
        try db.commit { c in
            _ = try db.addDevice(mems[1], role: .replica, replicaCopies: 1, in: &c)
            _ = try db.addDevice(mems[2], role: .component, replicaCopies: 1, in: &c)
        }
        #expect(db.config.replicas.count == 3)
        #expect(db.quorum == Quorum(readable: 3, total: 3))
        // A failing commit wipes the labels it wrote.
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try db.commit { c in _ = try db.addDevice(mems[3], role: .replica, replicaCopies: 1, in: &c); throw Boom() }
        }
        #expect(Label.read(from: mems[3]).label == nil)
        // Deleting replicas: a replica-only device leaves the set, a component stays.
        let r1 = db.config.devices[1].uuid, c2 = db.config.devices[2].uuid
        try db.deleteReplicas(onDevices: [r1, c2], force: false)
        #expect(db.config.replicas.count == 1)
        #expect(db.config.device(r1) == nil)
        #expect(Label.read(from: mems[1]).label == nil)
        #expect(db.config.device(c2)?.replicaCount == 0)
        #expect(Label.read(from: mems[2]).label?.replicaCount == 0)
        #expect(throws: DatabaseError.self) { try db.deleteReplicas(onDevices: [db.config.devices[0].uuid], force: true) }
        let again = try SetDatabase(devices: mems)
        #expect(again.config == db.config)
    }

    @Test func roleChangeFollowsIntoLabel() throws {
        let mems = memDevices(3)
        let db = try SetDatabase.create(setName: "t", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        try db.commit { c in for i in c.devices.indices { c.devices[i].role = .component } }
        #expect(mems.allSatisfy { Label.read(from: $0).label?.role == .component })
    }

    @Test func configTooLargeForSlotIsRefused() throws {
        let mems = memDevices(1)
        let db = try SetDatabase.create(setName: "t", devices: [(mems[0], 1)], slotSize: testSlot)
        #expect(throws: DatabaseError.self) {
            try db.commit { c in c.volumes = (0..<400).map { sampleVolume("d\($0)", tag: $0) } }
        }
        #expect(db.config.volumes.isEmpty)
    }
}
