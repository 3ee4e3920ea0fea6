import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine
import Testing

/// A volume closed for I/O (`clear -f` with clients connected, review item 12) refuses every
/// byte-level request and waits for the ones in progress.
@Suite struct CloseForIOTests {
    static func expectRefused(_ v: Volume, _ what: String, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("\(what) was not refused")
        } catch let error as VolumeIOError {
            #expect(error.code == .io, "\(what)")
            #expect(error.description.contains("volume was cleared"), "\(what): \(error)")
        } catch {
            Issue.record("\(what): unexpected \(error)")
        }
    }

    @Test(arguments: [VolumeType.stripe, .raid5])
    func closedVolumeRefusesIOAfterRequestsInProgressReturned(_ type: VolumeType) throws {
        let f = try EngineFixture(type: type, columns: 3)
        try f.write(0, [UInt8](repeating: 1, count: 4096))
        // A write that is stuck in a device while the volume is closed.
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        f.devices[0].onError { _ in entered.signal(); release.wait() }
        f.devices[0].updateFaults { $0.failWrites = true }
        let done = DispatchSemaphore(value: 0)
        let volume = f.volume
        Thread {
            let b = [UInt8](repeating: 2, count: 4096)
            _ = try? b.withUnsafeBytes { raw in try volume.write(offset: 0, from: raw) }
            done.signal()
        }.start()
        entered.wait()
        #expect(!volume.closeForIO(reason: "volume was cleared", timeout: 0.2), "a request is still in progress")
        #expect(volume.isClosed)
        var buf = [UInt8](repeating: 0, count: 4096)
        Self.expectRefused(volume, "read") {
            try buf.withUnsafeMutableBytes { raw in try volume.read(offset: 8192, into: raw) }
        }
        Self.expectRefused(volume, "write") {
            try buf.withUnsafeBytes { raw in try volume.write(offset: 8192, from: raw) }
        }
        Self.expectRefused(volume, "write-zeroes") {
            try volume.writeZeroes(offset: 0, length: 65536)
        }
        Self.expectRefused(volume, "trim") { try volume.discard(offset: 0, length: 65536) }
        Self.expectRefused(volume, "flush") { try volume.flushRequest() }
        f.devices[0].onError(nil)
        f.devices[0].updateFaults { $0.failWrites = false }
        release.signal()
        done.wait()
        #expect(volume.closeForIO(reason: "volume was cleared", timeout: 5))
        volume.close()
    }
}
