import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaLayout
import Synchronization

/// A concat or stripe volume: rows of striped components, no redundancy.
///
/// An I/O error is returned to the caller as EIO (there is nothing to rebuild from) and
/// logged; the component's state is not changed.
public final class StripeVolume: Volume, @unchecked Sendable {
    struct Member {
        var device: (any BlockDevice)?
        var startByte: UInt64
        var path: String
    }
    private struct Geometry {
        var layout: StripeLayout
        var members: [[Member]]
    }
    private let geometry: ReadMostly<Geometry>

    init(record: VolumeRecord, context: VolumeContext) throws(VolumeIOError) {
        let g = try Self.makeGeometry(record: record, context: context)
        geometry = ReadMostly(g)
        super.init(name: record.name, context: context)
        updateSectorSize(record)
    }

    private static func makeGeometry(record: VolumeRecord, context: VolumeContext) throws(VolumeIOError) -> Geometry {
        let config = context.store.config
        var members: [[Member]] = []
        for row in record.rows {
            var ms: [Member] = []
            for comp in row.components {
                let uuid = comp.activeDevice
                guard let dev = config.device(uuid) else {
                    throw VolumeIOError(volume: record.name, code: .io, operation: "open",
                                        detail: "component \(uuid) is not in the set's device list")
                }
                ms.append(Member(device: context.devices(uuid), startByte: dev.dataStartBlock * Volume.blockSize,
                                 path: dev.lastPath))
            }
            members.append(ms)
        }
        guard let layout = record.stripeLayout else {
            throw VolumeIOError(volume: record.name, code: .io, operation: "open", detail: "malformed volume record (a row without components)")
        }
        return Geometry(layout: layout, members: members)
    }

    /// Re-reads the geometry after the configuration changed (grow).
    public func reload() throws(VolumeIOError) {
        guard let rec = volumeRecord() else {
            throw VolumeIOError(volume: name, code: .io, operation: "reload", detail: "volume no longer exists")
        }
        let g = try Self.makeGeometry(record: rec, context: context)
        geometry.withLock { $0 = g }
        updateSectorSize(rec)
    }

    public override var sizeBytes: UInt64 { geometry.read { $0.layout.totalBlocks } * Volume.blockSize }
    public override var supportsDiscard: Bool { true }

    override var devicesAreBuffered: Bool {
        geometry.read { g in g.members.allSatisfy { row in row.allSatisfy { $0.device?.isBuffered ?? true } } }
    }

    private enum Op { case read(UnsafeMutableRawBufferPointer), write(UnsafeRawBufferPointer), discard }

    private func run(_ block: UInt64, count: UInt64, _ op: Op) throws(VolumeIOError) {
        let g = geometry.read { $0 }
        let extents = g.layout.extents(block: block, count: count)
        if extents.count == 1 {
            // One component (most small requests): no fan-out.
            if let e = runExtent(extents[0], of: block, op, g) { throw e }
            return
        }
        let errors = ErrorBox<VolumeIOError>()
        let bytes: Int? = if case .discard = op { nil } else { Int(count * Volume.blockSize) }
        parallel(extents.count, bytes: bytes) { i in
            if let e = self.runExtent(extents[i], of: block, op, g) { errors.add(i, e) }
        }
        if let e = errors.first { throw e }
    }

    /// Runs the part of `op` (a request starting at `block`) that falls in extent `e`; returns its error.
    private func runExtent(_ e: StripeExtent, of block: UInt64, _ op: Op, _ g: Geometry) -> VolumeIOError? {
        let bs = Volume.blockSize
        let m = g.members[e.row][e.column]
        let devOffset = m.startByte + e.componentBlock * bs
        let bufOffset = Int((e.logicalBlock - block) * bs)
        let n = Int(e.blockCount * bs)
        guard let dev = m.device else {
            return VolumeIOError(volume: name, code: .io, operation: "io", offset: e.logicalBlock * bs,
                                 length: UInt64(n), detail: "component \(m.path) is unavailable")
        }
        do throws(DeviceError) {
            switch op {
            case .read(let buf):
                try dev.read(into: UnsafeMutableRawBufferPointer(start: buf.baseAddress! + bufOffset, count: n), at: devOffset)
            case .write(let buf):
                try dev.write(UnsafeRawBufferPointer(start: buf.baseAddress! + bufOffset, count: n), at: devOffset)
            case .discard:
                try dev.discard(offset: devOffset, length: UInt64(n))
            }
            return nil
        } catch {
            context.logger.error("\(name): \(error)")
            return VolumeIOError(volume: name, code: .io, operation: "io", offset: e.logicalBlock * bs,
                                 length: UInt64(n), detail: error.description, underlying: error)
        }
    }

    override func readBlocks(_ block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(VolumeIOError) {
        try run(block, count: UInt64(buffer.count) / Volume.blockSize, .read(buffer))
    }

    override func writeBlocks(_ block: UInt64, from buffer: UnsafeRawBufferPointer) throws(VolumeIOError) {
        try run(block, count: UInt64(buffer.count) / Volume.blockSize, .write(buffer))
    }

    override func discardBlocks(_ block: UInt64, count: UInt64) throws(VolumeIOError) {
        try run(block, count: count, .discard)
    }

    public override func flush() throws(VolumeIOError) {
        let devs = geometry.read { $0.members.flatMap { $0 } }
        let errors = ErrorBox<VolumeIOError>()
        // `parallel`, not `runParallel`: under a scheduler (the simulator) every fan-out stays
        // on the calling thread.
        parallel(devs.count) { i in
            guard let d = devs[i].device else { return }
            do throws(DeviceError) { try d.flush() } catch {
                errors.add(i, VolumeIOError(volume: self.name, code: .io, operation: "flush", detail: error.description,
                                            underlying: error))
            }
        }
        if let e = errors.first { throw e }
    }
}
