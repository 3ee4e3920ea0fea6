import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

/// `metactl set NAME --hot-spare-pool HSP|none --resync-rate MIN:MAX`
struct SetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change volume parameters (metaparam).",
        discussion: "Mirrors: --read-policy roundrobin (the default: alternate between the readable sides), geometric (each side serves its share of the address range) or first; --write-policy parallel (the default) or serial; --pass 0-9 is SVM's pass number, recorded and shown (metactl resyncs every mirror that needs it). --log-device DEV puts a RAID-5 or RAID-6 volume's write log on DEV (a fast SSD or NVMe partition, md's --write-journal; up to 64 MiB of it is used): one copy of every record there instead of in the columns' areas (one copy on RAID-5, two on RAID-6). If DEV fails, the records go to the columns' areas again (or, for a volume without them, are not written: the dirty-region log alone), the server logs it and status says so; --log-device none goes back to the columns. --write-log auto|none switches a RAID-5 or RAID-6 volume's write log on or off while it is in use (writes in flight finish and are flushed first); a volume without room reserved for the log (created with --write-log none) cannot switch it on. --resync-rate MIN:MAX (sizes per second, e.g. 50m:1g, or 50m:max) works like md's speed_limit_min/max: the resync runs at MAX while the volume is idle and yields to foreground I/O down to MIN. A MAX of max or 0 means unlimited.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The volume.", completion: .shellCommand(Completions.volumes)) var name: String
    @Option(name: .customLong("hot-spare-pool"), help: ArgumentHelp("Pool to use (created empty if it does not exist, as in create), or none.", valueName: "hsp|none"),
            completion: .shellCommand(Completions.pools + "; echo none"))
    var hotSparePool: String?
    @Option(name: .customLong("resync-rate"), help: ArgumentHelp("Resync rate limits per second.", valueName: "min:max"))
    var resyncRate: String?
    @Option(name: .customLong("write-log"), help: ArgumentHelp("RAID-5, RAID-6: log writes (auto) or not (none); switches online.", valueName: "auto|none"),
            completion: .list(["auto", "none"]))
    var writeLog: String?
    @Option(name: .customLong("log-device"), help: ArgumentHelp("RAID-5, RAID-6: a device for the write log (a fast SSD), or none.", valueName: "dev|none"),
            completion: .file())
    var logDevice: String?
    @Flag(name: .shortAndLong, help: "With --log-device: overwrite a device that carries a signature.")
    var force = false
    @Option(name: .customLong("read-policy"), help: ArgumentHelp("Mirror: which side serves a read (metaparam -r).", valueName: "roundrobin|geometric|first"),
            completion: .list(MirrorReadPolicy.allCases.map(\.rawValue)))
    var readPolicy: String?
    @Option(name: .customLong("write-policy"), help: ArgumentHelp("Mirror: write the sides at once or in turn (metaparam -w).", valueName: "parallel|serial"),
            completion: .list(MirrorWritePolicy.allCases.map(\.rawValue)))
    var writePolicy: String?
    @Option(name: .customLong("pass"), help: ArgumentHelp("Mirror: SVM's pass number 0-9 (metaparam -p; recorded and shown).", valueName: "n"))
    var pass: Int?

    func run() throws {
        var rate: ResyncRate? = nil
        if let resyncRate {
            let parts = resyncRate.split(separator: ":").map(String.init)
            guard parts.count == 2 else { throw UserError("--resync-rate \(resyncRate): expected MIN:MAX, e.g. 50m:1g", code: .invalidArgument) }
            guard parts[0] != "max" else { throw UserError("--resync-rate \(resyncRate): the minimum cannot be max (use a size, e.g. 10m:max)", code: .invalidArgument) }
            let lo = try SizeParser.parse(parts[0])
            let hi = parts[1] == "max" ? UInt64.max : try SizeParser.parse(parts[1])
            rate = ResyncRate(minBytesPerSecond: lo, maxBytesPerSecond: hi)
        }
        let mode = try writeLog.map { try WriteLogArgument.parse($0) }
        let read = try readPolicy.map { p throws -> MirrorReadPolicy in
            guard let v = MirrorReadPolicy(rawValue: p) else { throw UserError("--read-policy \(p): use roundrobin, geometric or first", code: .invalidArgument) }
            return v
        }
        let write = try writePolicy.map { p throws -> MirrorWritePolicy in
            guard let v = MirrorWritePolicy(rawValue: p) else { throw UserError("--write-policy \(p): use parallel or serial", code: .invalidArgument) }
            return v
        }
        guard hotSparePool != nil || rate != nil || mode != nil || logDevice != nil || read != nil || write != nil || pass != nil else {
            throw UserError("set \(name): nothing to change (use --hot-spare-pool, --resync-rate, --write-log, --log-device, --read-policy, --write-policy or --pass)", code: .usage)
        }
        let device = logDevice.map { $0 == "none" ? $0 : Paths.absolute($0) }
        var req = SetParamsRequest(name: name, hotSparePool: hotSparePool, resyncRate: rate, writeLog: mode, logDevice: device, force: force)
        req.readPolicy = read
        req.writePolicy = write
        req.pass = pass
        let result = try CommandContext.perform(.setParams(req), global, as: [String: String].self)
        if let note = result["note"] { Output.warn(note) }
    }
}
