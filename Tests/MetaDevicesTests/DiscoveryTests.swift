#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import MetaDevices
import MetaTestSupport

@Suite("Discovery")
struct DiscoveryTests {
    @Test func enumeratesBlockDevicesWithSaneGeometry() {
        let all = Discovery.enumerate(probe: false)
        // Every entry is a real device node with a number and sector sizes that are powers of two.
        for d in all {
            #expect(d.path.hasPrefix("/dev/"))
            #expect(d.logicalSectorSize >= 512 && d.logicalSectorSize & (d.logicalSectorSize - 1) == 0)
            #expect(d.physicalSectorSize >= d.logicalSectorSize)
            if d.kind == .partition { #expect(d.parent != nil) }
        }
        let names = all.map(\.name)
        #expect(Set(names).count == names.count)
    }

    @Test func listDevicesHidesEmptyLoopsUnlessAll() {
        let shown = Discovery.listDevices(all: false)
        #expect(!shown.contains { $0.kind == .loop && $0.sizeBytes == 0 })
        let every = Discovery.listDevices(all: true)
        #expect(every.count >= shown.count)
        let tagged = Discovery.listDevices(all: false, membership: { _ in (set: "s1", role: "replica") })
        #expect(tagged.allSatisfy { $0.set == "s1" && $0.role == "replica" })
    }

    @Test(.enabled(if: Privileged.runnable))
    func findsAnAttachedLoopDevice() throws {
        let dir = try TempDir()
        let img = try dir.image("disc.img", size: 6 << 20)
        let loop = try LoopDevice(file: img)
        defer { loop.detach() }
        let found = Discovery.listDevices().first { $0.path == loop.path }
        let d = try #require(found, "\(loop.path) not listed")
        #expect(d.kind == .loop)
        #expect(d.sizeBytes == 6 << 20)
        #expect(d.backingFile == img)
        #expect(d.major == 7)
        #expect(d.mountPoints.isEmpty)
        #expect(d.signature == nil)
        #expect(d.probeError == nil)
        #expect(d.logicalSectorSize == 512)
        // The sysfs-only lookup agrees.
        let byPath = try #require(Discovery.device(path: loop.path))
        #expect(byPath.sizeBytes == 6 << 20)
        #expect(byPath.backingFile == img)
        #expect(byPath.name == d.name)
    }
}

@Suite("ComponentCheck on loop devices")
struct ComponentCheckLoopTests {
    @Test(.enabled(if: Privileged.runnable(tools: ["losetup", "mkfs.ext4"]) && Privileged.runnable))
    func ext4IsDetectedAndNeedsForce() throws {
        let dir = try TempDir()
        let img = try dir.image("fs.img", size: 8 << 20)
        let loop = try LoopDevice(file: img)
        defer { loop.detach() }
        // Blank: accepted without force.
        let blank = try ComponentCheck.check(path: loop.path, force: false)
        #expect(blank.kind == .blockDevice)
        #expect(blank.sizeBytes == 8 << 20)

        try mustRun(["mkfs.ext4", "-q", "-F", loop.path])
        let r = try Probe.probe(path: loop.path)
        #expect(r.type == "ext4")
        let listed = Discovery.listDevices().first { $0.path == loop.path }
        #expect(listed?.signature == "ext4")
        let e = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: loop.path, force: false) }
        #expect(e?.description == "\(loop.path): has an ext4 file system (use --force to overwrite)")
        let forced = try ComponentCheck.check(path: loop.path, force: true)
        #expect(forced.overriddenSignature?.type == "ext4")
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["losetup", "mkfs.ext4", "mount", "umount"]) && Privileged.runnable))
    func mountedDeviceIsRefusedEvenWithForce() throws {
        let dir = try TempDir()
        let img = try dir.image("m.img", size: 8 << 20)
        let loop = try LoopDevice(file: img)
        defer { loop.detach() }
        try mustRun(["mkfs.ext4", "-q", "-F", loop.path])
        let mnt = dir.file("mnt")
        #expect(mkdir(mnt, 0o755) == 0)
        try mustRun(["mount", loop.path, mnt])
        defer { _ = try? runCommand(["umount", mnt]) }
        let e = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: loop.path, force: true) }
        #expect(e == .mounted(path: loop.path, partition: nil, mountPoint: mnt))
        #expect(e?.description == "\(loop.path): is mounted on \(mnt)")
        let listed = Discovery.listDevices().first { $0.path == loop.path }
        #expect(listed?.mountpoint == mnt)
        #expect(listed?.use == "mounted on \(mnt)")
    }

    @Test(.enabled(if: Privileged.runnable))
    func loopBackingFileAndBackingDeviceAreRefused() throws {
        let dir = try TempDir()
        let img = try dir.image("b.img", size: 4 << 20)
        let loop = try LoopDevice(file: img)
        defer { loop.detach() }
        let e = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: img, force: true) }
        #expect(e == .loopBacking(path: img, loop: loop.path))
        #expect(e?.description == "\(img): is the backing file of \(loop.path)")
        // A loop device stacked on the first one makes the first one a backing device.
        let upper = try LoopDevice(file: loop.path)
        defer { upper.detach() }
        let e2 = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: loop.path, force: true) }
        #expect(e2 == .loopBacking(path: loop.path, loop: upper.path))
        upper.detach()
        _ = try ComponentCheck.check(path: loop.path, force: false)
    }

    @Test(.enabled(if: Privileged.runnable))
    func exclusivelyOpenedDeviceIsRefused() throws {
        let dir = try TempDir()
        let img = try dir.image("x.img", size: 4 << 20)
        let loop = try LoopDevice(file: img)
        defer { loop.detach() }
        let holder = try FileDevice(path: loop.path, options: OpenOptions(exclusive: true))
        #expect(holder.kind == .blockDevice)
        #expect(holder.sizeBytes == 4 << 20)
        let e = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: loop.path, force: true) }
        #expect(e == .busy(path: loop.path))
        // A second exclusive open through the device layer fails the same way.
        let e2 = #expect(throws: DeviceError.self) {
            _ = try FileDevice(path: loop.path, options: OpenOptions(exclusive: true))
        }
        #expect(e2?.errno == EBUSY)
        holder.close()
        _ = try ComponentCheck.check(path: loop.path, force: false)
    }

    @Test(.enabled(if: Privileged.runnable))
    func blockDeviceIOAndDiscardOnALoopDevice() throws {
        let dir = try TempDir()
        let img = try dir.image("io.img", size: 4 << 20)
        let loop = try LoopDevice(file: img)
        defer { loop.detach() }
        let dev = try FileDevice(path: loop.path)
        defer { dev.close() }
        #expect(dev.isDirect)
        let data = pattern(64 << 10, seed: 9)
        try dev.write(bytes: data, at: 1 << 20)
        try dev.flush()
        #expect(try dev.read(count: 64 << 10, at: 1 << 20) == data)
        try dev.writeZeroes(offset: 1 << 20, length: 4096)
        #expect(try dev.read(count: 4096, at: 1 << 20).allSatisfy { $0 == 0 })
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["losetup", "partx", "mkfs.ext4", "mount", "umount"])
                   && Privileged.runnable))
    func diskWithAMountedPartitionIsRefused() throws {
        let dir = try TempDir()
        let img = try dir.image("pt.img", size: 8 << 20)
        try poke(img, mbr(sectors: 16384), at: 0)
        let path = try mustRun(["losetup", "--find", "--show", "--partscan", img])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        defer {
            _ = try? runCommand(["partx", "-d", path])
            _ = try? runCommand(["losetup", "-d", path])
        }
        let part = "\(path)p1"
        // Some kernels lack the msdos parser; then add the partition from userspace (BLKPG).
        // devtmpfs creates the node either way.
        if Discovery.device(path: path)?.partitions.isEmpty ?? true {
            try mustRun(["partx", "-a", path])
        }
        let disk = try #require(Discovery.device(path: path))
        #expect(disk.partitions == [part])
        let p = try #require(Discovery.device(path: part))
        #expect(p.kind == .partition)
        #expect(p.parent == path)
        #expect(p.sizeBytes == (16384 - 2048) * 512)

        // Blank partition, partition table on the disk: the disk needs --force, the partition does not.
        let e = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: path, force: false) }
        #expect(e?.overridableByForce == true)
        _ = try ComponentCheck.check(path: part, force: false)

        try mustRun(["mkfs.ext4", "-q", "-F", part])
        let mnt = dir.file("mnt")
        #expect(mkdir(mnt, 0o755) == 0)
        try mustRun(["mount", part, mnt])
        defer { _ = try? runCommand(["umount", mnt]) }
        let m = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: path, force: true) }
        #expect(m == .mounted(path: path, partition: part, mountPoint: mnt))
        #expect(m?.description == "\(path): its partition \(part) is mounted on \(mnt)")
    }
}
