import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `metactl serve` with TLS: option checking (one line each, non-zero exit), the non-loopback
/// refusal, and real libnbd clients against a served volume.
@Suite struct ServeTLSTests {
    /// A psktool-style file with one user and a random key.
    private func pskFile(_ f: ServeFixture, _ name: String = "keys.psk", user: String = "alice") throws -> String {
        var g = SystemRandomNumberGenerator()
        let hex = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
        let path = f.dir.file(name)
        try "\(user):\(hex)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func fixture() throws -> ServeFixture {
        let f = try ServeFixture(prefix: "metactl-serve-tls")
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        try f.create("d0", "concat", [try f.dir.image("v0.img", size: 8 << 20)])
        return f
    }

    /// Runs `serve ARGS`, which must fail at once with exactly one line containing every one of `parts`.
    private func expectRefused(_ f: ServeFixture, _ args: [String], _ parts: [String],
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try f.run(["serve"] + args)
        #expect(r.status != 0, "serve \(args) started: \(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "serve \(args): \(r.stderr)", sourceLocation: sourceLocation)
        for p in parts {
            #expect(r.stderr.contains(p), "serve \(args): \(r.stderr) lacks \(p)", sourceLocation: sourceLocation)
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func nonLoopbackListenWithoutTLSIsRefused() throws {
        let f = try fixture()
        defer { f.cleanup() }
        try expectRefused(f, ["--listen", "0.0.0.0:0"],
                          ["--listen 0.0.0.0:0", "not a loopback address", "--tls-certificates DIR", "--tls-psk FILE", "--insecure"])
        try expectRefused(f, ["--listen", "[::]:10809"], ["--listen [::]:10809", "--insecure"])
        // TLS offered but not required is not enough on a non-loopback address.
        let psk = try pskFile(f)
        try expectRefused(f, ["--listen", "0.0.0.0:0", "--tls", "allow", "--tls-psk", psk], ["TLS is not required"])
        // Nothing was left behind: a normal start still works and is not an unclean restart.
        let server = try f.startServer()
        #expect(!server.log.contains("did not shut down cleanly"), "\(server.log)")
        #expect(server.stop() == 0)
    }

    @Test(.timeLimit(.minutes(3)))
    func inconsistentOrBrokenTLSOptionsAreOneLineErrors() throws {
        let f = try fixture()
        defer { f.cleanup() }
        let psk = try pskFile(f)
        try expectRefused(f, ["--tls", "require"], ["--tls require needs credentials", "--tls-certificates DIR", "--tls-psk FILE"])
        try expectRefused(f, ["--tls", "allow"], ["--tls allow needs credentials"])
        try expectRefused(f, ["--tls", "sometimes"], ["sometimes"])
        try expectRefused(f, ["--tls-psk", psk, "--tls-certificates", f.dir.path], ["exclude each other"])
        try expectRefused(f, ["--tls-verify-peer", "--tls-psk", psk], ["--tls-verify-peer needs --tls-certificates"])
        try expectRefused(f, ["--tls", "off", "--tls-psk", psk], ["--tls off with --tls-psk"])
        try expectRefused(f, ["--tls-psk", f.dir.file("missing.psk")], ["missing.psk: missing"])
        try "alice:nothex\n".write(toFile: f.dir.file("bad.psk"), atomically: true, encoding: .utf8)
        try expectRefused(f, ["--tls-psk", f.dir.file("bad.psk")], ["bad.psk line 1", "hex"])
        try Data((0..<64).map { UInt8($0 * 7 & 0xff) }).write(to: URL(fileURLWithPath: f.dir.file("binary.psk")))
        try expectRefused(f, ["--tls-psk", f.dir.file("binary.psk")], ["binary.psk"])
        try expectRefused(f, ["--tls-certificates", f.dir.file("nodir")], ["nodir: no such directory"])
        let certs = f.dir.file("certs")
        try FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
        try expectRefused(f, ["--tls-certificates", certs], ["server-cert.pem: missing"])
        try "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".write(toFile: "\(certs)/server-cert.pem", atomically: true, encoding: .utf8)
        try "garbage\n".write(toFile: "\(certs)/server-key.pem", atomically: true, encoding: .utf8)
        try expectRefused(f, ["--tls-certificates", certs], ["server-cert.pem"])
        try expectRefused(f, ["--read-only-volume", "nosuch"], ["nosuch: no such volume"])
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo", "nbdcopy"])), .timeLimit(.minutes(3)))
    func pskServeRequiresTLSAndNbdcopyRoundTrips() throws {
        let f = try fixture()
        defer { f.cleanup() }
        let psk = try pskFile(f)
        let server = try f.startServer(["--listen", "127.0.0.1:0", "--tls-psk", psk])
        #expect(server.log.contains("TLS required on the NBD sockets: pre-shared keys from \(psk) (1 user)"), "\(server.log)")
        let port = try #require(server.tcpPort, "\(server.log)")
        let uri = "nbds://alice@127.0.0.1:\(port)/d0?tls-psk-file=\(psk)"
        let sizeText = try MetaTestSupport.mustRun(["nbdinfo", "--size", uri])
        let size = try #require(Int(sizeText.trimmingCharacters(in: .whitespacesAndNewlines)), "\(sizeText)")
        #expect(size > 4 << 20)
        let data = try writeRandomFile(f.dir.file("src.bin"), size: size)
        try MetaTestSupport.mustRun(["nbdcopy", f.dir.file("src.bin"), uri])
        try MetaTestSupport.mustRun(["nbdcopy", uri, f.dir.file("back.bin")])
        #expect(FileManager.default.contents(atPath: f.dir.file("back.bin")) == data)
        // Over the Unix socket, too.
        try MetaTestSupport.mustRun(["nbdcopy", "nbds+unix://alice@/d0?socket=\(f.socketPath)&tls-psk-file=\(psk)",
                                     f.dir.file("back2.bin")])
        #expect(FileManager.default.contents(atPath: f.dir.file("back2.bin")) == data)
        // Plain clients are refused, on TCP and on the Unix socket.
        let plain = try runCommand(["nbdinfo", "--size", "nbd://127.0.0.1:\(port)/d0"])
        #expect(!plain.ok)
        #expect(plain.stderr.contains("TLS"), "\(plain.stderr)")
        #expect(!(try runCommand(["nbdinfo", "--size", f.uri("d0")])).ok)
        // A wrong key is refused.
        let wrong = try pskFile(f, "wrong.psk")
        #expect(!(try runCommand(["nbdinfo", "--size", "nbds://alice@127.0.0.1:\(port)/d0?tls-psk-file=\(wrong)"])).ok)
        #expect(server.isRunning)
        #expect(server.stop() == 0)
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])), .timeLimit(.minutes(3)))
    func allowModeAndReadOnlyVolume() throws {
        let f = try fixture()
        defer { f.cleanup() }
        try f.create("d1", "concat", [try f.dir.image("v1.img", size: 8 << 20)])
        let psk = try pskFile(f)
        let server = try f.startServer(["--listen", "127.0.0.1:0", "--tls", "allow", "--tls-psk", psk, "--read-only-volume", "d1"])
        let port = try #require(server.tcpPort, "\(server.log)")
        let plain = try MetaTestSupport.mustRun(["nbdinfo", "--json", "nbd://127.0.0.1:\(port)/d1"])
        #expect(plain.contains("\"is_read_only\": true"), "\(plain)")
        let tls = try MetaTestSupport.mustRun(["nbdinfo", "--json", "nbds://alice@127.0.0.1:\(port)/d0?tls-psk-file=\(psk)"])
        #expect(tls.contains("\"is_read_only\": false"), "\(tls)")
        #expect(tls.contains("\"TLS\": true"), "\(tls)")
        #expect(server.stop() == 0)
    }

    /// SIGHUP reads the key file again: a client with the new key gets in, one with the old
    /// key does not; a file that does not load leaves the credentials in use as they were.
    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])), .timeLimit(.minutes(3)))
    func sighupReloadsTheKeys() throws {
        let f = try fixture()
        defer { f.cleanup() }
        let psk = try pskFile(f)
        let old = f.dir.file("old.psk")
        try FileManager.default.copyItem(atPath: psk, toPath: old)
        let server = try f.startServer(["--listen", "127.0.0.1:0", "--tls-psk", psk])
        let port = try #require(server.tcpPort, "\(server.log)")
        func size(_ keys: String) throws -> Bool {
            try runCommand(["nbdinfo", "--size", "nbds://alice@127.0.0.1:\(port)/d0?tls-psk-file=\(keys)"]).ok
        }
        #expect(try size(psk))
        // A new key in place of the old one, then SIGHUP.
        let fresh = try pskFile(f, "fresh.psk")
        try FileManager.default.removeItem(atPath: psk)
        try FileManager.default.copyItem(atPath: fresh, toPath: psk)
        #expect(kill(server.pid, SIGHUP) == 0)
        let deadline = Date().addingTimeInterval(30)
        while !server.log.contains("SIGHUP: TLS credentials reloaded") && Date() < deadline { usleep(50_000) }
        #expect(server.log.contains("SIGHUP: TLS credentials reloaded for new connections: pre-shared keys from \(psk) (1 user)"), "\(server.log)")
        #expect(try size(fresh))
        #expect(!(try size(old)))
        // A broken file: logged, and the keys in use stay.
        try "alice:nothex\n".write(toFile: psk, atomically: true, encoding: .utf8)
        #expect(kill(server.pid, SIGHUP) == 0)
        while !server.log.contains("SIGHUP: TLS credentials not reloaded") && Date() < deadline.addingTimeInterval(30) { usleep(50_000) }
        #expect(server.log.contains("the previous ones stay in use"), "\(server.log)")
        #expect(try size(fresh))
        #expect(server.isRunning)
        #expect(server.stop() == 0)
    }

    /// The control socket stays 0600 whatever TLS does.
    @Test(.timeLimit(.minutes(3)))
    func controlSocketStaysOwnerOnly() throws {
        let f = try fixture()
        defer { f.cleanup() }
        let server = try f.startServer(["--tls-psk", try pskFile(f)])
        let attrs = try FileManager.default.attributesOfItem(atPath: "\(f.runDir)/\(f.set).ctl")
        #expect((attrs[.posixPermissions] as? Int).map { $0 & 0o777 } == 0o600)
        #expect(server.stop() == 0)
    }
}
