import MetaModel

/// The one table of the SVM-style lines that commands print when they succeed
/// (`d10: RAID is set up`, `hsp001: Hotspare is added`), so that every command says the
/// same thing the same way. Errors are worded where they are raised; these are the
/// confirmations, on standard output, silenced by `-q`.
public enum Said {
    /// SVM's name for a volume type in messages: `RAID` or `Concat/Stripe`.
    public static func kind(_ type: VolumeType) -> String {
        type == .softpart ? "Soft Partition" : type == .mirror ? "Mirror" : type.hasColumns ? "RAID" : "Concat/Stripe"
    }
    /// The same from the type's raw value (as the control protocol returns it).
    public static func kind(raw: String?) -> String { kind(raw.flatMap(VolumeType.init(rawValue:)) ?? .concat) }

    /// `create`: `d10: RAID is set up (N blocks, SIZE)`.
    public static func volumeSetUp(_ name: String, _ type: VolumeType, blocks: UInt64, size: String) -> String {
        "\(name): \(kind(type)) is set up (\(blocks) blocks, \(size))"
    }
    /// `clear`: `d10: RAID is cleared`.
    public static func volumeCleared(_ name: String, typeRaw: String?) -> String { "\(name): \(kind(raw: typeRaw)) is cleared" }
    /// `attach`/`detach`/`offline`/`online` (SVM's wording): `d0: submirror d11 is attached`.
    public static func submirror(_ mirror: String, _ side: String, _ done: String) -> String { "\(mirror): submirror \(side) is \(done)" }
    /// `replace --wait` and a resync that ended well: `d10: Okay`.
    public static func volumeOkay(_ name: String) -> String { "\(name): Okay" }
    /// `hs create`: `hsp001: Hotspare pool is set up`.
    public static func poolSetUp(_ pool: String) -> String { "\(pool): Hotspare pool is set up" }
    /// `hs delete POOL`: `hsp001: Hotspare pool is cleared`.
    public static func poolCleared(_ pool: String) -> String { "\(pool): Hotspare pool is cleared" }
    /// `hs add`: `hsp001: Hotspare is added`.
    public static func spareAdded(_ pool: String) -> String { "\(pool): Hotspare is added" }
    /// `hs delete POOL DEV…`: `hsp001: Hotspare is deleted`.
    public static func spareDeleted(_ pool: String) -> String { "\(pool): Hotspare is deleted" }
    /// `hs enable DEV`: `DEV: Hotspare is enabled`.
    public static func spareEnabled(_ device: String) -> String { "\(device): Hotspare is enabled" }
}
