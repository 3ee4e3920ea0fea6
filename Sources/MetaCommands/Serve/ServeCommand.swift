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
        var logger = Logger(label: "metactl") { MetactlLogHandler(label: $0) }
        logger.logLevel = global.quiet ? .warning : (global.verbose ? .debug : .info)
        let runDir = global.runDir, set = global.set
        let metricsTarget = try metrics.map(MetricsTarget.parse)
        try Self.makeRunDir(runDir)
        let ctlPath = ControlClient.socketPath(runDir: runDir, set: set)
        let pidPath = "\(runDir)/\(set).pid"
        if let pong = try? ControlClient.send(.ping, socketPath: ctlPath, timeout: 5), pong.ok {
            let pid = (try? pong.decode(PingResult.self).pid).map(String.init) ?? "?"
            throw UserError("set '\(set)' is already served (PID \(pid), control socket \(ctlPath))")
        }
        let tlsSettings = try Self.tlsSettings(mode: tls, certificates: tlsCertificates, psk: tlsPSK, verifyPeer: tlsVerifyPeer)
        var tcp: (String, Int)? = nil
        if let listen {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                  (0...65535).contains(port) else {
                throw UserError("--listen \(listen): expected HOST:PORT", code: .invalidArgument)
            }
            var host = String(listen[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if !(host.hasPrefix("127.") || host == "::1" || host == "localhost") && tlsSettings?.mode != .require {
                guard insecure else {
                    throw UserError("--listen \(listen) is not a loopback address and TLS is not required: give --tls-certificates DIR or --tls-psk FILE (TLS is then required), or --insecure to serve it without TLS", code: .invalidArgument)
                }
                logger.warning("NBD on \(listen) is not loopback: NBD has no authentication; every host that can reach it can \(readOnlyExports ? "list and read" : "list, read and write") every volume of set '\(set)'\(readOnlyExports ? "" : " (--read-only exports them read-only)")")
            }
            tcp = (host, port)
        }

        let db = try openRefusingAnotherServer(set: set, runDir: runDir, ctlPath: ctlPath)
        let writable = db.quorum.writable
        if !writable {
            logger.error("set '\(set)': only \(db.quorum.readable) of \(db.quorum.total) replicas readable: serving read-only. Bring the devices back or run `metactl db delete --force DEV`")
        }
        for line in db.skippedWhileLoading { logger.warning("state database: skipped \(line)") }
        for d in db.missingDevices { logger.error("device \(d.lastPath) (\(d.uuid)) is missing") }
        // Validate before anything is committed: a start refused here leaves the clean flag alone.
        for n in names + readOnlyVolumes where db.config.volume(named: n) == nil {
            db.close()
            throw UserError("\(n): no such volume in set '\(set)'", code: .notFound)
        }
        let wasClean = db.config.cleanShutdown
        if !wasClean {
            logger.warning("set '\(set)': the last server did not shut down cleanly")
        }
        if writable {
            do { try db.beginServing() } catch {
                db.close()
                throw UserError("cannot record the server start in the state database: \(error)", code: ErrorCode.of(error))
            }
        }
        // Before the manager opens the engines: their start-up commits are events too.
        let feed = EventFeed(set: set)
        feed.observe(db)
        let manager = SetManager(db: db, configDir: global.configDir, logger: logger, isServer: true, cache: cache)
        let filter = Set(names)
        let exportCache = Mutex<[String: VolumeExport]>([:])
        let readOnly = !writable || readOnlyExports
        let serveMetrics = metricsTarget.map { _ in ServeMetrics(set: set) }
        let readOnlyNames = Set(readOnlyVolumes)
        let lookup: @Sendable (String) -> (any NBDExport)? = { name in
            guard filter.isEmpty || filter.contains(name), manager.config.mirror(using: name) == nil,
                  let v = try? manager.openEngine(name) else { return nil }
            return exportCache.withLock { c in
                if let e = c[name], e.volume === v { return e }
                let rec = manager.config.volume(named: name)
                let e = VolumeExport(volume: v, readOnly: readOnly || readOnlyNames.contains(name),
                                     description: "\(rec?.type.rawValue ?? "") volume \(name) of set \(set)",
                                     stats: serveMetrics?.stats(volume: name))
                c[name] = e
                return e
            }
        }
        let registry = NBDExportRegistry(lookup: lookup, list: {
            manager.exportedVolumeNames.filter { filter.isEmpty || filter.contains($0) }.compactMap { lookup($0) }
        })
        var nbdConfig = NBDServer.Configuration(unixSocketPath: socket ?? "\(runDir)/\(set).nbd")
        if socket == nil && tcp != nil && listen != nil { nbdConfig.unixSocketPath = "\(runDir)/\(set).nbd" }
        if let tcp { nbdConfig.tcpHost = tcp.0; nbdConfig.tcpPort = tcp.1 }
        nbdConfig.tls = tlsSettings
        if let tlsSettings {
            logger.info("TLS \(tlsSettings.mode == .require ? "required" : "offered") on the NBD sockets: \(tlsSettings.credentials.summary)")
        }
        let server = NBDServer(configuration: nbdConfig, exports: registry, logger: logger)
        manager.openCountProvider = { server.openConnections(toExport: $0) }
        // After create/clear: forget the exports of engines that are gone, and close the
        // connections still on them (a cleared volume's engine refuses I/O anyway).
        manager.onVolumesChanged = {
            let gone = exportCache.withLock { c -> [String] in
                // Also the exports of volumes that became sides of a mirror.
                let stale = c.filter { manager.engine($0.key) !== $0.value.volume || manager.config.mirror(using: $0.key) != nil }.map(\.key)
                for k in stale { c[k] = nil }
                return stale
            }
            for name in gone { server.disconnect(exportNamed: name) }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let control: ControlServer
        var metricsHTTP: MetricsHTTPServer?
        var metricsFile: MetricsFileWriter?
        do {
            try await server.start()
            control = try await ControlServer.start(path: ctlPath, group: group, logger: logger, feed: feed) { manager.handle($0) }
            if let serveMetrics, let metricsTarget {
                let render: @Sendable () -> String = {
                    serveMetrics.text(manager: manager, openConnections: { server.openConnections(toExport: $0) })
                }
                switch metricsTarget {
                case .http(let host, let port):
                    do {
                        metricsHTTP = try await MetricsHTTPServer.start(host: host, port: port, group: group, render: render)
                    } catch {
                        await control.close()
                        throw UserError("--metrics \(host):\(port): cannot listen: \(error)", code: ErrorCode.of(error))
                    }
                    logger.info("metrics on http://\(host.contains(":") ? "[\(host)]" : host):\(metricsHTTP?.port ?? port)/metrics")
                case .file(let path):
                    do { metricsFile = try MetricsFileWriter(path: path, logger: logger, render: render) } catch {
                        await control.close()
                        throw error
                    }
                    logger.info("metrics in \(path), rewritten every 10 s")
                }
            }
        } catch {
            await server.shutdown(drain: false)
            manager.closeEngines()
            // Nothing was served: put back the clean flag this start cleared, so the next
            // start does not warn about a crash that never happened.
            if writable && wasClean { _ = try? db.commit { $0.cleanShutdown = true } }
            db.close()
            throw UserError("\(error)", code: ErrorCode.of(error))
        }
        // A disk pulled while served fails its column at once (a hot spare takes over), not
        // at its next I/O; one that comes back is named in the log with the command to use it.
        let udev = UdevMonitor()
        if let udev {
            udev.start { manager.blockDeviceEvent($0) }
        } else {
            logger.warning("cannot receive the kernel's device events: a removed disk is noticed at its next I/O")
        }
        // SIGTERM/SIGINT are caught from here on, before the "serving" line and READY=1 tell
        // anyone the server is up (a stop sent right after them used to kill it outright).
        // The stream keeps a signal that comes before the wait below.
        let signals = AsyncStream<Int32> { cont in
            for s in [SIGTERM, SIGINT] {
                signal(s, SIG_IGN)
                let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
                src.setEventHandler { cont.yield(s) }
                src.resume()
                SignalSources.keep(src)
            }
        }
        // SIGHUP: the TLS certificates or keys are read again (renewed certificates, a new
        // user's key) for the connections that follow; on a bad file the old ones stay.
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        let (tlsMode, tlsCerts, tlsKeys, verify) = (tls, tlsCertificates, tlsPSK, tlsVerifyPeer)
        hup.setEventHandler {
            guard tlsSettings != nil else {
                logger.info("SIGHUP: nothing to reload (the NBD sockets do not use TLS)")
                return
            }
            do {
                guard let fresh = try Self.tlsSettings(mode: tlsMode, certificates: tlsCerts, psk: tlsKeys, verifyPeer: verify) else { return }
                server.replaceTLSCredentials(fresh.credentials)
                logger.info("SIGHUP: TLS credentials reloaded for new connections: \(fresh.credentials.summary)")
            } catch {
                logger.error("SIGHUP: TLS credentials not reloaded (\(error)); the previous ones stay in use")
            }
        }
        hup.resume()
        SignalSources.keep(hup)
        try? "\(getpid())\n".write(toFile: pidPath, atomically: true, encoding: .utf8)
        logger.info("serving set '\(set)' (\(manager.volumeNames.joined(separator: ", "))) on \(nbdConfig.unixSocketPath ?? "")\(tcp.map { " and \($0.0):\(server.tcpPort ?? $0.1)" } ?? ""); control \(ctlPath)")
        // Type=notify units: the sockets listen now (clients ordered After= may start).
        SystemdNotify.send("READY=1\nMAINPID=\(getpid())\nSTATUS=\(Self.summary(manager))")
        feed.publish(.serverStarted, "server started (PID \(getpid())): \(Self.summary(manager))")
        // systemctl status shows the set's state as it changes.
        if SystemdNotify.enabled {
            _ = feed.subscribe { _ in SystemdNotify.send("STATUS=\(Self.summary(manager))"); return true }
        }
        SystemdNotify.startWatchdog(alive: { Self.alive(group) })
        if restoreMaps, let sock = nbdConfig.unixSocketPath {
            ServeMaps.restore(set: set, runDir: runDir, socket: sock, logger: logger)
        }

        // Wait for SIGTERM/SIGINT.
        for await s in signals {
            logger.info("signal \(s): shutting down")
            SystemdNotify.send("STOPPING=1")
            break
        }
        if unmapOnExit { ServeMaps.unmapAll(set: set, runDir: runDir, logger: logger) }
        // Monitors get the stop before their connections close with the server.
        udev?.stop()
        feed.publish(.serverStopping, "server stopping (signal)")
        feed.drain()
        await control.close()
        await metricsHTTP?.close()
        metricsFile?.stop()
        if !(await server.shutdown(drain: true)) {
            // A device does not answer: flushing or closing would hang on it too. Leave the
            // shutdown unclean, so the next start repairs the dirty regions' parity.
            logger.error("set '\(set)': requests are stuck on a device that does not answer; exiting without flushing or recording a clean shutdown")
            unlink(pidPath)
            Foundation.exit(1)
        }
        for n in manager.volumeNames {
            do { try manager.engine(n)?.flush() } catch { logger.error("\(n): flush at shutdown failed: \(error)") }
        }
        manager.closeEngines()
        if writable {
            do { try db.commit { $0.cleanShutdown = true } } catch {
                logger.error("could not record the clean shutdown: \(error)")
            }
        }
        db.close()
        unlink(pidPath)
        try? await group.shutdownGracefully()
        logger.info("stopped")
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
