import Foundation

/// State of a hot spare.
public enum HotSpareState: String, Codable, Sendable {
    case available = "Available"
    case inUse = "In use"
    case broken = "Broken"
}

public struct HotSpareRecord: Codable, Sendable, Equatable {
    public var device: UUID
    public var state: HotSpareState
    public init(device: UUID, state: HotSpareState = .available) { self.device = device; self.state = state }
}

/// A hot spare pool (`hsp000` … `hsp999`): an ordered list of spares.
public struct HotSparePoolRecord: Codable, Sendable, Equatable {
    public var name: String
    public var spares: [HotSpareRecord]
    public init(name: String, spares: [HotSpareRecord] = []) { self.name = name; self.spares = spares }
}
