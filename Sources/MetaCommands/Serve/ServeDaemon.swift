import Foundation
import Logging
import MetaControl
import MetaDB
import MetaDevices
import MetaNBD
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The life of `metactl serve`, from its options to its exit: ``ServeCommand`` parses the
/// options, this runs them, phase by phase: check the options, open the set, set up the
/// NBD server, start listening (NBD, control socket, metrics), announce (PID file, log,
/// systemd), serve until SIGTERM/SIGINT, stop (drain, flush, record the clean shutdown).
final class ServeDaemon {
    let command: ServeCommand
    let logger: Logger
    let set: String
    let runDir: String
    let ctlPath: String
    let pidPath: String

    // Set by the phases, in order.
    private var tlsSettings: NBDTLSSettings?
    private var tcp: (host: String, port: Int)?
    private var metricsTarget: MetricsTarget?
    private var db: SetDatabase!
    private var writable = false
    private var wasClean = true
    private var feed: EventFeed!
    private var manager: SetManager!
    private var server: NBDServer!
    private var nbdConfig: NBDServer.Configuration!
    private var serveMetrics: ServeMetrics?
    /// The control socket's and the metrics' event loop (made when they start).
    private var group: MultiThreadedEventLoopGroup!
    private var control: ControlServer!
    private var metricsHTTP: MetricsHTTPServer?
    private var metricsFile: MetricsFileWriter?
    private var udev: UdevMonitor?

    init(_ command: ServeCommand) {
        self.command = command
        var logger = Logger(label: "metactl") { MetactlLogHandler(label: $0) }
        logger.logLevel = command.global.quiet ? .warning : (command.global.verbose ? .debug : .info)
        self.logger = logger
        set = command.global.set
        runDir = command.global.runDir
        ctlPath = ControlClient.socketPath(runDir: runDir, set: set)
        pidPath = "\(runDir)/\(set).pid"
    }

    func run() async throws {
        try checkOptions()
        try openSet()
        makeNBDServer()
        try await startListening()
        let signals = catchSignals()
        announce()
        // Wait for SIGTERM/SIGINT.
        for await s in signals {
            logger.info("signal \(s): shutting down")
            SystemdNotify.send("STOPPING=1")
            break
        }
        await stop()
    }

    /// Everything that can be refused before the set is opened: the run directory, another
    /// server, metrics, TLS, the TCP address.
    private func checkOptions() throws {
        metricsTarget = try command.metrics.map(MetricsTarget.parse)
        try ServeCommand.makeRunDir(runDir)
        if let pong = try? ControlClient.send(.ping, socketPath: ctlPath, timeout: 5), pong.ok {
            let pid = (try? pong.decode(PingResult.self).pid).map(String.init) ?? "?"
            throw UserError("set '\(set)' is already served (PID \(pid), control socket \(ctlPath))")
        }
        tlsSettings = try ServeCommand.tlsSettings(mode: command.tls, certificates: command.tlsCertificates,
                                                   psk: command.tlsPSK, verifyPeer: command.tlsVerifyPeer)
        if let listen = command.listen {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                  (0...65535).contains(port) else {
                throw UserError("--listen \(listen): expected HOST:PORT", code: .invalidArgument)
            }
            var host = String(listen[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if !(host.hasPrefix("127.") || host == "::1" || host == "localhost") && tlsSettings?.mode != .require {
                guard command.insecure else {
                    throw UserError("--listen \(listen) is not a loopback address and TLS is not required: give --tls-certificates DIR or --tls-psk FILE (TLS is then required), or --insecure to serve it without TLS", code: .invalidArgument)
                }
                let ro = command.readOnlyExports
                logger.warning("NBD on \(listen) is not loopback: NBD has no authentication; every host that can reach it can \(ro ? "list and read" : "list, read and write") every volume of set '\(set)'\(ro ? "" : " (--read-only exports them read-only)")")
            }
            tcp = (host, port)
        }
    }

    /// Opens the set (refusing a second server), records the start, and makes the manager.
    private func openSet() throws {
        let db = try command.openRefusingAnotherServer(set: set, runDir: runDir, ctlPath: ctlPath)
        self.db = db
        writable = db.quorum.writable
        if !writable {
            logger.error("set '\(set)': only \(db.quorum.readable) of \(db.quorum.total) replicas readable: serving read-only. Bring the devices back or run `metactl db delete --force DEV`")
        }
        for line in db.skippedWhileLoading { logger.warning("state database: skipped \(line)") }
        for d in db.missingDevices { logger.error("device \(d.lastPath) (\(d.uuid)) is missing") }
        // Validate before anything is committed: a start refused here leaves the clean flag alone.
        for n in command.names + command.readOnlyVolumes where db.config.volume(named: n) == nil {
            db.close()
            throw UserError("\(n): no such volume in set '\(set)'", code: .notFound)
        }
        wasClean = db.config.cleanShutdown
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
        feed = EventFeed(set: set)
        feed.observe(db)
        manager = SetManager(db: db, configDir: command.global.configDir, logger: logger, isServer: true, cache: command.cache)
    }

    /// The NBD server over the set's volumes: each export is opened on first use, and
    /// forgotten (its connections closed) when its volume goes away or becomes a mirror's side.
    private func makeNBDServer() {
        let manager = manager!, set = set
        let filter = Set(command.names)
        let exportCache = Mutex<[String: VolumeExport]>([:])
        let readOnly = !writable || command.readOnlyExports
        let serveMetrics = metricsTarget.map { _ in ServeMetrics(set: set) }
        self.serveMetrics = serveMetrics
        let readOnlyNames = Set(command.readOnlyVolumes)
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
        var nbdConfig = NBDServer.Configuration(unixSocketPath: command.socket ?? "\(runDir)/\(set).nbd")
        if command.socket == nil && tcp != nil && command.listen != nil { nbdConfig.unixSocketPath = "\(runDir)/\(set).nbd" }
        if let tcp { nbdConfig.tcpHost = tcp.host; nbdConfig.tcpPort = tcp.port }
        nbdConfig.tls = tlsSettings
        if let tlsSettings {
            logger.info("TLS \(tlsSettings.mode == .require ? "required" : "offered") on the NBD sockets: \(tlsSettings.credentials.summary)")
        }
        let server = NBDServer(configuration: nbdConfig, exports: registry, logger: logger)
        self.server = server
        self.nbdConfig = nbdConfig
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
    }

    /// Listens: the NBD sockets, the control socket, metrics; then the kernel's device events.
    /// A failure undoes the start (the clean flag put back: nothing was served).
    private func startListening() async throws {
        let manager = manager!, server = server!
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let group = group!
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
        udev = UdevMonitor()
        if let udev {
            udev.start { manager.blockDeviceEvent($0) }
        } else {
            logger.warning("cannot receive the kernel's device events: a removed disk is noticed at its next I/O")
        }
    }

    /// SIGTERM/SIGINT are caught from here on, before the "serving" line and READY=1 tell
    /// anyone the server is up (a stop sent right after them used to kill it outright); the
    /// stream keeps a signal that comes before the wait. SIGHUP reads the TLS certificates or
    /// keys again (renewed certificates, a new user's key) for the connections that follow;
    /// on a bad file the old ones stay.
    private func catchSignals() -> AsyncStream<Int32> {
        let signals = AsyncStream<Int32> { cont in
            for s in [SIGTERM, SIGINT] {
                signal(s, SIG_IGN)
                let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
                src.setEventHandler { cont.yield(s) }
                src.resume()
                SignalSources.keep(src)
            }
        }
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        let (tlsMode, tlsCerts, tlsKeys, verify) = (command.tls, command.tlsCertificates, command.tlsPSK, command.tlsVerifyPeer)
        let (logger, server, hasTLS) = (logger, server!, tlsSettings != nil)
        hup.setEventHandler {
            guard hasTLS else {
                logger.info("SIGHUP: nothing to reload (the NBD sockets do not use TLS)")
                return
            }
            do {
                guard let fresh = try ServeCommand.tlsSettings(mode: tlsMode, certificates: tlsCerts, psk: tlsKeys, verifyPeer: verify) else { return }
                server.replaceTLSCredentials(fresh.credentials)
                logger.info("SIGHUP: TLS credentials reloaded for new connections: \(fresh.credentials.summary)")
            } catch {
                logger.error("SIGHUP: TLS credentials not reloaded (\(error)); the previous ones stay in use")
            }
        }
        hup.resume()
        SignalSources.keep(hup)
        return signals
    }

    /// The server is up: the PID file, the "serving" line, READY=1 for systemd, the event for
    /// monitors, the watchdog, and the mappings of the last run when asked.
    private func announce() {
        let manager = manager!, group = group!
        try? "\(getpid())\n".write(toFile: pidPath, atomically: true, encoding: .utf8)
        logger.info("serving set '\(set)' (\(manager.volumeNames.joined(separator: ", "))) on \(nbdConfig.unixSocketPath ?? "")\(tcp.map { " and \($0.host):\(server.tcpPort ?? $0.port)" } ?? ""); control \(ctlPath)")
        // Type=notify units: the sockets listen now (clients ordered After= may start).
        SystemdNotify.send("READY=1\nMAINPID=\(getpid())\nSTATUS=\(ServeCommand.summary(manager))")
        feed.publish(.serverStarted, "server started (PID \(getpid())): \(ServeCommand.summary(manager))")
        // systemctl status shows the set's state as it changes.
        if SystemdNotify.enabled {
            _ = feed.subscribe { _ in SystemdNotify.send("STATUS=\(ServeCommand.summary(manager))"); return true }
        }
        SystemdNotify.startWatchdog(alive: { ServeCommand.alive(group) })
        if command.restoreMaps, let sock = nbdConfig.unixSocketPath {
            ServeMaps.restore(set: set, runDir: runDir, socket: sock, logger: logger)
        }
    }

    /// Stops: mappings (when asked), monitors, the control socket, metrics, then the NBD
    /// server (answering what is in flight), a flush of every volume, and the clean shutdown.
    private func stop() async {
        if command.unmapOnExit { ServeMaps.unmapAll(set: set, runDir: runDir, logger: logger) }
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
