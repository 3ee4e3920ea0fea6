import Logging
import MetaSystem
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an ``NBDServer`` could not start.
public enum NBDServerError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Another server answers on this Unix socket.
    case socketInUse(path: String)
    /// The socket path exists and is not a socket (it is never removed).
    case notASocket(path: String)
    /// The socket path is longer than a Unix socket address allows.
    case socketPathTooLong(path: String)
    /// Binding a listener failed.
    case bindFailed(address: String, reason: String)
    /// ``NBDServer/start()`` was called twice, or after shutdown.
    case alreadyStarted
    /// The configuration names no listener.
    case noListener

    public var description: String {
        switch self {
        case .socketInUse(let path): "another server is already listening on \(path)"
        case .notASocket(let path): "\(path) exists and is not a socket"
        case .socketPathTooLong(let path): "socket path too long: \(path)"
        case .bindFailed(let address, let reason): "cannot listen on \(address): \(reason)"
        case .alreadyStarted: "NBD server already started"
        case .noListener: "NBD server has no socket path and no TCP address to listen on"
        }
    }
}

/// An NBD server (fixed newstyle, simple replies) exporting the block devices in an ``NBDExportRegistry``.
///
/// Usage (async API):
/// ```swift
/// let server = NBDServer(configuration: .init(unixSocketPath: "/run/metactl/local.nbd"),
///                        exports: registry, logger: logger)
/// try await server.start()
/// ...
/// await server.shutdown()          // stop accepting, drain, close
/// ```
/// Each connection is served on an event loop; export I/O runs on a private thread pool of
/// ``Configuration/ioThreads`` threads, so the export's blocking calls never stall the event loops.
public final class NBDServer: Sendable {
    /// Where and how the server listens.
    public struct Configuration: Sendable {
        /// Unix socket to listen on (a stale socket file is replaced; a live one is refused).
        public var unixSocketPath: String?
        /// Permissions given to the Unix socket file.
        public var unixSocketMode: UInt32 = 0o660
        /// TCP host to listen on (e.g. "127.0.0.1", "::1", "0.0.0.0"); nil for no TCP listener.
        public var tcpHost: String?
        /// TCP port (0 picks a free port; see ``NBDServer/tcpPort``).
        public var tcpPort: Int = 10809
        /// Threads running export I/O (blocking calls). 0 runs export I/O inline on the
        /// connection's event loop: only for driving connections on an `EmbeddedChannel`
        /// (tests, fuzzing) through ``addConnectionHandlers(to:logger:)``, as a blocking export
        /// call then stalls the loop.
        public var ioThreads: Int = 16
        /// Event loop threads handling sockets.
        public var eventLoopThreads: Int = max(1, min(System.coreCount, 4))
        /// Payload bytes one connection may have in flight before the server stops reading from it.
        public var maxInFlightBytesPerConnection: Int = 64 << 20
        /// Requests one connection may have in flight before the server stops reading from it.
        public var maxInFlightRequestsPerConnection: Int = 256
        /// Longest option payload accepted during the handshake.
        public var maxOptionLength: Int = 64 << 10
        /// TLS on both listeners (nil: no TLS, `NBD_OPT_STARTTLS` is refused).
        public var tls: NBDTLSSettings?
        /// How long ``NBDServer/shutdown(drain:)`` waits for in-flight replies before closing connections.
        public var drainTimeout: TimeAmount = .seconds(30)

        public init(unixSocketPath: String? = nil, tcpHost: String? = nil, tcpPort: Int = 10809) {
            self.unixSocketPath = unixSocketPath
            self.tcpHost = tcpHost
            self.tcpPort = tcpPort
        }
    }

    private struct State {
        var started = false
        var shuttingDown = false
        var listeners: [any Channel] = []
        var connections: [ObjectIdentifier: any Channel] = [:]
        var boundTCPPort: Int?
        var createdSocketPath: String?
        var nextConnectionID = 1
    }

    /// The configuration the server was created with.
    public let configuration: Configuration
    /// The exports offered; may change while the server runs.
    public let exports: NBDExportRegistry
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let workers: NBDWorkerPool
    private let tracker = NBDConnectionTracker()
    private let state = Mutex(State())
    /// The TLS settings new connections start with (the credentials may be replaced).
    private let tlsNow: Mutex<NBDTLSSettings?>

    /// Creates a server; nothing listens until ``start()``.
    public init(configuration: Configuration, exports: NBDExportRegistry, logger: Logger) {
        self.configuration = configuration
        self.exports = exports
        self.logger = logger
        self.tlsNow = Mutex(configuration.tls)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
        self.workers = NBDWorkerPool(threads: configuration.ioThreads)
        NBDServer.tuneAllocator
    }

    /// Replaces the TLS credentials that connections accepted from now on start their
    /// sessions with (`serve` does it on SIGHUP, with certificates or keys read again);
    /// connections already up keep theirs, and the mode does not change. Returns false (and
    /// changes nothing) when the server does not use TLS.
    @discardableResult
    public func replaceTLSCredentials(_ credentials: NBDTLSCredentials) -> Bool {
        tlsNow.withLock { t in
            guard t != nil else { return false }
            t!.credentials = credentials
            return true
        }
    }

    /// The TLS settings connections accepted now start with (nil: no TLS).
    public var tlsSettings: NBDTLSSettings? { tlsNow.withLock { $0 } }

    /// The TCP port actually bound (useful with port 0), once started.
    public var tcpPort: Int? { state.withLock { $0.boundTCPPort } }

    /// Number of clients currently in the transmission phase.
    public var connectionCount: Int { tracker.total() }

    /// Largest amount of request payload any closed connection had in flight at once (diagnostics).
    var peakInFlightBytes: Int { tracker.peakInFlightBytes }

    /// Number of clients currently using the export called `name`.
    public func openConnections(toExport name: String) -> Int { tracker.count(name) }

    /// Closes every connection in transmission on export `name` (the export was removed, e.g.
    /// its volume cleared): their clients see the connection end, as when an NBD server
    /// stops serving an export. Returns how many were closed.
    @discardableResult
    public func disconnect(exportNamed name: String) -> Int {
        let chans = tracker.channels(of: name)
        for c in chans { c.close(promise: nil) }
        if !chans.isEmpty { logger.notice("closed \(chans.count) connection(s) of export '\(name)': it was removed") }
        return chans.count
    }

    /// Binds the configured listeners and starts accepting clients.
    ///
    /// A Unix socket path that holds a stale socket (no server answers) is replaced; if a server answers
    /// there, this throws ``NBDServerError/socketInUse(path:)``. On error nothing stays bound.
    public func start() async throws(NBDServerError) {
        let ok = state.withLock { s -> Bool in
            if s.started { return false }
            s.started = true
            return true
        }
        guard ok else { throw .alreadyStarted }
        guard configuration.unixSocketPath != nil || configuration.tcpHost != nil else { throw .noListener }
        do {
            if let path = configuration.unixSocketPath {
                try prepareSocketPath(path)
                let channel: any Channel
                do {
                    channel = try await bootstrap(tcp: false)
                        .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false).get()
                } catch {
                    throw NBDServerError.bindFailed(address: path, reason: Self.reason(error))
                }
                state.withLock {
                    $0.listeners.append(channel)
                    $0.createdSocketPath = path
                }
                _ = chmod(path, mode_t(configuration.unixSocketMode))
                logger.info("NBD listening on \(path)")
            }
            if let host = configuration.tcpHost {
                let channel: any Channel
                do {
                    channel = try await bootstrap(tcp: true).bind(host: host, port: configuration.tcpPort).get()
                } catch {
                    throw NBDServerError.bindFailed(address: "\(host):\(configuration.tcpPort)", reason: Self.reason(error))
                }
                let port = channel.localAddress?.port
                state.withLock {
                    $0.listeners.append(channel)
                    $0.boundTCPPort = port
                }
                logger.info("NBD listening on \(host.contains(":") ? "[\(host)]" : host):\(port ?? configuration.tcpPort)")
            }
        } catch let error as NBDServerError {
            await closeListeners()
            throw error
        } catch {
            await closeListeners()
            throw .bindFailed(address: configuration.unixSocketPath ?? configuration.tcpHost ?? "", reason: Self.reason(error))
        }
    }

    /// Stops the server: stops accepting, then either lets each connection finish its in-flight requests and
    /// deliver their replies (`drain`, bounded by ``Configuration/drainTimeout``; requests that arrive meanwhile
    /// get `ESHUTDOWN`) or closes connections at once. Returns true when no export method is running or will
    /// be called again and the server's threads are gone; false when an export call is still stuck (in a
    /// device that does not answer) one more drain timeout after the connections closed: the server
    /// stops waiting for it. Either way the socket file is removed. Later calls do nothing (and return true).
    @discardableResult
    public func shutdown(drain: Bool = true) async -> Bool {
        let (listeners, connections, proceed) = state.withLock { s -> ([any Channel], [any Channel], Bool) in
            if s.shuttingDown { return ([], [], false) }
            s.shuttingDown = true
            let l = s.listeners
            s.listeners = []
            return (l, Array(s.connections.values), true)
        }
        guard proceed else { return true }
        logger.info("NBD server shutting down", metadata: ["connections": "\(connections.count)", "drain": "\(drain)"])
        for l in listeners { try? await l.close() }
        let timeout = configuration.drainTimeout
        var timers: [Scheduled<Void>] = []
        for c in connections {
            c.pipeline.fireUserInboundEventTriggered(NBDShutdownEvent(drain: drain))
            timers.append(c.eventLoop.scheduleTask(in: timeout) { c.close(promise: nil) })
        }
        for c in connections { try? await c.closeFuture.get() }
        for t in timers { t.cancel() }
        // Every export call already queued runs to completion before the workers exit; one
        // stuck in a device that does not answer is waited for up to the drain timeout again.
        let finished = await workers.shutdown(timeout: Double(timeout.nanoseconds) / 1e9)
        if !finished {
            logger.error("export requests still running \(timeout) after the connections closed (a device does not answer); not waiting for them")
        }
        if let path = state.withLock({ $0.createdSocketPath }) { unlink(path) }
        try? await group.shutdownGracefully()
        logger.info("NBD server stopped")
        return finished
    }

    // MARK: - Internals

    private func bootstrap(tcp: Bool) -> ServerBootstrap {
        let limits = NBDConnectionLimits(maxOptionLength: configuration.maxOptionLength,
                                         maxInFlightBytes: configuration.maxInFlightBytesPerConnection,
                                         maxInFlightRequests: configuration.maxInFlightRequestsPerConnection)
        var b = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 4 << 20))
            .childChannelOption(.recvAllocator,
                                value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 64 << 10, maximum: 1 << 20))
        if tcp {
            b = b.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        }
        return b.childChannelInitializer { [self] channel in
            guard let id = self.register(channel) else {
                return channel.close()
            }
            var log = self.logger
            log[metadataKey: "nbd.client"] = "\(id)"
            if let peer = channel.remoteAddress, peer.protocol != .unix { log[metadataKey: "peer"] = "\(peer)" }
            return channel.eventLoop.makeCompletedFuture {
                try self.addConnectionHandlers(to: channel, limits: limits, logger: log)
            }
        }
    }

    /// Adds to `channel`'s pipeline the handlers that serve one NBD client on it (handshake,
    /// then transmission), exactly as the server does for each accepted connection; the
    /// greeting is sent when the channel becomes active. Call on the channel's event loop.
    ///
    /// The connection is not counted in ``shutdown(drain:)``'s list of connections; it uses
    /// this server's exports, I/O threads and limits. Lets tests and fuzzers drive the real
    /// protocol code on an `EmbeddedChannel` (with ``Configuration/ioThreads`` 0, every
    /// request completes while the embedded loop runs).
    public func addConnectionHandlers(to channel: any Channel, logger: Logger? = nil) throws {
        let limits = NBDConnectionLimits(maxOptionLength: configuration.maxOptionLength,
                                         maxInFlightBytes: configuration.maxInFlightBytesPerConnection,
                                         maxInFlightRequests: configuration.maxInFlightRequestsPerConnection)
        try addConnectionHandlers(to: channel, limits: limits, logger: logger ?? self.logger)
    }

    private func addConnectionHandlers(to channel: any Channel, limits: NBDConnectionLimits, logger: Logger) throws {
        let handler = NBDConnectionHandler(registry: exports, workers: workers, limits: limits,
                                           tracker: tracker, logger: logger, tls: tlsNow.withLock { $0 })
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    /// Records a new connection; nil when the server is shutting down (the connection is then refused).
    private func register(_ channel: any Channel) -> Int? {
        let key = ObjectIdentifier(channel)
        let id = state.withLock { s -> Int? in
            if s.shuttingDown { return nil }
            s.connections[key] = channel
            defer { s.nextConnectionID += 1 }
            return s.nextConnectionID
        }
        if id != nil {
            channel.closeFuture.whenComplete { [self] _ in
                _ = self.state.withLock { $0.connections.removeValue(forKey: key) }
            }
        }
        return id
    }

    private func closeListeners() async {
        let listeners = state.withLock { s -> [any Channel] in
            defer { s.listeners = [] }
            return s.listeners
        }
        for l in listeners { try? await l.close() }
        if let path = state.withLock({ $0.createdSocketPath }) {
            unlink(path)
            state.withLock { $0.createdSocketPath = nil }
        }
    }

    /// Removes a stale socket file at `path`, or refuses if a server answers there or it is not a socket.
    private func prepareSocketPath(_ path: String) throws(NBDServerError) {
        switch probeUnixSocket(path) {
        case .absent: return
        case .tooLong: throw .socketPathTooLong(path: path)
        case .notSocket: throw .notASocket(path: path)
        case .live: throw .socketInUse(path: path)
        case .stale:
            logger.notice("removing stale socket \(path)")
            unlink(path)
        }
    }
}

enum UnixSocketProbe: Equatable {
    case absent, notSocket, live, stale, tooLong
}

/// Finds out whether a server answers on the Unix socket at `path`.
func probeUnixSocket(_ path: String) -> UnixSocketProbe {
    var st = stat()
    guard lstat(path, &st) == 0 else { return .absent }
    guard (st.st_mode & S_IFMT) == S_IFSOCK else { return .notSocket }
    guard let addr = try? UnixSocketAddress(path: path) else { return .tooLong }
    #if canImport(Glibc)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    #else
    let fd = socket(AF_UNIX, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { return .stale }
    defer { close(fd) }
    let rc = addr.connect(fd)
    return rc == 0 ? .live : .stale
}

extension NBDServer {
    /// The cause of a socket error in plain words: the system's text for its errno, without
    /// SwiftNIO's API names (`bind(descriptor:ptr:bytes:)`) or errno numbers.
    static func reason(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }
}
