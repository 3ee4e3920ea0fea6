import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport
import Testing

/// A set on loop devices that are detached and re-attached in a different order is found by
/// label UUID, with the right devices in the right roles.
@Suite(.serialized) struct LoopRenameTests {
    static func backingFile(_ loop: String) -> String? {
        let name = (loop as NSString).lastPathComponent
        return (try? String(contentsOfFile: "/sys/block/\(name)/loop/backing_file", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.enabled(if: Privileged.runnable)) func reattachedInAnotherOrder() throws {
        let t = try TempDir(prefix: "metactl-loops")
        let files = try (0..<4).map { try t.image("d\($0).img", size: 16 << 20) }
        let etc = t.file("etc"), run = t.file("run")
        var loops = try files.map { try LoopDevice(file: $0) }
        defer { loops.forEach { $0.detach() } }

        var fileOf: [UUID: String] = [:]
        var roleOf: [UUID: DeviceRole] = [:]
        do {
            let db = try SetDatabase.create(setName: "loops", replicaDevices: loops.prefix(3).map { ($0.path, 1) },
                                            configDir: etc, runDir: run, force: false)
            defer { db.close() }
            try db.commit { c in
                c.devices[0].role = .component
                c.devices[1].role = .hotSpare
                _ = try db.addDevice(path: loops[3].path, role: .component, replicaCopies: 0, force: false, in: &c)
            }
            for (i, d) in db.config.devices.enumerated() {
                fileOf[d.uuid] = files[i]
                roleOf[d.uuid] = d.role
            }
            #expect(db.config.devices[3].dataStartBlock == 2048)
            #expect(db.config.devices[0].dataStartBlock == 10240)
        }
        // Detach everything, re-attach in reverse order: every /dev name now points elsewhere.
        let before = loops.map(\.path)
        loops.forEach { $0.detach() }
        loops = try files.reversed().map { try LoopDevice(file: $0) }
        #expect(loops.map { Self.backingFile($0.path) } == files.reversed())
        _ = before

        let db = try SetDatabase.open(setName: "loops", configDir: etc, runDir: run, mode: .readWrite)
        #expect(db.quorum == Quorum(readable: 3, total: 3))
        #expect(db.missingDevices.isEmpty)
        for d in db.config.devices {
            let dev = try #require(db.device(d.uuid))
            #expect(Self.backingFile(dev.path) == fileOf[d.uuid], "device \(d.uuid) opened at the wrong path")
            #expect(d.role == roleOf[d.uuid])
            #expect(SetDatabase.readLabel(path: dev.path)?.role == roleOf[d.uuid])
            #expect(d.lastPath == dev.path) // recorded on the read-write open
        }
        db.close()

        // Forget the host, then import by scanning the system's block devices.
        try FileManager.default.removeItem(atPath: HostRegistry.path(configDir: etc))
        let results = try SetDatabase.importSets(paths: [], configDir: etc)
        let mine = try #require(results.first { $0.set == "loops" })
        #expect(mine.recorded)
        #expect(mine.devices.allSatisfy { $0.found && Self.backingFile($0.path) == fileOf[$0.uuid] && $0.role == roleOf[$0.uuid] })
        let again = try SetDatabase.open(setName: "loops", configDir: etc, runDir: run, mode: .readOnly)
        defer { again.close() }
        #expect(again.quorum.writable)
        #expect(again.missingDevices.isEmpty)
    }
}
