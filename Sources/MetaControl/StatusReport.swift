import Foundation
import MetaDB
import MetaModel
import MetaEngine

/// `metactl status --json`: the documented, stable schema (fields may be added, never renamed).
public struct StatusReport: Codable, Sendable, Equatable {
    /// A RAID-5 volume's write log in `status`.
    public struct WriteLogStatus: Codable, Sendable, Equatable {
        /// `auto` (writes are logged) or `none`.
        public var mode: String
        /// Bytes of the log area reserved after each original column (0: none).
        public var areaBytes: UInt64
        /// The dedicated log device (`set --log-device`), if any.
        public var device: String? = nil
        /// Bytes of the log area on that device.
        public var deviceAreaBytes: UInt64? = nil
        /// Whether that device failed (records then go to the columns' areas).
        public var deviceFailed: Bool = false
        public init(mode: String, areaBytes: UInt64, device: String? = nil, deviceAreaBytes: UInt64? = nil, deviceFailed: Bool = false) {
            self.mode = mode; self.areaBytes = areaBytes; self.device = device; self.deviceAreaBytes = deviceAreaBytes
            self.deviceFailed = deviceFailed
        }
    }

    /// A volume's resync rate limits in bytes per second; a nil maximum is unlimited.
    public struct RateLimits: Codable, Sendable, Equatable {
        public var minBytesPerSecond: UInt64
        public var maxBytesPerSecond: UInt64?
        public init(minBytesPerSecond: UInt64, maxBytesPerSecond: UInt64?) {
            self.minBytesPerSecond = minBytesPerSecond; self.maxBytesPerSecond = maxBytesPerSecond
        }
    }
    public struct Resync: Codable, Sendable, Equatable {
        /// `initialize`, `regenerate`, `copy`, `parity-repair`, `zeroing`.
        public var kind: String
        public var percent: Double
        public var bytesPerSecond: Double
        public var secondsLeft: Double?
        /// The device a copy reads (the old device, or the hot spare standing in for it).
        public var source: String?
        /// The device being written: the replacement, or the spare taking over.
        public var target: String?
        /// RAID-6: the devices of further columns rebuilt in the same pass (empty: none).
        public var moreTargets: [String] = []
        /// A returned device's rebuild: how many dirty regions (written while it was away)
        /// it covers; nil: every line.
        public var regions: Int? = nil
        public init(kind: String, percent: Double, bytesPerSecond: Double, secondsLeft: Double? = nil,
                    source: String? = nil, target: String? = nil) {
            self.kind = kind; self.percent = percent; self.bytesPerSecond = bytesPerSecond; self.secondsLeft = secondsLeft
            self.source = source; self.target = target
        }
    }
    /// The current or last `metactl check` of a RAID-5 volume.
    public struct CheckStatus: Codable, Sendable, Equatable {
        /// Whether the check runs now (or is interrupted and resumes when the set is served).
        public var running: Bool
        /// Whether mismatches are repaired (`check --repair`).
        public var repair: Bool
        public var percent: Double
        /// While running in a server: bytes read per second from each column (the rate
        /// `set --resync-rate` limits).
        public var bytesPerSecond: Double?
        public var secondsLeft: Double?
        /// ISO 8601 times.
        public var startedAt: String
        public var endedAt: String?
        /// `completed`, `stopped` or `abandoned` (null while running).
        public var result: String?
        /// Why an abandoned check could not go on.
        public var failure: String?
        /// Lines whose parity did not match their data, and the first of them (line numbers;
        /// a line is one interlace of every column).
        public var mismatches: UInt64
        public var mismatchLines: [UInt64]
        /// Mismatching lines whose parity was rewritten.
        public var repaired: UInt64
        /// Unreadable units rewritten from the other columns.
        public var readErrorsRepaired: UInt64
        /// RAID-6: the wrong units the syndromes located (the first 16): line and column.
        public var located: [CheckCounts.LocatedUnit] = []
    }
    public struct Component: Codable, Sendable, Equatable {
        public var device: String
        public var uuid: String
        public var startBlock: UInt64
        public var hasReplica: Bool
        public var state: String
        /// Path of the hot spare standing in, or null.
        public var hotSpare: String?
        /// Whether the device was found when the set was opened.
        public var present: Bool
        /// Size of the device in bytes.
        public var sizeBytes: UInt64
        /// An `Unavailable` column whose device went away: how many regions were written
        /// since (only those are rebuilt when the same device comes back); nil: not tracked.
        public var staleRegions: Int? = nil
        public init(device: String, uuid: String, startBlock: UInt64, hasReplica: Bool, state: String, hotSpare: String? = nil, present: Bool, sizeBytes: UInt64, staleRegions: Int? = nil) {
            self.device = device; self.uuid = uuid; self.startBlock = startBlock; self.hasReplica = hasReplica; self.state = state; self.hotSpare = hotSpare; self.present = present; self.sizeBytes = sizeBytes
            self.staleRegions = staleRegions
        }
    }
    /// A volume's mapping to a block device (`metactl map`).
    public struct Mapped: Codable, Sendable, Equatable {
        /// The block device: `/dev/loopN`, or `/dev/nbdN`.
        public var device: String
        /// The path taken: `nbdfuse` (nbdfuse and a loop device) or `netlink` (the kernel nbd driver).
        public var via: String
        /// Mapped read-only.
        public var readOnly: Bool
        public init(device: String, via: String, readOnly: Bool) { self.device = device; self.via = via; self.readOnly = readOnly }
    }
    public struct Row: Codable, Sendable, Equatable {
        public var interlaceBytes: UInt64
        public var sizeBytes: UInt64
        public var components: [Component]
        public init(interlaceBytes: UInt64, sizeBytes: UInt64, components: [Component]) {
            self.interlaceBytes = interlaceBytes; self.sizeBytes = sizeBytes; self.components = components
        }
    }
    public struct VolumeStatus: Codable, Sendable, Equatable {
        public var name: String
        /// `concat`, `stripe`, `raid5`.
        public var type: String
        public var state: String
        public var sizeBytes: UInt64
        /// The interlace (RAID-5, or the first row of a stripe; null for a concat).
        public var interlaceBytes: UInt64?
        public var hotSparePool: String?
        public var resync: Resync?
        /// Every component: the rows' in order (concat/stripe) or the columns (RAID-5).
        public var components: [Component]
        /// concat/stripe: the rows.
        public var rows: [Row]?
        /// raid5: how many leading columns carry parity (the rest were added by grow).
        public var originalColumns: Int?
        /// What to run to fix it, when something needs an action.
        public var invoke: String?
        /// Clients connected through the server (null when no server runs).
        public var openCount: Int?
        /// RAID-5: bytes of data known to be lost (0 when none).
        /// Resync rate limits set with `metactl set --resync-rate` (nil: the defaults).
        public var resyncRate: RateLimits? = nil
        public var lostBytes: UInt64 = 0
        /// RAID-5: the write log (null for other types).
        public var writeLog: WriteLogStatus? = nil
        /// RAID-5: where (empty when none).
        public var lost: [Extent] = []
        /// RAID-5: the current or last check (null: never checked).
        public var check: CheckStatus? = nil
        /// Where `metactl map` mapped the volume (null: not mapped). Filled in by the
        /// `status` command from the maps file, not by the server.
        public var mapped: Mapped? = nil
        /// A soft partition: its parent and extents (null for other types).
        public var softPartition: SoftPartitionStatus? = nil
        /// A mirror: its sides and policies (null for other types).
        public var mirror: MirrorStatus? = nil
        /// The mirror this volume is a side of (null: none).
        public var sideOf: String? = nil
        public init(name: String, type: String, state: String, sizeBytes: UInt64, interlaceBytes: UInt64? = nil, hotSparePool: String? = nil, resync: Resync? = nil, components: [Component], rows: [Row]? = nil, originalColumns: Int? = nil, invoke: String? = nil, openCount: Int? = nil) {
            self.name = name; self.type = type; self.state = state; self.sizeBytes = sizeBytes; self.interlaceBytes = interlaceBytes; self.hotSparePool = hotSparePool; self.resync = resync; self.components = components; self.rows = rows; self.originalColumns = originalColumns; self.invoke = invoke; self.openCount = openCount
        }
    }
    /// A mirror's sides and policies.
    public struct MirrorStatus: Codable, Sendable, Equatable {
        public struct Side: Codable, Sendable, Equatable {
            /// The side's volume.
            public var name: String
            /// `Okay`, `Resyncing`, `Needs Maintenance`, `Last Erred` or `Offline`.
            public var state: String
            /// While resyncing: how far, in percent of what it copies.
            public var resyncPercent: Double?
            /// While resyncing: the regions it copies (null: every region).
            public var resyncRegions: Int?
            /// While offline: the regions written since (what `online` resyncs).
            public var staleRegions: Int?

            enum CodingKeys: String, CodingKey { case name, state, resyncPercent, resyncRegions, staleRegions }
            /// Every key, null where absent (the documented schema).
            public func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(name, forKey: .name)
                try c.encode(state, forKey: .state)
                try c.encode(resyncPercent, forKey: .resyncPercent)
                try c.encode(resyncRegions, forKey: .resyncRegions)
                try c.encode(staleRegions, forKey: .staleRegions)
            }
        }
        public var readPolicy: String
        public var writePolicy: String
        public var pass: Int
        /// Bytes per dirty region.
        public var regionBytes: UInt64
        /// Regions with writes possibly in flight.
        public var dirtyRegions: Int
        public var sides: [Side]
    }
    /// Where a soft partition lies in its parent.
    public struct SoftPartitionStatus: Codable, Sendable, Equatable {
        /// A run of the parent: data from `startBlock` (512-byte blocks of the parent; its
        /// watermark is in the 8 blocks before), `blocks` long.
        public struct Extent: Codable, Sendable, Equatable {
            public var startBlock: UInt64
            public var blocks: UInt64
        }
        public var parent: String
        public var extents: [Extent]
    }
    /// A run of lost data (RAID-5): bytes of the volume that read as EIO until rewritten.
    public struct Extent: Codable, Sendable, Equatable {
        public var offsetBytes: UInt64
        public var lengthBytes: UInt64
        public init(offsetBytes: UInt64, lengthBytes: UInt64) { self.offsetBytes = offsetBytes; self.lengthBytes = lengthBytes }
    }
    public struct Spare: Codable, Sendable, Equatable {
        public var device: String
        public var state: String
        public var sizeBytes: UInt64
        public init(device: String, state: String, sizeBytes: UInt64) {
            self.device = device; self.state = state; self.sizeBytes = sizeBytes
        }
    }
    public struct Pool: Codable, Sendable, Equatable {
        public var name: String
        public var spares: [Spare]
        public init(name: String, spares: [Spare]) {
            self.name = name; self.spares = spares
        }
    }
    public struct QuorumInfo: Codable, Sendable, Equatable {
        public var readable: Int
        public var total: Int
        public var writable: Bool
        public init(readable: Int, total: Int, writable: Bool) {
            self.readable = readable; self.total = total; self.writable = writable
        }
    }
    public var set: String
    public var volumes: [VolumeStatus]
    public var hotSparePools: [Pool]
    public var quorum: QuorumInfo
    /// Why the set is read-only, and what to do (null when writable).
    public var readOnlyReason: String?
    /// Whether the report comes from a running server (live state).
    public var live: Bool

    public init(set: String, volumes: [VolumeStatus], hotSparePools: [Pool], quorum: QuorumInfo, readOnlyReason: String? = nil, live: Bool) {
        self.set = set; self.volumes = volumes; self.hotSparePools = hotSparePools; self.quorum = quorum; self.readOnlyReason = readOnlyReason; self.live = live
    }
}

extension StatusReport {
    /// Builds the report from a configuration plus live progress where available.
    public static func make(config: SetConfig, quorum: Quorum, live: Bool,
                            devicePaths: (UUID) -> String?, present: (UUID) -> Bool,
                            progress: (String) -> (kind: ResyncKind, done: UInt64, total: UInt64, bytesPerSecond: Double)?,
                            openCount: (String) -> Int?, names: [String] = [],
                            checkProgress: (String) -> (done: UInt64, total: UInt64, bytesPerSecond: Double)? = { _ in nil },
                            mirrorProgress: (String) -> (side: Int, done: UInt64, total: UInt64, bytesPerSecond: Double)? = { _ in nil }) -> StatusReport {
        func path(_ u: UUID) -> String { devicePaths(u) ?? config.device(u)?.lastPath ?? u.uuidString }
        func comp(_ c: ComponentRecord) -> Component {
            let d = config.device(c.device)
            return Component(device: path(c.device), uuid: c.device.uuidString, startBlock: d?.dataStartBlock ?? 0,
                             hasReplica: (d?.replicaCount ?? 0) > 0, state: c.state.rawValue,
                             hotSpare: c.hotSpare.map(path), present: present(c.activeDevice),
                             sizeBytes: d?.sizeBytes ?? 0, staleRegions: c.staleRegions?.count)
        }
        var vols: [VolumeStatus] = []
        for recorded in config.volumes where names.isEmpty || names.contains(recorded.name) {
            // Without a server nothing has recorded a missing component yet: show it as the
            // server would on its start (Unavailable), and the volume's state accordingly.
            func asServed(_ recorded: VolumeRecord) -> VolumeRecord {
                var v = recorded
                guard !live else { return v }
                for i in v.columns.indices where !present(v.columns[i].activeDevice) && !v.columns[i].state.isErred {
                    v.columns[i].state = .unavailable
                }
                for r in v.rows.indices {
                    for i in v.rows[r].components.indices where !present(v.rows[r].components[i].activeDevice) {
                        v.rows[r].components[i].state = .unavailable
                    }
                }
                return v
            }
            let v = asServed(recorded)
            // A soft partition has no state of its own: its parent's.
            let parentRecord = v.softPartition.flatMap { config.volume(named: $0.parent) }.map(asServed)
            let state = parentRecord?.derivedState ?? v.derivedState
            var resync: Resync? = nil
            if let p = progress(v.name), p.total > 0 {
                let pct = Double(p.done) / Double(p.total) * 100
                // A rebuild's rate counts the bytes written to its one column; initialisation and
                // parity repair count the data bytes of whole lines.
                let unitBytes = Double(v.interlaceBlocks * 512)
                let lineBytes = p.kind == .regenerate || p.kind == .copy
                    ? unitBytes : unitBytes * Double(max(1, v.columns.count - 1))
                let left = p.bytesPerSecond > 0 ? Double(p.total - p.done) * lineBytes / p.bytesPerSecond : nil
                resync = Resync(kind: p.kind.rawValue, percent: (pct * 10).rounded() / 10, bytesPerSecond: p.bytesPerSecond,
                                secondsLeft: left)
            } else if let r = v.resync, r.totalBlocks > 0 {
                resync = Resync(kind: r.kind.rawValue, percent: (Double(r.doneBlocks) / Double(r.totalBlocks) * 1000).rounded() / 10,
                                bytesPerSecond: 0, secondsLeft: nil)
            }
            // The same rules replace runs: every Invoke line names commands it accepts.
            // Review finding 19: which devices a rebuild reads and writes.
            if let cp = v.resync, cp.kind == .copy || cp.kind == .regenerate {
                resync?.target = cp.target.map(path)
                resync?.moreTargets = (cp.more ?? []).map { path($0.target) }
                resync?.regions = cp.regions?.count
                if cp.kind == .copy {
                    resync?.source = cp.source.map(path) ?? cp.column.flatMap { v.columns.indices.contains($0) ? path(v.columns[$0].activeDevice) : nil }
                }
            }
            var invoke = ReplaceRules.invoke(v, setName: config.setName, path: path, present: present)
            let comps = v.allComponents
            if let m = config.mirror(using: v.name), let bad = comps.first(where: { $0.state.isErred }) {
                // A side's failed component is replaced through its mirror, which resyncs it.
                let set = config.setName == "local" ? "" : " -s \(config.setName)"
                invoke = "metactl replace\(set) \(m.name) \(path(bad.device)) <new device>"
            } else if !v.type.hasColumns, let bad = comps.first(where: { $0.state.isErred }) {
                // replace refuses a concat/stripe (nothing to rebuild from): say what is true.
                invoke = "restore \(v.name) from a backup: \(path(bad.device)) failed and a \(v.type.rawValue) has no redundancy (`metactl clear \(v.name)`, then create it again on working devices)"
            }
            let sizeBlocks: UInt64
            var rows: [Row]? = nil
            var interlace: UInt64? = nil
            switch v.type {
            case .raid5, .raid6:
                let lines = v.interlaceBlocks > 0 ? v.columnBlocks / v.interlaceBlocks : 0
                sizeBlocks = lines * v.interlaceBlocks * UInt64(max(0, v.originalColumnCount - v.type.parityCount))
                    + lines * v.interlaceBlocks * UInt64(v.columns.count - v.originalColumnCount)
                interlace = v.interlaceBlocks * 512
            case .softpart:
                sizeBlocks = v.softPartition?.extents.reduce(0) { $0 + $1.blocks } ?? 0
            case .mirror:
                sizeBlocks = (v.mirror?.submirrors ?? []).compactMap { config.volume(named: $0.volume).map(rowBlocks) }.min() ?? 0
            case .concat, .stripe:
                var total: UInt64 = 0
                rows = v.rows.map { r in
                    let used = r.components.count == 1 ? r.componentBlocks : r.componentBlocks / max(1, r.interlaceBlocks) * r.interlaceBlocks
                    let size = used * UInt64(r.components.count)
                    total += size
                    return Row(interlaceBytes: r.interlaceBlocks * 512, sizeBytes: size * 512, components: r.components.map(comp))
                }
                sizeBlocks = total
                if v.type == .stripe { interlace = (v.rows.first?.interlaceBlocks ?? 0) * 512 }
            }
            let lost = v.lostExtents.map { Extent(offsetBytes: $0.start * 512, lengthBytes: $0.count * 512) }
            if !lost.isEmpty && invoke == nil {
                invoke = "restore the lost ranges from a backup: writing them makes them readable again (metactl status --json \(v.name) lists them)"
            }
            var vs = VolumeStatus(name: v.name, type: v.type.rawValue, state: state.rawValue, sizeBytes: sizeBlocks * 512,
                                  interlaceBytes: interlace, hotSparePool: v.hotSparePool, resync: resync,
                                  components: comps.map(comp), rows: rows,
                                  originalColumns: v.type.hasColumns ? v.originalColumnCount : nil,
                                  invoke: invoke, openCount: openCount(v.name))
            vs.lost = lost
            vs.sideOf = config.mirror(using: v.name)?.name
            if let m = v.mirror {
                let live = mirrorProgress(v.name)
                let regionCount = (sizeBlocks + m.regionBlocks - 1) / max(1, m.regionBlocks)
                let sides = m.submirrors.enumerated().map { i, s -> MirrorStatus.Side in
                    var pct: Double? = nil
                    if s.state == .resyncing {
                        let total = UInt64(m.resyncRegionList(i, regionCount: regionCount).count) * m.regionBlocks
                        let done = live?.side == i ? live!.done : (s.resyncDoneBlocks ?? 0)
                        pct = total > 0 ? (Double(min(done, total)) / Double(total) * 1000).rounded() / 10 : 100
                    }
                    return MirrorStatus.Side(name: s.volume, state: s.state.rawValue, resyncPercent: pct,
                                             resyncRegions: s.state == .resyncing ? s.resyncRegions?.count : nil,
                                             staleRegions: s.state == .offline ? (s.staleRegions?.count ?? 0) : nil)
                }
                vs.mirror = MirrorStatus(readPolicy: m.readPolicy.rawValue, writePolicy: m.writePolicy.rawValue, pass: m.pass,
                                         regionBytes: m.regionBlocks * 512, dirtyRegions: v.dirtyRegions.count, sides: sides)
                if let l = live, l.total > 0 {
                    vs.resync = Resync(kind: "mirror-resync", percent: (Double(l.done) / Double(l.total) * 1000).rounded() / 10,
                                       bytesPerSecond: l.bytesPerSecond,
                                       secondsLeft: l.bytesPerSecond > 0 ? Double(l.total - l.done) * 512 / l.bytesPerSecond : nil)
                    vs.resync?.target = m.submirrors.indices.contains(l.side) ? m.submirrors[l.side].volume : nil
                }
                vs.invoke = mirrorInvoke(v.name, m, setName: config.setName) { side in
                    config.volume(named: side)?.allComponents.first { $0.state.isErred }.map { path($0.device) }
                }
            }
            if let sp = v.softPartition {
                vs.softPartition = SoftPartitionStatus(parent: sp.parent, extents: sp.extents.map {
                    SoftPartitionStatus.Extent(startBlock: $0.dataBlock, blocks: $0.blocks)
                })
                if state != .okay { vs.invoke = "its state is its parent's: see metactl status \(sp.parent)" }
            }
            vs.resyncRate = v.resyncRate.map {
                RateLimits(minBytesPerSecond: $0.minBytesPerSecond,
                           maxBytesPerSecond: $0.maxBytesPerSecond == .max || $0.maxBytesPerSecond == 0 ? nil : $0.maxBytesPerSecond)
            }
            vs.lostBytes = lost.reduce(0) { $0 + $1.lengthBytes }
            if v.type == .raid5 || (v.type == .raid6 && v.writeLog != nil) {
                vs.writeLog = WriteLogStatus(mode: v.writeLog?.active == true ? WriteLogMode.auto.rawValue : WriteLogMode.none.rawValue,
                                             areaBytes: (v.writeLog?.areaBlocks ?? 0) * 512,
                                             device: v.writeLog?.device.map(path),
                                             deviceAreaBytes: v.writeLog?.deviceAreaBlocks.map { $0 * 512 },
                                             deviceFailed: v.writeLog?.deviceFailed == true)
            }
            if let c = v.check {
                let live = c.running ? checkProgress(v.name) : nil
                let done = live?.done ?? c.doneLines
                // Per column (a mirror: per side), as the rate.
                let lineBytes = Double(v.mirror.map { MirrorVolume.chunkBytes(regionBlocks: $0.regionBlocks) } ?? v.interlaceBlocks * 512)
                let rate = live.map(\.bytesPerSecond)
                let iso = ISO8601DateFormatter()
                vs.check = CheckStatus(
                    running: c.running, repair: c.repair,
                    percent: c.totalLines > 0 ? (Double(done) / Double(c.totalLines) * 1000).rounded() / 10 : 100,
                    bytesPerSecond: rate,
                    secondsLeft: rate.flatMap { $0 > 0 ? Double(c.totalLines - min(done, c.totalLines)) * lineBytes / $0 : nil },
                    startedAt: iso.string(from: c.startedAt), endedAt: c.endedAt.map { iso.string(from: $0) },
                    result: c.result?.rawValue, failure: c.failure, mismatches: c.counts.mismatches,
                    mismatchLines: c.counts.lines, repaired: c.counts.repaired,
                    readErrorsRepaired: c.counts.readErrorsRepaired, located: c.counts.located ?? [])
            }
            vols.append(vs)
        }
        let pools = config.hotSparePools.map { p in
            Pool(name: p.name, spares: p.spares.map { s in
                Spare(device: path(s.device), state: s.state.rawValue, sizeBytes: config.device(s.device)?.sizeBytes ?? 0)
            })
        }
        var reason: String? = nil
        if !quorum.writable {
            reason = "only \(quorum.readable) of \(quorum.total) state database replicas are readable: the set is read-only. Bring the missing devices back, or remove their replicas with `metactl db delete --force DEV`"
        }
        return StatusReport(set: config.setName, volumes: vols, hotSparePools: pools,
                            quorum: QuorumInfo(readable: quorum.readable, total: quorum.total, writable: quorum.writable),
                            readOnlyReason: reason, live: live)
    }
}

extension StatusReport {
    /// Blocks of a concat or stripe volume (its rows' used space).
    static func rowBlocks(_ v: VolumeRecord) -> UInt64 {
        v.rows.reduce(0) { total, r in
            let used = r.components.count == 1 ? r.componentBlocks : r.componentBlocks / max(1, r.interlaceBlocks) * r.interlaceBlocks
            return total + used * UInt64(r.components.count)
        }
    }

    /// What to run for a mirror that needs an action (nil when none does).
    /// `failed`: the path of a side's failed component, when one is known.
    static func mirrorInvoke(_ name: String, _ m: MirrorRecord, setName: String, failed: (String) -> String? = { _ in nil }) -> String? {
        let set = setName == "local" ? "" : " -s \(setName)"
        if let s = m.submirrors.first(where: { $0.state == .needsMaintenance }) {
            if let bad = failed(s.volume) {
                return "metactl replace\(set) \(name) \(bad) <new device> (or, once that device works again, metactl online\(set) \(name) \(s.volume))"
            }
            return "metactl online\(set) \(name) \(s.volume) (after fixing its devices; or metactl detach\(set) -f \(name) \(s.volume))"
        }
        if let s = m.submirrors.first(where: { $0.state == .offline }) {
            return "metactl online\(set) \(name) \(s.volume)"
        }
        if m.submirrors.contains(where: { $0.state == .lastErred }) {
            return "restore the data of \(name) from a backup: every side has failed"
        }
        return nil
    }
}
