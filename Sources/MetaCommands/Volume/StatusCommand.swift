import ArgumentParser
import Foundation
import MetaControl

/// `metactl status [NAME...] [-p|-c] [--json]`
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show volumes and hot spare pools (metastat).",
        discussion: """
        Without options, prints a report in metastat's form for each volume (all of them, or \
        the NAMEs given, which may also name hot spare pools), then the hot spare pools. A \
        RAID-5 volume shows its state, the Invoke: line naming the command to run when it \
        needs an action, the progress of initialisation or resync (percent done, rate, time \
        left), its interlace and size, then its columns under "Original device:" (columns \
        added by grow under "Concatenated Devices:") with Device, Start Block (first data \
        block), Dbase (whether the device holds a state database replica), State and Hot \
        Spare (the spare standing in, if any). A concat/stripe shows each row as "Stripe N:" \
        with its interlace. Sizes are given in 512-byte blocks and binary units. When the \
        set has lost its replica quorum, the report starts with why it is read-only and \
        what to do.

        -p prints md.tab lines (metainit syntax) that recreate the configuration, for \
        example "d10 -r /dev/sdb /dev/sdc /dev/sdd -i 128b -h hsp001", "d0 2 1 /dev/sdb 1 \
        /dev/sdc" (a concat of two rows), "d1 1 3 /dev/sdb /dev/sdc /dev/sdd -i 1024b" (a \
        stripe), "hsp001 /dev/sde" (a hot spare pool); a RAID-5 grown by grow adds \
        "-o N", its count of original (parity-carrying) columns. SVM had no RAID-6: a RAID-6 \
        line says "-r6" where a RAID-5 line says "-r". Before each md.tab line come \
        comment lines of the form "# metactl ARGS...": the metactl commands that recreate \
        that object (hs create, create, then grow for rows or columns added later; with -s \
        when the set is not "local"). Hot spare pools come first, so running the comment \
        lines (without their leading "# ") from top to bottom rebuilds the configuration.

        -c prints one line per volume and hot spare pool: name, type (s concat/stripe, r \
        RAID-5, r6 RAID-6, h hot spare pool), size, state when not Okay (with percent done), and the \
        components, each followed by its state when not Okay (or Initializing) and by "(spare DEV)" when a hot \
        spare stands in for it.

        --json prints one JSON document. Its schema is stable: fields may be added in later \
        releases, never renamed or removed, and every key listed here is always present \
        (null where stated, never left out). Sizes are in bytes; states are spelled as in \
        the report.

        Top level: "set" (string: the set name); "live" (bool: true when the report comes \
        from a running metactl serve, with live progress; false when read from the \
        devices); "readOnlyReason" (string or null: why the set is read-only and what to \
        do); "quorum" (object: "readable" and "total" (int: replicas readable, replicas \
        listed), "writable" (bool: more than half readable)); "volumes" (array of volume); \
        "hotSparePools" (array of pool).

        volume: "name" (string); "type" ("concat", "stripe", "raid5", "raid6" or "softpart"); "state" ("Okay", \
        "Initializing", "Resyncing", "Needs Maintenance" or "Last Erred"); "sizeBytes" \
        (int: usable size); "interlaceBytes" (int or null: the RAID-5 interlace or a \
        stripe's first row's; null for a concat); "hotSparePool" (string or null); \
        "resync" (resync or null); "components" (array of component: every component, the \
        rows' in order or the RAID-5 columns); "rows" (array of row, or null for RAID-5); \
        "originalColumns" (int or null: RAID-5, how many leading columns carry parity, the \
        rest were added by grow); "invoke" (string or null: the command to run when the \
        volume needs an action); "mapped" (object or null: where metactl map gave the host a \
        block device for it: {"device" (string: /dev/loopN or /dev/nbdN), "via" ("nbdfuse": \
        nbdfuse and a loop device, or "netlink": the kernel nbd driver), "readOnly" (bool)}); \
        "openCount" (int or null: NBD clients connected through \
        the server; null without a server); "lostBytes" (int: RAID-5 data known to be lost, \
        read as EIO until rewritten; 0 when none); "lost" (array of {"offsetBytes", \
        "lengthBytes"}: where, in volume bytes); "writeLog" (object or null: RAID-5 and RAID-6, \
        {"mode": "auto" (writes are logged) or "none", "areaBytes": bytes reserved for the \
        log after each original column, 0 when none, "device": the dedicated log device's \
        path (absent when none), "deviceAreaBytes": its log area, "deviceFailed": whether \
        it failed and the records went back to the columns}).

        component: "device" (string: path); "uuid" (string: the UUID in the device's \
        label); "startBlock" (int: first data block); "hasReplica" (bool: the device holds \
        a state database replica); "state" ("Okay", "Initializing", "Resyncing", \
        "Maintenance", "Last Erred" or "Unavailable"); "hotSpare" (string or null: path of \
        the spare standing in); "present" (bool: found when the set was opened); \
        "sizeBytes" (int: size of the device); "staleRegions" (int or null: an Unavailable \
        column whose device went away, the dirty regions written since; only those are \
        rebuilt when the same device comes back; null: not tracked, a full rebuild).

        row: "interlaceBytes" (int: 512 for a concat row); "sizeBytes" (int: the row's \
        share of the volume); "components" (array of component).

        A volume also has "resyncRate": null (the defaults) or {"minBytesPerSecond" (int), \
        "maxBytesPerSecond" (int, or null: unlimited)}, as set with `metactl set --resync-rate`; \
        and "check": null (never checked; always null but for RAID-5) or the current or last \
        `metactl check`: {"running" (bool: running, or interrupted and resumed when served), \
        "repair" (bool), "percent" (number), "bytesPerSecond" and "secondsLeft" (numbers or \
        null: live, per column), "startedAt" and "endedAt" (ISO 8601 strings; endedAt null \
        while running), "result" ("completed", "stopped", "abandoned" or null while \
        running), "failure" (string or null: why it was abandoned), "mismatches" (int: \
        lines whose parity did not match their data), "mismatchLines" (array of int: the \
        first 16 of them), "repaired" (int), "readErrorsRepaired" (int: unreadable units \
        rewritten from the other columns), "located" (array of {"line", "column"}: RAID-6, \
        the first 16 wrong units its two syndromes pointed at)}.

        resync: "kind" ("initialize", "regenerate", "copy", "parity-repair" or "zeroing"); \
        "percent" (number: done, one decimal); "bytesPerSecond" (number: current rate, 0 \
        when not running); "secondsLeft" (number or null: estimated time left); "source" \
        (string or null: the device a copy reads, the old one or the hot spare standing in \
        for it); "target" (string or null: the device a copy or regeneration writes); \
        "moreTargets" (array of string: RAID-6, the devices of further columns rebuilt in the \
        same pass); "regions" (int or null: a returned device rebuilt over the dirty regions \
        written while it was away, how many; null: every line).

        A soft partition has "softPartition": {"parent" (string: the volume it is carved \
        from), "extents" (array of {"startBlock" (int: where its data starts in the parent, in \
        512-byte blocks; its watermark is the 8 blocks before), "blocks" (int))}; null for \
        other types. Its "state" is its parent's; its "components" are empty.

        pool: "name" (string); "spares" (array of objects: "device" (string), "state" \
        ("Available", "In use" or "Broken"), "sizeBytes" (int)).

        An unknown NAME is an error. With NAMEs, only those volumes and pools are listed.
        """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Volumes or hot spare pools to show (default: all).", completion: .shellCommand(Completions.names))
    var names: [String] = []

    @Flag(name: .customShort("p"), help: "Print md.tab lines (and metactl commands) that recreate the configuration.")
    var mdTab = false

    @Flag(name: .customShort("c"), help: "Print one line per volume.")
    var concise = false

    @OptionGroup var output: JSONOption

    func run() throws {
        if [mdTab, concise, output.json].filter({ $0 }).count > 1 {
            throw UserError("status: -p, -c and --json exclude each other; use one")
        }
        let report = try CommandContext.perform(.status(names: names), global, as: StatusReport.self)
        var shown = StatusFormatter.filtered(report, names: names)
        // Mappings are the client side's business: the maps file tells (metactl map).
        if let maps = try? MapStore.load(runDir: global.runDir, set: global.set) {
            for i in shown.volumes.indices {
                if let m = maps.first(where: { $0.volume == shown.volumes[i].name }) {
                    shown.volumes[i].mapped = .init(device: m.device, via: m.path.rawValue, readOnly: m.readOnly)
                }
            }
        }
        let text: String
        if output.json {
            text = try StatusFormatter.json(shown)
        } else if mdTab {
            text = StatusFormatter.mdTab(shown)
        } else if concise {
            text = StatusFormatter.concise(shown)
        } else {
            text = StatusFormatter.report(shown)
        }
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
