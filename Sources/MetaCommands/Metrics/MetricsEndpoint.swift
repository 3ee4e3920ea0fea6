import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Where `serve --metrics` puts its metrics: an HTTP listener (`HOST:PORT`, scraped at
/// `/metrics`) or a file rewritten every few seconds (`PATH`, for node_exporter's textfile
/// collector).
enum MetricsTarget: Equatable {
    case http(host: String, port: Int)
    case file(String)

    /// `HOST:PORT` (`[::1]:9100` for IPv6) or a path (absolute, or containing a `/`, ending in `.prom`).
    static func parse(_ s: String) throws -> MetricsTarget {
        if s.contains("/") {
            guard s.hasSuffix(".prom") else {
                throw UserError("--metrics \(s): a metrics file must end in .prom (node_exporter's textfile collector reads only those)", code: .invalidArgument)
            }
            return .file(s)
        }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else {
            throw UserError("--metrics \(s): expected HOST:PORT or the path of a .prom file", code: .invalidArgument)
        }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw UserError("--metrics \(s): the host is missing (127.0.0.1:\(port)?)", code: .invalidArgument) }
        return .http(host: host, port: port)
    }
}

/// Serves `GET /metrics` over HTTP/1.1 with the text `render` returns.
final class MetricsHTTPServer: Sendable {
    let channel: any Channel
    /// The port bound (the one asked for, or the kernel's choice for port 0).
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) { self.channel = channel }

    static func start(host: String, port: Int, group: any EventLoopGroup,
                      render: @escaping @Sendable () -> String) async throws -> MetricsHTTPServer {
        let ch = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.pipeline.configureHTTPServerPipeline().flatMap {
                    ch.pipeline.addHandler(MetricsHTTPHandler(render: render))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsHTTPServer(channel: ch)
    }

    func close() async { try? await channel.close() }
}

final class MetricsHTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let render: @Sendable () -> String

    init(render: @escaping @Sendable () -> String) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let (status, body): (HTTPResponseStatus, String)
        switch (head.method, path) {
        case (.GET, "/metrics"), (.HEAD, "/metrics"): (status, body) = (.ok, render())
        case (.GET, _), (.HEAD, _): (status, body) = (.notFound, "metactl serves its metrics at /metrics\n")
        default: (status, body) = (.methodNotAllowed, "only GET /metrics\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: status == .ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            var buf = context.channel.allocator.buffer(capacity: body.utf8.count)
            buf.writeString(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// Rewrites a `.prom` file every `interval` seconds (write to a temporary file, then rename,
/// so a reader never sees half of it); ``stop()`` removes it.
final class MetricsFileWriter: @unchecked Sendable {
    let path: String
    private let timer: any DispatchSourceTimer
    private let render: @Sendable () -> String
    private let logger: Logger

    init(path: String, interval: Double = 10, logger: Logger, render: @escaping @Sendable () -> String) throws {
        self.path = path
        self.render = render
        self.logger = logger
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "metactl.metrics-file"))
        try write()
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            do { try self.write() } catch { self.logger.warning("\(error)") }
        }
        timer.resume()
    }

    func write() throws {
        let tmp = path + ".tmp"
        do {
            try Data(render().utf8).write(to: URL(fileURLWithPath: tmp))
            if rename(tmp, path) != 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            unlink(tmp)
            throw UserError("--metrics \(path): cannot write: \((error as NSError).localizedDescription)", code: .general)
        }
    }

    func stop() {
        timer.cancel()
        unlink(path)
    }
}
