import Foundation
import MetaTestSupport
import MetaDB
import MetaModel
import MetaDevices
import Testing

/// Random corruption of replicas and labels: load never crashes, never returns a
/// configuration that was not committed, and reports what it skipped.
@Suite struct CorruptionTests {
    struct Fixture {
        var snaps: [[UInt8]]
        var committed: [SetConfig]
        /// Checksummed byte ranges per device (labels, slot headers, payloads).
        var covered: [[Range<Int>]]
    }

    static func fixture() throws -> Fixture {
        let mems = memDevices(3, size: 1 << 20)
        let db = try SetDatabase.create(setName: "c", devices: [(mems[0], 2), (mems[1], 1), (mems[2], 1)],
                                        slotSize: testSlot)
        var committed = [db.config]
        for i in 0..<3 {
            try db.commit { $0.volumes.append(sampleVolume("d\(i)", tag: i)) }
            committed.append(db.config)
        }
        let payloadMax = try ConfigCodec.encode(db.config).count
        var covered: [[Range<Int>]] = []
        for (i, _) in mems.enumerated() {
            var r: [Range<Int>] = [0..<8192]
            for loc in db.config.replicas where loc.device == db.config.devices[i].uuid {
                for s in 0..<2 {
                    let start = Int(loc.offsetBytes) + s * Int(testSlot)
                    r.append(start..<(start + 512 + payloadMax / 2))
                }
            }
            covered.append(r)
        }
        return Fixture(snaps: mems.map { $0.snapshot() }, committed: committed, covered: covered)
    }

    @Test func randomCorruption() throws {
        let fx = try Self.fixture()
        var stats = (loaded: 0, refused: 0)
        for seed in 0..<300 {
            var rng = SeededRNG(seed: UInt64(seed))
            var snaps = fx.snaps
            var hitCovered = false
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let d = Int.random(in: 0..<snaps.count, using: &rng)
                let region = fx.covered[d].randomElement(using: &rng)!
                let at = Int.random(in: region, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: // flip one byte
                    snaps[d][at] ^= UInt8.random(in: 1...255, using: &rng)
                case 1: // zero a sector
                    let s = at / 512 * 512
                    for i in s..<(s + 512) { snaps[d][i] = 0 }
                case 2: // garbage sector
                    let s = at / 512 * 512
                    for i in s..<(s + 512) { snaps[d][i] = UInt8.random(in: 0...255, using: &rng) }
                default: // a sector copied from elsewhere on another device (stale or foreign data)
                    let src = Int.random(in: 0..<snaps.count, using: &rng)
                    let from = Int.random(in: 0..<(snaps[src].count / 512), using: &rng) * 512
                    let s = at / 512 * 512
                    let before = Array(snaps[d][s..<(s + 512)])
                    for i in 0..<512 { snaps[d][s + i] = snaps[src][from + i] }
                    _ = before
                }
            }
            for d in snaps.indices {
                for r in fx.covered[d] where snaps[d][r] != fx.snaps[d][r] { hitCovered = true }
            }
            let devs = CrashTests.fresh(snaps)
            do {
                let db = try SetDatabase(devices: devs, mode: .readOnly)
                #expect(fx.committed.contains(db.config), "seed \(seed): returned a configuration never committed")
                let reported = !db.skippedWhileLoading.isEmpty
                    || db.replicaStatus.contains { $0.state != .active || !$0.problems.isEmpty }
                // A change to checksummed bytes is noticed (unless it restored the very same bytes).
                if hitCovered && !reported {
                    var diffs: [String] = []
                    for d in snaps.indices { for r in fx.covered[d] where snaps[d][r] != fx.snaps[d][r] { diffs.append("dev\(d) \(r) first=\(r.first { snaps[d][$0] != fx.snaps[d][$0] }!) zeroHeader=\(snaps[d][r.lowerBound..<(r.lowerBound + 512)].allSatisfy { $0 == 0 })") } }
                    Issue.record("seed \(seed): corruption not reported: \(diffs)")
                }
                stats.loaded += 1
            } catch is DatabaseError {
                stats.refused += 1
            }
        }
        #expect(stats.loaded > 200)
    }

    /// Whole devices of garbage (and garbage with a valid label magic) never crash a load.
    @Test func garbageDevices() throws {
        for seed in 0..<50 {
            var rng = SeededRNG(seed: UInt64(1000 + seed))
            let m = MemoryDevice(path: "g", sizeBytes: 256 << 10)
            var bytes = (0..<(256 << 10)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if seed % 2 == 0 { for (i, c) in Label.magic.enumerated() { bytes[i] = c } }
            m.restore(bytes)
            #expect(Label.read(from: m).label == nil)
            #expect(throws: DatabaseError.self) { _ = try SetDatabase(devices: [m], mode: .readOnly) }
        }
    }

    @Test func tornLabelCopyStillOpens() throws {
        let mems = memDevices(1)
        let db = try SetDatabase.create(setName: "c", devices: [(mems[0], 1)], slotSize: testSlot)
        let expected = db.config
        for copy in 0..<2 {
            var b = mems[0].snapshot()
            let saved = Array(b[(copy * 4096)..<(copy * 4096 + 4096)])
            for i in (copy * 4096 + 1000)..<(copy * 4096 + 1512) { b[i] = 0xAA }
            mems[0].restore(b)
            let again = try SetDatabase(devices: mems, mode: .readOnly)
            #expect(again.config == expected)
            #expect(again.skippedWhileLoading.contains { $0.contains("label copy \(copy)") })
            for i in 0..<4096 { b[copy * 4096 + i] = saved[i] }
            mems[0].restore(b)
        }
    }

    @Test func newerLabelVersionIsRefusedClearly() throws {
        let mems = memDevices(1)
        _ = try SetDatabase.create(setName: "c", devices: [(mems[0], 1)], slotSize: testSlot)
        var label = try #require(Label.read(from: mems[0]).label)
        label.version = 2
        try label.write(to: mems[0])
        do {
            _ = try SetDatabase(devices: mems, mode: .readOnly)
            Issue.record("newer label accepted")
        } catch let e as DatabaseError {
            #expect(e.description.contains("newer metactl"))
        }
        #expect(Label.read(from: mems[0]).problems.contains { if case .newerVersion(2) = $0.failure { true } else { false } })
    }

    @Test func newerConfigFormatIsRefusedClearly() throws {
        let mems = memDevices(1)
        let db = try SetDatabase.create(setName: "c", devices: [(mems[0], 1)], slotSize: testSlot)
        // Write a generation whose payload claims a newer format version.
        var text = String(decoding: try ConfigCodec.encode(db.config), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"formatVersion\":1", with: "\"formatVersion\":99")
        #expect(text.contains("\"formatVersion\":99"))
        // Build the slot by hand, following docs/FORMAT.md, into the unused slot 1 of replica 0.
        let payload = Array(text.utf8)
        var header = [UInt8](repeating: 0, count: 512)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { header[at + i] = b } }
        }
        for (i, c) in "METADB01".utf8.enumerated() { header[i] = c }
        put(UInt32(1), 8); put(UInt32(512), 12)
        let u = db.setUUID.uuid
        for (i, b) in [u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15].enumerated() { header[16 + i] = b }
        put(UInt64(9), 32); put(UInt64(payload.count), 40); put(CRC32C.checksum(payload), 48)
        put(CRC32C.checksum(header[0..<508]), 508)
        var slot = header + payload
        slot += [UInt8](repeating: 0, count: (4096 - slot.count % 4096) % 4096)
        let loc = db.config.replicas[0]
        try mems[0].write(bytes: slot, at: loc.offsetBytes + loc.sizeBytes / 2)
        do {
            _ = try SetDatabase(devices: mems, mode: .readOnly)
            Issue.record("newer configuration accepted")
        } catch let e as DatabaseError {
            #expect(e.description.contains("newer metactl"))
        }
    }
}
