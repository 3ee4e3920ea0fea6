import Foundation
import MetaControl
import MetaEngine
import MetaNBD

/// Exports a volume's engine over NBD.
///
/// Flush semantics hold across connections (a flush flushes every component, covering
/// writes completed on any connection), so multi-connection is advertised.
final class VolumeExport: NBDExport, @unchecked Sendable {
    let volume: Volume
    let readOnlySet: Bool
    let name: String
    let exportDescription: String

    init(volume: Volume, readOnly: Bool, description: String) {
        self.volume = volume
        self.readOnlySet = readOnly
        self.name = volume.name
        self.exportDescription = description
    }

    var sizeBytes: UInt64 { volume.sizeBytes }
    var readOnly: Bool { readOnlySet }
    /// The volume's sector (the largest logical sector of its devices): a client must not
    /// send smaller or misaligned requests, which 4096-byte-sector devices would refuse.
    var minimumBlockSize: UInt32 { UInt32(volume.sectorSize) }
    var preferredBlockSize: UInt32 { UInt32(max(4096, volume.sectorSize)) }
    var maximumRequestSize: UInt32 { 32 << 20 }
    var canTrim: Bool { volume.supportsDiscard }
    var canWriteZeroes: Bool { true }
    var canMultiConn: Bool { true }

    private func map(_ e: VolumeIOError) -> NBDIOError {
        switch e.code {
        case .io: return .io(e.description)
        case .invalid: return .invalid(e.description)
        case .noSpace: return .noSpace(e.description)
        case .readOnly: return .perm(e.description)
        }
    }

    func read(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(NBDIOError) {
        do { try volume.read(offset: offset, into: buffer) } catch { throw map(error) }
    }
    func write(offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool) throws(NBDIOError) {
        do { try volume.write(offset: offset, from: buffer, fua: fua) } catch { throw map(error) }
    }
    func flush() throws(NBDIOError) {
        do { try volume.flushRequest() } catch { throw map(error) }
    }
    func trim(offset: UInt64, length: UInt64, fua: Bool) throws(NBDIOError) {
        do {
            try volume.discard(offset: offset, length: length)
            if fua { try volume.flushRequest() }
        } catch { throw map(error) }
    }
    func writeZeroes(offset: UInt64, length: UInt64, fua: Bool, noHole: Bool) throws(NBDIOError) {
        do { try volume.writeZeroes(offset: offset, length: length, fua: fua) } catch { throw map(error) }
    }
}
