import Foundation
import Logging
import NIOCore
import NIOPosix

/// The server side of the control socket: reads one JSON request line per connection,
/// runs it on a worker thread (never on the event loop), writes the JSON response line and
/// closes the connection. A `monitor` request instead keeps the connection and streams the
/// events of `feed`, one JSON line each, until the client closes it.
public final class ControlServer: Sendable {
    private let channel: any Channel
    public let path: String

    /// Binds `path` (mode 0600; a stale socket file is replaced).
    public static func start(path: String, group: any EventLoopGroup, logger: Logger, feed: EventFeed? = nil,
                             handler: @escaping @Sendable (ControlRequest) -> ControlResponse) async throws -> ControlServer {
        unlink(path)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(ControlLineHandler(handler: handler, logger: logger, feed: feed))
                }
            }
        let ch = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        chmod(path, 0o600)
        return ControlServer(channel: ch, path: path)
    }

    private init(channel: any Channel, path: String) {
        self.channel = channel
        self.path = path
    }

    public func close() async {
        try? await channel.close()
        unlink(path)
    }
}

final class ControlLineHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let handler: @Sendable (ControlRequest) -> ControlResponse
    let logger: Logger
    let feed: EventFeed?
    var buffer = ByteBuffer()
    var done = false
    /// Removes this connection's monitor subscription.
    var unsubscribe: (@Sendable () -> Void)?
    static let maxRequest = 1 << 20

    init(handler: @escaping @Sendable (ControlRequest) -> ControlResponse, logger: Logger, feed: EventFeed? = nil) {
        self.handler = handler
        self.logger = logger
        self.feed = feed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        guard let nl = buffer.readableBytesView.firstIndex(of: 0x0A) else {
            if buffer.readableBytes > Self.maxRequest {
                respond(context: context, .failure("control request too large"))
            }
            return
        }
        let line = buffer.getSlice(at: buffer.readerIndex, length: nl - buffer.readerIndex) ?? ByteBuffer()
        done = true
        let request: ControlRequest
        do {
            request = try ControlRequest.decode(line: line.readableBytesView)
        } catch {
            respond(context: context, .failure("malformed control request: \(error)", code: .usage))
            return
        }
        if case .monitor(let replay) = request, let feed {
            follow(context: context, feed: feed, replay: replay)
            return
        }
        let handler = self.handler
        let loop = context.eventLoop
        let ctx = NIOLoopBound(context, eventLoop: loop)
        let me = NIOLoopBound(self, eventLoop: loop)
        DispatchQueue.global().async {
            let response = handler(request)
            loop.execute { me.value.respond(context: ctx.value, response) }
        }
    }

    func respond(context: ChannelHandlerContext, _ response: ControlResponse) {
        done = true
        var data = (try? JSONEncoder().encode(response)) ?? Data("{\"ok\":false,\"error\":\"encoding failed\"}".utf8)
        data.append(0x0A)
        var out = context.channel.allocator.buffer(capacity: data.count)
        out.writeBytes(data)
        context.writeAndFlush(wrapOutboundOut(out)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Answers a `monitor` request: a ``MonitorHello`` line, then every event of `feed`.
    func follow(context: ChannelHandlerContext, feed: EventFeed, replay: Int) {
        guard let hello = try? ControlResponse.success(MonitorHello(set: feed.set, pid: getpid())),
              var line = try? JSONEncoder().encode(hello) else { return }
        line.append(0x0A)
        write(context: context, line)
        let channel = context.channel
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        unsubscribe = feed.subscribe(replay: replay) { event in
            guard channel.isActive, var data = try? encoder.encode(event) else { return false }
            // A monitor that stopped reading (64 KiB of events unread) is disconnected rather
            // than buffered without bound.
            guard channel.isWritable else {
                channel.close(promise: nil)
                return false
            }
            data.append(0x0A)
            var out = channel.allocator.buffer(capacity: data.count)
            out.writeBytes(data)
            channel.writeAndFlush(out, promise: nil)
            return true
        }
    }

    private func write(context: ChannelHandlerContext, _ data: Data) {
        var out = context.channel.allocator.buffer(capacity: data.count)
        out.writeBytes(data)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        unsubscribe?()
        unsubscribe = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
