import Foundation

/// Something that happened to a set, to be recorded in its configuration by
/// ``SetModel/apply(_:to:)``. Events reported by a volume's engine name facts the engine
/// observed; events of commands name what the administrator asked for, after the command
/// has checked that it can be done.
///
/// An engine event about a volume that is no longer in the configuration (it was cleared
/// meanwhile) changes nothing.
public enum SetEvent: Sendable, Equatable {
    // MARK: reported by an engine

    /// An I/O to a RAID-5 or RAID-6 column failed; `state` is what
    /// ``ColumnHealth/stateAfterFailure(current:othersErred:)`` decided (`Unavailable` instead
    /// of `Maintenance` when the kernel reported the device removed). A column that was
    /// being rebuilt leaves its regeneration (``ResyncCheckpoint/dropping(column:)``: another
    /// column rebuilt with it goes on; with none, the record is dropped).
    case columnFailed(volume: String, column: Int, state: ComponentState)
    /// Columns found without their device when the volume was opened become `Unavailable`
    /// (they leave their regeneration, as in ``columnFailed(volume:column:state:)``: each
    /// restarts from the beginning once its device is back); with `dropCopy`, a copy whose
    /// target is missing is abandoned.
    case columnsMissing(volume: String, columns: [Int], dropCopy: Bool)
    /// The write log of a RAID-5 volume was replayed, reused its areas, or a run begins
    /// writing records: records of epochs before `epoch` are void. `untrusted`: lines torn
    /// before now may not be whole (a replay could not complete, or a write failed half-way
    /// and its record is voided): ``WriteLogConfig/repairPending`` until a parity repair.
    /// `deviceFailed`: the dedicated log device failed; its records are void with this epoch
    /// and records go to the columns' areas (``WriteLogConfig/deviceFailed``).
    case writeLogEpoch(volume: String, epoch: UInt64, untrusted: Bool = false, deviceFailed: Bool = false)
    /// The dirty-region repair went over every dirty region: a replay vouches for them again.
    case writeLogRepaired(volume: String)
    /// The dirty-region log of a RAID-5 volume is now exactly `regions`.
    case dirtyRegions(volume: String, regions: [UInt64])
    /// The volume's lost blocks are now exactly `ranges` (empty: none).
    case lostBlocks(volume: String, ranges: [LostRange])
    /// Background work on `column`/`target` has made durable everything below `doneBlocks`.
    /// Ignored when the volume's resync record is no longer that work.
    case resyncCheckpoint(volume: String, column: Int?, target: UUID?, doneBlocks: UInt64)
    /// Parity initialisation has reached `doneBlocks`; `finished` ends it (the initialising
    /// columns become `Okay`).
    case initializeCheckpoint(volume: String, doneBlocks: UInt64, finished: Bool)
    /// A check has gone over every line below `doneLines` and found `counts` (in all, since
    /// it began). Ignored unless a check is running.
    case checkCheckpoint(volume: String, doneLines: UInt64, counts: CheckCounts)
    /// A check ended: `result` and, for an abandoned one, why. Ignored unless a check is
    /// running.
    case checkEnded(volume: String, result: CheckResult, doneLines: UInt64, counts: CheckCounts,
                    failure: String?, at: Date)
    /// A regeneration or copy completed: the column is `Okay` on its target. The end of a
    /// copy swaps the target in, returns a hot spare it copied back from to its pool, and
    /// retires the devices the column no longer uses.
    case resyncFinished(volume: String, kind: ResyncKind)
    /// A copy's target failed: the copy is dropped, the column stays on its source.
    case copyAbandoned(volume: String, target: UUID)
    /// A copy's source failed at `doneBlocks`: the target becomes the column and is rebuilt
    /// from parity from there on (a hot spare standing in is broken).
    case copyBecameRegeneration(volume: String, column: Int, target: UUID, doneBlocks: UInt64)

    /// A mirror side's read or write failed while the others were served (a failed read is
    /// first answered from another side and rewritten; only a failed rewrite lands here):
    /// it becomes `Needs Maintenance`, or `Last Erred` when no other side is readable (a Last
    /// Erred side stays so, unless another side is `Okay`: then it needs maintenance). A
    /// side that is not in service (offline, Needs Maintenance) does not change. `at`: the
    /// side's block where it failed, when known: that component becomes `Maintenance` (a hot
    /// spare standing in there is `Broken`). A side that leaves service from `Okay` starts
    /// recording the regions written meanwhile (its ``SubmirrorRecord/staleRegions``), so
    /// that a spare or a replacement resyncs only the failed component's rows and those.
    case submirrorFailed(volume: String, submirror: Int, at: UInt64? = nil)
    /// A mirror was opened with dirty regions (the last run did not stop cleanly): its sides
    /// may differ there. Every readable side but the first `Okay` one (or, with none, the
    /// first `Last Erred` one) resyncs these regions from it (reads meanwhile come from that
    /// one), and the dirty-region log is emptied.
    case mirrorDirtyResync(volume: String, regions: [UInt64])
    /// A mirror side's resync has copied and flushed everything below `doneBlocks` (of its
    /// region list). Ignored unless the side is resyncing.
    case mirrorResyncCheckpoint(volume: String, submirror: Int, doneBlocks: UInt64)
    /// A mirror side's resync is complete: it is `Okay`.
    case mirrorResyncFinished(volume: String, submirror: Int)

    // MARK: commands and the hot-spare policy

    /// `offline MIRROR SIDE`: the side stops being written; regions written from now on are
    /// recorded for it. Refused unless another side stays `Okay`.
    case submirrorOffline(volume: String, submirror: Int)
    /// `online MIRROR SIDE`: an offline side resyncs the regions written while it was
    /// offline; a `Needs Maintenance` side (or a `Last Erred` one once another side is `Okay`)
    /// resyncs every region. Refused when no other side is readable to copy from.
    case submirrorOnline(volume: String, submirror: Int)
    /// `attach MIRROR SIDE`: a concat or stripe volume becomes a side, resyncing every region
    /// (or `Okay` at once with `resync: false`, the user's promise that it holds the data).
    case submirrorAttached(volume: String, submirror: String, resync: Bool)
    /// `detach MIRROR SIDE [-f]`: the side leaves the mirror and is a volume of its own again.
    /// Refused when it is the last `Okay` side, and for a side not `Okay` or offline without
    /// `force`.
    case submirrorDetached(volume: String, submirror: Int, force: Bool)
    /// `replace MIRROR OLD NEW` (or `replace SIDE OLD NEW`): component `component` of row
    /// `row` of side `submirror` is now `device` (labelled in the same commit), and the old
    /// device retires (a hot spare standing in for it is available again). The side resyncs
    /// from the others the regions of that row, plus (a side out of service) every region
    /// written since it left; every region when that is not known. Refused unless another
    /// side is readable.
    case sideComponentReplaced(volume: String, submirror: Int, row: Int, component: Int, device: UUID)
    /// The hot-spare policy: `spare` (from the side's pool) stands in for component
    /// `component` of row `row` of side `submirror` (`Needs Maintenance`), which resyncs as
    /// after a replacement. Refused unless another side is readable.
    case sideSpareTaken(volume: String, submirror: Int, row: Int, component: Int, spare: UUID)
    /// `set MIRROR --read-policy/--write-policy/--pass`: nil leaves a parameter as it is.
    case mirrorParameters(volume: String, read: MirrorReadPolicy?, write: MirrorWritePolicy?, pass: Int?)

    /// `set NAME --write-log MODE`: the volume's write log is now `log` (the command has
    /// checked that the columns have room for its area).
    case writeLogSet(volume: String, log: WriteLogConfig?)

    /// `check NAME [--repair]`: a check of every line begins (the volume is RAID-5, every
    /// column `Okay`, no resync, grow or other check running; otherwise refused).
    case checkBegun(volume: String, repair: Bool, totalLines: UInt64, at: Date)

    /// `replace NAME --enable DEV` of a Last Erred column: its data is trusted again (`Okay`,
    /// no resync); a resync it stopped resumes from its checkpoint.
    case lastErredEnabled(volume: String, column: Int)
    /// `replace NAME --enable DEV` of an erred column: rebuild it in place.
    case enableRegenerate(volume: String, column: Int)
    /// The device of an `Unavailable` column came back (udev `add`), proven by its label to
    /// be the same device and not served anywhere since: it is rebuilt in place over the
    /// regions written while it was away (``ComponentRecord/staleRegions``), or over every
    /// line when those were not tracked.
    case deviceReturned(volume: String, column: Int)
    /// `replace NAME OLD NEW` with OLD readable: copy it to `target` (a device already in the
    /// configuration); redundancy is kept.
    case copyBegun(volume: String, column: Int, target: UUID)
    /// `replace NAME OLD NEW` with OLD unreadable: `target` becomes the column and is rebuilt
    /// from the others; the old device (and a spare standing in, which is broken) retire.
    case regenerationBegun(volume: String, column: Int, target: UUID)
    /// A hot spare takes over an erred column (SVM's check_4_hs) and is rebuilt.
    case spareTaken(volume: String, column: Int, spare: UUID)
    /// RAID-6: a second erred column joins a regeneration that begins in the same
    /// transaction (``regenerationBegun`` or ``spareTaken``), onto `target` (a hot spare when
    /// `spare`): both columns are rebuilt in one pass. Refused unless the volume has two
    /// parity units and a regeneration that has made no progress and rebuilds one column.
    case regenerationJoined(volume: String, column: Int, target: UUID, spare: Bool)
    /// A hot spare failed while being rebuilt or standing in: it is `Broken`, the column goes
    /// back to `Maintenance` on its own device, and its column leaves a resync onto it.
    case spareFailed(volume: String, column: Int, spare: UUID)
    /// `clear NAME`: the volume is removed, spares standing in return to their pools, its
    /// devices retire.
    case cleared(volume: String)
    /// `grow NAME DEV…` of a concat/stripe: a row of `devices` (already labelled in the same
    /// commit) is appended; `sectorBlocks` rounds a one-device row to the volume's sector.
    case rowAppended(volume: String, devices: [UUID], interlaceBlocks: UInt64, sectorBlocks: UInt64)
    /// `grow NAME DEV…` of a RAID-5: `devices` (labelled `unused` in the same commit) will
    /// become data columns once their data areas are zeroed; recorded so that an interrupted
    /// grow resumes.
    case growBegun(volume: String, devices: [UUID])
    /// The new columns of a RAID-5 grow are zeroed (and flushed) up to `zeroedBlocks`.
    case growCheckpoint(volume: String, devices: [UUID], zeroedBlocks: UInt64)
    /// The new columns are zeroed: they become data columns (`Okay`: zero data keeps parity
    /// valid). Refused if a column failed or a resync started meanwhile.
    case growCommitted(volume: String, devices: [UUID])
    /// `grow --cancel`: an interrupted grow is forgotten and its devices retire.
    case growCancelled(volume: String)
    /// `hs delete POOL [DEV…]`: the spares leave the pool (the pool itself when `devices`
    /// is empty) and retire.
    case sparesRemoved(pool: String, devices: [UUID], deletePool: Bool)
    /// The coordinator's sweep: devices left `unused` that nothing refers to leave the set.
    case unusedDevicesReleased
}
