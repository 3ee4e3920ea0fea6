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

/// The connection handler: handshake.
extension NBDConnectionHandler {
    func handleOption(context: ChannelHandlerContext, option: UInt32, data: inout ByteBuffer) {
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

    func handleInfoOrGo(context: ChannelHandlerContext, option: UInt32, data: inout ByteBuffer) {
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
    func startTLS(context: ChannelHandlerContext) {
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

    func enterTransmission(export: any NBDExport, size: UInt64, channel: any Channel) {
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

    func transmissionFlags(_ export: any NBDExport) -> UInt16 {
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

    func sendOptionReply(context: ChannelHandlerContext, option: UInt32, type: UInt32,
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
}
