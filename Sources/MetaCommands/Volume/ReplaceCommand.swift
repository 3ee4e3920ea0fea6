import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

/// `metactl replace NAME OLD NEW [OLD2 NEW2] [--wait] [--force]` / `metactl replace NAME --enable DEV [--wait]`
struct ReplaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replace",
        abstract: "Replace or re-enable a RAID-5 or RAID-6 component (metareplace).",
        discussion: """
        A mirror (or one of its sides) as NAME: OLD is a component of a side; NEW takes its \
        place in that side, which then resyncs every region from the other sides while the \
        mirror stays in use (--wait follows the mirror); --enable OLD brings that side back \
        as `metactl online` does. With a RAID volume and OLD and NEW: if OLD is still readable its data is copied to NEW (the volume keeps \
        its redundancy the whole time; if OLD fails during the copy, the rest is regenerated \
        from parity); otherwise NEW is rebuilt from the other columns. NEW is checked like a \
        create device and must be large enough; its logical sector size must divide the \
        interlace and not exceed the volume's sector size. When OLD is a column whose hot spare stands \
        in, the data is copied from the spare and the spare returns to its pool.

        With OLD NEW OLD2 NEW2 (RAID-6, two failed columns): both are rebuilt in one pass, \
        one read of the other columns writing both new devices (one after the other would \
        read everything twice). A hot spare pool does the same when two columns fail.

        With --enable DEV: a column in Maintenance is regenerated in place (after a transient \
        fault); a Last Erred column is trusted again without a resync.

        While `metactl serve` runs the resync happens there and this command returns at once \
        (or follows it with --wait); without a server it runs in the foreground with progress \
        on stderr. Refused on a Last Erred volume unless --force. The `Invoke:` line of \
        `metactl status` names the replace commands that bring a volume back, in the order \
        they are accepted.

        Ctrl-C while waiting stops only the waiting: with a server the resync goes on there; \
        without one it resumes from its last checkpoint when the set is next served.

        --json prints {"name", "kind" ("copy", "regenerate" or "enable"), "messages": [...]}.
        """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The RAID-5 or RAID-6 volume.", completion: .shellCommand(Completions.volumes))
    var name: String

    @Argument(help: "OLD NEW (RAID-6: or OLD NEW OLD2 NEW2), or with --enable nothing.", completion: .file())
    var devices: [String] = []

    @Option(name: .long, help: ArgumentHelp("Re-enable this component in place.", valueName: "dev"), completion: .file())
    var enable: String?

    @Flag(name: .long, help: "Follow the resync until it ends (progress on stderr).")
    var wait = false

    @Flag(name: .shortAndLong, help: "Proceed on a Last Erred volume; overwrite a signature on NEW.")
    var force = false

    @OptionGroup var output: JSONOption

    func run() throws {
        let req: ReplaceRequest
        if let enable {
            guard devices.isEmpty else { throw UserError("replace --enable takes one device and no OLD NEW pair") }
            req = ReplaceRequest(name: name, old: Paths.absolute(enable), new: nil, force: force)
        } else {
            guard devices.count == 2 || devices.count == 4 else {
                throw UserError("replace needs OLD and NEW, OLD NEW OLD2 NEW2 (RAID-6), or --enable DEV")
            }
            req = ReplaceRequest(name: name, old: Paths.absolute(devices[0]), new: Paths.absolute(devices[1]), force: force,
                                 second: devices.count == 4 ? ReplacePair(old: Paths.absolute(devices[2]), new: Paths.absolute(devices[3])) : nil)
        }
        let served = SetAccess.serverRunning(set: global.set, runDir: global.runDir)
        Interrupt.onSIGINT(served
            ? "\(name): interrupted; the resync continues in the server (follow it with `metactl status \(name)`)"
            : "\(name): interrupted; the resync resumes from its last checkpoint when the set is served (`metactl serve`)")
        let res = try CommandContext.perform(.replace(req), global, as: ReplaceResult.self,
                                             progress: global.quiet ? nil : ProgressDisplay.reporter)
        ProgressDisplay.done()
        if output.json { try Output.printJSON(res) } else if !global.quiet { for m in res.messages { print(m) } }
        fflush(nil)  // the header before the progress of --wait on stderr, also through a pipe
        if wait && SetAccess.serverRunning(set: global.set, runDir: global.runDir) {
            let rebuilt = req.new ?? req.old
            // (A side's component: the mirror it belongs to is what resyncs.)
            let v = try ProgressDisplay.waitForVolume(res.name, global, component: rebuilt)
            if !global.quiet {
                print(v.state == VolumeState.okay.rawValue ? Said.volumeOkay(res.name)
                      : "\(res.name): \(rebuilt) is Okay; the volume is still \(v.state)\(v.invoke.map { " (Invoke: \($0))" } ?? "")")
            }
        }
    }
}

/// `metactl hs create|add|delete|enable`
struct HotSpareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hs",
        abstract: "Manage hot spare pools (metainit hsp, metahs).",
        subcommands: [Create.self, Add.self, Delete.self, Enable.self])

    static func run(_ r: HotSpareRequest, _ g: GlobalOptions) throws {
        let req = HotSpareRequest(action: r.action, pool: r.pool, devices: r.devices.map(Paths.absolute), force: r.force)
        let res = try CommandContext.perform(.hotSpare(req), g, as: [String: String].self)
        if let w = res["warnings"] { for line in w.split(separator: "\n") { Output.warn(String(line)) } }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a pool, optionally with spares.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Pool name, hsp000 … hsp999.") var pool: String
        @Argument(help: "Spare devices, in the order they are used.", completion: .file()) var devices: [String] = []
        @Flag(name: .shortAndLong, help: "Overwrite devices that carry a signature.") var force = false
        func run() throws {
            try HotSpareCommand.run(HotSpareRequest(action: .create, pool: pool, devices: devices, force: force), global)
            if !global.quiet { print(Said.poolSetUp(pool)) }
        }
    }
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add spares to a pool.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Pool name.", completion: .shellCommand(Completions.pools)) var pool: String
        @Argument(help: "Spare devices.", completion: .file()) var devices: [String]
        @Flag(name: .shortAndLong, help: "Overwrite devices that carry a signature.") var force = false
        func run() throws {
            try HotSpareCommand.run(HotSpareRequest(action: .add, pool: pool, devices: devices, force: force), global)
            if !global.quiet { print(Said.spareAdded(pool)) }
        }
    }
    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove spares from a pool (or the whole pool when no device is named).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Pool name.", completion: .shellCommand(Completions.pools)) var pool: String
        @Argument(help: "Spares to remove.", completion: .file()) var devices: [String] = []
        func run() throws {
            try HotSpareCommand.run(HotSpareRequest(action: .delete, pool: pool, devices: devices), global)
            if !global.quiet { print(devices.isEmpty ? Said.poolCleared(pool) : Said.spareDeleted(pool)) }
        }
    }
    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Return Broken spares to Available after the fault is fixed.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Spare devices.", completion: .file()) var devices: [String]
        func run() throws {
            try HotSpareCommand.run(HotSpareRequest(action: .enable, pool: nil, devices: devices), global)
            if !global.quiet { for d in devices { print(Said.spareEnabled(d)) } }
        }
    }
}

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
