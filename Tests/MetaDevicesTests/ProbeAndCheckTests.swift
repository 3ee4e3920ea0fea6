#if canImport(Glibc)
import Glibc
#endif
import Testing
import MetaDevices
import MetaTestSupport

/// Writes raw bytes into a file at an offset.
func poke(_ path: String, _ bytes: [UInt8], at offset: Int) throws {
    let fd = open(path, O_WRONLY)
    guard fd >= 0 else { throw TestSupportError("open \(path)") }
    defer { close(fd) }
    let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
    guard n == bytes.count else { throw TestSupportError("pwrite \(path)") }
}

/// A minimal MBR with one Linux partition starting at sector 2048.
func mbr(sectors: UInt32) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: 512)
    let e = 446
    b[e + 4] = 0x83
    let start: UInt32 = 2048
    let count = sectors - start
    for i in 0..<4 {
        b[e + 8 + i] = UInt8(truncatingIfNeeded: start >> (8 * UInt32(i)))
        b[e + 12 + i] = UInt8(truncatingIfNeeded: count >> (8 * UInt32(i)))
    }
    b[510] = 0x55
    b[511] = 0xAA
    return b
}

@Suite("libblkid probing")
struct ProbeTests {
    @Test func blankImageHasNoSignature() throws {
        let dir = try TempDir()
        let img = try dir.image("blank.img", size: 4 << 20)
        let r = try Probe.probe(path: img)
        #expect(r == ProbeResult())
        #expect(!r.hasSignature)
        #expect(r.phrase == nil)
        #expect(try Probe.probe(path: dir.image("empty.img", size: 0)) == ProbeResult())
    }

    @Test func garbageNeverCrashes() throws {
        let dir = try TempDir()
        let img = try dir.image("junk.img", size: 1 << 20)
        var rng = SystemRandomNumberGenerator()
        for round in 0..<4 {
            let junk = (0..<(256 << 10)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try poke(img, junk, at: round * (256 << 10))
            _ = try Probe.probe(path: img)
        }
        // Half-valid structures: an MBR signature with nonsense entries.
        var bad = [UInt8](repeating: 0xFF, count: 512)
        bad[510] = 0x55
        bad[511] = 0xAA
        try poke(img, bad, at: 0)
        _ = try Probe.probe(path: img)
    }

    @Test func partitionTableIsReported() throws {
        let dir = try TempDir()
        let img = try dir.image("pt.img", size: 8 << 20)
        try poke(img, mbr(sectors: 16384), at: 0)
        let r = try Probe.probe(path: img)
        #expect(r.ptType == "dos")
        #expect(r.signature == "dos")
        #expect(r.phrase == "a dos partition table")
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["mkfs.ext4"])))
    func ext4OnAnImageFile() throws {
        let dir = try TempDir()
        let img = try dir.image("fs.img", size: 8 << 20)
        try mustRun(["mkfs.ext4", "-q", "-F", "-L", "probe-me", img])
        let r = try Probe.probe(path: img)
        #expect(r.type == "ext4")
        #expect(r.usage == "filesystem")
        #expect(r.label == "probe-me")
        #expect(r.uuid?.count == 36)
        #expect(r.phrase == "an ext4 file system")
    }

    @Test func unopenablePathIsATypedError() throws {
        let dir = try TempDir()
        let e = #expect(throws: ProbeError.self) { _ = try Probe.probe(path: dir.file("missing")) }
        #expect(e == .cannotOpen(path: dir.file("missing"), errno: ENOENT))
        #expect(e?.deviceError.operation == .open)
        let d = #expect(throws: ProbeError.self) { _ = try Probe.probe(path: dir.path) }
        if case .probeFailed(let p, _)? = d { #expect(p == dir.path) } else { Issue.record("got \(String(describing: d))") }
    }
}

@Suite("ComponentCheck on image files")
struct ComponentCheckFileTests {
    @Test func blankImageIsAccepted() throws {
        let dir = try TempDir()
        let img = try dir.image("c.img", size: 4 << 20)
        let c = try ComponentCheck.check(path: img, force: false)
        #expect(c.kind == .regularFile)
        #expect(c.sizeBytes == 4 << 20)
        #expect(c.overriddenSignature == nil)
        #expect(c.canonicalPath == img)
        // The check leaves nothing open or locked behind.
        let again = try FileDevice(path: img, options: OpenOptions(exclusive: true))
        again.close()
    }

    @Test func signatureNeedsForce() throws {
        let dir = try TempDir()
        let img = try dir.image("pt.img", size: 8 << 20)
        try poke(img, mbr(sectors: 16384), at: 0)
        let e = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: img, force: false) }
        #expect(e?.description == "\(img): has a dos partition table (use --force to overwrite)")
        #expect(e?.overridableByForce == true)
        let c = try ComponentCheck.check(path: img, force: true)
        #expect(c.overriddenSignature?.ptType == "dos")
        // The check never writes: the table is still there.
        #expect(try Probe.probe(path: img).ptType == "dos")
    }

    @Test func missingPathDirectoryAndEmptyFile() throws {
        let dir = try TempDir()
        let missing = #expect(throws: ComponentCheckError.self) {
            _ = try ComponentCheck.check(path: dir.file("nope"), force: true)
        }
        #expect(missing?.description == "\(dir.file("nope")): does not exist")
        let d = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: dir.path, force: true) }
        #expect(d == .notBlockOrFile(path: dir.path))
        let empty = try dir.image("empty.img", size: 0)
        let z = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: empty, force: true) }
        #expect(z == .empty(path: empty))
    }

    @Test func fileLockedByAnotherOpenerIsRefusedEvenWithForce() throws {
        let dir = try TempDir()
        let img = try dir.image("l.img", size: 4 << 20)
        let holder = try FileDevice(path: img, options: OpenOptions(exclusive: true))
        let e = #expect(throws: ComponentCheckError.self) { _ = try ComponentCheck.check(path: img, force: true) }
        #expect(e == .locked(path: img))
        #expect(e?.overridableByForce == false)
        holder.close()
        _ = try ComponentCheck.check(path: img, force: false)
    }

    @Test func knownMemberIsRefusedThroughSymlinks() throws {
        let dir = try TempDir()
        let img = try dir.image("m.img", size: 4 << 20)
        let link = dir.file("link.img")
        #expect(symlink(img, link) == 0)
        let e = #expect(throws: ComponentCheckError.self) {
            _ = try ComponentCheck.check(path: link, force: true, knownMembers: [img: "red"])
        }
        #expect(e?.description == "\(link): is already a member of set 'red'")
        let other = try dir.image("o.img", size: 4 << 20)
        _ = try ComponentCheck.check(path: other, force: false, knownMembers: [img: "red"])
        let byClosure = #expect(throws: ComponentCheckError.self) {
            _ = try ComponentCheck.check(path: img, force: false, memberOf: { $0 == img ? "blue" : nil })
        }
        #expect(byClosure == .member(path: img, set: "blue"))
    }
}

@Suite("Mount table and naming")
struct MountTableTests {
    @Test func parsesMountinfoWithEscapes() {
        let text = """
            27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
            42 27 7:3 / /mnt/with\\040space rw,relatime shared:1 - ext4 /dev/loop3 rw
            garbage line
            43 27 7:3 / /mnt/second rw - xfs /dev/loop3 rw
            """
        let t = MountTable.parse(text)
        #expect(t.entries.count == 3)
        #expect(t.mountPoints(major: 7, minor: 3) == ["/mnt/with space", "/mnt/second"])
        #expect(t.entries[1].fsType == "ext4")
        #expect(t.entries[1].source == "/dev/loop3")
        #expect(t.mountPoints(major: 8, minor: 0).isEmpty)
    }

    @Test func currentMountTableKnowsTheRoot() {
        #expect(MountTable.current().entries.contains { $0.mountPoint == "/" })
    }
}
