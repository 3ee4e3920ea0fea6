import Foundation
import MetaDevices
import MetaDB
import MetaLayout
import MetaModel

/// A soft partition: extents of a parent volume, concatenated (SVM's `metainit -p`). Every
/// request is mapped onto the parent's own byte-level API, so whatever the parent is
/// (concat, stripe, RAID-5 or RAID-6) keeps its guarantees: a degraded RAID-5 parent serves
/// its soft partitions degraded, a lost range of the parent reads as EIO here too.
///
/// The soft partition holds no devices and has no state of its own: its state is its
/// parent's.
public final class SoftPartitionVolume: Volume, @unchecked Sendable {
    /// The volume the extents are in.
    public let parent: Volume
    private let layout: ReadMostly<SoftPartitionLayout>

    init(record: VolumeRecord, parent: Volume, context: VolumeContext) throws(VolumeIOError) {
        guard let sp = record.softPartition, !sp.extents.isEmpty else {
            throw VolumeIOError(volume: record.name, code: .io, operation: "open", detail: "malformed soft partition record (no extents)")
        }
        self.parent = parent
        layout = ReadMostly(sp.layout)
        super.init(name: record.name, context: context)
        try Self.checkFits(sp.layout, record.name, parent)
        setSectorSize(parent.sectorSize)
    }

    private static func checkFits(_ l: SoftPartitionLayout, _ name: String, _ parent: Volume) throws(VolumeIOError) {
        let parentBlocks = parent.sizeBytes / Volume.blockSize
        if let bad = l.extents.first(where: { $0.end > parentBlocks }) {
            throw VolumeIOError(volume: name, code: .io, operation: "open",
                                detail: "an extent (blocks \(bad.dataBlock)–\(bad.end - 1)) lies beyond the end of \(parent.name) (\(parentBlocks) blocks)")
        }
    }

    /// Re-reads the extents after the configuration changed (grow).
    public func reload() throws(VolumeIOError) {
        guard let sp = volumeRecord()?.softPartition else {
            throw VolumeIOError(volume: name, code: .io, operation: "reload", detail: "volume no longer exists")
        }
        try Self.checkFits(sp.layout, name, parent)
        layout.withLock { $0 = sp.layout }
    }

    public override var sizeBytes: UInt64 { layout.read { $0.totalBlocks } * Volume.blockSize }
    public override var supportsDiscard: Bool { parent.supportsDiscard }

    override func readBlocks(_ block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(VolumeIOError) {
        let bs = Volume.blockSize
        let l = layout.read { $0 }
        try l.forEachPiece(block: block, count: UInt64(buffer.count) / bs) { (p) throws(VolumeIOError) in
            let at = Int((p.logicalBlock - block) * bs)
            try parent.read(offset: p.parentBlock * bs,
                            into: UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + Int(p.count * bs)]))
        }
    }

    override func writeBlocks(_ block: UInt64, from buffer: UnsafeRawBufferPointer) throws(VolumeIOError) {
        let bs = Volume.blockSize
        let l = layout.read { $0 }
        try l.forEachPiece(block: block, count: UInt64(buffer.count) / bs) { (p) throws(VolumeIOError) in
            let at = Int((p.logicalBlock - block) * bs)
            try parent.write(offset: p.parentBlock * bs, from: UnsafeRawBufferPointer(rebasing: buffer[at..<at + Int(p.count * bs)]))
        }
    }

    override func discardBlocks(_ block: UInt64, count: UInt64) throws(VolumeIOError) {
        let bs = Volume.blockSize
        let l = layout.read { $0 }
        try l.forEachPiece(block: block, count: count) { (p) throws(VolumeIOError) in
            try parent.discard(offset: p.parentBlock * bs, length: p.count * bs)
        }
    }

    public override func flush() throws(VolumeIOError) { try parent.flushRequest() }

    // MARK: watermarks

    /// Writes the watermarks of `record`'s extents (in use, or free when clearing), then
    /// flushes the parent.
    /// With `newestFirst`, the last that many extents are written before the others (a grow:
    /// a crash part-way leaves the old or the new generation recoverable).
    public static func writeWatermarks(of record: VolumeRecord, inUse: Bool = true, to parent: Volume,
                                       newestFirst: Int = 0) throws(VolumeIOError) {
        guard let sp = record.softPartition else { return }
        let n = sp.extents.count
        let k = min(n, max(0, newestFirst))
        let order = Array((n - k)..<n) + Array(0..<(n - k))
        for i in order {
            let e = sp.extents[i]
            let w = SoftPartitionWatermark(id: sp.id, name: record.name, generation: sp.generation, index: UInt32(i),
                                           count: UInt32(sp.extents.count), blocks: e.blocks, block: e.watermarkBlock, inUse: inUse)
            let bytes = w.encode()
            let failure = bytes.withUnsafeBytes { b -> VolumeIOError? in
                do throws(VolumeIOError) { try parent.write(offset: e.watermarkBlock * Volume.blockSize, from: b); return nil } catch { return error }
            }
            if let failure { throw failure }
        }
        try parent.flushRequest()
    }

    /// Whether every extent of `record` has the watermark its configuration says (in use,
    /// this name, identity, generation, index, count and size) in `parent`; false when one
    /// differs or cannot be read.
    public static func watermarksMatch(of record: VolumeRecord, in parent: Volume) -> Bool {
        guard let sp = record.softPartition else { return true }
        let buf = AlignedBuffer(count: Int(SoftPartitionLayout.watermarkBlocks * Volume.blockSize))
        defer { withExtendedLifetime(buf) {} }
        for (i, e) in sp.extents.enumerated() {
            do throws(VolumeIOError) { try parent.read(offset: e.watermarkBlock * Volume.blockSize, into: buf.mutableBytes) } catch { return false }
            let want = SoftPartitionWatermark(id: sp.id, name: record.name, generation: sp.generation, index: UInt32(i),
                                              count: UInt32(sp.extents.count), blocks: e.blocks, block: e.watermarkBlock)
            guard let got = SoftPartitionWatermark.decode(Array(buf.bytes), at: e.watermarkBlock),
                  got.id == want.id, got.name == want.name, got.generation == want.generation, got.index == want.index,
                  got.count == want.count, got.blocks == want.blocks, got.block == want.block, got.inUse else { return false }
        }
        return true
    }

    /// Reads every watermark of `parent`: every 4 KiB slot of its free space, read in 1 MiB
    /// chunks, jumping over the data of each extent found (so a well-used parent is read
    /// little). Unreadable chunks are skipped and counted. `progress` gets (block, total).
    public static func scanWatermarks(of parent: Volume,
                                      progress: ((UInt64, UInt64) -> Void)? = nil) -> (found: [SoftPartitionWatermark], unreadable: Int) {
        let bs = Volume.blockSize
        let total = parent.sizeBytes / bs
        let wmb = SoftPartitionLayout.watermarkBlocks
        let chunkBlocks: UInt64 = 2048
        var found: [SoftPartitionWatermark] = []
        var unreadable = 0
        var chunk = [UInt8](repeating: 0, count: Int(chunkBlocks * bs))
        var pos: UInt64 = 0
        var reported: UInt64 = 0
        scan: while pos + wmb <= total {
            let n = min(chunkBlocks, (total - pos) / wmb * wmb)
            let ok = chunk.withUnsafeMutableBytes { b -> Bool in
                do { try parent.read(offset: pos * bs, into: UnsafeMutableRawBufferPointer(rebasing: b[0..<Int(n * bs)])); return true } catch { return false }
            }
            if !ok { unreadable += 1; pos += n; continue }
            var slot: UInt64 = 0
            while slot < n {
                let at = Int(slot * bs)
                if chunk[at] == 0x4D, let w = SoftPartitionWatermark.decode(Array(chunk[at..<at + SoftPartitionWatermark.size]), at: pos + slot),
                   w.inUse, pos + slot + wmb + w.blocks <= total {
                    found.append(w)
                    let end = pos + slot + wmb + w.blocks
                    pos = (end + wmb - 1) / wmb * wmb
                    continue scan
                }
                slot += wmb
            }
            pos += n
            if let progress, pos - reported >= total / 100 + 1 { progress(min(pos, total), total); reported = pos }
        }
        return (found, unreadable)
    }
}
