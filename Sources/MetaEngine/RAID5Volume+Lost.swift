import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaLayout

/// Lost blocks: data of a column that is known to be gone. They come from the write hole
/// without a write log: a crash tore lines while a column was missing, and that column was
/// then rebuilt from the lines' untrusted parity. The rebuilt bytes are kept on the column
/// (so parity stays consistent with them) but never returned: reads fail with EIO until a
/// write replaces them. The list is in the state database, so this survives restarts, and
/// no resync turns such blocks back into good data.
extension RAID5Volume {
    /// Whether a piece of `line` touches lost blocks.
    func pieceIsLost(_ rt: Runtime, line: UInt64, column: Int, unitOffset: UInt64, blocks: UInt64) -> Bool {
        guard !rt.lost.isEmpty else { return false }
        return LostBlocks.isLost(rt.lost, column: column, start: line * rt.layout.interlaceBlocks + unitOffset, count: blocks)
    }

    func lostError(_ op: String, line: UInt64, column: Int) -> VolumeIOError {
        ioError(op, line: line, "column \(column)'s data here is lost (torn by a crash while the column was missing); it reads back again once rewritten")
    }

    /// A write to `line` succeeded: the blocks it wrote are good again (flushed, then
    /// committed, before the write is answered, so that neither a restart hides acknowledged
    /// data behind EIO nor a power loss exposes the old bytes as good).
    func clearLost(line: UInt64, _ pieces: [Piece]) throws(VolumeIOError) {
        let rt = runtime.read { $0 }
        guard pieces.contains(where: { pieceIsLost(rt, line: line, column: $0.column, unitOffset: $0.unitOffset, blocks: $0.blocks) })
        else { return }
        // The record says the new data is there: it must be durable first, or a power loss
        // would bring back the rebuilt garbage as good data. (Before the state lock: a flush
        // failure records the column's state under it.)
        try flush()
        stateLock.lock()
        defer { stateLock.unlock() }
        var lost = runtime.read { $0.lost }
        for p in pieces {
            lost = LostBlocks.subtract(lost, column: p.column, start: line * rt.layout.interlaceBlocks + p.unitOffset, count: p.blocks)
        }
        // What is left of a range in parity positions only is no lost data.
        let layout = rt.layout
        lost.removeAll { r in
            let il = layout.interlaceBlocks
            return (r.start / il...(r.end - 1) / il).allSatisfy { layout.isParity(column: r.column, line: $0) }
        }
        let new = lost
        do {
            try context.store.apply(.lostBlocks(volume: name, ranges: new))
        } catch {
            throw VolumeIOError(volume: name, code: .io, operation: "write",
                                detail: "line \(line): rewritten lost blocks could not be recorded as good: \(error)")
        }
        runtime.withLock { $0.lost = new }
    }

    /// Before a regeneration of `column` from `fromLine`: the lines of regions whose parity is
    /// not trusted cannot be rebuilt correctly; record them lost for that column first.
    func recordLostBeforeRegeneration(column: Int, fromLine: UInt64) throws {
        let rt = runtime.read { $0 }
        let il = rt.layout.interlaceBlocks
        var add: [LostRange] = []
        for r in rt.unrepairedRegions.sorted() where rt.rebuildRegions?.contains(r) ?? true {
            let first = max(fromLine, r * rt.linesPerRegion)
            let end = min(rt.layout.lineCount, (r + 1) * rt.linesPerRegion)
            if first < end { add.append(LostRange(column: column, start: first * il, count: (end - first) * il)) }
        }
        try recordLost(add, "column \(column) is rebuilt over \(add.count) region(s) whose parity a crash left untrusted")
    }

    /// Before a regeneration step rebuilds `lines` of `columns`: the lines among them that a
    /// failed write tore since the regeneration began (``tornBeforeRebuilt``) are
    /// recorded lost for the rebuilt columns (their data there is only in the torn parity).
    func recordTornLines(columns: [Int], lines: Range<UInt64>) throws {
        let torn = tornBeforeRebuilt.withLock { $0.filter { lines.contains($0) } }.sorted()
        guard !torn.isEmpty else { return }
        let layout = runtime.read { $0.layout }
        let il = layout.interlaceBlocks
        var add: [LostRange] = []
        for line in torn {
            for c in columns where !layout.isParity(column: c, line: line) {
                add.append(LostRange(column: c, start: line * il, count: il))
            }
        }
        try recordLost(add, "\(torn.count) line(s) torn by a failed write are rebuilt on column(s) \(columns)")
        tornBeforeRebuilt.withLock { $0.subtract(torn) }
    }

    /// Adds `add` to the lost blocks, in the state database first.
    private func recordLost(_ add: [LostRange], _ why: String) throws {
        guard !add.isEmpty else { return }
        stateLock.lock()
        defer { stateLock.unlock() }
        let old = runtime.read { $0.lost }
        let new = LostBlocks.union(old, add)
        context.logger.error("\(name): \(why): \(add.reduce(0) { $0 + $1.count }) block(s) of it are recorded lost (they read as EIO until rewritten)")
        try context.store.apply(.lostBlocks(volume: name, ranges: new))
        runtime.withLock { $0.lost = new }
    }

    /// Lost blocks recorded for this volume.
    public var lostBlocks: [LostRange] { runtime.read { $0.lost } }
}
