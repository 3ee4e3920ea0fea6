import Foundation
import MetaControl
import MetaEngine
import MetaNBD

/// Exports a volume's engine over NBD.
///
/// Flush semantics hold across connections (a flush flushes every component, covering
/// writes completed on any connection), so multi-connection is advertised.
package final class VolumeExport: NBDExport, @unchecked Sendable {
    let volume: Volume
    let readOnlySet: Bool
    package let name: String
    package let exportDescription: String
    /// Counters for `serve --metrics` (nil: not counted).
    let stats: VolumeIOStats?

    /// Exports `volume` under its own name (or `name`, for the simulator's connections).
    package init(volume: Volume, readOnly: Bool, description: String, name: String? = nil, stats: VolumeIOStats? = nil) {
        self.volume = volume
        self.readOnlySet = readOnly
        self.name = name ?? volume.name
        self.exportDescription = description
        self.stats = stats
    }

    package var sizeBytes: UInt64 { volume.sizeBytes }
    package var readOnly: Bool { readOnlySet }
    /// The volume's sector (the largest logical sector of its devices): a client must not
    /// send smaller or misaligned requests, which 4096-byte-sector devices would refuse.
    package var minimumBlockSize: UInt32 { UInt32(volume.sectorSize) }
    package var preferredBlockSize: UInt32 { UInt32(max(4096, volume.sectorSize)) }
    package var maximumRequestSize: UInt32 { 32 << 20 }
    package var canTrim: Bool { volume.supportsDiscard }
    package var canWriteZeroes: Bool { true }
    package var canMultiConn: Bool { true }

    private func map(_ e: VolumeIOError) -> NBDIOError {
        switch e.code {
        case .io: return .io(e.description)
        case .invalid: return .invalid(e.description)
        case .noSpace: return .noSpace(e.description)
        case .readOnly: return .perm(e.description)
        }
    }

    /// Runs one request, counted when metrics are on.
    @inline(__always)
    private func counted(_ op: VolumeIOStats.Op, bytes: UInt64, _ body: () throws(VolumeIOError) -> Void) throws(NBDIOError) {
        guard let stats else {
            do { try body() } catch { throw map(error) }
            return
        }
        let start = ContinuousClock.now
        do { try body() } catch {
            stats.record(op, bytes: bytes, since: start, failed: true)
            throw map(error)
        }
        stats.record(op, bytes: bytes, since: start, failed: false)
    }

    package func read(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(NBDIOError) {
        try counted(.read, bytes: UInt64(buffer.count)) { () throws(VolumeIOError) in try volume.read(offset: offset, into: buffer) }
    }
    package func write(offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool) throws(NBDIOError) {
        try counted(.write, bytes: UInt64(buffer.count)) { () throws(VolumeIOError) in try volume.write(offset: offset, from: buffer, fua: fua) }
    }
    package func flush() throws(NBDIOError) {
        try counted(.flush, bytes: 0) { () throws(VolumeIOError) in try volume.flushRequest() }
    }
    package func trim(offset: UInt64, length: UInt64, fua: Bool) throws(NBDIOError) {
        try counted(.trim, bytes: length) { () throws(VolumeIOError) in
            try volume.discard(offset: offset, length: length)
            if fua { try volume.flushRequest() }
        }
    }
    package func writeZeroes(offset: UInt64, length: UInt64, fua: Bool, noHole: Bool) throws(NBDIOError) {
        try counted(.zero, bytes: length) { () throws(VolumeIOError) in try volume.writeZeroes(offset: offset, length: length, fua: fua) }
    }
}
