import MetaLayout

extension VolumeRecord {
    /// The geometry of a concat/stripe record (nil for RAID-5 or a row without components).
    public var stripeLayout: StripeLayout? {
        guard !type.hasColumns, !rows.contains(where: { $0.components.isEmpty }) else { return nil }
        return StripeLayout(rows: rows.map {
            StripeRow(componentCount: $0.components.count, interlaceBlocks: max(1, $0.interlaceBlocks),
                      componentBlocks: $0.componentBlocks)
        })
    }

    /// The geometry of a RAID-5 or RAID-6 record (nil for another type or a malformed record).
    public var raid5Layout: RAID5Layout? {
        guard type.hasColumns, originalColumnCount >= type.minimumColumns, columns.count >= originalColumnCount,
              interlaceBlocks >= 1
        else { return nil }
        return RAID5Layout(originalColumns: originalColumnCount, addedColumns: columns.count - originalColumnCount,
                           interlaceBlocks: interlaceBlocks, columnBlocks: columnBlocks, parityCount: type.parityCount)
    }

    /// The volume's size in 512-byte blocks (0 for a malformed record).
    public var totalBlocks: UInt64 { stripeLayout?.totalBlocks ?? raid5Layout?.totalBlocks ?? 0 }
}
