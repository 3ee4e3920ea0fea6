import Foundation
import CISAL
import MetaDevices
import MetaLayout

/// RAID-6 arithmetic: P and Q generation, and the recovery of any one or two units of a line
/// from the others.
///
/// A line of `K` data units `D_0 … D_{K−1}` has `P = Σ D_k` and `Q = Σ g^k·D_k` over GF(2^8)
/// (generator 2, polynomial 0x11D: the field of md's RAID-6 and of ISA-L). Every unit of the
/// line is a row vector over the data units: `D_k` is the unit vector `e_k`, `P` is all ones,
/// `Q` is `(g^0, …, g^{K−1})`. Recovering units means choosing `K` present units whose rows
/// are independent (present data units first, then P, then Q), inverting that matrix, and
/// multiplying: each wanted unit is then a fixed linear combination of the chosen ones,
/// which ISA-L's `ec_encode_data` computes in one SIMD pass. The common cases take faster
/// paths: P and Q from all data (ISA-L `pq_gen`), one data unit from P (`xor_gen`).
public enum Syndrome {
    /// What a column is in a line.
    public enum Role: Equatable, Sendable {
        case data(Int), p, q
    }

    /// The role of `column` in `line`.
    public static func role(_ layout: RAID5Layout, column: Int, line: UInt64) -> Role {
        if column == layout.parityColumn(line: line) { return .p }
        if column == layout.qColumn(line: line) { return .q }
        return .data(layout.syndromeIndex(column: column, line: line)!)
    }

    /// `g^k` in GF(2^8).
    public static func power(_ k: Int) -> UInt8 {
        var v: UInt8 = 1
        for _ in 0..<(k % 255) { v = gf_mul(v, 2) }
        return v
    }

    /// The row vector of a unit over `K` data units.
    static func row(_ role: Role, dataUnits K: Int) -> [UInt8] {
        switch role {
        case .data(let k): return (0..<K).map { $0 == k ? 1 : 0 }
        case .p: return [UInt8](repeating: 1, count: K)
        case .q: return (0..<K).map { power($0) }
        }
    }

    /// `p = Σ data`, and `q = Σ g^k·data[k]` when `q` is given. Buffers must not overlap.
    public static func generate(data: [UnsafeRawPointer], p: UnsafeMutableRawPointer, q: UnsafeMutableRawPointer?, count: Int) {
        guard let q else {
            Parity.xor(sources: data, into: p, count: count)
            return
        }
        if data.count == 1 {
            // One data unit: P = Q = D_0.
            p.copyMemory(from: data[0], byteCount: count)
            q.copyMemory(from: data[0], byteCount: count)
            return
        }
        var ptrs: [UnsafeMutableRawPointer?] = data.map { UnsafeMutableRawPointer(mutating: $0) }
        ptrs.append(p)
        ptrs.append(q)
        let aligned = count % 32 == 0 && count > 0 && ptrs.allSatisfy { Int(bitPattern: $0!) % 32 == 0 }
        let rc = ptrs.withUnsafeMutableBufferPointer { buf in
            aligned ? pq_gen(Int32(buf.count), Int32(count), buf.baseAddress)
                : (count % 8 == 0 ? pq_gen_base(Int32(buf.count), Int32(count), buf.baseAddress) : 1)
        }
        if rc == 0 { return }
        // Lengths that are not a multiple of 8 (not used by the engine): the general path.
        let K = data.count
        combine(rows: [row(.p, dataUnits: K), row(.q, dataUnits: K)], sources: data, into: [p, q], count: count)
    }

    /// `dest ^= coefficient·source` over GF(2^8) (RAID-6's read-modify-write of Q).
    public static func multiplyAdd(_ coefficient: UInt8, _ source: UnsafeRawPointer, into dest: UnsafeMutableRawPointer, count: Int) {
        if coefficient == 1 {
            Parity.xorInPlace(dest, source, count: count)
            return
        }
        let s = source.assumingMemoryBound(to: UInt8.self), d = dest.assumingMemoryBound(to: UInt8.self)
        if count < 64 {
            for i in 0..<count { d[i] ^= gf_mul(coefficient, s[i]) }
            return
        }
        var c = coefficient
        var table = [UInt8](repeating: 0, count: 32)
        ec_init_tables(1, 1, &c, &table)
        gf_vect_mad(Int32(count), 1, 0, &table, UnsafeMutablePointer(mutating: s), d)
    }

    /// Whether `p` and `q` are P and Q of `data` (ISA-L `pq_check`, one pass, on 32-byte
    /// aligned buffers whose length is a multiple of 32; otherwise by computing them).
    public static func check(data: [UnsafeRawPointer], p: UnsafeRawPointer, q: UnsafeRawPointer, count: Int) -> Bool {
        var ptrs: [UnsafeMutableRawPointer?] = (data + [p, q]).map { UnsafeMutableRawPointer(mutating: $0) }
        let aligned = data.count >= 2 && count % 32 == 0 && count > 0 && ptrs.allSatisfy { Int(bitPattern: $0!) % 32 == 0 }
        if aligned {
            return ptrs.withUnsafeMutableBufferPointer { pq_check(Int32($0.count), Int32(count), $0.baseAddress) } == 0
        }
        let wantP = AlignedBuffer(uninitializedCount: count), wantQ = AlignedBuffer(uninitializedCount: count)
        generate(data: data, p: wantP.base, q: wantQ.base, count: count)
        return memcmp(wantP.base, p, count) == 0 && memcmp(wantQ.base, q, count) == 0
    }

    /// `outs[r] = Σ_j rows[r][j]·sources[j]` over GF(2^8).
    static func combine(rows: [[UInt8]], sources: [UnsafeRawPointer], into outs: [UnsafeMutableRawPointer], count: Int) {
        let k = sources.count
        var a = rows.flatMap { $0 }
        var tables = [UInt8](repeating: 0, count: 32 * k * rows.count)
        ec_init_tables(Int32(k), Int32(rows.count), &a, &tables)
        var src: [UnsafeMutablePointer<UInt8>?] = sources.map { UnsafeMutableRawPointer(mutating: $0).assumingMemoryBound(to: UInt8.self) }
        var dst: [UnsafeMutablePointer<UInt8>?] = outs.map { $0.assumingMemoryBound(to: UInt8.self) }
        ec_encode_data(Int32(count), Int32(k), Int32(rows.count), &tables, &src, &dst)
    }

    /// Computes the units of `want` from those of `have` (the same byte range of each column
    /// of `line`). `have` must hold every column of the line but those of `want` and at most
    /// `parityCount − want.count` others. Returns false when the units cannot be recovered
    /// (too few columns).
    @discardableResult
    public static func recover(_ layout: RAID5Layout, line: UInt64, have: [(column: Int, bytes: UnsafeRawPointer)],
                               want: [(column: Int, bytes: UnsafeMutableRawPointer)], count: Int) -> Bool {
        if want.isEmpty { return true }
        let K = layout.dataColumnsPerLine
        let haveRoles = have.map { role(layout, column: $0.column, line: line) }
        let wantRoles = want.map { role(layout, column: $0.column, line: line) }
        var dataAt = [UnsafeRawPointer?](repeating: nil, count: K)
        var pAt: UnsafeRawPointer? = nil, qAt: UnsafeRawPointer? = nil
        for (i, r) in haveRoles.enumerated() {
            switch r {
            case .data(let k): dataAt[k] = have[i].bytes
            case .p: pAt = have[i].bytes
            case .q: qAt = have[i].bytes
            }
        }
        let presentData = dataAt.compactMap { $0 }
        // Fast path: only P and/or Q wanted, every data unit present.
        if presentData.count == K && wantRoles.allSatisfy({ !isData($0) }) {
            let wp = want.first { role(layout, column: $0.column, line: line) == .p }?.bytes
            let wq = want.first { role(layout, column: $0.column, line: line) == .q }?.bytes
            if let wp, wq == nil {
                Parity.xor(sources: presentData, into: wp, count: count)
            } else if let wq {
                let scratch = wp == nil ? AlignedBuffer(uninitializedCount: count) : nil
                defer { withExtendedLifetime(scratch) {} }
                generate(data: presentData, p: wp ?? scratch!.base, q: wq, count: count)
            }
            return true
        }
        // Fast path: one data unit wanted, P and every other data unit present.
        if want.count == 1, isData(wantRoles[0]), let pAt, presentData.count == K - 1 {
            Parity.xor(sources: presentData + [pAt], into: want[0].bytes, count: count)
            return true
        }
        // General: K independent present units, inverted.
        var basis: [(Role, UnsafeRawPointer)] = []
        for k in 0..<K { if let d = dataAt[k] { basis.append((.data(k), d)) } }
        if basis.count < K, let pAt { basis.append((.p, pAt)) }
        if basis.count < K, let qAt { basis.append((.q, qAt)) }
        guard basis.count == K else { return false }
        var m = basis.flatMap { row($0.0, dataUnits: K) }
        var inv = [UInt8](repeating: 0, count: K * K)
        guard gf_invert_matrix(&m, &inv, Int32(K)) == 0 else { return false }
        let rows: [[UInt8]] = wantRoles.map { r in
            let w = row(r, dataUnits: K)
            return (0..<K).map { j in
                var s: UInt8 = 0
                for i in 0..<K where w[i] != 0 { s ^= gf_mul(w[i], inv[i * K + j]) }
                return s
            }
        }
        combine(rows: rows, sources: basis.map(\.1), into: want.map(\.bytes), count: count)
        return true
    }

    /// The data unit index `z` with `sq = g^z·sp` at every byte (and `sq = 0` where `sp = 0`),
    /// or nil when there is none: the one data unit the two syndromes of a line blame.
    public static func locate(sp: UnsafeRawPointer, sq: UnsafeRawPointer, count: Int) -> Int? {
        let a = sp.assumingMemoryBound(to: UInt8.self), b = sq.assumingMemoryBound(to: UInt8.self)
        var ratio: UInt8? = nil
        for i in 0..<count {
            if a[i] == 0 {
                if b[i] != 0 { return nil }
                continue
            }
            let r = gf_mul(b[i], gf_inv(a[i]))
            if let known = ratio, known != r { return nil }
            ratio = r
        }
        guard let ratio else { return nil }
        return logTable[Int(ratio)]
    }

    /// `log_g(v)` for every nonzero byte (nil for 0).
    static let logTable: [Int?] = {
        var t = [Int?](repeating: nil, count: 256)
        var v: UInt8 = 1
        for k in 0..<255 {
            t[Int(v)] = k
            v = gf_mul(v, 2)
        }
        return t
    }()

    static func isData(_ r: Role) -> Bool {
        if case .data = r { return true }
        return false
    }
}
