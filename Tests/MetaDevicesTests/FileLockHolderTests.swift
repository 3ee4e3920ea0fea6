import Foundation
import MetaDevices
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// ``FileLockHolder``: who holds a file's `flock`, from `/proc/locks`.
@Suite struct FileLockHolderTests {
    @Test func parsesProcLocksLines() {
        let text = """
        1: POSIX  ADVISORY  WRITE 30060 fe:00:16312586 1073741824 1073742335
        2: FLOCK  ADVISORY  WRITE 31208 fe:00:16262189 0 EOF
        2: -> FLOCK  ADVISORY  WRITE 4444 fe:00:16262189 0 EOF
        3: FLOCK  ADVISORY  READ 512 103:02:77 0 EOF
        """
        // st_dev 0xfe00 is 254:0; 0x10302 is 259:2 (glibc's encoding puts minor bits 8+ above 20).
        #expect(FileLockHolder.pid(in: text, device: 0xfe00, inode: 16262189) == 31208)
        #expect(FileLockHolder.pid(in: text, device: 0xfe00, inode: 16312586) == nil, "POSIX locks are not flocks")
        #expect(FileLockHolder.pid(in: text, device: 0x10302, inode: 77) == 512)
        #expect(FileLockHolder.pid(in: text, device: 0xfe00, inode: 1) == nil)
        #expect(FileLockHolder.pid(in: "", device: 0, inode: 0) == nil)
    }

    @Test func findsThisProcessHoldingALock() throws {
        let dir = try TempDir(prefix: "flock-holder")
        defer { dir.remove() }
        let path = try dir.image("f.img", size: 4096)
        #expect(FileLockHolder.pid(of: path) == nil)
        let fd = open(path, O_RDWR | O_CLOEXEC)
        try #require(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
        defer { close(fd) }
        #expect(FileLockHolder.pid(of: path) == getpid())
    }
}
