import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaLayout
import Synchronization

/// A RAID-5 or RAID-6 volume: data and rotating parity over N ≥ 3 columns (RAID-6: P and Q
/// over N ≥ 4; plus data-only columns appended by grow), degraded operation, and SVM's
/// error semantics. RAID-6 is the same engine with two parity units per line
/// (``RAID5Layout/parityCount``): reads and rebuilds recover up to two missing columns of a
/// line (``Syndrome``), and a column fails into `Last Erred` only when two others are erred.
///
/// Every request is split into lines. Writes hold the line's lock and pick, per line, the
/// cheapest of reconstruct-write (a full-line write needs no reads) and read-modify-write.
/// A device error on a column records the column as `Maintenance` (or `Last Erred` when
/// another column is already erred) in the state database *before* the request is
/// answered, then the line is redone in degraded mode. Reads that need data that no
/// longer exists fail with EIO; they never return wrong data.
public final class RAID5Volume: Volume, @unchecked Sendable {
    struct Column {
        var uuid: UUID
        var device: (any BlockDevice)?
        var startByte: UInt64
        var path: String
        var state: ComponentState
    }
    struct Runtime {
        var layout: RAID5Layout
        var columns: [Column]
        /// Lines below this have valid parity (nil: all of them).
        var parityValidBelow: UInt64?
        /// The column being rebuilt and how far (lines below are rebuilt).
        var resyncColumn: Int?
        /// RAID-6: further columns rebuilt in the same pass (same progress).
        var moreResync: [Int] = []
        var rebuiltBelow: UInt64 = 0
        /// A regeneration of a returned device: the dirty regions it is rebuilt over (its
        /// lines elsewhere are current, above `rebuiltBelow` too); nil: every line.
        var rebuildRegions: Set<UInt64>?
        /// Copy resync: the column being copied, its new device, and how far (foreground
        /// writes to lines below are mirrored to the target).
        var copy: CopyTarget?
        /// Dirty regions found at open whose parity is not yet recomputed.
        var unrepairedRegions: Set<UInt64> = []
        var linesPerRegion: UInt64 = 1
        /// Column blocks whose data is gone (``LostRange``).
        var lost: [LostRange] = []
        /// Columns missing at open whose state the state database does not record as erred
        /// yet (``commitUnavailableColumns()`` has not succeeded): no write may go around them,
        /// since the database would still call them Okay when they return.
        var unrecordedMissing: Set<Int> = []
        /// The write log, when the volume logs its writes.
        var log: WriteLog?
        /// Columns that may not hold write-log records although their state would let them:
        /// they became able to while writes could not be held off (a copy turned into a
        /// regeneration under the resync's line locks). Within an epoch the holders may only
        /// become fewer; these join at the next reload that holds writes off (the
        /// regeneration's end, which starts a new epoch).
        var logExcluded: Set<Int> = []

        /// Whether the volume has no redundancy left without column `c`: as many other
        /// columns as it has parity units are erred or being rebuilt (``ColumnHealth``).
        func othersErred(_ c: Int) -> Bool {
            columns.indices.filter { i in i != c && (columns[i].state.isErred || columns[i].state == .resyncing) }.count
                >= layout.parityCount
        }
        /// Whether the regeneration in progress rebuilds `line` (every line, unless it
        /// rebuilds a returned device's ``rebuildRegions`` only).
        func rebuilds(line: UInt64) -> Bool {
            rebuildRegions.map { $0.contains(line / linesPerRegion) } ?? true
        }
        /// The columns whose P and Q a line has: `[p]`, or `[p, q]` for RAID-6.
        func parityColumns(line: UInt64) -> ParityUnits {
            ParityUnits(layout.parityColumn(line: line), layout.qColumn(line: line))
        }
    }
    struct CopyTarget {
        var column: Int
        var uuid: UUID
        var device: any BlockDevice
        var startByte: UInt64
        var copiedBelow: UInt64
    }
    enum Avail { case ok, suspect, missing }

    let runtime: ReadMostly<Runtime>
    let locks = LineLocks()
    /// Foreground writes hold this shared; the end of a copy holds it exclusively, so that
    /// no write mirrors to the copy target (or fails to) while the target becomes the column.
    let writeGate = ReadMostly<Void>((), preferWriters: true)
    let drl: DirtyRegionLog
    let cleaner = TimerBox()
    /// Shares device flushes between concurrent writers (the write log's group commit).
    let flusher = FlushBatcher()
    /// The write log's replay at open: records replayed, and whether every record could be
    /// read and made durable (nil: nothing to replay).
    public let writeLogReplay = Mutex<(records: Int, complete: Bool)?>(nil)
    private let delegateRef = WeakEngineDelegate()
    /// Hears of committed column failures and of the end of resync work (held weakly).
    public var delegate: (any EngineDelegate)? {
        get { delegateRef.value }
        set { delegateRef.value = newValue }
    }
    /// Foreground requests seen (the resync yields to them above its minimum rate).
    let foregroundOps = Atomic<UInt64>(0)
    /// Bytes per column one resync step moves (lines are batched up to this); 8 MiB.
    public let resyncStepBytes = Atomic<UInt64>(8 << 20)
    /// Set when a mirrored foreground write to a copy target failed.
    let copyTargetFailed = Atomic<Bool>(false)
    /// Lines a failed write tore (``distrustParity(line:)``) while the regeneration in
    /// progress had not rebuilt them yet: the rebuilt column's data there is only in the torn
    /// parity, so the regeneration records it lost before it rebuilds them (seed 110076674).
    /// Outside the runtime, which every request copies.
    let tornBeforeRebuilt = Mutex<Set<UInt64>>([])
    /// Whether background work (a thread, or a body handed to the scheduler) is running.
    private let background = Mutex<Bool>(false)
    private let stopFlag = Atomic<Bool>(false)
    /// Progress of background work: lines done, total lines, bytes per second.
    public let progress = Mutex<(kind: ResyncKind, done: UInt64, total: UInt64, bytesPerSecond: Double)?>(nil)
    /// Progress of a running check: lines done, total lines, bytes per second per column.
    public let checkProgress = Mutex<(done: UInt64, total: UInt64, bytesPerSecond: Double)?>(nil)
    /// Set by ``stopCheck()``: the running check ends as `stopped` at its next step.
    let checkStopFlag = Atomic<Bool>(false)

    init(record: VolumeRecord, context: VolumeContext) throws(VolumeIOError) {
        var rt = try Self.makeRuntime(record: record, context: context)
        let log = DirtyRegionLog(interlaceBlocks: record.interlaceBlocks, committed: record.dirtyRegions,
                                 regionColumnBytes: context.dirtyRegionColumnBytes)
        rt.unrepairedRegions = Set(record.dirtyRegions)
        rt.linesPerRegion = log.linesPerRegion
        runtime = ReadMostly(rt)
        drl = log
        super.init(name: record.name, context: context)
        updateSectorSize(record)
        openWriteLog(record)
        startCleaner()
    }

    static func makeRuntime(record: VolumeRecord, context: VolumeContext) throws(VolumeIOError) -> Runtime {
        let config = context.store.config
        var cols: [Column] = []
        var unrecorded: Set<Int> = []
        for comp in record.columns {
            let uuid = comp.activeDevice
            guard let dev = config.device(uuid) else {
                throw VolumeIOError(volume: record.name, code: .io, operation: "open",
                                    detail: "column device \(uuid) is not in the set's device list")
            }
            let handle = context.devices(uuid)
            var state = comp.state
            if handle == nil && !state.isErred {
                state = .unavailable
                unrecorded.insert(cols.count)
            }
            cols.append(Column(uuid: uuid, device: handle, startByte: dev.dataStartBlock * Volume.blockSize,
                               path: dev.lastPath, state: state))
        }
        guard let layout = record.raid5Layout else {
            throw VolumeIOError(volume: record.name, code: .io, operation: "open", detail: "malformed RAID-5 record")
        }
        var rt = Runtime(layout: layout, columns: cols)
        rt.unrecordedMissing = unrecorded
        rt.linesPerRegion = DirtyRegionLog.linesPerRegion(interlaceBlocks: record.interlaceBlocks,
                                                          regionColumnBytes: context.dirtyRegionColumnBytes)
        rt.lost = record.lostBlocks ?? []
        if let r = record.resync {
            let lines = r.doneBlocks / max(1, record.interlaceBlocks)
            switch r.kind {
            case .initialize: rt.parityValidBelow = lines
            case .regenerate:
                rt.resyncColumn = r.column
                rt.moreResync = (r.more ?? []).map(\.column)
                rt.rebuiltBelow = lines
                rt.rebuildRegions = r.regions.map(Set.init)
            case .copy:
                if let c = r.column, let t = r.target, let d = context.devices(t), let rec = config.device(t) {
                    // Lines of dirty regions may have been torn on the source and the target
                    // differently (or repaired on the source only): copy them again.
                    let firstDirty = record.dirtyRegions.min().map { $0 * rt.linesPerRegion } ?? lines
                    rt.copy = CopyTarget(column: c, uuid: t, device: d, startByte: rec.dataStartBlock * Volume.blockSize,
                                         copiedBelow: min(lines, firstDirty))
                }
            case .parityRepair, .zeroing: break
            }
        }
        return rt
    }

    /// Records columns found missing at open as `Unavailable` (call once after open when
    /// the set is writable).
    ///
    /// A regeneration whose target is missing cannot go on: its record is dropped with it
    /// (the column is rebuilt from the start by the next `replace --enable`), so that no
    /// later start resumes writing a column that reads do not use. A copy whose target is
    /// missing is abandoned the same way (the column stays on its source).
    public func commitUnavailableColumns() throws {
        let (missing, copyTargetMissing) = runtime.withLock { rt in
            (rt.columns.indices.filter { rt.columns[$0].device == nil }, rt.copy == nil)
        }
        let rec = volumeRecord()
        let dropCopy = rec?.resync?.kind == .copy && copyTargetMissing
        guard !missing.isEmpty || dropCopy else { return }
        try context.store.apply(.columnsMissing(volume: name, columns: missing, dropCopy: dropCopy))
        try reload()
    }

    /// Re-reads the geometry after the configuration changed (grow, replace).
    ///
    /// Geometry only grows and column identities change only under the resync engine's
    /// control, so swapping the snapshot is enough, with one exception: a column that can
    /// hold write-log records again (enabled, returning, a spare or a replacement being
    /// rebuilt) would let a line's next record land on it, before the place its older
    /// records of this epoch lie in, and a replay that then lost that column would put an
    /// older record back over newer data (seed 106410169). So then the swap waits for the
    /// writes in flight, and the next record starts a new epoch first (every in-place write
    /// durable, every older record voided).
    public func reload() throws(VolumeIOError) { try reload(.holdWrites) }

    /// How a reload that lets a column hold write-log records again keeps the holders of
    /// an epoch from growing.
    enum HolderChange {
        /// Waits for the writes in flight, swaps, and starts a new epoch before the next record.
        case holdWrites
        /// The caller holds writes off already (the resync's end, after its checkpoint).
        case writesHeld
        /// Writes cannot be held off (the caller holds line locks): the new holders stay
        /// excluded until a reload that can.
        case exclude
    }

    func reload(_ change: HolderChange) throws(VolumeIOError) {
        guard let rec = volumeRecord() else {
            throw VolumeIOError(volume: name, code: .io, operation: "reload", detail: "volume no longer exists")
        }
        let fresh = try Self.makeRuntime(record: rec, context: context)
        func swap(excluding: Set<Int>) {
            runtime.withLock { rt in
                var n = fresh
                n.unrepairedRegions = rt.unrepairedRegions
                n.log = rt.log
                n.logExcluded = excluding
                rt = n
            }
        }
        let (hasLog, excluded) = runtime.read { ($0.log != nil, $0.logExcluded) }
        let grown = hasLog ? runtime.read { Self.logHoldersGained(from: $0, to: fresh) } : []
        if grown.isEmpty {
            swap(excluding: excluded)
        } else {
            switch change {
            case .exclude:
                swap(excluding: excluded.union(grown))
            case .writesHeld:
                swap(excluding: [])
                runtime.read { $0.log }?.abandon()
            case .holdWrites:
                writeGate.withLock { (_: inout Void) in
                    swap(excluding: [])
                    runtime.read { $0.log }?.abandon()
                }
            }
        }
        updateSectorSize(rec)
    }

    public override var sizeBytes: UInt64 { runtime.read { $0.layout.totalBlocks } * Volume.blockSize }

    override var devicesAreBuffered: Bool {
        runtime.read { rt in
            rt.columns.allSatisfy { $0.device?.isBuffered ?? true } && (rt.copy?.device.isBuffered ?? true)
        }
    }
    /// The layout in force.
    public var layout: RAID5Layout { runtime.read { $0.layout } }

    func avail(_ c: Int, line: UInt64, _ rt: Runtime) -> Avail {
        let col = rt.columns[c]
        if col.device == nil { return .missing }
        switch col.state {
        case .okay, .initializing: return .ok
        case .lastErred:
            return ColumnHealth.lastErredIsOrdinary(othersErred: rt.othersErred(c)) ? .ok : .suspect
        case .maintenance, .unavailable: return .missing
        case .resyncing:
            guard rt.resyncColumn == c || rt.moreResync.contains(c) else { return .missing }
            return line < rt.rebuiltBelow || !rt.rebuilds(line: line) ? .ok : .missing
        }
    }

    func parityValid(_ line: UInt64, _ rt: Runtime) -> Bool {
        if !rt.unrepairedRegions.isEmpty && rt.unrepairedRegions.contains(line / rt.linesPerRegion) { return false }
        guard let below = rt.parityValidBelow else { return true }
        return line < below
    }

    // MARK: failures

    /// The kernel reported that the device at `path` was removed (a udev `remove` event):
    /// every column on it fails at once, before any I/O finds out, as an I/O error would fail
    /// it, but `Unavailable` (its device is gone, not failing) where SVM's rule says
    /// `Maintenance`; `Last Erred` stays `Last Erred`. Returns the columns that failed.
    public func deviceRemoved(path: String, sameDevice: (String) -> Bool) -> [Int] {
        let hits = runtime.read { rt in
            rt.columns.indices.filter { c in rt.columns[c].device.map { sameDevice($0.path) } ?? false }
        }
        var failed: [Int] = []
        for c in hits {
            let before = runtime.read { $0.columns[c].state }
            let err = DeviceError(path: runtime.read { $0.columns[c].device?.path } ?? path, operation: .read,
                                  errno: ENODEV, detail: "the kernel removed the device")
            if (try? markFailed(c, err, removed: true)) != nil, runtime.read({ $0.columns[c].state }) != before {
                failed.append(c)
            }
        }
        return failed
    }

    /// Records that column `c` failed; commits before returning. Returns false if the state
    /// database could not record it. `removed`: the device is gone (`Unavailable` rather
    /// than `Maintenance`).
    func markFailed(_ c: Int, _ error: DeviceError, removed: Bool = false) throws(VolumeIOError) {
        // EINVAL is a refused request (a transfer not aligned to the device's logical
        // sector), not a failing device: the request fails, no column changes state.
        if error.errno == EINVAL { return }
        stateLock.lock()
        defer { stateLock.unlock() }
        let (cur, othersErred) = runtime.withLock { rt in (rt.columns[c].state, rt.othersErred(c)) }
        guard var new = ColumnHealth.stateAfterFailure(current: cur, othersErred: othersErred) else { return }
        if removed && new == .maintenance { new = .unavailable }
        // The column moved to another device (a hot spare, a replacement) since this I/O was
        // issued: the error is about a device the column no longer uses.
        if let dev = runtime.read({ $0.columns[c].device }), dev.path != error.path { return }
        context.logger.error("\(name): column \(c) (\(error.path)) failed: \(error); marking it \(new.rawValue)")
        do {
            try context.store.apply(.columnFailed(volume: name, column: c, state: new))
        } catch {
            throw VolumeIOError(volume: name, code: .io, operation: "state commit",
                                detail: "column \(c) failed and the state database could not record it: \(error)")
        }
        runtime.withLock { rt in
            rt.columns[c].state = new
            // As the model does (`ResyncCheckpoint.dropping`): a column rebuilt with it takes
            // its place.
            if cur == .resyncing && rt.resyncColumn == c {
                rt.resyncColumn = rt.moreResync.first
                rt.moreResync = Array(rt.moreResync.dropFirst())
            } else if cur == .resyncing {
                rt.moreResync.removeAll { $0 == c }
            }
        }
        if let d = delegate {
            let volume = name
            DispatchQueue.global().async { d.columnFailed(volume: volume, column: c) }
        }
    }

    // MARK: request splitting

    struct Piece {
        var column: Int
        /// Offset inside the line's interlace unit, in blocks.
        var unitOffset: UInt64
        var blocks: UInt64
        /// Byte offset into the caller's buffer.
        var bufferOffset: Int
    }

    private func split(_ block: UInt64, count: UInt64, _ layout: RAID5Layout) -> [(line: UInt64, pieces: [Piece])] {
        var out: [(UInt64, [Piece])] = []
        for e in layout.extents(block: block, count: count) {
            let p = Piece(column: e.column, unitOffset: e.unitOffset, blocks: e.blockCount,
                          bufferOffset: Int((e.logicalBlock - block) * Volume.blockSize))
            if let last = out.last, last.0 == e.line {
                out[out.count - 1].1.append(p)
            } else {
                out.append((e.line, [p]))
            }
        }
        // Appended columns are concatenated, so a line can appear twice (once for the
        // original part, once per appended column); merge them.
        var merged: [UInt64: [Piece]] = [:]
        var order: [UInt64] = []
        for (l, ps) in out {
            if merged[l] == nil { order.append(l) }
            merged[l, default: []].append(contentsOf: ps)
        }
        return order.map { ($0, merged[$0]!) }
    }

    func ioError(_ op: String, line: UInt64, _ detail: String, _ dev: DeviceError? = nil) -> VolumeIOError {
        VolumeIOError(volume: name, code: .io, operation: op, detail: "line \(line): \(detail)", underlying: dev)
    }

    // MARK: reads

    override func readBlocks(_ block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(VolumeIOError) {
        foregroundOps.add(1, ordering: .relaxed)
        let layout = runtime.read { $0.layout }
        let count = UInt64(buffer.count) / Volume.blockSize
        let at = layout.locate(block)
        if at.columnBlock % layout.interlaceBlocks + count <= layout.interlaceBlocks {
            // One piece of one column (most small reads): no splitting, no fan-out.
            try readPiece(line: at.line, Piece(column: at.column, unitOffset: at.columnBlock % layout.interlaceBlocks,
                                               blocks: count, bufferOffset: 0), buffer)
            return
        }
        let lines = split(block, count: count, layout)
        let errors = ErrorBox<VolumeIOError>()
        parallel(lines.count, bytes: buffer.count) { i in
            do throws(VolumeIOError) {
                try self.readLine(lines[i].line, lines[i].pieces, buffer)
            } catch { errors.add(i, error) }
        }
        if let e = errors.first { throw e }
    }

    func columnOffset(_ col: Column, line: UInt64, unitOffset: UInt64, layout: RAID5Layout) -> UInt64 {
        col.startByte + (line * layout.interlaceBlocks + unitOffset) * Volume.blockSize
    }

    /// Reads one piece: straight from its column when that column is healthy, else as
    /// ``readLine(_:_:_:)`` does (under the line lock, reconstructing from parity).
    private func readPiece(line: UInt64, _ p: Piece, _ buffer: UnsafeMutableRawBufferPointer) throws(VolumeIOError) {
        let target = runtime.read { rt -> (any BlockDevice, UInt64)? in
            guard avail(p.column, line: line, rt) == .ok, let dev = rt.columns[p.column].device,
                  !pieceIsLost(rt, line: line, column: p.column, unitOffset: p.unitOffset, blocks: p.blocks) else { return nil }
            return (dev, columnOffset(rt.columns[p.column], line: line, unitOffset: p.unitOffset, layout: rt.layout))
        }
        if let (dev, offset) = target {
            do throws(DeviceError) {
                try dev.read(into: buffer, at: offset)
                return
            } catch {
                try markFailed(p.column, error)
            }
        }
        locks.lock(line)
        defer { locks.unlock(line) }
        try readLineLocked(line, [p], buffer)
    }

    func readLine(_ line: UInt64, _ pieces: [Piece], _ buffer: UnsafeMutableRawBufferPointer) throws(VolumeIOError) {
        // Fast path: every piece on a healthy column, no lock needed.
        let rt0 = runtime.read { $0 }
        if pieces.allSatisfy({ avail($0.column, line: line, rt0) == .ok
            && !pieceIsLost(rt0, line: line, column: $0.column, unitOffset: $0.unitOffset, blocks: $0.blocks) }) {
            let failed = ErrorBox<DeviceError>()
            parallel(pieces.count, bytes: pieces.reduce(0) { $0 + Int($1.blocks * Volume.blockSize) }) { i in
                let p = pieces[i]
                let col = rt0.columns[p.column]
                do throws(DeviceError) {
                    try col.device!.read(
                        into: UnsafeMutableRawBufferPointer(start: buffer.baseAddress! + p.bufferOffset,
                                                           count: Int(p.blocks * Volume.blockSize)),
                        at: columnOffset(col, line: line, unitOffset: p.unitOffset, layout: rt0.layout))
                } catch { failed.add(p.column, error) }
            }
            let errs = failed.all
            if errs.isEmpty { return }
            for (c, e) in errs { try markFailed(c, e) }
        }
        locks.lock(line)
        defer { locks.unlock(line) }
        try readLineLocked(line, pieces, buffer)
    }

    private func readLineLocked(_ line: UInt64, _ pieces: [Piece], _ buffer: UnsafeMutableRawBufferPointer) throws(VolumeIOError) {
        for _ in 0...(runtime.read { $0.columns.count } + 1) {
            let rt = runtime.read { $0 }
            let failed = ErrorBox<DeviceError>()
            let fatal = ErrorBox<VolumeIOError>()
            // RAID-6 with two pieces of the line on missing columns: both rebuilt at once, from
            // one read of the other columns over the range they span.
            let away = pieces.filter { avail($0.column, line: line, rt) == .missing
                && !pieceIsLost(rt, line: line, column: $0.column, unitOffset: $0.unitOffset, blocks: $0.blocks) }
            let together = away.count > 1 && rt.layout.parityCount > 1
            if together {
                do throws(VolumeIOError) { try reconstructPieces(line: line, away, buffer, rt, failed: failed) } catch { fatal.add(0, error) }
            }
            for p in pieces {
                let dst = UnsafeMutableRawBufferPointer(start: buffer.baseAddress! + p.bufferOffset,
                                                        count: Int(p.blocks * Volume.blockSize))
                let a = avail(p.column, line: line, rt)
                if pieceIsLost(rt, line: line, column: p.column, unitOffset: p.unitOffset, blocks: p.blocks) {
                    fatal.add(0, lostError("read", line: line, column: p.column))
                    continue
                }
                if together && a == .missing { continue }
                if a != .missing {
                    let col = rt.columns[p.column]
                    do throws(DeviceError) {
                        try col.device!.read(into: dst, at: columnOffset(col, line: line, unitOffset: p.unitOffset, layout: rt.layout))
                    } catch {
                        if a == .suspect {
                            fatal.add(0, ioError("read", line: line, "column \(p.column) (\(col.path)) is Last Erred and unreadable", error))
                        } else { failed.add(p.column, error) }
                    }
                    continue
                }
                // Reconstruct from every other column.
                do throws(VolumeIOError) {
                    try reconstruct(line: line, column: p.column, unitOffset: p.unitOffset, blocks: p.blocks,
                                    into: dst, rt, failed: failed)
                } catch { fatal.add(0, error) }
            }
            if let f = failed.all.first {
                try markFailed(f.0, f.1)
                continue
            }
            if let e = fatal.first { throw e }
            return
        }
        throw ioError("read", line: line, "too many column failures")
    }

    /// Rebuilds `pieces` (of missing columns of `line`) into `buffer` from one read of the
    /// other columns over the unit range the pieces span.
    private func reconstructPieces(line: UInt64, _ pieces: [Piece], _ buffer: UnsafeMutableRawBufferPointer, _ rt: Runtime,
                                   failed: ErrorBox<DeviceError>) throws(VolumeIOError) {
        let lo = pieces.map(\.unitOffset).min()!, hi = pieces.map { $0.unitOffset + $0.blocks }.max()!
        let columns = Array(Set(pieces.map(\.column))).sorted()
        let n = Int((hi - lo) * Volume.blockSize)
        let outs = columns.map { _ in AlignedBuffer(uninitializedCount: n) }
        defer { withExtendedLifetime(outs) {} }  // pointers into it outlive its last use
        try reconstruct(line: line, columns: columns, unitOffset: lo, blocks: hi - lo, into: outs.map(\.mutableBytes), rt, failed: failed)
        if !failed.all.isEmpty { return }
        for p in pieces {
            let out = outs[columns.firstIndex(of: p.column)!]
            (buffer.baseAddress! + p.bufferOffset).copyMemory(from: out.base + Int((p.unitOffset - lo) * Volume.blockSize),
                                                             byteCount: Int(p.blocks * Volume.blockSize))
        }
    }

    /// Rebuilds column `column`'s blocks `[unitOffset, unitOffset+blocks)` of `line` from the
    /// other columns. Device errors of healthy columns go to `failed` (the caller records
    /// them and retries); anything that makes the data unrecoverable throws.
    func reconstruct(line: UInt64, column: Int, unitOffset: UInt64, blocks: UInt64,
                     into dst: UnsafeMutableRawBufferPointer, _ rt: Runtime, failed: ErrorBox<DeviceError>) throws(VolumeIOError) {
        try reconstruct(line: line, columns: [column], unitOffset: unitOffset, blocks: blocks, into: [dst], rt, failed: failed)
    }

    /// ``reconstruct(line:column:unitOffset:blocks:into:_:failed:)`` of several columns at
    /// once (RAID-6: up to two), over the same range, from one read of the others.
    func reconstruct(line: UInt64, columns want: [Int], unitOffset: UInt64, blocks: UInt64,
                     into dsts: [UnsafeMutableRawBufferPointer], _ rt: Runtime, failed: ErrorBox<DeviceError>) throws(VolumeIOError) {
        let column = want[0]
        guard parityValid(line, rt) else {
            throw ioError("read", line: line, "column \(column) is unavailable and the line's parity is not initialised yet")
        }
        var others = (0..<rt.columns.count).filter { !want.contains($0) }
        let alsoMissing = others.filter { avail($0, line: line, rt) == .missing }
        if alsoMissing.count + want.count > rt.layout.parityCount {
            let all = (want + alsoMissing).map(String.init)
            let names = all.dropLast().joined(separator: ", ") + " and " + all.last!
            throw ioError("read", line: line, "columns \(names) are unavailable: data lost")
        }
        others.removeAll { alsoMissing.contains($0) }
        // RAID-6 with only this column away: P and the other data units are enough (no Q read).
        if rt.layout.parityCount == 2 && alsoMissing.isEmpty && want.count == 1, let q = rt.layout.qColumn(line: line), column != q {
            others.removeAll { $0 == q }
        }
        let n = Int(blocks * Volume.blockSize)
        let bufs = others.map { _ in AlignedBuffer(count: n) }
        defer { withExtendedLifetime(bufs) {} }  // pointers into it outlive its last use
        let fatal = ErrorBox<VolumeIOError>()
        parallel(others.count, bytes: others.count * n) { i in
            let d = others[i]
            let col = rt.columns[d]
            do throws(DeviceError) {
                try col.device!.read(into: bufs[i].mutableBytes,
                                     at: columnOffset(col, line: line, unitOffset: unitOffset, layout: rt.layout))
            } catch {
                if avail(d, line: line, rt) == .suspect {
                    fatal.add(i, ioError("read", line: line, "column \(d) (\(col.path)) is Last Erred and unreadable", error))
                } else { failed.add(d, error) }
            }
        }
        if let e = fatal.first { throw e }
        if !failed.all.isEmpty { return }
        let outs = want.map { _ in AlignedBuffer(count: n) }
        defer { withExtendedLifetime(outs) {} }  // pointers into it outlive its last use
        if rt.layout.parityCount == 1 {
            Parity.xor(sources: bufs.map { UnsafeRawPointer($0.base) }, into: outs[0].base, count: n)
        } else {
            guard Syndrome.recover(rt.layout, line: line, have: others.indices.map { (others[$0], UnsafeRawPointer(bufs[$0].base)) },
                                   want: want.indices.map { (want[$0], outs[$0].base) }, count: n) else {
                throw ioError("read", line: line, "columns \(want) cannot be rebuilt from the columns left")
            }
        }
        for (i, dst) in dsts.enumerated() { dst.copyMemory(from: outs[i].bytes) }
    }

    // MARK: writes

    override func writeBlocks(_ block: UInt64, from buffer: UnsafeRawBufferPointer) throws(VolumeIOError) {
        foregroundOps.add(1, ordering: .relaxed)
        writeGate.lockShared()
        defer { writeGate.unlockShared() }
        let layout = runtime.read { $0.layout }
        let count = UInt64(buffer.count) / Volume.blockSize
        let at = layout.locate(block)
        if at.columnBlock % layout.interlaceBlocks + count <= layout.interlaceBlocks {
            // One piece of one column (most small writes): no splitting, no fan-out over lines.
            let piece = Piece(column: at.column, unitOffset: at.columnBlock % layout.interlaceBlocks,
                              blocks: count, bufferOffset: 0)
            let region = try beginWrite(line: at.line)
            defer { drl.end(region: region) }
            locks.lock(at.line)
            defer { locks.unlock(at.line) }
            try writeLineLocked(at.line, [piece], buffer)
            return
        }
        let lines = split(block, count: count, layout)
        let regions = try beginWrite(lines: lines.map(\.line))
        defer { drl.end(regions) }
        if try fullLinesWrite(block, buffer, layout) { return }
        let errors = ErrorBox<VolumeIOError>()
        parallel(lines.count, bytes: buffer.count) { i in
            do throws(VolumeIOError) {
                try self.locks.withLock(lines[i].line) { () throws(VolumeIOError) in
                    try self.writeLineLocked(lines[i].line, lines[i].pieces, buffer)
                }
            } catch { errors.add(i, error) }
        }
        if let e = errors.first { throw e }
    }

    typealias Strategy = LineWriteStrategy

    /// Writes one line's pieces; the caller holds the line lock.
    func writeLineLocked(_ line: UInt64, _ pieces: [Piece], _ buffer: UnsafeRawBufferPointer) throws(VolumeIOError) {
        /// Set once any attempt issued column writes: if the request then fails, the line's
        /// data and parity may disagree, and its parity is no longer trusted.
        var wrote = false
        do throws(VolumeIOError) {
            try writeLineAttempts(line, pieces, buffer, wrote: &wrote)
        } catch {
            if wrote { distrustParity(line: line) }
            throw error
        }
    }

    private func writeLineAttempts(_ line: UInt64, _ pieces: [Piece], _ buffer: UnsafeRawBufferPointer,
                                   wrote: inout Bool) throws(VolumeIOError) {
        // What the first attempt that reached its column writes meant to write: a retry
        // writes the same (the attempt's writes that landed changed what a new computation
        // would read, parity above all).
        var image: LineImage? = nil
        for _ in 0...(runtime.read { $0.columns.count } + 1) {
            let rt = runtime.read { $0 }
            let failed = ErrorBox<DeviceError>()
            try writeAttempt(line, pieces, buffer, rt, failed, wrote: &wrote, image: &image)
            if let f = failed.all.first {
                try markFailed(f.0, f.1)
                continue
            }
            try clearLost(line: line, pieces)
            return
        }
        throw ioError("write", line: line, "too many column failures")
    }

    /// The line's situation for this write, read from the runtime, and the strategy
    /// ``LineWriteStrategy/choose(_:)`` picks for it (the rules live there, pure and tested).
    private func chooseStrategy(_ line: UInt64, _ pieces: [Piece], _ rt: Runtime, lo: UInt64, hi: UInt64) throws(VolumeIOError) -> Strategy {
        // Masks counted in place, no sets: this runs for every write.
        let p = rt.layout.parityColumn(line: line)
        let q = rt.layout.qColumn(line: line)
        var missing: UInt64 = 0, lastErred: UInt64 = 0, written: UInt64 = 0, covered: UInt64 = 0
        for c in 0..<rt.columns.count {
            if avail(c, line: line, rt) == .missing { missing |= 1 << UInt64(c) }
            if rt.columns[c].state == .lastErred { lastErred |= 1 << UInt64(c) }
        }
        for piece in pieces {
            written |= 1 << UInt64(piece.column)
            if piece.unitOffset <= lo && piece.unitOffset + piece.blocks >= hi { covered |= 1 << UInt64(piece.column) }
        }
        let situation = LineWriteStrategy.Situation(
            columnCount: rt.columns.count, p: p, q: q, missing: missing, lastErred: lastErred, written: written,
            covered: covered, pieces: pieces.count, parityTrusted: parityValid(line, rt),
            unrecordedMissing: rt.unrecordedMissing.first, logged: rt.log != nil,
            copyTakesParity: rt.copy.map { ($0.column == p || $0.column == q) && line < $0.copiedBelow } ?? false)
        do throws(LineWriteStrategy.Refusal) {
            return try LineWriteStrategy.choose(situation)
        } catch {
            switch error {
            case .unrecordedMissing(let c):
                throw ioError("write", line: line, "column \(c) is missing and the state database could not record it: writes are refused until it can")
            case .lastErredAway(let c):
                throw ioError("write", line: line, "column \(c) is Last Erred and unavailable: the write cannot be recorded on it")
            case .unrecoverable(let c):
                throw ioError("write", line: line, "column \(c) is unavailable and its data cannot be kept in parity")
            case .parityNeeded(let byCopy):
                throw ioError("write", line: line, "a column is unavailable, the line's parity is not trusted, and \(byCopy ? "a copy" : "the write log") needs its parity: the write cannot be kept consistent")
            }
        }
    }

    /// The parity a write attempt computed for its line (empty: it wrote none; one entry for
    /// RAID-5, P and Q or only the one it could update for RAID-6), kept for the attempts
    /// after it.
    struct LineImage {
        var columns: ParityUnits
        var first: AlignedBuffer?, second: AlignedBuffer?
        func bytes(_ i: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer((i == 0 ? first : second)!.mutableBytes) }
    }

    private func writeAttempt(_ line: UInt64, _ pieces: [Piece], _ buffer: UnsafeRawBufferPointer, _ rt: Runtime,
                              _ failed: ErrorBox<DeviceError>, wrote: inout Bool, image: inout LineImage?) throws(VolumeIOError) {
        let bs = Int(Volume.blockSize)
        var lo = UInt64.max, hi: UInt64 = 0
        for piece in pieces {
            lo = min(lo, piece.unitOffset)
            hi = max(hi, piece.unitOffset + piece.blocks)
        }
        let wBytes = Int(hi - lo) * bs
        let pcs = rt.parityColumns(line: line)
        let strategy = image == nil ? try chooseStrategy(line, pieces, rt, lo: lo, hi: hi) : .dataOnly
        let fatal = ErrorBox<VolumeIOError>()

        func off(_ c: Int, _ unitOffset: UInt64) -> UInt64 {
            columnOffset(rt.columns[c], line: line, unitOffset: unitOffset, layout: rt.layout)
        }
        func newData(_ piece: Piece) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(start: buffer.baseAddress! + piece.bufferOffset, count: Int(piece.blocks) * bs)
        }
        /// Reads `count` bytes of column `c` at unit offset `u` into `dst`; errors recorded.
        func readCol(_ c: Int, _ u: UInt64, _ dst: UnsafeMutableRawBufferPointer) {
            guard avail(c, line: line, rt) != .missing, let dev = rt.columns[c].device else { return }
            do throws(DeviceError) { try dev.read(into: dst, at: off(c, u)) } catch {
                if avail(c, line: line, rt) == .suspect {
                    fatal.add(c, ioError("write", line: line, "column \(c) is Last Erred and unreadable", error))
                } else { failed.add(c, error) }
            }
        }
        func writeCol(_ c: Int, _ u: UInt64, _ src: UnsafeRawBufferPointer) {
            // The copy target takes every write of the copied column below the copy point,
            // even once the source has failed: the copy then becomes a regeneration that
            // trusts the target there.
            if let cp = rt.copy, cp.column == c, line < cp.copiedBelow {
                let at = cp.startByte + (line * rt.layout.interlaceBlocks + u) * Volume.blockSize
                do throws(DeviceError) { try cp.device.write(src, at: at) } catch {
                    context.logger.error("\(name): copy target \(cp.device.path) failed: \(error)")
                    copyTargetFailed.store(true, ordering: .relaxed)
                }
            }
            guard avail(c, line: line, rt) != .missing, let dev = rt.columns[c].device else { return }
            do throws(DeviceError) { try dev.write(src, at: off(c, u)) } catch {
                if avail(c, line: line, rt) == .suspect {
                    fatal.add(c, ioError("write", line: line, "column \(c) is Last Erred and unwritable", error))
                } else { failed.add(c, error) }
            }
        }
        /// Writes every piece's new data and the parity units given (over `[lo, hi)`), in
        /// parallel, once the write log (when the volume has one) holds all of it.
        /// `parity`: the parity columns written, `bytes(i)` the range `[lo, hi)` of the i-th.
        func commitWrites(parity: ParityUnits, _ bytes: (Int) -> UnsafeRawBufferPointer) throws(VolumeIOError) {
            if image == nil {
                func copy(_ i: Int) -> AlignedBuffer? {
                    guard i < parity.count else { return nil }
                    let b = AlignedBuffer(uninitializedCount: bytes(i).count)
                    b.mutableBytes.copyMemory(from: bytes(i))
                    return b
                }
                image = LineImage(columns: parity, first: copy(0), second: copy(1))
            }
            var segments = pieces.map { LogRecord.Segment(column: $0.column, columnBlock: line * rt.layout.interlaceBlocks + $0.unitOffset, blocks: $0.blocks) }
            for c in parity {
                segments.append(LogRecord.Segment(column: c, columnBlock: line * rt.layout.interlaceBlocks + lo, blocks: hi - lo))
            }
            try logged(line: line, segments, payload: { i in i < pieces.count ? newData(pieces[i]) : bytes(i - pieces.count) }, rt, failed: failed) {
                wrote = true
                let n = pieces.count + parity.count
                parallel(n, bytes: n * wBytes) { i in
                    if i < pieces.count {
                        writeCol(pieces[i].column, pieces[i].unitOffset, newData(pieces[i]))
                    } else {
                        writeCol(parity[i - pieces.count], lo, bytes(i - pieces.count))
                    }
                }
            }
        }

        if let img = image {
            // A retry: the first attempt's data and parity, on the columns that can take them.
            let parityGone = img.columns.allSatisfy { avail($0, line: line, rt) == .missing }
            let missingNow = (0..<rt.columns.count).filter { avail($0, line: line, rt) == .missing }
            for c in pieces.map(\.column) + Array(img.columns) where missingNow.contains(c) {
                if rt.columns[c].state == .lastErred {
                    throw ioError("write", line: line, "column \(c) is Last Erred and unavailable: the write cannot be recorded on it")
                }
                if !pcs.contains(c) && (parityGone || missingNow.count > rt.layout.parityCount) {
                    throw ioError("write", line: line, "column \(c) is unavailable and its data cannot be kept in parity")
                }
            }
            try commitWrites(parity: img.columns, img.bytes)
            if let e = fatal.first { throw e }
            return
        }

        switch strategy {
        case .dataOnly:
            try commitWrites(parity: ParityUnits(), { _ in UnsafeRawBufferPointer(start: nil, count: 0) })

        case .readModifyWrite:
            // One scratch buffer: the old parity units [lo, hi) (those present), then each
            // piece's old data. Not zeroed: the reads fill all of it before it is used (a
            // failed read ends here).
            let present = pcs.filtered { avail($0, line: line, rt) != .missing }
            var dataBytes = 0
            for piece in pieces { dataBytes += Int(piece.blocks) * bs }
            let parityBytes = wBytes * present.count
            let scratch = AlignedBuffer(uninitializedCount: parityBytes + dataBytes)
            defer { withExtendedLifetime(scratch) {} }  // pointers into it outlive its last use
            func oldParity(_ j: Int) -> UnsafeMutableRawBufferPointer {
                UnsafeMutableRawBufferPointer(start: scratch.base + j * wBytes, count: wBytes)
            }
            func old(_ i: Int) -> UnsafeMutableRawBufferPointer {
                var at = parityBytes
                for k in 0..<i { at += Int(pieces[k].blocks) * bs }
                return UnsafeMutableRawBufferPointer(start: scratch.base + at, count: Int(pieces[i].blocks) * bs)
            }
            parallel(pieces.count + present.count, bytes: parityBytes + dataBytes) { i in
                if i < pieces.count { readCol(pieces[i].column, pieces[i].unitOffset, old(i)) }
                else { readCol(present[i - pieces.count], lo, oldParity(i - pieces.count)) }
            }
            if !failed.all.isEmpty { return }
            if let e = fatal.first { throw e }
            // new P = old P ^ old data ^ new data, piece by piece, in place; RAID-6's Q takes
            // g^k times the same change.
            let q = rt.layout.qColumn(line: line)
            for (i, piece) in pieces.enumerated() {
                let n = Int(piece.blocks) * bs
                let at = Int(piece.unitOffset - lo) * bs
                if q == nil {
                    Parity.xorInPlace(scratch.base + at, UnsafeRawPointer(old(i).baseAddress!), newData(piece).baseAddress!, count: n)
                    continue
                }
                // The change, in the old data's place.
                Parity.xorInPlace(old(i).baseAddress!, newData(piece).baseAddress!, count: n)
                for (j, c) in present.enumerated() {
                    let dst = oldParity(j).baseAddress! + at
                    if c == q {
                        let k = rt.layout.syndromeIndex(column: piece.column, line: line)!
                        Syndrome.multiplyAdd(Syndrome.power(k), UnsafeRawPointer(old(i).baseAddress!), into: dst, count: n)
                    } else {
                        Parity.xorInPlace(dst, UnsafeRawPointer(old(i).baseAddress!), count: n)
                    }
                }
            }
            try commitWrites(parity: present) { UnsafeRawBufferPointer(oldParity($0)) }

        case .reconstructWrite, .degradedReconstruct:
            // Every data unit's new contents over [lo, hi): read what the write does not cover,
            // rebuild missing units it does not cover from the others and the parity, overlay
            // the new data, and compute every parity unit from the result.
            let dataCols = rt.layout.dataColumnsInUnitOrder(line: line)
            let contents = dataCols.map { _ in AlignedBuffer(count: wBytes) }
            defer { withExtendedLifetime(contents) {} }  // pointers into it outlive its last use
            let covers: (Int) -> Bool = { c in
                pieces.contains { $0.column == c && $0.unitOffset <= lo && $0.unitOffset + $0.blocks >= hi }
            }
            let missingData = dataCols.filter { avail($0, line: line, rt) == .missing }
            let rebuild = missingData.filter { !covers($0) }
            // Read what is needed: columns not fully overwritten (all present columns when a
            // missing column's old data must be rebuilt), and parity for that rebuild.
            var reads: [(Int, AlignedBuffer)] = []
            for (i, c) in dataCols.enumerated() where !missingData.contains(c) && (!rebuild.isEmpty || !covers(c)) {
                reads.append((c, contents[i]))
            }
            let oldParity = rebuild.isEmpty ? [] : pcs.filter { avail($0, line: line, rt) != .missing }.map { ($0, AlignedBuffer(count: wBytes)) }
            defer { withExtendedLifetime(oldParity) {} }  // pointers into it outlive its last use
            reads += oldParity
            parallel(reads.count, bytes: reads.count * wBytes) { i in readCol(reads[i].0, lo, reads[i].1.mutableBytes) }
            if !failed.all.isEmpty { return }
            if let e = fatal.first { throw e }
            if !rebuild.isEmpty {
                let have = reads.map { (column: $0.0, bytes: UnsafeRawPointer($0.1.base)) }
                let want = rebuild.map { (column: $0, bytes: contents[dataCols.firstIndex(of: $0)!].base) }
                guard Syndrome.recover(rt.layout, line: line, have: have, want: want, count: wBytes) else {
                    throw ioError("write", line: line, "columns \(rebuild) are unavailable and cannot be rebuilt from the others")
                }
            }
            for piece in pieces {
                guard let i = dataCols.firstIndex(of: piece.column) else { continue }
                (contents[i].base + Int(piece.unitOffset - lo) * bs).copyMemory(from: newData(piece).baseAddress!,
                                                                                byteCount: Int(piece.blocks) * bs)
            }
            let parity = pcs.map { _ in AlignedBuffer(count: wBytes) }
            defer { withExtendedLifetime(parity) {} }  // pointers into it outlive its last use
            Syndrome.generate(data: contents.map { UnsafeRawPointer($0.base) }, p: parity[0].base,
                              q: parity.count > 1 ? parity[1].base : nil, count: wBytes)
            try commitWrites(parity: pcs) { parity[$0].bytes }
        }
        if let e = fatal.first { throw e }
    }

    // MARK: flush

    public override func flush() throws(VolumeIOError) { try flush(unrecordedMissingAllowed: false) }

    /// ``flush()``; with `unrecordedMissingAllowed`, a column missing whose absence is not
    /// recorded yet does not fail it (the write log's replay, which runs before the start
    /// records it, and whose start stops all I/O when it cannot).
    func flush(unrecordedMissingAllowed: Bool) throws(VolumeIOError) {
        let rt = runtime.read { $0 }
        let failed = ErrorBox<DeviceError>()
        parallel(rt.columns.count) { c in
            guard self.avail(c, line: 0, rt) != .missing || rt.columns[c].state == .resyncing,
                  let d = rt.columns[c].device else { return }
            do throws(DeviceError) { try d.flush() } catch { failed.add(c, error) }
        }
        if let cp = rt.copy {
            // The copy target must keep every acknowledged write: a flush it fails abandons the copy.
            do throws(DeviceError) { try cp.device.flush() } catch {
                context.logger.error("\(name): copy target \(cp.device.path) failed to flush: \(error)")
                copyTargetFailed.store(true, ordering: .relaxed)
            }
        }
        for (c, e) in failed.all { try markFailed(c, e) }
        let after = runtime.read { $0 }
        let erred = after.columns.filter { $0.state.isErred }.count
        if erred > after.layout.parityCount {
            throw VolumeIOError(volume: name, code: .io, operation: "flush",
                                detail: "more than \(after.layout.parityCount == 1 ? "one column has" : "\(after.layout.parityCount) columns have") failed")
        }
        // A Last Erred column is the only source of its data: if it could not make its
        // writes durable (it failed to flush, or it is not there to be flushed), neither
        // could the volume.
        if let (c, e) = failed.all.first(where: { after.columns[$0.0].state == .lastErred }) {
            throw VolumeIOError(volume: name, code: .io, operation: "flush",
                                detail: "column \(c) is Last Erred and could not flush", underlying: e)
        }
        // A column missing whose absence the state database could not record is still
        // trusted there: when it returns it is read as current, so writes it took before it
        // went (in its cache, perhaps) must be durable on it, and cannot be made so now.
        if !unrecordedMissingAllowed, let c = after.unrecordedMissing.sorted().first(where: { after.columns[$0].device == nil }) {
            throw VolumeIOError(volume: name, code: .io, operation: "flush",
                                detail: "column \(c) is missing and the state database could not record it: its writes cannot be made durable")
        }
        if let c = after.columns.indices.first(where: { after.columns[$0].state == .lastErred && after.columns[$0].device == nil }) {
            throw VolumeIOError(volume: name, code: .io, operation: "flush",
                                detail: "column \(c) is Last Erred and missing: its data cannot be made durable")
        }
    }

    // MARK: background work

    public override func close() {
        stopFlag.store(true, ordering: .relaxed)
        // Under a scheduler, background work runs only when the scheduler runs it (and then
        // sees the stop): there is no thread to wait for.
        while context.scheduler == nil && background.withLock({ $0 }) { usleep(10_000) }
        stopCleaner()
        cleanDirtyRegions(all: true)
    }

    var stopping: Bool { stopFlag.load(ordering: .relaxed) }

    /// Asks background work to stop at its next step (the first thing ``close()`` does).
    public func requestStop() { stopFlag.store(true, ordering: .relaxed) }

    /// Starts parity initialisation in the background if the volume record says it is due.
    public func startBackgroundWork() {
        guard let rec = volumeRecord() else { return }
        let initFrom = rec.resync?.kind == .initialize ? rec.resync!.doneBlocks / max(1, rec.interlaceBlocks) : nil
        guard initFrom != nil || parityRepairPending else { return }
        startThread("init \(name)") {
            self.repairDirtyRegions()
            if let initFrom { self.runInitialization(from: initFrom) }
        }
    }

    func startThread(_ label: String, _ body: @escaping @Sendable () -> Void) {
        let started = background.withLock { running -> Bool in
            if running { return false }
            running = true
            return true
        }
        guard started else { return }
        let work: @Sendable () -> Void = { [self] in
            body()
            self.background.withLock { $0 = false }
        }
        if let scheduler = context.scheduler {
            scheduler.startBackground(label, work)
            return
        }
        let thread = Thread(block: work)
        thread.name = label
        thread.start()
    }

    /// Whether background work is running.
    public var backgroundRunning: Bool { background.withLock { $0 } }

    /// Waits until background work has finished.
    public func waitForBackgroundWork() {
        while backgroundRunning { usleep(20_000) }
    }

    /// Computes parity line by line from `start`, checkpointing to the state database.
    func runInitialization(from start: UInt64) {
        let layout = runtime.read { $0.layout }
        let total = layout.lineCount
        let bytesPerLine = Double(layout.interlaceBlocks * Volume.blockSize * UInt64(layout.dataColumnsPerLine))
        var line = start
        var lastCheckpoint = Date()
        let began = Date()
        progress.withLock { $0 = (.initialize, line, total, 0) }
        context.logger.info("\(name): initialising parity from line \(line) of \(total)")
        while line < total && !stopping {
            let ok: Bool = locks.withLock(line) { initializeLine(line) }
            if !ok {
                context.logger.error("\(name): parity initialisation stopped at line \(line): a column is unavailable")
                break
            }
            line += 1
            runtime.withLock { $0.parityValidBelow = line }
            let elapsed = Date().timeIntervalSince(began)
            progress.withLock { $0 = (.initialize, line, total, elapsed > 0 ? Double(line - start) * bytesPerLine / elapsed : 0) }
            if let scheduler = context.scheduler { scheduler.yield("initialize") }
            let due = context.scheduler.map { $0.shouldCheckpoint() } ?? (Date().timeIntervalSince(lastCheckpoint) > 2)
            if due || line == total {
                lastCheckpoint = Date()
                let done = line
                let finished = done == total
                // The checkpoint vouches for the parity written below it: make it durable first.
                if (try? flush()) == nil {
                    context.logger.error("\(name): could not flush parity; no initialisation checkpoint at line \(line)")
                    continue
                }
                do {
                    try context.store.apply(.initializeCheckpoint(volume: name, doneBlocks: done * layout.interlaceBlocks, finished: finished))
                } catch {
                    context.logger.error("\(name): could not checkpoint initialisation: \(error)")
                }
            }
        }
        if line < total && line > start && (try? flush()) != nil {
            let done = line
            _ = try? context.store.apply(.initializeCheckpoint(volume: name, doneBlocks: done * layout.interlaceBlocks, finished: false))
        }
        if line == total {
            runtime.withLock { rt in
                rt.parityValidBelow = nil
                for c in rt.columns.indices where rt.columns[c].state == .initializing { rt.columns[c].state = .okay }
            }
            context.logger.info("\(name): parity initialised")
        }
        progress.withLock { $0 = nil }
    }

    /// Recomputes one line's parity (P, and Q for RAID-6) from its data columns. Caller holds
    /// the line lock.
    func initializeLine(_ line: UInt64) -> Bool {
        let rt = runtime.read { $0 }
        let pcs = rt.parityColumns(line: line)
        let n = Int(rt.layout.interlaceBlocks * Volume.blockSize)
        let dataCols = rt.layout.dataColumnsInUnitOrder(line: line)
        if (dataCols + Array(pcs)).contains(where: { avail($0, line: line, rt) == .missing }) { return false }
        let bufs = dataCols.map { _ in AlignedBuffer(count: n) }
        defer { withExtendedLifetime(bufs) {} }  // pointers into it outlive its last use
        let failed = ErrorBox<DeviceError>()
        parallel(dataCols.count) { i in
            let col = rt.columns[dataCols[i]]
            do throws(DeviceError) {
                try col.device!.read(into: bufs[i].mutableBytes, at: self.columnOffset(col, line: line, unitOffset: 0, layout: rt.layout))
            } catch { failed.add(dataCols[i], error) }
        }
        let parity = pcs.map { _ in AlignedBuffer(count: n) }
        defer { withExtendedLifetime(parity) {} }  // pointers into it outlive its last use
        if failed.all.isEmpty {
            Syndrome.generate(data: bufs.map { UnsafeRawPointer($0.base) }, p: parity[0].base,
                              q: parity.count > 1 ? parity[1].base : nil, count: n)
            parallel(pcs.count) { j in
                let col = rt.columns[pcs[j]]
                do throws(DeviceError) {
                    try col.device!.write(UnsafeRawBufferPointer(parity[j].mutableBytes),
                                          at: self.columnOffset(col, line: line, unitOffset: 0, layout: rt.layout))
                } catch { failed.add(pcs[j], error) }
            }
        }
        for (c, e) in failed.all { _ = try? markFailed(c, e) }
        return failed.all.isEmpty
    }
}

/// The parity columns of a line, or some of them: none, P, or P and Q (no heap allocation:
/// the write path builds these for every request).
struct ParityUnits: RandomAccessCollection {
    private var a: Int?, b: Int?
    init(_ a: Int? = nil, _ b: Int? = nil) {
        if a == nil { self.a = b; self.b = nil } else { self.a = a; self.b = b }
    }
    var startIndex: Int { 0 }
    var endIndex: Int { a == nil ? 0 : b == nil ? 1 : 2 }
    subscript(i: Int) -> Int { i == 0 ? a! : b! }
    /// The columns for which `keep` is true, in order.
    func filtered(_ keep: (Int) -> Bool) -> ParityUnits {
        ParityUnits(a.flatMap { keep($0) ? $0 : nil }, b.flatMap { keep($0) ? $0 : nil })
    }
}
