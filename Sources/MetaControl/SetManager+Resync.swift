import Foundation
import MetaDB

extension SetManager {
    /// `metactl replace`.
    public func replace(_ r: ReplaceRequest) throws -> ReplaceResult {
        throw OperationError("\(r.name): replace is not available yet")
    }

    /// `metactl hs …`.
    public func hotSpare(_ r: HotSpareRequest) throws -> [String: String] {
        throw OperationError("hot spare pools are not available yet")
    }

    /// `metactl set NAME …`.
    public func setParams(_ r: SetParamsRequest) throws -> [String: String] {
        throw OperationError("\(r.name): volume parameters are not available yet")
    }
}
