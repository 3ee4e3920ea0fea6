import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The connection handler: closing.
extension NBDConnectionHandler {
    /// Hangs up on a client that broke the protocol, after sending the replies already written
    /// for its earlier messages (a client that pipelines options gets their answers; a plain
    /// close would throw away the writes not flushed yet).
    func protocolError(context: ChannelHandlerContext, _ message: String) {
        logger.notice("protocol error, disconnecting client: \(message)")
        closeAfterPendingWrites(context: context)
    }

    /// Closes the connection once everything written so far has reached the socket.
    func closeAfterPendingWrites(context: ChannelHandlerContext) {
        switch phase {
        case .closing, .closed: return
        default: break
        }
        phase = .closing
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// After DISC or during a draining shutdown: closes once no request is in flight.
    func maybeFinish(context: ChannelHandlerContext) {
        guard inFlightRequests == 0 else { return }
        switch phase {
        case .finishing:
            closeAfterPendingWrites(context: context)
        case .transmission, .discarding:
            if shuttingDown { closeAfterPendingWrites(context: context) }
        default:
            break
        }
    }

    func beginShutdown(context: ChannelHandlerContext, drain: Bool) {
        shuttingDown = true
        switch phase {
        case .closing, .closed:
            return
        case .clientFlags, .options, .startingTLS:
            phase = .closing
            context.close(promise: nil)
        case .transmission, .discarding, .finishing:
            if drain {
                process(context: context)  // answers already-buffered requests with ESHUTDOWN
                maybeFinish(context: context)
            } else {
                phase = .closing
                context.close(promise: nil)
            }
        }
    }
}
