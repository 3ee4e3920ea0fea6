import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport
import Synchronization
import Testing

/// Counts the writes that reach a device (whether they succeed or not).
final class CountingDevice: BlockDevice, @unchecked Sendable {
    let base: any BlockDevice
    private let count = Atomic<Int>(0)
    var writes: Int { count.load(ordering: .relaxed) }
    init(_ base: any BlockDevice) { self.base = base }
    var path: String { base.path }
    var sizeBytes: UInt64 { base.sizeBytes }
    var logicalSectorSize: Int { base.logicalSectorSize }
    var physicalSectorSize: Int { base.physicalSectorSize }
    var discardZeroes: Bool { base.discardZeroes }
    var isBuffered: Bool { base.isBuffered }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        try base.read(into: buffer, at: offset)
    }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        count.add(1, ordering: .relaxed)
        try base.write(buffer, at: offset)
    }
    func flush() throws(DeviceError) { try base.flush() }
    func discard(offset: UInt64, length: UInt64) throws(DeviceError) { try base.discard(offset: offset, length: length) }
}

/// A replica whose write failed is not written again during the same open (review item 10).
@Suite struct ErredReplicaTests {
    @Test func failedReplicaIsWrittenOnceAndStillCountsInTheMajority() throws {
        let mems = memDevices(3)
        _ = try SetDatabase.create(setName: "e", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        let faulty = mems.map { FaultyDevice($0) }
        let counted = faulty.map { CountingDevice($0) }
        let db = try SetDatabase(devices: counted)
        faulty[0].updateFaults { $0.failWrites = true }
        for i in 0..<5 { try db.commit { $0.volumes = [sampleVolume("d\(i)", tag: i)] } }
        #expect(counted[0].writes == 1)
        #expect(counted[1].writes == 5)
        #expect(counted[2].writes == 5)
        #expect(db.replicaStatus.map(\.state) == [.unreadable, .active, .active])
        #expect(db.replicaStatus[0].problems.contains { $0.contains("not written again") })
        #expect(db.quorum == Quorum(readable: 2, total: 3))
        // Healing the device does not bring it back during this open.
        faulty[0].updateFaults { $0.failWrites = false }
        try db.commit { $0.volumes = [sampleVolume("d5", tag: 5)] }
        #expect(counted[0].writes == 1)
        // The skipped replica still counts as a failed write: with a second failing replica
        // the commit reaches 1 of 3 and is rolled back, as it would be with the write tried.
        let committed = db.config
        faulty[1].updateFaults { $0.failWrites = true }
        #expect(throws: DatabaseError.self) { try db.commit { $0.volumes = [sampleVolume("d6", tag: 6)] } }
        #expect(counted[0].writes == 1)
        #expect(db.config == committed)
        #expect(!db.quorum.writable)
        // Reopened (devices healed): the replica is written again and refreshed.
        faulty[1].updateFaults { $0.failWrites = false }
        let again = try SetDatabase(devices: counted)
        #expect(counted[0].writes == 2)
        #expect(again.config == committed)
        #expect(again.replicaStatus.allSatisfy { $0.state == .active && $0.generation == again.currentGeneration })
    }

    /// Five replicas, two of them failing: every commit still needs three of the five.
    @Test func majorityIsOverAllListedReplicas() throws {
        let mems = memDevices(5)
        _ = try SetDatabase.create(setName: "e", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        let faulty = mems.map { FaultyDevice($0) }
        let db = try SetDatabase(devices: faulty)
        faulty[0].updateFaults { $0.failWrites = true }
        faulty[1].updateFaults { $0.failWrites = true }
        try db.commit { $0.cleanShutdown = false }
        #expect(db.quorum == Quorum(readable: 3, total: 5))
        #expect(faulty[0].injectedErrors == 1 && faulty[1].injectedErrors == 1)
        faulty[2].updateFaults { $0.failWrites = true }
        #expect(throws: DatabaseError.self) { try db.commit { $0.cleanShutdown = true } }
        #expect(faulty[0].injectedErrors == 1 && faulty[1].injectedErrors == 1)
        #expect(db.config.cleanShutdown == false)
    }
}
