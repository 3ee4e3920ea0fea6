import Foundation
import MetaDevices
import MetaModel

/// The running state of a RAID-5 volume's write log: the epoch records are written with,
/// their sequence numbers, how full each column's log area is, and the records between
/// their log write and the end of their in-place writes (`docs/FORMAT.md`, "Write log").
///
/// When a record does not fit in an area, the areas are reused from their start: once no
/// record is in flight, a checkpoint makes every in-place write durable and commits the
/// next epoch (which voids every record written so far); then writing resumes.
final class WriteLog: @unchecked Sendable {
    let config: WriteLogConfig
    /// Bytes of each column's log area (0: the columns have none).
    let areaBytes: Int
    /// The dedicated log device, when the volume has one and it is present.
    let device: (any BlockDevice)?
    /// Byte offset of the dedicated device's log area, and its size.
    let deviceStartByte: UInt64
    let deviceAreaBytes: Int
    /// Placement key of the dedicated device (columns are 0…N−1).
    static let deviceKey = -1
    private var deviceFailedNow: Bool
    /// Column block at which each original column's area starts (the column size).
    let areaStartBlock: UInt64
    private let cond = NSCondition()
    private var epoch: UInt64
    private var nextSeq: UInt64 = 1
    private var heads: [Int: Int] = [:]
    private var inFlight = 0
    private var checkpointing = false
    /// Whether this run has committed an epoch of its own yet: records of earlier runs may
    /// still lie in the areas with the epoch in force, so the first record of a run moves
    /// the epoch on first (lazily: opening a volume writes nothing).
    private var fresh: Bool
    /// Records written, and checkpoints taken (for tests and benchmarks).
    private(set) var recordsWritten: UInt64 = 0
    private(set) var checkpoints: UInt64 = 0

    /// A log for `config` whose committed epoch is `epoch`; `fresh` when this run committed
    /// it (records of that epoch are this run's), else the first record commits the next.
    init(config: WriteLogConfig, areaStartBlock: UInt64, epoch: UInt64, fresh: Bool,
         device: (any BlockDevice)? = nil, deviceStartBlock: UInt64 = 0) {
        self.config = config
        self.areaStartBlock = areaStartBlock
        self.areaBytes = Int(config.areaBlocks * 512)
        self.device = config.device == nil ? nil : device
        self.deviceStartByte = deviceStartBlock * 512
        self.deviceAreaBytes = Int((config.deviceAreaBlocks ?? 0) * 512)
        self.deviceFailedNow = config.deviceFailed == true
        self.epoch = epoch
        self.fresh = fresh
    }

    /// Whether records go to the dedicated device now.
    var deviceUsable: Bool { cond.withLock { device != nil && !deviceFailedNow && deviceAreaBytes > 0 } }

    /// The dedicated device failed: records go to the columns' areas from now on, after a
    /// checkpoint (which records the failure in the same commit that voids the device's
    /// records: a replay then need not read it).
    func deviceFailed() { cond.withLock { deviceFailedNow = true; fresh = false } }

    /// Whether the device's failure is known here but not yet committed.
    var deviceFailureUncommitted: Bool {
        cond.withLock { deviceFailedNow && config.deviceFailed != true && !deviceFailureCommitted }
    }
    private var deviceFailureCommitted = false
    /// The checkpoint's commit recorded the device's failure.
    func deviceFailureRecorded() { cond.withLock { deviceFailureCommitted = true } }

    private func capacity(_ key: Int) -> Int { key == Self.deviceKey ? deviceAreaBytes : areaBytes }

    /// This run committed `epoch` (a replay voided the records before it).
    func began(epoch: UInt64) {
        cond.withLock { self.epoch = epoch; fresh = true; heads = [:] }
    }

    /// Where one copy of a record goes: a column and a byte offset in its log area.
    struct Placement { var column: Int; var offset: Int }
    struct Reservation {
        var epoch: UInt64
        var seq: UInt64
        var placements: [Placement]
    }

    /// Whether a record of `bytes` can ever fit where records go now (else the caller splits
    /// the write).
    func fits(_ bytes: Int) -> Bool { bytes <= (deviceUsable ? deviceAreaBytes : areaBytes) / 2 }

    /// Whether records of `bytes` in all, which may go to the same area (the dedicated
    /// device, or one column with its copies), can ever fit together.
    func fitsTogether(_ bytes: [Int]) -> Bool { bytes.allSatisfy(fits) && bytes.reduce(0, +) <= (deviceUsable ? deviceAreaBytes : areaBytes) / 2 }

    /// Reserves room for a record of `bytes` in the areas of `columns` and a sequence number.
    /// When an area is full, waits until no record is in flight and runs `checkpoint(next)`,
    /// which must make every in-place write durable and commit epoch `next`; every area then
    /// starts over. Each reservation must be ended with ``finish()``.
    func reserve(bytes: Int, columns: [Int], checkpoint: (UInt64) throws -> Void) throws -> Reservation {
        try reserve([(bytes, columns)], checkpoint: checkpoint)[0]
    }

    /// Reserves several records at once (one write's records, in sequence order): all of
    /// them fit, or the checkpoint runs first. Each reservation must be ended with ``finish()``.
    func reserve(_ records: [(bytes: Int, columns: [Int])], checkpoint: (UInt64) throws -> Void) throws -> [Reservation] {
        cond.lock()
        defer { cond.unlock() }
        while true {
            if checkpointing { cond.wait(); continue }
            var need: [Int: Int] = [:]
            for r in records { for c in r.columns { need[c, default: 0] += r.bytes } }
            if fresh && need.allSatisfy({ heads[$0.key, default: 0] + $0.value <= capacity($0.key) }) {
                var out: [Reservation] = []
                for r in records {
                    var placements: [Placement] = []
                    for c in r.columns {
                        placements.append(Placement(column: c, offset: heads[c, default: 0]))
                        heads[c, default: 0] += r.bytes
                    }
                    inFlight += 1
                    recordsWritten += 1
                    out.append(Reservation(epoch: epoch, seq: nextSeq, placements: placements))
                    nextSeq += 1
                }
                return out
            }
            // Full: wait for the records in flight, then checkpoint.
            try checkpointLocked(checkpoint)
        }
    }

    /// Voids every record now, as when an area fills: waits for the records in flight, then
    /// runs `checkpoint(next)` (every in-place write durable, epoch `next` committed), and the
    /// areas start over.
    func checkpointNow(_ checkpoint: (UInt64) throws -> Void) throws {
        cond.lock()
        defer { cond.unlock() }
        while checkpointing { cond.wait() }
        try checkpointLocked(checkpoint)
    }

    /// ``checkpointNow(_:)`` with `cond` held (and released while `checkpoint` runs).
    private func checkpointLocked(_ checkpoint: (UInt64) throws -> Void) throws {
        checkpointing = true
        while inFlight > 0 { cond.wait() }
        let next = epoch + 1
        cond.unlock()
        var failure: (any Error)?
        do { try checkpoint(next) } catch { failure = error }
        cond.lock()
        checkpointing = false
        cond.broadcast()
        if let failure { throw failure }
        epoch = next
        heads = [:]
        if fresh { checkpoints += 1 }
        fresh = true
    }

    /// A record was written to some of its columns but not all, so its write never began in
    /// place: a copy of it may still be whole, and records computed after it (from lines
    /// without it) must not be replayed after it. The next record first checkpoints, which
    /// voids it.
    func abandon() { cond.withLock { fresh = false } }

    /// The record reserved has reached its in-place writes (or was abandoned).
    func finish() {
        cond.lock()
        inFlight -= 1
        if inFlight == 0 { cond.broadcast() }
        cond.unlock()
    }
}

/// Batches flushes of a device: a caller whose writes have completed waits for one flush
/// that started after that, and concurrent callers share it (group commit).
final class FlushBatcher: @unchecked Sendable {
    private struct State {
        var started: UInt64 = 0
        var completed: UInt64 = 0
        var lastSuccess: UInt64 = 0
        var running = false
        var lastError: DeviceError?
    }
    private let cond = NSCondition()
    private var states: [ObjectIdentifier: State] = [:]

    /// Returns once a flush of `device` that began after this call has succeeded; throws
    /// the error of the flush that should have covered it.
    func flush(_ device: any BlockDevice) throws(DeviceError) {
        let key = ObjectIdentifier(device)
        cond.lock()
        defer { cond.unlock() }
        let need = states[key, default: State()].started + 1
        while true {
            let s = states[key, default: State()]
            if s.lastSuccess >= need { return }
            if s.completed >= need, let e = s.lastError { throw e }
            if s.running { cond.wait(); continue }
            states[key, default: State()].running = true
            states[key, default: State()].started += 1
            let generation = states[key]!.started
            cond.unlock()
            var failure: DeviceError?
            do throws(DeviceError) { try device.flush() } catch { failure = error }
            cond.lock()
            states[key]!.running = false
            states[key]!.completed = generation
            if let failure { states[key]!.lastError = failure } else { states[key]!.lastSuccess = generation }
            cond.broadcast()
        }
    }
}
