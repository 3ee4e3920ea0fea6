#if canImport(Glibc)
import Glibc
#endif
import Testing
import MetaDevices
import MetaTestSupport

/// Fills `count` bytes with a pattern derived from `seed` and the byte index.
func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}

/// Allocated 512-byte blocks of a file (for hole punching checks).
func allocatedBlocks(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_blocks) : -1
}

@Suite("FileDevice on image files")
struct FileDeviceTests {
    @Test func opensImageFileWithSizeAndSectors() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 4 << 20)
        let dev = try FileDevice(path: img)
        defer { dev.close() }
        #expect(dev.sizeBytes == 4 << 20)
        #expect(dev.kind == .regularFile)
        #expect(dev.logicalSectorSize == 512)
        #expect(dev.physicalSectorSize >= 512)
        #expect(!dev.isReadOnly)
        #expect(dev.discardZeroes)
    }

    @Test func alignedRoundTripAtSeveralOffsets() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 2 << 20)
        let dev = try FileDevice(path: img)
        defer { dev.close() }
        for (i, offset) in ([0, 4096, 65536, (2 << 20) - 8192] as [UInt64]).enumerated() {
            let data = pattern(8192, seed: UInt8(i))
            try dev.write(bytes: data, at: offset)
            #expect(try dev.read(count: 8192, at: offset) == data)
        }
        try dev.flush()
        // Reopen: the data is in the file.
        dev.close()
        let again = try FileDevice(path: img)
        defer { again.close() }
        #expect(try again.read(count: 8192, at: 65536) == pattern(8192, seed: 2))
    }

    @Test func unalignedBufferIsBouncedUnderODirect() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 1 << 20)
        let dev = try FileDevice(path: img, options: OpenOptions(direct: .auto))
        defer { dev.close() }
        // A buffer whose start is 1 byte past an aligned address.
        let big = AlignedBuffer(count: 4096 + 1)
        let unaligned = big.mutableBytes(offset: 1, count: 4096)
        let data = pattern(4096, seed: 7)
        unaligned.copyBytes(from: data)
        try dev.write(UnsafeRawBufferPointer(unaligned), at: 8192)
        let back = AlignedBuffer(count: 4096 + 3)
        let target = back.mutableBytes(offset: 3, count: 4096)
        try dev.read(into: target, at: 8192)
        #expect(Array(target) == data)
    }

    @Test func unalignedOffsetIsRefusedUnderODirect() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 1 << 20)
        let dev = try FileDevice(path: img, options: OpenOptions(direct: .auto))
        defer { dev.close() }
        try #require(dev.isDirect, "the temp file system should support O_DIRECT")
        let e = #expect(throws: DeviceError.self) { try dev.write(bytes: [1, 2, 3], at: 100) }
        #expect(e?.errno == EINVAL)
        #expect(e?.operation == .write)
        #expect(e?.offset == 100)
        #expect(e?.path == img)
    }

    @Test func readPastTheEndIsAnError() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 64 << 10)
        let dev = try FileDevice(path: img)
        defer { dev.close() }
        let e = #expect(throws: DeviceError.self) { _ = try dev.read(count: 8192, at: 60 << 10) }
        #expect(e?.errno == ENOSPC)
        #expect(e?.description.contains("beyond end of device") == true)
    }

    @Test func shortReadAtEndOfShrunkFileIsAnError() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 64 << 10)
        let dev = try FileDevice(path: img, options: OpenOptions(direct: .never))
        defer { dev.close() }
        // Shrink the file behind the device's back: reads of the tail now come up short.
        #expect(truncate(img, 32 << 10) == 0)
        let e = #expect(throws: DeviceError.self) { _ = try dev.read(count: 8192, at: 28 << 10) }
        #expect(e?.operation == .read)
        #expect(e?.errno == EIO)
        #expect(e?.offset == 32 << 10)
        #expect(e?.detail == "short read at end of device")
    }

    @Test func secondExclusiveOpenerIsRefused() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 1 << 20)
        let first = try FileDevice(path: img, options: OpenOptions(exclusive: true))
        let e = #expect(throws: DeviceError.self) {
            _ = try FileDevice(path: img, options: OpenOptions(exclusive: true))
        }
        #expect(e?.operation == .lock)
        #expect(e?.errno == EWOULDBLOCK)
        #expect(e?.description.contains("in use by another process") == true)
        // A non-exclusive open is still possible, and the lock goes away with the first device.
        let shared = try FileDevice(path: img, options: OpenOptions(exclusive: false))
        shared.close()
        first.close()
        let third = try FileDevice(path: img, options: OpenOptions(exclusive: true))
        third.close()
    }

    /// Exercises the buffered fallback where O_DIRECT is refused. Recent kernels give tmpfs
    /// O_DIRECT, so the reliable place is ramfs (mounted by this privileged test).
    @Test(.enabled(if: Privileged.runnable(tools: ["mount", "umount"]) && Privileged.runnable))
    func fileSystemWithoutODirectFallsBackToBufferedIO() throws {
        let dir = try TempDir()
        let mnt = dir.file("ramfs")
        #expect(mkdir(mnt, 0o755) == 0)
        try mustRun(["mount", "-t", "ramfs", "ramfs", mnt])
        defer { _ = try? runCommand(["umount", mnt]) }
        let img = "\(mnt)/a.img"
        let fd = open(img, O_CREAT | O_RDWR, 0o644)
        #expect(fd >= 0 && ftruncate(fd, 1 << 20) == 0)
        close(fd)
        try checkBufferedFallback(img, expectDirect: false)
    }

    /// The same on /dev/shm (tmpfs): whichever way the kernel answers, `.auto` opens it and
    /// I/O works; unaligned I/O works exactly when O_DIRECT was not used.
    @Test(.enabled(if: Sysfs_isDir("/dev/shm"), "needs /dev/shm (tmpfs)"))
    func tmpfsOpensWithAutoDirect() throws {
        let dir = try TempDir(prefix: "../dev/shm/metactl-test")
        let img = try dir.image("a.img", size: 1 << 20)
        try checkBufferedFallback(img, expectDirect: nil)
    }

    private func checkBufferedFallback(_ img: String, expectDirect: Bool?) throws {
        let dev = try FileDevice(path: img, options: OpenOptions(direct: .auto))
        defer { dev.close() }
        if let expectDirect { #expect(dev.isDirect == expectDirect) }
        let data = pattern(8192, seed: 4)
        try dev.write(bytes: data, at: 4096)
        try dev.flush()
        #expect(try dev.read(count: 8192, at: 4096) == data)
        if dev.isDirect {
            #expect(throws: DeviceError.self) { try dev.write(bytes: [9, 8, 7], at: 101) }
        } else {
            try dev.write(bytes: [9, 8, 7], at: 101)
            try dev.flush()
            #expect(try dev.read(count: 3, at: 101) == [9, 8, 7])
            let e = #expect(throws: DeviceError.self) {
                _ = try FileDevice(path: img, options: OpenOptions(exclusive: false, direct: .always))
            }
            #expect(e?.operation == .open)
            #expect(e?.errno == EINVAL)
        }
        let buffered = try FileDevice(path: img, options: OpenOptions(exclusive: false, direct: .never))
        defer { buffered.close() }
        #expect(!buffered.isDirect)
        #expect(try buffered.read(count: 8192, at: 4096) == data)
    }

    @Test func discardPunchesHolesThatReadAsZeroes() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 1 << 20)
        let dev = try FileDevice(path: img)
        defer { dev.close() }
        let data = pattern(256 << 10, seed: 3)
        try dev.write(bytes: data, at: 0)
        try dev.flush()
        let before = allocatedBlocks(img)
        try dev.discard(offset: 64 << 10, length: 128 << 10)
        let after = allocatedBlocks(img)
        #expect(after < before)
        let back = try dev.read(count: 256 << 10, at: 0)
        #expect(Array(back[0..<(64 << 10)]) == Array(data[0..<(64 << 10)]))
        #expect(back[(64 << 10)..<(192 << 10)].allSatisfy { $0 == 0 })
        #expect(Array(back[(192 << 10)...]) == Array(data[(192 << 10)...]))
        #expect(throws: DeviceError.self) { try dev.discard(offset: 1 << 20, length: 4096) }
    }

    @Test func writeZeroesClearsARange() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 1 << 20)
        let dev = try FileDevice(path: img)
        defer { dev.close() }
        try dev.write(bytes: pattern(64 << 10, seed: 5), at: 0)
        try dev.writeZeroes(offset: 4096, length: 8192)
        let back = try dev.read(count: 64 << 10, at: 0)
        #expect(back[4096..<12288].allSatisfy { $0 == 0 })
        #expect(Array(back[0..<4096]) == Array(pattern(64 << 10, seed: 5)[0..<4096]))
        #expect(back[12288] == pattern(64 << 10, seed: 5)[12288])
        let e = #expect(throws: DeviceError.self) { try dev.writeZeroes(offset: (1 << 20) - 4096, length: 8192) }
        #expect(e?.errno == ENOSPC)
        #expect(e?.operation == .zero)
        var st = stat()
        #expect(stat(img, &st) == 0 && st.st_size == 1 << 20 && st.st_blocks <= (1 << 20) / 512)
    }

    @Test func readOnlyOpenRefusesWrites() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 1 << 20)
        let dev = try FileDevice(path: img, options: OpenOptions(readOnly: true))
        defer { dev.close() }
        #expect(dev.isReadOnly)
        let e = #expect(throws: DeviceError.self) { try dev.write(bytes: [UInt8](repeating: 1, count: 512), at: 0) }
        #expect(e?.errno == EROFS)
        #expect((#expect(throws: DeviceError.self) { try dev.discard(offset: 0, length: 4096) })?.errno == EROFS)
        #expect((#expect(throws: DeviceError.self) { try dev.writeZeroes(offset: 0, length: 4096) })?.errno == EROFS)
    }

    @Test func ioAfterCloseFailsWithEBADF() throws {
        let dir = try TempDir()
        let img = try dir.image("a.img", size: 1 << 20)
        let dev = try FileDevice(path: img)
        dev.close()
        dev.close()
        let e = #expect(throws: DeviceError.self) { _ = try dev.read(count: 512, at: 0) }
        #expect(e?.errno == EBADF)
        // Nothing may touch the (possibly recycled) descriptor number after close.
        #expect((#expect(throws: DeviceError.self) { try dev.flush() })?.errno == EBADF)
        #expect((#expect(throws: DeviceError.self) { try dev.discard(offset: 0, length: 4096) })?.errno == EBADF)
        #expect((#expect(throws: DeviceError.self) { try dev.writeZeroes(offset: 0, length: 4096) })?.errno == EBADF)
    }

    @Test func openingAMissingPathOrADirectoryIsATypedError() throws {
        let dir = try TempDir()
        let missing = #expect(throws: DeviceError.self) { _ = try FileDevice(path: dir.file("nope")) }
        #expect(missing?.errno == ENOENT)
        #expect(missing?.path == dir.file("nope"))
        let notFile = #expect(throws: DeviceError.self) { _ = try FileDevice(path: dir.path) }
        #expect(notFile?.errno == EINVAL)
        #expect(notFile?.description.contains("not a block device or regular file") == true)
    }
}

func Sysfs_isDir(_ p: String) -> Bool {
    var st = stat()
    return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

@Suite("MemoryDevice and FaultyDevice")
struct DoubleDeviceTests {
    @Test func memoryDeviceRoundTripAndBounds() throws {
        let mem = MemoryDevice(sizeBytes: 64 << 10)
        try mem.write(bytes: [1, 2, 3, 4], at: 1000)
        #expect(try mem.read(count: 4, at: 1000) == [1, 2, 3, 4])
        try mem.discard(offset: 1000, length: 2)
        #expect(try mem.read(count: 4, at: 1000) == [0, 0, 3, 4])
        #expect(throws: DeviceError.self) { try mem.write(bytes: [1], at: 64 << 10) }
        try mem.flush()
        #expect(mem.flushCount == 1)
    }

    @Test func faultyDeviceInjectsAndClearsFaults() throws {
        let mem = MemoryDevice(sizeBytes: 64 << 10)
        let f = FaultyDevice(mem)
        try f.write(bytes: [7, 7], at: 0)
        f.updateFaults { $0.badReadRanges = [4096..<8192] }
        #expect(try f.read(count: 2, at: 0) == [7, 7])
        let e = #expect(throws: DeviceError.self) { _ = try f.read(count: 512, at: 4096 - 256) }
        #expect(e?.errno == EIO)
        #expect(e?.operation == .read)
        f.updateFaults { $0.failWrites = true }
        #expect(throws: DeviceError.self) { try f.write(bytes: [1], at: 0) }
        #expect(f.injectedErrors == 2)
        f.setFaults(.init())
        try f.write(bytes: [1], at: 0)
        #expect(try mem.read(count: 1, at: 0) == [1])
    }

    @Test func crashBudgetTearsTheCrossingWrite() throws {
        let budget = CrashBudget(bytes: 1000)
        let a = FaultyDevice(MemoryDevice(sizeBytes: 8192), crashBudget: budget)
        try a.write(bytes: [UInt8](repeating: 1, count: 512), at: 0)
        #expect(throws: DeviceError.self) { try a.write(bytes: [UInt8](repeating: 2, count: 1024), at: 512) }
        #expect(budget.crashed)
        let back = try a.base.read(count: 2048, at: 0)
        #expect(back[0..<512].allSatisfy { $0 == 1 })
        #expect(back[512..<1000].allSatisfy { $0 == 2 })
        #expect(back[1000..<1536].allSatisfy { $0 == 0 })
        #expect(throws: DeviceError.self) { try a.flush() }
    }
}
