import Foundation
import MetaDevices
import MetaLayout

extension RAID5Volume {
    /// Fast path for a write that covers whole lines of a healthy volume: computes every
    /// line's parity from the new data alone (no reads) and writes each column once, one
    /// contiguous write across all the lines, instead of one write per line and column.
    /// Returns false (having done nothing) when the request does not qualify.
    func fullLinesWrite(_ block: UInt64, _ buffer: UnsafeRawBufferPointer, _ layout: RAID5Layout) throws(VolumeIOError) -> Bool {
        let il = layout.interlaceBlocks
        let dataUnits = UInt64(layout.originalDataColumns)
        let lineBlocks = il * dataUnits
        let count = UInt64(buffer.count) / Volume.blockSize
        guard layout.addedColumns == 0, count >= 2 * lineBlocks, block % lineBlocks == 0, count % lineBlocks == 0,
              block + count <= layout.originalCapacityBlocks else { return false }
        let first = block / lineBlocks
        let end = first + count / lineBlocks
        for l in first..<end { locks.lock(l) }
        defer { for l in (first..<end).reversed() { locks.unlock(l) } }
        let rt = runtime.read { $0 }
        // The layout may have grown since the caller read it (the parity of a grown line
        // covers the appended columns): then the per-line path, which reads it afresh.
        guard rt.layout == layout, rt.copy == nil, rt.resyncColumn == nil,
              (first..<end).allSatisfy({ parityValid($0, rt) }),
              (0..<rt.columns.count).allSatisfy({ avail($0, line: first, rt) == .ok }) else {
            // Not eligible now: the per-line path, with the locks already held.
            try perLineLocked(block, buffer, layout, lines: first..<end)
            return true
        }
        let unit = Int(il * Volume.blockSize)
        let span = Int(end - first) * unit
        let cols = (0..<layout.columnCount).map { _ in AlignedBuffer(count: span) }
        defer { withExtendedLifetime(cols) {} }  // raw pointers below
        for (li, line) in (first..<end).enumerated() {
            let p = layout.parityColumn(line: line)
            var sources: [UnsafeRawPointer] = []
            for k in 0..<Int(dataUnits) {
                let c = layout.dataColumn(line: line, unit: k)
                let dst = cols[c].base + li * unit
                dst.copyMemory(from: buffer.baseAddress! + (li * Int(dataUnits) + k) * unit, byteCount: unit)
                sources.append(UnsafeRawPointer(dst))
            }
            Syndrome.generate(data: sources, p: cols[p].base + li * unit,
                              q: layout.qColumn(line: line).map { cols[$0].base + li * unit }, count: unit)
        }
        let failed = ErrorBox<DeviceError>()
        // One record per parity column, in that column's log area (``logColumns(line:_:)``):
        // the units of the lines whose parity it holds.
        var specs: [LogSpec] = []
        for p in 0..<layout.columnCount {
            let lines = (first..<end).filter { layout.parityColumn(line: $0) == p }
            guard let l0 = lines.first else { continue }
            var spec = LogSpec(line: l0, segments: [], payload: [])
            for line in lines {
                let li = Int(line - first)
                for c in 0..<layout.columnCount {
                    spec.segments.append(LogRecord.Segment(column: c, columnBlock: line * il, blocks: il))
                    spec.payload.append(UnsafeRawBufferPointer(start: cols[c].base + li * unit, count: unit))
                }
            }
            specs.append(spec)
        }
        if let log = rt.log, specs.contains(where: { $0.segments.count > LogRecord.maxSegments })
            || !log.fitsTogether(specs.map { LogRecord(logID: log.config.id, epoch: 0, seq: 0, segments: $0.segments).recordBytes }) {
            // Too large for its records: line by line, each line its own record.
            try perLineLocked(block, buffer, layout, lines: first..<end)
            return true
        }
        try logged(specs, rt, failed: failed) {
            parallel(layout.columnCount) { c in
                let col = rt.columns[c]
                do throws(DeviceError) {
                    try col.device!.write(UnsafeRawBufferPointer(cols[c].mutableBytes),
                                          at: col.startByte + first * il * Volume.blockSize)
                } catch { failed.add(c, error) }
            }
        }
        if failed.all.isEmpty { return true }
        // Some columns took the new lines and some did not: until the redo below succeeds,
        // their parity is not to be trusted.
        do throws(VolumeIOError) {
            for (c, e) in failed.all { try markFailed(c, e) }
            // Redo degraded, line by line, still holding the locks.
            try perLineLocked(block, buffer, layout, lines: first..<end)
        } catch {
            for l in first..<end { distrustParity(line: l) }
            throw error
        }
        return true
    }

    /// The per-line write path for lines whose locks the caller holds.
    private func perLineLocked(_ block: UInt64, _ buffer: UnsafeRawBufferPointer, _ layout: RAID5Layout,
                               lines: Range<UInt64>) throws(VolumeIOError) {
        let lineBlocks = layout.interlaceBlocks * UInt64(layout.originalDataColumns)
        let errors = ErrorBox<VolumeIOError>()
        let all = Array(lines)
        parallel(all.count) { i in
            let line = all[i]
            let pieces = layout.extents(block: line * lineBlocks, count: lineBlocks).map { e in
                Piece(column: e.column, unitOffset: e.unitOffset, blocks: e.blockCount,
                      bufferOffset: Int((e.logicalBlock - block) * Volume.blockSize))
            }
            do throws(VolumeIOError) { try self.writeLineLocked(line, pieces, buffer) } catch { errors.add(i, error) }
        }
        if let e = errors.first { throw e }
    }
}
