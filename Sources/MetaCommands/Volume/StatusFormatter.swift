import Foundation
import MetaControl

/// Renders a ``StatusReport`` the ways `metactl status` prints it: the metastat-style report,
/// md.tab lines (`-p`), one line per volume (`-c`) and JSON (`--json`).
///
/// Every function is pure (report in, text out), so the output for any state can be tested
/// from a synthetic report.
public enum StatusFormatter {

    // MARK: selection

    /// The report restricted to `names` (volumes and hot spare pools); all of it when empty.
    public static func filtered(_ r: StatusReport, names: [String]) -> StatusReport {
        guard !names.isEmpty else { return r }
        var out = r
        out.volumes = r.volumes.filter { names.contains($0.name) }
        out.hotSparePools = r.hotSparePools.filter { names.contains($0.name) }
        return out
    }

    // MARK: default report

    /// The metastat-style report: the read-only warning if any, the volumes separated by
    /// blank lines, then the hot spare pools. Ends with a newline.
    public static func report(_ r: StatusReport) -> String {
        var blocks: [String] = []
        // As metastat: a mirror, then its sides (not again in their own place).
        let byName = Dictionary(r.volumes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for v in r.volumes {
            if let m = v.sideOf, byName[m] != nil { continue }
            blocks.append(volume(v, live: r.live))
            for s in v.mirror?.sides ?? [] { if let sv = byName[s.name] { blocks.append(volume(sv, live: r.live)) } }
        }
        blocks += r.hotSparePools.map(pool)
        var text = ""
        if let reason = r.readOnlyReason {
            text += "set '\(r.set)' is read-only: \(reason)\n"
            if !blocks.isEmpty { text += "\n" }
        }
        if blocks.isEmpty && r.readOnlyReason == nil {
            return "set '\(r.set)' has no volumes or hot spare pools\n"
        }
        if !blocks.isEmpty { text += blocks.joined(separator: "\n\n") + "\n" }
        return text
    }

    /// One volume, without a trailing newline. `live`: the report comes from a running server
    /// (background work runs only there).
    public static func volume(_ v: StatusReport.VolumeStatus, live: Bool = false) -> String {
        if let sp = v.softPartition { return softPartition(v, sp) }
        if let m = v.mirror { return mirror(v, m, live: live) }
        return isRAID(v) ? raid(v, live: live) : concatStripe(v, live: live)
    }

    /// metastat's mirror: `d0: Mirror`, each side with its state (and resync progress, or
    /// the regions it missed while offline), the policies and the size.
    private static func mirror(_ v: StatusReport.VolumeStatus, _ m: StatusReport.MirrorStatus, live: Bool) -> String {
        var lines = ["\(v.name): Mirror"]
        for (i, s) in m.sides.enumerated() {
            lines.append("    Submirror \(i): \(s.name)")
            var state = "      State: \(s.state)"
            if let p = s.resyncPercent {
                state += " (\(String(format: "%.1f", p))% of \(s.resyncRegions.map { "\($0) region\($0 == 1 ? "" : "s")" } ?? "every region")\(live ? "" : "; resyncs when the set is served"))"
            }
            if let n = s.staleRegions { state += " (\(n) region\(n == 1 ? "" : "s") written since: online resyncs \(n == 1 ? "it" : "them"))" }
            lines.append(state)
        }
        if v.state != "Okay" { lines.append("    State: \(v.state)") }
        if let inv = v.invoke { lines.append("    Invoke: \(inv)") }
        if let rs = v.resync { lines.append("    \(progressLine(rs, live: live))") }
        if let mp = v.mapped { lines.append("    Mapped: \(mp.device)\(mp.readOnly ? " read-only" : "")") }
        lines.append("    Pass: \(m.pass)")
        lines.append("    Read option: \(m.readPolicy)\(m.readPolicy == "roundrobin" ? " (default)" : "")")
        lines.append("    Write option: \(m.writePolicy)\(m.writePolicy == "parallel" ? " (default)" : "")")
        lines.append("    Size: \(blocksLine(v.sizeBytes))")
        if let c = v.check { lines.append("    \(checkLine(c, live: live, unit: "chunk"))") }
        return lines.joined(separator: "\n")
    }

    private static let extentColumns = [Column("Extent", rightAligned: true), Column("Start Block", rightAligned: true),
                                        Column("Block count", rightAligned: true)]

    /// metastat's soft partition: `d1: Soft Partition`, its device (the parent volume), state
    /// (the parent's), size and extents.
    private static func softPartition(_ v: StatusReport.VolumeStatus, _ sp: StatusReport.SoftPartitionStatus) -> String {
        var lines = ["\(v.name): Soft Partition", "    Device: \(sp.parent)", "    State: \(v.state)"]
        if let i = v.invoke { lines.append("    Invoke: \(i)") }
        lines.append("    Size: \(blocksLine(v.sizeBytes))")
        let rows = sp.extents.enumerated().map { ["\($0.offset)", "\($0.element.startBlock)", "\($0.element.blocks)"] }
        lines += render(extentColumns, rows, widths: widths(extentColumns, rows))
        return lines.joined(separator: "\n")
    }

    /// Whether the volume is built of parity columns (raid5, raid6).
    static func isRAID(_ v: StatusReport.VolumeStatus) -> Bool { v.type == "raid5" || v.type == "raid6" }

    /// One hot spare pool, without a trailing newline.
    public static func pool(_ p: StatusReport.Pool) -> String {
        guard !p.spares.isEmpty else { return "\(p.name): is empty" }
        var lines = ["\(p.name): \(p.spares.count) hot spare\(p.spares.count == 1 ? "" : "s")"]
        let cols = [Column("Device"), Column("Status"), Column("Length"), Column("Reloc")]
        let rows = p.spares.map { [$0.device, $0.state, "\($0.sizeBytes / 512) blocks", "No"] }
        lines += render(cols, rows, widths: widths(cols, rows))
        return lines.joined(separator: "\n")
    }

    /// `"3.0 GiB"`-style size of `blocks` 512-byte blocks, with the block count.
    static func blocksLine(_ bytes: UInt64) -> String {
        "\(bytes / 512) blocks (\(Output.humanSize(bytes)))"
    }

    /// The lines that follow `State:`: `Invoke:` and the progress of background work.
    static func stateDetail(_ v: StatusReport.VolumeStatus, live: Bool) -> [String] {
        var lines: [String] = []
        if let inv = v.invoke { lines.append("    Invoke: \(inv)") }
        if v.lostBytes > 0 {
            let shown = v.lost.prefix(3).map { "\($0.offsetBytes)+\($0.lengthBytes)" }.joined(separator: ", ")
            lines.append("    Lost: \(blocksLine(v.lostBytes)) in \(v.lost.count) range\(v.lost.count == 1 ? "" : "s") (byte offset+length: \(shown)\(v.lost.count > 3 ? ", …" : "")): reads there fail until rewritten")
        }
        if let r = v.resyncRate {
            lines.append("    Resync rate: \(rate(Double(r.minBytesPerSecond))) to \(r.maxBytesPerSecond.map { rate(Double($0)) } ?? "unlimited")")
        }
        if let m = v.mapped {
            let via = m.via == "nbdfuse" ? "nbdfuse and a loop device" : m.via == "netlink" ? "the kernel nbd driver" : m.via
            lines.append("    Mapped: \(m.device)\(m.readOnly ? " read-only" : "") (\(via))")
        }
        if let c = v.check { lines.append("    \(checkLine(c, live: live, unit: v.mirror != nil ? "chunk" : "line"))") }
        for c in v.components where c.state == "Unavailable" {
            guard let n = c.staleRegions else { continue }
            lines.append("    \(c.device) is away: \(n) region\(n == 1 ? "" : "s") written since; when it comes back only \(n == 1 ? "that one is" : "those are") rebuilt")
        }
        if let rs = v.resync {
            lines.append("    \(progressLine(rs, live: live))")
            if let t = rs.target {
                if rs.kind == "copy" {
                    lines.append("    Copying \(rs.source ?? "the old device") to \(t)")
                } else if let n = rs.regions {
                    lines.append("    Rebuilding \(t), which came back, over the \(n) region\(n == 1 ? "" : "s") written while it was away")
                } else {
                    lines.append("    Rebuilding onto \(([t] + rs.moreTargets).joined(separator: " and ")) from the other columns")
                }
            }
        }
        return lines
    }

    /// `Check in progress: 12.0% done (…)` while a check runs; else the last one:
    /// `Last check: completed 2026-12-01 01:30 UTC: 0 mismatches`.
    static func checkLine(_ c: StatusReport.CheckStatus, live: Bool, unit: String = "line") -> String {
        if c.running {
            let what = c.repair ? "Check and repair" : "Check"
            let found = c.mismatches > 0 ? ", \(checkFindings(c, unit: unit))" : ""
            guard live else {
                return "\(what) in progress: \(String(format: "%.1f", c.percent))% done\(found) (not running: resumes while the set is served by metactl serve)"
            }
            return "\(what) in progress: \(String(format: "%.1f", c.percent))% done (\(rate(c.bytesPerSecond ?? 0)), \(duration(c.secondsLeft)) left)\(found)"
        }
        let when = c.endedAt.map { " " + humanTime($0) } ?? ""
        let how = c.result == "completed" ? "completed" : "\(c.result ?? "ended") at \(String(format: "%.1f", c.percent))%"
        return "Last check: \(how)\(when): \(checkFindings(c, unit: unit))\(c.failure.map { " (\($0))" } ?? "")"
    }

    /// `0 mismatches` / `3 mismatches (lines 12, 40, 41), 3 repaired` / `…, 1 read error rewritten`.
    /// `unit`: what a check's step is called: `line` (RAID), `chunk` (a mirror's 1 MiB).
    public static func checkFindings(_ c: StatusReport.CheckStatus, unit: String = "line") -> String {
        var s = "\(c.mismatches) mismatch\(c.mismatches == 1 ? "" : "es")"
        if !c.mismatchLines.isEmpty {
            s += " (\(unit)\(c.mismatchLines.count == 1 ? "" : "s") \(c.mismatchLines.map(String.init).joined(separator: ", "))\(c.mismatches > UInt64(c.mismatchLines.count) ? ", …" : ""))"
        }
        if !c.located.isEmpty {
            s += ", wrong unit on " + c.located.map { "column \($0.column) in line \($0.line)" }.joined(separator: ", ")
                + (c.mismatches > UInt64(c.located.count) && c.located.count >= 16 ? ", …" : "")
        }
        if c.repair { s += ", \(c.repaired) repaired" }
        if c.readErrorsRepaired > 0 { s += ", \(c.readErrorsRepaired) unreadable unit\(c.readErrorsRepaired == 1 ? "" : "s") rewritten" }
        return s
    }

    /// `2026-12-01 01:30 UTC` from an ISO 8601 time.
    static func humanTime(_ iso: String) -> String {
        guard let d = ISO8601DateFormatter().date(from: iso) else { return iso }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return f.string(from: d)
    }

    /// `Resync in progress: 47.6% done (812 MiB/s, 00:00:12 left)` and its kin.
    static func progressLine(_ rs: StatusReport.Resync, live: Bool) -> String {
        let what: String
        switch rs.kind {
        case "initialize": what = "Initialization"
        case "zeroing": what = "Zeroing of new columns"
        case "parity-repair": what = "Parity repair"
        default: what = "Resync"
        }
        var line = "\(what) in progress: \(String(format: "%.1f", rs.percent))% done"
        if live || rs.bytesPerSecond > 0 || rs.secondsLeft != nil {
            line += " (\(rate(rs.bytesPerSecond)), \(duration(rs.secondsLeft)) left)"
        } else {
            line += " (not running: runs while the set is served by metactl serve)"
        }
        return line
    }

    private static let componentColumns = [
        Column("Device"), Column("Start Block", rightAligned: true), Column("Dbase"), Column("State"),
        Column("Reloc"), Column("Hot Spare"),
    ]

    private static func componentRow(_ c: StatusReport.Component) -> [String] {
        [c.device, "\(c.startBlock)", c.hasReplica ? "Yes" : "No", c.state, "No", c.hotSpare ?? ""]
    }

    private static func raid(_ v: StatusReport.VolumeStatus, live: Bool) -> String {
        // SVM's heading for RAID-5; RAID-6, which SVM did not have, says so.
        var lines = ["\(v.name): \(v.type == "raid6" ? "RAID-6" : "RAID")", "    State: \(v.state)"]
        lines += stateDetail(v, live: live)
        if let hsp = v.hotSparePool { lines.append("    Hot spare pool: \(hsp)") }
        if let il = v.interlaceBytes { lines.append("    Interlace: \(il / 512) blocks") }
        if let log = v.writeLog {
            let columns = log.areaBytes > 0 ? "\(Output.humanSize(log.areaBytes)) per column" : "no room in the columns"
            if let dev = log.device {
                let size = Output.humanSize(log.deviceAreaBytes ?? 0)
                lines.append(log.deviceFailed
                    ? "    Write log: \(log.mode == "auto" ? "on, in the columns (\(columns))" : "off"): the log device \(dev) failed (replace it with set --log-device)"
                    : "    Write log: \(log.mode == "auto" ? "on" : "off"), on \(dev) (\(size))")
            } else {
                lines.append(log.mode == "auto"
                    ? "    Write log: on (\(columns))"
                    : "    Write log: off\(log.areaBytes > 0 ? " (\(columns) reserved)" : "")")
            }
        }
        lines.append("    Size: \(blocksLine(v.sizeBytes))")
        let n = v.components.count
        let original = min(n, max(0, v.originalColumns ?? n))
        // Size = columnBlocks × (columns − m): parity takes m columns' worth (1 RAID-5, 2 RAID-6).
        let m = v.type == "raid6" ? 2 : 1
        let columnBytes = n > m ? v.sizeBytes / UInt64(n - m) / 512 * 512 : 0
        let rows = v.components.map(componentRow)
        // Room for every component state ("Maintenance", "Unavailable") so the table does not
        // shift as states change.
        var w = widths(componentColumns, rows)
        w[3] = max(w[3], 11)
        lines.append("Original device:")
        lines.append("    Size: \(blocksLine(columnBytes * UInt64(max(0, original - m))))")
        lines += render(componentColumns, Array(rows[0..<original]), widths: w)
        if original < n {
            lines.append("Concatenated Devices:")
            lines.append("    Size: \(blocksLine(columnBytes * UInt64(n - original)))")
            lines += render(componentColumns, Array(rows[original...]), widths: w)
        }
        return lines.joined(separator: "\n")
    }

    private static func concatStripe(_ v: StatusReport.VolumeStatus, live: Bool) -> String {
        var lines = [v.sideOf.map { "\(v.name): Submirror of \($0)" } ?? "\(v.name): Concat/Stripe"]
        if v.state != "Okay" { lines.append("    State: \(v.state)") }
        lines += stateDetail(v, live: live)
        lines.append("    Size: \(blocksLine(v.sizeBytes))")
        let rowList = v.rows ?? [StatusReport.Row(interlaceBytes: v.interlaceBytes ?? 512, sizeBytes: v.sizeBytes,
                                                  components: v.components)]
        let all = rowList.flatMap { $0.components.map(componentRow) }
        let w = widths(componentColumns, all)
        for (i, row) in rowList.enumerated() {
            // A concat row (interlace of one block) with a single component has no interlace
            // to speak of; a stripe row does.
            if row.components.count > 1 || row.interlaceBytes > 512 {
                lines.append("    Stripe \(i): (interlace: \(row.interlaceBytes / 512) blocks)")
            } else {
                lines.append("    Stripe \(i):")
            }
            lines += render(componentColumns, row.components.map(componentRow), widths: w)
        }
        return lines.joined(separator: "\n")
    }

    // MARK: tables

    struct Column {
        var title: String
        var rightAligned = false
        init(_ title: String, rightAligned: Bool = false) { self.title = title; self.rightAligned = rightAligned }
    }

    static func widths(_ cols: [Column], _ rows: [[String]]) -> [Int] {
        cols.indices.map { i in rows.reduce(cols[i].title.count) { max($0, i < $1.count ? $1[i].count : 0) } }
    }

    /// Header and rows, indented 8, columns two spaces apart, trailing blanks trimmed.
    static func render(_ cols: [Column], _ rows: [[String]], widths w: [Int], indent: String = "        ") -> [String] {
        func line(_ cells: [String], header: Bool) -> String {
            var s = indent
            for (i, c) in cells.enumerated() {
                let pad = String(repeating: " ", count: max(0, w[i] - c.count))
                s += (!header && cols[i].rightAligned) ? pad + c : c + pad
                if i < cells.count - 1 { s += "  " }
            }
            while s.hasSuffix(" ") { s.removeLast() }
            return s
        }
        return [line(cols.map(\.title), header: true)] + rows.map { line($0, header: false) }
    }

    // MARK: units

    /// A rate in binary units: `812 MiB/s`, `1.5 GiB/s`.
    public static func rate(_ bytesPerSecond: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = max(0, bytesPerSecond), i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return (v < 10 && i > 0 ? String(format: "%.1f", v) : String(format: "%.0f", v)) + " \(units[i])/s"
    }

    /// `HH:MM:SS`, or `unknown`.
    public static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0, seconds < 1e12 else { return "unknown" }
        let s = Int(seconds.rounded())
        return String(format: "%02d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
    }

    /// metastat -c's compact size: `3.0GB`, `512.0MB`, `700B` (binary units).
    public static func compactSize(_ bytes: UInt64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB", "PB"]
        var v = Double(bytes), i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(bytes)B" : String(format: "%.1f%@", v, units[i])
    }

    // MARK: -c

    /// One line per volume and hot spare pool: name, type letter (`s` concat/stripe, `r`
    /// RAID-5, `h` hot spare pool), size, state when not Okay, components (each followed by
    /// its state when not Okay or Initializing, and by the spare standing in for it).
    public static func concise(_ r: StatusReport) -> String {
        var rows: [[String]] = []
        for v in r.volumes {
            var state = v.state == "Okay" ? "" : v.state
            if let rs = v.resync { state += " \(String(format: "%.1f", rs.percent))%" }
            let comps = v.components.map { c -> String in
                var s = c.device
                // Initializing concerns every column alike; the volume's state says it.
                if c.state != "Okay" && c.state != "Initializing" { s += " (\(c.state))" }
                if let hs = c.hotSpare { s += " (spare \(hs))" }
                return s
            }
            let letter = v.softPartition != nil ? "p" : v.mirror != nil ? "m" : v.type == "raid6" ? "r6" : isRAID(v) ? "r" : "s"
            let members = v.softPartition.map { [$0.parent] }
                ?? v.mirror.map { $0.sides.map { $0.state == "Okay" ? $0.name : "\($0.name) (\($0.state))" } } ?? comps
            rows.append([v.name, letter, compactSize(v.sizeBytes),
                         state.trimmingCharacters(in: .whitespaces), members.joined(separator: " ")])
        }
        for p in r.hotSparePools {
            let spares = p.spares.map { $0.state == "Available" ? $0.device : "\($0.device) (\($0.state))" }
            rows.append([p.name, "h", "-", "", spares.joined(separator: " ")])
        }
        if rows.allSatisfy({ $0[3].isEmpty }) { rows = rows.map { var r = $0; r.remove(at: 3); return r } }
        guard let n = rows.first?.count else { return "" }
        let cols = (0..<n).map { Column("", rightAligned: $0 == 2) }
        return render(cols, rows, widths: widths(cols, rows), indent: "").dropFirst().joined(separator: "\n") + "\n"
    }

    // MARK: -p

    /// md.tab lines (metainit syntax) that recreate the configuration, each preceded by
    /// comments with the `metactl` commands that do the same. Hot spare pools come first so
    /// the commands, run top to bottom, work (`create -h` needs no pool, but `hs create`
    /// refuses an existing one).
    public static func mdTab(_ r: StatusReport) -> String {
        var out: [String] = []
        let setOpt = r.set == "local" ? "" : " -s \(shellQuote(r.set))"
        for p in r.hotSparePools {
            let devs = p.spares.map(\.device)
            out.append("# metactl\(setOpt) hs create \(p.name)" + devs.map { " " + shellQuote($0) }.joined())
            out.append(([p.name] + devs).joined(separator: " "))
        }
        for v in r.volumes {
            for c in metactlCommands(v) { out.append("# metactl\(setOpt) \(c)") }
            out.append(mdTabLine(v))
        }
        guard !out.isEmpty else { return "" }
        return (["# md.tab lines (metainit syntax); the comment lines before each are the metactl commands",
                 "# that recreate it, to be run in order."] + out).joined(separator: "\n") + "\n"
    }

    /// The md.tab line of one volume: `d10 -r A B C -i 128b [-o 3] [-h hsp001]`,
    /// `d0 2 1 A 1 B`, `d1 1 3 A B C -i 1024b`. SVM had no RAID-6: its line is written with
    /// `-r6` in place of `-r` (metactl's extension).
    public static func mdTabLine(_ v: StatusReport.VolumeStatus) -> String {
        if let sp = v.softPartition {
            return "\(v.name) -p \(sp.parent)" + sp.extents.map { " -o \($0.startBlock) -b \($0.blocks)" }.joined()
        }
        if let m = v.mirror {
            // SVM's -r/-w/pass values: geometric and serial spelled as metaparam takes them.
            var s = "\(v.name) -m " + m.sides.map(\.name).joined(separator: " ")
            if m.readPolicy != "roundrobin" { s += m.readPolicy == "geometric" ? " -g" : " -r" }
            if m.writePolicy == "serial" { s += " -S" }
            return s + " \(m.pass)"
        }
        if isRAID(v) {
            var s = "\(v.name) \(v.type == "raid6" ? "-r6" : "-r") " + v.components.map(\.device).joined(separator: " ")
            if let il = v.interlaceBytes { s += " -i \(il / 512)b" }
            if let o = v.originalColumns, o < v.components.count { s += " -o \(o)" }
            if let hsp = v.hotSparePool { s += " -h \(hsp)" }
            return s
        }
        let rows = v.rows ?? []
        var s = "\(v.name) \(rows.count)"
        for row in rows {
            s += " \(row.components.count) " + row.components.map(\.device).joined(separator: " ")
            if row.components.count > 1 { s += " -i \(row.interlaceBytes / 512)b" }
        }
        return s
    }

    /// The `metactl` commands (without `metactl`) that recreate a volume: a `create`, then a
    /// `grow` per row or column group that `create` cannot express.
    public static func metactlCommands(_ v: StatusReport.VolumeStatus) -> [String] {
        func devs(_ cs: [StatusReport.Component]) -> String { cs.map { shellQuote($0.device) }.joined(separator: " ") }
        if let sp = v.softPartition {
            return ["create \(v.name) softpart \(sp.parent)" + sp.extents.map { " -o \($0.startBlock)b -b \($0.blocks)b" }.joined()]
        }
        if let m = v.mirror {
            // Recreated over sides that hold the data: no resync.
            var cmds = ["create \(v.name) mirror --no-resync " + m.sides.map(\.name).joined(separator: " ")]
            var set: [String] = []
            if m.readPolicy != "roundrobin" { set.append("--read-policy \(m.readPolicy)") }
            if m.writePolicy != "parallel" { set.append("--write-policy \(m.writePolicy)") }
            if m.pass != 1 { set.append("--pass \(m.pass)") }
            if !set.isEmpty { cmds.append("set \(v.name) " + set.joined(separator: " ")) }
            return cmds
        }
        if isRAID(v) {
            let o = min(v.components.count, v.originalColumns ?? v.components.count)
            var create = "create \(v.name) \(v.type)"
            if let il = v.interlaceBytes { create += " -i \(sizeArgument(il))" }
            if let hsp = v.hotSparePool { create += " --hot-spare-pool \(hsp)" }
            if v.writeLog?.mode == "none" && v.type == "raid5" { create += " --write-log none" }
            if v.writeLog?.mode == "auto" && v.type == "raid6" { create += " --write-log auto" }
            var cmds = [create + " " + devs(Array(v.components[..<o]))]
            if o < v.components.count { cmds.append("grow \(v.name) " + devs(Array(v.components[o...]))) }
            // Review finding 25: -p recreates the rate limits too.
            if let r = v.resyncRate {
                cmds.append("set \(v.name) --resync-rate \(sizeArgument(r.minBytesPerSecond)):\(r.maxBytesPerSecond.map(sizeArgument) ?? "max")")
            }
            return cmds
        }
        let rows = v.rows ?? []
        guard let first = rows.first else { return [] }
        var cmds: [String] = []
        var rest = rows.dropFirst()
        if v.type == "concat" && first.components.count == 1 {
            var cs = first.components
            while let r = rest.first, r.components.count == 1 { cs += r.components; rest = rest.dropFirst() }
            cmds.append("create \(v.name) concat " + devs(cs))
        } else {
            cmds.append("create \(v.name) stripe -i \(sizeArgument(first.interlaceBytes)) " + devs(first.components))
        }
        for r in rest {
            cmds.append("grow \(v.name) " + (r.components.count > 1 ? "-i \(sizeArgument(r.interlaceBytes)) " : "")
                        + devs(r.components))
        }
        return cmds
    }

    /// A size as the commands take it: `64k`, `1m`, or `Nb` blocks.
    public static func sizeArgument(_ bytes: UInt64) -> String {
        if bytes > 0 && bytes % (1 << 20) == 0 { return "\(bytes >> 20)m" }
        if bytes > 0 && bytes % 1024 == 0 { return "\(bytes >> 10)k" }
        return "\(bytes / 512)b"
    }

    /// Quotes a word for a POSIX shell when it needs it.
    static func shellQuote(_ s: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:,=@%")
        if !s.isEmpty && s.allSatisfy({ safe.contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    // MARK: JSON

    /// The `--json` document: pretty, key-sorted, with every documented key present (`null`
    /// where a value is absent, as the schema promises, rather than the key left out).
    public static func json(_ r: StatusReport) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Output.compactEmpty(String(decoding: try enc.encode(ReportJSON(r)), as: UTF8.self)) + "\n"
    }
}

// Encoders that spell out every key of the schema, writing `null` for absent optionals
// (synthesised Codable leaves such keys out). The test compares their keys with the
// synthesised ones, so a field added to StatusReport cannot be silently dropped here.

private struct ReportJSON: Encodable {
    var r: StatusReport
    init(_ r: StatusReport) { self.r = r }
    enum K: String, CodingKey { case set, volumes, hotSparePools, quorum, readOnlyReason, live }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: K.self)
        try c.encode(r.set, forKey: .set)
        try c.encode(r.volumes.map(VolumeJSON.init), forKey: .volumes)
        try c.encode(r.hotSparePools, forKey: .hotSparePools)
        try c.encode(r.quorum, forKey: .quorum)
        try c.encode(r.readOnlyReason, forKey: .readOnlyReason)
        try c.encode(r.live, forKey: .live)
    }
}

private struct VolumeJSON: Encodable {
    var v: StatusReport.VolumeStatus
    init(_ v: StatusReport.VolumeStatus) { self.v = v }
    enum K: String, CodingKey {
        case name, type, state, sizeBytes, interlaceBytes, hotSparePool, resync, components, rows,
             originalColumns, invoke, openCount, lostBytes, lost, resyncRate, writeLog, check, mapped, softPartition,
             mirror, sideOf
    }
    enum RateK: String, CodingKey { case minBytesPerSecond, maxBytesPerSecond }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: K.self)
        try c.encode(v.name, forKey: .name)
        try c.encode(v.type, forKey: .type)
        try c.encode(v.state, forKey: .state)
        try c.encode(v.sizeBytes, forKey: .sizeBytes)
        try c.encode(v.interlaceBytes, forKey: .interlaceBytes)
        try c.encode(v.hotSparePool, forKey: .hotSparePool)
        try c.encode(v.resync.map(ResyncJSON.init), forKey: .resync)
        try c.encode(v.components.map(ComponentJSON.init), forKey: .components)
        try c.encode(v.rows.map { $0.map(RowJSON.init) }, forKey: .rows)
        try c.encode(v.originalColumns, forKey: .originalColumns)
        try c.encode(v.invoke, forKey: .invoke)
        try c.encode(v.openCount, forKey: .openCount)
        try c.encode(v.lostBytes, forKey: .lostBytes)
        try c.encode(v.lost.map { ["offsetBytes": $0.offsetBytes, "lengthBytes": $0.lengthBytes] }, forKey: .lost)
        if let r = v.resyncRate {
            var rc = c.nestedContainer(keyedBy: RateK.self, forKey: .resyncRate)
            try rc.encode(r.minBytesPerSecond, forKey: .minBytesPerSecond)
            try rc.encode(r.maxBytesPerSecond, forKey: .maxBytesPerSecond)
        } else {
            try c.encodeNil(forKey: .resyncRate)
        }
        try c.encode(v.writeLog, forKey: .writeLog)
        try c.encode(v.check.map(CheckJSON.init), forKey: .check)
        try c.encode(v.mapped, forKey: .mapped)
        try c.encode(v.softPartition, forKey: .softPartition)
        try c.encode(v.mirror, forKey: .mirror)
        try c.encode(v.sideOf, forKey: .sideOf)
    }
}

/// A check, with every key (null where absent).
struct CheckJSON: Encodable {
    var c: StatusReport.CheckStatus
    init(_ c: StatusReport.CheckStatus) { self.c = c }
    enum K: String, CodingKey {
        case running, repair, percent, bytesPerSecond, secondsLeft, startedAt, endedAt, result, failure,
             mismatches, mismatchLines, repaired, readErrorsRepaired, located
    }
    func encode(to encoder: any Encoder) throws {
        var k = encoder.container(keyedBy: K.self)
        try k.encode(c.running, forKey: .running)
        try k.encode(c.repair, forKey: .repair)
        try k.encode(c.percent, forKey: .percent)
        try k.encode(c.bytesPerSecond, forKey: .bytesPerSecond)
        try k.encode(c.secondsLeft, forKey: .secondsLeft)
        try k.encode(c.startedAt, forKey: .startedAt)
        try k.encode(c.endedAt, forKey: .endedAt)
        try k.encode(c.result, forKey: .result)
        try k.encode(c.failure, forKey: .failure)
        try k.encode(c.mismatches, forKey: .mismatches)
        try k.encode(c.mismatchLines, forKey: .mismatchLines)
        try k.encode(c.repaired, forKey: .repaired)
        try k.encode(c.readErrorsRepaired, forKey: .readErrorsRepaired)
        try k.encode(c.located, forKey: .located)
    }
}

private struct RowJSON: Encodable {
    var r: StatusReport.Row
    init(_ r: StatusReport.Row) { self.r = r }
    enum K: String, CodingKey { case interlaceBytes, sizeBytes, components }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: K.self)
        try c.encode(r.interlaceBytes, forKey: .interlaceBytes)
        try c.encode(r.sizeBytes, forKey: .sizeBytes)
        try c.encode(r.components.map(ComponentJSON.init), forKey: .components)
    }
}

private struct ResyncJSON: Encodable {
    var r: StatusReport.Resync
    init(_ r: StatusReport.Resync) { self.r = r }
    enum K: String, CodingKey { case kind, percent, bytesPerSecond, secondsLeft, source, target, moreTargets, regions }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: K.self)
        try c.encode(r.kind, forKey: .kind)
        try c.encode(r.percent, forKey: .percent)
        try c.encode(r.bytesPerSecond, forKey: .bytesPerSecond)
        try c.encode(r.secondsLeft, forKey: .secondsLeft)
        try c.encode(r.source, forKey: .source)
        try c.encode(r.target, forKey: .target)
        try c.encode(r.moreTargets, forKey: .moreTargets)
        try c.encode(r.regions, forKey: .regions)
    }
}

private struct ComponentJSON: Encodable {
    var x: StatusReport.Component
    init(_ x: StatusReport.Component) { self.x = x }
    enum K: String, CodingKey { case device, uuid, startBlock, hasReplica, state, hotSpare, present, sizeBytes, staleRegions }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: K.self)
        try c.encode(x.device, forKey: .device)
        try c.encode(x.uuid, forKey: .uuid)
        try c.encode(x.startBlock, forKey: .startBlock)
        try c.encode(x.hasReplica, forKey: .hasReplica)
        try c.encode(x.state, forKey: .state)
        try c.encode(x.hotSpare, forKey: .hotSpare)
        try c.encode(x.present, forKey: .present)
        try c.encode(x.sizeBytes, forKey: .sizeBytes)
        try c.encode(x.staleRegions, forKey: .staleRegions)
    }
}
