import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaLayout

/// The engine side of `metactl grow`: how a volume record gains a row or columns, how new
/// RAID-5 columns are zeroed, and how a running engine picks the new geometry up.
///
/// Existing data never moves: a concat/stripe gains a row after its last one; a RAID-5
/// gains data-only columns concatenated after its original capacity (see ``RAID5Layout``).
/// A new RAID-5 column must be all zeroes over its used area before it joins, so that the
/// parity of every line, the XOR of all data columns including the new ones, stays valid.
public enum VolumeGrowth {
    /// Most rows a concat/stripe may have.
    public static let maxRows = 128
    /// Most components in one stripe row.
    public static let maxRowComponents = 32
    /// Most columns (original plus added) of a RAID-5 volume.
    public static let maxRAID5Columns = 32

    /// Size in bytes a volume record describes (0 for a malformed record).
    public static func sizeBytes(of v: VolumeRecord) -> UInt64 {
        v.totalBlocks * Volume.blockSize
    }

    /// A device whose data area is being zeroed.
    public struct ZeroTarget: Sendable {
        public var device: any BlockDevice
        /// First block of the device's data area.
        public var dataStartBlock: UInt64
        public init(device: any BlockDevice, dataStartBlock: UInt64) {
            self.device = device; self.dataStartBlock = dataStartBlock
        }
    }

    /// Writes zeroes over blocks `[fromBlock, fromBlock + blocks)` of every target's data
    /// area (targets in parallel). Image files and block devices use
    /// `FALLOC_FL_ZERO_RANGE` / `BLKZEROOUT` when the system offers them; other devices
    /// get zero-filled writes. Nothing is flushed: call ``flush(_:)`` before recording
    /// progress.
    public static func zero(_ targets: [ZeroTarget], fromBlock: UInt64, blocks: UInt64) throws(DeviceError) {
        let errors = ErrorBox<DeviceError>()
        runParallel(targets.count) { i in
            let t = targets[i]
            let offset = (t.dataStartBlock + fromBlock) * Volume.blockSize
            let length = blocks * Volume.blockSize
            do throws(DeviceError) {
                if let f = t.device as? FileDevice {
                    try f.writeZeroes(offset: offset, length: length)
                } else {
                    try writeZeroBuffers(t.device, offset: offset, length: length)
                }
            } catch { errors.add(i, error) }
        }
        if let e = errors.first { throw e }
    }

    /// Flushes every target.
    public static func flush(_ targets: [ZeroTarget]) throws(DeviceError) {
        for t in targets { try t.device.flush() }
    }

    private static func writeZeroBuffers(_ dev: any BlockDevice, offset: UInt64, length: UInt64) throws(DeviceError) {
        let chunk: UInt64 = 1 << 20
        let zero = AlignedBuffer(count: Int(min(chunk, max(length, 512))))
        defer { withExtendedLifetime(zero) {} }  // pointers into it outlive its last use
        var pos: UInt64 = 0
        while pos < length {
            let n = Int(min(chunk, length - pos))
            try dev.write(UnsafeRawBufferPointer(start: zero.base, count: n), at: offset + pos)
            pos += UInt64(n)
        }
    }
}

extension Volume {
    /// Re-reads the geometry from the configuration after a grow committed. The swap is a
    /// snapshot exchange: requests in flight finish on the old geometry, which is a prefix
    /// of the new one (RAID-5: the added columns are zero, so parity computed without them
    /// is the same as with them).
    public func reloadGeometry() throws(VolumeIOError) {
        if let s = self as? StripeVolume { try s.reload() }
        else if let r = self as? RAID5Volume { try r.reload() }
    }
}
