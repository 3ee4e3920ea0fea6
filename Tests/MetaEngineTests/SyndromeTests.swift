import Foundation
import MetaDevices
import MetaEngine
import MetaLayout
import MetaTestSupport
import Testing

/// RAID-6 arithmetic: P and Q agree with a byte-wise reference, and every one or two
/// missing units of every line position of a 6-column RAID-6 come back exactly.
@Suite struct SyndromeTests {
    /// Byte-wise reference: multiply by 2 in GF(2^8) with polynomial 0x11D.
    static func times2(_ v: UInt8) -> UInt8 { (v << 1) ^ (v & 0x80 != 0 ? 0x1D : 0) }

    static func referenceQ(_ data: [[UInt8]]) -> [UInt8] {
        var q = [UInt8](repeating: 0, count: data[0].count)
        for d in data.reversed() {  // Horner: Q = D0 + 2(D1 + 2(D2 + …))
            for j in q.indices { q[j] = times2(q[j]) ^ d[j] }
        }
        return q
    }

    @Test("P and Q match the byte-wise reference (aligned SIMD and unaligned lengths)", arguments: [2, 3, 4, 7, 12])
    func generateMatchesReference(dataUnits k: Int) {
        var rng = SeededRNG(seed: UInt64(k))
        for count in [4096, 64, 24] {
            let data = (0..<k).map { _ in (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            let bufs = data.map { d -> AlignedBuffer in
                let b = AlignedBuffer(count: count)
                b.mutableBytes.copyBytes(from: d)
                return b
            }
            let p = AlignedBuffer(count: count), q = AlignedBuffer(count: count)
            Syndrome.generate(data: bufs.map { UnsafeRawPointer($0.base) }, p: p.base, q: q.base, count: count)
            let wantP = (0..<count).map { j in data.reduce(0) { $0 ^ $1[j] } }
            #expect(Array(p.bytes) == wantP)
            #expect(Array(q.bytes) == Self.referenceQ(data))
            withExtendedLifetime(bufs) {}
        }
    }

    @Test("every single and double loss, on every line position of a 6-column RAID-6")
    func everyPairRecovers() {
        let n = 6
        let layout = RAID5Layout(originalColumns: n, interlaceBlocks: 8, columnBlocks: 8 * UInt64(n), parityCount: 2)
        let count = 4096
        var rng = SeededRNG(seed: 6)
        for line in 0..<UInt64(n) {
            // A consistent line: random data units, P and Q computed.
            let cols = (0..<n).map { _ in AlignedBuffer(count: count) }
            for c in layout.dataColumns(line: line) {
                for j in 0..<count { cols[c].mutableBytes[j] = UInt8.random(in: 0...255, using: &rng) }
            }
            let order = layout.dataColumnsInUnitOrder(line: line)
            Syndrome.generate(data: order.map { UnsafeRawPointer(cols[$0].base) }, p: cols[layout.parityColumn(line: line)].base,
                              q: cols[layout.qColumn(line: line)!].base, count: count)
            var lost: [[Int]] = (0..<n).map { [$0] }
            for a in 0..<n { for b in (a + 1)..<n { lost.append([a, b]) } }
            for missing in lost {
                let outs = missing.map { _ in AlignedBuffer(count: count) }
                let have = (0..<n).filter { !missing.contains($0) }.map { (column: $0, bytes: UnsafeRawPointer(cols[$0].base)) }
                let ok = Syndrome.recover(layout, line: line, have: have,
                                          want: missing.enumerated().map { (column: $0.element, bytes: outs[$0.offset].base) },
                                          count: count)
                #expect(ok, "line \(line) missing \(missing)")
                for (i, c) in missing.enumerated() {
                    #expect(Array(outs[i].bytes) == Array(cols[c].bytes), "line \(line) missing \(missing): column \(c) differs")
                }
                withExtendedLifetime(outs) {}
            }
            // Three missing columns cannot be recovered.
            let have3 = (3..<n).map { (column: $0, bytes: UnsafeRawPointer(cols[$0].base)) }
            let junk = AlignedBuffer(count: count)
            #expect(!Syndrome.recover(layout, line: line, have: have3, want: [(column: 0, bytes: junk.base)], count: count))
            withExtendedLifetime(cols) {}
        }
    }
}
