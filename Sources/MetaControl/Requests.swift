import Foundation
import MetaDB
import MetaModel

/// Parameters of `metactl grow`.
public struct GrowRequest: Codable, Sendable, Equatable {
    public var name: String
    public var devices: [String]
    public var interlaceBytes: UInt64?
    public var force: Bool
    /// `--cancel`: release the devices of an interrupted RAID-5 grow instead of growing
    /// (nil in requests from older clients).
    public var cancel: Bool?
    /// A soft partition: bytes to add (nil otherwise; absent in requests from older clients).
    public var sizeBytes: UInt64?
    public init(name: String, devices: [String], interlaceBytes: UInt64? = nil, force: Bool = false, cancel: Bool = false,
                sizeBytes: UInt64? = nil) {
        self.name = name; self.devices = devices; self.interlaceBytes = interlaceBytes; self.force = force
        self.cancel = cancel ? true : nil
        self.sizeBytes = sizeBytes
    }
}

/// What `grow` did.
public struct GrowResult: Codable, Sendable, Equatable {
    public var name: String
    public var oldSizeBytes: UInt64
    public var newSizeBytes: UInt64
    public var messages: [String]
    public init(name: String, oldSizeBytes: UInt64, newSizeBytes: UInt64, messages: [String]) {
        self.name = name; self.oldSizeBytes = oldSizeBytes; self.newSizeBytes = newSizeBytes; self.messages = messages
    }
}

/// Parameters of `metactl replace NAME OLD NEW` and `metactl replace NAME --enable DEV`.
public struct ReplaceRequest: Codable, Sendable, Equatable {
    public var name: String
    /// The component being replaced (or re-enabled).
    public var old: String
    /// The new device; nil for `--enable`.
    public var new: String?
    public var force: Bool
    /// RAID-6: a second failed component and its new device, rebuilt in the same pass
    /// (`replace NAME OLD NEW OLD2 NEW2`). Absent in older requests.
    public var second: ReplacePair? = nil
    public init(name: String, old: String, new: String?, force: Bool = false, second: ReplacePair? = nil) {
        self.name = name; self.old = old; self.new = new; self.force = force; self.second = second
    }
}

/// A component to replace and its new device.
public struct ReplacePair: Codable, Sendable, Equatable {
    public var old: String
    public var new: String
    public init(old: String, new: String) { self.old = old; self.new = new }
}

/// What `replace` started.
public struct ReplaceResult: Codable, Sendable, Equatable {
    public var name: String
    /// `copy`, `regenerate`, or `enable` (no data movement).
    public var kind: String
    public var messages: [String]
    public init(name: String, kind: String, messages: [String]) { self.name = name; self.kind = kind; self.messages = messages }
}

/// `metactl hs …`
public struct HotSpareRequest: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case create, add, delete, enable }
    public var action: Action
    /// The pool (create/add/delete); nil for enable.
    public var pool: String?
    public var devices: [String]
    public var force: Bool
    public init(action: Action, pool: String?, devices: [String], force: Bool = false) {
        self.action = action; self.pool = pool; self.devices = devices; self.force = force
    }
}

/// `metactl set NAME …`
public struct SetParamsRequest: Codable, Sendable, Equatable {
    public var name: String
    /// A pool name, or "none" to detach the pool.
    public var hotSparePool: String?
    public var resyncRate: ResyncRate?
    /// RAID-5: `--write-log auto|none` (nil: unchanged).
    public var writeLog: WriteLogMode?
    /// RAID-5: `--log-device DEV|none` (nil: unchanged).
    public var logDevice: String?
    public var force: Bool?
    /// Mirror: `--read-policy` (nil: unchanged).
    public var readPolicy: MirrorReadPolicy? = nil
    /// Mirror: `--write-policy` (nil: unchanged).
    public var writePolicy: MirrorWritePolicy? = nil
    /// Mirror: `--pass 0-9` (nil: unchanged).
    public var pass: Int? = nil
    public init(name: String, hotSparePool: String? = nil, resyncRate: ResyncRate? = nil, writeLog: WriteLogMode? = nil,
                logDevice: String? = nil, force: Bool = false) {
        self.name = name; self.hotSparePool = hotSparePool; self.resyncRate = resyncRate; self.writeLog = writeLog
        self.logDevice = logDevice; self.force = force ? true : nil
    }
}

/// `metactl check NAME [--repair] [--stop]`.
public struct CheckRequest: Codable, Sendable, Equatable {
    public var name: String
    /// Rewrite the parity of mismatching lines.
    public var repair: Bool
    /// Stop the running check instead of starting one.
    public var stop: Bool
    public init(name: String, repair: Bool = false, stop: Bool = false) {
        self.name = name; self.repair = repair; self.stop = stop
    }
}

/// What `check` did: the check's record as status shows it.
public struct CheckReply: Codable, Sendable, Equatable {
    public var name: String
    /// `started`, `finished` (it ran here, without a server) or `stopped`.
    public var action: String
    public var check: StatusReport.CheckStatus?
    public init(name: String, action: String, check: StatusReport.CheckStatus?) {
        self.name = name; self.action = action; self.check = check
    }
}
