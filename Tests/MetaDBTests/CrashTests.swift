import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport
import Testing

/// Crash at every byte boundary of interest during a commit (every 256 bytes: each sector
/// boundary of each label and replica write, and the middle of each sector): each load
/// afterwards yields exactly the old or the new configuration.
@Suite struct CrashTests {
    enum Scenario: String, CaseIterable, Sendable {
        /// Three devices, one replica each.
        case threeDevices
        /// Two replicas on one device, one on another.
        case copiesOnOneDevice
        /// The commit labels a new device and adds its replica.
        case addDevice
    }

    static func fresh(_ snaps: [[UInt8]]) -> [MemoryDevice] {
        snaps.enumerated().map { i, s in
            let m = MemoryDevice(path: "mem\(i)", sizeBytes: UInt64(s.count))
            m.restore(s)
            return m
        }
    }

    @Test(arguments: Scenario.allCases)
    func crashAtEveryWrite(_ scenario: Scenario) throws {
        let base = memDevices(4)
        let setup: [(device: any BlockDevice, copies: Int)] = switch scenario {
        case .threeDevices, .addDevice: [(base[0], 1), (base[1], 1), (base[2], 1)]
        case .copiesOnOneDevice: [(base[0], 2), (base[1], 1)]
        }
        let db0 = try SetDatabase.create(setName: "crash", devices: setup, slotSize: testSlot)
        try db0.commit { $0.volumes = [sampleVolume("d0", tag: 7)] }
        let old = db0.config
        let snaps = base.map { $0.snapshot() }
        let inSet = scenario == .addDevice ? 3 : (scenario == .threeDevices ? 3 : 2)

        var outcomes = (old: 0, new: 0)
        var budget: UInt64 = 0
        var finished = false
        while !finished && budget < 1 << 22 {
            let mems = Self.fresh(snaps)
            let crash = CrashBudget(bytes: budget)
            let faulty = mems.map { FaultyDevice($0, crashBudget: crash) }
            let db = try SetDatabase(devices: Array(faulty.prefix(inSet)))
            var attempted: SetConfig?
            do {
                try db.commit { c in
                    c.volumes.append(sampleVolume("d1", tag: 8))
                    if scenario == .addDevice {
                        _ = try db.addDevice(faulty[3], role: .component, replicaCopies: 1, in: &c)
                    }
                    attempted = c
                }
                finished = !crash.crashed
            } catch {}
            // "Reboot": load from the raw devices, including the one being added.
            let after = Self.fresh(mems.map { $0.snapshot() })
            let loaded = try SetDatabase(devices: scenario == .addDevice ? after : Array(after.prefix(inSet)),
                                         mode: .readOnly)
            let isOld = loaded.config == old
            let isNew = attempted.map { loaded.config == $0 } ?? false
            #expect(isOld != isNew, "budget \(budget): loaded neither the old nor the new configuration")
            if isOld { outcomes.old += 1 } else if isNew { outcomes.new += 1 }
            // The same answer read-write (stale replicas refreshed), and the set stays writable.
            let rw = try SetDatabase(devices: scenario == .addDevice ? after : Array(after.prefix(inSet)))
            #expect(rw.config == loaded.config)
            #expect(rw.quorum.writable)
            #expect(rw.replicaStatus.allSatisfy { $0.state == .active })
            try rw.commit { $0.cleanShutdown = false }
            #expect(try SetDatabase(devices: after, mode: .readOnly).config.cleanShutdown == false)
            budget += 256
        }
        #expect(finished, "the commit never completed")
        #expect(outcomes.old > 0)
        #expect(outcomes.new > 0)
    }

    /// A crash while a stale replica is being refreshed on open loses nothing.
    @Test func crashDuringRefresh() throws {
        let base = memDevices(3)
        let db0 = try SetDatabase.create(setName: "crash", devices: base.map { ($0, 1) }, slotSize: testSlot)
        let away = base[2].snapshot()
        try db0.commit { $0.volumes = [sampleVolume("d0", tag: 1)] }
        let current = db0.config
        base[2].restore(away)
        let snaps = base.map { $0.snapshot() }
        for budget in stride(from: UInt64(0), through: 8192, by: 256) {
            let mems = Self.fresh(snaps)
            let crash = CrashBudget(bytes: budget)
            _ = try? SetDatabase(devices: mems.map { FaultyDevice($0, crashBudget: crash) })
            let loaded = try SetDatabase(devices: Self.fresh(mems.map { $0.snapshot() }), mode: .readOnly)
            #expect(loaded.config == current, "budget \(budget)")
        }
    }
}
