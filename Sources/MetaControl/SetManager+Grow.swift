import Foundation
import MetaDB

extension SetManager {
    /// `metactl grow`: appends a row (concat/stripe) or data columns (RAID-5).
    public func grow(_ r: GrowRequest) throws -> GrowResult {
        throw OperationError("\(r.name): grow is not available yet")
    }
}
