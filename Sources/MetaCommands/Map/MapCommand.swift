import ArgumentParser
import Foundation
import MetaControl
import MetaDevices

/// `metactl map NAME [DEV]`: gives the host a block device for a served volume.
struct MapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "map",
        abstract: "Give the host a block device for a volume (as rbd map does); prints the device.",
        discussion: """
        Needs the set's server (metactl serve). Prints the device (/dev/loopN) on stdout and, \
        on stderr, the path taken. The kernel nbd driver is not driven yet: metactl maps \
        through nbdfuse (with nbdkit's retry filter in front of the server) and a loop device \
        with direct I/O, and says so. A restart of the server under a mapped volume is not \
        noticed: requests wait for it, up to --reconnect-timeout seconds, and then fail with \
        EIO (a request the server itself fails, for example a read of lost data, is also \
        retried until then). DEV picks the loop device (default: the first free one). \
        Mappings are recorded in <run-dir>/<set>.maps.json and shown by metactl status; \
        metactl unmap tears one down. A server that requires TLS (serve --tls require) is \
        reached with TLS too: give the client side's --tls-certificates DIR or --tls-psk FILE \
        (with --tls-username); serve --restore-maps uses them again.
        """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The volume to map.", completion: .shellCommand(Completions.volumes))
    var name: String

    @Argument(help: "The loop device to use (default: the first free one).")
    var device: String?

    @Flag(name: .customLong("read-only"), help: "Map read-only.")
    var readOnly = false

    @Option(help: ArgumentHelp("The server's NBD Unix socket (default <run-dir>/<set>.nbd).", valueName: "path"))
    var socket: String?

    @Option(name: .customLong("reconnect-timeout"),
            help: ArgumentHelp("Seconds a request waits for an absent server before it fails with EIO (default 60).",
                               valueName: "seconds"))
    var reconnectTimeout: Int = 60

    @Option(name: .customLong("tls-certificates"),
            help: ArgumentHelp("A server with --tls require and x509: connect with TLS, trusting DIR/ca-cert.pem (and presenting DIR/client-cert.pem when it has one).", valueName: "dir"))
    var tlsCertificates: String?

    @Option(name: .customLong("tls-psk"),
            help: ArgumentHelp("A server with --tls require and PSK: connect with TLS using the key of --tls-username in FILE (psktool's format).", valueName: "file"))
    var tlsPSK: String?

    @Option(name: .customLong("tls-username"), help: ArgumentHelp("The PSK user (default: the current user).", valueName: "user"))
    var tlsUsername: String?

    func run() throws {
        guard (1...86_400).contains(reconnectTimeout) else {
            throw UserError("--reconnect-timeout \(reconnectTimeout): expected 1 to 86400 seconds", code: .invalidArgument)
        }
        if tlsCertificates != nil && tlsPSK != nil { throw UserError("--tls-certificates and --tls-psk exclude each other; give one", code: .invalidArgument) }
        if tlsUsername != nil && tlsPSK == nil { throw UserError("--tls-username goes with --tls-psk FILE", code: .invalidArgument) }
        let tls = tlsCertificates != nil || tlsPSK != nil
            ? MapTLS(certificates: tlsCertificates.map(Paths.absolute), psk: tlsPSK.map(Paths.absolute), username: tlsUsername) : nil
        for p in [tlsCertificates, tlsPSK].compactMap({ $0 }) where !FileManager.default.fileExists(atPath: Paths.absolute(p)) {
            throw UserError("\(p): no such file or directory", code: .notFound)
        }
        let ping = try Self.requireServer(global)
        guard ping.volumes.contains(name) else {
            throw UserError("\(name): no such volume in set '\(global.set)'", code: .notFound)
        }
        let mapper = Mapper(set: global.set, runDir: global.runDir)
        let rec = try mapper.map(.init(volume: name, device: device.map(Paths.absolute),
                                       socket: socket.map(Paths.absolute) ?? "\(global.runDir)/\(global.set).nbd",
                                       readOnly: readOnly, reconnectTimeout: reconnectTimeout, tls: tls))
        print(rec.device)
        if !global.quiet { Output.warn("\(name): \(Mapper.pathNote(rec.path, device: rec.device))") }
    }

    /// The set's server, or an error with the command that starts one.
    static func requireServer(_ g: GlobalOptions) throws -> PingResult {
        let ctl = ControlClient.socketPath(runDir: g.runDir, set: g.set)
        let response: ControlResponse?
        do { response = try ControlClient.send(.ping, socketPath: ctl, timeout: 10) } catch { response = nil }
        guard let response, response.ok, let ping = try? response.decode(PingResult.self) else {
            var cmd = "metactl serve"
            if g.set != "local" { cmd += " -s \(g.set)" }
            if let r = g.runDirOption { cmd += " --run-dir \(StatusFormatter.shellQuote(r))" }
            if let c = g.configDirOption { cmd += " --config-dir \(StatusFormatter.shellQuote(c))" }
            throw UserError("set '\(g.set)' is not served: map needs its server (start it: `\(cmd) &`)", code: .notFound)
        }
        return ping
    }
}
