import ArgumentParser
import Foundation
import MetaDB
import MetaModel
import MetaDevices

/// `metactl devices [--all] [--json]`: lists block devices with size, kind, identity,
/// libblkid signature, use and set membership.
public struct DevicesCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List block devices: size, kind, model/serial, signature, use and set membership.",
        discussion: """
            Devices are found through libudev (sysfs when no udev daemon runs) and probed with \
            libblkid. Empty loop devices are hidden unless --all is given.

            With --json one document is printed: {"devices": [{"path", "sizeBytes", "kind", \
            "model", "serial", "signature", "mountpoint", "set", "role", ...}]}. "kind" is disk, \
            partition, loop, dm, md or rom; "signature" is libblkid's TYPE, else PTTYPE, else null; \
            "set" and "role" are null for a device outside every set. Extra keys: "name", "major", \
            "minor", "readOnly", "logicalSectorSize", "physicalSectorSize", "wwn", "backingFile", \
            "holders", "partitions", "parent", "mountPoints", "swap", "type", "ptType", "uuid", \
            "label", "usage", "probeError". Unknown values are null, never missing.
            """)

    @OptionGroup public var global: GlobalOptions
    @OptionGroup public var jsonOption: JSONOption

    @Flag(name: .long, help: "Also list empty (detached) loop devices.")
    public var all = false

    public init() {}

    public func run() throws {
        let devices = Discovery.listDevices(all: all, membership: Self.membership(for: global))
        if jsonOption.json {
            try Output.printJSON(DevicesJSON(devices: devices))
        } else {
            print(Self.table(devices))
        }
    }

    /// The set/role lookup from the host registry in `global`'s config directory (an
    /// unreadable registry means no device is in a set). Paths are compared after resolving
    /// symlinks, so a registry naming `/dev/disk/by-id/…` still matches `/dev/sdb`.
    public static func membership(for global: GlobalOptions) -> Discovery.Membership {
        var byPath: [String: (set: String, role: String)] = [:]
        for (path, m) in SetDatabase.membership(configDir: global.configDir) {
            byPath[canonical(path)] = m
        }
        let table = byPath
        return { path in table[canonical(path)] }
    }

    @Sendable static func canonical(_ path: String) -> String {
        URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    }

    /// The `--json` document.
    public struct DevicesJSON: Codable, Sendable {
        public var devices: [DeviceInfo]
        public init(devices: [DeviceInfo]) { self.devices = devices }
    }

    /// The human table: PATH SIZE KIND MODEL/SERIAL SIGNATURE USE SET/ROLE.
    /// For a loop device MODEL/SERIAL shows the backing file.
    public static func table(_ devices: [DeviceInfo]) -> String {
        let rows = devices.map { d -> [String] in
            var ident: String
            if let b = d.backingFile {
                ident = "file \(b)"
            } else {
                ident = [d.model, d.serial].compactMap { $0 }.joined(separator: " / ")
            }
            if ident.isEmpty { ident = "-" }
            let sig = d.signature.map { s in d.probe?.label.map { "\(s) \"\($0)\"" } ?? s }
                ?? (d.probeError != nil ? "?" : "-")
            let setRole = d.set.map { s in d.role.map { "\(s)/\($0)" } ?? s } ?? "-"
            return [d.path, Output.humanSize(d.sizeBytes), d.kind.rawValue + (d.readOnly ? " (ro)" : ""),
                    ident, sig, d.use ?? "-", setRole]
        }
        var text = Output.table(["PATH", "SIZE", "KIND", "MODEL/SERIAL", "SIGNATURE", "USE", "SET/ROLE"], rows)
        // A `?` signature is explained below the table (review finding 40).
        for d in devices where d.signature == nil {
            if let e = d.probeError { text += "\n? \(d.path): not probed: \(e)" }
        }
        return text
    }
}
