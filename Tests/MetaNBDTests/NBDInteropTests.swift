import Foundation
import MetaNBD
import MetaTestSupport
import Testing

/// Interoperability with real NBD clients (libnbd tools, qemu-img, fio) against file-backed exports.
@Suite struct NBDInteropTests {
    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func nbdinfoReportsSizeBlockSizesAndFlags() async throws {
        let dir = try TempDir(prefix: "nbd-info")
        let rw = try FileExport(name: "d10", path: try dir.image("rw.img", size: 8 << 20),
                                description: "RAID-5 volume d10", preferredBlockSize: 65536, maximumRequestSize: 16 << 20)
        let ro = try FileExport(name: "d20", path: try dir.image("ro.img", size: 3 << 20), readOnly: true,
                                canMultiConn: false)
        try await withNBDServer(exports: [rw, ro], dir: dir) { s in
            let out = try mustRun(["nbdinfo", "--json", s.uri("d10")])
            let json = try parseJSON(out)
            #expect(json["protocol"] as? String == "newstyle-fixed")
            #expect(json["structured"] as? Bool == true)  // libnbd negotiated structured replies
            let exports = try #require(json["exports"] as? [[String: Any]])
            let e = try #require(exports.first)
            #expect(e["export-name"] as? String == "d10")
            #expect(e["export-size"] as? Int == 8 << 20)
            #expect(e["description"] as? String == "RAID-5 volume d10")
            #expect(e["block_size_minimum"] as? Int == 512)
            #expect(e["block_size_preferred"] as? Int == 65536)
            #expect(e["block_size_maximum"] as? Int == 16 << 20)
            #expect(e["is_read_only"] as? Bool == false)
            #expect(e["can_flush"] as? Bool == true)
            #expect(e["can_fua"] as? Bool == true)
            #expect(e["can_trim"] as? Bool == true)
            #expect(e["can_zero"] as? Bool == true)
            #expect(e["can_multi_conn"] as? Bool == true)

            let roJSON = try parseJSON(try mustRun(["nbdinfo", "--json", s.uri("d20")]))
            let r = try #require((roJSON["exports"] as? [[String: Any]])?.first)
            #expect(r["export-size"] as? Int == 3 << 20)
            #expect(r["is_read_only"] as? Bool == true)
            #expect(r["can_trim"] as? Bool == false)
            #expect(r["can_zero"] as? Bool == false)
            #expect(r["can_multi_conn"] as? Bool == false)

            // An unknown export is an error, not a hang or a crash.
            let bad = try runCommand(["nbdinfo", "--json", s.uri("nosuch")])
            #expect(!bad.ok)
        }
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func listShowsEveryExportAndEmptyNameSelectsTheOnlyOne() async throws {
        let dir = try TempDir(prefix: "nbd-list")
        let a = try FileExport(name: "d1", path: try dir.image("a.img", size: 1 << 20), description: "first")
        let b = try FileExport(name: "d2", path: try dir.image("b.img", size: 2 << 20), description: "second")
        try await withNBDServer(exports: [a, b], dir: dir) { s in
            let json = try parseJSON(try mustRun(["nbdinfo", "--list", "--json", "nbd+unix://?socket=\(s.socketPath)"]))
            let exports = try #require(json["exports"] as? [[String: Any]])
            let byName = Dictionary(uniqueKeysWithValues: exports.compactMap { e in
                (e["export-name"] as? String).map { ($0, e) }
            })
            #expect(Set(byName.keys) == ["d1", "d2"])
            #expect(byName["d1"]?["export-size"] as? Int == 1 << 20)
            #expect(byName["d2"]?["export-size"] as? Int == 2 << 20)
            #expect(byName["d2"]?["description"] as? String == "second")
            // With two exports the empty name is ambiguous.
            #expect(!(try runCommand(["nbdinfo", "--size", "nbd+unix:///?socket=\(s.socketPath)"])).ok)
        }
        let dir2 = try TempDir(prefix: "nbd-default")
        let only = try FileExport(name: "d7", path: try dir2.image("c.img", size: 5 << 20))
        try await withNBDServer(exports: [only], dir: dir2) { s in
            let size = try mustRun(["nbdinfo", "--size", "nbd+unix:///?socket=\(s.socketPath)"])
            #expect(size.trimmingCharacters(in: .whitespacesAndNewlines) == "\(5 << 20)")
        }
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdcopy"])))
    func nbdcopyRoundTripsRandomData() async throws {
        let dir = try TempDir(prefix: "nbd-copy")
        let size = 6 << 20
        let export = try FileExport(name: "vol", path: try dir.image("vol.img", size: UInt64(size)))
        let source = try writeRandomFile(dir.file("src.bin"), size: size)
        try await withNBDServer(exports: [export], dir: dir) { s in
            try mustRun(["nbdcopy", "--requests=16", dir.file("src.bin"), s.uri("vol")])
            try mustRun(["nbdcopy", s.uri("vol"), dir.file("back.bin")])
        }
        #expect(try readFile(dir.file("back.bin")) == source)
        #expect(try readFile(dir.file("vol.img")) == source)
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["qemu-img"])))
    func qemuImgConvertAndCompare() async throws {
        let dir = try TempDir(prefix: "nbd-qemu")
        let size = 4 << 20
        let export = try FileExport(name: "d3", path: try dir.image("vol.img", size: UInt64(size)))
        try writeRandomFile(dir.file("src.raw"), size: size)
        let other = try writeRandomFile(dir.file("other.raw"), size: size)
        try await withNBDServer(exports: [export], dir: dir) { s in
            try mustRun(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", dir.file("src.raw"), s.uri("d3")])
            try mustRun(["qemu-img", "compare", "-f", "raw", "-F", "raw", dir.file("src.raw"), s.uri("d3")])
            // A different image must compare as different (exit 1), proving compare really reads.
            let diff = try runCommand(["qemu-img", "compare", "-f", "raw", "-F", "raw", dir.file("other.raw"), s.uri("d3")])
            #expect(diff.status == 1)
            try mustRun(["qemu-img", "convert", "-f", "raw", "-O", "raw", s.uri("d3"), dir.file("back.raw")])
        }
        #expect(try readFile(dir.file("back.raw")) == (try readFile(dir.file("src.raw"))))
        #expect(try readFile(dir.file("back.raw")) != other)
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["fio"])))
    func fioRandomWritesVerifyWithCRC32C() async throws {
        let dir = try TempDir(prefix: "nbd-fio")
        let export = try FileExport(name: "d4", path: try dir.image("vol.img", size: 32 << 20))
        try await withNBDServer(exports: [export], dir: dir) { s in
            let r = try runCommand([
                "fio", "--name=nbdverify", "--ioengine=nbd", "--uri=\(s.uri("d4"))",
                "--rw=randwrite", "--bs=4k", "--size=32m", "--iodepth=16", "--verify=crc32c",
                "--verify_fatal=1", "--do_verify=1", "--verify_state_save=0", "--output-format=json",
            ])
            #expect(r.ok, "fio failed: \(r.stderr)\n\(r.stdout)")
            // fio may print notes before the JSON document.
            let text = r.stdout.firstIndex(of: "{").map { String(r.stdout[$0...]) } ?? r.stdout
            let json = try parseJSON(text)
            let job = try #require((json["jobs"] as? [[String: Any]])?.first)
            #expect(job["error"] as? Int == 0)
            let write = try #require(job["write"] as? [String: Any])
            let read = try #require(job["read"] as? [String: Any])
            #expect(write["io_bytes"] as? Int == 32 << 20)
            // The verify pass read every block back.
            #expect(read["io_bytes"] as? Int == 32 << 20)
        }
    }
}
