import Foundation
import Synchronization
import MetaDB
import MetaEngine
import MetaModel

extension SetManager {
    /// `metactl check NAME [--repair]` starts a check of every line of a RAID-5 volume (in
    /// the server, in the background; without a server, here, to its end);
    /// `check NAME --stop` ends a running one.
    public func check(_ r: CheckRequest) throws -> CheckReply {
        let action: String
        do {
            opLockAcquire(); defer { opLockRelease() }
            action = try r.stop ? stopCheck(r.name) : beginCheck(r)
        }
        if action == "started" && !isServer {
            // No server: the check runs in this process, under the set's lock, to its end.
            try waitForCheck(r.name)
            return CheckReply(name: r.name, action: "finished", check: try status(names: [r.name]).volumes.first?.check)
        }
        return CheckReply(name: r.name, action: action, check: try status(names: [r.name]).volumes.first?.check)
    }

    private func beginCheck(_ r: CheckRequest) throws -> String {
        guard let vol = db.config.volume(named: r.name) else {
            throw OperationError("\(r.name): no such volume in set '\(setName)'", code: .notFound)
        }
        guard vol.type.hasColumns || vol.type == .mirror else {
            throw OperationError("\(r.name): check verifies redundancy; a \(vol.type.rawValue) volume has none", code: .invalidArgument)
        }
        if !isServer && !vol.dirtyRegions.isEmpty {
            // Writes were in flight when the set stopped: their log is replayed, and their
            // parity repaired, when the server starts; a check before that would count them.
            throw OperationError("\(r.name): the set was not shut down cleanly; start the server (`metactl serve`), which repairs it, and check then", code: .inUse)
        }
        if vol.type == .mirror {
            guard let mv = try openEngine(r.name) as? MirrorVolume else {
                throw OperationError("\(r.name): not a mirror's engine", code: .internal)
            }
            if mv.isResyncing || mv.checkRunning {
                throw OperationError("\(r.name): a resync or check is running; check once it has finished", code: .inUse)
            }
            try db.apply(.checkBegun(volume: r.name, repair: r.repair, totalLines: mv.checkChunks, at: Date()))
            if isServer { mv.startCheck() }
            return "started"
        }
        guard let engine = try openEngine(r.name) as? RAID5Volume else {
            throw OperationError("\(r.name): not a RAID-5 engine", code: .internal)
        }
        if engine.backgroundRunning && !engine.checkRunning {
            throw OperationError("\(r.name): background work is running (parity repair or resync); check once it has finished", code: .inUse)
        }
        // A column found missing at open is recorded before the model sees the states.
        let lines = engine.layout.lineCount
        try db.apply(.checkBegun(volume: r.name, repair: r.repair, totalLines: lines, at: Date()))
        engine.startCheck()
        return "started"
    }

    private func stopCheck(_ name: String) throws -> String {
        guard let vol = db.config.volume(named: name) else {
            throw OperationError("\(name): no such volume in set '\(setName)'", code: .notFound)
        }
        guard let c = vol.check, c.running else { throw OperationError("\(name): no check is running", code: .notFound) }
        if let mv = engine(name) as? MirrorVolume, mv.checkRunning {
            mv.stopCheck()
            let deadline = Date().addingTimeInterval(60)
            while mv.checkRunning && Date() < deadline { usleep(20_000) }
            if db.config.volume(named: name)?.check?.running != true { return "stopped" }
        }
        if let engine = engine(name) as? RAID5Volume, engine.checkRunning || engine.backgroundRunning {
            engine.stopCheck()
            let deadline = Date().addingTimeInterval(60)
            while engine.checkRunning && Date() < deadline { usleep(20_000) }
            if db.config.volume(named: name)?.check?.running != true { return "stopped" }
        }
        // Nothing runs it (no server, or it never resumed): end the record.
        try db.apply(.checkEnded(volume: name, result: .stopped, doneLines: c.doneLines, counts: c.counts,
                                 failure: nil, at: Date()))
        return "stopped"
    }

    /// Waits for the check this process runs, reporting progress.
    func waitForCheck(_ name: String) throws {
        if let mv = engine(name) as? MirrorVolume, let c = db.config.volume(named: name)?.check, c.running {
            // No server: the check runs here, reporting progress from another thread.
            let done = Atomic<Bool>(false)
            let reporter = progressReporter
            let t = Thread {
                var last = Date.distantPast
                while !done.load(ordering: .relaxed) {
                    if Date().timeIntervalSince(last) >= 1, let p = mv.checkProgress.withLock({ $0 }), p.total > 0 {
                        last = Date()
                        reporter?(name, "check", Double(p.done) / Double(p.total) * 100, p.bytesPerSecond)
                    }
                    usleep(100_000)
                }
            }
            t.start()
            mv.runCheck(c)
            done.store(true, ordering: .relaxed)
            return
        }
        guard let engine = engine(name) as? RAID5Volume else { return }
        follow(name, engine) { engine.checkProgress.withLock { $0 }.map { ("check", $0.done, $0.total, $0.bytesPerSecond) } }
    }
}
