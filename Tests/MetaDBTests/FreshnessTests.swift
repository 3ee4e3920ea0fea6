import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport
import Testing

/// Review item 13 (docs/REVIEW-FOLLOWUP.md): an older copy of a member (a snapshot, a clone,
/// an old image) carries the member's label; it must not be opened as the member once a
/// server start has raised the members' freshness stamps.
@Suite struct FreshnessTests {
    @Test func labelStampRoundTripsAndOldLabelsReadZero() throws {
        var l = Label(setUUID: UUID(), setName: "s", deviceUUID: UUID(), role: .component, replicaCount: 0,
                      slotSize: 0, dataStartBlock: 2048, deviceSizeBytes: 1 << 30)
        #expect(try Label.decode(l.encoded()).get().epoch == 0)
        l.epoch = 0x0102_0304_0506_0708
        let back = try Label.decode(l.encoded()).get()
        #expect(back == l)
    }

    @Test func olderCopiesAreNotUsedAsMembers() throws {
        let t = try TempDir(prefix: "metactl-fresh")
        let files = try (0..<4).map { try t.image("d\($0).img", size: 16 << 20) }
        let etc = t.file("etc"), run = t.file("run")
        var component = UUID()
        do {
            let db = try SetDatabase.create(setName: "fresh", replicaDevices: files.prefix(3).map { ($0, 1) },
                                            configDir: etc, runDir: run, force: false)
            defer { db.close() }
            try db.commit { c in
                component = try db.addDevice(path: files[3], role: .component, replicaCopies: 0, force: false, in: &c).uuid
            }
        }
        // Copies taken before the server starts: of the component and of a replica holder.
        let fm = FileManager.default
        try fm.copyItem(atPath: files[3], toPath: t.file("clone3.img"))
        try fm.copyItem(atPath: files[0], toPath: t.file("clone0.img"))

        // A server start raises every present device's stamp.
        do {
            let db = try SetDatabase.open(setName: "fresh", configDir: etc, runDir: run, mode: .readWrite)
            defer { db.close() }
            try db.beginServing()
            #expect(db.config.cleanShutdown == false)
            #expect(db.config.devices.allSatisfy { $0.epoch == 1 })
            #expect(files.allSatisfy { SetDatabase.readLabel(path: $0)?.epoch == 1 })
        }

        // The older copies stand where the members were.
        func swap(_ a: String, _ b: String) throws {
            try fm.moveItem(atPath: a, toPath: t.file("tmp.img"))
            try fm.moveItem(atPath: b, toPath: a)
            try fm.moveItem(atPath: t.file("tmp.img"), toPath: b)
        }
        try swap(files[3], t.file("clone3.img"))
        try swap(files[0], t.file("clone0.img"))
        do {
            let db = try SetDatabase.open(setName: "fresh", configDir: etc, runDir: run, mode: .readWrite)
            defer { db.close() }
            #expect(db.device(component) == nil, "the stale copy of the component is not opened")
            #expect(db.missingDevices.count == 2)
            #expect(db.quorum == Quorum(readable: 2, total: 3), "the stale replica holder does not count")
            let notes = db.skippedWhileLoading.filter { $0.contains("an older copy of member") }
            #expect(notes.count == 2, "\(db.skippedWhileLoading)")
            #expect(notes.allSatisfy { $0.contains("freshness stamp 0, the set expects 1") })
        }
        // The members come back: both are used again.
        try swap(files[3], t.file("clone3.img"))
        try swap(files[0], t.file("clone0.img"))
        do {
            let db = try SetDatabase.open(setName: "fresh", configDir: etc, runDir: run, mode: .readWrite)
            defer { db.close() }
            #expect(db.missingDevices.isEmpty)
            #expect(db.device(component) != nil)
            #expect(db.quorum == Quorum(readable: 3, total: 3))
            // A member missing at a server start keeps its expected stamp.
            try db.beginServing()
            #expect(db.config.devices.allSatisfy { $0.epoch == 2 })
        }
    }
}
