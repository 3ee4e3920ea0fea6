import Foundation
import NIOSSL

/// When the server insists on TLS (proto.md "TLS support").
public enum NBDTLSMode: String, Sendable, CaseIterable {
    /// NOTLS: `NBD_OPT_STARTTLS` is refused with `NBD_REP_ERR_POLICY`.
    case off
    /// SELECTIVETLS with no TLS-only export: a client may upgrade with `NBD_OPT_STARTTLS`, or not.
    case allow
    /// FORCEDTLS: every option but `NBD_OPT_STARTTLS` and `NBD_OPT_ABORT` gets
    /// `NBD_REP_ERR_TLS_REQD` until TLS is up; `NBD_OPT_EXPORT_NAME` without TLS hangs up.
    case require
}

/// Why TLS credentials could not be loaded: one line, naming the file.
public struct NBDTLSError: Error, Sendable, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A server's TLS identity: x509 certificates or pre-shared keys, ready to start sessions with.
public struct NBDTLSCredentials: Sendable {
    /// What kind of credentials these are.
    public enum Kind: Sendable, Equatable {
        /// x509: the server's certificate; `verifyPeer` asks clients for a certificate signed by `ca-cert.pem`.
        case x509(directory: String, verifyPeer: Bool)
        /// Pre-shared keys, one per user name.
        case psk(file: String, users: Int)
    }

    public let kind: Kind
    let context: NIOSSLContext

    /// How the credentials are described in logs ("x509 certificates from DIR", "PSK file FILE (2 users)").
    public var summary: String {
        switch kind {
        case .x509(let dir, let verify):
            "x509 certificates from \(dir)\(verify ? ", client certificates verified against ca-cert.pem" : "")"
        case .psk(let file, let users):
            "pre-shared keys from \(file) (\(users) user\(users == 1 ? "" : "s"))"
        }
    }

    /// Loads x509 credentials from `directory`, laid out as for nbdkit's and qemu's
    /// `--tls-certificates`: `server-cert.pem` (the certificate, optionally followed by its
    /// chain), `server-key.pem` (its private key), and `ca-cert.pem` (the CA that signs client
    /// certificates, needed only with `verifyPeer`).
    public static func x509(directory: String, verifyPeer: Bool = false) throws(NBDTLSError) -> NBDTLSCredentials {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) else {
            throw NBDTLSError("--tls-certificates \(directory): no such directory")
        }
        guard isDir.boolValue else { throw NBDTLSError("--tls-certificates \(directory): not a directory") }
        let certPath = "\(directory)/server-cert.pem", keyPath = "\(directory)/server-key.pem"
        let caPath = "\(directory)/ca-cert.pem"
        let chain: [NIOSSLCertificate]
        do {
            try requireReadable(certPath, what: "the server certificate")
            chain = try NIOSSLCertificate.fromPEMFile(certPath)
        } catch let e as NBDTLSError { throw e } catch {
            throw NBDTLSError("\(certPath): not a PEM certificate (\(describe(error)))")
        }
        guard !chain.isEmpty else { throw NBDTLSError("\(certPath): no PEM certificate in it") }
        let key: NIOSSLPrivateKey
        do {
            try requireReadable(keyPath, what: "the server's private key")
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch let e as NBDTLSError { throw e } catch {
            throw NBDTLSError("\(keyPath): not a PEM private key (\(describe(error)))")
        }
        var config: TLSConfiguration
        if verifyPeer {
            do {
                try requireReadable(caPath, what: "the CA certificate that --tls-verify-peer checks clients against")
                let ca = try NIOSSLCertificate.fromPEMFile(caPath)
                guard !ca.isEmpty else { throw NBDTLSError("\(caPath): no PEM certificate in it") }
                config = TLSConfiguration.makeServerConfigurationWithMTLS(
                    certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key),
                    trustRoots: .certificates(ca))
            } catch let e as NBDTLSError { throw e } catch {
                throw NBDTLSError("\(caPath): not a PEM certificate (\(describe(error)))")
            }
        } else {
            config = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                              privateKey: .privateKey(key))
        }
        config.minimumTLSVersion = .tlsv12
        let context: NIOSSLContext
        do { context = try NIOSSLContext(configuration: config) } catch {
            throw NBDTLSError("\(directory): cannot use server-cert.pem with server-key.pem (\(describe(error))); does the key belong to the certificate?")
        }
        return NBDTLSCredentials(kind: .x509(directory: directory, verifyPeer: verifyPeer), context: context)
    }

    /// Loads pre-shared keys from `file`, in the format of GnuTLS's `psktool` (as nbdkit's and
    /// qemu's `--tls-psk` read it): one `USERNAME:HEXKEY` per line.
    ///
    /// External PSKs are negotiated as TLS 1.2 (BoringSSL offers them only there) with
    /// (EC)DHE-PSK or PSK cipher suites; GnuTLS clients (libnbd, qemu) fall back to 1.2 for them.
    public static func psk(file: String) throws(NBDTLSError) -> NBDTLSCredentials {
        try requireReadable(file, what: "the PSK file")
        guard let data = FileManager.default.contents(atPath: file) else {
            throw NBDTLSError("--tls-psk \(file): cannot read it")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw NBDTLSError("--tls-psk \(file): not a text file of USERNAME:HEXKEY lines (psktool's format)")
        }
        let keys = try parsePSK(text, file: file)
        let table = keys
        var config = TLSConfiguration.makePreSharedKeyConfiguration()
        config.minimumTLSVersion = .tlsv12
        config.maximumTLSVersion = .tlsv12
        config.cipherSuites = pskCipherSuites
        config.pskServerProvider = { ctx in
            guard let key = table[ctx.clientIdentity] else { throw NBDTLSError("unknown PSK user '\(ctx.clientIdentity)'") }
            guard key.count <= ctx.maxPSKLength else { throw NBDTLSError("PSK of user '\(ctx.clientIdentity)' too long") }
            var bytes = NIOSSLSecureBytes()
            bytes.append(contentsOf: key)
            return PSKServerIdentityResponse(key: bytes)
        }
        let context: NIOSSLContext
        do { context = try NIOSSLContext(configuration: config) } catch {
            throw NBDTLSError("--tls-psk \(file): cannot set up TLS (\(describe(error)))")
        }
        return NBDTLSCredentials(kind: .psk(file: file, users: keys.count), context: context)
    }

    /// TLS 1.2 suites with pre-shared keys, strongest first (OpenSSL/BoringSSL names).
    static let pskCipherSuites = [
        "ECDHE-PSK-CHACHA20-POLY1305",
        "ECDHE-PSK-AES256-CBC-SHA",
        "ECDHE-PSK-AES128-CBC-SHA",
        "PSK-AES256-CBC-SHA",
        "PSK-AES128-CBC-SHA",
    ].joined(separator: ":")

    /// Parses psktool's `USERNAME:HEXKEY` lines (blank lines and `#` comments are skipped).
    static func parsePSK(_ text: String, file: String) throws(NBDTLSError) -> [String: [UInt8]] {
        var keys: [String: [UInt8]] = [:]
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let whereAt = "--tls-psk \(file) line \(i + 1)"
            guard let colon = line.firstIndex(of: ":") else {
                throw NBDTLSError("\(whereAt): expected USERNAME:HEXKEY (psktool's format)")
            }
            let user = String(line[..<colon]), hex = line[line.index(after: colon)...]
            guard !user.isEmpty else { throw NBDTLSError("\(whereAt): empty user name") }
            guard let key = decodeHex(hex), !key.isEmpty else {
                throw NBDTLSError("\(whereAt): the key of '\(user)' is not an even number of hex digits")
            }
            guard keys[user] == nil else { throw NBDTLSError("\(whereAt): user '\(user)' appears twice") }
            keys[user] = key
        }
        guard !keys.isEmpty else { throw NBDTLSError("--tls-psk \(file): no USERNAME:HEXKEY line (make one with `psktool -u USER -p \(file)`)") }
        return keys
    }

    static func decodeHex<S: StringProtocol>(_ hex: S) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func requireReadable(_ path: String, what: String) throws(NBDTLSError) {
        guard FileManager.default.fileExists(atPath: path) else { throw NBDTLSError("\(path): missing (\(what))") }
        guard FileManager.default.isReadableFile(atPath: path) else { throw NBDTLSError("\(path): not readable (\(what))") }
    }

    /// An NIOSSL error in a few words (its BoringSSL error queue, without Swift type names).
    static func describe(_ error: any Error) -> String {
        if let e = error as? NIOSSLError {
            switch e {
            case .failedToLoadCertificate: return "cannot load the certificate"
            case .failedToLoadPrivateKey: return "cannot load the private key"
            case .handshakeFailed(let inner): return reasons(inner)
            default: return reasons(e)
            }
        }
        return reasons(error)
    }

    /// BoringSSL's reason codes (`BAD_DECRYPT`, `PEER_DID_NOT_RETURN_A_CERTIFICATE`) from an
    /// error's text, without source paths and numbers; the plain text when it has none.
    static func reasons(_ error: any Error) -> String {
        let text = "\(error)"
        var found: [String] = []
        var rest = Substring(text)
        while let r = rest.range(of: "OPENSSL_internal:") {
            let reason = rest[r.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !reason.isEmpty && !found.contains(String(reason)) { found.append(String(reason)) }
            rest = rest[r.upperBound...]
        }
        if !found.isEmpty { return found.joined(separator: ", ") }
        if text.contains("EOF during handshake") { return "the client closed the connection during the handshake" }
        return text
    }
}

/// How a server uses TLS: the mode, and the credentials sessions start with.
public struct NBDTLSSettings: Sendable {
    public var mode: NBDTLSMode
    public var credentials: NBDTLSCredentials

    public init(mode: NBDTLSMode, credentials: NBDTLSCredentials) {
        self.mode = mode
        self.credentials = credentials
    }
}
