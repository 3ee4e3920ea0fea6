import Foundation
import MetaDB
import MetaEngine
import MetaModel

/// `metactl check` in the simulation: checks (and repairs) begun while the volume is
/// written, stopped, cut off by crashes and resumed; and at the end of a schedule, a check
/// of a volume that says it is `Okay` must find every line's parity right.
extension Simulation {
    /// Begins a check (with or without repair) of a healthy RAID-5 volume, or stops the
    /// running one, as `metactl check NAME [--repair|--stop]` through the server does; of a
    /// mirror (its sides compared chunk by chunk, the others rewritten from the first with
    /// `--repair`) in mirror schedules. What a check reads and rewrites is checked as every
    /// read is, and by the final checks.
    func checkOrStop() {
        guard let db, let rec = record, !fate.dead else { return }
        let lines: UInt64, start: () -> Void, stop: () -> Void, kind: String
        if isMirror && options.mirrorChecks, let e = mirrorEngine {
            (lines, start, stop, kind) = (e.checkChunks, e.startCheck, e.stopCheck, "mirror-check")
        } else if rec.type.hasColumns, let e = engine {
            (lines, start, stop, kind) = (e.layout.lineCount, e.startCheck, e.stopCheck, "check")
        } else {
            return
        }
        if rec.check?.running == true {
            guard rng.chance(0.3) else { return }
            count("\(kind)-stop")
            note("check --stop")
            stop()
            return
        }
        let repair = rng.chance(0.5)
        do {
            try db.apply(.checkBegun(volume: name, repair: repair, totalLines: lines, at: Date()))
        } catch {
            note("check\(repair ? " --repair" : ""): refused: \(error)")
            return
        }
        count(repair ? "\(kind)-repair" : kind)
        note("check\(repair ? " --repair" : ""): begun")
        start()
    }

    /// At the end (every device healed, background work done): a volume whose state is
    /// `Okay` has no line whose parity disagrees with its data, and a check leaves the data
    /// as it was (the reads that follow compare it with the model).
    func finalCheck() {
        guard let db, let rec = record, rec.type.hasColumns, let e = engine, !fate.dead, volumeEngine != nil else { return }
        guard rec.derivedState == .okay, rec.columns.allSatisfy({ $0.state == .okay }), rec.resync == nil,
              rec.pendingGrow == nil, rec.check?.running != true, (rec.lostBlocks ?? []).isEmpty else { return }
        do {
            try db.apply(.checkBegun(volume: name, repair: false, totalLines: e.layout.lineCount, at: Date()))
        } catch {
            // A crash planned before the end can still come (seed 79015496): nothing to check then.
            if fate.dead { note("final check: the process died at its commit"); return }
            violation("final check refused on an Okay volume: \(error)")
            return
        }
        e.startCheck()
        runBackground(all: true)
        if fate.dead { note("final check: the process died during it"); return }
        guard let c = record?.check else { violation("final check: no record"); return }
        count("final-check")
        note("final check: \(c.result?.rawValue ?? "running") \(c.counts.mismatches) mismatch(es) at \(c.counts.lines)")
        if c.running || c.result != .completed {
            violation("final check of an Okay volume did not complete: \(c.result?.rawValue ?? "running") \(c.failure ?? "")")
        } else if c.counts.mismatches > 0 {
            violation("the volume is Okay but the parity of \(c.counts.mismatches) line(s) does not match their data: lines \(c.counts.lines)")
        }
        checkOkayReadsBack()
    }
}
