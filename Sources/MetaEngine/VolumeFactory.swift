import MetaDB
import MetaModel

/// Opens the I/O engine for volumes of a set.
public enum VolumeFactory {
    /// Builds the engine for `record` (concat/stripe, or RAID-5 and RAID-6: one engine, with
    /// one or two parity units per line).
    /// A soft partition needs its `parent`'s engine, a mirror its sides' engines (`children`,
    /// in the record's order).
    public static func open(_ record: VolumeRecord, context: VolumeContext, parent: Volume? = nil,
                            children: [Volume] = []) throws(VolumeIOError) -> Volume {
        switch record.type {
        case .mirror:
            return try MirrorVolume(record: record, children: children, context: context)
        case .softpart:
            guard let parent else {
                throw VolumeIOError(volume: record.name, code: .io, operation: "open",
                                    detail: "its parent volume \(record.softPartition?.parent ?? "?") is not open")
            }
            return try SoftPartitionVolume(record: record, parent: parent, context: context)
        case .concat, .stripe:
            return try StripeVolume(record: record, context: context)
        case .raid5, .raid6:
            return try RAID5Volume(record: record, context: context)
        }
    }
}
