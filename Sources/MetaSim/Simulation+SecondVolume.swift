import Foundation
import MetaDB
import MetaEngine
import MetaModel

/// The set's second volume, `d20`: a concat or a stripe over devices of its own, created at
/// set-up in some schedules, written and read beside `d10`, cleared (`metactl clear d20`) and
/// created again on new devices. What it checks: one volume's failures, crashes, commits and
/// its neighbour's clear never change the other's data or configuration.
struct SecondVolume {
    var engine: Volume?
    var model: SimModel
    /// Its devices (healthy throughout: faults go to `d10`'s devices).
    var devices: [SimDevice]
}

extension Simulation {
    static let secondName = "d20"

    /// `metactl create d20 concat|stripe` over one or two new devices.
    func createSecondVolume() {
        guard let db, db.quorum.writable, !fate.dead else { return }
        let n = 1 + rng.below(2)
        created += 1
        let new = (0..<n).map { i in
            SimDevice(path: "d20-\(created)-\(i)", sizeBytes: devices[0].sizeBytes, sectorSize: sector, fate: fate)
        }
        devices.append(contentsOf: new)
        count("create-second")
        let il = options.interlaceBlocks, blocks = options.lines * options.interlaceBlocks
        note("create d20 \(n == 1 ? "concat" : "stripe") \(new.map(\.path).joined(separator: " "))")
        do {
            try db.commit { cfg in
                var uuids: [UUID] = []
                for d in new { uuids.append(try db.addDevice(d, role: .component, replicaCopies: 0, in: &cfg).uuid) }
                let rows = n == 1
                    ? [RowRecord(interlaceBlocks: 1, componentBlocks: blocks, components: [ComponentRecord(device: uuids[0])])]
                    : [RowRecord(interlaceBlocks: il, componentBlocks: blocks, components: uuids.map { ComponentRecord(device: $0) })]
                cfg.volumes.append(VolumeRecord(name: Self.secondName, type: n == 1 ? .concat : .stripe, rows: rows))
            }
        } catch {
            note("  failed: \(error)")
            // Cut off by a crash: the commit may have landed; the next start finds out.
            if fate.dead { creatingSecond = SecondVolume(engine: nil, model: SimModel(blocks: Int(blocks) * n), devices: new) }
            return
        }
        second = SecondVolume(engine: nil, model: SimModel(blocks: Int(blocks) * n), devices: new)
        openSecondVolume()
    }

    /// Opens `d20`'s engine when the configuration has it (at every start).
    func openSecondVolume() {
        guard let db, let rec = db.config.volume(named: Self.secondName) else { return }
        do { second?.engine = try VolumeFactory.open(rec, context: context) } catch { note("  d20: cannot open: \(error)") }
    }

    /// At a start: the configuration must have `d20` exactly when the simulation does (or a
    /// clear was cut off by the crash, which then either happened or not).
    func reconcileSecondVolume() {
        guard let db else { return }
        let has = db.config.volume(named: Self.secondName) != nil
        if let c = creatingSecond {
            creatingSecond = nil
            if has { second = c; note("  d20: the create was committed") } else { note("  d20: the create was not committed") }
        } else if clearingSecond {
            clearingSecond = false
            if !has { second = nil; note("  d20: the clear was committed") } else { note("  d20: the clear was not committed") }
        } else if has != (second != nil) {
            violation(has ? "d20 is in the configuration after it was cleared" : "d20 vanished from the configuration")
            return
        }
        openSecondVolume()
    }

    /// One operation on `d20` (or its creation when it does not exist).
    func secondVolumeOp() {
        guard db != nil, !fate.dead else { return }
        guard let s = second else {
            if rng.chance(0.5) { createSecondVolume() } else { clientRead() }
            return
        }
        guard let e = s.engine else { clientRead(); return }
        switch rng.below(20) {
        case 0..<9: secondWrite(e)
        case 9..<16: secondRead(e, secondRange())
        case 16..<18:
            count("d20-flush")
            do { try ioFlush(e); second?.model.flushed(); note("d20 flush: ok") } catch {
                note("d20 flush: \(error.code)")
                if !fate.dead { violation("d20 flush failed with its devices healthy: \(error)") }
            }
        case 18: clearSecondVolume(e)
        default:
            count("d20-read-all")
            secondReadAll()
        }
    }

    func secondRange() -> Range<Int> {
        let total = second?.model.blocks ?? 0
        let a = sector / 512
        let len = min(total, (1 + rng.below(Int(options.interlaceBlocks) * 3 / a)) * a)
        let start = rng.below((total - len) / a + 1) * a
        return start..<start + len
    }

    func secondWrite(_ e: Volume) {
        guard var model = second?.model else { return }
        count("d20-write")
        let r = secondRange()
        let fua = rng.chance(0.1)
        let id = model.newWrite()
        do {
            try writePattern(e, id: id, blocks: r, fua: fua)
            model.acked(id, blocks: r)
            if fua { model.flushed() }
            note("d20 write #\(id) blocks \(r)\(fua ? " fua" : ""): ok")
        } catch {
            model.uncertain(id, blocks: r)
            note("d20 write #\(id) blocks \(r): \(error.code)")
            if !fate.dead { violation("d20 write of blocks \(r) failed with its devices healthy: \(error)") }
        }
        second?.model = model
    }

    func secondRead(_ e: Volume, _ r: Range<Int>) {
        guard second != nil else { return }
        count("d20-read")
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: r.count * 512, alignment: 4096)
        defer { buf.deallocate() }
        do {
            try ioRead(e, offset: UInt64(r.lowerBound) * 512, into: buf)
            if let v = second!.model.checkRead(UnsafeRawBufferPointer(buf), blocks: r) {
                note("d20 read blocks \(r): WRONG DATA")
                violation("d20 read returned wrong data: \(v)")
                return
            }
            note("d20 read blocks \(r): ok")
        } catch {
            note("d20 read blocks \(r): \(error.code)")
            if !fate.dead { violation("d20 read of blocks \(r) failed with its devices healthy: \(error)") }
        }
    }

    /// Reads all of `d20` (also at the end of every schedule).
    func secondReadAll() {
        guard let s = second, let e = s.engine, !fate.dead else { return }
        let step = Int(options.interlaceBlocks) * 4
        var b = 0
        while b < s.model.blocks, failure == nil, !fate.dead {
            let n = min(step, s.model.blocks - b)
            secondRead(e, b..<b + n)
            b += n
        }
    }

    /// `metactl clear d20` as ``SetManager`` does it: the engine refuses new requests and
    /// closes, then one commit removes the volume and retires its devices (labels wiped).
    func clearSecondVolume(_ e: Volume) {
        guard let db else { return }
        count("clear")
        note("clear d20")
        clearingSecond = true
        e.closeForIO(reason: "volume was cleared")
        e.close()
        second?.engine = nil
        do {
            try db.apply(.cleared(volume: Self.secondName))
            clearingSecond = false
            second = nil
            note("  cleared")
        } catch {
            note("  failed: \(error)")
            if fate.dead { return }  // the restart decides from what the commit left
            clearingSecond = false
            openSecondVolume()
        }
    }
}
