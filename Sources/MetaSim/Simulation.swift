import Foundation
import Logging
import MetaControl
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine
import MetaLayout

/// A violation of the never-wrong-data contract (or an invariant), with the seed and the
/// operations that led to it.
public struct SimFailure: Error, CustomStringConvertible, Sendable {
    public var seed: UInt64
    public var message: String
    public var trace: [String]
    public var description: String {
        let all = ProcessInfo.processInfo.environment["METACTL_SIM_TRACE"] != nil
        return "seed \(seed): \(message)\n\(all ? "operations" : "last operations (METACTL_SIM_TRACE=1 for all)"):\n"
            + trace.suffix(all ? trace.count : 40).map { "  \($0)" }.joined(separator: "\n")
    }
}

/// Knobs of one schedule.
public struct SimOptions: Sendable {
    /// Top-level operations per schedule.
    public var operations = 60
    public var columns: ClosedRange<Int> = 3...5
    /// Lines per column.
    public var lines: UInt64 = 48
    /// Interlace in 512-byte blocks.
    public var interlaceBlocks: UInt64 = 16
    /// Lines per dirty region (small, so that regions matter).
    public var linesPerRegion: UInt64 = 8
    /// Whether the schedule may replace columns and rebuild them.
    public var resyncs = true
    /// `--no-init` (nil: chosen by the seed).
    public var noInit: Bool? = nil
    /// Logical sector size of the devices (nil: 4096 in one schedule of eight, else 512).
    public var sectorSize: Int? = nil
    /// Whether the volume has a hot spare pool (nil: chosen by the seed).
    public var spares: Bool? = nil
    /// The volume's type (nil: RAID-5 in four schedules of five, else a stripe or a concat).
    public var volumeType: VolumeType? = nil
    /// Whether the schedule builds a RAID-6 volume (one more column than ``columns`` says)
    /// instead of the seed's choice. Off by default, so that every seed's schedule stays as
    /// it was; `metactl-torture --raid6` turns it on.
    public var raid6 = false
    /// Whether a RAID-6 volume may have a write log (chosen like RAID-5's). Off only for
    /// the RAID-6 seeds found before RAID-6 had one, whose schedules it would change.
    public var raid6WriteLog = true
    /// Whether a RAID-5 volume has a write log (nil: chosen by the seed, one in two).
    public var writeLog: Bool? = nil
    /// Blocks of the write log's area on each column (small, so that it fills and is reused).
    public var writeLogAreaBlocks: UInt64 = 256
    /// Whether a logged volume has a dedicated log device (nil: chosen by the seed, two in five).
    public var logDevice: Bool? = nil
    /// Whether the volume is a mirror of two or three one-device concats (off by default, so
    /// that every seed's schedule stays as it was; `metactl-torture --mirror` turns it on).
    public var mirror = false
    /// A mirror's sides: rows (devices) per side, and spares in the sides' pool (nil: chosen
    /// by the seed with random numbers of their own, so that a seed's other choices stay
    /// what they were; 1 and 0 are what mirror schedules had before).
    public var mirrorSideRows: Int? = nil
    public var mirrorSpares: Int? = nil
    /// Whether a mirror schedule grows sides (the mirror grows once its smallest side has).
    public var mirrorGrows = true
    /// Whether a mirror schedule runs `check` (and `--repair`, `--stop`) of the mirror.
    public var mirrorChecks = true
    public init() {}

    /// What scripted scenarios use: a RAID-5 of `columns` columns of zeroes (`--no-init`),
    /// 512-byte sectors, no spares; the write log as given.
    public static func scripted(columns: Int, writeLog: Bool, logDevice: Bool = false) -> SimOptions {
        var o = SimOptions()
        o.columns = columns...columns
        o.noInit = true
        o.sectorSize = 512
        o.spares = false
        o.volumeType = .raid5
        o.writeLog = writeLog
        o.logDevice = logDevice
        return o
    }
}

/// Background work handed over by the engine, run when the simulation chooses.
final class SimScheduler: BackgroundScheduler, @unchecked Sendable {
    var pending: [(String, @Sendable () -> Void)] = []
    weak var sim: Simulation?
    func startBackground(_ label: String, _ body: @escaping @Sendable () -> Void) { pending.append((label, body)) }
    func yield(_ point: String) { sim?.yielded(point) }
    func shouldCheckpoint() -> Bool { guard let sim, !sim.scripted else { return true }; return sim.rng.chance(0.35) }
}

/// One deterministic schedule: a RAID-5 volume over simulated devices, driven by a seed
/// through client I/O, faults, crashes, restarts and resyncs, with every read checked
/// against ``SimModel``.
///
/// The engine runs its real code (``RAID5Volume``, the dirty-region log, resync, the state
/// database with its labels and replicas) with a ``BackgroundScheduler``: no threads, no
/// timers, so a seed always takes the same path.
public final class Simulation: EngineDelegate, @unchecked Sendable {
    public let seed: UInt64
    var rng: SimRandom
    let options: SimOptions
    let fate: SimFate
    let scheduler = SimScheduler()
    /// Devices of the set (columns, replacements), by creation order.
    var devices: [SimDevice] = []
    var db: SetDatabase?
    /// The volume's engine (any type), and the same as a RAID-5 engine when it is one.
    var volumeEngine: Volume?
    var engine: RAID5Volume? { volumeEngine as? RAID5Volume }
    var model: SimModel
    /// A soft partition over the volume that one client request in four goes through (its
    /// own random numbers: the schedule of a seed stays what it was without it).
    var softView: (parent: ObjectIdentifier, parentBytes: UInt64, volume: SoftPartitionVolume, pieces: [SoftPiece])?
    var softRng: SimRandom
    public private(set) var trace: [String] = []
    /// Operations run (top level and inside background work).
    public private(set) var operationCount = 0
    /// What kinds of operation ran, for coverage reports.
    public private(set) var coverage: [String: Int] = [:]
    let name = "d10"
    var failure: SimFailure?
    /// Depth of operations run from inside background work.
    private var nested = 0
    let logger: Logger

    public init(seed: UInt64, options: SimOptions = SimOptions()) {
        self.seed = seed
        self.options = options
        rng = SimRandom(seed: seed)
        softRng = SimRandom(seed: seed ^ 0x5350_5341_5254)
        fate = SimFate(seed: seed)
        model = SimModel(blocks: 0)
        var l = Logger(label: "metactl.sim")
        l.logLevel = ProcessInfo.processInfo.environment["METACTL_SIM_LOG"] != nil ? .debug : .critical
        logger = l
        scheduler.sim = self
    }

    // MARK: running

    /// Runs the schedule; throws the first violation.
    public func run() throws(SimFailure) {
        do { try setUp() } catch { throw fail("set-up failed: \(error)") }
        for _ in 0..<options.operations {
            step()
            if let f = failure { throw f }
        }
        // Finish: heal, restart, let background work finish, and check the whole volume.
        note("final: heal every device, restart, finish background work")
        finalPhase = true
        for d in devices { d.heal() }
        restart(after: .kill)
        if let rec = record, rec.resync == nil, db?.quorum.writable == true, !fate.dead,
           let c = rec.columns.indices.first(where: { rec.columns[$0].state == .unavailable && rec.columns[$0].staleRegions != nil && rec.columns[$0].hotSpare == nil }),
           rec.columns.filter({ $0.state != .okay }).count <= rec.type.parityCount {
            returnDevice(column: c)
        }
        // A mirror: sides come back in turns (a Last Erred side once another is Okay again).
        for _ in 0..<(isMirror ? 3 : 0) {
            finishMirror()
            runBackground(all: true)
        }
        runBackground(all: true)
        checkOkayReadsBack()
        finalCheck()
        finalMirrorCompare()
        secondReadAll()
        if let f = failure { throw f }
    }

    func fail(_ message: String) -> SimFailure {
        SimFailure(seed: seed, message: message, trace: trace)
    }

    func violation(_ message: String) {
        if failure == nil { failure = fail(message) }
    }

    func note(_ s: String) {
        trace.append(s)
        if trace.count > 400 { trace.removeFirst(100) }
    }

    func count(_ kind: String) {
        operationCount += 1
        coverage[kind, default: 0] += 1
    }

    var context: VolumeContext {
        let db = self.db!
        var c = VolumeContext(store: db, devices: { db.device($0) }, logger: logger, scheduler: scheduler)
        c.dirtyRegionColumnBytes = options.linesPerRegion * options.interlaceBlocks * 512
        return c
    }

    func setUp() throws {
        var columns = options.columns.lowerBound + rng.below(options.columns.count)
        if options.raid6 { columns += 1 }  // RAID-6: one more column for Q
        let slot = DiskLayout.minimumSlotSize
        let start = DiskLayout.dataStartBlock(copies: 1, slotSize: slot) * 512
        sector = options.sectorSize ?? (rng.below(8) == 0 ? 4096 : 512)
        if options.mirror {
            try setUpMirror(sides: rng.chance(0.3) ? 3 : 2, size: start + options.lines * options.interlaceBlocks * 512)
            return
        }
        let logged = (options.writeLog ?? rng.chance(0.5)) && (!options.raid6 || options.raid6WriteLog)
        let size = start + (options.lines * options.interlaceBlocks + (logged ? options.writeLogAreaBlocks : 0)) * 512
        for i in 0..<columns { devices.append(SimDevice(path: "sim\(i)", sizeBytes: size, sectorSize: sector, fate: fate)) }
        let db = try SetDatabase.create(setName: "sim", devices: devices.map { ($0, 1) }, slotSize: slot)
        let noInit = options.noInit ?? rng.chance(0.5)
        var type = options.volumeType ?? (rng.below(5) > 0 ? .raid5 : (rng.chance(0.5) ? .stripe : .concat))
        if options.raid6 { type = .raid6 }
        if !type.hasColumns {
            try db.commit { cfg in
                for i in cfg.devices.indices { cfg.devices[i].role = .component }
                let il = options.interlaceBlocks, blocks = options.lines * options.interlaceBlocks
                let rows = type == .stripe
                    ? [RowRecord(interlaceBlocks: il, componentBlocks: blocks, components: cfg.devices.map { ComponentRecord(device: $0.uuid) })]
                    : cfg.devices.map { RowRecord(interlaceBlocks: 1, componentBlocks: blocks, components: [ComponentRecord(device: $0.uuid)]) }
                cfg.volumes.append(VolumeRecord(name: name, type: type, rows: rows))
            }
            self.db = db
            note("create: \(type.rawValue) of \(columns) devices, \(options.lines * options.interlaceBlocks) blocks each\(sector != 512 ? ", \(sector)-byte sectors" : "")")
            try openEngine()
            model = SimModel(blocks: Int(volumeEngine!.sizeBytes / 512))
            return
        }
        try db.commit { cfg in
            for i in cfg.devices.indices { cfg.devices[i].role = .component }
            let il = options.interlaceBlocks
            var v = VolumeRecord(name: name, type: type,
                                 columns: cfg.devices.map { ComponentRecord(device: $0.uuid, state: noInit ? .okay : .initializing) },
                                 originalColumnCount: columns, interlaceBlocks: il, columnBlocks: options.lines * il)
            if !noInit { v.resync = ResyncCheckpoint(kind: .initialize, totalBlocks: options.lines * il) }
            builtWithWriteLog = logged
            if logged { v.writeLog = WriteLogConfig(mode: .auto, areaBlocks: options.writeLogAreaBlocks, id: UUID(uuid: rng.uuidBytes())) }
            if logged && (options.logDevice ?? rng.chance(0.4)) {
                // A dedicated log device: records go there, one copy, while it works.
                let d = SimDevice(path: "log0", sizeBytes: start + 2 * options.writeLogAreaBlocks * 512, sectorSize: sector, fate: fate)
                devices.append(d)
                logSim = d
                logDevices.append(d)
                let r = try db.addDevice(d, role: .log, replicaCopies: 0, in: &cfg)
                v.writeLog!.device = r.uuid
                v.writeLog!.deviceAreaBlocks = 2 * options.writeLogAreaBlocks
            }
            v.resyncRate = ResyncRate(minBytesPerSecond: UInt64.max / 4, maxBytesPerSecond: UInt64.max)
            cfg.volumes.append(v)
        }
        // Devices are zero-filled, so parity of never-written lines is valid from the start.
        self.db = db
        if options.spares ?? (options.resyncs && rng.chance(0.5)) {
            // A hot spare pool of one or two spares.
            let spares = (0..<(1 + rng.below(2))).map { i in
                SimDevice(path: "spare\(i)", sizeBytes: size, sectorSize: sector, fate: fate)
            }
            devices.append(contentsOf: spares)
            try db.commit { cfg in
                var pool = HotSparePoolRecord(name: "hsp001")
                for d in spares {
                    let r = try db.addDevice(d, role: .hotSpare, replicaCopies: 0, in: &cfg)
                    pool.spares.append(HotSpareRecord(device: r.uuid))
                }
                cfg.hotSparePools.append(pool)
                cfg.volumes[0].hotSparePool = "hsp001"
            }
            note("hs create hsp001 with \(spares.count) spare(s); set d10 -h hsp001")
        }
        if !scripted && rng.below(3) == 0 { secondAtStart = true }
        note("create: \(type.rawValue) of \(columns) columns, \(options.lines) lines, interlace \(options.interlaceBlocks) blocks\(noInit ? ", --no-init" : "")\(logged ? ", write log" : "")\(record?.writeLog?.device != nil ? " on log0" : "")\(sector != 512 ? ", \(sector)-byte sectors" : "")")
        try openEngine()
        model = SimModel(blocks: Int(volumeEngine!.sizeBytes / 512))
        if secondAtStart { createSecondVolume() }
    }


    /// Opens the engine as `metactl serve` does.
    func openEngine() throws {
        guard let db, let rec = db.config.volume(named: name) else { return }
        if rec.type == .mirror { return try openMirrorEngine(rec) }
        let v = try VolumeFactory.open(rec, context: context)
        volumeEngine = v
        guard let e = v as? RAID5Volume else { return }
        e.delegate = self
        e.replayWriteLog()
        if db.quorum.writable {
            try? e.commitUnavailableColumns()
            if rec.resync?.kind == .regenerate || rec.resync?.kind == .copy {
                e.startResync()
            } else {
                e.startBackgroundWork()
            }
            if rec.check?.running == true { e.startCheck() }
        }
    }

    /// As the server does (``SetManager``): a spare that failed as the target is Broken.
    public func resyncEnded(_ end: ResyncEnd) {
        note("  resync ended: \(end.outcome)")
        if case .targetFailed = end.outcome, let c = end.column, let t = end.target, let db,
           record?.columns[safe: c]?.state == .maintenance,
           db.config.hotSparePools.contains(where: { $0.spares.contains { $0.device == t } }) {
            _ = try? db.apply(.spareFailed(volume: name, column: c, spare: t))
            try? engine?.reload()
        }
        // As the server does: a regeneration left with a column of two goes on.
        if case .targetFailed = end.outcome, let db, db.quorum.writable, record?.resync?.kind == .regenerate {
            note("  the regeneration goes on for the column left")
            engine?.startResync()
        }
    }

    /// Hot spares are checked after every operation (``checkHotSpares()``), not on the callback.
    public func columnFailed(volume: String, column: Int) {}

    // MARK: operations

    var record: VolumeRecord? { db?.config.volume(named: name) }
    /// Whether the volume was built with a write log (for the tests' sweeps).
    public private(set) var builtWithWriteLog = false

    /// One top-level operation, chosen by the seed.
    func step() {
        if secondAtStart && rng.below(8) == 0 {
            secondVolumeOp()
            afterOperation()
            return
        }
        let r = rng.below(100)
        switch r {
        case 0..<27: clientWrite()
        case 27:
            if sector > 512 || record?.writeLog == nil { misalignedRequest() } else if rng.chance(0.5) { switchWriteLog() } else { switchLogDevice() }
        case 28..<45: clientRead()
        case 45: checkOrStop()
        case 46..<53: clientFlush()
        case 53..<57: cleanRegions()
        case 57..<67: runBackground(all: rng.chance(0.5))
        case 67..<72: injectFault()
        case 72..<75: crashAndRestart(.kill)
        case 75..<78: crashAndRestart(.powerLoss)
        case 78..<80: cleanStopAndRestart()
        case 80..<84: armCrash()
        case 84..<87: commandWithoutServer()
        case 87..<94: if isMirror { mirrorOp() } else if options.resyncs { replaceOrEnable() } else { clientWrite() }
        case 94..<96: healAndRestart()
        case 96:
            if isMirror && options.mirrorGrows { mirrorGrow() }
            else if !isMirror && (options.resyncs || record?.type.hasColumns != true) { grow() } else { clientRead() }
        default: restartWithColumnMissing()
        }
        afterOperation()
    }

    /// Handles a crash that happened during the last operation; else lets the "server" take
    /// a hot spare where one is due (it does so after every failure and resync).
    func afterOperation() {
        if let w = watchedBlock, db != nil, !fate.dead { note("  watch: " + whereIs(w)) }
        guard nested == 0 else { return }
        if !fate.dead { checkHotSpares() }
        guard fate.dead else { return }
        let kind = fate.crashKind
        note("  the process died during that operation (\(kind.rawValue))")
        restart(after: kind)
    }

    /// `METACTL_SIM_WATCH=BLOCK`: the trace shows where that block's data lives after every
    /// operation (for debugging a failure).
    let watchedBlock = ProcessInfo.processInfo.environment["METACTL_SIM_WATCH"].flatMap(Int.init)

    /// Logical sector size of this schedule's devices.
    var sector = 512

    func randomRange() -> Range<Int> {
        let r = unalignedRange()
        let a = sector / 512
        guard a > 1 else { return r }
        // Whole sectors of the devices (the export's minimum block size).
        let lo = r.lowerBound / a * a
        let hi = min(model.blocks, max(lo + a, (r.upperBound + a - 1) / a * a))
        return lo..<hi
    }

    func unalignedRange() -> Range<Int> {
        let total = model.blocks
        let lineBlocks = Int(options.interlaceBlocks) * max(1, (devices.count - 1))
        let len: Int
        switch rng.below(4) {
        case 0: len = 1 + rng.below(8)
        case 1: len = Int(options.interlaceBlocks)
        case 2: len = lineBlocks * (1 + rng.below(3))
        default: len = 1 + rng.below(lineBlocks * 2)
        }
        let n = min(len, total)
        let start: Int = rng.chance(0.5) ? rng.below(total - n + 1) : (rng.below(total / max(1, Int(options.interlaceBlocks))) * Int(options.interlaceBlocks))
        let s = min(start, total - n)
        return s..<(s + n)
    }

    @discardableResult
    func clientWrite(_ range: Range<Int>? = nil, fua forceFua: Bool? = nil) -> Bool {
        guard let e = volumeEngine, !fate.dead else { return false }
        count("write")
        let r = range ?? randomRange()
        let fua = forceFua ?? rng.chance(0.1)
        if range == nil && rng.chance(0.06) { return writeZeroes(r, fua: fua) }
        if range == nil && e.supportsDiscard && rng.chance(0.06) { return trim(r) }
        if range == nil && sector == 512 && rng.chance(0.08), let done = subSectorWrite(fua: fua) { return done }
        let id = model.newWrite()
        do {
            try writePattern(e, id: id, blocks: r, fua: fua)
            model.acked(id, blocks: r)
            if fua && flushCoversEverything() { model.flushed() }
            note("write #\(id) blocks \(r)\(fua ? " fua" : ""): ok")
            return true
        } catch {
            model.uncertain(id, blocks: r)
            if record?.writeLog?.active == true { model.replayable(id, blocks: r) }
            note("write #\(id) blocks \(r)\(fua ? " fua" : ""): \(error.code)")
            tornByDoubleFailure()
            if !fate.dead && !mayFail() {
                violation("write of blocks \(r) failed with one failure at most (columns \(record?.columns.map(\.state.rawValue) ?? [])): \(error)")
            }
            return false
        }
    }

    /// Writes write `id`'s pattern over blocks `r` of `e` (through ``ioWrite(_:offset:from:fua:)``).
    func writePattern(_ e: Volume, id: UInt32, blocks r: Range<Int>, fua: Bool) throws(VolumeIOError) {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: r.count * 512, alignment: 4096)
        defer { buf.deallocate() }
        for (i, b) in r.enumerated() {
            SimModel.pattern(id, block: b, into: UnsafeMutableRawBufferPointer(rebasing: buf[(i * 512)..<((i + 1) * 512)]))
        }
        try ioWrite(e, offset: UInt64(r.lowerBound) * 512, from: UnsafeRawBufferPointer(buf), fua: fua)
    }

    @discardableResult
    func clientRead(_ range: Range<Int>? = nil, mustSucceed: Bool = false) -> Bool? {
        guard let e = volumeEngine, !fate.dead else { return nil }
        count("read")
        if range == nil && sector == 512 && rng.chance(0.08) { return subSectorRead() }
        let r = range ?? randomRange()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: r.count * 512, alignment: 4096)
        defer { buf.deallocate() }
        do {
            try ioRead(e, offset: UInt64(r.lowerBound) * 512, into: buf)
            if let v = model.checkRead(UnsafeRawBufferPointer(buf), blocks: r) {
                note("read blocks \(r): WRONG DATA")
                if let b = v.split(separator: ":").first.flatMap({ Int($0.dropFirst(6)) }) { note("  " + whereIs(b)) }
                violation("read returned wrong data: \(v)")
                return nil
            }
            if range == nil { note("read blocks \(r): ok") }
            return true
        } catch {
            note("read blocks \(r): \(error.code) \(error.detail)")
            if fate.dead { return nil }
            if mustSucceed {
                violation("volume reported Okay but a read failed: \(error)")
            } else if !mayFail() {
                violation("read of blocks \(r) failed with one failure at most and no data loss: \(error)")
            }
            return false
        }
    }

    /// A byte range that starts or ends inside a 512-byte block (1 to 1,500 bytes).
    func subSectorRange() -> Range<Int> {
        let total = model.blocks * 512
        let len = 1 + rng.below(1500)
        let start = rng.below(total - len)
        return start..<start + len
    }

    /// A write of a byte range that starts or ends inside a block (an NBD client may send
    /// any byte range; the engine reads, patches and writes the partial sectors). Only where
    /// each partly written block has one legal value, so that the model knows what the
    /// patched block must hold; nil when there is none such here (the caller writes blocks).
    func subSectorWrite(fua: Bool) -> Bool? {
        guard let e = volumeEngine else { return nil }
        let r = subSectorRange()
        let first = r.lowerBound / 512, last = (r.upperBound - 1) / 512
        var partial: [(block: Int, bytes: Range<Int>, base: UInt32)] = []
        for b in Set([first, last]).sorted() {
            let lo = max(r.lowerBound, b * 512) - b * 512, hi = min(r.upperBound, (b + 1) * 512) - b * 512
            guard lo > 0 || hi < 512 else { continue }
            guard let v = model.onlyValue(b) else { return nil }
            partial.append((b, lo..<hi, v))
        }
        count("write-sub-sector")
        let id = model.newWrite()
        for p in partial { model.partial(id, block: p.block, bytes: p.bytes, base: p.base) }
        var bytes = [UInt8](repeating: 0, count: r.count)
        var block = [UInt8](repeating: 0, count: 512)
        for b in first...last {
            block.withUnsafeMutableBytes { SimModel.pattern(id, block: b, into: $0) }
            let lo = max(r.lowerBound, b * 512), hi = min(r.upperBound, (b + 1) * 512)
            bytes.replaceSubrange((lo - r.lowerBound)..<(hi - r.lowerBound), with: block[(lo - b * 512)..<(hi - b * 512)])
        }
        let blocks = first..<(last + 1)
        do {
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: r.count, alignment: 8)
            defer { buf.deallocate() }
            buf.copyBytes(from: bytes)
            try e.write(offset: UInt64(r.lowerBound), from: UnsafeRawBufferPointer(buf), fua: fua)
            model.acked(id, blocks: blocks)
            if fua && flushCoversEverything() { model.flushed() }
            note("write #\(id) bytes \(r) (blocks \(blocks))\(fua ? " fua" : ""): ok")
            return true
        } catch {
            model.uncertain(id, blocks: blocks)
            if record?.writeLog?.active == true { model.replayable(id, blocks: blocks) }
            note("write #\(id) bytes \(r) (blocks \(blocks))\(fua ? " fua" : ""): \(error.code)")
            tornByDoubleFailure()
            if !fate.dead && !mayFail() {
                violation("write of bytes \(r) failed with one failure at most (columns \(record?.columns.map(\.state.rawValue) ?? [])): \(error)")
            }
            return false
        }
    }

    /// A read of a byte range that starts or ends inside a block.
    func subSectorRead() -> Bool? {
        guard let e = volumeEngine else { return nil }
        count("read-sub-sector")
        let r = subSectorRange()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: r.count, alignment: 8)
        defer { buf.deallocate() }
        do {
            try e.read(offset: UInt64(r.lowerBound), into: buf)
            if let v = model.checkRead(UnsafeRawBufferPointer(buf), byteOffset: r.lowerBound) {
                note("read bytes \(r): WRONG DATA")
                violation("read returned wrong data: \(v)")
                return nil
            }
            note("read bytes \(r): ok")
            return true
        } catch {
            note("read bytes \(r): \(error.code) \(error.detail)")
            if fate.dead { return nil }
            if !mayFail() { violation("read of bytes \(r) failed with one failure at most and no data loss: \(error)") }
            return false
        }
    }

    /// A write failed while two columns were faulty: it may have torn lines that no log or
    /// repair can make whole again (their parity cannot be recomputed), so data may be lost
    /// for good from here on.
    func tornByDoubleFailure() {
        if let rec = record, rec.type.hasColumns && faultyColumns() > rec.type.parityCount { model.lossy = true }
    }

    /// Whether I/O errors are legitimate now: two devices faulty, or data legitimately lost.
    func mayFail() -> Bool {
        if model.lossy { return true }
        if isMirror { return mirrorMayFail() || !replicaMajorityHealthy() }
        // No redundancy: any component that fails takes its blocks with it (EIO, no state change).
        if record?.type.hasColumns != true && faultyColumns() > 0 { return true }
        return faultyColumns() > (record?.type.parityCount ?? 1) || !replicaMajorityHealthy()
    }

    /// Whether more than half of the state database's replicas sit on healthy devices (else
    /// failures cannot be recorded, and the engine must fail the I/O that caused them).
    func replicaMajorityHealthy() -> Bool {
        guard let db else { return false }
        let reps = db.config.replicas
        let healthy = reps.filter { r in
            guard let d = db.device(r.device) as? SimDevice else { return false }
            // A replica whose write failed is skipped until the set is opened again.
            return !d.faulty && !faultedSinceStart.contains(ObjectIdentifier(d))
        }.count
        return healthy * 2 > reps.count
    }

    /// Devices the volume uses that are faulty or missing.
    func faultyColumns() -> Int {
        guard let rec = record else { return 0 }
        if isMirror { return mirrorFaultySides() }
        // A component whose device is missing or faulty, or (RAID-5) a column erred or being
        // rebuilt in the configuration (its data is derived): each counts once.
        return rec.allComponents.filter { c in
            let bad = (db?.device(c.activeDevice) as? SimDevice)?.faulty ?? true
            return bad || (rec.type.hasColumns && (c.state.isErred || c.state == .resyncing))
        }.count
    }

    /// NBD_CMD_WRITE_ZEROES: blocks read back as zeroes (write 0 in the model).
    func writeZeroes(_ r: Range<Int>, fua: Bool) -> Bool {
        guard let e = volumeEngine else { return false }
        count("write-zeroes")
        let before = r.map { model.current[$0] }
        do {
            try ioWriteZeroes(e, offset: UInt64(r.lowerBound) * 512, length: UInt64(r.count) * 512, fua: fua)
            model.acked(0, blocks: r)
            if fua && flushCoversEverything() { model.flushed() }
            note("write-zeroes blocks \(r)\(fua ? " fua" : ""): ok")
            return true
        } catch {
            for (i, b) in r.enumerated() where !before[i].contains(0) { model.current[b] = before[i] + [0] }
            for b in r { model.sinceFlush[b].append(0) }
            if record?.writeLog?.active == true { model.replayable(0, blocks: r) }
            note("write-zeroes blocks \(r): \(error.code)")
            tornByDoubleFailure()
            if !fate.dead && !mayFail() { violation("write-zeroes of blocks \(r) failed with one failure at most: \(error)") }
            return false
        }
    }

    /// NBD_CMD_TRIM where the volume offers it (concat, stripe): the blocks may read back as
    /// before or as zeroes (trim is advisory), never as anything else.
    func trim(_ r: Range<Int>) -> Bool {
        guard let e = volumeEngine else { return false }
        count("trim")
        do {
            try ioTrim(e, offset: UInt64(r.lowerBound) * 512, length: UInt64(r.count) * 512)
            model.uncertain(0, blocks: r)
            note("trim blocks \(r): ok")
            return true
        } catch {
            model.uncertain(0, blocks: r)
            note("trim blocks \(r): \(error.code)")
            if !fate.dead && !mayFail() { violation("trim of blocks \(r) failed with every component healthy: \(error)") }
            return false
        }
    }

    /// `metactl set d10 --write-log auto|none` while the volume is in use: the engine waits
    /// for writes in flight, flushes and commits the other mode with a new epoch.
    func switchWriteLog() {
        guard let e = engine, var log = record?.writeLog, !fate.dead else { return }
        count("set-write-log")
        log.mode = log.mode == .auto ? .none : .auto
        log.epoch += 1
        do {
            try e.setWriteLog(log)
            note("set d10 --write-log \(log.mode.rawValue): ok")
        } catch {
            note("set d10 --write-log \(log.mode.rawValue): \(error)")
        }
    }

    /// `metactl set d10 --log-device DEV|none` while the volume is in use, as ``SetManager``
    /// does it: the engine waits for writes in flight, flushes, and commits the new log (a
    /// new device labelled into the set with role `log`, or the columns' areas again; the old
    /// log device leaves the set) with a new epoch.
    func switchLogDevice() {
        guard let e = engine, let db, let base = record?.writeLog, !fate.dead, db.quorum.writable else { return }
        count("set-log-device")
        let make: (inout SetConfig) throws -> WriteLogConfig?
        let what: String
        if base.device != nil {
            what = "none"
            make = { _ in
                var log = base
                log.device = nil; log.deviceAreaBlocks = nil; log.deviceFailed = nil
                log.epoch += 1
                return log
            }
        } else {
            let start = DiskLayout.dataStartBlock(copies: 1, slotSize: DiskLayout.minimumSlotSize) * 512
            let d = SimDevice(path: "log\(devices.count)", sizeBytes: start + 2 * options.writeLogAreaBlocks * 512, sectorSize: sector, fate: fate)
            devices.append(d)
            logDevices.append(d)
            what = d.path
            let area = 2 * options.writeLogAreaBlocks
            make = { cfg in
                let r = try db.addDevice(d, role: .log, replicaCopies: 0, in: &cfg)
                var log = base
                log.device = r.uuid; log.deviceAreaBlocks = area; log.deviceFailed = nil
                log.epoch += 1
                return log
            }
        }
        do {
            try e.setWriteLog(make)
            note("set d10 --log-device \(what): ok")
        } catch {
            note("set d10 --log-device \(what): \(error)")
        }
    }

    /// A request not aligned to the volume's sector must be refused (EINVAL) without touching
    /// any device or changing any state.
    func misalignedRequest() {
        guard sector > 512, let e = volumeEngine, !fate.dead else { clientRead(); return }
        count("misaligned")
        let states = record?.columns.map(\.state)
        let len = 512 * (1 + rng.below(3))
        // Inside the volume (past its end the bounds check answers first, with ENOSPC).
        let at = UInt64(rng.below(model.blocks - 4)) * 512 + 512 * UInt64(rng.chance(0.5) ? 0 : 1)
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: len, alignment: 4096)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 0x5a)
        let aligned = at % UInt64(sector) == 0 && len % sector == 0
        note("misaligned request \(len)@\(at) (the volume's sector: \(e.sectorSize))")
        do {
            if rng.chance(0.5) { try ioRead(e, offset: at, into: buf) } else { try ioWrite(e, offset: at, from: UnsafeRawBufferPointer(buf), fua: false) }
            if !aligned { violation("a \(len)-byte request at \(at) on a \(sector)-byte-sector volume was not refused") }
        } catch {
            // (A volume closed for I/O refuses everything first.)
            if !aligned && error.code != .invalid && !e.isClosed { violation("a misaligned request failed with \(error.code), not EINVAL: \(error)") }
        }
        note("misaligned request \(len)@\(at): refused")
        if record?.columns.map(\.state) != states { violation("a misaligned request changed column states: \(states ?? []) -> \(record?.columns.map(\.state) ?? [])") }
    }

    /// Whether a successful flush made every acknowledged write durable: with RAID-5 always
    /// (a missing column's data lives in parity on the others); without redundancy only when
    /// every component is present (an absent one may still hold unflushed writes of an earlier
    /// process in its cache, which no flush of this one reaches).
    func flushCoversEverything() -> Bool {
        record?.type.hasColumns == true || faultyColumns() == 0
    }

    func clientFlush() {
        guard let e = volumeEngine, !fate.dead else { return }
        count("flush")
        do {
            try ioFlush(e)
            if flushCoversEverything() { model.flushed() }
            note("flush: ok")
        } catch {
            note("flush: \(error.code)")
        }
    }

    func cleanRegions() {
        if let m = mirrorEngine, !fate.dead {
            count("clean")
            let n = m.cleanDirtyRegions(all: true)
            note("cleaner: \(n) region(s) cleaned, dirty now \(m.dirtyRegions.sorted())")
            return
        }
        guard let e = engine, !fate.dead else { return }
        count("clean")
        let n = e.cleanDirtyRegions(all: true)
        note("cleaner: \(n) region(s) cleaned, dirty now \(e.dirtyRegions.sorted())")
    }

    /// Runs queued background work (resync, repair, initialisation).
    func runBackground(all: Bool) {
        while !scheduler.pending.isEmpty, !fate.dead {
            let (label, body) = scheduler.pending.removeFirst()
            count("background")
            note("background: \(label)")
            body()
            if stopRequested, let e = engine, !fate.dead {
                // The stop that SIGTERM asked for: the rest of the background work sees it, close.
                stopRequested = false
                while !scheduler.pending.isEmpty && !fate.dead { scheduler.pending.removeFirst().1() }
                if !fate.dead { e.close(); db?.close() }
                note("  stopped; start again")
                restart(after: fate.dead ? fate.crashKind : .kill)
                return
            }
            if !all { break }
        }
    }

    /// Called by the engine between background steps: a chance to interleave.
    func yielded(_ point: String) {
        if let hook = onYield {
            guard !fate.dead, nested < 1 else { return }
            nested += 1
            defer { nested -= 1 }
            hook(point)
            return
        }
        guard !scripted, !finalPhase, !fate.dead, failure == nil, nested < 1 else { return }
        nested += 1
        defer { nested -= 1 }
        switch rng.below(10) {
        case 0..<3: clientWrite()
        case 3: clientRead()
        case 4: clientFlush()
        case 5: if rng.chance(0.3) { injectFault() }
        case 6: if rng.chance(0.3) { fate.crashKind = rng.chance(0.5) ? .kill : .powerLoss; fate.crashAt = fate.ops + 1 + rng.below(6); note("  (\(point)) crash planned at op \(fate.crashAt!)") }
        case 7:
            if rng.chance(0.2), let e = engine {
                note("  (\(point)) SIGTERM: flush, stop requested")
                if (try? e.flush()) != nil { model.flushed() }
                stopRequested = true
                e.requestStop()
            }
        default: break
        }
    }

    var stopRequested = false
    /// Scripted runs: called at every yield of background work instead of the seed's choice.
    public var onYield: ((String) -> Void)?
    /// Driven by a script (``create()``): background work runs without random interleaving.
    var scripted = false
    /// The end of a schedule: background work finishes without new faults or crashes.
    var finalPhase = false

    /// The set's second volume (nil: none now).
    var second: SecondVolume?
    /// A clear of `d20` was cut off by a crash: the next start finds out whether it happened.
    var clearingSecond = false
    /// A create of `d20` was cut off by a crash: what it would be, if the next start finds it.
    var creatingSecond: SecondVolume?
    /// Second volumes created so far (for device names).
    var created = 0
    /// Devices a mirror schedule's `replace` added so far (for device names).
    var replaced = 0
    /// Whether this schedule has a second volume (created at set-up, cleared and created again).
    var secondAtStart = false

    /// The dedicated log device made at set-up (nil: none).
    var logSim: SimDevice?
    /// Every dedicated log device the schedule made (at set-up and with `set --log-device`).
    var logDevices: [SimDevice] = []

    /// The volume's dedicated log device, if it has one and it is present.
    var logDevice: SimDevice? {
        record?.writeLog?.device.flatMap { db?.device($0) as? SimDevice }
    }

    func injectFault() {
        guard let rec = record, !fate.dead else { return }
        count("fault")
        let comps = simComponents(rec)
        var c = rng.below(comps.count)
        var target = db?.device(comps[c].activeDevice) as? SimDevice
        if let l = logDevice, rng.chance(0.2) { target = l; c = -1 }
        guard let d = target else { return }
        switch rng.below(5) {
        case 0: d.failWrites = true; note("fault: \(d.path) (column \(c)) refuses writes")
        case 1: d.failReads = true; note("fault: \(d.path) (column \(c)) fails reads")
        case 2:
            let at = UInt64(1 << 20) + UInt64(rng.below(Int(d.sizeBytes >> 9) - 2048)) * 512
            d.badReads.append(at..<at + UInt64(512 * (1 + rng.below(64))))
            note("fault: \(d.path) (column \(c)) bad sectors for reads at \(at)")
        case 3:
            let at = UInt64(1 << 20) + UInt64(rng.below(Int(d.sizeBytes >> 9) - 2048)) * 512
            d.badWrites.append(at..<at + UInt64(512 * (1 + rng.below(64))))
            note("fault: \(d.path) (column \(c)) bad sectors for writes at \(at)")
        default:
            d.gone = true
            note("fault: \(d.path) (column \(c)) disappears")
            // Half the time the kernel says so (a udev remove event, as `serve` receives it):
            // the column fails at once, Unavailable, before any I/O finds out.
            if c >= 0, rng.chance(0.5), let e = engine {
                count("removed-event")
                let failed = e.deviceRemoved(path: d.path, sameDevice: { $0 == d.path })
                note("  kernel: \(d.path) removed; columns \(failed) failed")
            }
        }
        faultedSinceStart.insert(ObjectIdentifier(d))
        // Two failures, or one before parity is initialised: data can be gone for real.
        // and one while a crash's dirty regions are not repaired yet (the write hole).
        if !isMirror && (faultyColumns() >= 2 || rec.resync?.kind == .initialize || engine?.parityRepairPending == true) { model.lossy = true }
    }

    func armCrash() {
        guard !fate.dead else { return }
        count("crash-armed")
        fate.crashKind = rng.chance(0.5) ? .kill : .powerLoss
        fate.crashAt = fate.ops + 1 + rng.below(30)
        note("crash (\(fate.crashKind.rawValue)) planned at device op \(fate.crashAt!) (now \(fate.ops))")
    }

    // MARK: crash, stop, restart

    /// Whether a crash now may legitimately lose data (the write hole with a column missing).
    func degradedNow() -> Bool {
        guard let rec = record else { return true }
        return faultyColumns() > 0 || rec.resync.map { $0.kind != .initialize } ?? false
            || rec.columns.contains { $0.state != .okay && $0.state != .initializing }
            || !(engine?.dirtyRegions.isEmpty ?? true) && faultyColumns() > 0
    }

    /// Whether a crash with a column missing may lose the data of torn lines legitimately:
    /// without a write log (the write hole), or where parity is not initialised yet.
    var crashMayTearLines: Bool {
        // A mirror has no lines to tear: a crash's dirty regions are copied from one side.
        if isMirror { return false }
        guard let rec = record else { return true }
        return rec.writeLog?.active != true || rec.writeLog?.repairPending == true || rec.resync?.kind == .initialize
    }

    func crashAndRestart(_ kind: CrashKind) {
        guard !fate.dead else { return }
        count(kind.rawValue)
        // Sometimes a column does not come back after the crash (the write hole's case).
        var missing: SimDevice? = nil
        if rng.chance(0.25), let rec = record, !simComponents(rec).isEmpty {
            let comps = simComponents(rec)
            missing = db?.device(comps[rng.below(comps.count)].activeDevice) as? SimDevice
        }
        note("crash: \(kind.rawValue)\(missing.map { ", then restart without \($0.path)" } ?? "")")
        fate.crashKind = kind
        fate.die()
        restart(after: kind, missing: missing)
    }

    /// Drops the process's state and applies the crash to the devices, then starts again.
    func restart(after kind: CrashKind, missing: SimDevice? = nil) {
        if fate.dead || kind == .powerLoss {
            if (degradedNow() || wasDegradedAtOpen) && crashMayTearLines { model.lossy = true }
            if kind == .powerLoss {
                for d in devices { d.crash(.powerLoss, random: &rng) }
                model.lostPower()
                second?.model.lostPower()
            }
        }
        scheduler.pending = []
        volumeEngine = nil
        db = nil
        fate.revive()
        stopRequested = false
        start(missing: missing)
    }

    var wasDegradedAtOpen = false
    /// Devices that had a fault since the set was last opened.
    var faultedSinceStart: Set<ObjectIdentifier> = []

    /// Starts the "server": opens the set over the present devices and the engine.
    func start(missing: SimDevice? = nil) {
        second?.engine = nil
        let present = devices.filter { $0 !== missing && !$0.gone }
        faultedSinceStart = Set(devices.filter(\.faulty).map(ObjectIdentifier.init))
        do {
            let db = try SetDatabase(devices: present)
            self.db = db
            // As `serve` does: raise the present devices' freshness stamps.
            if db.quorum.writable { try? db.beginServing() }
            try openEngine()
            reconcileSecondVolume()
        } catch {
            note("start: cannot open: \(error)")
            // Without quorum the volume is unavailable; the next heal brings it back.
            volumeEngine = nil
            if db == nil { return }
        }
        // Replayed (or nothing left to replay): failed writes are what reads see from now on.
        if engine?.writeLogReplay.withLock({ $0 }) != nil || record?.dirtyRegions.isEmpty != false { model.settle() }
        if let e = volumeEngine, Int(e.sizeBytes / 512) > model.blocks {
            // A grow's final commit reached the state database before the crash.
            model.grow(to: Int(e.sizeBytes / 512))
        }
        if let r = engine?.writeLogReplay.withLock({ $0 }) {
            count(r.complete ? "log-replay" : "log-replay-incomplete")
            if r.records > 0 { count("log-replay-records") }
            note("  write log: \(r.records) record(s) replayed\(r.complete ? "" : ", not all readable")")
        }
        if let rec = record, let m = rec.mirror {
            note("start: sides \(m.submirrors.map { "\($0.volume) \($0.state.rawValue)\($0.resyncRegions.map { " regions \($0)" } ?? "")\($0.resyncDoneBlocks.map { "@\($0)" } ?? "")" }) dirty \(rec.dirtyRegions)")
        } else if let rec = record {
            note("start: columns \(rec.columns.map { $0.state.rawValue }) dirty \(rec.dirtyRegions) resync \(rec.resync.map { "\($0.kind.rawValue)@\($0.doneBlocks)" } ?? "-") lost \(rec.lostBlocks?.count ?? 0)")
            // (A missing log device is not a missing column: all of the data is there.)
            wasDegradedAtOpen = faultyColumns() > 0 || (missing.map { m in !logDevices.contains { $0 === m } } ?? false)
            let logVouches = rec.writeLog?.active == true && rec.writeLog?.repairPending != true
            if !isMirror && wasDegradedAtOpen && ((!rec.dirtyRegions.isEmpty && !logVouches) || rec.resync?.kind == .initialize) { model.lossy = true }
        }
        if !scripted && rng.chance(0.5) { runBackground(all: true) }
    }

    func cleanStopAndRestart() {
        guard let e = volumeEngine, !fate.dead else { return }
        count("stop")
        note("stop: SIGTERM (flush, close)")
        stopEngine(e)
        restart(after: .kill)
    }

    /// What `serve` does on SIGTERM: flush, stop background work, close.
    func stopEngine(_ e: Volume) {
        if (try? e.flush()) != nil && flushCoversEverything() { model.flushed() }
        // Background work still queued runs now and sees the stop.
        (e as? RAID5Volume)?.requestStop()
        runBackground(all: true)
        if let s = second?.engine, !fate.dead {
            if (try? s.flush()) != nil { second?.model.flushed() }
            s.close()
        }
        e.close()
        db?.close()
    }

    /// A read-write command run without a server (`metactl set …` after a crash).
    func commandWithoutServer() {
        guard !fate.dead else { return }
        count("command-without-server")
        note("kill -9, then `metactl set d10 --resync-rate …` without a server")
        fate.crashKind = .kill
        fate.die()
        if (degradedNow() || wasDegradedAtOpen) && crashMayTearLines { model.lossy = true }
        scheduler.pending = []
        volumeEngine = nil
        db = nil
        fate.revive()
        if let db = try? SetDatabase(devices: devices.filter { !$0.gone }),
           let rec = db.config.volume(named: name) {
            self.db = db
            if rec.type == .mirror {
                // As SetManager opens a mirror without a server: no resync runs.
                try? openMirrorEngine(rec, serve: false)
                _ = try? db.commit { cfg in
                    guard let vi = cfg.volumeIndex(named: name) else { return }
                    cfg.volumes[vi].resyncRate = ResyncRate(minBytesPerSecond: UInt64.max / 4, maxBytesPerSecond: UInt64.max)
                }
                scheduler.pending = []
                volumeEngine?.close()
                volumeEngine = nil
            } else if let e = try? VolumeFactory.open(rec, context: context) as? RAID5Volume {
                if db.quorum.writable { try? e.commitUnavailableColumns() }
                _ = try? db.commit { cfg in
                    guard let vi = cfg.volumeIndex(named: name) else { return }
                    cfg.volumes[vi].resyncRate = ResyncRate(minBytesPerSecond: UInt64.max / 4, maxBytesPerSecond: UInt64.max)
                }
                scheduler.pending = []
                e.close()
            }
            db.close()
        }
        db = nil
        start()
    }

    func healAndRestart() {
        guard devices.contains(where: { $0.faulty }) else { clientRead(); return }
        count("heal")
        note("heal: faulty devices repaired (they come back), kill -9 and restart; hs enable")
        for d in devices { d.heal() }
        fate.crashKind = .kill
        fate.die()
        // Sometimes a device comes back under another name: the set finds it by its label.
        if rng.chance(0.3), let d = devices.randomElement(using: &rng) {
            d.rename(d.path + "-moved")
            note("  \(d.path): came back under that name")
        }
        restart(after: .kill)
        enableSpares()
    }

    func restartWithColumnMissing() {
        guard let rec = record, !fate.dead else { return }
        count("restart-missing")
        let comps = simComponents(rec)
        let c = rng.below(comps.count)
        var dev = db?.device(comps[c].activeDevice) as? SimDevice
        if let l = logDevice, rng.chance(0.2) { dev = l }
        note("kill -9, restart with \(dev === logDevice ? "the log device" : "column \(c)") (\(dev?.path ?? "?")) missing")
        fate.crashKind = .kill
        fate.die()
        restart(after: .kill, missing: dev)
    }

    /// `replace --enable` of an erred column, or `replace OLD NEW` (copy when OLD is readable),
    /// chosen by the seed.
    func replaceOrEnable() {
        guard let db, let rec = record, engine != nil, !fate.dead, db.quorum.writable,
              rec.resync == nil || rec.resync?.kind == .initialize else { clientWrite(); return }
        if rec.resync?.kind == .initialize { runBackground(all: true); return }
        let erred = rec.columns.indices.filter { rec.columns[$0].state != .okay }
        guard erred.count <= rec.type.parityCount else { clientRead(); return }
        let c = erred.first ?? rng.below(rec.columns.count)
        let col = rec.columns[c]
        if col.state == .lastErred { clientRead(); return }
        // The device of an Unavailable column comes back (the udev `add` that `serve` gets).
        if col.state == .unavailable, col.staleRegions != nil, col.hotSpare == nil, rng.chance(0.5) {
            returnDevice(column: c)
            return
        }
        // RAID-6 with two failed columns: both rebuilt in one pass, one time in two.
        if erred.count == 2, erred.allSatisfy({ rec.columns[$0].state == .maintenance || rec.columns[$0].state == .unavailable }),
           rng.chance(0.5) {
            replaceTwo(erred[0], erred[1])
            return
        }
        if col.state != .okay, db.device(col.activeDevice) != nil, rng.chance(0.5) {
            replace(column: c, .enable)
        } else {
            replace(column: c, .newDevice)
        }
    }

    /// The device of `Unavailable` column `c` comes back, as a udev `add` event that
    /// `serve` proves to be the same device: it is rebuilt over the regions written while
    /// it was away (`SetManager.blockDeviceEvent`). Returns whether the rebuild started.
    @discardableResult
    func returnDevice(column c: Int) -> Bool {
        guard let db, let rec = record, let e = engine, let d = db.device(rec.columns[c].device) as? SimDevice else { return false }
        count("device-returned")
        d.gone = false
        note("\(d.path) (column \(c)) comes back: rebuild the regions written while it was away \(rec.columns[c].staleRegions ?? [])")
        do {
            try db.apply(.deviceReturned(volume: name, column: c))
            try e.reload()
            e.startResync()
            return true
        } catch { note("  failed: \(error)"); return false }
    }

    /// How ``replace(column:_:)`` replaces.
    public enum ReplaceMode: Sendable { case enable, newDevice }

    /// `metactl replace d10 --enable DEV` (the device is repaired first) or `metactl replace
    /// d10 OLD NEW` onto a new simulated device (a copy when OLD is readable, else a
    /// regeneration). The resync is queued as background work. Returns whether it started.
    @discardableResult
    public func replace(column c: Int, _ mode: ReplaceMode) -> Bool {
        guard let db, let rec = record, let e = engine, db.config.volumeIndex(named: name) != nil else { return false }
        let col = rec.columns[c]
        if mode == .enable, let d = db.device(col.activeDevice) as? SimDevice {
            count("enable")
            d.failReads = false; d.failWrites = false
            note("replace d10 --enable \(d.path) (column \(c), \(col.state.rawValue))")
            do {
                try db.apply(.enableRegenerate(volume: name, column: c))
                try e.reload()
                e.startResync()
                return true
            } catch { note("  failed: \(error)"); return false }
        }
        let readable = col.state == .okay && db.device(col.activeDevice) != nil
        let new = SimDevice(path: "sim\(devices.count)", sizeBytes: devices[0].sizeBytes, sectorSize: sector, fate: fate)
        devices.append(new)
        count(readable ? "replace-copy" : "replace-regenerate")
        note("replace d10 column \(c) -> \(new.path) (\(readable ? "copy" : "regenerate"))")
        do {
            try db.commit { cfg in
                let r = try db.addDevice(new, role: .component, replicaCopies: 0, in: &cfg)
                try db.record(readable ? .copyBegun(volume: name, column: c, target: r.uuid)
                                       : .regenerationBegun(volume: name, column: c, target: r.uuid), in: &cfg)
            }
            try e.reload()
            e.startResync()
            return true
        } catch { note("  failed: \(error)"); return false }
    }

    /// `metactl replace d10 OLD NEW OLD2 NEW2` of a RAID-6: two failed columns rebuilt onto
    /// new devices in one pass.
    func replaceTwo(_ c: Int, _ c2: Int) {
        guard let db, let e = engine else { return }
        let news = (0..<2).map { i in SimDevice(path: "sim\(devices.count + i)", sizeBytes: devices[0].sizeBytes, sectorSize: sector, fate: fate) }
        devices.append(contentsOf: news)
        count("replace-two")
        note("replace d10 columns \(c) and \(c2) -> \(news[0].path), \(news[1].path) (regenerate both in one pass)")
        do {
            try db.commit { cfg in
                let a = try db.addDevice(news[0], role: .component, replicaCopies: 0, in: &cfg)
                let b = try db.addDevice(news[1], role: .component, replicaCopies: 0, in: &cfg)
                try db.record(.regenerationBegun(volume: name, column: c, target: a.uuid), in: &cfg)
                try db.record(.regenerationJoined(volume: name, column: c2, target: b.uuid, spare: false), in: &cfg)
            }
            try e.reload()
            e.startResync()
        } catch { note("  failed: \(error)") }
    }

    /// SVM's check_4_hs, as the server runs it (``SetManager/checkHotSpares(_:)``), with the
    /// same transitions (``SetModel``).
    func checkHotSpares() {
        if isMirror { return checkMirrorSpares() }
        guard let db, let e = engine, db.quorum.writable, let vol = record, vol.resync == nil,
              let poolName = vol.hotSparePool, let pool = db.config.pool(named: poolName),
              db.config.volumeIndex(named: name) != nil else { return }
        let erred = vol.columns.indices.filter { vol.columns[$0].state != .okay }
        guard !erred.isEmpty, erred.count <= vol.type.parityCount,
              erred.allSatisfy({ vol.columns[$0].state == .maintenance || vol.columns[$0].state == .unavailable })
        else { return }
        for c in erred where vol.columns[c].state == .maintenance {
            if let failedSpare = vol.columns[c].hotSpare {
                note("hot spare \(db.device(failedSpare)?.path ?? "?") failed: Broken")
                _ = try? db.apply(.spareFailed(volume: name, column: c, spare: failedSpare))
                try? e.reload()
            }
        }
        // One spare per failed column while the pool has them (RAID-6: two in one pass).
        var taken: [(column: Int, spare: UUID)] = []
        for c in erred {
            guard let spare = (db.config.pool(named: poolName) ?? pool).spares.first(where: { s in
                s.state == .available && !taken.contains { $0.spare == s.device } && db.device(s.device) != nil
                    && (db.config.device(s.device)?.dataBlocks ?? 0) >= vol.columnBlocks
            }) else { break }
            taken.append((c, spare.device))
        }
        guard let first = taken.first else { return }
        count(taken.count > 1 ? "hot-spare-two" : "hot-spare")
        for t in taken { note("hot spare \(db.device(t.spare)?.path ?? "?") takes over column \(t.column)") }
        do {
            try db.commit { cfg in
                try db.record(.spareTaken(volume: name, column: first.column, spare: first.spare), in: &cfg)
                for more in taken.dropFirst() {
                    try db.record(.regenerationJoined(volume: name, column: more.column, target: more.spare, spare: true), in: &cfg)
                }
            }
            try e.reload()
            e.startResync()
        } catch { note("  failed: \(error)") }
    }

    /// `metactl hs enable` of every Broken spare whose device works again.
    func enableSpares() {
        guard let db, db.quorum.writable else { return }
        _ = try? db.commit { cfg in
            for p in cfg.hotSparePools.indices {
                for s in cfg.hotSparePools[p].spares.indices where cfg.hotSparePools[p].spares[s].state == .broken
                    && (db.device(cfg.hotSparePools[p].spares[s].device) as? SimDevice)?.faulty == false {
                    cfg.hotSparePools[p].spares[s].state = .available
                }
            }
        }
    }

    /// `metactl grow d10 NEW` (RAID-5: one zeroed data column appended), or the resumption
    /// of an interrupted one, with the same steps as ``SetManager``: label the device and
    /// record the pending grow; zero its data area with flushed checkpoints; commit the new
    /// geometry; reload the engine.
    func grow() {
        if let rec = record, !rec.type.hasColumns { growRows(rec); return }
        guard let db, let e = engine, let rec = record, let vi = db.config.volumeIndex(named: name), !fate.dead,
              db.quorum.writable, rec.resync == nil, rec.columns.allSatisfy({ $0.state == .okay }),
              rec.columns.count < rec.originalColumnCount + 2 else { clientRead(); return }
        count("grow")
        var pending: PendingGrow
        if let p = rec.pendingGrow {
            guard p.devices.allSatisfy({ db.device($0) != nil }) else { clientRead(); return }
            pending = p
            note("grow d10: resume the interrupted grow (\(p.zeroedBlocks) of \(p.totalBlocks) blocks zeroed)")
        } else {
            let new = SimDevice(path: "sim\(devices.count)", sizeBytes: devices[0].sizeBytes, sectorSize: sector, fate: fate)
            devices.append(new)
            note("grow d10 \(new.path)")
            var created: PendingGrow?
            do {
                try db.commit { cfg in
                    let r = try db.addDevice(new, role: .unused, replicaCopies: 0, in: &cfg)
                    try db.record(.growBegun(volume: name, devices: [r.uuid]), in: &cfg)
                    created = cfg.volumes[vi].pendingGrow
                }
            } catch { note("  failed: \(error)"); return }
            pending = created!
        }
        let targets = pending.devices.compactMap { u -> VolumeGrowth.ZeroTarget? in
            guard let d = db.device(u), let r = db.config.device(u) else { return nil }
            return VolumeGrowth.ZeroTarget(device: d, dataStartBlock: r.dataStartBlock)
        }
        var done = pending.zeroedBlocks
        let step = options.interlaceBlocks * 8
        while done < pending.totalBlocks {
            let n = min(step, pending.totalBlocks - done)
            do {
                try VolumeGrowth.zero(targets, fromBlock: done, blocks: n)
                try VolumeGrowth.flush(targets)
                let checkpoint = done + n
                try db.apply(.growCheckpoint(volume: name, devices: pending.devices, zeroedBlocks: checkpoint))
                done = checkpoint
            } catch { note("  zeroing failed: \(error)"); return }
        }
        do {
            try db.apply(.growCommitted(volume: name, devices: pending.devices))
            try e.reloadGeometry()
            model.grow(to: Int(e.sizeBytes / 512))
            note("  grown: \(model.blocks) blocks")
        } catch { note("  commit failed: \(error)") }
    }

    /// `metactl grow d10 NEW…` of a concat or stripe, as ``SetManager`` does it: one
    /// transaction labels the new devices and appends them as a row (one device: a concat
    /// row; two or three: a stripe row); then the engine reloads its geometry. The new blocks
    /// read as what the new devices hold (zeroes).
    func growRows(_ rec: VolumeRecord) {
        guard let db, let e = volumeEngine, !fate.dead, db.quorum.writable, rec.rows.count < min(6, VolumeGrowth.maxRows),
              rec.allComponents.allSatisfy({ $0.state == .okay && db.device($0.activeDevice) != nil }) else { clientRead(); return }
        count("grow-row")
        let n = rng.chance(0.5) ? 1 : 2 + rng.below(2)
        let new = (0..<n).map { i in
            SimDevice(path: "sim\(devices.count + i)", sizeBytes: devices[0].sizeBytes, sectorSize: sector, fate: fate)
        }
        devices.append(contentsOf: new)
        let sectorBlocks = UInt64(sector / 512)
        note("grow d10 \(new.map(\.path).joined(separator: " ")) (\(n == 1 ? "concat" : "stripe") row)")
        do {
            try db.commit { cfg in
                var recs: [DeviceRecord] = []
                for d in new { recs.append(try db.addDevice(d, role: .component, replicaCopies: 0, in: &cfg)) }
                try db.record(.rowAppended(volume: name, devices: recs.map(\.uuid), interlaceBlocks: options.interlaceBlocks,
                                           sectorBlocks: sectorBlocks), in: &cfg)
            }
        } catch { note("  failed: \(error)"); return }
        do {
            try e.reloadGeometry()
            model.grow(to: Int(e.sizeBytes / 512))
            note("  grown: \(model.blocks) blocks")
        } catch { note("  reload failed: \(error)") }
    }

    // MARK: checks

    /// Where a volume block lives and what each column's copy of its line holds (debugging).
    func whereIs(_ b: Int) -> String {
        if isMirror { return mirrorWhereIs(b) }
        guard let e = engine, let rec = record, let db else { return "?" }
        let at = e.layout.locate(UInt64(b))
        var parts: [String] = ["block \(b): line \(at.line) column \(at.column) column-block \(at.columnBlock), parity column \(e.layout.parityColumn(line: at.line))"]
        var xor = [UInt8](repeating: 0, count: 512)
        var all = at.line < UInt64(rec.columnBlocks / rec.interlaceBlocks) && rec.columns.count == rec.originalColumnCount
        for (i, c) in rec.columns.enumerated() {
            guard let d = db.device(c.activeDevice) as? SimDevice, let dr = db.config.device(c.activeDevice) else {
                parts.append("col \(i): missing"); all = false; continue
            }
            let bytes = d.peek(count: 512, at: (dr.dataStartBlock + at.columnBlock) * 512)
            let id = bytes.withUnsafeBytes { SimModel.identify($0, block: b) }
            parts.append("col \(i) \(d.path) \(c.state.rawValue): \(id.map { "write \($0)" } ?? "not this block's data")")
            for k in 0..<512 { xor[k] ^= bytes[k] }
        }
        // Whether the line agrees with its parity at this offset (every column present).
        if all { parts.append(xor.allSatisfy { $0 == 0 } ? "parity agrees" : "PARITY DISAGREES") }
        return parts.joined(separator: "; ")
    }

    /// A volume reported Okay must read back entirely, without error and with legal data.
    func checkOkayReadsBack() {
        guard let rec = record, !fate.dead, volumeEngine != nil else { return }
        let state = rec.derivedState
        note("check: state \(state.rawValue), lost \(rec.lostBlocks?.count ?? 0) range(s)")
        let step = Int(options.interlaceBlocks) * 4
        var b = 0
        while b < model.blocks {
            let n = min(step, model.blocks - b)
            clientRead(b..<(b + n), mustSucceed: state == .okay && faultyColumns() == 0)
            b += n
        }
    }
}
