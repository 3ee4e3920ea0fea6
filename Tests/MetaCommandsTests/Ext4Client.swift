import Foundation
import MetaTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// nbdfuse + a loop device + a mount point for one export, torn down in ``close()``
/// (lazily, when the server behind it died).
final class Ext4Client {
    let fuseDir: String, mnt: String
    let fuse = Process()
    var loop: LoopDevice?
    var mounted = false
    init(_ f: ServeFixture, volume: String, tag: String) throws {
        fuseDir = f.dir.file("fuse-\(tag)")
        mnt = f.dir.file("mnt-\(tag)")
        try FileManager.default.createDirectory(atPath: fuseDir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        let pidFile = f.dir.file("nbdfuse-\(tag).pid")
        fuse.executableURL = URL(fileURLWithPath: Privileged.which("nbdfuse") ?? "/usr/bin/nbdfuse")
        fuse.arguments = ["-P", pidFile, fuseDir, f.uri(volume)]
        fuse.standardOutput = FileHandle.nullDevice
        fuse.standardError = FileHandle.nullDevice
        try fuse.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: pidFile) {
            guard fuse.isRunning else { throw TestSupportError("nbdfuse exited with \(fuse.terminationStatus)") }
            guard Date() < deadline else { throw TestSupportError("nbdfuse did not start") }
            usleep(20_000)
        }
        loop = try LoopDevice(file: "\(fuseDir)/nbd")
    }
    var device: String { loop?.path ?? "" }
    func mount() throws {
        try MetaTestSupport.mustRun(["mount", device, mnt])
        mounted = true
    }
    func unmount() throws {
        try MetaTestSupport.unmount(mnt)
        mounted = false
    }
    /// Unmounts (lazily when `lazy`), detaches the loop device, unmounts the FUSE file
    /// and stops nbdfuse (by PID).
    func close(lazy: Bool = false) {
        if mounted { _ = try? runCommand(["umount"] + (lazy ? ["-l"] : []) + [mnt]); mounted = false }
        loop?.detach()
        loop = nil
        _ = try? runCommand(["fusermount3", "-u"] + (lazy ? ["-z"] : []) + [fuseDir])
        if fuse.isRunning { kill(fuse.processIdentifier, lazy ? SIGKILL : SIGTERM) }
        fuse.waitUntilExit()
    }
}

