import Foundation
import Logging
import MetaDB
import MetaEngine
import MetaLayout
import MetaModel

/// Soft partitions' configuration under crashes (`metactl-torture --softpart`): a concat
/// `d10` over two simulated devices (a third holds a state database replica), carved into
/// soft partitions that are created, grown and cleared as ``SetManager`` does it (create and
/// grow commit, then write their watermarks; clear marks them free, then commits), written
/// and read through their engines, with kills and power losses at any device write, each
/// followed by a start that writes again the watermarks that do not match the configuration
/// (as `serve` does).
///
/// What it checks, besides every read against the model of `d10`'s blocks:
/// - at any time, what `metactl recover d10` would rebuild from the watermarks alone (a lost
///   state database) is exactly the configuration: every soft partition, with its extents
///   and generation, and nothing cleared;
/// - the configured soft partitions never overlap.
public final class SoftPartitionSimulation {
    public let seed: UInt64
    var rng: SimRandom
    let fate: SimFate
    var devices: [SimDevice] = []
    var db: SetDatabase?
    var parent: Volume?
    var model: SimModel
    /// Blocks of `d10` that hold a watermark (written by a create, grow or clear), not a
    /// client's write: reads of them are not checked until a write covers them.
    var watermarkBlocks: Set<Int> = []
    /// Watermark blocks a write acknowledged since the last flush covers: they leave
    /// ``watermarkBlocks`` once that write is durable (a power loss may bring the watermark
    /// back; a kill keeps every write).
    var overwritten: Set<Int> = []
    public private(set) var trace: [String] = []
    public private(set) var coverage: [String: Int] = [:]
    public var operations = 120
    let blocks: UInt64 = 4096
    let logger: Logger

    public init(seed: UInt64) {
        self.seed = seed
        rng = SimRandom(seed: seed ^ 0x5350_4D45_5441)
        fate = SimFate(seed: seed)
        model = SimModel(blocks: 0)
        var l = Logger(label: "metactl.sim.softpart")
        l.logLevel = ProcessInfo.processInfo.environment["METACTL_SIM_LOG"] != nil ? .debug : .critical
        logger = l
    }

    func note(_ s: String) {
        trace.append(s)
        if trace.count > 400 { trace.removeFirst(100) }
    }

    func count(_ k: String) { coverage[k, default: 0] += 1 }

    var context: VolumeContext {
        let db = self.db!
        return VolumeContext(store: db, devices: { db.device($0) }, logger: logger)
    }

    var partitions: [VolumeRecord] { db?.config.volumes.filter { $0.type == .softpart } ?? [] }

    /// Runs the schedule; throws the first violation.
    public func run() throws(SimFailure) {
        do { try setUp() } catch { throw SimFailure(seed: seed, message: "set-up failed: \(error)", trace: trace) }
        for _ in 0..<operations {
            if let message = step() { throw SimFailure(seed: seed, message: message, trace: trace) }
            if fate.dead {
                note("  the process died during that operation (\(fate.crashKind.rawValue))")
                restart(fate.crashKind)
            }
            if let message = checkRecover() { throw SimFailure(seed: seed, message: message, trace: trace) }
        }
    }

    func setUp() throws {
        let slot = DiskLayout.minimumSlotSize
        let start = DiskLayout.dataStartBlock(copies: 1, slotSize: slot)
        for i in 0..<2 { devices.append(SimDevice(path: "sim\(i)", sizeBytes: (start + blocks / 2) * 512, fate: fate)) }
        devices.append(SimDevice(path: "db0", sizeBytes: (start + 64) * 512, fate: fate))
        let db = try SetDatabase.create(setName: "sim", devices: devices.map { ($0, 1) }, slotSize: slot)
        try db.commit { cfg in
            cfg.devices[0].role = .component
            cfg.devices[1].role = .component
            cfg.devices[2].role = .replica
            cfg.volumes.append(VolumeRecord(name: "d10", type: .concat, rows: (0..<2).map { i in
                RowRecord(interlaceBlocks: 1, componentBlocks: self.blocks / 2, components: [ComponentRecord(device: cfg.devices[i].uuid)])
            }))
        }
        self.db = db
        try openParent()
        model = SimModel(blocks: Int(blocks))
        note("create: concat d10 of \(blocks) blocks on two devices")
    }

    func openParent() throws {
        guard let db, let rec = db.config.volume(named: "d10") else { return }
        parent = try VolumeFactory.open(rec, context: context)
    }

    /// One operation, chosen by the seed; a violation's message, if any.
    func step() -> String? {
        switch rng.below(100) {
        case 0..<25: return write()
        case 25..<40: return read()
        case 40..<46: flush(); return nil
        case 46..<58: create(); return nil
        case 58..<66: grow(); return nil
        case 66..<74: clear(); return nil
        case 74..<80: note("crash: kill"); count("kill"); restart(.kill); return nil
        case 80..<86: note("crash: power-loss"); count("power-loss"); restart(.powerLoss); return nil
        default:
            // The next few device writes: the process dies at one of them.
            fate.crashAt = fate.ops + 1 + rng.below(12)
            fate.crashKind = rng.chance(0.5) ? .kill : .powerLoss
            note("crash (\(fate.crashKind.rawValue)) planned at device op \(fate.crashAt!) (now \(fate.ops))")
            count("crash-armed")
            return nil
        }
    }

    /// A start: the devices as the crash left them, the set opened again, and every soft
    /// partition's watermarks written again where they do not match the configuration.
    func restart(_ kind: CrashKind) {
        if kind == .powerLoss {
            for d in devices { d.crash(.powerLoss, random: &rng) }
            model.lostPower()
        } else {
            watermarkBlocks.subtract(overwritten)
        }
        overwritten = []
        model.settle()
        fate.crashAt = nil
        fate.revive()
        parent = nil
        db = nil
        do {
            db = try SetDatabase(devices: devices)
            try? db?.beginServing()
            try openParent()
        } catch {
            note("start: cannot open: \(error)")
            return
        }
        guard let parent else { return }
        for p in partitions where !SoftPartitionVolume.watermarksMatch(of: p, in: parent) {
            do {
                try SoftPartitionVolume.writeWatermarks(of: p, to: parent)
                markWatermarks(p)
                count("watermarks-rewritten")
                note("start: \(p.name)'s watermarks did not match the configuration: written again")
            } catch { note("start: \(p.name)'s watermarks could not be written: \(error)") }
        }
        note("start: soft partitions \(partitions.map { "\($0.name) g\($0.softPartition!.generation) \($0.softPartition!.extents.count) ext" })")
    }

    func markWatermarks(_ p: VolumeRecord) {
        for e in p.softPartition?.extents ?? [] {
            for b in e.watermarkBlock..<e.dataBlock {
                watermarkBlocks.insert(Int(b))
                overwritten.remove(Int(b))
            }
        }
    }

    /// Extents in use, and the allocation as `SetManager` does it (first fit; a small
    /// alignment here).
    func allocate(_ n: UInt64) -> [SoftPartitionLayout.Extent]? {
        guard let db else { return nil }
        return SoftPartitionLayout.allocate(blocks: n, parentBlocks: blocks, used: db.config.softExtents(of: "d10"),
                                            alignment: 64, granularity: SoftPartitionLayout.watermarkBlocks)
    }

    var created = 0

    /// `metactl create pN softpart d10 SIZE`: commit, then the watermarks (flushed).
    func create() {
        guard let db, let parent, !fate.dead, db.quorum.writable else { return }
        let size = UInt64(8 * (1 + rng.below(48)))
        guard let exts = allocate(size) else { note("create: no room for \(size) blocks"); return }
        created += 1
        var rec = VolumeRecord(name: "p\(created)", type: .softpart)
        rec.softPartition = SoftPartitionRecord(parent: "d10", extents: exts.map(SoftExtent.init))
        count("create")
        note("create \(rec.name) softpart d10 \(size) blocks: extents \(exts.map { "\($0.watermarkBlock)+\($0.blocks)" })")
        do { try db.commit { cfg in cfg.volumes.append(rec) } } catch { note("  commit failed: \(error)"); return }
        do {
            try SoftPartitionVolume.writeWatermarks(of: rec, to: parent)
        } catch {
            note("  watermarks failed: \(error)")
            if !fate.dead { _ = try? db.commit { cfg in cfg.volumes.removeAll { $0.name == rec.name } } }
        }
        markWatermarks(rec)
    }

    /// `metactl grow pN SIZE`: commit the new generation, then the new extents' watermarks,
    /// then the kept ones'.
    func grow() {
        guard let db, let parent, !fate.dead, db.quorum.writable, !partitions.isEmpty else { return }
        let old = partitions[rng.below(partitions.count)]
        guard var sp = old.softPartition, sp.extents.count < 6 else { return }
        let size = UInt64(8 * (1 + rng.below(32)))
        guard let added = allocate(size) else { note("grow: no room for \(size) blocks"); return }
        sp.extents += added.map(SoftExtent.init)
        sp.generation += 1
        var rec = old
        rec.softPartition = sp
        count("grow")
        note("grow \(old.name) by \(size) blocks: new extents \(added.map { "\($0.watermarkBlock)+\($0.blocks)" }), generation \(sp.generation)")
        do {
            try db.commit { cfg in
                guard let i = cfg.volumes.firstIndex(where: { $0.name == old.name }) else { return }
                cfg.volumes[i] = rec
            }
        } catch { note("  commit failed: \(error)"); return }
        do {
            try SoftPartitionVolume.writeWatermarks(of: rec, to: parent, newestFirst: added.count)
        } catch {
            note("  watermarks failed: \(error)")
            if !fate.dead {
                _ = try? db.commit { cfg in
                    guard let i = cfg.volumes.firstIndex(where: { $0.name == old.name }) else { return }
                    cfg.volumes[i] = old
                }
            }
        }
        markWatermarks(rec)
    }

    /// `metactl clear pN`: its watermarks marked free, then the record removed.
    func clear() {
        guard let db, let parent, !fate.dead, db.quorum.writable, !partitions.isEmpty else { return }
        let p = partitions[rng.below(partitions.count)]
        count("clear")
        note("clear \(p.name)")
        do { try SoftPartitionVolume.writeWatermarks(of: p, inUse: false, to: parent) } catch { note("  marking free failed: \(error)") }
        markWatermarks(p)
        guard !fate.dead else { return }
        do { try db.commit { cfg in cfg.volumes.removeAll { $0.name == p.name } } } catch { note("  commit failed: \(error)") }
    }

    /// A run of blocks of one extent of a random partition: its engine, the offset in it, and
    /// the blocks of `d10` it is.
    func pick() -> (Volume, UInt64, Range<Int>, String)? {
        guard let db, let parent, !partitions.isEmpty else { return nil }
        let p = partitions[rng.below(partitions.count)]
        guard let sp = p.softPartition, let v = try? VolumeFactory.open(p, context: context, parent: parent) else { return nil }
        let i = rng.below(sp.extents.count)
        let e = sp.extents[i]
        let logicalStart = sp.extents[..<i].reduce(UInt64(0)) { $0 + $1.blocks }
        let n = UInt64(1 + rng.below(Int(min(e.blocks, 32))))
        let off = UInt64(rng.below(Int(e.blocks - n + 1)))
        let d = Int(e.dataBlock + off)
        _ = db
        return (v, (logicalStart + off) * 512, d..<d + Int(n), p.name)
    }

    func write() -> String? {
        guard !fate.dead, let (v, offset, r, name) = pick() else { return nil }
        let id = model.newWrite()
        var buf = [UInt8](repeating: 0, count: r.count * 512)
        buf.withUnsafeMutableBytes { b in
            for (i, blk) in r.enumerated() { SimModel.pattern(id, block: blk, into: UnsafeMutableRawBufferPointer(rebasing: b[(i * 512)..<((i + 1) * 512)])) }
        }
        count("write")
        do {
            try buf.withUnsafeBytes { try v.write(offset: offset, from: $0) }
            model.acked(id, blocks: r)
            overwritten.formUnion(r.filter { watermarkBlocks.contains($0) })
            note("write #\(id) \(name) d10 blocks \(r): ok")
        } catch {
            model.uncertain(id, blocks: r)
            note("write #\(id) \(name) d10 blocks \(r): \(error)")
            if !fate.dead { return "a write through \(name) failed with every device healthy: \(error)" }
        }
        return nil
    }

    func read() -> String? {
        guard !fate.dead, let (v, offset, r, name) = pick() else { return nil }
        var buf = [UInt8](repeating: 0, count: r.count * 512)
        count("read")
        do {
            try buf.withUnsafeMutableBytes { try v.read(offset: offset, into: $0) }
        } catch {
            note("read \(name) d10 blocks \(r): \(error)")
            return fate.dead ? nil : "a read through \(name) failed with every device healthy: \(error)"
        }
        var failure: String?
        buf.withUnsafeBytes { b in
            for (i, blk) in r.enumerated() where !watermarkBlocks.contains(blk) && failure == nil {
                failure = model.checkRead(UnsafeRawBufferPointer(rebasing: b[(i * 512)..<((i + 1) * 512)]), blocks: blk..<blk + 1)
            }
        }
        note("read \(name) d10 blocks \(r): \(failure == nil ? "ok" : "WRONG DATA")")
        return failure.map { "read through \(name) returned wrong data: \($0)" }
    }

    func flush() {
        guard let parent, !fate.dead else { return }
        count("flush")
        do {
            try parent.flushRequest()
            model.flushed()
            watermarkBlocks.subtract(overwritten)
            overwritten = []
            note("flush: ok")
        } catch { note("flush: \(error)") }
    }

    /// What `metactl recover d10` would rebuild from the watermarks alone must be the
    /// configuration exactly; configured partitions never overlap.
    func checkRecover() -> String? {
        guard let parent, !fate.dead else { return nil }
        count("recover-check")
        let configured = partitions.compactMap { p -> (UUID, String, UInt64, [SoftPartitionLayout.Extent])? in
            guard let sp = p.softPartition else { return nil }
            return (sp.id, p.name, sp.generation, sp.layoutExtents)
        }
        let all = configured.flatMap(\.3)
        for (i, a) in all.enumerated() {
            for b in all[(i + 1)...] where a.watermarkBlock < b.end && b.watermarkBlock < a.end {
                return "configured soft partitions overlap: \(a) and \(b)"
            }
        }
        let scan = SoftPartitionVolume.scanWatermarks(of: parent)
        guard scan.unreadable == 0 else { return nil }
        let found = SoftPartitionWatermark.recover(scan.found)
        let want = configured.map { "\($0.1) \($0.0) g\($0.2) \($0.3.map { "\($0.watermarkBlock)+\($0.blocks)" })" }.sorted()
        let got = found.map { "\($0.name) \($0.id) g\($0.generation) \($0.extents.map { "\($0.watermarkBlock)+\($0.blocks)" })" }.sorted()
        if want != got { return "recover would rebuild \(got), the configuration is \(want)" }
        return nil
    }
}
