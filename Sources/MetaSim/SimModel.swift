import Foundation

/// What every 512-byte block of the volume may legally hold, as the simulator's clients
/// know it: the contract of `SPEC.md`'s "Never wrong data", made executable.
///
/// Every write fills each block with a pattern that names the write and the block, so a
/// read can tell which write a block came from (write 0: never written, all zeroes) and
/// whether the bytes are anything the volume was ever given for that block.
public struct SimModel: Sendable {
    public static let blockSize = 512
    /// Per block: the writes a read may return now.
    var current: [[UInt32]]
    /// Per block: the writes that may be on stable storage (after the last flush).
    var durable: [[UInt32]]
    /// Per block: writes issued since the last flush.
    var sinceFlush: [[UInt32]]
    /// Whether the scenario may have lost data legitimately (a crash while a column was
    /// missing, two failures): reads may then fail with EIO, but still never return wrong bytes.
    public var lossy = false
    public private(set) var nextWrite: UInt32 = 1
    /// Per block: failed writes whose write-log record a replay at the next start may still
    /// complete (a read that sees the old value does not rule the new one out until then).
    var unsettled: [Int: [UInt32]] = [:]

    public init(blocks: Int) {
        current = Array(repeating: [0], count: blocks)
        durable = current
        sinceFlush = Array(repeating: [], count: blocks)
    }

    public var blocks: Int { current.count }

    /// The bytes write `id` puts into `block`.
    public static func pattern(_ id: UInt32, block: Int, into dst: UnsafeMutableRawBufferPointer) {
        if id == 0 { dst.initializeMemory(as: UInt8.self, repeating: 0); return }
        var x = UInt64(id) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(block) &* 0xC2B2_AE3D_27D4_EB4F
        for i in stride(from: 0, to: blockSize, by: 8) {
            x ^= x >> 29; x &*= 0xBF58_476D_1CE4_E5B9; x ^= x >> 32
            dst.storeBytes(of: i == 0 ? (UInt64(id) << 32 | UInt64(block & 0xFFFF_FFFF)) : x, toByteOffset: i, as: UInt64.self)
        }
    }

    /// Which write a block's bytes came from, or nil when they are no write's bytes for it.
    public static func identify(_ bytes: UnsafeRawBufferPointer, block: Int) -> UInt32? {
        let head = bytes.loadUnaligned(as: UInt64.self)
        let id = UInt32(truncatingIfNeeded: head >> 32)
        var expect = [UInt8](repeating: 0, count: blockSize)
        expect.withUnsafeMutableBytes { pattern(id, block: block, into: $0) }
        return expect.withUnsafeBytes { $0.elementsEqual(bytes) } ? id : nil
    }

    /// A block that a sub-sector write changed only in part: what it held before (`base`) and
    /// the bytes of the block the write replaced (with its own pattern).
    struct Partial: Sendable { var base: UInt32; var bytes: Range<Int> }
    /// Sub-sector writes' partial blocks, by (write, block).
    var partials: [UInt64: Partial] = [:]
    static func key(_ id: UInt32, _ block: Int) -> UInt64 { UInt64(id) << 32 | UInt64(UInt32(truncatingIfNeeded: block)) }

    /// Records that write `id` replaces only `bytes` of `block`, which held `base` (the one
    /// value it may legally hold when the write is issued).
    public mutating func partial(_ id: UInt32, block: Int, bytes: Range<Int>, base: UInt32) {
        partials[Self.key(id, block)] = Partial(base: base, bytes: bytes)
    }

    /// The one value `block` may legally hold now, if there is exactly one.
    public func onlyValue(_ block: Int) -> UInt32? {
        current[block].count == 1 && unsettled[block] == nil ? current[block][0] : nil
    }

    /// The bytes `block` holds when its value is write `id` (a partial write's block: its base
    /// with the written bytes replaced).
    public func expected(_ id: UInt32, block: Int, into dst: UnsafeMutableRawBufferPointer) {
        guard let p = partials[Self.key(id, block)] else { Self.pattern(id, block: block, into: dst); return }
        expected(p.base, block: block, into: dst)
        var own = [UInt8](repeating: 0, count: Self.blockSize)
        own.withUnsafeMutableBytes { Self.pattern(id, block: block, into: $0) }
        for i in p.bytes { dst[i] = own[i] }
    }

    /// Which of `candidates` match `bytes` at byte `from` of `block`.
    func matching(_ bytes: UnsafeRawBufferPointer, block: Int, from: Int, candidates: [UInt32]) -> [UInt32] {
        var buf = [UInt8](repeating: 0, count: Self.blockSize)
        return candidates.filter { id in
            buf.withUnsafeMutableBytes { expected(id, block: block, into: $0) }
            return buf[from..<from + bytes.count].elementsEqual(bytes)
        }
    }

    /// A new write's id.
    public mutating func newWrite() -> UInt32 {
        defer { nextWrite += 1 }
        return nextWrite
    }

    /// The write was acknowledged.
    public mutating func acked(_ id: UInt32, blocks r: Range<Int>) {
        for b in r { current[b] = [id]; sinceFlush[b].append(id); unsettled[b] = nil }
    }

    /// A failed write (`id`, write-zeroes: 0) whose log record may be replayed at the next start.
    public mutating func replayable(_ id: UInt32, blocks r: Range<Int>) {
        for b in r where !(unsettled[b]?.contains(id) ?? false) { unsettled[b, default: []].append(id) }
    }

    /// The volume was opened again: replays are done, what reads see stays.
    public mutating func settle() { unsettled = [:] }

    /// The write failed or was cut off by a crash: each block holds its old or its new value.
    public mutating func uncertain(_ id: UInt32, blocks r: Range<Int>) {
        for b in r {
            if !current[b].contains(id) { current[b].append(id) }
            sinceFlush[b].append(id)
        }
    }

    /// The volume grew to `blocks`: the new blocks were zeroed (and flushed) before the grow
    /// was committed.
    public mutating func grow(to blocks: Int) {
        guard blocks > current.count else { return }
        let n = blocks - current.count
        current += Array(repeating: [0], count: n)
        durable += Array(repeating: [0], count: n)
        sinceFlush += Array(repeating: [], count: n)
    }

    /// A flush succeeded: what reads return now is durable.
    public mutating func flushed() {
        for b in current.indices { durable[b] = current[b]; sinceFlush[b] = [] }
    }

    /// Power loss: a block may hold its durable value or anything written since.
    public mutating func lostPower() {
        for b in current.indices {
            var all = durable[b]
            for id in sinceFlush[b] + current[b] where !all.contains(id) { all.append(id) }
            current[b] = all
            durable[b] = all
            sinceFlush[b] = []
        }
    }

    /// Checks a successful read of `r` returned into `buffer`; narrows each block to the
    /// value seen. Returns a description of the first violation.
    public mutating func checkRead(_ buffer: UnsafeRawBufferPointer, blocks r: Range<Int>) -> String? {
        for (i, b) in r.enumerated() {
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[(i * Self.blockSize)..<((i + 1) * Self.blockSize)])
            guard let id = matching(bytes, block: b, from: 0, candidates: current[b]).first else {
                guard let id = Self.identify(bytes, block: b) else {
                    return "block \(b): bytes that no write put there (head \(String(bytes.loadUnaligned(as: UInt64.self), radix: 16)); legal: writes \(current[b]))"
                }
                return "block \(b): holds write \(id), legal now: writes \(current[b])"
            }
            current[b] = [id] + (unsettled[b] ?? []).filter { $0 != id }
        }
        return nil
    }

    /// Checks a successful read of bytes `at..<at + buffer.count` (any alignment); narrows
    /// each block to the values that agree with what was seen of it.
    public mutating func checkRead(_ buffer: UnsafeRawBufferPointer, byteOffset at: Int) -> String? {
        var done = 0
        while done < buffer.count {
            let b = (at + done) / Self.blockSize, from = (at + done) % Self.blockSize
            let n = min(Self.blockSize - from, buffer.count - done)
            let seen = UnsafeRawBufferPointer(rebasing: buffer[done..<done + n])
            let agree = matching(seen, block: b, from: from, candidates: current[b])
            if agree.isEmpty {
                return "block \(b) bytes \(from)..<\(from + n): no legal value of the block has these bytes (legal: writes \(current[b]))"
            }
            current[b] = agree + (unsettled[b] ?? []).filter { !agree.contains($0) }
            done += n
        }
        return nil
    }
}
