import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine
import Synchronization
import Testing

/// A device that records which threads flushed it.
private final class ThreadRecordingDevice: BlockDevice, @unchecked Sendable {
    let base: MemoryDevice
    let flushThreads = Mutex<[UInt64]>([])
    init(_ base: MemoryDevice) { self.base = base }
    var path: String { base.path }
    var sizeBytes: UInt64 { base.sizeBytes }
    var logicalSectorSize: Int { base.logicalSectorSize }
    var physicalSectorSize: Int { base.physicalSectorSize }
    var discardZeroes: Bool { base.discardZeroes }
    var isBuffered: Bool { false }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DeviceError) {
        try base.read(into: buffer, at: offset)
    }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DeviceError) { try base.write(buffer, at: offset) }
    func flush() throws(DeviceError) {
        let id = UInt64(pthread_self())
        flushThreads.withLock { $0.append(id) }
        try base.flush()
    }
    func discard(offset: UInt64, length: UInt64) throws(DeviceError) { try base.discard(offset: offset, length: length) }
}

private final class InlineScheduler: BackgroundScheduler {
    func startBackground(_ label: String, _ body: @escaping @Sendable () -> Void) {}
    func yield(_ point: String) {}
    func shouldCheckpoint() -> Bool { false }
}

/// Under a scheduler (the simulator) a volume does all its I/O on the calling thread.
@Suite struct SchedulerThreadTests {
    /// ThreadSanitizer found concat/stripe flushes fanned out to the I/O threads even under the
    /// simulator's scheduler (`runParallel` instead of `parallel`): the simulated devices' shared
    /// clock was then updated from several threads at once, and which device took a planned
    /// crash depended on thread timing.
    @Test(arguments: [VolumeType.concat, .stripe])
    func flushStaysOnTheCallingThread(_ type: VolumeType) throws {
        let devs = (0..<4).map { ThreadRecordingDevice(MemoryDevice(path: "mem\($0)", sizeBytes: 1 << 20)) }
        let records = devs.map { d in
            DeviceRecord(uuid: UUID(), lastPath: d.path, sizeBytes: d.sizeBytes, dataStartBlock: 8, replicaCount: 0,
                         role: .component)
        }
        let rows = type == .stripe
            ? [RowRecord(interlaceBlocks: 16, componentBlocks: 1024, components: records.map { ComponentRecord(device: $0.uuid) })]
            : records.map { RowRecord(interlaceBlocks: 16, componentBlocks: 1024, components: [ComponentRecord(device: $0.uuid)]) }
        let vol = VolumeRecord(name: "d1", type: type, rows: rows)
        let store = InMemoryConfigStore(SetConfig(setName: "t", devices: records, volumes: [vol]))
        let byUUID = Dictionary(uniqueKeysWithValues: zip(records.map(\.uuid), devs.map { $0 as any BlockDevice }))
        let volume = try VolumeFactory.open(vol, context: VolumeContext(store: store, devices: { byUUID[$0] },
                                                                        scheduler: InlineScheduler()))
        let me = UInt64(pthread_self())
        for _ in 0..<20 { try volume.flush() }
        for d in devs {
            let threads = d.flushThreads.withLock { $0 }
            #expect(threads.count == 20)
            #expect(threads.allSatisfy { $0 == me }, "\(d.path) flushed on another thread")
        }
    }
}
