import Foundation
import MetaDB
import MetaDevices
import MetaModel
import Synchronization

/// A mirror (RAID-1): two to four sides, each a volume of the set (a concat or stripe),
/// holding the same blocks.
///
/// - Reads go to one readable side (the read policy chooses); a failed read is answered
///   from another side and the good data written back over the bad range (md's read-error
///   correction). Only when that rewrite fails is the side taken out of service.
/// - Writes go to every side in service (`Okay`, `Resyncing`, `Last Erred`), at once or one
///   after the other (the write policy). A side whose write fails is committed `Needs
///   Maintenance` before the write is answered; the write succeeds if one side took it.
/// - Before a write, its regions are committed dirty (the dirty-region log, as for RAID-5):
///   after an unclean stop the sides may differ only there, and those regions are copied
///   from the first `Okay` side to the others before they are read from the others.
/// - A resync copies the regions a side lacks (every region for an attached side, the
///   regions written while it was offline for one brought back online) in 1 MiB chunks,
///   each under a lock that excludes writes to it, checkpointing flushed progress.
///
/// Every change of a side's state goes through ``apply(_:)``, which excludes writers
/// between their dirty-region commit and their choice of sides: a write that misses a side
/// always has its region recorded for that side.
public final class MirrorVolume: Volume, @unchecked Sendable {
    /// Blocks copied at a time by a resync (and locked against writes meanwhile): 1 MiB, or
    /// less where regions are smaller (the simulator's); always divides a region.
    let chunkBlocks: UInt64

    /// The sides' engines, in the record's order.
    private let children: ReadMostly<[Volume]>
    /// What every request looks at: the sides' states and the policies.
    private struct View {
        var states: [SubmirrorState] { didSet { derive() } }
        var read: MirrorReadPolicy
        var write: MirrorWritePolicy
        /// Reads only from the first `Okay` side: dirty regions of a crash not yet handed to
        /// a resync (the state database was read-only at open).
        var firstOnly: Bool
        /// Derived from ``states`` (once per change, not per request): the `Okay` sides, the
        /// `Last Erred` ones, and the sides written.
        private(set) var okay: [Int] = []
        private(set) var lastErred: [Int] = []
        private(set) var written: [Int] = []

        init(states: [SubmirrorState], read: MirrorReadPolicy, write: MirrorWritePolicy, firstOnly: Bool) {
            self.states = states; self.read = read; self.write = write; self.firstOnly = firstOnly
            derive()
        }

        private mutating func derive() {
            okay = states.indices.filter { states[$0] == .okay }
            lastErred = states.indices.filter { states[$0] == .lastErred }
            written = states.indices.filter { states[$0].isWritten }
        }
    }
    private let view: ReadMostly<View>
    /// Excludes state changes from a writer's dirty-region commit and choice of sides.
    private let gate = ReadMostly<Void>((), preferWriters: true)
    private let chunkLocks = LineLocks()
    let drl: DirtyRegionLog
    private let regionBlocks: UInt64
    private let roundRobin = Atomic<Int>(0)
    private let foregroundOps = Atomic<UInt64>(0)
    private let stoppingFlag = Atomic<Bool>(false)
    private let resyncRunning = Atomic<Bool>(false)
    private let cleaner = TimerBox()
    /// The resync in progress: the side, blocks done and in all, bytes per second.
    public let progress = Mutex<(side: Int, done: UInt64, total: UInt64, bytesPerSecond: Double)?>(nil)
    /// Chunks a resync has copied since this engine opened (tests count them).
    public let resyncedChunks = Atomic<Int>(0)
    /// Ranges read from another side and rewritten since this engine opened.
    public let readErrorsRepaired = Atomic<Int>(0)
    /// The check in progress: chunks done and in all, bytes per second (nil: none runs).
    public let checkProgress = Mutex<(done: UInt64, total: UInt64, bytesPerSecond: Double)?>(nil)
    let checkStopFlag = Atomic<Bool>(false)
    let checkThreadRunning = Atomic<Bool>(false)

    init(record: VolumeRecord, children: [Volume], context: VolumeContext) throws(VolumeIOError) {
        guard let m = record.mirror, !m.submirrors.isEmpty, m.submirrors.count == children.count else {
            throw VolumeIOError(volume: record.name, code: .io, operation: "open", detail: "malformed mirror record (no sides)")
        }
        self.children = ReadMostly(children)
        regionBlocks = max(1, m.regionBlocks)
        chunkBlocks = Self.gcd(regionBlocks, 2048)
        view = ReadMostly(View(states: m.submirrors.map(\.state), read: m.readPolicy, write: m.writePolicy,
                               firstOnly: !record.dirtyRegions.isEmpty))
        drl = DirtyRegionLog(interlaceBlocks: 1, committed: record.dirtyRegions, regionColumnBytes: regionBlocks * 512)
        super.init(name: record.name, context: context)
        setSectorSize(children.map(\.sectorSize).max() ?? 512)
        startCleaner()
    }

    private static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 { b == 0 ? a : gcd(b, a % b) }

    /// Bytes of the chunks a resync copies and a check compares, for regions of `regionBlocks`.
    public static func chunkBytes(regionBlocks: UInt64) -> UInt64 { gcd(max(1, regionBlocks), 2048) * Volume.blockSize }

    /// Chunks a check of this mirror compares (its ``CheckRecord/totalLines``).
    public var checkChunks: UInt64 { (sizeBytes / Volume.blockSize + chunkBlocks - 1) / chunkBlocks }

    public override var sizeBytes: UInt64 {
        // (Read on every request: no array.)
        children.read { cs in cs.isEmpty ? 0 : cs.reduce(UInt64.max) { min($0, $1.sizeBytes) } } / Volume.blockSize * Volume.blockSize
    }

    /// The sides' engines, in order.
    public var sideEngines: [Volume] { children.read { $0 } }

    /// The sides' volume names, in order.
    public var sideNames: [String] { children.read { $0.map(\.name) } }

    // MARK: state changes

    /// Commits `event` (a mirror event of this volume) while no writer is between its
    /// dirty-region commit and its choice of sides, then takes the new states. `children`,
    /// when given, are the sides' engines after the event (attach, detach).
    public func apply(_ event: SetEvent, children newChildren: [Volume]? = nil) throws {
        try gate.withLock { (_: inout Void) throws in
            try context.store.apply(event)
            if let newChildren { children.withLock { $0 = newChildren } }
            switch event {
            case .submirrorFailed, .submirrorOnline, .sideSpareTaken, .sideComponentReplaced:
                // A side's component may be on another device now (a spare came or went).
                for c in children.read({ $0 }) { try? (c as? StripeVolume)?.reload() }
            default: break
            }
            refreshView()
        }
    }

    private let delegateRef = WeakEngineDelegate()
    /// Hears of each side failure once it is committed (the set manager: hot spares).
    public var delegate: (any EngineDelegate)? {
        get { delegateRef.value }
        set { delegateRef.value = newValue }
    }

    /// Runs `body` (commits that change the sides, and the reload of a side's engine) while
    /// no writer is between its dirty-region commit and its choice of sides, then takes the
    /// new states.
    public func change(_ body: () throws -> Void) throws {
        try gate.withLock { (_: inout Void) throws in
            defer { refreshView() }
            try body()
        }
    }

    /// Takes the states and policies of the committed record now (inside ``change(_:)``,
    /// before a side's engine shows a change, such as a grow's new size).
    public func takeRecord() { refreshView() }

    /// Takes the states and policies of the committed record.
    private func refreshView() {
        guard let m = volumeRecord()?.mirror else { return }
        let pending = unrecorded.withLock { $0 }
        view.withLock { v in
            // A side whose failure is not recorded yet is out of service all the same.
            v.states = m.submirrors.map { pending.contains($0.volume) && $0.state != .offline ? .needsMaintenance : $0.state }
            v.read = m.readPolicy
            v.write = m.writePolicy
        }
    }

    /// Sides (by volume name) that failed while the state database could not record it.
    /// They are out of service in this engine; until their failure is recorded, writes fail
    /// and reads of dirty regions fail (a restart would trust them as recorded, and a crash's
    /// dirty regions are copied from the first side recorded `Okay`: what a read returned
    /// from another side could change), and no region is cleaned.
    private let unrecorded = Mutex<Set<String>>([])
    private let anyUnrecorded = Atomic<Bool>(false)

    /// Records the failures not recorded yet; returns whether none is left.
    private func recordPendingFailures() -> Bool {
        guard anyUnrecorded.load(ordering: .sequentiallyConsistent) else { return true }
        for side in unrecorded.withLock({ $0 }).sorted() {
            guard let i = volumeRecord()?.mirror?.index(of: side) else { _ = unrecorded.withLock { $0.remove(side) }; continue }
            do {
                try apply(.submirrorFailed(volume: name, submirror: i))
                _ = unrecorded.withLock { $0.remove(side) }
            } catch {
                return false
            }
        }
        let left = !unrecorded.withLock { $0.isEmpty }
        anyUnrecorded.store(left, ordering: .sequentiallyConsistent)
        if !left { gate.withLock { (_: inout Void) in refreshView() } }
        return !left
    }

    /// Fails a read of a dirty region while a side's failure is not recorded.
    private func checkUnrecorded(_ block: UInt64, _ bytes: Int) throws(VolumeIOError) {
        guard anyUnrecorded.load(ordering: .sequentiallyConsistent) else { return }
        let last = (block + UInt64(bytes) / Volume.blockSize - 1) / regionBlocks
        let dirty = drl.dirty
        if (block / regionBlocks...last).contains(where: dirty.contains) && !recordPendingFailures() {
            throw unrecordedFailure("read", block, bytes)
        }
    }

    private func unrecordedFailure(_ op: String, _ block: UInt64, _ bytes: Int) -> VolumeIOError {
        VolumeIOError(volume: name, code: .io, operation: op, offset: block * Volume.blockSize, length: UInt64(bytes),
                      detail: "a side failed and the state database cannot record it yet (\(unrecorded.withLock { $0.sorted() }.joined(separator: ", ")))")
    }

    /// After an unclean stop: hands the dirty regions to a resync of every side but the
    /// first `Okay` one (reads come from that one until then). Needs a writable state database.
    public func resyncDirtyRegions() throws {
        let dirty = drl.dirty
        guard !dirty.isEmpty else { return }
        context.logger.warning("\(name): unclean shutdown: \(dirty.count) dirty region(s) are copied from the first Okay side to the others")
        // The commit drops the dirty regions: what the sides that reads use hold there must
        // be durable first (after a kill their caches may still hold the last run's writes,
        // which a power loss would take back once nothing records the regions as dirty).
        // A side that cannot flush leaves service first (its failure recorded); the next one
        // becomes the source.
        let v = view.read { $0 }
        let cs = children.read { $0 }
        for i in v.okay + v.lastErred {
            do throws(VolumeIOError) { try cs[i].flush() } catch {
                guard sideFailed(i, error) else { throw error }
            }
        }
        try gate.withLock { (_: inout Void) throws in
            try context.store.apply(.mirrorDirtyResync(volume: name, regions: dirty.sorted()))
            drl.forgetAll()
            view.withLock { $0.firstOnly = false }
            refreshView()
        }
    }

    /// Commits the failure of `side` (unless it is out of service already). Returns whether
    /// the commit landed: when it did not, the request that found the failure must fail too
    /// (a restart would read the side as it is recorded).
    @discardableResult
    private func sideFailed(_ side: Int, _ error: VolumeIOError) -> Bool {
        let names = sideNames
        context.logger.error("\(name): side \(names.indices.contains(side) ? names[side] : "\(side)") failed: \(error)")
        // Where it failed: a side's component read or write names the block (a flush, a
        // closed side or a refusal of the mirror's own does not).
        let fromComponent = error.operation == "io" && names.indices.contains(side) && error.volume == names[side]
        let at = fromComponent ? error.offset.map { $0 / Volume.blockSize } : nil
        do { try apply(.submirrorFailed(volume: name, submirror: side, at: at)) } catch {
            context.logger.error("\(name): cannot record the failure of side \(side): \(error)")
            if names.indices.contains(side) {
                unrecorded.withLock { _ = $0.insert(names[side]) }
                anyUnrecorded.store(true, ordering: .sequentiallyConsistent)
                gate.withLock { (_: inout Void) in refreshView() }
            }
            return false
        }
        if let d = delegate {
            let volume = name
            DispatchQueue.global().async { d.columnFailed(volume: volume, column: side) }
        }
        return true
    }

    // MARK: reads

    /// The sides a read of `block` tries, in order: the `Okay` sides, starting where the
    /// read policy says, then the `Last Erred` ones (they may lack what failed on them, so
    /// they are the last resort). `k`-th choice of `count` (no array per request).
    private func readChoice(_ block: UInt64, _ v: View) -> (start: Int, count: Int) {
        let n = v.okay.count
        // Dirty regions of a crash not handed over yet: the first Okay side first (the others
        // only when it fails, and then its range is rewritten from them, so that it holds what
        // was returned).
        guard n > 1 && !v.firstOnly else { return (0, n + v.lastErred.count) }
        let start: Int
        switch v.read {
        case .first: start = 0
        case .roundrobin: start = Int(UInt(bitPattern: roundRobin.add(1, ordering: .relaxed).oldValue) % UInt(n))
        case .geometric:
            let size = max(1, sizeBytes / Volume.blockSize)
            start = Int(min(UInt64(n - 1), block * UInt64(n) / size))
        }
        return (start, n + v.lastErred.count)
    }

    private func side(_ k: Int, start: Int, _ v: View) -> Int {
        let n = v.okay.count
        return k < n ? v.okay[(start + k) % n] : v.lastErred[k - n]
    }

    override func readBlocks(_ block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(VolumeIOError) {
        foregroundOps.add(1, ordering: .relaxed)
        try checkUnrecorded(block, buffer.count)
        let v = view.read { $0 }
        let cs = children.read { $0 }
        let (start, count) = readChoice(block, v)
        guard count > 0 else {
            throw VolumeIOError(volume: name, code: .io, operation: "read", offset: block * Volume.blockSize,
                                length: UInt64(buffer.count), detail: "no side is readable")
        }
        var failed: [Int] = []
        var last: VolumeIOError?
        for k in 0..<count {
            let i = side(k, start: start, v)
            do throws(VolumeIOError) {
                try cs[i].read(offset: block * Volume.blockSize, into: buffer)
                if !failed.isEmpty {
                    repair(failed, good: i, block: block, count: UInt64(buffer.count) / Volume.blockSize, cs)
                    // (A side whose rewrite failed and could not be recorded: as above.)
                    try checkUnrecorded(block, buffer.count)
                }
                return
            } catch {
                failed.append(i)
                last = error
            }
        }
        throw VolumeIOError(volume: name, code: .io, operation: "read", offset: block * Volume.blockSize,
                            length: UInt64(buffer.count), detail: "every side failed: \(last?.description ?? "?")")
    }

    /// Rewrites the range of a failed read on `bad` sides with `good`'s data, under the chunk
    /// locks (a write meanwhile must not be undone); a side whose rewrite fails leaves service.
    @discardableResult
    private func repair(_ bad: [Int], good: Int, block: UInt64, count: UInt64, _ cs: [Volume], mismatch: Bool = false) -> Bool {
        // The rewrite is a write like any other: a crash before it is durable must find its
        // region dirty (the side's old bytes there are not known to be good).
        let regions: WriteRegions
        do { (regions, _, _) = try beginWrite(block, count) } catch {
            context.logger.error("\(name): cannot record the rewrite of a read error in the dirty-region log: \(error); not rewritten")
            return false
        }
        defer { endWrite(regions) }
        let chunks = chunkRange(block, count)
        for c in chunks { chunkLocks.lock(c) }
        defer { for c in chunks.reversed() { chunkLocks.unlock(c) } }
        let tmp = AlignedBuffer(count: Int(count * Volume.blockSize))
        defer { withExtendedLifetime(tmp) {} }
        do throws(VolumeIOError) {
            try cs[good].read(offset: block * Volume.blockSize, into: tmp.mutableBytes)
        } catch {
            return false
        }
        let states = view.read { $0.states }
        var all = true
        for i in bad where states.indices.contains(i) && states[i].isWritten {
            do throws(VolumeIOError) {
                try cs[i].write(offset: block * Volume.blockSize, from: UnsafeRawBufferPointer(tmp.mutableBytes))
                if !mismatch {
                    readErrorsRepaired.add(1, ordering: .relaxed)
                    context.logger.warning("\(name): a read error on side \(cs[i].name) at block \(block) (\(count) blocks) was answered from \(cs[good].name) and rewritten")
                }
            } catch {
                sideFailed(i, error)
                all = false
            }
        }
        return all
    }

    // MARK: check

    /// Starts the check the volume record describes (``CheckRecord/running``), from its
    /// checkpoint, in the background: every chunk of every side is read and compared with
    /// the first side's (md's `check` of RAID-1); with `repair`, the sides that differ are
    /// rewritten from it (md's `repair`). A side's read error is answered from the first side
    /// and rewritten. Its end is committed (`checkEnded`); a shutdown leaves it running in the
    /// record, so that the next start resumes it.
    public func startCheck() {
        guard let c = volumeRecord()?.check, c.running, !stoppingFlag.load(ordering: .relaxed),
              checkThreadRunning.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged else { return }
        checkStopFlag.store(false, ordering: .relaxed)
        let body: @Sendable () -> Void = { [self] in
            runCheck(c)
            checkThreadRunning.store(false, ordering: .sequentiallyConsistent)
        }
        if let s = context.scheduler { s.startBackground("mirror check \(name)", body) } else { Thread.detachNewThread(body) }
    }

    /// Asks the running check to end (`stopped`) at its next step.
    public func stopCheck() { checkStopFlag.store(true, ordering: .relaxed) }

    /// Whether a check runs now.
    public var checkRunning: Bool { checkThreadRunning.load(ordering: .relaxed) }

    /// Runs the check on the calling thread (``startCheck()`` runs it in the background).
    public func runCheck(_ record: CheckRecord) {
        let size = sizeBytes / Volume.blockSize
        let total = (size + chunkBlocks - 1) / chunkBlocks
        var counts = record.counts
        var chunk = min(record.doneLines, total)
        let start = chunk
        let began = Date()
        var lastCheckpoint = Date()
        var pacer = ResyncPacer(foreground: foregroundOps.load(ordering: .relaxed))
        let sides = record.totalLines == total ? children.read { $0.count } : 0
        // Steps of several chunks (their locks taken in ascending order, as writers take
        // them), the sides read at once: the check then runs at about one side's sequential
        // read rate. One chunk per step under a maximum rate (short pauses) or a scheduler.
        let limited = (volumeRecord()?.resyncRate ?? .default).maxBytesPerSecond < UInt64.max / 2
        let stepChunks: UInt64 = context.scheduler != nil || limited ? 1 : 8
        let stepBytes = Int(stepChunks * chunkBlocks * Volume.blockSize)
        let bufs = (0..<max(sides, 1)).map { _ in AlignedBuffer(count: stepBytes) }
        defer { withExtendedLifetime(bufs) {} }
        checkProgress.withLock { $0 = (chunk, total, 0) }
        context.logger.info("\(name): check\(record.repair ? " and repair" : "") from chunk \(chunk) of \(total)")
        var result: CheckResult? = .completed
        var failure: String? = record.totalLines == total ? nil : "the mirror's size changed"
        if failure != nil { result = .abandoned }
        steps: while failure == nil && chunk < total {
            if stoppingFlag.load(ordering: .relaxed) { result = nil; break }
            if checkStopFlag.load(ordering: .relaxed) { result = .stopped; break }
            context.scheduler?.yield("mirror check")
            let v = view.read { $0 }
            let cs = children.read { $0 }
            guard cs.count == sides, v.states.allSatisfy({ $0 == .okay }) else {
                result = .abandoned
                failure = "a side left service or the sides changed; check again once every side is Okay"
                break
            }
            let end = min(total, chunk + stepChunks)
            let first = chunk * chunkBlocks
            let n = min(end * chunkBlocks, size) - first
            let bytes = Int(n * Volume.blockSize)
            var readOK = [Bool](repeating: false, count: sides)
            for c in chunk..<end { chunkLocks.lock(c) }
            readOK.withUnsafeMutableBufferPointer { ok in
                let out = UncheckedSendable(ok)
                let read: @Sendable (Int) -> Void = { i in
                    do throws(VolumeIOError) {
                        try cs[i].read(offset: first * Volume.blockSize, into: UnsafeMutableRawBufferPointer(start: bufs[i].base, count: bytes))
                        out.value[i] = true
                    } catch {}
                }
                if context.scheduler == nil && sides > 1 {
                    DispatchQueue.concurrentPerform(iterations: sides, execute: read)
                } else {
                    for i in 0..<sides { read(i) }
                }
            }
            for c in (chunk..<end).reversed() { chunkLocks.unlock(c) }
            // Chunk by chunk. When a side could not read the step, every side reads each
            // chunk again, together under its lock (only the chunks a side cannot read are
            // rewritten from another one).
            let again = readOK.contains(false)
            for c in chunk..<end {
                let block = c * chunkBlocks
                let cn = min(chunkBlocks, size - block)
                let cb = Int(cn * Volume.blockSize)
                let at = Int((block - first) * Volume.blockSize)
                var unreadable: [Int] = []
                if again {
                    chunkLocks.lock(c)
                    for i in 0..<sides {
                        do throws(VolumeIOError) {
                            try cs[i].read(offset: block * Volume.blockSize, into: UnsafeMutableRawBufferPointer(start: bufs[i].base + at, count: cb))
                        } catch {
                            unreadable.append(i)
                        }
                    }
                    chunkLocks.unlock(c)
                }
                guard let ref = (0..<sides).first(where: { !unreadable.contains($0) }) else {
                    result = .abandoned
                    failure = "no side could be read at block \(block)"
                    break steps
                }
                let differ = (0..<sides).filter { i in
                    !unreadable.contains(i) && i != ref && memcmp(bufs[i].base + at, bufs[ref].base + at, cb) != 0
                }
                if !unreadable.isEmpty {
                    // Answered from another side and rewritten, as a client's read would be.
                    if repair(unreadable, good: ref, block: block, count: cn, cs) {
                        counts.readErrorsRepaired += UInt64(unreadable.count)
                    } else {
                        result = .abandoned
                        failure = "a side failed rewriting a read error at block \(block)"
                        break steps
                    }
                }
                if !differ.isEmpty {
                    var fixed = false
                    if record.repair {
                        fixed = repair(differ, good: ref, block: block, count: cn, cs, mismatch: true)
                        context.logger.warning("\(name): sides \(differ.map { cs[$0].name }.joined(separator: ", ")) differ from \(cs[ref].name) at block \(block) (\(cn) blocks)\(fixed ? ": rewritten from it" : "")")
                    }
                    counts.addMismatch(c, repaired: fixed)
                }
            }
            chunk = end
            // Paced per side, as a resync is.
            pacer.pace(Double(bytes), foreground: foregroundOps.load(ordering: .relaxed),
                       limits: volumeRecord()?.resyncRate ?? .default, simulated: context.scheduler != nil)
            let secs = Date().timeIntervalSince(began)
            checkProgress.withLock { $0 = (chunk, total, secs > 0 ? Double((chunk - start) * chunkBlocks * Volume.blockSize) / secs : 0) }
            let due = context.scheduler.map { $0.shouldCheckpoint() } ?? (Date().timeIntervalSince(lastCheckpoint) >= 1)
            if due && chunk < total {
                // (The repairs' regions are dirty until their sides are flushed: the
                // checkpoint need not vouch for them.)
                _ = try? context.store.apply(.checkCheckpoint(volume: name, doneLines: chunk, counts: counts))
                lastCheckpoint = Date()
            }
        }
        checkProgress.withLock { $0 = nil }
        guard let result else {
            _ = try? context.store.apply(.checkCheckpoint(volume: name, doneLines: chunk, counts: counts))
            return
        }
        do {
            try context.store.apply(.checkEnded(volume: name, result: result, doneLines: chunk, counts: counts, failure: failure, at: Date()))
        } catch {
            context.logger.error("\(name): cannot record the end of the check: \(error)")
        }
        context.logger.info("\(name): check \(result.rawValue)\(failure.map { " (\($0))" } ?? ""): \(counts.mismatches) mismatching chunk(s)\(record.repair ? ", \(counts.repaired) rewritten" : ""), \(counts.readErrorsRepaired) read error(s) rewritten")
    }

    // MARK: writes

    /// Commits the dirty regions of a write of `count` blocks at `block` and takes the sides
    /// to write, with no state change in between (``apply(_:children:)`` waits). The caller
    /// ends the regions (`drl.end`) when the write is done.
    private func beginWrite(_ block: UInt64, _ count: UInt64) throws(VolumeIOError) -> (WriteRegions, View, [Volume]) {
        let regions = WriteRegions(first: block / regionBlocks, last: (block + count - 1) / regionBlocks)
        gate.lockShared()
        defer { gate.unlockShared() }
        do {
            let commit = { (r: Set<UInt64>) throws -> Void in try self.context.store.apply(.dirtyRegions(volume: self.name, regions: r.sorted())) }
            if regions.first == regions.last {
                try drl.begin(region: regions.first, commit: commit)
            } else {
                try drl.begin(Set(regions.first...regions.last), commit: commit)
            }
        } catch {
            throw VolumeIOError(volume: name, code: .io, operation: "write",
                                detail: "cannot record the write in the state database's dirty-region log: \(error)")
        }
        return (regions, view.read { $0 }, children.read { $0 })
    }

    /// The dirty regions a write is in (most writes: one).
    struct WriteRegions {
        var first: UInt64
        var last: UInt64
    }

    /// Ends what ``beginWrite(_:_:)`` began.
    private func endWrite(_ r: WriteRegions) {
        if r.first == r.last { drl.end(region: r.first) } else { drl.end(Set(r.first...r.last)) }
    }

    private func chunkRange(_ block: UInt64, _ count: UInt64) -> ClosedRange<UInt64> {
        (block / chunkBlocks)...((block + max(1, count) - 1) / chunkBlocks)
    }

    override func writeBlocks(_ block: UInt64, from buffer: UnsafeRawBufferPointer) throws(VolumeIOError) {
        foregroundOps.add(1, ordering: .relaxed)
        if !recordPendingFailures() { throw unrecordedFailure("write", block, buffer.count) }
        let count = UInt64(buffer.count) / Volume.blockSize
        let (regions, v, cs) = try beginWrite(block, count)
        defer { endWrite(regions) }
        let targets = v.written
        guard !targets.isEmpty else {
            throw VolumeIOError(volume: name, code: .io, operation: "write", offset: block * Volume.blockSize,
                                length: UInt64(buffer.count), detail: "no side is in service")
        }
        let chunks = chunkRange(block, count)
        for c in chunks { chunkLocks.lock(c) }
        defer { for c in chunks.reversed() { chunkLocks.unlock(c) } }
        var failed: [(Int, VolumeIOError)] = []
        if v.write == .serial || buffer.count <= Volume.inlineFanOutBytes || context.scheduler != nil {
            // One after the other on this thread (small writes: cheaper than a hand-over).
            for i in targets {
                do throws(VolumeIOError) { try cs[i].write(offset: block * Volume.blockSize, from: buffer) } catch { failed.append((i, error)) }
            }
        } else {
            let errors = ErrorBox<VolumeIOError>()
            parallel(targets.count, bytes: buffer.count) { k in
                let i = targets[k]
                do throws(VolumeIOError) { try cs[i].write(offset: block * Volume.blockSize, from: buffer) } catch { errors.add(i, error) }
            }
            failed = errors.all
        }
        // (Okay and Last Erred sides are always among the targets: with one of them and no
        // failure, a readable side took the write.)
        if failed.isEmpty && !(v.okay.isEmpty && v.lastErred.isEmpty) { return }
        // Committed before the write is answered: a side that missed it is never read again
        // until it is resynced. A failure that cannot be recorded fails the write.
        var notRecorded: VolumeIOError? = nil
        for (i, e) in failed where !sideFailed(i, e) { notRecorded = e }
        // Acknowledged only when a side that reads may use took it (a resyncing side alone
        // is not read: the data would be unreadable, and a resync from the others would
        // overwrite it).
        let failedSides = Set(failed.map(\.0))
        if !targets.contains(where: { !failedSides.contains($0) && v.states[$0].isReadable }) {
            // A resyncing side that took it now holds what no readable side has: it leaves
            // service (a resync already past this range would not copy over it again).
            for i in targets where !failedSides.contains(i) { sideFailed(i, VolumeIOError(volume: name, code: .io, operation: "write", detail: "took a write that no readable side took")) }
            throw noReadableSide(block, buffer.count, failed.first?.1)
        }
        if let notRecorded {
            throw VolumeIOError(volume: name, code: .io, operation: "write", offset: block * Volume.blockSize,
                                length: UInt64(buffer.count), detail: "a side failed and the state database could not record it: \(notRecorded)")
        }
    }

    private func noReadableSide(_ block: UInt64, _ bytes: Int, _ cause: VolumeIOError?) -> VolumeIOError {
        VolumeIOError(volume: name, code: .io, operation: "write", offset: block * Volume.blockSize,
                      length: UInt64(bytes), detail: "no readable side took the write: \(cause.map { "\($0)" } ?? "no readable side took it")")
    }

    /// Flushes the sides in service; throws the first failure without recording it.
    private func flushSides() throws(VolumeIOError) {
        let v = view.read { $0 }
        let cs = children.read { $0 }
        for i in v.written { try cs[i].flush() }
    }

    public override func flush() throws(VolumeIOError) {
        if !recordPendingFailures() { throw unrecordedFailure("flush", 0, 0) }
        let v = view.read { $0 }
        let cs = children.read { $0 }
        let targets = v.written
        let errors = ErrorBox<VolumeIOError>()
        parallel(targets.count) { k in
            do throws(VolumeIOError) { try cs[targets[k]].flush() } catch { errors.add(targets[k], error) }
        }
        let failed = errors.all
        var notRecorded: VolumeIOError? = nil
        for (i, e) in failed where !sideFailed(i, e) { notRecorded = e }
        if let notRecorded { throw notRecorded }
        let failedSides = Set(failed.map(\.0))
        if !targets.contains(where: { !failedSides.contains($0) && v.states[$0].isReadable }) {
            throw failed.first?.1 ?? VolumeIOError(volume: name, code: .io, operation: "flush", detail: "no readable side is in service")
        }
    }

    // MARK: dirty regions

    /// Cleans idle dirty regions (all with `all`): flushes the sides, then commits.
    @discardableResult
    public func cleanDirtyRegions(all: Bool = false) -> Int {
        guard recordPendingFailures() else { return 0 }
        // (The flush under the dirty-region log's lock records no failure: that commit would
        // wait for writers that wait for this lock. A failing side fails the cleaning; the
        // next request that meets the failure records it.)
        return drl.clean(all: all, flush: { () throws -> Void in try self.flushSides() },
                  commit: { try self.context.store.apply(.dirtyRegions(volume: self.name, regions: $0.sorted())) })
    }

    /// Dirty regions currently recorded.
    public var dirtyRegions: Set<UInt64> { drl.dirty }

    private func startCleaner() {
        guard context.scheduler == nil else { return }
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + drl.idleSeconds, repeating: drl.idleSeconds)
        timer.setEventHandler { [weak self] in
            guard let self, !self.stoppingFlag.load(ordering: .relaxed), !self.isClosed else { return }
            self.cleanDirtyRegions()
        }
        timer.resume()
        cleaner.set(timer)
    }

    public override func close() {
        stoppingFlag.store(true, ordering: .sequentiallyConsistent)
        cleaner.set(nil)
        // (Under a scheduler the resync runs only when the scheduler lets it: it sees the flag then.)
        while context.scheduler == nil && (resyncRunning.load(ordering: .sequentiallyConsistent)
                                          || checkThreadRunning.load(ordering: .sequentiallyConsistent)) { usleep(1000) }
        if !isClosed { cleanDirtyRegions(all: true) }
    }

    // MARK: resync

    /// Starts the resync of the sides that need one, in the background (nothing when none
    /// does, or one runs).
    public func startResync() {
        guard volumeRecord()?.mirror?.submirrors.contains(where: { $0.state == .resyncing }) == true,
              !stoppingFlag.load(ordering: .relaxed),
              resyncRunning.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged else { return }
        let body: @Sendable () -> Void = { [self] in
            let progressed = runResync()
            resyncRunning.store(false, ordering: .sequentiallyConsistent)
            // A side put into resync while this run was ending (online, attach) is not missed.
            if progressed { startResync() }
        }
        if let s = context.scheduler { s.startBackground("mirror resync \(name)", body) } else {
            Thread.detachNewThread(body)
        }
    }

    /// Whether a resync is running now.
    public var isResyncing: Bool { resyncRunning.load(ordering: .relaxed) }

    /// Resyncs every resyncing side, one after the other, until none is left or the volume
    /// stops.
    /// Resyncs on the calling thread (tests; ``startResync()`` runs it in the background).
    /// Returns whether any side's resync ended (done or failed).
    @discardableResult
    public func runResync() -> Bool {
        var tried = Set<Int>()
        var ended = false
        while !stoppingFlag.load(ordering: .relaxed) {
            guard let m = volumeRecord()?.mirror,
                  let side = m.submirrors.indices.first(where: { m.submirrors[$0].state == .resyncing && !tried.contains($0) }) else { break }
            tried.insert(side)
            if resyncSide(side, m) { ended = true }
        }
        progress.withLock { $0 = nil }
        return ended
    }

    /// Returns whether the side's resync ended (done, or the side failed).
    private func resyncSide(_ side: Int, _ m: MirrorRecord) -> Bool {
        let cs = children.read { $0 }
        let target = cs[side]
        let size = sizeBytes / Volume.blockSize
        let regionCount = (size + regionBlocks - 1) / regionBlocks
        let regions = m.resyncRegionList(side, regionCount: regionCount)
        let total = UInt64(regions.count) * regionBlocks
        var pos = m.submirrors[side].resyncDoneBlocks ?? 0
        context.logger.info("\(name): resyncing side \(target.name): \(regions.count) of \(regionCount) region(s)\(pos > 0 ? ", resuming at \(pos * 100 / max(1, total))%" : "")")
        var pacer = ResyncPacer(foreground: foregroundOps.load(ordering: .relaxed))
        let began = Date()
        var lastCheckpoint = Date()
        var moved: UInt64 = 0
        // Two buffers: chunk k is written to the target (on the writer's thread, its chunk
        // still locked) while chunk k + 1 is read from a source. Chunks go in ascending
        // order, as writers lock them. Under a scheduler each write completes at once.
        let bufs = [AlignedBuffer(count: Int(chunkBlocks * Volume.blockSize)), AlignedBuffer(count: Int(chunkBlocks * Volume.blockSize))]
        defer { withExtendedLifetime(bufs) {} }
        let writer = OneStepAhead<VolumeIOError?>(name: "mirror-resync \(name)", inline: context.scheduler != nil)
        var inFlight: UInt64? = nil  // the chunk whose write is in flight (locked)
        var step = 0
        /// Waits for the write in flight and unlocks its chunk; returns its failure.
        func settle() -> VolumeIOError? {
            guard let c = inFlight else { return nil }
            let e = writer.wait()
            chunkLocks.unlock(c)
            inFlight = nil
            return e
        }
        func targetFailed(_ e: VolumeIOError) -> Bool {
            sideFailed(side, e)
            return true
        }
        while pos < total {
            if stoppingFlag.load(ordering: .relaxed) { if let e = settle() { return targetFailed(e) }; return false }
            context.scheduler?.yield("mirror resync")
            guard view.read({ $0.states.indices.contains(side) && $0.states[side] == .resyncing }),
                  children.read({ $0.indices.contains(side) && $0[side] === target }) else {
                _ = settle()
                return false
            }
            let region = regions[Int(pos / regionBlocks)]
            let offset = pos % regionBlocks
            let block = region * regionBlocks + offset
            if block >= size { pos = (pos / regionBlocks + 1) * regionBlocks; continue }
            let n = min(chunkBlocks - block % chunkBlocks, regionBlocks - offset, size - block)
            let buf = bufs[step % 2]
            step += 1
            let bytes = UnsafeMutableRawBufferPointer(start: buf.base, count: Int(n * Volume.blockSize))
            let chunk = block / chunkBlocks
            chunkLocks.lock(chunk)
            if let e = readSource(block, bytes, except: side, cs) {
                chunkLocks.unlock(chunk)
                if let w = settle() { return targetFailed(w) }
                context.logger.error("\(name): resync of \(target.name) stopped at block \(block): no side could be read (\(e.map { "\($0)" } ?? "none is readable")); it stays Resyncing and is not read")
                return false
            }
            if let w = settle() {
                chunkLocks.unlock(chunk)
                return targetFailed(w)
            }
            let src = UncheckedSendable(UnsafeRawBufferPointer(bytes))
            let at = block * Volume.blockSize
            writer.submit {
                do throws(VolumeIOError) { try target.write(offset: at, from: src.value); return nil } catch { return error }
            }
            inFlight = chunk
            // Under a scheduler nothing runs beside: finish the write before the next yield.
            if context.scheduler != nil, let w = settle() { return targetFailed(w) }
            resyncedChunks.add(1, ordering: .relaxed)
            pos += n
            moved += n
            let secs = Date().timeIntervalSince(began)
            progress.withLock { $0 = (side, pos, total, secs > 0 ? Double(moved * Volume.blockSize) / secs : 0) }
            pacer.pace(Double(n * Volume.blockSize), foreground: foregroundOps.load(ordering: .relaxed),
                       limits: volumeRecord()?.resyncRate ?? .default, simulated: context.scheduler != nil)
            let due = context.scheduler.map { $0.shouldCheckpoint() } ?? (Date().timeIntervalSince(lastCheckpoint) >= 1)
            if due && pos < total {
                // Progress vouches only for what is durable on the target.
                if let w = settle() { return targetFailed(w) }
                do throws(VolumeIOError) { try target.flush() } catch { return targetFailed(error) }
                _ = try? context.store.apply(.mirrorResyncCheckpoint(volume: name, submirror: side, doneBlocks: pos))
                lastCheckpoint = Date()
            }
        }
        if let w = settle() { return targetFailed(w) }
        do throws(VolumeIOError) { try target.flush() } catch { return targetFailed(error) }
        do {
            try apply(.mirrorResyncFinished(volume: name, submirror: side))
            context.logger.info("\(name): side \(target.name) is Okay (resync done)")
        } catch {
            context.logger.error("\(name): cannot record the end of the resync of \(target.name): \(error)")
        }
        return true
    }

    /// Reads `bytes.count` bytes at `block` from a side that reads may use, in the order
    /// reads use them: `Okay` sides, then `Last Erred` ones (which may differ from them
    /// where writes failed or a crash left regions dirty). Returns nil on success, else the
    /// last error (nil inside: no side to read).
    private func readSource(_ block: UInt64, _ bytes: UnsafeMutableRawBufferPointer, except side: Int, _ cs: [Volume]) -> VolumeIOError?? {
        let states = view.read { $0.states }
        var last: VolumeIOError?
        let sources = states.indices.filter { states[$0] == .okay } + states.indices.filter { states[$0] == .lastErred }
        for i in sources where i != side {
            do throws(VolumeIOError) {
                try cs[i].read(offset: block * Volume.blockSize, into: bytes)
                return nil
            } catch {
                last = error
            }
        }
        return .some(last)
    }
}
