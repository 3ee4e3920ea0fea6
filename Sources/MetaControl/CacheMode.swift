import Foundation
import MetaDB
import MetaModel
import MetaDevices
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

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
///
/// The buffered descriptor is opened by path, possibly long after the set was opened (a hot
/// spare or a replacement is first used at takeover or reload time), and not exclusively
/// (the state database's descriptor holds the device). The path may name another device or
/// file by then (hot-unplug and re-enumeration, an image file replaced under the same
/// name), so the reopened descriptor is used only when `fstat` says it is the very file or
/// device node the `O_DIRECT` descriptor has open; otherwise the engine gets the `O_DIRECT`
/// descriptor itself (correct, only not cached) and the device is listed in
/// ``mismatched``.
final class DataDevices: Sendable {
    let mode: CacheMode
    private let reopened = Mutex<[UUID: FileDevice]>([:])
    private let refused = Mutex<[UUID: String]>([:])

    init(mode: CacheMode) { self.mode = mode }

    /// The device to use for data I/O on `uuid`, or nil when the set has no such device open.
    func device(_ uuid: UUID, in db: SetDatabase) -> (any BlockDevice)? {
        guard let base = db.device(uuid) else { return nil }
        return device(uuid, over: base)
    }

    /// The device to use for data I/O on `uuid`, whose state database descriptor is `base`.
    func device(_ uuid: UUID, over base: any BlockDevice) -> any BlockDevice {
        guard mode == .writeback, let file = base as? FileDevice, file.isDirect else { return base }
        return reopened.withLock { map -> any BlockDevice in
            if let d = map[uuid], Self.sameFile(d.fd, file.fd) { return d }
            map[uuid]?.close()
            map[uuid] = nil
            // Not exclusive: the state database's descriptor already holds the device.
            guard let d = try? FileDevice(path: file.path, options: OpenOptions(readOnly: file.isReadOnly,
                                                                                exclusive: false, direct: .never))
            else { return base }
            guard d.sizeBytes == file.sizeBytes, Self.sameFile(d.fd, file.fd) else {
                d.close()
                refused.withLock { $0[uuid] = file.path }
                return base
            }
            refused.withLock { $0[uuid] = nil }
            map[uuid] = d
            return d
        }
    }

    /// Devices whose path named another file or device than the set's descriptor when a
    /// buffered descriptor was to be opened (UUID → path): they do uncached I/O.
    var mismatched: [UUID: String] { refused.withLock { $0 } }

    /// Whether two descriptors have the same file or device node open: same type, same
    /// `st_dev`/`st_ino` (the inode of the file, or of the device node), and for block
    /// devices the same `st_rdev`.
    static func sameFile(_ a: Int32, _ b: Int32) -> Bool {
        var sa = stat(), sb = stat()
        guard fstat(a, &sa) == 0, fstat(b, &sb) == 0 else { return false }
        let type = sa.st_mode & S_IFMT
        guard type == sb.st_mode & S_IFMT, sa.st_dev == sb.st_dev, sa.st_ino == sb.st_ino else { return false }
        return type != S_IFBLK || sa.st_rdev == sb.st_rdev
    }

    /// Closes the buffered descriptors of these devices (they left the volumes).
    func forget(_ uuids: some Sequence<UUID>) {
        reopened.withLock { map in
            for u in uuids { map.removeValue(forKey: u)?.close() }
        }
        refused.withLock { for u in uuids { $0[u] = nil } }
    }

    /// UUIDs that have a buffered descriptor open.
    var reopenedDevices: Set<UUID> { reopened.withLock { Set($0.keys) } }

    /// Closes the buffered descriptors.
    func closeAll() {
        reopened.withLock { map in
            for d in map.values { d.close() }
            map = [:]
        }
    }
}
