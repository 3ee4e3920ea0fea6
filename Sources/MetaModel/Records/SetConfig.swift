import Foundation

/// What a device does in a set.
public enum DeviceRole: String, Codable, Sendable {
    /// Holds data of a volume (and maybe replicas).
    case component
    /// Member of a hot spare pool.
    case hotSpare = "hot-spare"
    /// Holds only state-database replicas.
    case replica
    /// Labelled but not (yet) used: e.g. a device added by an interrupted grow.
    case unused
    /// Holds a RAID-5 volume's write log (`set --log-device`).
    case log
}

/// A device that carries a label of this set.
public struct DeviceRecord: Codable, Sendable, Equatable {
    /// UUID written in the device's label: the device's identity.
    public var uuid: UUID
    /// The path where the device was last seen (a hint; the UUID decides).
    public var lastPath: String
    /// udev serial / WWN, when known (identity hints for `import`).
    public var serial: String?
    public var wwn: String?
    /// Device size in bytes when labelled.
    public var sizeBytes: UInt64
    /// First 512-byte block of the data area (after the label and replicas).
    public var dataStartBlock: UInt64
    /// Number of state-database replicas on this device.
    public var replicaCount: Int
    public var role: DeviceRole
    /// The freshness stamp the device's label must carry (at least); nil (absent in older
    /// encodings) is 0. See `Label.epoch` in docs/FORMAT.md.
    public var epoch: UInt64? = nil
    /// The device's logical sector size in bytes when labelled; nil (absent in older
    /// encodings) is unknown. A volume keeps the sector of its devices while they are absent
    /// (requests are aligned to it whether or not a device is there to refuse them).
    public var logicalSectorSize: Int? = nil

    public init(uuid: UUID, lastPath: String, serial: String? = nil, wwn: String? = nil, sizeBytes: UInt64,
                dataStartBlock: UInt64, replicaCount: Int, role: DeviceRole) {
        self.uuid = uuid; self.lastPath = lastPath; self.serial = serial; self.wwn = wwn
        self.sizeBytes = sizeBytes; self.dataStartBlock = dataStartBlock
        self.replicaCount = replicaCount; self.role = role
    }

    /// Blocks available for data.
    public var dataBlocks: UInt64 { sizeBytes / 512 > dataStartBlock ? sizeBytes / 512 - dataStartBlock : 0 }
}

/// Where one replica of the state database lives.
public struct ReplicaLocation: Codable, Sendable, Equatable, Hashable {
    public var device: UUID
    /// Index of the replica on its device (0-based).
    public var index: Int
    public var offsetBytes: UInt64
    public var sizeBytes: UInt64
    public init(device: UUID, index: Int, offsetBytes: UInt64, sizeBytes: UInt64) {
        self.device = device; self.index = index; self.offsetBytes = offsetBytes; self.sizeBytes = sizeBytes
    }
}

/// The whole configuration of a set: what every replica of the state database holds.
public struct SetConfig: Codable, Sendable, Equatable {
    /// Version of this encoding; a newer one is refused on load.
    public static let currentFormatVersion = 1
    public var formatVersion: Int
    public var setName: String
    public var setUUID: UUID
    public var devices: [DeviceRecord]
    public var replicas: [ReplicaLocation]
    public var volumes: [VolumeRecord]
    public var hotSparePools: [HotSparePoolRecord]
    /// False while a server runs the set; a load that finds it false knows the last
    /// server did not stop cleanly.
    public var cleanShutdown: Bool

    public init(setName: String, setUUID: UUID = UUID(), devices: [DeviceRecord] = [],
                replicas: [ReplicaLocation] = [], volumes: [VolumeRecord] = [],
                hotSparePools: [HotSparePoolRecord] = [], cleanShutdown: Bool = true) {
        self.formatVersion = Self.currentFormatVersion
        self.setName = setName; self.setUUID = setUUID; self.devices = devices; self.replicas = replicas
        self.volumes = volumes; self.hotSparePools = hotSparePools; self.cleanShutdown = cleanShutdown
    }

    public func device(_ uuid: UUID) -> DeviceRecord? { devices.first { $0.uuid == uuid } }
    public func volume(named name: String) -> VolumeRecord? { volumes.first { $0.name == name } }
    public func volumeIndex(named name: String) -> Int? { volumes.firstIndex { $0.name == name } }
    public func pool(named name: String) -> HotSparePoolRecord? { hotSparePools.first { $0.name == name } }
}
