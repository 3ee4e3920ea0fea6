import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport
import Testing

@Suite struct QuorumTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var replicas: Int
        var lost: Int
        /// Lose by read errors (device present but failing) instead of absence.
        var byErrors: Bool
        var testDescription: String { "\(replicas) replicas, \(lost) lost\(byErrors ? " (I/O errors)" : "")" }
    }
    static let cases: [Case] = (1...5).flatMap { n in (0...n).flatMap { k in [false, true].map { Case(replicas: n, lost: k, byErrors: $0) } } }

    @Test(arguments: cases)
    func matrix(_ c: Case) throws {
        let mems = memDevices(c.replicas)
        let created = try SetDatabase.create(setName: "q", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        try created.commit { $0.volumes = [sampleVolume("d0", tag: 3)] }
        let expected = created.config
        let devs: [any BlockDevice]
        if c.byErrors {
            devs = mems.enumerated().map { i, m in
                let f = FaultyDevice(m)
                if i < c.lost { f.updateFaults { $0.failReads = true; $0.failWrites = true } }
                return f
            }
        } else {
            devs = Array(mems.dropFirst(c.lost))
        }
        let survivors = c.replicas - c.lost
        let writable = survivors * 2 > c.replicas
        if survivors == 0 {
            #expect(throws: DatabaseError.self) { _ = try SetDatabase(devices: devs, mode: .readOnly) }
            return
        }
        // Read-only always opens and tells the truth.
        let ro = try SetDatabase(devices: devs, mode: .readOnly)
        #expect(ro.config == expected)
        #expect(ro.quorum.readable == survivors)
        #expect(ro.quorum.total == c.replicas)
        #expect(ro.quorum.writable == writable)
        #expect(ro.replicaStatus.filter { $0.state == .unreadable }.count == c.lost)
        // Read-write opens exactly with a strict majority.
        if writable {
            let rw = try SetDatabase(devices: devs)
            try rw.commit { $0.cleanShutdown = false }
            #expect(rw.config.cleanShutdown == false)
        } else {
            do {
                _ = try SetDatabase(devices: devs)
                Issue.record("opened read-write without quorum")
            } catch let e as DatabaseError {
                let msg = e.description
                #expect(msg.contains("read-only"))
                #expect(msg.contains("db delete --force"))
                #expect(!msg.contains("\n"))
            }
            // Opened anyway (repair mode): every ordinary commit is refused with the same message.
            let rw = try SetDatabase(devices: devs, requireQuorum: false)
            #expect(throws: DatabaseError.self) { try rw.commit { $0.cleanShutdown = false } }
            #expect(rw.config == expected)
        }
    }

    /// The way out of a lost majority: delete the dead replicas with force.
    @Test func forcedDeleteRestoresWritability() throws {
        let mems = memDevices(3)
        let db = try SetDatabase.create(setName: "q", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        let dead = db.config.devices.prefix(2).map(\.uuid)
        let survivor = [mems[2]]
        let rw = try SetDatabase(devices: survivor, requireQuorum: false)
        #expect(!rw.quorum.writable)
        #expect(throws: DatabaseError.self) { try rw.deleteReplicas(onDevices: dead, force: false) }
        try rw.deleteReplicas(onDevices: dead, force: true)
        #expect(rw.quorum == Quorum(readable: 1, total: 1))
        try rw.commit { $0.volumes = [sampleVolume("d9", tag: 9)] }
        let again = try SetDatabase(devices: survivor)
        #expect(again.config.volumes.map(\.name) == ["d9"])
        #expect(again.config.devices.count == 1)
    }
}
