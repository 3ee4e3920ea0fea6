import Foundation
import MetaDB
import MetaModel
import MetaEngine
import MetaSim
import Testing

/// The deterministic simulator (docs/RELIABILITY.md) over a fixed set of seeds, so every
/// bug it ever found stays fixed. Longer runs: `bash scripts/torture --seconds N`.
@Suite("Simulator")
struct SimulatorTests {
    /// Seeds that found bugs while the simulator was first run, each with what it found.
    static let regressions: [(UInt64, String)] = [
        (17, "copy from a column that failed mid-copy copied stale data"),
        (134, "a regeneration whose target was missing at a start kept its record; the column was resumed Unavailable and never read"),
        (150, "a flush that failed on a Last Erred column reported success"),
        (214, "a copy turned into a regeneration rebuilt untrusted parity without recording it lost"),
        (359, "a write to a missing Last Erred column went to parity only; the column returned stale"),
        (1053, "a write that failed after some columns took it left its line's parity trusted"),
        (10063, "(model) a column being rebuilt counts as a failure"),
        (21433, "rewritten lost blocks were called good before they were durable"),
        (50418, "rewritten lost blocks were called good before they were durable"),
        (500193, "a Last Erred column left alone (the other column rebuilt) failed writes instead of becoming Maintenance"),
        (2008297, "a flush succeeded while a Last Erred column (the only source of its data) was missing"),
        (9007955, "(model) a column being rebuilt and another failing count as two failures"),
        (7021168, "(model) misaligned requests stay inside the volume"),
        (13007480, "(model) no faults are injected while a schedule finishes"),
        (3002930, "writes went around a column missing at start whose state the database could not record; it returned as Okay and stale"),
        // The write log (seeds from after it; the schedules of the seeds above changed with it).
        (10113, "write log: a retry recomputed parity from a line its failed attempt had half-written"),
        (5001158, "write log: a replay write that failed on a Last Erred column still trusted the line"),
        (10311, "write log: a complete replay trusted regions an earlier, incomplete replay had left torn"),
        (6000942, "write log: a record written to one column of two (never applied) was replayed before records computed without it"),
        (31000843, "write log: the log device's failure was committed before the checkpoint that voids its records; a crash between left them unreplayed"),
        (33007303, "write log: a record without parity (the parity column away) replayed after an older record's parity undid the rebuilt parity"),
        (10000, "(model) a failed write's record may be replayed at the next start, after a read saw the old value"),
        (5000239, "(model) a write failing while two columns are faulty may tear lines for good"),
        (75004882, "a volume whose devices were all absent took 512-byte sectors: its 4096-byte-sector export accepted a misaligned write"),
        (77015413, "a copy whose source failed a write: the next write of a line whose parity it held, data only, left the target's parity stale"),
        (79015496, "(model) a crash planned before the end may cut off the final check's commit"),
        (96083984, "write log: a parity repair committed 'replays vouch again' before its parity was flushed; a power loss brought the torn parity back"),
        (7237, "write log: with the log of a later column lost, a replay put an older record of a line back over newer data in place"),
        (102001372, "a Last Erred column left alone (its partner rebuilt) missing at a start stayed Last Erred: every write that had to change it was refused"),
        (106410169, "write log: a Last Erred parity column enabled again held a line's next record within the epoch whose older record lay on the next column; once it failed and another column was lost, the replay put the older record back over newer data"),
        (110076674, "a write whose parity write failed tore a line that the regeneration in progress (a returned device) had not rebuilt yet; it rebuilt the line from the torn parity and the column read back bytes no write put there"),
    ]

    /// RAID-6 seeds that once found bugs (`--raid6` schedules).
    static let raid6Regressions: [(UInt64, String)] = [
        (99011463, "a flush succeeded while a column missing at a start, whose absence the database could not record, held unflushed writes; a power loss took them and the column came back trusted"),
    ]

    /// Mirror schedules (`--mirror`) that found bugs while mirrors were built.
    static let mirrorRegressions: [(UInt64, String)] = [
        (2, "a write that only a resyncing side took was acknowledged; a resync from the Last Erred side then overwrote it"),
        (41, "a Last Erred side whose write failed stayed readable while an Okay side held the write"),
        (209, "a side's failure that the state database could not record did not fail the write; the restart read the side as Okay"),
        (256, "reads did not fall back to the Last Erred side when the only Okay side failed them"),
        (30055, "a resync copied from a Last Erred side (first in order) rather than from the Okay one"),
        (735, "a crash's dirty regions were resynced onto the Okay sides only; a Last Erred side kept a torn write and served it later"),
        (1100067, "the flush before the crash handover failed on a side refusing writes: the regions stayed with the first side, and a read error there had no fallback"),
        (1076216, "the crash handover dropped the dirty regions before the source side's data there was durable; a power loss then took a write back on it while the resynced side kept it, both Okay"),
        (1002193, "a side's write failure the state database could not record left it in service: a read of the dirty region then returned the other side's bytes, and after the restart the dirty-region resync from that side (recorded Okay) brought the old ones back"),
    ]

    /// Mirror schedules with the layouts chosen by the seed (sides of two rows, spares, grows)
    /// that found bugs.
    static let mirrorLayoutRegressions: [(UInt64, String)] = [
        (1500145, "a side attached after the mirror grew was smaller than the mirror: the mirror shrank under its clients"),
        (1701063, "a spare that stood in for a side's row failed while the side was out of service, so the row went back to its own stale device; a replacement of another row's device resynced only that row and the missed regions, and the side became Okay with the stale row"),
    ]

    @Test("mirror seeds with spares and grows that once found bugs", arguments: mirrorLayoutRegressions.map(\.0))
    func mirrorLayoutRegression(seed: UInt64) throws {
        var options = SimOptions()
        options.mirror = true
        let sim = Simulation(seed: seed, options: options)
        do { try sim.run() } catch { Issue.record("\(error)") }
    }

    @Test("mirror seeds that once found bugs", arguments: mirrorRegressions.map(\.0))
    func mirrorRegression(seed: UInt64) throws {
        var options = SimOptions()
        options.mirror = true
        // The layout these seeds had when they found their bugs: one-device sides, no spares.
        options.mirrorSideRows = 1
        options.mirrorSpares = 0
        options.mirrorGrows = false
        options.mirrorChecks = false
        let sim = Simulation(seed: seed, options: options)
        do { try sim.run() } catch { Issue.record("\(error)") }
    }

    @Test("RAID-6 seeds that once found bugs", arguments: raid6Regressions.map(\.0))
    func raid6Regression(seed: UInt64) throws {
        var options = SimOptions()
        options.raid6 = true
        options.raid6WriteLog = false  // found before RAID-6 had a write log
        let sim = Simulation(seed: seed, options: options)
        do { try sim.run() } catch { Issue.record("\(error)") }
    }

    @Test("seeds that once found bugs", arguments: regressions.map(\.0))
    func regression(seed: UInt64) throws {
        let sim = Simulation(seed: seed)
        do { try sim.run() } catch { Issue.record("\(error)") }
    }

    /// A bounded sweep: 4 × 60 schedules of about 100 operations each (a few seconds each batch).
    @Test("bounded sweep of seeds", arguments: 0..<4)
    func sweep(batch: Int) throws {
        var ops = 0
        for seed in UInt64(10_000 + batch * 60)..<UInt64(10_000 + (batch + 1) * 60) {
            let sim = Simulation(seed: seed)
            do { try sim.run() } catch {
                Issue.record("\(error)\nreplay: bash scripts/torture --seed \(seed)")
                return
            }
            ops += sim.operationCount
        }
        #expect(ops > 60 * 50, "schedules ran too few operations to mean anything")
    }

    /// RAID-6 schedules (`metactl-torture --raid6`): 2 × 40 of them, with one or two columns
    /// failing, crashes and rebuilds, every read checked.
    @Test("bounded sweep of RAID-6 schedules", arguments: 0..<2)
    func sweepRAID6(batch: Int) throws {
        var options = SimOptions()
        options.raid6 = true
        var ops = 0, logged = 0
        for seed in UInt64(20_000 + batch * 40)..<UInt64(20_000 + (batch + 1) * 40) {
            let sim = Simulation(seed: seed, options: options)
            do { try sim.run() } catch {
                Issue.record("\(error)\nreplay: bash scripts/torture --seed \(seed) --raid6")
                return
            }
            #expect(sim.volume?.layout.parityCount == 2, "seed \(seed) did not build a RAID-6 volume")
            ops += sim.operationCount
            if sim.builtWithWriteLog { logged += 1 }
        }
        #expect(ops > 40 * 50, "schedules ran too few operations to mean anything")
        #expect(logged > 5, "too few RAID-6 schedules had a write log (\(logged) of 40)")
    }

    /// Mirror schedules (`metactl-torture --mirror`): 2 × 40 of them, with sides failing,
    /// going offline and online, detached and attached, crashes and resyncs, every read
    /// checked, and an Okay mirror's sides compared at the end.
    @Test("bounded sweep of mirror schedules", arguments: 0..<2)
    func sweepMirror(batch: Int) throws {
        var options = SimOptions()
        options.mirror = true
        var ops = 0
        var compared = 0
        var commands = 0
        var spares = 0
        var grown = 0
        for seed in UInt64(30_000 + batch * 40)..<UInt64(30_000 + (batch + 1) * 40) {
            let sim = Simulation(seed: seed, options: options)
            do { try sim.run() } catch {
                Issue.record("\(error)\nreplay: bash scripts/torture --seed \(seed) --mirror")
                return
            }
            #expect(sim.volumeRecord?.type == .mirror, "seed \(seed) did not build a mirror")
            ops += sim.operationCount
            compared += sim.coverage["final-mirror-compare", default: 0]
            commands += sim.coverage.filter { $0.key.hasPrefix("mirror-") }.values.reduce(0, +)
            spares += sim.coverage["mirror-hot-spare", default: 0]
            grown += sim.coverage["mirror-grown", default: 0]
        }
        #expect(spares > 0, "no hot spare took a failed side component's place")
        #expect(grown > 0, "no mirror grew with its sides")
        #expect(ops > 40 * 50, "schedules ran too few operations to mean anything")
        #expect(compared > 20, "too few schedules ended with an Okay mirror to compare its sides")
        #expect(commands > 40, "too few mirror commands ran")
    }

    /// Soft partitions' configuration under crashes (`metactl-torture --softpart`): created,
    /// grown and cleared with kills and power losses at any device write; at every step what
    /// `recover` would rebuild from the watermarks alone is the configuration exactly.
    @Test("bounded sweep of soft-partition schedules")
    func sweepSoftPartitions() throws {
        var rewritten = 0
        var checks = 0
        // (1163 found a mistake of the simulator's own: a client write over a stale watermark
        // is not durable until a flush, so a power loss may bring the watermark back.)
        for seed in Array(UInt64(1)...7) + [1163] {
            let sim = SoftPartitionSimulation(seed: seed)
            do { try sim.run() } catch {
                Issue.record("\(error)\nreplay: bash scripts/torture --seed \(seed) --softpart")
                return
            }
            rewritten += sim.coverage["watermarks-rewritten", default: 0]
            checks += sim.coverage["recover-check", default: 0]
            #expect(sim.coverage["create", default: 0] > 0 && sim.coverage["grow", default: 0] > 0 && sim.coverage["clear", default: 0] > 0)
        }
        // Crashes came between a commit and its watermarks, and a start mended them.
        #expect(rewritten > 0)
        #expect(checks == 8 * 120)
    }

    /// The same seed takes the same path: the trace of two runs is identical.
    @Test func deterministic() throws {
        let a = Simulation(seed: 42), b = Simulation(seed: 42)
        try a.run()
        try b.run()
        // Device UUIDs are random (labels are made as for real devices); nothing else may differ.
        let uuid = try Regex("[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
        #expect(a.trace.map { $0.replacing(uuid, with: "UUID") } == b.trace.map { $0.replacing(uuid, with: "UUID") })
        #expect(a.operationCount == b.operationCount)
    }

    /// The model rejects what it must: bytes of another block, and an older write.
    @Test func modelCatchesWrongData() {
        var m = SimModel(blocks: 4)
        let w = m.newWrite()
        m.acked(w, blocks: 0..<2)
        var buf = [UInt8](repeating: 0, count: 1024)
        buf.withUnsafeMutableBytes { b in
            SimModel.pattern(w, block: 1, into: UnsafeMutableRawBufferPointer(rebasing: b[0..<512]))
            SimModel.pattern(w, block: 1, into: UnsafeMutableRawBufferPointer(rebasing: b[512..<1024]))
        }
        #expect(buf.withUnsafeBytes { m.checkRead($0, blocks: 0..<2) } != nil)  // block 0 holds block 1's bytes
        var stale = [UInt8](repeating: 0, count: 512)
        #expect(stale.withUnsafeBytes { m.checkRead($0, blocks: 1..<2) } != nil)  // zeroes: older than write w
        stale.withUnsafeMutableBytes { SimModel.pattern(w, block: 1, into: $0) }
        #expect(stale.withUnsafeBytes { m.checkRead($0, blocks: 1..<2) } == nil)
        // After a power loss an unflushed write may be gone: zeroes are legal for block 0 again.
        m.lostPower()
        let zero = [UInt8](repeating: 0, count: 512)
        #expect(zero.withUnsafeBytes { m.checkRead($0, blocks: 0..<1) } == nil)
    }
}
