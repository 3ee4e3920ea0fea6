import CISAL

/// XOR parity over equal-length buffers.
///
/// Uses ISA-L's `xor_gen` (SIMD, chosen at run time) when every pointer is 32-byte aligned
/// and the length a multiple of 32, and a word-wise loop otherwise.
public enum Parity {
    /// `dest = sources[0] ^ sources[1] ^ …`. `dest` may not alias a source.
    public static func xor(sources: [UnsafeRawPointer], into dest: UnsafeMutableRawPointer, count: Int) {
        if sources.isEmpty { dest.initializeMemory(as: UInt8.self, repeating: 0, count: count); return }
        if sources.count == 1 { dest.copyMemory(from: sources[0], byteCount: count); return }
        let aligned = count % 32 == 0 && Int(bitPattern: dest) % 32 == 0
            && sources.allSatisfy { Int(bitPattern: $0) % 32 == 0 }
        if aligned && count > 0 {
            var ptrs: [UnsafeMutableRawPointer?] = sources.map { UnsafeMutableRawPointer(mutating: $0) }
            ptrs.append(dest)
            let rc = ptrs.withUnsafeMutableBufferPointer { buf in
                xor_gen(Int32(buf.count), Int32(count), buf.baseAddress)
            }
            if rc == 0 { return }
        }
        plainXor(sources: sources, into: dest, count: count)
    }

    /// `dest ^= source` in place.
    public static func xorInPlace(_ dest: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, count: Int) {
        xor(sources: [UnsafeRawPointer(dest), source], into: dest, count: count)
    }

    /// `dest ^= a ^ b` in place, with no allocation (the read-modify-write parity update).
    /// Pointers need no alignment; aligned ones go through ISA-L.
    public static func xorInPlace(_ dest: UnsafeMutableRawPointer, _ a: UnsafeRawPointer, _ b: UnsafeRawPointer,
                                  count: Int) {
        let aligned = count % 32 == 0 && count > 0
            && (Int(bitPattern: dest) | Int(bitPattern: a) | Int(bitPattern: b)) % 32 == 0
        if aligned {
            let rc = withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: 4) { ptrs in
                ptrs[0] = dest
                ptrs[1] = UnsafeMutableRawPointer(mutating: a)
                ptrs[2] = UnsafeMutableRawPointer(mutating: b)
                ptrs[3] = dest
                return xor_gen(4, Int32(count), ptrs.baseAddress)
            }
            if rc == 0 { return }
        }
        let words = count / 8
        let d = dest.assumingMemoryBound(to: UInt8.self)
        for i in 0..<words {
            let o = i * 8
            let v = dest.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                ^ a.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                ^ b.loadUnaligned(fromByteOffset: o, as: UInt64.self)
            dest.storeBytes(of: v, toByteOffset: o, as: UInt64.self)
        }
        for i in (words * 8)..<count {
            d[i] ^= a.load(fromByteOffset: i, as: UInt8.self) ^ b.load(fromByteOffset: i, as: UInt8.self)
        }
    }

    /// The portable loop (also the benchmark's baseline).
    public static func plainXor(sources: [UnsafeRawPointer], into dest: UnsafeMutableRawPointer, count: Int) {
        let words = count / 8
        let d = dest.assumingMemoryBound(to: UInt64.self)
        if words > 0 {
            let s0 = sources[0]
            for i in 0..<words { d[i] = s0.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) }
            for s in sources.dropFirst() {
                for i in 0..<words { d[i] ^= s.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) }
            }
        }
        let db = dest.assumingMemoryBound(to: UInt8.self)
        for i in (words * 8)..<count {
            var v: UInt8 = 0
            for s in sources { v ^= s.load(fromByteOffset: i, as: UInt8.self) }
            db[i] = v
        }
    }
}
