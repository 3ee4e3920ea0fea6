import Foundation
import MetaDB
import MetaDevices
import Synchronization

/// How a server does the volumes' data I/O on its components (`metactl serve --cache`).
public enum CacheMode: String, Sendable, CaseIterable {
    /// `O_DIRECT` (the default): every request reaches the device, nothing is cached twice,
    /// and a device's write error fails the request that caused it.
    case none
    /// Through the kernel's page cache, as nbdkit's file plugin and qemu's `cache=writeback`
    /// do: repeated reads come from memory and writes are acknowledged once cached. FLUSH and
    /// FUA still reach the disk (`fdatasync`), and the state database is always written
    /// directly; but a device's write error may only show at the next flush, as an error of
    /// that flush.
    case writeback
}

/// The devices a set's engines do data I/O on: the state database's own descriptors, or
/// (in ``CacheMode/writeback``) a second, buffered descriptor for each `O_DIRECT` one.
final class DataDevices: Sendable {
    let mode: CacheMode
    private let reopened = Mutex<[UUID: FileDevice]>([:])

    init(mode: CacheMode) { self.mode = mode }

    /// The device to use for data I/O on `uuid`, or nil when the set has no such device open.
    func device(_ uuid: UUID, in db: SetDatabase) -> (any BlockDevice)? {
        guard let base = db.device(uuid) else { return nil }
        guard mode == .writeback, let file = base as? FileDevice, file.isDirect else { return base }
        return reopened.withLock { map -> any BlockDevice in
            if let d = map[uuid], d.path == file.path { return d }
            map[uuid]?.close()
            // Not exclusive: the state database's descriptor already holds the device.
            guard let d = try? FileDevice(path: file.path, options: OpenOptions(readOnly: file.isReadOnly,
                                                                                exclusive: false, direct: .never)),
                  d.sizeBytes == file.sizeBytes else { return base }
            map[uuid] = d
            return d
        }
    }

    /// Closes the buffered descriptors.
    func closeAll() {
        reopened.withLock { map in
            for d in map.values { d.close() }
            map = [:]
        }
    }
}
