import Foundation
import MetaDB
import MetaEngine
import MetaLayout
import MetaModel

/// A soft partition to create (`metactl create NAME softpart PARENT SIZE`, or explicit
/// extents `-o OFFSET -b SIZE` …, SVM's `metainit NAME -p PARENT …`).
public struct SoftPartitionSpec: Codable, Sendable, Equatable {
    /// The volume it is carved from.
    public var parent: String
    /// Size to allocate (first fit); nil with explicit extents.
    public var sizeBytes: UInt64?
    /// Explicit extents: data start and length, in 512-byte blocks of the parent.
    public var extents: [SoftExtentSpec]
    public init(parent: String, sizeBytes: UInt64? = nil, extents: [SoftExtentSpec] = []) {
        self.parent = parent; self.sizeBytes = sizeBytes; self.extents = extents
    }
}

/// An explicit extent: `-o OFFSET -b SIZE` (data offset and length in blocks; the watermark
/// takes the 8 blocks before OFFSET).
public struct SoftExtentSpec: Codable, Sendable, Equatable {
    public var offsetBlocks: UInt64
    public var blocks: UInt64
    public init(offsetBlocks: UInt64, blocks: UInt64) { self.offsetBlocks = offsetBlocks; self.blocks = blocks }
}

/// `metactl recover PARENT [-n]` (SVM's `metarecover -p`).
public struct RecoverRequest: Codable, Sendable, Equatable {
    public var parent: String
    /// Only report what would be recovered.
    public var dryRun: Bool
    public init(parent: String, dryRun: Bool = false) { self.parent = parent; self.dryRun = dryRun }
}

/// What `recover` found and did.
public struct RecoverResult: Codable, Sendable, Equatable {
    public struct Partition: Codable, Sendable, Equatable {
        public var name: String
        public var sizeBytes: UInt64
        public var extents: Int
        /// `recovered`, `would recover` (dry run), `known` (already in the configuration) or
        /// `skipped` (`reason` says why).
        public var outcome: String
        public var reason: String?
    }
    public var parent: String
    public var partitions: [Partition]
    /// Places of the parent that could not be read (1 MiB each).
    public var unreadableChunks: Int
}

extension SetManager {
    /// Blocks the data of new extents is aligned to in `parent`: its full stripe (so that a
    /// soft partition's large writes stay whole-line writes), 1 MiB for a concat; a
    /// multiple of 8 blocks, at most 32 MiB.
    static func softAlignment(_ parent: VolumeRecord) -> UInt64 {
        let a: UInt64
        switch parent.type {
        case .raid5, .raid6: a = parent.interlaceBlocks * UInt64(max(1, parent.originalColumnCount - parent.type.parityCount))
        case .stripe: a = (parent.rows.first?.interlaceBlocks ?? 1) * UInt64(parent.rows.first?.components.count ?? 1)
        case .concat, .softpart, .mirror: a = 2048
        }
        let wm = SoftPartitionLayout.watermarkBlocks
        return min(65536, max(wm, (a + wm - 1) / wm * wm))
    }

    /// The parent of a soft partition to be made or recovered in: a volume, not itself a
    /// soft partition, with its engine open.
    private func softParent(_ name: String, for what: String) throws -> (VolumeRecord, Volume) {
        guard let p = db.config.volume(named: name) else {
            throw OperationError("\(name): no such volume in set '\(setName)' (\(what) needs an existing volume to carve from)", code: .notFound)
        }
        if p.type == .softpart {
            throw OperationError("\(name): is a soft partition; soft partitions are carved from concat, stripe, RAID-5 or RAID-6 volumes", code: .invalidArgument)
        }
        if let m = db.config.mirror(using: name) {
            throw OperationError("\(name): is a side of mirror \(m.name); carve soft partitions from the mirror", code: .inUse)
        }
        if p.pendingGrow != nil {
            throw OperationError("\(name): a grow is in progress; finish it first (metactl grow \(name) …)", code: .inUse)
        }
        return (p, try openEngine(name))
    }

    /// `create NAME softpart PARENT SIZE | -o OFFSET -b SIZE …`.
    func createSoftPartition(_ r: CreateRequest) throws -> CreateResult {
        opLockAcquire(); defer { opLockRelease() }
        guard let spec = r.softPartition else { throw OperationError("\(r.name): a soft partition needs a parent volume and a size", code: .invalidArgument) }
        try Self.checkNewVolumeName(r.name, config: db.config)
        if !r.devices.isEmpty || r.interlaceBytes != nil || r.hotSparePool != nil || r.noInit || r.writeLog != nil {
            throw OperationError("\(r.name): a soft partition takes a parent volume and a size or -o/-b extents; devices, -i, --hot-spare-pool, --no-init and --write-log do not apply", code: .invalidArgument)
        }
        let (parent, engine) = try softParent(spec.parent, for: "a soft partition")
        let extents = try softExtents(spec, name: r.name, parent: parent, engine: engine)
        var record = VolumeRecord(name: r.name, type: .softpart)
        record.softPartition = SoftPartitionRecord(parent: parent.name, extents: extents.map(SoftExtent.init))
        try db.commit { cfg in cfg.volumes.append(record) }
        do {
            try SoftPartitionVolume.writeWatermarks(of: record, to: engine)
        } catch {
            // Nothing half-made: the record goes again.
            _ = try? db.commit { cfg in cfg.volumes.removeAll { $0.name == r.name } }
            throw OperationError("\(r.name): cannot write its watermarks to \(parent.name): \(error)", code: .deviceFailed)
        }
        let v = try openEngine(r.name)
        logger.info("\(r.name): created soft partition of \(parent.name), \(extents.count) extent(s), \(v.sizeBytes) bytes")
        return CreateResult(name: r.name, sizeBytes: v.sizeBytes, messages: [], createdDatabase: false)
    }

    /// The extents of a new soft partition: the explicit ones, checked, or `sizeBytes`
    /// allocated first fit.
    private func softExtents(_ spec: SoftPartitionSpec, name: String, parent: VolumeRecord, engine: Volume) throws -> [SoftPartitionLayout.Extent] {
        let parentBlocks = engine.sizeBytes / Volume.blockSize
        var used = db.config.softExtents(of: parent.name)
        let wm = SoftPartitionLayout.watermarkBlocks
        let sector = UInt64(max(512, engine.sectorSize) / 512)
        let granule = max(wm, sector)
        if !spec.extents.isEmpty {
            if spec.sizeBytes != nil { throw OperationError("\(name): give a size or -o/-b extents, not both", code: .invalidArgument) }
            var out: [SoftPartitionLayout.Extent] = []
            for x in spec.extents {
                guard x.offsetBlocks % granule == 0, x.blocks % granule == 0, x.blocks > 0 else {
                    throw OperationError("\(name): -o \(x.offsetBlocks) -b \(x.blocks): offset and size must be multiples of \(granule) blocks (\(granule * 512) bytes)", code: .invalidArgument)
                }
                guard x.offsetBlocks >= wm else {
                    throw OperationError("\(name): -o \(x.offsetBlocks): the first \(wm) blocks before an extent hold its watermark; use -o \(wm) or more", code: .invalidArgument)
                }
                let e = SoftPartitionLayout.Extent(watermarkBlock: x.offsetBlocks - wm, blocks: x.blocks)
                guard SoftPartitionLayout.fits(e, parentBlocks: parentBlocks, used: used) else {
                    throw OperationError("\(name): -o \(x.offsetBlocks) -b \(x.blocks): overlaps another soft partition of \(parent.name) (or its watermark, the \(wm) blocks before it) or ends beyond its \(parentBlocks) blocks; free: \(freeText(parentBlocks, used))", code: .invalidArgument)
                }
                used.append(e)
                out.append(e)
            }
            return out
        }
        guard let size = spec.sizeBytes, size > 0 else { throw OperationError("\(name): a soft partition needs a size (e.g. 1g) or -o/-b extents", code: .invalidArgument) }
        guard let exts = SoftPartitionLayout.allocate(blocks: (size + 511) / 512, parentBlocks: parentBlocks, used: used,
                                                      alignment: Self.softAlignment(parent), granularity: granule) else {
            throw OperationError("\(name): \(parent.name) has not \(size) bytes free for it; free: \(freeText(parentBlocks, used))", code: .invalidArgument)
        }
        return exts
    }

    /// `N blocks in M run(s), the largest N blocks`.
    private func freeText(_ parentBlocks: UInt64, _ used: [SoftPartitionLayout.Extent]) -> String {
        let runs = SoftPartitionLayout.freeRuns(parentBlocks: parentBlocks, used: used)
        let total = runs.reduce(0) { $0 + UInt64($1.count) }
        return "\(total) blocks in \(runs.count) run\(runs.count == 1 ? "" : "s"), the largest \(runs.map { UInt64($0.count) }.max() ?? 0) blocks"
    }

    /// `grow NAME SIZE` of a soft partition: more extents, first fit.
    func growSoftPartition(_ vol: VolumeRecord, sizeBytes: UInt64) throws -> GrowResult {
        guard var sp = vol.softPartition else { throw OperationError("\(vol.name): malformed soft partition record", code: .internal) }
        let (parent, pengine) = try softParent(sp.parent, for: "growing a soft partition")
        guard let engine = try openEngine(vol.name) as? SoftPartitionVolume else {
            throw OperationError("\(vol.name): its engine is not a soft partition's", code: .internal)
        }
        let before = engine.sizeBytes
        let spec = SoftPartitionSpec(parent: parent.name, sizeBytes: sizeBytes)
        let added = try softExtents(spec, name: vol.name, parent: parent, engine: pengine)
        sp.extents += added.map(SoftExtent.init)
        sp.generation += 1
        var record = vol
        record.softPartition = sp
        try db.commit { cfg in
            guard let i = cfg.volumes.firstIndex(where: { $0.name == vol.name }) else { return }
            cfg.volumes[i] = record
        }
        do {
            // New extents first: a crash part-way leaves either generation recoverable.
            try SoftPartitionVolume.writeWatermarks(of: record, to: pengine, newestFirst: added.count)
        } catch {
            _ = try? db.commit { cfg in
                guard let i = cfg.volumes.firstIndex(where: { $0.name == vol.name }) else { return }
                cfg.volumes[i] = vol
            }
            throw OperationError("\(vol.name): cannot write its watermarks to \(parent.name): \(error)", code: .deviceFailed)
        }
        try engine.reload()
        logger.info("\(vol.name): grew by \(added.count) extent(s) to \(engine.sizeBytes) bytes")
        return GrowResult(name: vol.name, oldSizeBytes: before, newSizeBytes: engine.sizeBytes, messages: [])
    }

    /// Before a volume is cleared: a parent of soft partitions is refused; a soft
    /// partition's watermarks are marked free (so that `recover` does not bring it back).
    func prepareClear(_ vol: VolumeRecord) throws {
        let children = db.config.softPartitions(of: vol.name).map(\.name)
        if !children.isEmpty {
            throw OperationError("\(vol.name): soft partition\(children.count == 1 ? "" : "s") \(children.joined(separator: ", ")) \(children.count == 1 ? "is" : "are") carved from it; clear \(children.count == 1 ? "it" : "them") first (metactl clear \(children.joined(separator: " ")))", code: .inUse)
        }
        if vol.type == .softpart, let parent = vol.softPartition?.parent, let p = try? openEngine(parent) {
            do { try SoftPartitionVolume.writeWatermarks(of: vol, inUse: false, to: p) } catch {
                logger.warning("\(vol.name): its watermarks in \(parent) could not be marked free (\(error)); `metactl recover \(parent)` may find it again")
            }
        }
    }

    /// `recover PARENT`: soft partitions rebuilt from the watermarks in the parent.
    public func recover(_ r: RecoverRequest) throws -> RecoverResult {
        opLockAcquire(); defer { opLockRelease() }
        let (parent, engine) = try softParent(r.parent, for: "recover")
        let parentBlocks = engine.sizeBytes / Volume.blockSize
        let scan = SoftPartitionVolume.scanWatermarks(of: engine) { [progressReporter] done, total in
            progressReporter?(r.parent, "recover", Double(done) / Double(max(1, total)) * 100, 0)
        }
        let found = SoftPartitionWatermark.recover(scan.found)
        var parts: [RecoverResult.Partition] = []
        var add: [VolumeRecord] = []
        var used = db.config.softExtents(of: parent.name)
        for f in found {
            var p = RecoverResult.Partition(name: f.name, sizeBytes: f.extents.reduce(0) { $0 + $1.blocks } * 512,
                                            extents: f.extents.count, outcome: "skipped", reason: nil)
            let known = db.config.volumes.first { $0.softPartition?.id == f.id }
            if let known {
                p.outcome = "known"
                p.reason = known.name == f.name ? nil : "in the configuration as \(known.name)"
            } else if db.config.volume(named: f.name) != nil || add.contains(where: { $0.name == f.name }) {
                p.reason = "a volume named \(f.name) exists; clear or rename it, then recover again"
            } else if f.extents.contains(where: { !SoftPartitionLayout.fits($0, parentBlocks: parentBlocks, used: used) }) {
                p.reason = "its extents overlap a soft partition in the configuration"
            } else {
                var v = VolumeRecord(name: f.name, type: .softpart)
                v.softPartition = SoftPartitionRecord(parent: parent.name, id: f.id, extents: f.extents.map(SoftExtent.init),
                                                      generation: f.generation)
                add.append(v)
                used += f.extents
                p.outcome = r.dryRun ? "would recover" : "recovered"
            }
            parts.append(p)
        }
        if !r.dryRun && !add.isEmpty {
            try db.commit { cfg in cfg.volumes += add }
            for v in add { _ = try? openEngine(v.name) }
            onVolumesChanged?()
            logger.info("\(parent.name): recovered \(add.count) soft partition(s) from their watermarks")
        }
        return RecoverResult(parent: parent.name, partitions: parts, unreadableChunks: scan.unreadable)
    }
}
