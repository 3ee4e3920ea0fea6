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

/// One client connection: the fixed-newstyle handshake, then the transmission phase.
///
/// Requests are parsed on the event loop and run on the thread pool; replies are written as they complete
/// (out of order) and flushed in batches. Reading from the socket pauses while too much work is in flight or
/// the socket's send buffer is full, which bounds the memory one client can make the server hold.
final class NBDConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase {
        case clientFlags
        case options
        /// NBD_OPT_STARTTLS acknowledged; the TLS handler is added once the option is consumed.
        case startingTLS
        case transmission
        /// Skipping the payload of an oversized WRITE that was already answered with EINVAL.
        case discarding(remaining: UInt64)
        /// NBD_CMD_DISC received: no more requests, close once in-flight requests are answered.
        case finishing
        /// Close requested (after pending writes).
        case closing
        case closed
    }

    enum Step {
        case consumed
        case needMore(Int)
        case stop
    }

    let registry: NBDExportRegistry
    let workers: NBDWorkerPool
    let limits: NBDConnectionLimits
    let tracker: NBDConnectionTracker
    var logger: Logger

    var phase: Phase = .clientFlags
    var cumulation: ByteBuffer?
    var clientNoZeroes = false
    /// NBD_OPT_STRUCTURED_REPLY was negotiated: READ replies (and all errors) are structured chunks.
    var structuredReplies = false
    var export: (any NBDExport)?
    var exportSize: UInt64 = 0
    var inFlightBytes = 0
    var inFlightRequests = 0
    var pendingRead = false
    var flushScheduled = false
    var shuttingDown = false
    var requestCount = 0
    var peakInFlightBytes = 0
    let mailbox = NBDCompletionMailbox()
    var attachedExportName: String?
    /// TLS mode and credentials; nil: NOTLS.
    let tls: NBDTLSSettings?
    /// NBD_OPT_STARTTLS was acknowledged: everything after it goes through TLS.
    var tlsStarted = false
    /// The TLS handshake completed.
    var tlsEstablished = false

    init(registry: NBDExportRegistry, workers: NBDWorkerPool, limits: NBDConnectionLimits,
         tracker: NBDConnectionTracker, logger: Logger, tls: NBDTLSSettings? = nil) {
        self.registry = registry
        self.workers = workers
        self.limits = limits
        self.tracker = tracker
        self.logger = logger
        self.tls = tls.flatMap { $0.mode == .off ? nil : $0 }
    }

    // MARK: - Channel events

    func channelActive(context: ChannelHandlerContext) {
        logger.info("client connected")
        var greeting = context.channel.allocator.buffer(capacity: 18)
        greeting.writeInteger(NBDWire.nbdMagic)
        greeting.writeInteger(NBDWire.optMagic)
        greeting.writeInteger(NBDWire.flagFixedNewstyle | NBDWire.flagNoZeroes)
        context.writeAndFlush(wrapOutboundOut(greeting), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closed
        cumulation = nil
        mailbox.close()
        tracker.recordPeak(inFlightBytes: peakInFlightBytes)
        if let name = attachedExportName {
            tracker.detach(name, context.channel)
            attachedExportName = nil
        }
        logger.info("client disconnected", metadata: ["requests": "\(requestCount)"])
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch phase {
        case .finishing, .closing, .closed:
            return  // nothing more is read after DISC / once closing
        default:
            break
        }
        if cumulation == nil {
            cumulation = buffer
        } else {
            cumulation!.writeBuffer(&buffer)
        }
        process(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { resume(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .closed = phase { return }
        if let io = error as? IOError, io.errnoCode == ECONNRESET || io.errnoCode == EPIPE {
            logger.info("client connection reset")
        } else if let ssl = error as? NIOSSLError {
            switch ssl {
            case .uncleanShutdown:
                logger.info("client closed the connection without ending its TLS session")
            case .handshakeFailed:
                let why = NBDTLSCredentials.describe(ssl)
                var hint = ""
                if case .psk = tls?.credentials.kind, why.contains("BAD_DECRYPT") || why.contains("BAD_RECORD_MAC") {
                    hint = " (the client's pre-shared key is wrong?)"
                }
                logger.notice("TLS handshake failed, disconnecting client: \(why)\(hint)")
            default:
                logger.notice("TLS error, disconnecting client: \(NBDTLSCredentials.describe(ssl))")
            }
        } else if tlsStarted && !tlsEstablished {
            logger.notice("TLS handshake failed, disconnecting client: \(NBDTLSCredentials.describe(error))")
        } else {
            logger.warning("connection error: \(error)")
        }
        phase = .closing
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let shutdown = event as? NBDShutdownEvent {
            beginShutdown(context: context, drain: shutdown.drain)
        } else if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            tlsEstablished = true
            let version = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))?.tlsVersion
            logger.info("TLS session established", metadata: ["tls": "\(version.map { "\($0)" } ?? "?")"])
            context.fireUserInboundEventTriggered(event)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Holds reads back while the connection has too much in flight (backpressure).
    func read(context: ChannelHandlerContext) {
        if readsPaused(context: context) {
            pendingRead = true
        } else {
            context.read()
        }
    }

    // MARK: - Flow control

    var overLimit: Bool {
        inFlightBytes >= limits.maxInFlightBytes || inFlightRequests >= limits.maxInFlightRequests
    }

    func readsPaused(context: ChannelHandlerContext) -> Bool {
        switch phase {
        case .clientFlags, .options, .startingTLS:
            return false
        case .discarding:
            return shuttingDown
        case .transmission:
            return shuttingDown || overLimit || !context.channel.isWritable
        case .finishing, .closing, .closed:
            return true
        }
    }

    /// Continues parsing buffered requests and reading once the connection is below its limits again.
    func resume(context: ChannelHandlerContext) {
        process(context: context)
        if pendingRead && !readsPaused(context: context) {
            pendingRead = false
            context.read()
        }
    }

    func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            switch self.phase {
            case .closed: break
            default: context.flush()
            }
        }
    }

    // MARK: - Parsing

    func process(context: ChannelHandlerContext) {
        guard var buffer = cumulation else {
            maybeFinish(context: context)
            return
        }
        cumulation = nil
        let startReader = buffer.readerIndex
        var wantBytes = 0
        loop: while true {
            let step: Step
            switch phase {
            case .clientFlags:
                step = parseClientFlags(context: context, buffer: &buffer)
            case .options:
                step = parseOption(context: context, buffer: &buffer)
            case .startingTLS:
                step = .stop
            case .transmission:
                if overLimit || !context.channel.isWritable { step = .stop } else {
                    step = parseRequest(context: context, buffer: &buffer)
                }
            case .discarding(let remaining):
                let n = Int(min(remaining, UInt64(buffer.readableBytes)))
                buffer.moveReaderIndex(forwardBy: n)
                if UInt64(n) == remaining {
                    phase = .transmission
                    step = .consumed
                } else {
                    phase = .discarding(remaining: remaining - UInt64(n))
                    step = .needMore(0)
                }
            case .finishing, .closing, .closed:
                step = .stop
            }
            switch step {
            case .consumed:
                continue loop
            case .needMore(let n):
                wantBytes = n
                break loop
            case .stop:
                break loop
            }
        }
        switch phase {
        case .closing, .closed:
            cumulation = nil
        default:
            if buffer.readableBytes == 0 {
                cumulation = nil
            } else if buffer.readerIndex != startReader {
                // Parts of this storage were handed out as request payloads: keep only the unparsed tail
                // in a fresh buffer so later appends never copy-on-write the shared storage.
                var fresh = context.channel.allocator.buffer(capacity: max(buffer.readableBytes, wantBytes))
                fresh.writeBuffer(&buffer)
                cumulation = fresh
            } else {
                if wantBytes > buffer.readableBytes {
                    buffer.reserveCapacity(minimumWritableBytes: wantBytes - buffer.readableBytes)
                }
                cumulation = buffer
            }
        }
        scheduleFlush(context: context)
        maybeFinish(context: context)
    }

    func parseClientFlags(context: ChannelHandlerContext, buffer: inout ByteBuffer) -> Step {
        switch NBDFrameDecoder.clientFlags(&buffer) {
        case .needMore(let n): return .needMore(n)
        case .malformed(let why):
            protocolError(context: context, why)
            return .stop
        case .frame(let frame):
            guard case .clientFlags(let flags) = frame else { return .stop }
            clientNoZeroes = flags & NBDWire.clientFlagNoZeroes != 0
            phase = .options
            return .consumed
        }
    }

    func parseOption(context: ChannelHandlerContext, buffer: inout ByteBuffer) -> Step {
        switch NBDFrameDecoder.option(&buffer, maxLength: limits.maxOptionLength) {
        case .needMore(let n): return .needMore(n)
        case .malformed(let why):
            protocolError(context: context, why)
            return .stop
        case .frame(.optionTooLong(let option, let length)):
            // Never buffer an absurd option: say why (where a reply is allowed) and hang up.
            logger.notice("protocol error: option \(option) length \(length) exceeds \(limits.maxOptionLength)")
            if option != NBDWire.optExportName {
                sendOptionReply(context: context, option: option, type: NBDWire.repErrTooBig,
                                message: "option data too long")
            }
            closeAfterPendingWrites(context: context)
            return .stop
        case .frame(.option(let option, var data)):
            handleOption(context: context, option: option, data: &data)
        case .frame:
            return .stop
        }
        if case .startingTLS = phase {
            // The client must wait for the ACK before its TLS ClientHello: bytes after the
            // option are a protocol error (they cannot be handed to the TLS layer as plaintext).
            guard buffer.readableBytes == 0 else {
                protocolError(context: context, "data after NBD_OPT_STARTTLS before its reply")
                return .stop
            }
            startTLS(context: context)
            return .stop
        }
        switch phase {
        case .options, .transmission: return .consumed
        default: return .stop
        }
    }

    func parseRequest(context: ChannelHandlerContext, buffer: inout ByteBuffer) -> Step {
        switch NBDFrameDecoder.request(&buffer, maxWritePayload: UInt64(export?.maximumRequestSize ?? 0)) {
        case .needMore(let n): return .needMore(n)
        case .malformed(let why):
            protocolError(context: context, why)
            return .stop
        case .frame(.writeTooLarge(let h, let maximum)):
            requestCount += 1
            logger.notice("WRITE of \(h.length) bytes exceeds the maximum payload \(maximum)")
            sendErrorReply(context: context, cookie: h.cookie,
                           error: .invalid("WRITE of \(h.length) bytes exceeds the maximum payload \(maximum)"))
            if UInt64(h.length) <= max(maximum, NBDWire.portablePayloadLimit) {
                phase = .discarding(remaining: UInt64(h.length))
                return .consumed
            }
            // Too large to be anything but abuse: answer, then hang up without reading it.
            closeAfterPendingWrites(context: context)
            return .stop
        case .frame(.request(let h, let payload)):
            requestCount += 1
            handleRequest(context: context, flags: h.flags, type: h.type, cookie: h.cookie, offset: h.offset,
                          length: h.length, payload: payload)
        case .frame:
            return .stop
        }
        switch phase {
        case .transmission: return .consumed
        default: return .stop
        }
    }
}
