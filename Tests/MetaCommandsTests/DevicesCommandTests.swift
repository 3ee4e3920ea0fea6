import Foundation
import Testing
import MetaCommands
import MetaDB
import MetaModel
import MetaDevices
import MetaTestSupport

@Suite("metactl devices")
struct DevicesCommandTests {
    static func sample() -> [DeviceInfo] {
        [
            DeviceInfo(path: "/dev/loop3", name: "loop3", kind: .loop, major: 7, minor: 3, sizeBytes: 8 << 20,
                       backingFile: "/tmp/a.img", mountPoints: ["/mnt/x"],
                       probe: ProbeResult(type: "ext4", uuid: "u", label: "data", usage: "filesystem")),
            DeviceInfo(path: "/dev/sdb", name: "sdb", kind: .disk, major: 8, minor: 16, sizeBytes: 1 << 40,
                       model: "QEMU HARDDISK", serial: "S123", set: "red", role: "component"),
        ]
    }

    @Test func tableIsAlignedAndReadable() {
        let lines = DevicesCommand.table(Self.sample()).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("PATH"))
        for header in ["SIZE", "KIND", "MODEL/SERIAL", "SIGNATURE", "USE", "SET/ROLE"] {
            #expect(lines[0].contains(header))
        }
        // Columns line up: every column starts at the same offset on every line.
        let sizeCol = lines[0].range(of: "SIZE")!.lowerBound.utf16Offset(in: lines[0])
        #expect(lines[1].range(of: "8.0 MiB")?.lowerBound.utf16Offset(in: lines[1]) == sizeCol)
        #expect(lines[2].range(of: "1.0 TiB")?.lowerBound.utf16Offset(in: lines[2]) == sizeCol)
        #expect(lines[1].contains("file /tmp/a.img"))
        #expect(lines[1].contains("ext4 \"data\""))
        #expect(lines[1].contains("mounted on /mnt/x"))
        #expect(lines[2].contains("QEMU HARDDISK / S123"))
        #expect(lines[2].contains("red/component"))
        // Review finding 40: a device that could not be probed shows `?`, explained below.
        var unprobed = Self.sample()[1]
        unprobed.probeError = "cannot be opened: Operation not permitted"
        let text = DevicesCommand.table([unprobed])
        #expect(text.hasSuffix("\n? /dev/sdb: not probed: cannot be opened: Operation not permitted"), "\(text)")
    }

    @Test func jsonHasSpecKeysWithNulls() throws {
        let data = try JSONEncoder().encode(DevicesCommand.DevicesJSON(devices: Self.sample()))
        let doc = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let devices = try #require(doc["devices"] as? [[String: Any]])
        #expect(devices.count == 2)
        for d in devices {
            for key in ["path", "sizeBytes", "kind", "model", "serial", "signature", "mountpoint", "set", "role"] {
                #expect(d.keys.contains(key), "missing \(key)")
            }
        }
        #expect(devices[0]["signature"] as? String == "ext4")
        #expect(devices[0]["mountpoint"] as? String == "/mnt/x")
        #expect(devices[0]["set"] is NSNull)
        #expect(devices[0]["model"] is NSNull)
        #expect(devices[1]["signature"] is NSNull)
        #expect(devices[1]["set"] as? String == "red")
        #expect(devices[1]["sizeBytes"] as? Int == 1 << 40)
        // Round trip.
        let back = try JSONDecoder().decode(DevicesCommand.DevicesJSON.self, from: data)
        #expect(back.devices == Self.sample())
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["losetup", "mkfs.ext4"]) && Privileged.runnable))
    func binaryListsAnAttachedLoopDevice() throws {
        let dir = try TempDir()
        let img = try dir.image("dev.img", size: 8 << 20)
        let loop = try LoopDevice(file: img)
        defer { loop.detach() }
        try mustRun(["mkfs.ext4", "-q", "-F", "-L", "cmdtest", loop.path])

        // Through the library function the command runs…
        let listed = try #require(Discovery.listDevices().first { $0.path == loop.path })
        #expect(listed.sizeBytes == 8 << 20)
        #expect(listed.signature == "ext4")
        #expect(DevicesCommand.table([listed]).contains(loop.path))

        // …and through the built binary.
        let bin = try GeneratedDocsTests.metactl()
        let json = try mustRun([bin, "devices", "--json"])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let devices = try #require(doc["devices"] as? [[String: Any]])
        let d = try #require(devices.first { $0["path"] as? String == loop.path }, "\(loop.path) not in \(json)")
        #expect(d["sizeBytes"] as? Int == 8 << 20)
        #expect(d["kind"] as? String == "loop")
        #expect(d["backingFile"] as? String == img)
        #expect(d["signature"] as? String == "ext4")
        #expect(d["label"] as? String == "cmdtest")
        #expect(d["set"] is NSNull)
        #expect(d["role"] is NSNull)
        #expect(d["mountpoint"] is NSNull)
        #expect(!devices.contains { $0["kind"] as? String == "loop" && $0["sizeBytes"] as? Int == 0 })

        let table = try mustRun([bin, "devices"])
        let line = try #require(table.split(separator: "\n").first { $0.hasPrefix(loop.path + " ") })
        #expect(line.contains("8.0 MiB"))
        #expect(line.contains("ext4"))
        #expect(line.contains(img))
        let all = try mustRun([bin, "devices", "--all"])
        #expect(all.split(separator: "\n").count >= table.split(separator: "\n").count)

        // Set and role come from the host registry of --config-dir.
        let config = dir.file("config")
        try HostRegistry.update(configDir: config) { r in
            r.sets.append(.init(name: "blue", uuid: UUID(),
                                devices: [.init(uuid: UUID(), path: loop.path, role: .component)]))
        }
        let inSet = try mustRun([bin, "devices", "--json", "--config-dir", config])
        let doc2 = try #require(try JSONSerialization.jsonObject(with: Data(inSet.utf8)) as? [String: Any])
        let d2 = try #require((doc2["devices"] as? [[String: Any]])?.first { $0["path"] as? String == loop.path })
        #expect(d2["set"] as? String == "blue")
        #expect(d2["role"] as? String == "component")
        let line2 = try mustRun([bin, "devices", "--config-dir", config]).split(separator: "\n")
            .first { $0.hasPrefix(loop.path + " ") }
        #expect(line2?.hasSuffix("blue/component") == true)
    }
}
