import Foundation
import MetaNBD
#if canImport(Glibc)
import Glibc
#endif

/// A file-backed export for tests (pread/pwrite on an image file; fdatasync for flush and FUA).
final class FileExport: NBDExport {
    let name: String
    let exportDescription: String
    let path: String
    let fd: Int32
    let sizeBytes: UInt64
    let readOnly: Bool
    let minimumBlockSize: UInt32
    let preferredBlockSize: UInt32
    let maximumRequestSize: UInt32
    let canTrim: Bool
    let canWriteZeroes: Bool
    let canMultiConn: Bool

    init(name: String, path: String, description: String = "", readOnly: Bool = false,
         minimumBlockSize: UInt32 = 512, preferredBlockSize: UInt32 = 4096,
         maximumRequestSize: UInt32 = 32 << 20, canTrim: Bool = true, canWriteZeroes: Bool = true,
         canMultiConn: Bool = true) throws {
        self.name = name
        self.path = path
        self.exportDescription = description
        let fd = open(path, readOnly ? O_RDONLY : O_RDWR)
        guard fd >= 0 else { throw NBDTestError("cannot open \(path): errno \(errno)") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw NBDTestError("cannot stat \(path)") }
        self.fd = fd
        self.sizeBytes = UInt64(st.st_size)
        self.readOnly = readOnly
        self.minimumBlockSize = minimumBlockSize
        self.preferredBlockSize = preferredBlockSize
        self.maximumRequestSize = maximumRequestSize
        self.canTrim = canTrim
        self.canWriteZeroes = canWriteZeroes
        self.canMultiConn = canMultiConn
    }

    deinit { close(fd) }

    func read(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(NBDIOError) {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io("pread \(path) at \(offset + UInt64(done)): \(n < 0 ? errno : 0)") }
            done += n
        }
    }

    func write(offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool) throws(NBDIOError) {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io("pwrite \(path) at \(offset + UInt64(done)): \(n < 0 ? errno : 0)") }
            done += n
        }
        if fua { try flush() }
    }

    func flush() throws(NBDIOError) {
        guard fdatasync(fd) == 0 else { throw .io("fdatasync \(path): \(errno)") }
    }

    func trim(offset: UInt64, length: UInt64, fua: Bool) throws(NBDIOError) {
        try writeZeroes(offset: offset, length: length, fua: fua, noHole: false)
    }

    func writeZeroes(offset: UInt64, length: UInt64, fua: Bool, noHole: Bool) throws(NBDIOError) {
        let chunkSize = 1 << 20
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { chunk.deallocate() }
        chunk.initializeMemory(as: UInt8.self, repeating: 0)
        var done: UInt64 = 0
        while done < length {
            let n = Int(min(UInt64(chunkSize), length - done))
            try write(offset: offset + done, from: UnsafeRawBufferPointer(rebasing: chunk[0..<n]), fua: false)
            done += UInt64(n)
        }
        if fua { try flush() }
    }
}

/// Wraps an export so a test can hold READs at ``gateOffset`` inside the export until it says go.
final class GatedExport: NBDExport {
    let base: FileExport
    let gateOffset: UInt64
    /// Signalled each time a READ enters the export.
    let entered = DispatchSemaphore(value: 0)
    /// Each READ waits for one signal here before reading.
    let release = DispatchSemaphore(value: 0)
    private let finishedCount = Mutex(0)

    init(_ base: FileExport, gateOffset: UInt64 = 0) {
        self.base = base
        self.gateOffset = gateOffset
    }

    var finishedReads: Int { finishedCount.withLock { $0 } }
    var name: String { base.name }
    var exportDescription: String { base.exportDescription }
    var sizeBytes: UInt64 { base.sizeBytes }
    var readOnly: Bool { base.readOnly }
    var minimumBlockSize: UInt32 { base.minimumBlockSize }
    var preferredBlockSize: UInt32 { base.preferredBlockSize }
    var maximumRequestSize: UInt32 { base.maximumRequestSize }
    var canTrim: Bool { base.canTrim }
    var canWriteZeroes: Bool { base.canWriteZeroes }
    var canMultiConn: Bool { base.canMultiConn }

    func read(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(NBDIOError) {
        guard offset == gateOffset else { return try base.read(offset: offset, into: buffer) }
        entered.signal()
        release.wait()
        try base.read(offset: offset, into: buffer)
        finishedCount.withLock { $0 += 1 }
    }
    func write(offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool) throws(NBDIOError) {
        try base.write(offset: offset, from: buffer, fua: fua)
    }
    func flush() throws(NBDIOError) { try base.flush() }
    func trim(offset: UInt64, length: UInt64, fua: Bool) throws(NBDIOError) {
        try base.trim(offset: offset, length: length, fua: fua)
    }
    func writeZeroes(offset: UInt64, length: UInt64, fua: Bool, noHole: Bool) throws(NBDIOError) {
        try base.writeZeroes(offset: offset, length: length, fua: fua, noHole: noHole)
    }
}

import Synchronization

struct NBDTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
