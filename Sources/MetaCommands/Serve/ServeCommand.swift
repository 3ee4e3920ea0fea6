import ArgumentParser
import Foundation
import Logging
import MetaControl
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine
import MetaNBD
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `metactl serve`: runs the set's I/O engine, exports its volumes over NBD and answers the
/// other commands on the control socket.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the set's volumes over NBD and run resyncs (the md driver's job).",
        discussion: """
        Runs in the foreground and logs to stderr. Each volume is exported under its own name \
        (the empty export name selects the set's only volume) on the Unix socket \
        <run-dir>/<set>.nbd unless --socket or --listen says otherwise; the control socket is \
        <run-dir>/<set>.ctl (mode 0600) and the PID is in <run-dir>/<set>.pid. While it runs, \
        every other metactl command for the set goes through the control socket.

        SIGTERM or SIGINT: stop accepting clients, finish in-flight requests, flush, record a \
        clean shutdown in the state database, exit 0. A start after a crash says so.

        Clients: nbdinfo/nbdcopy/qemu-img with nbd+unix:///NAME?socket=PATH; \
        nbdfuse DIR/FILE nbd+unix:///NAME?socket=PATH then losetup; the kernel client with \
        nbd-client -unix PATH -N NAME /dev/nbd0. NBD has no resize notice: after a grow, \
        reconnect (nbdfuse: remount then `losetup -c`; kernel: nbd-client again; qemu: \
        block_resize).

        TLS: with --tls-certificates DIR (x509, nbdkit's layout) or --tls-psk FILE (psktool's \
        USERNAME:HEXKEY lines) every NBD client, on the Unix socket and on TCP, must start TLS \
        (nbds://USER@HOST:PORT/NAME?tls-psk-file=FILE, \
        nbds+unix:///NAME?socket=PATH&tls-certificates=DIR); --tls allow lets plain clients in too. \
        --listen on a non-loopback address refuses to start unless TLS is required or --insecure \
        is given. SIGHUP reads the certificates or the key file again (renewed certificates, \
        a new user's key): connections accepted from then on use them, those already up keep \
        theirs; a file that does not load is logged and the previous credentials stay.
        """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Unix socket for NBD (default <run-dir>/<set>.nbd).", valueName: "path"))
    var socket: String?

    @Option(help: ArgumentHelp(
        "Also listen for NBD on TCP HOST:PORT. A non-loopback HOST needs TLS (--tls-certificates or --tls-psk) or --insecure.",
        valueName: "host:port"))
    var listen: String?

    @Option(help: ArgumentHelp(
        "TLS on the NBD sockets: off, allow (clients choose) or require (default: require when --tls-certificates or --tls-psk is given, else off).",
        valueName: "mode"))
    var tls: NBDTLSMode?

    @Option(name: .customLong("tls-certificates"), help: ArgumentHelp(
        "x509 TLS: a directory with server-cert.pem and server-key.pem (and ca-cert.pem for --tls-verify-peer), as for nbdkit.",
        valueName: "dir"), completion: .directory)
    var tlsCertificates: String?

    @Option(name: .customLong("tls-psk"), help: ArgumentHelp(
        "Pre-shared-key TLS: a psktool file of USERNAME:HEXKEY lines; only clients holding a key connect.",
        valueName: "file"), completion: .file())
    var tlsPSK: String?

    @Flag(name: .customLong("tls-verify-peer"),
          help: "With --tls-certificates: accept only clients whose certificate ca-cert.pem signed.")
    var tlsVerifyPeer = false

    @Flag(help: "Allow --listen on a non-loopback address without requiring TLS (anyone who reaches it can read and write).")
    var insecure = false

    @Option(help: ArgumentHelp(
        "Data I/O on the components: none (O_DIRECT, the default) or writeback (through the page cache; flushes still reach the disk).",
        valueName: "mode"))
    var cache: CacheMode = .none

    @Flag(name: .customLong("read-only"),
          help: "Export every volume read-only (clients cannot write, trim or zero; resyncs still run).")
    var readOnlyExports = false

    @Option(help: ArgumentHelp(
        "Export Prometheus metrics: HOST:PORT serves GET /metrics; a PATH ending in .prom is rewritten every 10 s (node_exporter's textfile collector).",
        valueName: "host:port|path"))
    var metrics: String?

    @Flag(name: .customLong("restore-maps"),
          help: "Once listening, map again every volume recorded as mapped (metactl map) whose mapping is gone.")
    var restoreMaps = false

    @Flag(name: .customLong("unmap-on-exit"),
          help: "At shutdown, unmap every mapped volume first (default: mappings stay and reconnect when a server returns).")
    var unmapOnExit = false

    @Option(name: .customLong("read-only-volume"), help: ArgumentHelp(
        "Export this volume read-only (repeatable); the others stay writable.", valueName: "name"),
            completion: .shellCommand(Completions.volumes))
    var readOnlyVolumes: [String] = []

    @Argument(help: "Volumes to export (default: all).", completion: .shellCommand(Completions.volumes))
    var names: [String] = []

    func run() async throws {
        try await ServeDaemon(self).run()
    }
}

extension CacheMode: ExpressibleByArgument {}
extension NBDTLSMode: ExpressibleByArgument {}

extension ServeCommand {
    /// The TLS settings the options ask for (nil: no TLS); every inconsistency is one line.
    static func tlsSettings(mode: NBDTLSMode?, certificates: String?, psk: String?,
                            verifyPeer: Bool) throws -> NBDTLSSettings? {
        if certificates != nil && psk != nil {
            throw UserError("--tls-certificates and --tls-psk exclude each other: choose x509 certificates or pre-shared keys", code: .invalidArgument)
        }
        if verifyPeer && certificates == nil {
            throw UserError("--tls-verify-peer needs --tls-certificates DIR (its ca-cert.pem checks the clients' certificates)", code: .invalidArgument)
        }
        let effective = mode ?? (certificates != nil || psk != nil ? .require : .off)
        if effective == .off {
            if certificates != nil || psk != nil {
                throw UserError("--tls off with \(certificates != nil ? "--tls-certificates" : "--tls-psk"): the credentials would not be used (drop one of them)", code: .invalidArgument)
            }
            return nil
        }
        let credentials: NBDTLSCredentials
        do {
            if let certificates {
                credentials = try NBDTLSCredentials.x509(directory: certificates, verifyPeer: verifyPeer)
            } else if let psk {
                credentials = try NBDTLSCredentials.psk(file: psk)
            } else {
                throw UserError("--tls \(effective.rawValue) needs credentials: --tls-certificates DIR or --tls-psk FILE", code: .invalidArgument)
            }
        } catch let e as NBDTLSError {
            throw UserError(e.description, code: .invalidArgument)
        }
        return NBDTLSSettings(mode: effective, credentials: credentials)
    }
}

extension ServeCommand {
    /// One line for systemd's STATUS=: the volumes and what is not Okay.
    static func summary(_ manager: SetManager) -> String {
        let cfg = manager.config
        let notOkay = cfg.volumes.filter { cfg.servedState(of: $0) != .okay }.map { "\($0.name) \(cfg.servedState(of: $0).rawValue)" }
        let volumes = "\(cfg.volumes.count) volume\(cfg.volumes.count == 1 ? "" : "s")"
        let quorum = manager.db.quorum.writable ? "" : " (read-only: no replica quorum)"
        return "serving set '\(cfg.setName)'\(quorum): \(volumes)\(notOkay.isEmpty ? ", all Okay" : ": " + notOkay.joined(separator: ", "))"
    }

    /// Whether the control socket's event loop still runs tasks (the watchdog's health check).
    static func alive(_ group: MultiThreadedEventLoopGroup) -> Bool {
        let done = DispatchSemaphore(value: 0)
        group.next().execute { done.signal() }
        return done.wait(timeout: .now() + 5) == .success
    }
}

extension ServeCommand {
    /// Opens the set read-write. While the set lock is busy it looks at the holder: another
    /// `metactl serve` still starting up (no control socket yet) means the set is being
    /// served, so this one refuses at once; any other holder (a command changing the set) is
    /// waited for, up to the usual lock timeout.
    func openRefusingAnotherServer(set: String, runDir: String, ctlPath: String) throws -> SetDatabase {
        let deadline = Date().addingTimeInterval(SetDatabase.lockTimeout)
        while true {
            do {
                let wait = max(0, min(0.25, deadline.timeIntervalSinceNow))
                return try SetDatabase.open(setName: set, configDir: global.configDir, runDir: runDir, mode: .readWrite,
                                            requireQuorum: false, lockTimeout: wait)
            } catch DatabaseError.lockBusy(let path, _, _, _) {
                let holder = SetDatabase.lockHolder(setName: set, runDir: runDir)
                if let pid = holder, pid != getpid(), Self.isServer(pid) {
                    throw UserError("set '\(set)' is already served (PID \(pid), starting up; control socket \(ctlPath))")
                }
                if Date() >= deadline {
                    throw UserError(wrapping: DatabaseError.lockBusy(path: path, what: "set '\(set)'", holder: holder,
                                                                     seconds: SetDatabase.lockTimeout))
                }
                usleep(20_000)
            } catch {
                throw UserError(wrapping: error)
            }
        }
    }

    /// Creates the run directory; lack of permission is one line with the way out.
    static func makeRunDir(_ runDir: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: runDir, isDirectory: &isDir) {
            if !isDir.boolValue { throw UserError("\(runDir): not a directory (the run directory)", code: .invalidArgument) }
            return
        }
        do { try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true) } catch {
            let e = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError)?.code
            if (error as NSError).code == NSFileWriteNoPermissionError || e == Int(EACCES) || e == Int(EPERM) {
                throw UserError("cannot create \(runDir): permission denied (run as root, or use --run-dir DIR)", code: .permission)
            }
            throw UserError("cannot create \(runDir): \((error as NSError).localizedDescription)")
        }
    }

    /// Whether process `pid` is a `metactl serve` (from its command line).
    static func isServer(_ pid: Int32) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard let exe = args.first, (exe as NSString).lastPathComponent.hasPrefix("metactl") else { return false }
        return args.dropFirst().contains("serve")
    }
}

/// Keeps signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []
    static func keep(_ s: any DispatchSourceSignal) { sources.append(s) }
}
