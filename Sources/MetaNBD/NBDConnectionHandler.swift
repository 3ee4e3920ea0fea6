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

/// Limits applied to each connection.
struct NBDConnectionLimits: Sendable {
    /// Longest option payload accepted during the handshake; longer ones end the connection.
    var maxOptionLength: Int
    /// Payload bytes (write data being applied, read data being fetched) in flight before reading pauses.
    var maxInFlightBytes: Int
    /// Requests in flight before reading pauses.
    var maxInFlightRequests: Int
}

/// Tells a connection that the server is shutting down (`drain`: answer what is in flight first).
struct NBDShutdownEvent: Sendable {
    var drain: Bool
}

/// The result of one request run on the thread pool: the complete reply of a successful READ,
/// or nil for a reply that is only the 16-byte header (built on the event loop from `cookie`
/// and `error`, all such replies of a batch in one buffer).
struct NBDCompletion: Sendable {
    var reply: ByteBuffer?
    var cookie: UInt64 = 0
    var error: NBDIOError?
    var weight = 0
    var command: UInt16 = 0
    var offset: UInt64 = 0
    var length: UInt32 = 0
}

/// Finished requests waiting for their connection's event loop.
///
/// Guarded by an `NIOLock` (a plain pthread mutex): every worker posts here, and
/// `Synchronization.Mutex` would spin on a holder that was preempted.
final class NBDCompletionMailbox: Sendable {
    private struct Box {
        var list: [NBDCompletion] = []
        var closed = false
    }
    private let items = NIOLockedValueBox(Box())

    /// Adds a completion; returns true when the mailbox was empty (the caller must schedule a drain).
    /// Once the connection is closed, completions are dropped and this returns false: its event loop
    /// may be gone by the time a request stuck in a device finishes.
    func post(_ completion: NBDCompletion) -> Bool {
        items.withLockedValue { box in
            if box.closed { return false }
            box.list.append(completion)
            return box.list.count == 1
        }
    }

    func takeAll() -> [NBDCompletion] {
        items.withLockedValue { box in
            defer { box.list = [] }
            return box.list
        }
    }

    /// The connection is closed: nothing is delivered any more.
    func close() {
        items.withLockedValue { box in
            box.closed = true
            box.list = []
        }
    }
}

/// One client connection: the fixed-newstyle handshake, then the transmission phase.
///
/// Requests are parsed on the event loop and run on the thread pool; replies are written as they complete
/// (out of order) and flushed in batches. Reading from the socket pauses while too much work is in flight or
/// the socket's send buffer is full, which bounds the memory one client can make the server hold.
final class NBDConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
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

    private enum Step {
        case consumed
        case needMore(Int)
        case stop
    }

    private let registry: NBDExportRegistry
    private let workers: NBDWorkerPool
    private let limits: NBDConnectionLimits
    private let tracker: NBDConnectionTracker
    private var logger: Logger

    private var phase: Phase = .clientFlags
    private var cumulation: ByteBuffer?
    private var clientNoZeroes = false
    /// NBD_OPT_STRUCTURED_REPLY was negotiated: READ replies (and all errors) are structured chunks.
    private var structuredReplies = false
    private var export: (any NBDExport)?
    private var exportSize: UInt64 = 0
    private var inFlightBytes = 0
    private var inFlightRequests = 0
    private var pendingRead = false
    private var flushScheduled = false
    private var shuttingDown = false
    private var requestCount = 0
    private var peakInFlightBytes = 0
    private let mailbox = NBDCompletionMailbox()
    private var attachedExportName: String?
    /// TLS mode and credentials; nil: NOTLS.
    private let tls: NBDTLSSettings?
    /// NBD_OPT_STARTTLS was acknowledged: everything after it goes through TLS.
    private var tlsStarted = false
    /// The TLS handshake completed.
    private var tlsEstablished = false

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

    private var overLimit: Bool {
        inFlightBytes >= limits.maxInFlightBytes || inFlightRequests >= limits.maxInFlightRequests
    }

    private func readsPaused(context: ChannelHandlerContext) -> Bool {
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
    private func resume(context: ChannelHandlerContext) {
        process(context: context)
        if pendingRead && !readsPaused(context: context) {
            pendingRead = false
            context.read()
        }
    }

    private func scheduleFlush(context: ChannelHandlerContext) {
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

    private func process(context: ChannelHandlerContext) {
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

    private func parseClientFlags(context: ChannelHandlerContext, buffer: inout ByteBuffer) -> Step {
        guard let flags = buffer.readInteger(as: UInt32.self) else { return .needMore(4) }
        let known = NBDWire.clientFlagFixedNewstyle | NBDWire.clientFlagNoZeroes
        guard flags & ~known == 0 else {
            protocolError(context: context, "unknown client flags 0x\(String(flags, radix: 16))")
            return .stop
        }
        clientNoZeroes = flags & NBDWire.clientFlagNoZeroes != 0
        phase = .options
        return .consumed
    }

    private func parseOption(context: ChannelHandlerContext, buffer: inout ByteBuffer) -> Step {
        guard buffer.readableBytes >= 16 else { return .needMore(16) }
        let start = buffer.readerIndex
        guard let magic = buffer.getInteger(at: start, as: UInt64.self),
              let option = buffer.getInteger(at: start + 8, as: UInt32.self),
              let length32 = buffer.getInteger(at: start + 12, as: UInt32.self) else { return .needMore(16) }
        guard magic == NBDWire.optMagic else {
            protocolError(context: context, "bad option magic 0x\(String(magic, radix: 16))")
            return .stop
        }
        let length = Int(length32)
        guard length <= limits.maxOptionLength else {
            // Never buffer an absurd option: say why (where a reply is allowed) and hang up.
            buffer.moveReaderIndex(forwardBy: 16)
            logger.notice("protocol error: option \(option) length \(length) exceeds \(limits.maxOptionLength)")
            if option != NBDWire.optExportName {
                sendOptionReply(context: context, option: option, type: NBDWire.repErrTooBig,
                                message: "option data too long")
            }
            closeAfterPendingWrites(context: context)
            return .stop
        }
        guard buffer.readableBytes >= 16 + length else { return .needMore(16 + length) }
        buffer.moveReaderIndex(forwardBy: 16)
        guard var data = buffer.readSlice(length: length) else { return .needMore(length) }
        handleOption(context: context, option: option, data: &data)
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

    private func parseRequest(context: ChannelHandlerContext, buffer: inout ByteBuffer) -> Step {
        let headerSize = NBDWire.requestHeaderSize
        guard buffer.readableBytes >= headerSize else { return .needMore(headerSize) }
        let s = buffer.readerIndex
        guard let magic = buffer.getInteger(at: s, as: UInt32.self),
              let flags = buffer.getInteger(at: s + 4, as: UInt16.self),
              let type = buffer.getInteger(at: s + 6, as: UInt16.self),
              let cookie = buffer.getInteger(at: s + 8, as: UInt64.self),
              let offset = buffer.getInteger(at: s + 16, as: UInt64.self),
              let length = buffer.getInteger(at: s + 24, as: UInt32.self) else { return .needMore(headerSize) }
        guard magic == NBDWire.requestMagic else {
            protocolError(context: context, "bad request magic 0x\(String(magic, radix: 16))")
            return .stop
        }
        var payload: ByteBuffer?
        if type == NBDWire.cmdWrite {
            let maximum = UInt64(export?.maximumRequestSize ?? 0)
            if UInt64(length) > maximum {
                buffer.moveReaderIndex(forwardBy: headerSize)
                requestCount += 1
                logger.notice("WRITE of \(length) bytes exceeds the maximum payload \(maximum)")
                sendErrorReply(context: context, cookie: cookie,
                               error: .invalid("WRITE of \(length) bytes exceeds the maximum payload \(maximum)"))
                if UInt64(length) <= max(maximum, NBDWire.portablePayloadLimit) {
                    phase = .discarding(remaining: UInt64(length))
                    return .consumed
                }
                // Too large to be anything but abuse: answer, then hang up without reading it.
                closeAfterPendingWrites(context: context)
                return .stop
            }
            guard buffer.readableBytes >= headerSize + Int(length) else {
                return .needMore(headerSize + Int(length))
            }
            buffer.moveReaderIndex(forwardBy: headerSize)
            payload = buffer.readSlice(length: Int(length))
        } else {
            buffer.moveReaderIndex(forwardBy: headerSize)
        }
        requestCount += 1
        handleRequest(context: context, flags: flags, type: type, cookie: cookie, offset: offset,
                      length: length, payload: payload)
        switch phase {
        case .transmission: return .consumed
        default: return .stop
        }
    }

    // MARK: - Handshake

    private func handleOption(context: ChannelHandlerContext, option: UInt32, data: inout ByteBuffer) {
        if shuttingDown && option != NBDWire.optAbort {
            if option == NBDWire.optExportName {
                closeAfterPendingWrites(context: context)
            } else {
                sendOptionReply(context: context, option: option, type: NBDWire.repErrShutdown,
                                message: "server is shutting down")
            }
            return
        }
        if let tls, tls.mode == .require, !tlsStarted,
           option != NBDWire.optStartTLS, option != NBDWire.optAbort {
            if option == NBDWire.optExportName {
                // NBD_OPT_EXPORT_NAME cannot be answered with an error: hang up (proto.md FORCEDTLS).
                logger.notice("client asked for an export without TLS (NBD_OPT_EXPORT_NAME), but TLS is required: disconnecting")
                closeAfterPendingWrites(context: context)
            } else {
                logger.debug("option \(option) refused: TLS is required")
                sendOptionReply(context: context, option: option, type: NBDWire.repErrTLSReqd,
                                message: "this server requires TLS: connect with nbds:// (NBD_OPT_STARTTLS) first")
            }
            return
        }
        switch option {
        case NBDWire.optExportName:
            let name = String(decoding: data.readableBytesView, as: UTF8.self)
            guard let export = registry.lookup(name) else {
                logger.notice("client asked for unknown export '\(name)' with NBD_OPT_EXPORT_NAME")
                closeAfterPendingWrites(context: context)
                return
            }
            let size = export.sizeBytes
            var reply = context.channel.allocator.buffer(capacity: 134)
            reply.writeInteger(size)
            reply.writeInteger(transmissionFlags(export))
            if !clientNoZeroes { reply.writeRepeatingByte(0, count: 124) }
            context.write(wrapOutboundOut(reply), promise: nil)
            enterTransmission(export: export, size: size, channel: context.channel)

        case NBDWire.optAbort:
            sendOptionReply(context: context, option: option, type: NBDWire.repAck)
            closeAfterPendingWrites(context: context)

        case NBDWire.optList:
            guard data.readableBytes == 0 else {
                sendOptionReply(context: context, option: option, type: NBDWire.repErrInvalid,
                                message: "NBD_OPT_LIST takes no data")
                return
            }
            for export in registry.list() {
                let name = Array(export.name.utf8)
                var payload = context.channel.allocator.buffer(capacity: 4 + name.count)
                payload.writeInteger(UInt32(name.count))
                payload.writeBytes(name)
                payload.writeString(export.exportDescription)
                sendOptionReply(context: context, option: option, type: NBDWire.repServer, payload: payload)
            }
            sendOptionReply(context: context, option: option, type: NBDWire.repAck)

        case NBDWire.optInfo, NBDWire.optGo:
            handleInfoOrGo(context: context, option: option, data: &data)

        case NBDWire.optStartTLS:
            guard tls != nil else {
                sendOptionReply(context: context, option: option, type: NBDWire.repErrPolicy,
                                message: "TLS is not enabled on this server (serve --tls-certificates DIR or --tls-psk FILE)")
                return
            }
            guard !tlsStarted else {
                sendOptionReply(context: context, option: option, type: NBDWire.repErrInvalid,
                                message: "TLS is already active")
                return
            }
            guard data.readableBytes == 0 else {
                sendOptionReply(context: context, option: option, type: NBDWire.repErrInvalid,
                                message: "NBD_OPT_STARTTLS takes no data")
                return
            }
            sendOptionReply(context: context, option: option, type: NBDWire.repAck)
            phase = .startingTLS

        case NBDWire.optStructuredReply:
            guard data.readableBytes == 0 else {
                sendOptionReply(context: context, option: option, type: NBDWire.repErrInvalid,
                                message: "NBD_OPT_STRUCTURED_REPLY takes no data")
                return
            }
            structuredReplies = true
            sendOptionReply(context: context, option: option, type: NBDWire.repAck)

        default:
            sendOptionReply(context: context, option: option, type: NBDWire.repErrUnsup,
                            message: "option \(option) is not supported")
        }
    }

    private func handleInfoOrGo(context: ChannelHandlerContext, option: UInt32, data: inout ByteBuffer) {
        let total = data.readableBytes
        guard total >= 6, let nameLength = data.readInteger(as: UInt32.self), UInt64(nameLength) <= UInt64(total - 6),
              let nameBytes = data.readBytes(length: Int(nameLength)),
              let count = data.readInteger(as: UInt16.self), data.readableBytes == Int(count) * 2 else {
            sendOptionReply(context: context, option: option, type: NBDWire.repErrInvalid,
                            message: "malformed \(option == NBDWire.optGo ? "NBD_OPT_GO" : "NBD_OPT_INFO") request")
            return
        }
        var requested = Set<UInt16>()
        for _ in 0..<count {
            if let info = data.readInteger(as: UInt16.self) { requested.insert(info) }
        }
        let name = String(decoding: nameBytes, as: UTF8.self)
        guard let export = registry.lookup(name) else {
            let message = name.isEmpty
                ? "no default export: \(registry.list().count) exports, name one"
                : "unknown export '\(name)'"
            logger.notice("client asked for \(message)")
            sendOptionReply(context: context, option: option, type: NBDWire.repErrUnknown, message: message)
            return
        }
        let size = export.sizeBytes
        let allocator = context.channel.allocator

        var info = allocator.buffer(capacity: 12)
        info.writeInteger(NBDWire.infoExport)
        info.writeInteger(size)
        info.writeInteger(transmissionFlags(export))
        sendOptionReply(context: context, option: option, type: NBDWire.repInfo, payload: info)

        if requested.contains(NBDWire.infoName) || name != export.name {
            var p = allocator.buffer(capacity: 2 + export.name.utf8.count)
            p.writeInteger(NBDWire.infoName)
            p.writeString(export.name)
            sendOptionReply(context: context, option: option, type: NBDWire.repInfo, payload: p)
        }
        if requested.contains(NBDWire.infoDescription) && !export.exportDescription.isEmpty {
            var p = allocator.buffer(capacity: 2 + export.exportDescription.utf8.count)
            p.writeInteger(NBDWire.infoDescription)
            p.writeString(export.exportDescription)
            sendOptionReply(context: context, option: option, type: NBDWire.repInfo, payload: p)
        }
        // Always sent: the server enforces these constraints whether or not the client asked.
        var block = allocator.buffer(capacity: 14)
        block.writeInteger(NBDWire.infoBlockSize)
        block.writeInteger(export.minimumBlockSize)
        block.writeInteger(export.preferredBlockSize)
        block.writeInteger(export.maximumRequestSize)
        sendOptionReply(context: context, option: option, type: NBDWire.repInfo, payload: block)

        sendOptionReply(context: context, option: option, type: NBDWire.repAck)
        if option == NBDWire.optGo {
            enterTransmission(export: export, size: size, channel: context.channel)
        }
    }

    /// Sends the ACK of NBD_OPT_STARTTLS in plaintext, then puts a TLS server handler in front
    /// of this one: the handshake follows, and option haggling goes on inside TLS. Whatever was
    /// negotiated before is forgotten (a man in the middle could have chosen it).
    private func startTLS(context: ChannelHandlerContext) {
        guard let tls else { return }
        context.flush()  // the ACK reaches the channel's write queue before the TLS handler exists
        tlsStarted = true
        structuredReplies = false
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.credentials.context),
                                                           position: .before(self))
        } catch {
            logger.error("cannot start TLS: \(error)")
            phase = .closing
            context.close(promise: nil)
            return
        }
        phase = .options
        logger.debug("NBD_OPT_STARTTLS: TLS handshake begins")
    }

    private func enterTransmission(export: any NBDExport, size: UInt64, channel: any Channel) {
        self.export = export
        self.exportSize = size
        phase = .transmission
        tracker.attach(export.name, channel)
        attachedExportName = export.name
        logger[metadataKey: "export"] = "\(export.name)"
        logger.info("client opened export", metadata: [
            "size": "\(size)", "flags": "0x\(String(transmissionFlags(export), radix: 16))",
        ])
    }

    private func transmissionFlags(_ export: any NBDExport) -> UInt16 {
        var flags = NBDWire.flagHasFlags
        if export.readOnly {
            flags |= NBDWire.flagReadOnly
        } else {
            flags |= NBDWire.flagSendFlush | NBDWire.flagSendFUA
            if export.canTrim { flags |= NBDWire.flagSendTrim }
            if export.canWriteZeroes { flags |= NBDWire.flagSendWriteZeroes }
        }
        if export.canMultiConn { flags |= NBDWire.flagCanMultiConn }
        return flags
    }

    private func sendOptionReply(context: ChannelHandlerContext, option: UInt32, type: UInt32,
                                 payload: ByteBuffer? = nil, message: String? = nil) {
        var payload = payload
        if payload == nil, let message {
            var p = context.channel.allocator.buffer(capacity: message.utf8.count)
            p.writeString(message)
            payload = p
        }
        var reply = context.channel.allocator.buffer(capacity: 20 + (payload?.readableBytes ?? 0))
        reply.writeInteger(NBDWire.optReplyMagic)
        reply.writeInteger(option)
        reply.writeInteger(type)
        reply.writeInteger(UInt32(payload?.readableBytes ?? 0))
        if var payload { reply.writeBuffer(&payload) }
        context.write(wrapOutboundOut(reply), promise: nil)
    }

    // MARK: - Transmission

    private func handleRequest(context: ChannelHandlerContext, flags: UInt16, type: UInt16, cookie: UInt64,
                               offset: UInt64, length: UInt32, payload: ByteBuffer?) {
        guard let export else { return }
        let name = NBDWire.commandName(type)
        if logger.logLevel <= .trace {
            logger.trace("request", metadata: ["cmd": "\(name)", "offset": "\(offset)", "length": "\(length)"])
        }
        if shuttingDown {
            sendErrorReply(context: context, cookie: cookie, error: NBDIOError(.shutdown, "the server is shutting down"))
            return
        }
        if type == NBDWire.cmdDisc {
            phase = .finishing
            return
        }
        if let error = validate(export: export, flags: flags, type: type, offset: offset, length: length) {
            logger.debug("rejected \(name) offset \(offset) length \(length): \(error)")
            sendErrorReply(context: context, cookie: cookie, error: error)
            return
        }
        let weight = (type == NBDWire.cmdRead || type == NBDWire.cmdWrite ? Int(length) : 0) + 1024
        inFlightBytes += weight
        inFlightRequests += 1
        if inFlightBytes > peakInFlightBytes { peakInFlightBytes = inFlightBytes }
        let allocator = context.channel.allocator
        let mailbox = self.mailbox
        let loop = context.eventLoop
        let bound = NIOLoopBound(Target(handler: self, context: context), eventLoop: loop)
        let structured = structuredReplies
        let accepted = workers.submit {
            var completion = NBDConnectionHandler.perform(export: export, type: type, flags: flags, cookie: cookie,
                                                          offset: offset, length: length, payload: payload,
                                                          structured: structured, allocator: allocator)
            completion.weight = weight
            completion.command = type
            completion.offset = offset
            completion.length = length
            // Only the completion that finds the mailbox empty wakes the event loop; the others ride along.
            if mailbox.post(completion) {
                loop.execute {
                    let target = bound.value
                    target.handler.drainCompletions(context: target.context)
                }
            }
        }
        if !accepted {
            inFlightBytes -= weight
            inFlightRequests -= 1
            sendErrorReply(context: context, cookie: cookie, error: NBDIOError(.shutdown, "the server is shutting down"))
        }
    }

    /// Handler and context, carried to the event loop by completions.
    private struct Target {
        let handler: NBDConnectionHandler
        let context: ChannelHandlerContext
    }

    /// Sends the replies of every finished request, flushes once, and resumes reading if below the limits.
    private func drainCompletions(context: ChannelHandlerContext) {
        let done = mailbox.takeAll()
        var headers: ByteBuffer?
        for completion in done {
            inFlightBytes -= completion.weight
            inFlightRequests -= 1
            if let error = completion.error {
                logger.warning("\(NBDWire.commandName(completion.command)) offset \(completion.offset) length \(completion.length) failed: \(error)")
            }
            if case .closed = phase { continue }
            if let reply = completion.reply {
                context.write(wrapOutboundOut(reply), promise: nil)
            } else {
                if headers == nil {
                    headers = context.channel.allocator.buffer(capacity: NBDWire.simpleReplyHeaderSize * done.count)
                }
                writeReplyHeader(into: &headers!, cookie: completion.cookie, error: completion.error)
            }
        }
        if let headers { context.write(wrapOutboundOut(headers), promise: nil) }
        if case .closed = phase {} else { context.flush() }
        resume(context: context)
    }

    /// Checks a request against the export; returns the error to answer with, or nil when it may run.
    private func validate(export: any NBDExport, flags: UInt16, type: UInt16, offset: UInt64,
                          length: UInt32) -> NBDIOError? {
        let isWrite = type == NBDWire.cmdWrite || type == NBDWire.cmdWriteZeroes
        switch type {
        case NBDWire.cmdRead, NBDWire.cmdWrite, NBDWire.cmdTrim, NBDWire.cmdWriteZeroes, NBDWire.cmdFlush:
            break
        default:
            return .invalid("unknown command \(type)")
        }
        var allowed = NBDWire.cmdFlagFUA
        if type == NBDWire.cmdWriteZeroes { allowed |= NBDWire.cmdFlagNoHole }
        if flags & ~allowed != 0 { return .invalid("unsupported command flags 0x\(String(flags, radix: 16))") }
        if type == NBDWire.cmdFlush {
            return length == 0 && offset == 0 ? nil : .invalid("FLUSH with offset or length")
        }
        if export.readOnly && type != NBDWire.cmdRead { return .perm("export is read-only") }
        if type == NBDWire.cmdTrim && !export.canTrim { return .invalid("TRIM not supported") }
        if type == NBDWire.cmdWriteZeroes && !export.canWriteZeroes { return .invalid("WRITE_ZEROES not supported") }
        if length == 0 { return .invalid("zero length") }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        if overflow || end > exportSize {
            return isWrite ? .noSpace("beyond the end of the export") : .invalid("beyond the end of the export")
        }
        let minimum = UInt64(max(export.minimumBlockSize, 1))
        if offset % minimum != 0 || UInt64(length) % minimum != 0 {
            return .invalid("not aligned to \(minimum) bytes")
        }
        if type == NBDWire.cmdRead && length > export.maximumRequestSize {
            return .invalid("READ larger than the maximum payload")
        }
        return nil
    }

    /// Runs one request on a thread-pool thread: the complete reply of a READ, else the status.
    private static func perform(export: any NBDExport, type: UInt16, flags: UInt16, cookie: UInt64,
                                offset: UInt64, length: UInt32, payload: ByteBuffer?, structured: Bool,
                                allocator: ByteBufferAllocator) -> NBDCompletion {
        let fua = flags & NBDWire.cmdFlagFUA != 0
        var failure: NBDIOError?
        switch type {
        case NBDWire.cmdRead:
            let count = Int(length)
            var reply: ByteBuffer
            if structured {
                // One NBD_REPLY_TYPE_OFFSET_DATA chunk with the whole range, flagged done.
                reply = allocator.buffer(capacity: NBDWire.structuredReplyHeaderSize + 8 + count)
                reply.writeInteger(NBDWire.structuredReplyMagic)
                reply.writeInteger(NBDWire.replyFlagDone)
                reply.writeInteger(NBDWire.replyTypeOffsetData)
                reply.writeInteger(cookie)
                reply.writeInteger(UInt32(8 + count))
                reply.writeInteger(offset)
            } else {
                reply = allocator.buffer(capacity: NBDWire.simpleReplyHeaderSize + count)
                reply.writeInteger(NBDWire.simpleReplyMagic)
                reply.writeInteger(UInt32(0))
                reply.writeInteger(cookie)
            }
            reply.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                let target = UnsafeMutableRawBufferPointer(rebasing: raw[0..<count])
                do throws(NBDIOError) {
                    try export.read(offset: offset, into: target)
                } catch {
                    failure = error
                }
                return count
            }
            if failure == nil { return NBDCompletion(reply: reply, error: nil) }
        case NBDWire.cmdWrite:
            guard let payload else { failure = .invalid("missing payload"); break }
            payload.withUnsafeReadableBytes { bytes in
                do throws(NBDIOError) {
                    try export.write(offset: offset, from: bytes, fua: fua)
                } catch {
                    failure = error
                }
            }
        case NBDWire.cmdFlush:
            do throws(NBDIOError) { try export.flush() } catch { failure = error }
        case NBDWire.cmdTrim:
            do throws(NBDIOError) { try export.trim(offset: offset, length: UInt64(length), fua: fua) } catch {
                failure = error
            }
        case NBDWire.cmdWriteZeroes:
            let noHole = flags & NBDWire.cmdFlagNoHole != 0
            do throws(NBDIOError) {
                try export.writeZeroes(offset: offset, length: UInt64(length), fua: fua, noHole: noHole)
            } catch {
                failure = error
            }
        default:
            failure = .invalid("unknown command")
        }
        return NBDCompletion(reply: nil, cookie: cookie, error: failure)
    }

    /// Answers a request with `error` without running it.
    private func sendErrorReply(context: ChannelHandlerContext, cookie: UInt64, error: NBDIOError) {
        var reply = context.channel.allocator.buffer(capacity: NBDWire.simpleReplyHeaderSize)
        writeReplyHeader(into: &reply, cookie: cookie, error: error)
        sendReply(context: context, reply)
    }

    /// A reply without data: a structured error chunk (with the message) when structured replies
    /// were negotiated and there is an error, else a simple reply. (A structured connection must
    /// never get a simple reply to a READ; READ successes carry data and are built in `perform`.)
    private func writeReplyHeader(into buffer: inout ByteBuffer, cookie: UInt64, error: NBDIOError?) {
        if structuredReplies, let error {
            let message = Array(String(error.message.prefix(NBDWire.maxErrorMessageCharacters)).utf8)
            buffer.writeInteger(NBDWire.structuredReplyMagic)
            buffer.writeInteger(NBDWire.replyFlagDone)
            buffer.writeInteger(NBDWire.replyTypeError)
            buffer.writeInteger(cookie)
            buffer.writeInteger(UInt32(6 + message.count))
            buffer.writeInteger(error.code.rawValue)
            buffer.writeInteger(UInt16(message.count))
            buffer.writeBytes(message)
        } else {
            buffer.writeInteger(NBDWire.simpleReplyMagic)
            buffer.writeInteger(error?.code.rawValue ?? 0)
            buffer.writeInteger(cookie)
        }
    }

    private func sendReply(context: ChannelHandlerContext, _ reply: ByteBuffer) {
        if case .closed = phase { return }
        context.write(wrapOutboundOut(reply), promise: nil)
        scheduleFlush(context: context)
    }

    // MARK: - Closing

    /// Hangs up on a client that broke the protocol, after sending the replies already written
    /// for its earlier messages (a client that pipelines options gets their answers; a plain
    /// close would throw away the writes not flushed yet).
    private func protocolError(context: ChannelHandlerContext, _ message: String) {
        logger.notice("protocol error, disconnecting client: \(message)")
        closeAfterPendingWrites(context: context)
    }

    /// Closes the connection once everything written so far has reached the socket.
    private func closeAfterPendingWrites(context: ChannelHandlerContext) {
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
    private func maybeFinish(context: ChannelHandlerContext) {
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

    private func beginShutdown(context: ChannelHandlerContext, drain: Bool) {
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

/// Counts open connections per export (for "is this volume in use" checks).
final class NBDConnectionTracker: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    /// The channels in transmission on each export.
    private let channels = Mutex<[String: [ObjectIdentifier: any Channel]]>([:])
    private let peak = Mutex(0)

    /// Records a closed connection's peak of in-flight payload bytes (for tests and diagnostics).
    func recordPeak(inFlightBytes: Int) { peak.withLock { $0 = max($0, inFlightBytes) } }
    var peakInFlightBytes: Int { peak.withLock { $0 } }

    func attach(_ name: String, _ channel: any Channel) {
        counts.withLock { $0[name, default: 0] += 1 }
        channels.withLock { $0[name, default: [:]][ObjectIdentifier(channel)] = channel }
    }
    func detach(_ name: String, _ channel: any Channel) {
        counts.withLock {
            let n = ($0[name] ?? 1) - 1
            $0[name] = n > 0 ? n : nil
        }
        channels.withLock { $0[name]?[ObjectIdentifier(channel)] = nil }
    }
    /// The channels in transmission on export `name`.
    func channels(of name: String) -> [any Channel] { channels.withLock { Array(($0[name] ?? [:]).values) } }
    func count(_ name: String) -> Int { counts.withLock { $0[name] ?? 0 } }
    func total() -> Int { counts.withLock { $0.values.reduce(0, +) } }
}
