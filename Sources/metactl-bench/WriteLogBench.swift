import Foundation
import MetaDB
import MetaDevices
import MetaEngine
import MetaModel

extension EngineBench {
    /// Blocks of the write log's area per column in this bench (the default for large columns).
    static let logAreaBlocks: UInt64 = 16 << 11

    /// Opens the bench volume with the write log on or off. Both have the same geometry (the
    /// area is reserved after the columns either way), so that only the logging differs.
    func openVolume(writeLog: Bool, logDevice: (any BlockDevice)? = nil, type: VolumeType = .raid5) throws -> RAID5Volume {
        try openVolumeAndStore(writeLog: writeLog, logDevice: logDevice, type: type).volume
    }

    /// ``openVolume(writeLog:logDevice:)`` with the configuration store the volume commits to.
    func openVolumeAndStore(writeLog: Bool, logDevice: (any BlockDevice)? = nil,
                            type: VolumeType = .raid5) throws -> (volume: RAID5Volume, store: InMemoryConfigStore) {
        var records: [DeviceRecord] = []
        var byUUID: [UUID: any BlockDevice] = [:]
        var logRecord: DeviceRecord?
        if let logDevice {
            let r = DeviceRecord(uuid: UUID(), lastPath: logDevice.path, sizeBytes: logDevice.sizeBytes,
                                 dataStartBlock: Self.dataStartBlock, replicaCount: 0, role: .log)
            byUUID[r.uuid] = logDevice
            logRecord = r
        }
        for d in devices {
            let r = DeviceRecord(uuid: UUID(), lastPath: d.path, sizeBytes: d.sizeBytes, dataStartBlock: Self.dataStartBlock,
                                 replicaCount: 0, role: .component)
            records.append(r)
            byUUID[r.uuid] = d
        }
        let colBlocks = (imageBytes / 512 - Self.dataStartBlock - Self.logAreaBlocks) / Self.interlaceBlocks * Self.interlaceBlocks
        var vol = VolumeRecord(name: "bench", type: type, columns: records.map { ComponentRecord(device: $0.uuid) },
                               originalColumnCount: Self.columns, interlaceBlocks: Self.interlaceBlocks, columnBlocks: colBlocks)
        vol.writeLog = WriteLogConfig(mode: writeLog ? .auto : .none, areaBlocks: Self.logAreaBlocks)
        if let logRecord {
            vol.writeLog!.device = logRecord.uuid
            vol.writeLog!.deviceAreaBlocks = min(WriteLogConfig.maxDeviceAreaBlocks, logRecord.sizeBytes / 512 - Self.dataStartBlock)
        }
        let store = InMemoryConfigStore(SetConfig(setName: "bench", devices: records + (logRecord.map { [$0] } ?? []), volumes: [vol]))
        let map = byUUID
        guard let v = try VolumeFactory.open(vol, context: VolumeContext(store: store, devices: { map[$0] })) as? RAID5Volume else {
            throw BenchError("not a RAID-5 engine")
        }
        return (v, store)
    }

    /// 4 KiB random writes at queue depth 32 (and 1) and 1 MiB sequential writes, with the
    /// write log off and on, in one run over the same image files; the ratio column is
    /// log on ÷ log off. `type` `.raid6`: the same over the same four files as a RAID-6 (two
    /// data columns; two copies of each record).
    func writeLogTable(type: VolumeType = .raid5) throws -> Table {
        let dataColumns = Self.columns - type.parityCount
        // A fifth image file as the dedicated log device: on the same disk (a real setup puts
        // it on a faster one), or in `--log-dir`.
        let logPath = "\(logDir ?? dir)/metactl-bench-log-\(getpid()).img"
        let fd = open(logPath, O_CREAT | O_WRONLY, 0o600)
        guard fd >= 0, ftruncate(fd, off_t(80 << 20)) == 0 else { throw BenchError("cannot create \(logPath)") }
        close(fd)
        defer { unlink(logPath) }
        let logDev = MeteredDevice(try FileDevice(path: logPath))
        defer { logDev.base.close() }
        let logWhere = logDir.map { " in \($0) (\(fsType($0)), \(logDev.base.isDirect ? "O_DIRECT" : "buffered"))" } ?? " on the same disk"
        var t = Table(title: "\(type == .raid6 ? "RAID-6" : "RAID-5") write log: \(Self.columns) columns, interlace 64 KiB, log area \(Self.logAreaBlocks / 2048) MiB per column or 64 MiB on a log device\(logWhere)",
                      header: ["workload", "threads", "request", "log off", "log on", "on/off", "log device", "dev/off",
                               "dev write MB/s off", "on", "records", "checkpoints"])
        struct Case { var name: String; var threads: Int; var request: Int; var random: Bool }
        let cases = [Case(name: "random write", threads: 32, request: 4096, random: true),
                     Case(name: "random write", threads: 1, request: 4096, random: true),
                     Case(name: "seq write", threads: 4, request: 1 << 20, random: false),
                     Case(name: "seq write (full lines)", threads: 4, request: 8 * dataColumns * 64 << 10, random: false)]
        for c in cases {
            var results: [RunResult] = []
            var counters: (records: UInt64, checkpoints: UInt64) = (0, 0)
            for (logged, onDevice) in [(false, false), (true, false), (true, true)] {
                let v = try openVolume(writeLog: logged, logDevice: onDevice ? logDev : nil, type: type)
                defer { v.close() }
                let size = v.sizeBytes
                let w = Workload(threads: c.threads, request: c.request, write: true, random: c.random,
                                 region: Self.regions(size: size, threads: c.threads, request: c.request), io: Self.volumeIO(v))
                let r = run(w)
                if let e = r.error { throw BenchError("\(c.name) (log \(logged ? "on" : "off")): \(e)") }
                if !c.random { try verify(v, w) }
                results.append(r)
                if logged && !onDevice { counters = v.writeLogCounters ?? (0, 0) }
            }
            let (off, on, dev) = (results[0], results[1], results[2])
            let unit = c.random ? "IOPS" : "MB/s"
            func rate(_ r: RunResult) -> Double { c.random ? r.iops : r.mbps }
            t.add(["\(c.name) (\(unit))", "\(c.threads)", sizeLabel(c.request), fmt(rate(off), 0), fmt(rate(on), 0),
                   fmt(rate(on) / rate(off), 2), fmt(rate(dev), 0), fmt(rate(dev) / rate(off), 2),
                   fmt(off.devWriteMBps), fmt(on.devWriteMBps), "\(counters.records)", "\(counters.checkpoints)"])
        }
        return t
    }
}
