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

/// The connection handler: transmission.
extension NBDConnectionHandler {
    func handleRequest(context: ChannelHandlerContext, flags: UInt16, type: UInt16, cookie: UInt64,
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
    struct Target {
        let handler: NBDConnectionHandler
        let context: ChannelHandlerContext
    }

    /// Sends the replies of every finished request, flushes once, and resumes reading if below the limits.
    func drainCompletions(context: ChannelHandlerContext) {
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
    func validate(export: any NBDExport, flags: UInt16, type: UInt16, offset: UInt64,
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
    func sendErrorReply(context: ChannelHandlerContext, cookie: UInt64, error: NBDIOError) {
        var reply = context.channel.allocator.buffer(capacity: NBDWire.simpleReplyHeaderSize)
        writeReplyHeader(into: &reply, cookie: cookie, error: error)
        sendReply(context: context, reply)
    }

    /// A reply without data: a structured error chunk (with the message) when structured replies
    /// were negotiated and there is an error, else a simple reply. (A structured connection must
    /// never get a simple reply to a READ; READ successes carry data and are built in `perform`.)
    func writeReplyHeader(into buffer: inout ByteBuffer, cookie: UInt64, error: NBDIOError?) {
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

    func sendReply(context: ChannelHandlerContext, _ reply: ByteBuffer) {
        if case .closed = phase { return }
        context.write(wrapOutboundOut(reply), promise: nil)
        scheduleFlush(context: context)
    }
}
