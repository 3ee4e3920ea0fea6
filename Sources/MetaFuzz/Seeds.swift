import Foundation
import MetaControl
import MetaDB
import MetaModel
import MetaDevices

/// The seed corpus (`Tests/Corpus/<target>/seed-*`): real labels, replicas, configurations
/// and registries of a set created by the state database on memory devices, the requests the
/// commands send, and the byte streams NBD clients send (handshakes as nbd-client, qemu and
/// the kernel do them, then every command). Written by `metactl-fuzz --write-seeds DIR`.
public enum FuzzSeeds {
    /// Every seed by target name: (file name, content).
    public static func all() throws -> [String: [(name: String, bytes: [UInt8])]] {
        var out: [String: [(name: String, bytes: [UInt8])]] = [:]
        let set = try realSet()
        out["label"] = set.labels
        out["replica"] = set.replicas
        out["config"] = set.configs
        out["registry"] = [("two-sets", try registry().encoded()), ("empty", try HostRegistry().encoded())]
        out["control"] = try controlRequests().map { ($0.0, try $0.1.encodedLine() + [10]) }
        out["size"] = ["512", "64k", "1m", "2g", "1t", "128b", " 8K ", "0", "18014398509481983k"].map { ($0, Array($0.utf8)) }
        out["names"] = ["d10", "hsp001", "local", "Set_1.a-b", "a", String(repeating: "x", count: 63)].map { ($0.prefix(20) + "", Array($0.utf8)) }
        out["nbd-handshake"] = nbdHandshakes()
        out["nbd-transmission"] = nbdTransmissions()
        // A real ClientHello, whole and in small pieces, cut short, and not TLS at all.
        let hello = FuzzTLS.clientHello()
        out["nbd-tls"] = [("client-hello", [0] + hello), ("client-hello-pieces", [7] + hello),
                          ("client-hello-cut", [0] + hello.prefix(hello.count / 2)),
                          ("plain-nbd", [0] + FuzzTLS.prefix)]
        out["log-record"] = logAreas()
        return out
    }

    /// Removes trailing zero bytes (the image targets zero-fill short inputs).
    static func trimmed(_ b: [UInt8]) -> [UInt8] {
        var end = b.count
        while end > 1 && b[end - 1] == 0 { end -= 1 }
        return Array(b[0..<end])
    }

    static func realSet() throws -> (labels: [(name: String, bytes: [UInt8])], replicas: [(name: String, bytes: [UInt8])],
                                     configs: [(name: String, bytes: [UInt8])]) {
        let devs = (0..<3).map { MemoryDevice(path: "/dev/mem\($0)", sizeBytes: 8 << 20) }
        let db = try SetDatabase.create(setName: "fuzzset", devices: devs.map { ($0, 1) }, slotSize: DiskLayout.minimumSlotSize)
        defer { db.close() }
        let first = try ConfigCodec.encode(db.config)
        try db.commit { c in
            let ids = c.devices.map(\.uuid)
            var v = VolumeRecord(name: "d10", type: .raid5, columns: ids.map { ComponentRecord(device: $0) },
                                 originalColumnCount: 3, interlaceBlocks: 128, columnBlocks: 8192,
                                 hotSparePool: "hsp001", resync: ResyncCheckpoint(kind: .regenerate, column: 1, target: ids[1],
                                                                                    doneBlocks: 100, totalBlocks: 8192),
                                 resyncRate: ResyncRate(minBytesPerSecond: 1 << 20, maxBytesPerSecond: 1 << 30),
                                 dirtyRegions: [1, 7], createdAt: Date(timeIntervalSinceReferenceDate: 800_000_000.25))
            v.lostBlocks = [LostRange(column: 2, start: 64, count: 8)]
            v.columns[1].state = .resyncing
            c.volumes.append(v)
            c.volumes.append(VolumeRecord(name: "d20", type: .stripe,
                                          rows: [RowRecord(interlaceBlocks: 1024, componentBlocks: 4096,
                                                           components: ids.map { ComponentRecord(device: $0, state: .maintenance) })]))
            c.hotSparePools.append(HotSparePoolRecord(name: "hsp001", spares: [HotSpareRecord(device: ids[2], state: .inUse)]))
            c.cleanShutdown = false
        }
        let full = try ConfigCodec.encode(db.config)
        var labels: [(String, [UInt8])] = []
        var replicas: [(String, [UInt8])] = []
        for (i, d) in devs.enumerated() {
            let l = try d.read(count: 2 * DiskLayout.labelSize, at: 0)
            labels.append(("device\(i)", [0] + trimmed(l)))
            // Both slots of the device's replica, each cut to the fuzz target's slot size.
            let slot = Int(DiskLayout.minimumSlotSize)
            let off = DiskLayout.replicaOffset(index: 0, slotSize: UInt64(slot))
            let r = try d.read(count: Int(fuzzSlotSize), at: off) + d.read(count: Int(fuzzSlotSize), at: off + UInt64(slot))
            replicas.append(("device\(i)", [8] + trimmed(r)))
        }
        // A label copy with a torn second copy, and one of a newer version (checksum repaired).
        var torn = try devs[0].read(count: 2 * DiskLayout.labelSize, at: 0)
        torn[DiskLayout.labelSize + 100] ^= 0xff
        labels.append(("torn-copy", [0] + trimmed(torn)))
        var newer = try devs[1].read(count: DiskLayout.labelSize, at: 0)
        newer[8] = 9
        labels.append(("newer-version", [1] + trimmed(newer)))
        // Slot images with the fixed set UUID, checksums repaired by the target.
        replicas.append(("fixed-set", [0] + trimmed(ReplicaImage.encodeSlot(setUUID: fuzzSetUUID, generation: 3, payload: full))))
        return (labels, replicas, [("created", first), ("volumes", full)])
    }

    static func registry() -> HostRegistry {
        var r = HostRegistry()
        r.sets = [
            HostRegistry.Entry(name: "local", uuid: fuzzSetUUID, devices: [
                .init(uuid: UUID(uuid: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)), path: "/dev/sdb", role: .component),
                .init(uuid: UUID(uuid: (2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)), path: "/dev/disk/by-id/x", role: .hotSpare),
            ]),
            HostRegistry.Entry(name: "other", uuid: UUID(uuid: (9, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)),
                               devices: [.init(uuid: fuzzSetUUID, path: "/dev/sdc", role: .replica)]),
        ]
        return r
    }

    static func controlRequests() -> [(String, ControlRequest)] {
        [
            ("ping", .ping),
            ("status", .status(names: ["d10", "d20"])),
            ("create", .create(CreateRequest(name: "d10", type: .raid5, devices: ["/dev/sdb", "/dev/sdc", "/dev/sdd"],
                                             interlaceBytes: 65536, hotSparePool: "hsp001"))),
            ("clear", .clear(name: "d10", force: true)),
            ("grow", .grow(GrowRequest(name: "d10", devices: ["/dev/sde"], interlaceBytes: 1 << 20, force: false, cancel: true))),
            ("replace", .replace(ReplaceRequest(name: "d10", old: "/dev/sdb", new: "/dev/sdf"))),
            ("hot-spare", .hotSpare(HotSpareRequest(action: .add, pool: "hsp001", devices: ["/dev/sdg"]))),
            ("set-params", .setParams(SetParamsRequest(name: "d10", hotSparePool: "none",
                                                       resyncRate: ResyncRate(minBytesPerSecond: 1, maxBytesPerSecond: .max)))),
            ("db-add", .dbAdd(ReplicaRequest(devices: ["/dev/sdh"], copies: 2, force: false))),
            ("db-delete", .dbDelete(ReplicaRequest(devices: ["/dev/sdh"], copies: 0, force: true))),
            ("check", .check(CheckRequest(name: "d10", repair: true, stop: false))),
        ]
    }

    // MARK: NBD client streams

    struct Stream {
        var b: [UInt8] = []
        mutating func u16(_ v: UInt16) { b += [UInt8(v >> 8), UInt8(v & 0xff)] }
        mutating func u32(_ v: UInt32) { for i in (0..<4).reversed() { b.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        mutating func u64(_ v: UInt64) { for i in (0..<8).reversed() { b.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        mutating func option(_ o: UInt32, _ data: [UInt8] = []) { u64(0x4948_4156_454f_5054); u32(o); u32(UInt32(data.count)); b += data }
        mutating func go(_ name: String, info: [UInt16] = [], option: UInt32 = 7) {
            var d = Stream()
            d.u32(UInt32(name.utf8.count)); d.b += Array(name.utf8); d.u16(UInt16(info.count)); for i in info { d.u16(i) }
            self.option(option, d.b)
        }
        /// A request; a WRITE's payload follows unless `payload` is false.
        mutating func request(_ type: UInt16, flags: UInt16 = 0, offset: UInt64, length: UInt32, cookie: UInt64 = 1,
                              payload: Bool = true) {
            u32(0x2560_9513); u16(flags); u16(type); u64(cookie); u64(offset); u32(length)
            if type == 1 && payload { b += (0..<Int(length)).map { UInt8(truncatingIfNeeded: $0 &* 31) } }
        }
        /// A typical transmission: every command, then DISC.
        mutating func commands() {
            request(1, offset: 4096, length: 2048)
            request(0, offset: 0, length: 4096, cookie: 2)
            request(1, flags: 1, offset: 512, length: 512, cookie: 3)
            request(3, offset: 0, length: 0, cookie: 4)
            request(4, offset: 8192, length: 4096, cookie: 5)
            request(6, flags: 2, offset: 16384, length: 1024, cookie: 6)
            request(0, offset: 65024, length: 512, cookie: 7)
            request(0, offset: 65536, length: 512, cookie: 8)     // beyond the end
            request(7, offset: 0, length: 512, cookie: 9)         // BLOCK_STATUS: unsupported
            request(1, offset: 0, length: 5000, cookie: 10)       // above the maximum payload
            request(2, offset: 0, length: 0, cookie: 11)
        }
    }

    static func nbdHandshakes() -> [(name: String, bytes: [UInt8])] {
        var out: [(String, [UInt8])] = []
        // nbd-client / the kernel: fixed newstyle, no zeroes, GO with block-size info, then I/O.
        var s = Stream(); s.u32(3); s.option(8); s.go("disk", info: [3, 1, 2]); s.commands()
        out.append(("go-structured", [1, 0] + s.b))
        // qemu: LIST, INFO, then GO on the default export.
        s = Stream(); s.u32(1); s.option(3); s.go("", info: [3], option: 6); s.go(""); s.commands()
        out.append(("list-info-go", [0, 0] + s.b))
        // Old clients: NBD_OPT_EXPORT_NAME, with the zero padding.
        s = Stream(); s.u32(1); s.option(1, Array("ro".utf8)); s.request(0, offset: 1, length: 3); s.request(1, offset: 0, length: 1)
        out.append(("export-name", [1, 7] + s.b))
        // Refusals: TLS, unknown option, unknown export, malformed GO, abort.
        s = Stream(); s.u32(3); s.option(5); s.option(42, [1, 2, 3]); s.go("nope"); s.option(7, [0, 0]); s.option(3, [1]); s.option(2)
        out.append(("refusals", [1, 1] + s.b))
        s = Stream(); s.u32(3); s.option(7, [UInt8](repeating: 0, count: 5000))
        out.append(("oversized-option", [0, 0] + s.b))
        return out
    }

    static func nbdTransmissions() -> [(name: String, bytes: [UInt8])] {
        var out: [(String, [UInt8])] = []
        for flags: UInt8 in [0, 1, 2, 3, 4, 5, 9] {
            var s = Stream(); s.commands()
            out.append(("commands-\(flags)", [flags, flags == 3 ? 5 : 0] + s.b))
        }
        var s = Stream(); s.request(1, offset: 0, length: 40 << 20, payload: false)
        out.append(("huge-write", [0, 0] + s.b))
        // Pipelined: the handshake's replies must reach the client before the hang-up.
        s = Stream(); s.request(0, offset: 0, length: 512); s.b[0] ^= 1
        out.append(("bad-magic", [1, 0] + s.b))
        return out
    }
}
