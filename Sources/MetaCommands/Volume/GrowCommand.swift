import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

/// `metactl grow NAME [-i SIZE] [--wait] [--force] [--cancel] [--json] DEV...`
struct GrowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grow",
        abstract: "Grow a volume: append a row to a concat/stripe, columns to a RAID-5, space to a soft partition (metattach).",
        discussion: """
        concat/stripe: the devices form one new row after the last one: one device is \
        concatenated, several are striped with -i (default: the interlace of the last striped \
        row, else 512 KiB). RAID-5: each device becomes a data column concatenated after the \
        volume's capacity (status lists them under "Concatenated Devices"); its data area must \
        hold a column (the volume's column size) and is zeroed first, so the parity stays valid; \
        the interlace is fixed (no -i). Existing data never moves, and the new size is committed \
        in one state-database transaction: a crash leaves the old size or the new one.

        The RAID-5 zeroing is checkpointed: after a crash the set reports the interrupted grow; \
        repeat the same grow to finish it, or use --cancel to release its devices. Refused, with \
        no change, while the volume is initialising, resyncing, Needs Maintenance or Last Erred, \
        for devices that fail the checks of create or whose logical sector size is larger than \
        the volume's or does not divide the interlace, and beyond 128 rows, 32 devices per row \
        or 32 RAID-5 columns.

        Online: while `metactl serve` runs the grow goes through it and new NBD connections see \
        the new size; connected clients must reconnect (nbdfuse: restart it, then \
        `losetup -c /dev/loopN`; kernel client: disconnect and connect again; qemu: \
        block_resize). Through a server the command returns after 10 minutes of zeroing and \
        lets the server finish unless --wait is given; progress is printed on stderr when the \
        zeroing takes a while.

        Soft partition: `metactl grow d1 512m` adds that much space, first fit in its parent \
        volume (as one or more extents, each with its watermark); data never moves.

        --json prints {"name", "oldSizeBytes", "newSizeBytes", "messages": [...]} (sizes in bytes).
        """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The volume to grow.", completion: .shellCommand(Completions.volumes))
    var name: String

    @Argument(help: "Devices or image files to add; for a soft partition, the size to add (e.g. 512m).", completion: .file())
    var devices: [String] = []

    @Option(name: .customShort("i"), help: ArgumentHelp("Interlace of a new stripe row, 8k–100m.", valueName: "size"))
    var interlace: String?

    @Flag(help: "Wait for the zeroing of new RAID-5 columns however long it takes.")
    var wait = false

    @Flag(name: .shortAndLong, help: "Overwrite devices that carry a signature (file system, partition table, …).")
    var force = false

    @Flag(help: "Release the devices of an interrupted RAID-5 grow instead of finishing it.")
    var cancel = false

    @OptionGroup var output: JSONOption

    /// How long the command waits for a server without --wait.
    static let serverWait: TimeInterval = 600

    func run() throws {
        if devices.isEmpty && !cancel { throw UserError("\(name): no devices given") }
        if cancel && !devices.isEmpty { throw UserError("\(name): --cancel takes no devices") }
        let il = try interlace.map { try SizeParser.parse($0) }
        // A soft partition grows by a size: one argument that is a size and not a file.
        let size = devices.count == 1 && !FileManager.default.fileExists(atPath: devices[0])
            ? try? SizeParser.parse(devices[0]) : nil
        let req = GrowRequest(name: name, devices: size == nil ? devices.map(Paths.absolute) : [], interlaceBytes: il,
                              force: force, cancel: cancel, sizeBytes: size)
        Interrupt.onSIGINT(SetAccess.serverRunning(set: global.set, runDir: global.runDir)
            ? "\(name): interrupted; the grow continues in the server (follow it with `metactl status \(name)`)"
            : "\(name): interrupted; nothing is committed until the new columns are zeroed: repeat the grow to finish it, or `metactl grow \(name) --cancel`")
        let response = try ProgressDisplay.performShowingWork(
            .grow(req), volume: name, kind: .zeroing, global, giveUpAfter: wait ? nil : Self.serverWait,
            onGiveUp: "\(name): the server is still zeroing the new columns; it commits the grow when done (follow with `metactl status \(name)`, or wait with --wait)")
        guard let response else { return }
        let res: GrowResult
        do { res = try response.decode(GrowResult.self) } catch { throw UserError(wrapping: error) }
        if output.json { try Output.printJSON(res); return }
        for m in res.messages { Output.warn(m) }
        if !global.quiet && !cancel {
            print("\(res.name): grown from \(Output.humanSize(res.oldSizeBytes)) (\(res.oldSizeBytes / 512) blocks) to \(Output.humanSize(res.newSizeBytes)) (\(res.newSizeBytes / 512) blocks)")
        }
    }
}
