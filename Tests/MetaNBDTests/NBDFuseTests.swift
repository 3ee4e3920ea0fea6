import Foundation
import MetaNBD
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The kernel path: nbdfuse exposes the export as a file, a loop device puts a block device on it, and ext4
/// runs on top (mkfs, mount, file writes, umount, fsck).
@Suite struct NBDFuseTests {
    @Test(.enabled(if: Privileged.fuseRunnable
                   && Privileged.runnable(tools: ["nbdfuse", "fusermount3", "losetup", "mkfs.ext4", "mount", "e2fsck"])))
    func ext4OverNbdfuseAndLoop() async throws {
        let dir = try TempDir(prefix: "nbd-fuse")
        let export = try FileExport(name: "d10", path: try dir.image("vol.img", size: 64 << 20))
        try await withNBDServer(exports: [export], dir: dir) { s in
            let fuseDir = dir.file("fuse")
            let mnt = dir.file("mnt")
            try FileManager.default.createDirectory(atPath: fuseDir, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
            let pidFile = dir.file("nbdfuse.pid")
            let fuse = Process()
            fuse.executableURL = URL(fileURLWithPath: Privileged.which("nbdfuse") ?? "/usr/bin/nbdfuse")
            fuse.arguments = ["-P", pidFile, fuseDir, s.uri("d10")]
            fuse.standardOutput = FileHandle.nullDevice
            try fuse.run()
            var mountedFS = false
            var loop: LoopDevice?
            defer {
                if mountedFS { _ = try? runCommand(["umount", mnt]) }
                loop?.detach()
                _ = try? runCommand(["fusermount3", "-u", fuseDir])
                if fuse.isRunning { kill(fuse.processIdentifier, SIGTERM) }
                fuse.waitUntilExit()
            }
            // nbdfuse writes its PID file once it serves.
            while !FileManager.default.fileExists(atPath: pidFile) {
                guard fuse.isRunning else { throw NBDTestError("nbdfuse exited with \(fuse.terminationStatus)") }
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            let file = "\(fuseDir)/nbd"
            let attrs = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attrs[.size] as? NSNumber)?.intValue == 64 << 20)

            loop = try LoopDevice(file: file)
            let dev = try #require(loop?.path)
            try mustRun(["mkfs.ext4", "-q", "-F", dev])
            try mustRun(["mount", dev, mnt])
            mountedFS = true
            var written: [String: Data] = [:]
            for i in 0..<8 {
                let name = "file\(i).bin"
                written[name] = try writeRandomFile("\(mnt)/\(name)", size: (i + 1) * 300_000)
            }
            try mustRun(["sync"])
            try unmount(mnt)
            mountedFS = false
            try mustRun(["e2fsck", "-fn", dev])

            // Mount again (read-only) and verify every file.
            try mustRun(["mount", "-o", "ro", dev, mnt])
            mountedFS = true
            for (name, data) in written {
                #expect(try readFile("\(mnt)/\(name)") == data, "\(name) differs after remount")
            }
            try unmount(mnt)
            mountedFS = false
            loop?.detach()
            loop = nil
            try mustRun(["fusermount3", "-u", fuseDir])
            fuse.waitUntilExit()
            #expect(fuse.terminationStatus == 0)
        }
        // The filesystem is in the export's backing file, and it is clean.
        try mustRun(["e2fsck", "-fn", dir.file("vol.img")])
    }
}
