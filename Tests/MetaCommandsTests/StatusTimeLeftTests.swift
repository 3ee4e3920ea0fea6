import Foundation
import MetaControl
import MetaDB
import MetaModel
import Testing

/// The time left of background work (the newcomer review: a rebuild's was too long by the
/// number of data columns).
@Suite struct StatusTimeLeftTests {
    func report(_ kind: ResyncKind, columns: Int, bytesPerSecond: Double) -> Double? {
        let devs = (0..<columns).map { _ in UUID() }
        var v = VolumeRecord(name: "d10", type: .raid5, columns: devs.map { ComponentRecord(device: $0) },
                             originalColumnCount: columns, interlaceBlocks: 128, columnBlocks: 128 * 100)
        v.resync = ResyncCheckpoint(kind: kind, column: 1, totalBlocks: 128 * 100)
        let cfg = SetConfig(setName: "s", volumes: [v])
        let r = StatusReport.make(config: cfg, quorum: Quorum(readable: 1, total: 1), live: true,
                                  devicePaths: { _ in nil }, present: { _ in true },
                                  progress: { _ in (kind, 40, 100, bytesPerSecond) }, openCount: { _ in nil })
        return r.volumes[0].resync?.secondsLeft
    }

    @Test func rebuildTimeLeftCountsOneColumn() throws {
        // 60 lines of one 64 KiB unit each at 64 KiB/s: 60 s, whatever the column count.
        for cols in [3, 5, 8] {
            let left = try #require(report(.regenerate, columns: cols, bytesPerSecond: 65536))
            #expect(abs(left - 60) < 0.001, "\(cols) columns: \(left)")
            let copy = try #require(report(.copy, columns: cols, bytesPerSecond: 65536))
            #expect(abs(copy - 60) < 0.001)
        }
    }

    @Test func initialisationTimeLeftCountsWholeLines() throws {
        // Initialisation reports data bytes of whole lines: 60 lines × 4 data units × 64 KiB.
        let left = try #require(report(.initialize, columns: 5, bytesPerSecond: 4 * 65536))
        #expect(abs(left - 60) < 0.001)
    }
}
