import Foundation
import MetaDevices
import Synchronization

/// What a simulated crash keeps of the writes a device has not yet flushed.
public enum CrashKind: String, Sendable, CaseIterable {
    /// The process dies (kill -9): every write it issued reaches the disk.
    case kill
    /// The machine loses power: each unflushed write survives whole, not at all, or torn
    /// (any subset of its 512-byte sectors).
    case powerLoss = "power-loss"
}

/// The clock and fate shared by a simulation's devices: counts the writes and flushes they
/// take, and kills the process (every later I/O fails) at a chosen one.
public final class SimFate: @unchecked Sendable {
    /// Device writes and flushes so far.
    public private(set) var ops = 0
    /// The op at which the process dies (nil: none planned).
    public var crashAt: Int?
    /// The crash that is planned (or happened).
    public var crashKind: CrashKind = .kill
    /// Set once the process is dead: all device I/O fails until ``revive()``.
    public private(set) var dead = false
    var random: SimRandom

    init(seed: UInt64) { random = SimRandom(seed: seed ^ 0xD1B5_4A32_D192_ED03) }

    /// Counts one mutating op; returns true when the process dies at it.
    func tick() -> Bool {
        ops += 1
        if let at = crashAt, ops >= at { dead = true; crashAt = nil; return true }
        return false
    }
    /// Kills the process now (between operations).
    public func die() { dead = true; crashAt = nil }
    func revive() { dead = false }
}

/// A simulated disk with a volatile write cache, faults and a logical sector size.
///
/// Reads see every completed write. A write lands in the cache; ``flush()`` makes the
/// cached writes durable. A crash (see ``CrashKind``) decides what of the cache survives.
/// Single-threaded by design: the simulator runs the engine with no fan-out.
public final class SimDevice: BlockDevice, @unchecked Sendable {
    /// Where the device is now; a device can come back under another name (between starts,
    /// as `/dev` names change after a reboot or a re-plug).
    public var path: String { name.withLock { $0 } }
    private let name: Mutex<String>
    /// Renames the device (only while the set is not open).
    public func rename(_ new: String) { name.withLock { $0 = new } }
    public let sizeBytes: UInt64
    public let logicalSectorSize: Int
    public var physicalSectorSize: Int { logicalSectorSize }
    public var discardZeroes: Bool { true }
    public var isBuffered: Bool { true }

    /// What reads return.
    private var current = PageStore()
    /// What survived the last flush.
    private var durable = PageStore()
    /// Writes since the last flush, in order (offset, length).
    private var pending: [(UInt64, Int)] = []
    let fate: SimFate

    /// Faults in force.
    public var failReads = false
    public var failWrites = false
    /// The device is gone: every I/O fails.
    public var gone = false
    /// Byte ranges whose reads fail (bad sectors).
    public var badReads: [Range<UInt64>] = []
    /// Byte ranges whose writes fail (sectors that cannot be remapped).
    public var badWrites: [Range<UInt64>] = []
    /// Whether any fault is in force.
    public var faulty: Bool { failReads || failWrites || gone || !badReads.isEmpty || !badWrites.isEmpty }
    /// Clears every fault.
    public func heal() { failReads = false; failWrites = false; gone = false; badReads = []; badWrites = [] }
    /// Writes and flushes that reached this device (for tests).
    public private(set) var writes = 0

    public init(path: String, sizeBytes: UInt64, sectorSize: Int = 512, fate: SimFate) {
        self.name = Mutex(path)
        self.sizeBytes = sizeBytes
        self.logicalSectorSize = sectorSize
        self.fate = fate
    }

    private func fail(_ op: DeviceOperation, _ offset: UInt64?, _ len: Int?, _ why: String) -> DeviceError {
        fail(op, offset, len, EIO, why)
    }

    private func fail(_ op: DeviceOperation, _ offset: UInt64?, _ len: Int?, _ errno: Int32,
                      _ why: String) -> DeviceError {
        DeviceError(path: path, operation: op, offset: offset, length: len.map { UInt64($0) }, errno: errno, detail: why)
    }

    private func check(_ op: DeviceOperation, _ offset: UInt64, _ count: Int) throws(DeviceError) {
        if fate.dead { throw fail(op, offset, count, "process is dead (simulated crash)") }
        if gone { throw fail(op, offset, count, ENXIO, "device is gone") }
        if offset % UInt64(logicalSectorSize) != 0 || count % logicalSectorSize != 0 {
            throw fail(op, offset, count, EINVAL, "not aligned to the \(logicalSectorSize)-byte sector size")
        }
        if offset > sizeBytes || UInt64(count) > sizeBytes - offset {
            throw fail(op, offset, count, ENOSPC, "beyond end of device")
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        try check(.read, offset, buffer.count)
        if failReads || badReads.contains(where: { $0.overlaps(offset..<offset + UInt64(buffer.count)) }) {
            throw fail(.read, offset, buffer.count, "injected read error")
        }
        current.read(into: buffer, at: Int(offset))
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        try check(.write, offset, buffer.count)
        if failWrites || badWrites.contains(where: { $0.overlaps(offset..<offset + UInt64(buffer.count)) }) {
            throw fail(.write, offset, buffer.count, "injected write error")
        }
        writes += 1
        if fate.tick() {
            // The process dies during this write: with power loss any subset of its sectors
            // may have reached the cache; a killed process's write is all or nothing.
            var keep = [Bool](repeating: fate.random.chance(0.5), count: buffer.count / 512)
            if fate.crashKind == .powerLoss { for i in keep.indices { keep[i] = fate.random.chance(0.5) } }
            for (i, k) in keep.enumerated() where k {
                store(UnsafeRawBufferPointer(rebasing: buffer[(i * 512)..<(i * 512 + 512)]), at: offset + UInt64(i * 512))
            }
            throw fail(.write, offset, buffer.count, "process is dead (simulated crash)")
        }
        store(buffer, at: offset)
    }

    private func store(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) {
        current.write(buffer, at: Int(offset))
        pending.append((offset, buffer.count))
    }

    public func flush() throws(DeviceError) {
        if fate.dead { throw fail(.flush, nil, nil, "process is dead (simulated crash)") }
        if gone { throw fail(.flush, nil, nil, ENXIO, "device is gone") }
        if failWrites { throw fail(.flush, nil, nil, "injected write error") }
        writes += 1
        if fate.tick() { throw fail(.flush, nil, nil, "process is dead (simulated crash)") }
        makeDurable()
    }

    private func makeDurable() {
        for (o, n) in pending { durable.copy(from: current, at: Int(o), count: n) }
        pending = []
    }

    public func discard(offset: UInt64, length: UInt64) throws(DeviceError) {
        try check(.discard, offset, Int(length))
        if failWrites { throw fail(.discard, offset, Int(length), "injected write error") }
        current.zero(at: Int(offset), count: Int(length))
        pending.append((offset, Int(length)))
    }

    /// What reads would return at `offset`, whatever the process's fate or the faults (a
    /// disk editor's view, for tests).
    public func peek(count: Int, at offset: UInt64) -> [UInt8] { current.bytes(count: count, at: Int(offset)) }

    /// Changes the bytes at `offset` durably, as a disk editor would between runs (for tests).
    public func poke(_ bytes: [UInt8], at offset: UInt64) {
        current.write(bytes, at: Int(offset))
        durable.write(bytes, at: Int(offset))
    }

    /// Applies a crash to the cache. A kill keeps it (the kernel has the writes); a power
    /// loss keeps each unflushed write whole, not at all, or a random subset of its sectors.
    func crash(_ kind: CrashKind, random: inout SimRandom) {
        switch kind {
        case .kill:
            return
        case .powerLoss:
            var survived = durable
            for (o, n) in pending {
                switch random.below(3) {
                case 0: continue
                case 1: survived.copy(from: current, at: Int(o), count: n)
                default:
                    for s in stride(from: Int(o), to: Int(o) + n, by: 512) where random.chance(0.5) {
                        survived.copy(from: current, at: s, count: 512)
                    }
                }
            }
            durable = survived
            current = survived
            pending = []
        }
    }
}

/// A sparse byte image in 4 KiB pages: pages never written read as zeroes, and copies share
/// pages until one side changes them (so a crash's "what survived" costs pages, not images).
struct PageStore {
    static let pageSize = 4096
    private(set) var pages: [Int: [UInt8]] = [:]

    /// Calls `body` with each (page, offset in page, length, offset in the range) that
    /// `offset..<offset+count` covers.
    private static func chunks(_ offset: Int, _ count: Int, _ body: (Int, Int, Int, Int) -> Void) {
        var done = 0
        while done < count {
            let at = offset + done
            let page = at / pageSize, inPage = at % pageSize
            let n = min(pageSize - inPage, count - done)
            body(page, inPage, n, done)
            done += n
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        Self.chunks(offset, buffer.count) { page, inPage, n, done in
            let dst = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + n])
            if let p = pages[page] {
                p.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[inPage..<inPage + n])) }
            } else {
                dst.initializeMemory(as: UInt8.self, repeating: 0)
            }
        }
    }

    func bytes(count: Int, at offset: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { b, n in
            read(into: UnsafeMutableRawBufferPointer(b), at: offset)
            n = count
        }
    }

    mutating func write(_ buffer: UnsafeRawBufferPointer, at offset: Int) {
        Self.chunks(offset, buffer.count) { page, inPage, n, done in
            if n == Self.pageSize {
                pages[page] = [UInt8](buffer[done..<done + n])
                return
            }
            var p = pages.removeValue(forKey: page) ?? [UInt8](repeating: 0, count: Self.pageSize)
            p.withUnsafeMutableBytes {
                UnsafeMutableRawBufferPointer(rebasing: $0[inPage..<inPage + n])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[done..<done + n]))
            }
            pages[page] = p
        }
    }

    mutating func write(_ bytes: [UInt8], at offset: Int) {
        bytes.withUnsafeBytes { write($0, at: offset) }
    }

    /// Makes `offset..<offset+count` hold what `other` holds there.
    mutating func copy(from other: PageStore, at offset: Int, count: Int) {
        Self.chunks(offset, count) { page, inPage, n, _ in
            if n == Self.pageSize {
                pages[page] = other.pages[page]
                return
            }
            let src = other.pages[page]
            if src == nil && pages[page] == nil { return }
            var p = pages.removeValue(forKey: page) ?? [UInt8](repeating: 0, count: Self.pageSize)
            if let src {
                p.replaceSubrange(inPage..<inPage + n, with: src[inPage..<inPage + n])
            } else {
                p.replaceSubrange(inPage..<inPage + n, with: repeatElement(0, count: n))
            }
            pages[page] = p
        }
    }

    /// Zeroes `offset..<offset+count`.
    mutating func zero(at offset: Int, count: Int) {
        Self.chunks(offset, count) { page, inPage, n, _ in
            if n == Self.pageSize { pages[page] = nil; return }
            guard var p = pages.removeValue(forKey: page) else { return }
            p.replaceSubrange(inPage..<inPage + n, with: repeatElement(0, count: n))
            pages[page] = p
        }
    }
}
