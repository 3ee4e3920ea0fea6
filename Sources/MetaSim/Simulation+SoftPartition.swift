import Foundation
import MetaEngine
import MetaLayout
import MetaModel

/// A piece of the volume a soft partition view maps: parent blocks `parent`, at logical
/// block `logical` of the soft partition.
struct SoftPiece: Sendable {
    var parent: Range<UInt64>
    var logical: UInt64
}

/// Soft partitions in the simulation: a soft partition of three extents over the volume, in
/// shuffled order (the last third first), that one client request in four goes through when
/// it falls inside one extent. The model stays in the volume's blocks: the bytes a request
/// through the soft partition writes and reads are the volume's, at the extent's place, so
/// every check of the simulation holds for them as well, under every fault and crash.
extension Simulation {
    /// The request to make: on the soft partition view (and its offset there) or as given.
    func throughSoftPartition(_ e: Volume, offset: UInt64, length: UInt64) -> (Volume, UInt64) {
        guard e === volumeEngine, softRng.below(4) == 0, let view = softView(over: e) else { return (e, offset) }
        let lo = offset / 512, hi = (offset + length + 511) / 512
        guard let p = view.pieces.first(where: { $0.parent.contains(lo) && hi <= $0.parent.upperBound }) else { return (e, offset) }
        count("softpart-io")
        return (view.volume, (p.logical + lo - p.parent.lowerBound) * 512 + offset % 512)
    }

    /// The view over `e`, made again when the engine or its size changed (restart, grow).
    private func softView(over e: Volume) -> (parent: ObjectIdentifier, parentBytes: UInt64, volume: SoftPartitionVolume, pieces: [SoftPiece])? {
        if let v = softView, v.parent == ObjectIdentifier(e), v.parentBytes == e.sizeBytes { return v }
        softView = nil
        let g = UInt64(max(SoftPartitionLayout.watermarkBlocks, UInt64(e.sectorSize / 512)))
        let total = e.sizeBytes / 512 / g * g
        guard total >= 6 * g else { return nil }
        let a = g, b = total / 3 / g * g, c = 2 * total / 3 / g * g
        guard a < b, b < c, c < total else { return nil }
        let ranges = [c..<total, a..<b, b..<c]
        var pieces: [SoftPiece] = []
        var logical: UInt64 = 0
        var extents: [SoftExtent] = []
        for r in ranges {
            pieces.append(SoftPiece(parent: r, logical: logical))
            extents.append(SoftExtent(watermarkBlock: r.lowerBound - SoftPartitionLayout.watermarkBlocks, blocks: UInt64(r.count)))
            logical += UInt64(r.count)
        }
        var rec = VolumeRecord(name: "sp0", type: .softpart)
        rec.softPartition = SoftPartitionRecord(parent: name, extents: extents)
        guard let v = try? VolumeFactory.open(rec, context: context, parent: e) as? SoftPartitionVolume else { return nil }
        softView = (ObjectIdentifier(e), e.sizeBytes, v, pieces)
        return softView
    }
}
