import Foundation
import Logging
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine
import MetaLayout
import Synchronization

/// An error an operation reports to the user: one line, naming what is at fault.
public struct OperationError: CodedError, Sendable, CustomStringConvertible, Codable {
    /// One line naming the thing at fault and the cause.
    public var message: String
    /// What kind of failure this is; it crosses the control socket with the message.
    public var code: ErrorCode
    /// An error with `message` and `code` (``ErrorCode/general`` unless said).
    public init(_ message: String, code: ErrorCode = .general) { self.message = message; self.code = code }
    public var description: String { message }
}

/// Parameters of `metactl create`.
public struct CreateRequest: Codable, Sendable, Equatable {
    public var name: String
    public var type: VolumeType
    public var devices: [String]
    public var interlaceBytes: UInt64?
    public var hotSparePool: String?
    public var noInit: Bool
    public var force: Bool
    /// RAID-5: `--write-log auto|none` (nil: auto).
    public var writeLog: WriteLogMode?
    /// A soft partition: its parent and size or extents (nil for other types; absent in
    /// requests from older clients).
    public var softPartition: SoftPartitionSpec?
    public init(name: String, type: VolumeType, devices: [String], interlaceBytes: UInt64? = nil,
                hotSparePool: String? = nil, noInit: Bool = false, force: Bool = false, writeLog: WriteLogMode? = nil,
                softPartition: SoftPartitionSpec? = nil) {
        self.name = name; self.type = type; self.devices = devices; self.interlaceBytes = interlaceBytes
        self.hotSparePool = hotSparePool; self.noInit = noInit; self.force = force; self.writeLog = writeLog
        self.softPartition = softPartition
    }
}

/// What `create` did.
public struct CreateResult: Codable, Sendable, Equatable {
    public var name: String
    public var sizeBytes: UInt64
    /// One line per note (unusable space, replica count advice, initialisation).
    public var messages: [String]
    /// Whether the set's state database was created by this call.
    public var createdDatabase: Bool
}

/// Rules for names and sizes shared by the commands.
public enum VolumeRules {
    /// SVM's default stripe interlace.
    public static let defaultStripeInterlace: UInt64 = 512 << 10
    /// Default RAID-5 interlace (128 blocks).
    public static let defaultRAID5Interlace: UInt64 = 64 << 10
    public static let minInterlace: UInt64 = 8 << 10
    public static let maxInterlace: UInt64 = 100 << 20

    /// `[a-z][a-z0-9_.-]{0,62}`
    public static func validName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, s.unicodeScalars.count <= 63, ("a"..."z").contains(f) else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || "_.-".unicodeScalars.contains($0) }
    }

    /// `hsp000` … `hsp999` (ASCII digits: `Character.isNumber` also takes other scripts' digits).
    public static func validPoolName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        return b.count == 6 && s.hasPrefix("hsp") && b[3...].allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    public static func checkInterlace(_ bytes: UInt64) throws(OperationError) {
        guard bytes >= minInterlace, bytes <= maxInterlace, bytes % 512 == 0 else {
            throw OperationError("interlace \(bytes) bytes: must be a multiple of 512 between 8 KiB and 100 MiB", code: .invalidArgument)
        }
    }

    /// An interlace as a user writes it: `64 KiB`, `1 MiB`, `8704 bytes`.
    public static func interlaceText(_ bytes: UInt64) -> String {
        if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes % 1024 == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }

    /// Refuses a device whose logical sector size does not divide the interlace: requests
    /// are split at interlace boundaries, so the device would be sent transfers it refuses.
    /// `volume` names an existing volume the device joins (nil for `create`).
    public static func checkSector(path: String, logicalSectorSize: Int, interlaceBytes: UInt64,
                                   of volume: String? = nil) throws(OperationError) {
        let sector = UInt64(max(512, logicalSectorSize))
        guard interlaceBytes % sector == 0 else {
            let which = volume.map { "the interlace of \($0)" } ?? "the interlace"
            throw OperationError("\(path): logical sector size \(sector) bytes: \(which) (\(interlaceText(interlaceBytes))) must be a multiple of it", code: .invalidArgument)
        }
    }

    /// Refuses a device that would raise the sector size of an existing volume: its clients
    /// were told they may send requests of `volumeSector` bytes, which the device would refuse.
    public static func checkSector(path: String, logicalSectorSize: Int, joining volume: String,
                                   volumeSector: Int) throws(OperationError) {
        guard logicalSectorSize <= volumeSector else {
            throw OperationError("\(path): logical sector size \(logicalSectorSize) bytes is larger than the \(volumeSector)-byte sector of \(volume): its clients may send \(volumeSector)-byte requests")
        }
    }
}

/// What a device joining an existing volume (replacement, hot spare, grow) must fit: the
/// volume's interlace (RAID-5, stripe rows) and its sector size (see ``Volume/sectorSize``).
struct SectorFit {
    var volume: String
    /// The volume's sector size (nil when its engine is not open: not checked).
    var sectorSize: Int?
    /// The interlace the device's logical sector must divide (nil: none, e.g. a concat row).
    var interlaceBytes: UInt64?
    /// Whether that is the volume's interlace (RAID-5) rather than a new row's (`grow -i`).
    var interlaceOfVolume = true

    func check(path: String, logicalSectorSize: Int) throws(OperationError) {
        if let il = interlaceBytes {
            try VolumeRules.checkSector(path: path, logicalSectorSize: logicalSectorSize, interlaceBytes: il,
                                        of: interlaceOfVolume ? volume : nil)
        }
        if let s = sectorSize {
            try VolumeRules.checkSector(path: path, logicalSectorSize: logicalSectorSize, joining: volume, volumeSector: s)
        }
    }
}

/// A device that passed ``SetManager/validateDevices(_:replicaCopies:configDir:config:fits:)``.
struct CheckedDevice {
    /// Blocks its data area would offer.
    var dataBlocks: UInt64
    var logicalSectorSize: Int
}

/// An open set: its state database and the I/O engines of its volumes. The server keeps one
/// for its lifetime; a command without a server opens one, runs one operation and closes it.
/// Both run the same code.
public final class SetManager: @unchecked Sendable {
    public let db: SetDatabase
    public let logger: Logger
    /// Whether this manager belongs to a running server (live state, background work).
    public let isServer: Bool
    private let engines = Mutex<[String: Volume]>([:])
    /// Open NBD connections of a volume (set by the server).
    public nonisolated(unsafe) var openCountProvider: (@Sendable (String) -> Int)?
    /// Progress of foreground work (no server): volume, kind (a ``ResyncKind`` raw value or
    /// `check`), percent, bytes per second.
    public nonisolated(unsafe) var progressReporter: (@Sendable (String, String, Double, Double) -> Void)?
    /// Called after volumes were created or cleared (the server updates its exports).
    public nonisolated(unsafe) var onVolumesChanged: (@Sendable () -> Void)?
    /// Serialises configuration-changing operations.
    private let opLock = NSRecursiveLock()
    func opLockAcquire() { opLock.lock() }
    func opLockRelease() { opLock.unlock() }

    /// The host registry directory (`--config-dir`).
    public let configDir: String

    /// Where the engines do their data I/O (see ``CacheMode``).
    let dataDevices: DataDevices

    /// Opens engines for every volume of the set; `cache` says how they do data I/O.
    public init(db: SetDatabase, configDir: String, logger: Logger, isServer: Bool, cache: CacheMode = .none) {
        self.db = db
        self.configDir = configDir
        self.logger = logger
        self.isServer = isServer
        self.dataDevices = DataDevices(mode: cache)
        for v in db.config.volumes { _ = try? openEngine(v.name) }
        reportPendingGrows()
        // A column missing at the start takes a spare as a failing one does.
        if isServer { for v in db.config.volumes { checkHotSpares(v.name) } }
    }

    /// The configuration in force.
    public var config: SetConfig { db.config }
    public var setName: String { db.setName }

    var context: VolumeContext {
        VolumeContext(store: db, devices: { [db, dataDevices] in dataDevices.device($0, in: db) }, logger: logger)
    }

    /// The engine of a volume (opened on first use).
    @discardableResult
    public func openEngine(_ name: String) throws -> Volume {
        if let e = engines.withLock({ $0[name] }) { return e }
        guard let rec = db.config.volume(named: name) else { throw OperationError("\(name): no such volume in set '\(setName)'", code: .notFound) }
        // A volume built on others opens them first (bottom up).
        let engine: Volume
        if rec.type == .mirror {
            engine = try openMirror(rec)
        } else {
            let parent = try rec.softPartition.map { try openEngine($0.parent) }
            engine = try VolumeFactory.open(rec, context: context, parent: parent)
            // The configuration is the truth and the watermarks mirror it: a create or grow
            // cut off between its commit and its watermarks left them behind, and `recover`
            // after a lost state database would find the partition smaller or not at all.
            if isServer, db.quorum.writable, let parent, !SoftPartitionVolume.watermarksMatch(of: rec, in: parent) {
                do {
                    try SoftPartitionVolume.writeWatermarks(of: rec, to: parent)
                    logger.warning("\(name): its watermarks in \(parent.name) did not match the configuration (a create or grow was cut off): written again")
                } catch {
                    logger.error("\(name): its watermarks in \(parent.name) do not match the configuration and cannot be written (\(error)); `metactl recover \(parent.name)` may not find it as it is")
                }
            }
        }
        // Before the volume is served: the write log's records of a run that crashed.
        // Also with the state database read-only: served data must not change at a later
        // start's replay (the engine refuses I/O when it cannot replay in full).
        if isServer, let r5 = engine as? RAID5Volume {
            r5.replayWriteLog()
        }
        if let r5 = engine as? RAID5Volume, db.quorum.writable {
            try? r5.commitUnavailableColumns()
        }
        (engine as? RAID5Volume)?.delegate = self
        engines.withLock { $0[name] = engine }
        if isServer, let mv = engine as? MirrorVolume, db.quorum.writable {
            mv.startResync()
            // A check the last run did not finish resumes from its checkpoint.
            if rec.check?.running == true { mv.startCheck() }
        }
        if isServer, let r5 = engine as? RAID5Volume, db.quorum.writable {
            if rec.resync?.kind == .regenerate || rec.resync?.kind == .copy {
                r5.startResync()
            } else {
                r5.startBackgroundWork()
            }
            // A check the last run did not finish resumes from its checkpoint (after the
            // background work just started, if any).
            if rec.check?.running == true { r5.startCheck() }
        }
        return engine
    }

    /// The open engine of a volume, if any.
    public func engine(_ name: String) -> Volume? { engines.withLock { $0[name] } }

    /// Names of the volumes.
    public var volumeNames: [String] { db.config.volumes.map(\.name) }

    /// Names of the volumes clients may reach: every volume but the sides of mirrors (a
    /// side is written only through its mirror).
    public var exportedVolumeNames: [String] {
        let cfg = db.config
        return cfg.volumes.map(\.name).filter { cfg.mirror(using: $0) == nil }
    }

    /// Stops background work and closes every engine (not the database).
    public func closeEngines() {
        let all = engines.withLock { e -> [Volume] in let v = Array(e.values); e = [:]; return v }
        for e in all { e.close() }
        dataDevices.closeAll()
    }

    // MARK: status

    public func status(names: [String] = []) throws -> StatusReport {
        let cfg = db.config
        for n in names where cfg.volume(named: n) == nil && cfg.pool(named: n) == nil {
            throw OperationError("\(n): no such volume or hot spare pool in set '\(setName)'", code: .notFound)
        }
        let counts = openCountProvider
        return StatusReport.make(
            config: cfg, quorum: db.quorum, live: isServer,
            devicePaths: { [db] in db.device($0)?.path }, present: { [db] in db.device($0) != nil },
            progress: { [weak self] n in (self?.engine(n) as? RAID5Volume)?.progress.withLock { $0 } },
            openCount: { n in counts?(n) }, names: names,
            checkProgress: { [weak self] n in
                (self?.engine(n) as? RAID5Volume)?.checkProgress.withLock { $0 } ?? (self?.engine(n) as? MirrorVolume)?.checkProgress.withLock { $0 }
            },
            mirrorProgress: { [weak self] n in (self?.engine(n) as? MirrorVolume)?.progress.withLock { $0 } })
    }

    // MARK: create

    /// Refuses a name a new volume cannot take: malformed, a pool's, or taken.
    static func checkNewVolumeName(_ name: String, config: SetConfig?) throws {
        guard VolumeRules.validName(name) else {
            throw OperationError("bad volume name '\(name)': use a lower-case letter then up to 62 of a-z 0-9 _ . -", code: .invalidArgument)
        }
        if VolumeRules.validPoolName(name) { throw OperationError("\(name): names hsp000–hsp999 are for hot spare pools", code: .invalidArgument) }
        if config?.volume(named: name) != nil { throw OperationError("\(name): a volume of that name already exists", code: .inUse) }
    }

    /// Validates a create request against the set; returns what each device offers.
    static func validate(_ r: CreateRequest, config: SetConfig?, replicaCopies: Int, configDir: String?) throws -> [CheckedDevice] {
        try checkNewVolumeName(r.name, config: config)
        let minimum = r.type.minimumColumns
        guard r.devices.count >= minimum else {
            throw OperationError("\(r.name): \(r.type.rawValue) needs at least \(minimum) device\(minimum == 1 ? "" : "s"), \(r.devices.count) given", code: .invalidArgument)
        }
        // The limits grow enforces, so a volume create accepts can also be grown.
        if r.type.hasColumns && r.devices.count > VolumeGrowth.maxRAID5Columns {
            throw OperationError("\(r.name): \(r.devices.count) columns; a \(r.type.displayName) volume has at most \(VolumeGrowth.maxRAID5Columns)", code: .invalidArgument)
        }
        if r.type == .stripe && r.devices.count > VolumeGrowth.maxRowComponents {
            throw OperationError("\(r.name): \(r.devices.count) devices; a stripe row takes at most \(VolumeGrowth.maxRowComponents)", code: .invalidArgument)
        }
        if let il = r.interlaceBytes { try VolumeRules.checkInterlace(il) }
        if r.type == .concat && r.interlaceBytes != nil { throw OperationError("\(r.name): -i applies to stripe, raid5 and raid6 volumes, not concat", code: .invalidArgument) }
        if let hsp = r.hotSparePool {
            guard r.type.hasColumns || r.type == .concat || r.type == .stripe else {
                throw OperationError("\(r.name): hot spare pools apply to RAID-5 and RAID-6 volumes and to the concat and stripe volumes that are sides of mirrors", code: .invalidArgument)
            }
            guard VolumeRules.validPoolName(hsp) else { throw OperationError("bad hot spare pool name '\(hsp)': use hsp000 … hsp999", code: .invalidArgument) }
        }
        return try validateDevices(r, replicaCopies: replicaCopies, configDir: configDir, config: config)
    }

    /// Checks each device of a request (component check, duplicates, label, size, logical
    /// sector size against the interlace); returns what each would offer. Devices of a new
    /// stripe or RAID-5 are checked against the request's interlace; devices joining existing
    /// volumes (`fits`: a replacement, a hot spare) against those volumes instead.
    static func validateDevices(_ r: CreateRequest, replicaCopies: Int, configDir: String?, config: SetConfig? = nil,
                                fits: [SectorFit] = []) throws -> [CheckedDevice] {
        var seen: [String: String] = [:]
        var sizes: [CheckedDevice] = []
        for p in r.devices {
            if let config, let e = membershipError(p, config: config) { throw e }
            let cand: ComponentCandidate
            do { cand = try ComponentCheck.check(path: p, force: r.force, knownMembers: [:]) } catch {
                throw OperationError("\(p): \(error.reason)", code: error.code)
            }
            let key = cand.identity
            if let other = seen[key] { throw OperationError(ComponentCandidate.duplicate(p, first: other), code: .invalidArgument) }
            seen[key] = p
            if r.type != .concat {
                let il = r.interlaceBytes ?? (r.type.hasColumns ? VolumeRules.defaultRAID5Interlace : VolumeRules.defaultStripeInterlace)
                try VolumeRules.checkSector(path: p, logicalSectorSize: cand.logicalSectorSize, interlaceBytes: il)
            }
            for f in fits { try f.check(path: p, logicalSectorSize: cand.logicalSectorSize) }
            if let config, config.devices.contains(where: { canonicalPath($0.lastPath) == canonicalPath(p) }) {
                throw OperationError("\(p): is already a member of set '\(config.setName)'", code: .inUse)
            }
            do { try DeviceCheck.checkCandidate(path: p, force: r.force, configDir: configDir) } catch {
                throw OperationError("\(error)", code: ErrorCode.of(error))
            }
            let start = DiskLayout.dataStartBlock(copies: replicaCopies, slotSize: DiskLayout.defaultSlotSize)
            let blocks = cand.sizeBytes / 512
            let il = (r.interlaceBytes ?? (r.type.hasColumns ? VolumeRules.defaultRAID5Interlace : VolumeRules.defaultStripeInterlace)) / 512
            let need = start + (r.type == .concat ? 1 : il)
            guard blocks >= need else {
                throw OperationError("\(p): too small (\(cand.sizeBytes) bytes): needs at least \(need * 512) bytes for its label\(replicaCopies > 0 ? ", replica" : "") and one interlace of data", code: .invalidArgument)
            }
            sizes.append(CheckedDevice(dataBlocks: blocks - start, logicalSectorSize: cand.logicalSectorSize))
        }
        return sizes
    }

    /// Builds the volume record from labelled devices. `sectorSize` is the largest logical
    /// sector of the devices: rows of one component are cut to a multiple of it, so that the
    /// rows after them start on a sector boundary (interlaces already are multiples of it).
    static func makeVolume(_ r: CreateRequest, devices: [DeviceRecord], sectorSize: Int = 512) -> (VolumeRecord, [String]) {
        var notes: [String] = []
        let smallest = devices.map(\.dataBlocks).min() ?? 0
        let sectorBlocks = UInt64(max(512, sectorSize) / 512)
        switch r.type {
        case .softpart, .mirror:
            // Soft partitions and mirrors hold no devices: createSoftPartition and
            // createMirror make them.
            return (VolumeRecord(name: r.name, type: r.type), notes)
        case .concat:
            let rows = devices.map { d in
                RowRecord(interlaceBlocks: 1, componentBlocks: d.dataBlocks / sectorBlocks * sectorBlocks,
                          components: [ComponentRecord(device: d.uuid)])
            }
            return (VolumeRecord(name: r.name, type: .concat, rows: rows), notes)
        case .stripe:
            let il = (r.interlaceBytes ?? VolumeRules.defaultStripeInterlace) / 512
            let used = devices.count == 1 ? smallest / sectorBlocks * sectorBlocks : smallest / il * il
            for d in devices where devices.count > 1 && d.dataBlocks > used {
                notes.append("\(d.lastPath): \(d.dataBlocks - used) blocks (\(humanBytes((d.dataBlocks - used) * 512))) unusable: larger than the smallest component")
            }
            let row = RowRecord(interlaceBlocks: il, componentBlocks: devices.count == 1 ? used : smallest,
                                components: devices.map { ComponentRecord(device: $0.uuid) })
            return (VolumeRecord(name: r.name, type: .stripe, rows: [row]), notes)
        case .raid5, .raid6:
            let il = (r.interlaceBytes ?? VolumeRules.defaultRAID5Interlace) / 512
            // The write log's area sits after the column on every device (none with --write-log
            // none; RAID-6 has one only with --write-log auto).
            var area: UInt64 = 0
            if (r.writeLog ?? (r.type == .raid5 ? .auto : .none)) == .auto {
                area = WriteLogConfig.defaultAreaBlocks(columnDataBlocks: smallest)
                if smallest < area + il {
                    notes.append("\(r.name): the devices are too small for a write log (it needs \(humanBytes(area * 512)) per column): created without one")
                    area = 0
                }
            }
            let used = (smallest - area) / il * il
            for d in devices where d.dataBlocks > used + area {
                notes.append("\(d.lastPath): \(d.dataBlocks - used - area) blocks (\(humanBytes((d.dataBlocks - used - area) * 512))) unusable: larger than the smallest column")
            }
            let state: ComponentState = r.noInit ? .okay : .initializing
            var v = VolumeRecord(name: r.name, type: r.type, columns: devices.map { ComponentRecord(device: $0.uuid, state: state) },
                                 originalColumnCount: devices.count, interlaceBlocks: il, columnBlocks: used,
                                 hotSparePool: r.hotSparePool)
            if !r.noInit {
                v.resync = ResyncCheckpoint(kind: .initialize, totalBlocks: used)
            }
            if area > 0 { v.writeLog = WriteLogConfig(mode: .auto, areaBlocks: area) }
            return (v, notes)
        }
    }

    /// Creates a volume in this (open, writable) set.
    public func create(_ r: CreateRequest) throws -> CreateResult {
        if r.type == .softpart { return try createSoftPartition(r) }
        if r.type == .mirror { return try createMirror(r) }
        opLock.lock(); defer { opLock.unlock() }
        let checked = try Self.validate(r, config: db.config, replicaCopies: 0, configDir: configDir)
        let sector = checked.map(\.logicalSectorSize).max() ?? 512
        var notes: [String] = []
        try db.commit { cfg in
            var recs: [DeviceRecord] = []
            for p in r.devices {
                recs.append(try db.addDevice(path: p, role: .component, replicaCopies: 0, force: r.force, in: &cfg))
            }
            let (vol, n) = Self.makeVolume(r, devices: recs, sectorSize: sector)
            notes = n
            cfg.volumes.append(vol)
            if let hsp = r.hotSparePool, cfg.pool(named: hsp) == nil {
                cfg.hotSparePools.append(HotSparePoolRecord(name: hsp))
                notes.append("\(hsp): created (empty); add spares with `metactl hs add \(hsp) DEV`")
            }
        }
        return try finishCreate(r, notes: notes, createdDatabase: false)
    }

    private func finishCreate(_ r: CreateRequest, notes: [String], createdDatabase: Bool) throws -> CreateResult {
        var notes = notes
        let engine = try openEngine(r.name)
        if r.type.hasColumns && !r.noInit {
            notes.append(isServer ? "\(r.name): parity is being initialised in the background"
                                  : "\(r.name): parity will be initialised in the background when the set is served (metactl serve)")
        }
        if let why = db.takeRegistryFailure() {
            notes.append("warning: \(r.name) is created, but this host could not record the set's device paths: \(why)")
        }
        logger.info("\(r.name): created \(r.type.rawValue) of \(r.devices.count) device(s), \(engine.sizeBytes) bytes")
        return CreateResult(name: r.name, sizeBytes: engine.sizeBytes, messages: notes, createdDatabase: createdDatabase)
    }

    /// Creates the set's state database on the volume's devices (one replica each), then the
    /// volume. Used when the set does not exist yet.
    public static func createWithNewSet(_ r: CreateRequest, setName: String, configDir: String, runDir: String,
                                        logger: Logger) throws -> (SetManager, CreateResult) {
        let checked = try validate(r, config: nil, replicaCopies: 1, configDir: configDir)
        let sector = checked.map(\.logicalSectorSize).max() ?? 512
        let db = try SetDatabase.create(setName: setName, replicaDevices: r.devices.map { ($0, 1) },
                                        configDir: configDir, runDir: runDir, force: r.force)
        var notes: [String] = []
        do {
            try db.commit { cfg in
                let real = r.devices.map(canonicalPath)
                var recs: [DeviceRecord] = []
                for p in real {
                    guard let i = cfg.devices.firstIndex(where: { canonicalPath($0.lastPath) == p }) else {
                        throw OperationError("\(p): not found in the new state database", code: .notFound)
                    }
                    cfg.devices[i].role = .component
                    recs.append(cfg.devices[i])
                }
                let (vol, n) = makeVolume(r, devices: recs, sectorSize: sector)
                notes = n
                cfg.volumes.append(vol)
                if let hsp = r.hotSparePool { cfg.hotSparePools.append(HotSparePoolRecord(name: hsp)) }
            }
        } catch {
            db.close()
            throw error
        }
        notes.insert("set '\(setName)': state database created with \(r.devices.count) replica\(r.devices.count == 1 ? "" : "s") on the volume's devices", at: 0)
        if r.devices.count < 3 {
            notes.append("set '\(setName)': fewer than 3 replicas; add more with `metactl db add DEV` so one failure cannot cost the quorum")
        }
        let m = SetManager(db: db, configDir: configDir, logger: logger, isServer: false)
        let res = try m.finishCreate(r, notes: notes, createdDatabase: true)
        return (m, res)
    }

    // MARK: clear

    /// Deletes a volume: drops it from the database and releases its devices' labels
    /// (devices holding replicas stay in the set as replica holders).
    @discardableResult
    public func clear(name: String, force: Bool) throws -> VolumeType {
        opLock.lock(); defer { opLock.unlock() }
        guard let vol = db.config.volume(named: name) else { throw OperationError("\(name): no such volume in set '\(setName)'", code: .notFound) }
        if let n = openCountProvider?(name), n > 0, !force {
            throw OperationError("\(name): is open by \(n) client\(n == 1 ? "" : "s") through the server; disconnect them or use -f", code: .inUse)
        }
        if let r = vol.resync, !force, r.kind != .initialize {
            throw OperationError("\(name): a \(r.kind.rawValue) is in progress; wait for it or use -f", code: .inUse)
        }
        if let m = vol.mirror, !force, let s = m.submirrors.first(where: { $0.state == .resyncing }) {
            throw OperationError("\(name): side \(s.volume) is resyncing (it would be left with part of the data); wait for it or use -f", code: .inUse)
        }
        try prepareClear(vol)
        let engine = engines.withLock { $0.removeValue(forKey: name) }
        // Clients connected through the server (-f) keep a reference to this engine: from
        // now on it refuses their requests, and it is closed only once those in progress
        // have returned, so it never touches the devices again once they are released (they
        // may join another volume, perhaps of the same name, which the engine's state
        // commits look up by name).
        let drained = engine?.closeForIO(reason: "volume was cleared") ?? true
        if !drained {
            logger.error("\(name): requests still in progress after 30 s; clearing anyway (the devices' buffered descriptors stay open)")
        }
        engine?.close()
        let uuids = Set(vol.allComponents.flatMap { [$0.device] + ($0.hotSpare.map { [$0] } ?? []) }
                        + (vol.pendingGrow?.devices ?? []))
        do {
            // Spares standing in for its columns return to their pools; its devices retire.
            try db.apply(.cleared(volume: name))
        } catch {
            _ = try? openEngine(name)
            throw error
        }
        // `--cache writeback`: close the buffered descriptors of the devices no volume uses
        // any more (not while a request may still be using one: a reused descriptor number
        // would send its write elsewhere).
        if drained { dataDevices.forget(uuids.filter { !db.config.isReferenced($0) }) }
        logger.info("\(name): cleared")
        return vol.type
    }
}

extension SetManager {
    /// Why `path` cannot join the set because it already belongs to it, in one wording for
    /// every command (create, grow, replace, hs add): the volume it is a component of, the
    /// pool it is a spare in, or its state database replicas. Nil when it is not a member.
    /// Checked before the in-use check, whose "opened exclusively by another program" would
    /// otherwise name metactl itself.
    static func membershipError(_ path: String, config: SetConfig, currentPath: (DeviceRecord) -> String? = { _ in nil }) -> OperationError? {
        let canon = canonicalPath(path)
        guard let d = config.devices.first(where: {
            canonicalPath($0.lastPath) == canon || currentPath($0).map(canonicalPath) == canon
        }) else { return nil }
        let set = config.setName
        if let v = config.volumes.first(where: { $0.allComponents.contains { $0.device == d.uuid } }) {
            return OperationError("\(path): is already a component of \(v.name) in set '\(set)'", code: .inUse)
        }
        if let v = config.volumes.first(where: { $0.allComponents.contains { $0.hotSpare == d.uuid } }) {
            return OperationError("\(path): is a hot spare standing in for a column of \(v.name) in set '\(set)'", code: .inUse)
        }
        if let pool = config.hotSparePools.first(where: { $0.spares.contains { $0.device == d.uuid } }) {
            return OperationError("\(path): is already a hot spare in \(pool.name) of set '\(set)'", code: .inUse)
        }
        if d.replicaCount > 0 {
            return OperationError("\(path): holds a state database replica of set '\(set)'; replica holders cannot become components or spares (use other devices; a volume created first puts the set's replicas on its own devices)", code: .inUse)
        }
        return OperationError("\(path): is already a member of set '\(set)'", code: .inUse)
    }
}

/// The canonical path of a file (symlinks resolved), or the path itself.
func canonicalPath(_ p: String) -> String {
    guard let r = realpath(p, nil) else { return p }
    defer { free(r) }
    return String(cString: r)
}

func humanBytes(_ b: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(b), i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(b) B" : String(format: "%.1f %@", v, units[i])
}
