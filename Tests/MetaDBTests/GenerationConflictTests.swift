import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport
import Testing

/// Different configurations carrying the same generation (review item 11), and the rules
/// that keep a commit from reusing a generation an unread replica may hold.
@Suite struct GenerationConflictTests {
    /// Snapshots of `n` devices (one replica each) after two different commits, "a" and "b",
    /// each made from the same state at generation 2, so both carry generation 3.
    static func twoHistories(_ n: Int) throws -> (a: [[UInt8]], b: [[UInt8]]) {
        let mems = memDevices(n)
        let db = try SetDatabase.create(setName: "g", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        try db.commit { $0.volumes = [sampleVolume("base", tag: 1)] }
        let base = mems.map { $0.snapshot() }
        let a = try SetDatabase(devices: mems)
        try a.commit { $0.volumes = [sampleVolume("a", tag: 2)] }
        #expect(a.currentGeneration == 3)
        let snapA = mems.map { $0.snapshot() }
        for (m, s) in zip(mems, base) { m.restore(s) }
        let b = try SetDatabase(devices: mems)
        try b.commit { $0.volumes = [sampleVolume("b", tag: 3)] }
        #expect(b.currentGeneration == 3)
        return (snapA, mems.map { $0.snapshot() })
    }

    /// Devices whose contents come from history "a" where `fromA[i]`, else from "b".
    static func mixed(_ h: (a: [[UInt8]], b: [[UInt8]]), fromA: [Bool]) -> [MemoryDevice] {
        fromA.enumerated().map { i, useA in
            let s = useA ? h.a[i] : h.b[i]
            let m = MemoryDevice(path: "mem\(i)", sizeBytes: UInt64(s.count))
            m.restore(s)
            return m
        }
    }

    static func permutations<T>(_ xs: [T]) -> [[T]] {
        guard xs.count > 1 else { return [xs] }
        return xs.indices.flatMap { i -> [[T]] in
            var rest = xs
            let x = rest.remove(at: i)
            return permutations(rest).map { [x] + $0 }
        }
    }

    /// One replica holds "a", two hold "b", both generation 3: "b" wins, whichever device
    /// holds the minority and in whatever order the devices are given; a read-write open
    /// rewrites every replica with a new generation.
    @Test(arguments: 0..<3)
    func majorityWinsAmongEqualGenerations(minority: Int) throws {
        let h = try Self.twoHistories(3)
        let fromA = (0..<3).map { $0 == minority }
        for order in Self.permutations(Array(0..<3)) {
            let mems = Self.mixed(h, fromA: fromA)
            let given: [any BlockDevice] = order.map { mems[$0] }
            let ro = try SetDatabase(devices: given, mode: .readOnly)
            #expect(ro.config.volumes.map(\.name) == ["b"], "order \(order)")
            #expect(ro.currentGeneration == 3)
            let states = ro.replicaStatus.map { ($0.devicePath, $0.state) }
            #expect(states.filter { $0.1 == .stale }.map(\.0) == ["mem\(minority)"], "order \(order)")
            #expect(ro.skippedWhileLoading.contains { $0.contains("outvotes") })
            let rw = try SetDatabase(devices: given)
            #expect(rw.config.volumes.map(\.name) == ["b"])
            #expect(rw.currentGeneration == 4)
            #expect(rw.replicaStatus.allSatisfy { $0.state == .active && $0.generation == 4 })
        }
        // Two replicas hold "a": now "a" wins.
        let mems = Self.mixed(h, fromA: (0..<3).map { $0 != minority })
        #expect(try SetDatabase(devices: mems, mode: .readOnly).config.volumes.map(\.name) == ["a"])
    }

    /// As many replicas hold one configuration as the other: the set is refused read-write
    /// (with and without the quorum requirement), and read-only shows the same one whatever
    /// the device order.
    @Test func exactTieRefusesReadWrite() throws {
        let h = try Self.twoHistories(4)
        var shown: Set<String> = []
        for order in Self.permutations(Array(0..<4)) {
            let mems = Self.mixed(h, fromA: [true, false, true, false])
            let given: [any BlockDevice] = order.map { mems[$0] }
            for requireQuorum in [true, false] {
                do {
                    _ = try SetDatabase(devices: given, requireQuorum: requireQuorum)
                    Issue.record("opened read-write over a tie (order \(order))")
                } catch let e as DatabaseError {
                    guard case .conflictingConfigurations = e else {
                        Issue.record("wrong error \(e)"); continue
                    }
                    let msg = e.description
                    #expect(msg.contains("generation 3"))
                    for i in 0..<4 { #expect(msg.contains("mem\(i)")) }
                    #expect(!msg.contains("\n"))
                }
            }
            let ro = try SetDatabase(devices: given, mode: .readOnly)
            shown.insert(ro.config.volumes[0].name)
            #expect(ro.skippedWhileLoading.contains { $0.contains("different configurations of generation 3") })
        }
        #expect(shown.count == 1)
        // Without one of the "a" devices, "b" has the majority of the copies found.
        let mems = Self.mixed(h, fromA: [true, false, true, false])
        let rw = try SetDatabase(devices: [mems[1], mems[2], mems[3]])
        #expect(rw.config.volumes.map(\.name) == ["b"])
    }

    /// The cause: a commit that reaches only a minority leaves its generation on that
    /// replica; a later open without that device must not commit the same generation (nor a
    /// lower one) with other contents.
    @Test func commitAfterIncompleteOpenSkipsTheGenerationAMissingReplicaMayHold() throws {
        let mems = memDevices(3)
        let db0 = try SetDatabase.create(setName: "g", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        try db0.commit { $0.volumes = [sampleVolume("base", tag: 1)] }
        #expect(db0.currentGeneration == 2)
        // Commit "a": mem0 takes it, mem1 and mem2 fail, and the rollback on mem0 fails too
        // (as if the process had died right after mem0's write).
        let faulty = mems.map { FaultyDevice($0) }
        let db = try SetDatabase(devices: faulty)
        let f0 = faulty[0]
        faulty[1].onError { _ in f0.updateFaults { $0.failWrites = true } }
        faulty[1].updateFaults { $0.failWrites = true }
        faulty[2].updateFaults { $0.failWrites = true }
        #expect(throws: DatabaseError.self) { try db.commit { $0.volumes = [sampleVolume("a", tag: 2)] } }
        let leftover = try SetDatabase(devices: [mems[0]], mode: .readOnly)
        #expect(leftover.config.volumes.map(\.name) == ["a"])
        #expect(leftover.currentGeneration == 3)
        // mem0 is away; the other two commit "b".
        let rw = try SetDatabase(devices: [mems[1], mems[2]])
        #expect(rw.currentGeneration == 2)
        try rw.commit { $0.volumes = [sampleVolume("b", tag: 3)] }
        #expect(rw.currentGeneration == 4)
        try rw.commit { $0.volumes = [sampleVolume("c", tag: 4)] }
        #expect(rw.currentGeneration == 5)
        // mem0 returns: the majority's configuration is in force, mem0 is stale.
        let all = try SetDatabase(devices: mems)
        #expect(all.config.volumes.map(\.name) == ["c"])
        #expect(all.replicaStatus.allSatisfy { $0.state == .active && $0.generation == 5 })
        // A complete open does not skip.
        try all.commit { $0.cleanShutdown = false }
        #expect(all.currentGeneration == 6)
    }

    /// A rolled-back commit leaves nothing newer than the configuration in force: the
    /// rollback erases the slots the failed commit wrote (an older rollback wrote the
    /// previous configuration with a higher generation, which then outranked the next
    /// majority commit made without that replica).
    @Test func rollbackLeavesNoHigherGeneration() throws {
        let mems = memDevices(3)
        let db0 = try SetDatabase.create(setName: "g", devices: mems.map { ($0, 1) }, slotSize: testSlot)
        try db0.commit { $0.volumes = [sampleVolume("base", tag: 1)] }
        let faulty = mems.map { FaultyDevice($0) }
        let db = try SetDatabase(devices: faulty)
        faulty[1].updateFaults { $0.failWrites = true }
        faulty[2].updateFaults { $0.failWrites = true }
        #expect(throws: DatabaseError.self) { try db.commit { $0.volumes = [sampleVolume("a", tag: 2)] } }
        #expect(db.currentGeneration == 2)
        let alone = try SetDatabase(devices: [mems[0]], mode: .readOnly)
        #expect(alone.currentGeneration == 2)
        #expect(alone.config.volumes.map(\.name) == ["base"])
        // The other two (healed) commit without mem0; mem0 comes back: their commit stands.
        let rw = try SetDatabase(devices: [mems[1], mems[2]])
        try rw.commit { $0.volumes = [sampleVolume("b", tag: 3)] }
        let all = try SetDatabase(devices: mems, mode: .readOnly)
        #expect(all.config.volumes.map(\.name) == ["b"])
        #expect(all.replicaStatus.map(\.state) == [.stale, .active, .active])
    }
}
