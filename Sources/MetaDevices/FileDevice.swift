import MetaSystem
#if canImport(Glibc)
import Glibc
#endif
import CMetaShim
import Synchronization

/// How ``FileDevice`` opens a component.
public struct OpenOptions: Sendable, Equatable {
    /// Whether to use `O_DIRECT`.
    public enum Direct: Sendable, Equatable {
        /// Try `O_DIRECT`; fall back to buffered I/O (plus `fdatasync` on flush) where the
        /// file system refuses it (tmpfs).
        case auto
        /// Require `O_DIRECT`; fail if the file system refuses it.
        case always
        /// Buffered I/O.
        case never
    }
    /// Open read-only.
    public var readOnly: Bool
    /// Take exclusive ownership: `O_EXCL` on a block device (fails while it is mounted or
    /// held), an `flock(LOCK_EX)` on a regular file.
    public var exclusive: Bool
    /// `O_DIRECT` policy.
    public var direct: Direct

    public init(readOnly: Bool = false, exclusive: Bool = true, direct: Direct = .auto) {
        self.readOnly = readOnly
        self.exclusive = exclusive
        self.direct = direct
    }
}

/// What a path turned out to be.
public enum ComponentKind: String, Sendable, Codable {
    case blockDevice = "block"
    case regularFile = "file"
}

/// A component backed by a real block device or regular image file.
///
/// Positional I/O loops over short transfers and retries `EINTR`. With `O_DIRECT` the
/// caller's buffer is used directly when it is aligned and bounced otherwise.
public final class FileDevice: BlockDevice, @unchecked Sendable {
    public let path: String
    public let sizeBytes: UInt64
    public let logicalSectorSize: Int
    public let physicalSectorSize: Int
    /// Block device or regular file.
    public let kind: ComponentKind
    /// Whether the descriptor was opened with `O_DIRECT`.
    public let isDirect: Bool
    /// Whether the device was opened read-only (by request or because it is read-only).
    public let isReadOnly: Bool
    /// The raw descriptor (valid until ``close()``).
    public let fd: Int32
    /// `st_rdev` for block devices, `st_dev` for files.
    public let deviceNumber: UInt64
    /// Inode for files (identifies the same file under two names).
    public let inode: UInt64
    private let closed = Atomic<Bool>(false)

    public var discardZeroes: Bool { kind == .regularFile }
    /// Opened without `O_DIRECT`: reads and writes go through the page cache.
    public var isBuffered: Bool { !isDirect }

    /// Opens `path` as a component.
    public init(path: String, options: OpenOptions = OpenOptions()) throws(DeviceError) {
        self.path = path
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw DeviceError(path: path, operation: .stat, errno: Glibc.errno)
        }
        let isBlock = (st.st_mode & S_IFMT) == S_IFBLK
        let isFile = (st.st_mode & S_IFMT) == S_IFREG
        guard isBlock || isFile else {
            throw DeviceError(path: path, operation: .open, errno: EINVAL,
                              detail: "not a block device or regular file")
        }
        kind = isBlock ? .blockDevice : .regularFile
        var flags = (options.readOnly ? O_RDONLY : O_RDWR) | metashim_o_cloexec()
        if isBlock && options.exclusive { flags |= O_EXCL }
        var fd: Int32 = -1
        var direct = false
        if options.direct != .never {
            fd = metashim_open(path, flags | metashim_o_direct(), 0)
            if fd >= 0 {
                direct = true
            } else if options.direct == .always || fd != -EINVAL {
                throw DeviceError(path: path, operation: .open, errno: -fd,
                                  detail: fd == -EBUSY ? "device is in use (mounted or held)" : nil)
            }
        }
        if fd < 0 {
            fd = metashim_open(path, flags, 0)
            if fd < 0 {
                throw DeviceError(path: path, operation: .open, errno: -fd,
                                  detail: fd == -EBUSY ? "device is in use (mounted or held)" : nil)
            }
        }
        if isFile && options.exclusive {
            let op = (options.readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB
            let rc = retryingInterrupted { flock(fd, op) }
            if rc != 0 {
                let e = Glibc.errno
                Glibc.close(fd)
                throw DeviceError(path: path, operation: .lock, errno: e,
                                  detail: e == EWOULDBLOCK ? "file is in use by another process" : nil)
            }
        }
        var size: UInt64 = 0
        var lss = 512, pss = 512
        var ro = options.readOnly
        if isBlock {
            let rc = metashim_blkgetsize64(fd, &size)
            if rc < 0 { Glibc.close(fd); throw DeviceError(path: path, operation: .ioctl, errno: -rc, detail: "BLKGETSIZE64") }
            var s: Int32 = 0
            if metashim_blksszget(fd, &s) == 0, s > 0 { lss = Int(s) }
            var p: UInt32 = 0
            if metashim_blkpbszget(fd, &p) == 0, p > 0 { pss = Int(p) }
            var r: Int32 = 0
            if metashim_blkroget(fd, &r) == 0, r != 0 { ro = true }
            deviceNumber = UInt64(st.st_rdev)
        } else {
            size = UInt64(st.st_size)
            pss = max(512, Int(st.st_blksize) > 4096 ? 4096 : Int(st.st_blksize))
            deviceNumber = UInt64(st.st_dev)
        }
        inode = UInt64(st.st_ino)
        self.fd = fd
        self.sizeBytes = size
        self.logicalSectorSize = lss
        self.physicalSectorSize = pss
        self.isDirect = direct
        self.isReadOnly = ro
    }

    deinit { close() }

    /// Closes the descriptor (idempotent). I/O after close fails with `EBADF`.
    public func close() {
        let wasClosed = closed.exchange(true, ordering: .acquiringAndReleasing)
        if !wasClosed { Glibc.close(fd) }
    }

    private var alignment: Int { max(logicalSectorSize, 512) }

    private func check(_ op: DeviceOperation, _ offset: UInt64, _ count: Int) throws(DeviceError) {
        if closed.load(ordering: .acquiring) {
            throw DeviceError(path: path, operation: op, offset: offset, length: UInt64(count), errno: EBADF)
        }
        if offset > sizeBytes || UInt64(count) > sizeBytes - offset {
            throw DeviceError(path: path, operation: op, offset: offset, length: UInt64(count), errno: ENOSPC,
                              detail: "beyond end of device (\(sizeBytes) bytes)")
        }
        if isDirect && (offset % UInt64(alignment) != 0 || count % alignment != 0) {
            throw DeviceError(path: path, operation: op, offset: offset, length: UInt64(count), errno: EINVAL,
                              detail: "not aligned to the \(alignment)-byte sector size")
        }
    }

    private func needsBounce(_ p: UnsafeRawPointer?) -> Bool {
        guard isDirect, let p else { return false }
        return Int(bitPattern: p) % alignment != 0
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        try check(.read, offset, buffer.count)
        if buffer.count == 0 { return }
        if needsBounce(buffer.baseAddress) {
            let b = AlignedBuffer(count: buffer.count)
            defer { withExtendedLifetime(b) {} }  // pointers into it outlive its last use
            try rawRead(b.mutableBytes, offset)
            buffer.copyMemory(from: b.bytes)
        } else {
            try rawRead(buffer, offset)
        }
    }

    private func rawRead(_ buffer: UnsafeMutableRawBufferPointer, _ offset: UInt64) throws(DeviceError) {
        var done = 0
        while done < buffer.count {
            let n = retryingInterrupted { pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done)) }
            if n < 0 {
                throw DeviceError(path: path, operation: .read, offset: offset + UInt64(done),
                                  length: UInt64(buffer.count - done), errno: Glibc.errno)
            }
            if n == 0 {
                throw DeviceError(path: path, operation: .read, offset: offset + UInt64(done),
                                  length: UInt64(buffer.count - done), errno: EIO, detail: "short read at end of device")
            }
            done += n
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        try check(.write, offset, buffer.count)
        if isReadOnly {
            throw DeviceError(path: path, operation: .write, offset: offset, length: UInt64(buffer.count), errno: EROFS)
        }
        if buffer.count == 0 { return }
        if needsBounce(buffer.baseAddress) {
            let b = AlignedBuffer(count: buffer.count)
            defer { withExtendedLifetime(b) {} }  // pointers into it outlive its last use
            b.mutableBytes.copyMemory(from: buffer)
            try rawWrite(b.bytes, offset)
        } else {
            try rawWrite(buffer, offset)
        }
    }

    private func rawWrite(_ buffer: UnsafeRawBufferPointer, _ offset: UInt64) throws(DeviceError) {
        var done = 0
        while done < buffer.count {
            let n = retryingInterrupted { pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done)) }
            if n < 0 {
                throw DeviceError(path: path, operation: .write, offset: offset + UInt64(done),
                                  length: UInt64(buffer.count - done), errno: Glibc.errno)
            }
            if n == 0 {
                throw DeviceError(path: path, operation: .write, offset: offset + UInt64(done),
                                  length: UInt64(buffer.count - done), errno: ENOSPC, detail: "short write")
            }
            done += n
        }
    }

    /// Refuses operations on a closed device (its descriptor number may already belong to
    /// another file) and modifications of a read-only one.
    private func checkUsable(_ op: DeviceOperation, _ offset: UInt64?, _ length: UInt64?,
                             modifies: Bool) throws(DeviceError) {
        if closed.load(ordering: .acquiring) {
            throw DeviceError(path: path, operation: op, offset: offset, length: length, errno: EBADF)
        }
        if modifies && isReadOnly {
            throw DeviceError(path: path, operation: op, offset: offset, length: length, errno: EROFS)
        }
    }

    public func flush() throws(DeviceError) {
        try checkUsable(.flush, nil, nil, modifies: false)
        let rc = retryingInterrupted { fdatasync(fd) }
        if rc != 0 { throw DeviceError(path: path, operation: .flush, errno: Glibc.errno) }
    }

    public func discard(offset: UInt64, length: UInt64) throws(DeviceError) {
        try checkUsable(.discard, offset, length, modifies: true)
        if offset > sizeBytes || length > sizeBytes - offset {
            throw DeviceError(path: path, operation: .discard, offset: offset, length: length, errno: ENOSPC)
        }
        if length == 0 { return }
        let rc = kind == .blockDevice ? metashim_blkdiscard(fd, offset, length) : metashim_punch_hole(fd, offset, length)
        if rc < 0 { throw DeviceError(path: path, operation: .discard, offset: offset, length: length, errno: -rc) }
    }

    /// Writes zeroes over a range, using `BLKZEROOUT` / `FALLOC_FL_ZERO_RANGE` where possible
    /// and plain writes otherwise.
    public func writeZeroes(offset: UInt64, length: UInt64) throws(DeviceError) {
        try checkUsable(.zero, offset, length, modifies: true)
        if offset > sizeBytes || length > sizeBytes - offset {
            throw DeviceError(path: path, operation: .zero, offset: offset, length: length, errno: ENOSPC,
                              detail: "beyond end of device (\(sizeBytes) bytes)")
        }
        if length == 0 { return }
        let rc = kind == .blockDevice ? metashim_blkzeroout(fd, offset, length) : metashim_zero_range(fd, offset, length)
        if rc == 0 { return }
        let chunk = 1 << 20
        let zero = AlignedBuffer(count: chunk)
        defer { withExtendedLifetime(zero) {} }  // pointers into it outlive its last use
        var pos: UInt64 = 0
        while pos < length {
            let n = Int(min(UInt64(chunk), length - pos))
            try write(UnsafeRawBufferPointer(zero.mutableBytes(offset: 0, count: n)), at: offset + pos)
            pos += UInt64(n)
        }
    }
}
