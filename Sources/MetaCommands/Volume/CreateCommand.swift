import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

/// `metactl create NAME concat|stripe|raid5|raid6 [-i SIZE] [--hot-spare-pool HSP] [--no-init] [--force] DEV...`,
/// `metactl create NAME softpart PARENT SIZE | -o OFFSET -b SIZE ...`
struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a concat, stripe, RAID-5, RAID-6, soft partition or mirror volume (metainit).",
        discussion: """
        concat: each device is appended after the previous one. stripe: the devices are \
        striped with the interlace (default 512 KiB). raid5: at least 3 columns with rotating \
        parity (default interlace 64 KiB = 128 blocks); the column size is the smallest \
        component, and parity is initialised in the background (state Initializing) unless \
        --no-init says the components are known to be zero. A RAID-5 volume logs every \
        write before making it in place (--write-log auto, the default), so that a crash \
        together with the loss of a column loses nothing written and flushed; the log takes \
        1/32 of each column (1–16 MiB) at its end. --write-log none keeps the capacity and \
        relies on the dirty-region log alone. raid6: at least 4 columns with two rotating \
        parity units per line (P and Q, md's left-symmetric RAID-6 layout; docs/LAYOUTS.md), \
        so any two columns may fail; it initialises like RAID-5 and logs writes only with \
        --write-log auto (two copies of each record, on the columns after P and after Q); \
        without it torn lines are repaired from its dirty-region log. The interlace must be a \
        multiple of every device's logical sector size (4096 bytes on 4Kn disks); the volume \
        is then addressed in units of the largest one.

        softpart: a soft partition of an existing volume (SVM's metainit -p): `metactl create \
        d1 softpart d10 1g` takes 1 GiB of d10's free space, first fit, as one extent or \
        several; `-o OFFSET -b SIZE` (repeatable, multiples of 4 KiB; bare numbers are bytes, \
        `Nb` blocks) gives the extents explicitly, as `status -p` prints them. Each extent's \
        data starts on a full stripe of the parent and is preceded by a 4 KiB watermark (its \
        identity, docs/FORMAT.md) from which `metactl recover` rebuilds the configuration if \
        the state database is lost. A soft partition's state is its parent's; the parent \
        cannot be cleared while soft partitions are carved from it; `metactl grow d1 512m` \
        adds space. Soft partitions are not carved from soft partitions. On a device \
        (`metactl create d1 softpart /dev/sdb 1g`, SVM's soft partitions on a slice), they are \
        carved from the set's one-device concat over that device, made first (named after the \
        device, e.g. sdb) when there is none; -f passes to that create.

        mirror: `metactl create d0 mirror d10 d11` makes a mirror (RAID-1, SVM's metainit -m) of \
        up to 4 sides, each an existing concat or stripe volume (no soft partitions on it, no \
        other mirror). Its size is the smallest side's. Every side but the first is resynced \
        from the first in the background when the set is served (reads come from the first until \
        then); --no-resync skips that for sides known to hold the same data (new zeroed disks: \
        the user's promise). `metactl create d0 mirror /dev/sdb /dev/sdc` (every argument a \
        device) first makes a one-device concat of each, named d0-s0, d0-s1, …, as mdadm users \
        expect. The sides are no longer exported on their own. --hot-spare-pool HSP gives every \
        side that pool: a failed component of a side is replaced by a spare, and only its rows \
        resync. A mirror grows with its sides: grow each side (metactl grow d10 DEV), and the \
        mirror takes the new space, resynced, once its smallest side has it. See attach, detach, \
        offline, online and set --read-policy/--write-policy.

        Every device is checked before anything is written: a device in use (mounted, held, \
        open exclusively, member of a set) is always refused; one with a file system, \
        partition table or RAID/LVM signature is refused unless --force.

        If the set has no state database yet, one replica is created on each of the volume's \
        devices.

        Unlike SVM's metainit, -h is help: a RAID-5 or RAID-6 volume's hot spare pool is given with \
        --hot-spare-pool HSP (status -p prints the md.tab line with SVM's -h HSP, and the \
        metactl command with --hot-spare-pool). A concat or stripe that is a side of a mirror \
        takes spares for its components from its pool too; `create NAME mirror … \
        --hot-spare-pool HSP` gives every side that pool.

        --json prints {"name", "sizeBytes", "messages": [...], "createdDatabase"} \
        (createdDatabase: whether this create also created the set's state database).
        """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Volume name: a lower-case letter, then up to 62 of a-z 0-9 _ . -")
    var name: String

    @Argument(help: "Layout: concat, stripe, raid5, raid6, softpart or mirror.", completion: .list(["concat", "stripe", "raid5", "raid6", "softpart", "mirror"]))
    var layout: String

    @Argument(help: "Component devices or image files; softpart: the parent volume, then the size (e.g. 1g) unless -o/-b are given; mirror: its sides (concat or stripe volumes, or devices).", completion: .file())
    var devices: [String] = []

    @Option(name: .customShort("o"), help: ArgumentHelp("softpart: an extent's data offset in the parent (repeat with -b for several extents; a multiple of 4k).", valueName: "offset"))
    var offsets: [String] = []

    @Option(name: .customShort("b"), help: ArgumentHelp("softpart: the size of the extent at the -o before it.", valueName: "size"))
    var extentSizes: [String] = []

    @Option(name: .customShort("i"), help: ArgumentHelp("Interlace (stripe unit), 8k–100m.", valueName: "size"))
    var interlace: String?

    @Option(name: .customLong("hot-spare-pool"),
            help: ArgumentHelp("Hot spare pool for a RAID-5 or RAID-6 volume, or for a mirror's sides (SVM's metainit -h; -h is help here).",
                               valueName: "hsp"), completion: .shellCommand(Completions.pools))
    var hotSparePool: String?

    @Flag(name: .customLong("no-init"), help: "RAID-5 and RAID-6: components are known to be zero; skip parity initialisation.")
    var noInit = false

    @Flag(name: .shortAndLong, help: "Overwrite devices that carry a signature (file system, partition table, …).")
    var force = false

    @Flag(name: .customLong("no-resync"), help: "mirror: the sides hold the same data already (new, zeroed disks): no resync.")
    var noResync = false

    @Option(name: .customLong("write-log"),
            help: ArgumentHelp("RAID-5, RAID-6: log every write before it is made in place (auto: the default for RAID-5) or not (none: the default for RAID-6).", valueName: "auto|none"),
            completion: .list(["auto", "none"]))
    var writeLog: String?

    @OptionGroup var output: JSONOption

    func run() throws {
        guard let type = VolumeType(rawValue: layout) else {
            throw UserError("unknown layout '\(layout)': use concat, stripe, raid5, raid6, softpart or mirror", code: .invalidArgument)
        }
        if type == .softpart { return try runSoftPartition() }
        if type == .mirror { return try runMirror() }
        if noResync { throw UserError("--no-resync applies to mirrors", code: .invalidArgument) }
        if !offsets.isEmpty || !extentSizes.isEmpty { throw UserError("-o and -b apply to softpart volumes", code: .invalidArgument) }
        // The interlace first: `-i DEV` took a device as the size.
        let il = try interlace.map { try SizeParser.parse($0) }
        if devices.isEmpty { throw UserError("\(name): no devices given", code: .usage) }
        if noInit && !type.hasColumns { throw UserError("--no-init applies to raid5 and raid6 volumes", code: .invalidArgument) }
        if writeLog != nil && !type.hasColumns { throw UserError("--write-log applies to raid5 and raid6 volumes", code: .invalidArgument) }
        let mode = try writeLog.map { try WriteLogArgument.parse($0) }
        let req = CreateRequest(name: name, type: type, devices: devices.map(Paths.absolute), interlaceBytes: il,
                                hotSparePool: hotSparePool, noInit: noInit, force: force, writeLog: mode)
        let res = try CommandContext.perform(.create(req), global, as: CreateResult.self)
        if output.json { try Output.printJSON(res); return }
        for m in res.messages { Output.warn(m) }
        if !global.quiet {
            print(Said.volumeSetUp(res.name, type, blocks: res.sizeBytes / 512, size: Output.humanSize(res.sizeBytes)))
        }
    }
}

extension CreateCommand {
    /// `create NAME softpart PARENT SIZE` or `create NAME softpart PARENT -o OFFSET -b SIZE …`.
    func runSoftPartition() throws {
        guard var parent = devices.first else { throw UserError("\(name): softpart needs its parent volume (metactl create \(name) softpart d10 1g)", code: .usage) }
        let onDevice = parent.contains("/")
        if interlace != nil || hotSparePool != nil || noInit || writeLog != nil || (force && !onDevice) {
            throw UserError("\(name): -i, --hot-spare-pool, --no-init, --write-log and -f (but for a device) do not apply to a soft partition", code: .invalidArgument)
        }
        guard offsets.count == extentSizes.count else {
            throw UserError("\(name): give -o and -b in pairs (-o OFFSET -b SIZE for each extent)", code: .usage)
        }
        var spec = SoftPartitionSpec(parent: parent)
        if offsets.isEmpty {
            guard devices.count == 2 else {
                throw UserError("\(name): softpart takes the parent volume and one size (metactl create \(name) softpart \(parent) 1g), or -o/-b extents", code: .usage)
            }
            spec.sizeBytes = try SizeParser.parse(devices[1])
        } else {
            guard devices.count == 1 else { throw UserError("\(name): with -o/-b, give only the parent volume", code: .usage) }
            spec.extents = try zip(offsets, extentSizes).map { o, b in
                let off = try SizeParser.parse(o), len = try SizeParser.parse(b)
                guard off % 512 == 0, len % 512 == 0 else { throw UserError("\(name): -o \(o) -b \(b): not whole 512-byte blocks", code: .invalidArgument) }
                return SoftExtentSpec(offsetBlocks: off / 512, blocks: len / 512)
            }
        }
        // On a device: carved from the one-device concat over it (made here, named after the
        // device, when the set has none).
        var made: String? = nil
        if onDevice {
            (parent, made) = try deviceParent(Paths.absolute(parent))
            spec.parent = parent
        }
        let req = CreateRequest(name: name, type: .softpart, devices: [], softPartition: spec)
        let res: CreateResult
        do { res = try CommandContext.perform(.create(req), global, as: CreateResult.self) } catch {
            if let made { undo([made]) }
            throw error
        }
        if output.json { try Output.printJSON(res); return }
        if let made, !global.quiet { Output.warn("\(made): one-device concat over \(devices[0]) made to hold soft partitions (metactl status \(made))") }
        for m in res.messages { Output.warn(m) }
        if !global.quiet {
            print(Said.volumeSetUp(res.name, .softpart, blocks: res.sizeBytes / 512, size: Output.humanSize(res.sizeBytes)))
        }
    }
}

extension CreateCommand {
    /// `create NAME mirror SIDE…` or, with devices, `create NAME mirror DEV…` (a one-device
    /// concat per device first, removed again if the mirror cannot be made).
    func runMirror() throws {
        if interlace != nil || noInit || writeLog != nil || !offsets.isEmpty || !extentSizes.isEmpty {
            throw UserError("\(name): a mirror takes its sides; -i, --no-init (use --no-resync), --write-log, -o and -b do not apply", code: .invalidArgument)
        }
        if devices.isEmpty { throw UserError("\(name): a mirror needs its sides (metactl create \(name) mirror d10 d11)", code: .usage) }
        let paths = devices.filter { $0.contains("/") }
        if !paths.isEmpty && paths.count != devices.count {
            throw UserError("\(name): give the sides as volumes or as devices, not both", code: .usage)
        }
        var sides = devices
        var made: [String] = []
        if !paths.isEmpty {
            sides = devices.indices.map { "\(name)-s\($0)" }
            do {
                for (side, dev) in zip(sides, devices) {
                    let req = CreateRequest(name: side, type: .concat, devices: [Paths.absolute(dev)], force: force)
                    let res = try CommandContext.perform(.create(req), global, as: CreateResult.self)
                    made.append(side)
                    if !output.json { for m in res.messages { Output.warn(m) } }
                }
            } catch {
                undo(made)
                throw error
            }
        }
        let req = CreateRequest(name: name, type: .mirror, devices: sides, hotSparePool: hotSparePool, noInit: noResync, force: force)
        let res: CreateResult
        do { res = try CommandContext.perform(.create(req), global, as: CreateResult.self) } catch {
            undo(made)
            throw error
        }
        if output.json { try Output.printJSON(res); return }
        for m in res.messages { Output.warn(m) }
        if !global.quiet {
            print(Said.volumeSetUp(res.name, .mirror, blocks: res.sizeBytes / 512, size: Output.humanSize(res.sizeBytes)))
        }
    }

    /// The volume soft partitions on device `path` are carved from: the set's one-device
    /// concat over it, or a new one named after the device (returned as made).
    private func deviceParent(_ path: String) throws -> (String, String?) {
        func canonical(_ p: String) -> String { URL(fileURLWithPath: p).resolvingSymlinksInPath().path }
        let report = try? CommandContext.perform(.status(names: []), global, as: StatusReport.self)
        if let v = report?.volumes.first(where: {
            $0.type == VolumeType.concat.rawValue && $0.components.count == 1 && canonical($0.components[0].device) == canonical(path)
        }) {
            return (v.name, nil)
        }
        let carrier = Self.carrierName(path)
        if report?.volumes.contains(where: { $0.name == carrier }) == true {
            throw UserError("\(path): a volume named \(carrier) exists already; make a one-device concat over the device yourself (metactl create NAME concat \(path)), then carve from it (metactl create \(name) softpart NAME SIZE)", code: .inUse)
        }
        let req = CreateRequest(name: carrier, type: .concat, devices: [path], force: force)
        let res = try CommandContext.perform(.create(req), global, as: CreateResult.self)
        if !output.json { for m in res.messages { Output.warn(m) } }
        return (carrier, carrier)
    }

    /// A volume name from a device path: its last component, lower-cased, with characters a
    /// name may not hold replaced by `-` (starting with a letter).
    static func carrierName(_ path: String) -> String {
        let base = (path as NSString).lastPathComponent.lowercased()
        var out = String(base.map { c -> Character in
            (c.isASCII && (c.isLetter || c.isNumber)) || c == "_" || c == "." || c == "-" ? c : "-"
        })
        if !(out.first.map { $0.isASCII && $0.isLetter } ?? false) { out = "dev-" + out }
        return String(out.prefix(63))
    }

    /// Clears the concats made for a mirror that could not be made.
    private func undo(_ made: [String]) {
        for side in made.reversed() { _ = try? CommandContext.perform(.clear(name: side, force: true), global, as: [String: String].self) }
    }
}

/// `--write-log auto|none`.
enum WriteLogArgument {
    static func parse(_ s: String) throws -> WriteLogMode {
        guard let m = WriteLogMode(rawValue: s) else {
            throw UserError("--write-log \(s): use auto or none", code: .invalidArgument)
        }
        return m
    }
}
