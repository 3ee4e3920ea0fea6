import Foundation
import MetaTestSupport
import MetaDB
import MetaModel
import MetaDevices
@testable import MetaEngine
import Synchronization
import Testing

extension EngineFixture {
    var raid: RAID5Volume { volume as! RAID5Volume }

    /// Adds a fresh in-memory device to the set and returns it with its record.
    func addDevice(_ name: String) throws -> (FaultyDevice, DeviceRecord) {
        let dev = FaultyDevice(MemoryDevice(path: name, sizeBytes: devices[0].sizeBytes))
        let rec = DeviceRecord(uuid: UUID(), lastPath: name, sizeBytes: dev.sizeBytes,
                               dataStartBlock: Self.dataStartBlock, replicaCount: 0, role: .component)
        extra.set(rec.uuid, dev)
        try store.commit { $0.devices.append(rec) }
        return (dev, rec)
    }

    /// What the manager does for `replace` by regeneration: the column moves to the new
    /// device in state Resyncing.
    func startRegeneration(column c: Int, onto rec: DeviceRecord) throws {
        try store.commit { cfg in
            cfg.volumes[0].columns[c].device = rec.uuid
            cfg.volumes[0].columns[c].state = .resyncing
            cfg.volumes[0].resync = ResyncCheckpoint(kind: .regenerate, column: c, target: rec.uuid,
                                                     totalBlocks: cfg.volumes[0].columnBlocks)
        }
        try raid.reload()
    }

    /// What the manager does for a copy `replace`.
    func startCopy(column c: Int, onto rec: DeviceRecord) throws {
        try store.commit { cfg in
            cfg.volumes[0].resync = ResyncCheckpoint(kind: .copy, column: c, target: rec.uuid,
                                                     source: cfg.volumes[0].columns[c].device,
                                                     totalBlocks: cfg.volumes[0].columnBlocks)
        }
        try raid.reload()
    }

    func runResync() -> ResyncOutcome {
        let result = OutcomeBox()
        raid.startResync(reportingTo: result)
        raid.waitForBackgroundWork()
        return result.outcome ?? .stopped
    }

    /// Slows the resync down so a test can act while it runs.
    func throttle(bytesPerSecond: UInt64) throws {
        raid.resyncStepBytes.store(4096, ordering: .relaxed)
        try store.commit { $0.volumes[0].resyncRate = ResyncRate(minBytesPerSecond: bytesPerSecond, maxBytesPerSecond: bytesPerSecond) }
    }
}

@Suite("resync engine")
struct ResyncTests {
    func filled(_ columns: Int = 4, seed: UInt64 = 1) throws -> EngineFixture {
        let f = try EngineFixture(type: .raid5, columns: columns, interlaceBlocks: 8)
        var rng = SeededRNG(seed: seed)
        try f.fillRandom(&rng)
        return f
    }

    @Test("regeneration rebuilds a failed column onto a new device")
    func regenerate() throws {
        let f = try filled()
        f.devices[1].updateFaults { $0.failReads = true; $0.failWrites = true }
        #expect(try f.mismatches() == 0)
        #expect(f.state(ofColumn: 1) == .maintenance)
        let (_, rec) = try f.addDevice("new1")
        try f.startRegeneration(column: 1, onto: rec)
        #expect(f.store.config.volumes[0].derivedState == .resyncing)
        #expect(f.runResync() == .completed)
        #expect(f.state(ofColumn: 1) == .okay)
        #expect(f.store.config.volumes[0].resync == nil)
        #expect(f.store.config.volumes[0].columns[1].device == rec.uuid)
        #expect(try f.mismatches() == 0)
        #expect(try f.parityErrors().isEmpty)
    }

    @Test("foreground writes during a regeneration land correctly")
    func regenerateUnderLoad() throws {
        let f = try filled(seed: 2)
        f.devices[2].updateFaults { $0.failReads = true; $0.failWrites = true }
        _ = try f.read(0, f.size)
        let (_, rec) = try f.addDevice("new2")
        try f.startRegeneration(column: 2, onto: rec)
        try f.throttle(bytesPerSecond: 2 << 20)
        f.raid.startResync()
        var rng = SeededRNG(seed: 99)
        var writes = 0
        while f.raid.backgroundRunning || writes < 20 {
            let len = Int.random(in: 1...12000, using: &rng)
            let off = Int.random(in: 0...(f.size - len), using: &rng)
            try f.write(off, rng.bytes(len))
            writes += 1
        }
        f.raid.waitForBackgroundWork()
        #expect(f.state(ofColumn: 2) == .okay)
        #expect(try f.mismatches() == 0)
        #expect(try f.parityErrors().isEmpty)
    }

    @Test("copy keeps redundancy: another column failing mid-copy loses nothing")
    func copyWithSecondFailure() throws {
        let f = try filled(seed: 3)
        let (_, rec) = try f.addDevice("copy0")
        try f.startCopy(column: 0, onto: rec)
        try f.throttle(bytesPerSecond: 1 << 20)
        f.raid.startResync()
        usleep(100_000)
        #expect(f.raid.backgroundRunning)
        f.devices[3].updateFaults { $0.failReads = true; $0.failWrites = true }
        var rng = SeededRNG(seed: 5)
        for _ in 0..<20 {
            let len = Int.random(in: 1...9000, using: &rng)
            let off = Int.random(in: 0...(f.size - len), using: &rng)
            try f.write(off, rng.bytes(len))
        }
        #expect(try f.mismatches() == 0)
        #expect(f.state(ofColumn: 3) == .maintenance)
        try f.store.commit { $0.volumes[0].resyncRate = nil }
        f.raid.waitForBackgroundWork()
        let vol = f.store.config.volumes[0]
        #expect(vol.columns[0].device == rec.uuid)
        #expect(vol.columns[0].state == .okay)
        #expect(vol.resync == nil)
        #expect(try f.mismatches() == 0)
    }

    @Test("copy source failing mid-copy turns into a regeneration")
    func copySourceFails() throws {
        let f = try filled(seed: 4)
        let (_, rec) = try f.addDevice("copy1")
        try f.startCopy(column: 1, onto: rec)
        try f.throttle(bytesPerSecond: 1 << 20)
        let outcome = OutcomeBox()
        f.raid.startResync(reportingTo: outcome)
        usleep(150_000)
        f.devices[1].updateFaults { $0.failReads = true; $0.failWrites = true }
        try f.store.commit { $0.volumes[0].resyncRate = nil }
        // The copy thread hands over to a regeneration; wait for both.
        f.raid.waitForBackgroundWork()
        if f.store.config.volumes[0].resync?.kind == .regenerate {
            f.raid.startResync(reportingTo: outcome)
            f.raid.waitForBackgroundWork()
        }
        #expect(outcome.outcome == .completed)
        let vol = f.store.config.volumes[0]
        #expect(vol.columns[1].device == rec.uuid)
        #expect(vol.columns[1].state == .okay)
        #expect(try f.mismatches() == 0)
        #expect(try f.parityErrors().isEmpty)
    }

    @Test("a target write error ends the resync with the target in Maintenance")
    func targetFails() throws {
        let f = try filled(seed: 6)
        f.devices[0].updateFaults { $0.failReads = true; $0.failWrites = true }
        _ = try f.read(0, f.size)
        let (newDev, rec) = try f.addDevice("bad-target")
        newDev.updateFaults { $0.badWriteRanges = [(64 << 10)..<(68 << 10)] }
        try f.startRegeneration(column: 0, onto: rec)
        guard case .targetFailed = f.runResync() else { Issue.record("expected targetFailed"); return }
        #expect(f.state(ofColumn: 0) == .maintenance)
        #expect(f.store.config.volumes[0].resync == nil)
        // Data still served from parity, none wrong.
        #expect(try f.mismatches() == 0)
    }

    @Test("a read error on another column during regeneration: Last Erred, recoverable data readable, none wrong")
    func secondColumnFails() throws {
        let f = try filled(seed: 7)
        f.devices[0].updateFaults { $0.failReads = true; $0.failWrites = true }
        _ = try f.read(0, f.size)
        let (_, rec) = try f.addDevice("target")
        try f.startRegeneration(column: 0, onto: rec)
        // Column 2 has a bad region in its second half.
        let half = UInt64(EngineFixture.dataStartBlock * 512) + (f.devices[2].sizeBytes / 2)
        f.devices[2].updateFaults { $0.badReadRanges = [half..<(half + 4096)] }
        guard case .sourceFailed = f.runResync() else { Issue.record("expected sourceFailed"); return }
        #expect(f.state(ofColumn: 2) == .lastErred)
        #expect(f.store.config.volumes[0].derivedState == .lastErred)
        let unit = 8 * 512
        var good = 0, failed = 0
        for u in 0..<(f.size / unit) {
            do {
                let got = try f.read(u * unit, unit)
                #expect(got == Array(f.model[(u * unit)..<((u + 1) * unit)]), "unit \(u) returned wrong data")
                good += 1
            } catch { failed += 1 }
        }
        #expect(good > 0)
        #expect(failed > 0)
        // Everything rebuilt before the failure and everything on healthy columns is readable:
        // more than the three healthy columns' share.
        #expect(good > (f.size / unit) / 2)
    }

    @Test("a stopped resync resumes from its checkpoint")
    func resumeFromCheckpoint() throws {
        let f = try filled(seed: 8)
        f.devices[3].updateFaults { $0.failReads = true; $0.failWrites = true }
        _ = try f.read(0, f.size)
        let (_, rec) = try f.addDevice("resume")
        try f.startRegeneration(column: 3, onto: rec)
        try f.throttle(bytesPerSecond: 256 << 10)
        f.raid.startResync()
        usleep(400_000)
        f.raid.close()   // stop: checkpoint committed
        let done = f.store.config.volumes[0].resync?.doneBlocks ?? 0
        #expect(done > 0)
        #expect(done < f.store.config.volumes[0].columnBlocks)
        // A new engine (as after a restart) resumes from the checkpoint.
        try f.store.commit { $0.volumes[0].resyncRate = nil }
        let rec0 = f.store.config.volume(named: "d10")!
        let v = try VolumeFactory.open(rec0, context: f.raid.context) as! RAID5Volume
        #expect(v.runtime.withLock { $0.rebuiltBelow } == done / 8)
        let result = OutcomeBox()
        v.startResync(reportingTo: result)
        v.waitForBackgroundWork()
        #expect(result.outcome == .completed)
        #expect(f.store.config.volumes[0].columns[3].state == .okay)
        #expect(try f.parityErrors().isEmpty)
    }
}

/// Records how a resync ended (the engine's delegate in these tests).
final class OutcomeBox: EngineDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private var last: ResyncOutcome?
    var outcome: ResyncOutcome? { lock.withLock { last } }
    func resyncEnded(_ end: ResyncEnd) { lock.withLock { last = end.outcome } }
    func columnFailed(volume: String, column: Int) {}
}

extension RAID5Volume {
    /// Starts the resync with `box` as the delegate (held weakly: the caller keeps it).
    func startResync(reportingTo box: OutcomeBox) {
        delegate = box
        startResync()
    }
}
