/// Record arithmetic of growing a volume.
public enum Grow {
    /// The row that `devices` form when appended to a concat/stripe: striped with
    /// `interlaceBlocks` over the smallest device's data area (a one-device row takes all of
    /// it, rounded down to the volume's sector of `sectorBlocks` blocks).
    public static func row(devices: [DeviceRecord], interlaceBlocks: UInt64, sectorBlocks: UInt64 = 1) -> RowRecord {
        let smallest = devices.map(\.dataBlocks).min() ?? 0
        let sb = max(1, sectorBlocks)
        return RowRecord(interlaceBlocks: devices.count == 1 ? 1 : max(1, interlaceBlocks),
                         componentBlocks: devices.count == 1 ? smallest / sb * sb : smallest,
                         components: devices.map { ComponentRecord(device: $0.uuid) })
    }
}
