import Foundation
import MetaNBD
import MetaTestSupport
import Testing

/// Test credentials made at test time in a temp directory (never committed).
enum TLSTestCredentials {
    /// A psktool-style file `user:hexkey` with a random 32-byte key; returns its path.
    @discardableResult
    static func pskFile(_ path: String, user: String = "alice") throws -> String {
        var g = SystemRandomNumberGenerator()
        let hex = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
        try "\(user):\(hex)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, laid out as
    /// nbdkit and libnbd expect: `server/` has ca-cert.pem, server-cert.pem, server-key.pem;
    /// `client/` has ca-cert.pem, client-cert.pem, client-key.pem; `ca-only/` has only ca-cert.pem.
    static func x509(_ dir: TempDir) throws -> (server: String, client: String, caOnly: String) {
        let d = dir.file("pki")
        for sub in ["", "/server", "/client", "/ca-only"] {
            try FileManager.default.createDirectory(atPath: d + sub, withIntermediateDirectories: true)
        }
        func openssl(_ args: [String]) throws { try mustRun(["openssl"] + args) }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(["req", "-x509"] + ec + ["-keyout", "\(d)/ca-key.pem", "-out", "\(d)/ca-cert.pem", "-days", "2",
                     "-subj", "/CN=metactl test CA",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
            .write(toFile: "\(d)/server.ext", atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n"
            .write(toFile: "\(d)/client.ext", atomically: true, encoding: .utf8)
        for (who, sub) in [("server", "server"), ("client", "client")] {
            try openssl(["req"] + ec + ["-keyout", "\(d)/\(sub)/\(who)-key.pem", "-out", "\(d)/\(who).csr",
                                       "-subj", "/CN=\(who == "server" ? "localhost" : "metactl test client")"])
            try openssl(["x509", "-req", "-in", "\(d)/\(who).csr", "-CA", "\(d)/ca-cert.pem", "-CAkey", "\(d)/ca-key.pem",
                         "-CAcreateserial", "-out", "\(d)/\(sub)/\(who)-cert.pem", "-days", "2", "-extfile", "\(d)/\(who).ext"])
        }
        for sub in ["server", "client", "ca-only"] {
            try FileManager.default.copyItem(atPath: "\(d)/ca-cert.pem", toPath: "\(d)/\(sub)/ca-cert.pem")
        }
        return ("\(d)/server", "\(d)/client", "\(d)/ca-only")
    }
}

/// A server on a Unix socket and TCP 127.0.0.1 (a free port) with TLS.
private func withTLSServer<T>(exports: [any NBDExport], dir: TempDir, mode: NBDTLSMode, credentials: NBDTLSCredentials,
                              _ body: (NBDTestServer, Int) async throws -> T) async throws -> T {
    try await withNBDServer(exports: exports, dir: dir, configure: { c in
        c.tcpHost = "127.0.0.1"
        c.tcpPort = 0
        c.tls = NBDTLSSettings(mode: mode, credentials: credentials)
    }) { s in
        let port = try #require(s.server.tcpPort)
        return try await body(s, port)
    }
}

/// libnbd's tools (GnuTLS) against the server's STARTTLS, with PSK and with x509.
@Suite(.serialized) struct NBDTLSInteropTests {
    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo", "nbdcopy"])))
    func pskNbdinfoAndNbdcopyOverTCPAndUnix() async throws {
        let dir = try TempDir(prefix: "nbd-tls-psk")
        let size = 4 << 20
        let export = try FileExport(name: "vol", path: try dir.image("vol.img", size: UInt64(size)))
        let psk = try TLSTestCredentials.pskFile(dir.file("keys.psk"))
        let source = try writeRandomFile(dir.file("src.bin"), size: size)
        try await withTLSServer(exports: [export], dir: dir, mode: .require, credentials: try .psk(file: psk)) { s, port in
            let uri = "nbds://alice@127.0.0.1:\(port)/vol?tls-psk-file=\(psk)"
            let json = try parseJSON(try mustRun(["nbdinfo", "--json", uri]))
            #expect(json["TLS"] as? Bool == true)
            let e = try #require((json["exports"] as? [[String: Any]])?.first)
            #expect(e["export-size"] as? Int == size)

            try mustRun(["nbdcopy", "--requests=8", dir.file("src.bin"), uri])
            try mustRun(["nbdcopy", uri, dir.file("back.bin")])
            #expect(try readFile(dir.file("back.bin")) == source)
            #expect(try readFile(dir.file("vol.img")) == source)

            // nbds+unix: TLS on the Unix socket too; a plain client there is refused as well.
            let unixURI = "nbds+unix://alice@/vol?socket=\(s.socketPath)&tls-psk-file=\(psk)"
            #expect(try mustRun(["nbdinfo", "--size", unixURI]).trimmingCharacters(in: .whitespacesAndNewlines) == "\(size)")
            #expect(!(try runCommand(["nbdinfo", "--size", s.uri("vol")])).ok)

            // A plain client over TCP is refused, and says why.
            let plain = try runCommand(["nbdinfo", "--size", "nbd://127.0.0.1:\(port)/vol"])
            #expect(!plain.ok)
            #expect(plain.stderr.contains("TLS"), "nbdinfo said: \(plain.stderr)")
        }
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func wrongPSKOrUnknownUserIsRefused() async throws {
        let dir = try TempDir(prefix: "nbd-tls-wrongpsk")
        let export = try FileExport(name: "vol", path: try dir.image("vol.img", size: 1 << 20))
        let psk = try TLSTestCredentials.pskFile(dir.file("keys.psk"))
        let wrong = try TLSTestCredentials.pskFile(dir.file("wrong.psk"))  // same user, another key
        try await withTLSServer(exports: [export], dir: dir, mode: .require, credentials: try .psk(file: psk)) { s, port in
            let bad = try runCommand(["nbdinfo", "--size", "nbds://alice@127.0.0.1:\(port)/vol?tls-psk-file=\(wrong)"])
            #expect(!bad.ok)
            let unknownUser = try runCommand(["nbdinfo", "--size", "nbds://mallory@127.0.0.1:\(port)/vol?tls-psk-file=\(psk)"])
            #expect(!unknownUser.ok)
            // The server is still there for the right key.
            let good = try mustRun(["nbdinfo", "--size", "nbds://alice@127.0.0.1:\(port)/vol?tls-psk-file=\(psk)"])
            #expect(good.trimmingCharacters(in: .whitespacesAndNewlines) == "\(1 << 20)")
        }
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo", "nbdcopy", "openssl"])))
    func x509NbdinfoAndNbdcopy() async throws {
        let dir = try TempDir(prefix: "nbd-tls-x509")
        let size = 3 << 20
        let export = try FileExport(name: "vol", path: try dir.image("vol.img", size: UInt64(size)))
        let pki = try TLSTestCredentials.x509(dir)
        let source = try writeRandomFile(dir.file("src.bin"), size: size)
        try await withTLSServer(exports: [export], dir: dir, mode: .require,
                                credentials: try .x509(directory: pki.server)) { s, port in
            let uri = "nbds://127.0.0.1:\(port)/vol?tls-certificates=\(pki.caOnly)"
            let json = try parseJSON(try mustRun(["nbdinfo", "--json", uri]))
            #expect(json["TLS"] as? Bool == true)
            try mustRun(["nbdcopy", dir.file("src.bin"), uri])
            try mustRun(["nbdcopy", uri, dir.file("back.bin")])
            #expect(try readFile(dir.file("back.bin")) == source)
            #expect(try readFile(dir.file("vol.img")) == source)
            let plain = try runCommand(["nbdinfo", "--size", "nbd://127.0.0.1:\(port)/vol"])
            #expect(!plain.ok)
            #expect(plain.stderr.contains("TLS"), "nbdinfo said: \(plain.stderr)")
            // x509 on the Unix socket (libnbd checks the certificate against "localhost").
            let unixSize = try mustRun(["nbdinfo", "--size", "nbds+unix:///vol?socket=\(s.socketPath)&tls-certificates=\(pki.caOnly)"])
            #expect(unixSize.trimmingCharacters(in: .whitespacesAndNewlines) == "\(size)")
            // A client that does not trust the server's CA refuses it.
            let other = try TempDir(prefix: "nbd-tls-otherca")
            let otherPKI = try TLSTestCredentials.x509(other)
            #expect(!(try runCommand(["nbdinfo", "--size", "nbds://127.0.0.1:\(port)/vol?tls-certificates=\(otherPKI.caOnly)"])).ok)
        }
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo", "openssl"])))
    func x509VerifyPeerAcceptsOnlyClientsWithACertificate() async throws {
        let dir = try TempDir(prefix: "nbd-tls-mtls")
        let export = try FileExport(name: "vol", path: try dir.image("vol.img", size: 1 << 20))
        let pki = try TLSTestCredentials.x509(dir)
        try await withTLSServer(exports: [export], dir: dir, mode: .require,
                                credentials: try .x509(directory: pki.server, verifyPeer: true)) { s, port in
            let ok = try mustRun(["nbdinfo", "--size", "nbds://127.0.0.1:\(port)/vol?tls-certificates=\(pki.client)"])
            #expect(ok.trimmingCharacters(in: .whitespacesAndNewlines) == "\(1 << 20)")
            #expect(!(try runCommand(["nbdinfo", "--size", "nbds://127.0.0.1:\(port)/vol?tls-certificates=\(pki.caOnly)"])).ok)
        }
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func allowServesPlainAndTLSClients() async throws {
        let dir = try TempDir(prefix: "nbd-tls-allow")
        let export = try FileExport(name: "vol", path: try dir.image("vol.img", size: 2 << 20))
        let psk = try TLSTestCredentials.pskFile(dir.file("keys.psk"))
        try await withTLSServer(exports: [export], dir: dir, mode: .allow, credentials: try .psk(file: psk)) { s, port in
            let tls = try parseJSON(try mustRun(["nbdinfo", "--json", "nbds://alice@127.0.0.1:\(port)/vol?tls-psk-file=\(psk)"]))
            #expect(tls["TLS"] as? Bool == true)
            let plain = try parseJSON(try mustRun(["nbdinfo", "--json", "nbd://127.0.0.1:\(port)/vol"]))
            #expect(plain["TLS"] as? Bool == false)
            #expect(try mustRun(["nbdinfo", "--size", s.uri("vol")]).trimmingCharacters(in: .whitespacesAndNewlines) == "\(2 << 20)")
        }
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["qemu-img"])))
    func qemuImgWithPSK() async throws {
        let dir = try TempDir(prefix: "nbd-tls-qemu")
        let size = 2 << 20
        let export = try FileExport(name: "vol", path: try dir.image("vol.img", size: UInt64(size)))
        try FileManager.default.createDirectory(atPath: dir.file("qemu"), withIntermediateDirectories: true)
        // qemu's tls-creds-psk reads keys.psk in its directory; its user name defaults to "qemu".
        let psk = try TLSTestCredentials.pskFile(dir.file("qemu/keys.psk"), user: "qemu")
        try writeRandomFile(dir.file("src.raw"), size: size)
        try await withTLSServer(exports: [export], dir: dir, mode: .require, credentials: try .psk(file: psk)) { _, port in
            let object = "tls-creds-psk,id=tls0,endpoint=client,dir=\(dir.file("qemu"))"
            let target = "driver=nbd,host=127.0.0.1,port=\(port),export=vol,tls-creds=tls0"
            try mustRun(["qemu-img", "convert", "-n", "--object", object, "-f", "raw", "--target-image-opts",
                         dir.file("src.raw"), target])
            try mustRun(["qemu-img", "compare", "--object", object, "--image-opts",
                         "driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port=\(port),file.export=vol,file.tls-creds=tls0",
                         "driver=raw,file.driver=file,file.filename=\(dir.file("src.raw"))"])
        }
        #expect(try readFile(dir.file("vol.img")) == (try readFile(dir.file("src.raw"))))
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["qemu-img", "openssl"])))
    func qemuImgWithX509() async throws {
        let dir = try TempDir(prefix: "nbd-tls-qemu509")
        let size = 1 << 20
        let export = try FileExport(name: "vol", path: try dir.image("vol.img", size: UInt64(size)))
        let pki = try TLSTestCredentials.x509(dir)
        try await withTLSServer(exports: [export], dir: dir, mode: .require,
                                credentials: try .x509(directory: pki.server, verifyPeer: true)) { _, port in
            // qemu's tls-creds-x509 client directory: ca-cert.pem, client-cert.pem, client-key.pem.
            let out = try mustRun(["qemu-img", "info", "--output=json",
                                   "--object", "tls-creds-x509,id=tls0,endpoint=client,dir=\(pki.client)",
                                   "--image-opts", "driver=nbd,host=127.0.0.1,port=\(port),export=vol,tls-creds=tls0"])
            #expect(try parseJSON(out)["virtual-size"] as? Int == size)
        }
    }
}
