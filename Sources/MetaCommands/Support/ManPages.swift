import Foundation
import MetaDevices

/// Writes the man pages (mdoc, section 8) from `metactl --experimental-dump-help`: the same
/// source as `--help`, so they never disagree. Unlike swift-argument-parser's generate-manual,
/// it keeps non-ASCII characters (`1–16` stays `1–16`, UTF-8, which man-db and mandoc render),
/// separates paragraphs with `.Pp` (no empty input lines), and adds what a man page has and
/// `--help` does not: for `metactl(8)` GLOBAL OPTIONS, ENVIRONMENT, FILES, EXIT STATUS and
/// EXAMPLES; for every command an EXAMPLES section (``examples``) and SEE ALSO.
public enum ManPages {
    /// One command of the dump (the parts the pages use).
    public struct Command: Decodable {
        public var commandName: String
        public var abstract: String?
        public var discussion: String?
        public var shouldDisplay: Bool?
        public var arguments: [Argument]?
        public var subcommands: [Command]?
    }
    public struct Argument: Decodable {
        public struct Name: Decodable { public var kind: String; public var name: String }
        public var kind: String
        public var names: [Name]?
        public var valueName: String?
        public var defaultValue: String?
        public var isOptional: Bool?
        public var isRepeating: Bool?
        public var abstract: String?
        public var shouldDisplay: Bool?
    }
    struct Dump: Decodable { var command: Command }

    /// The page date (pinned so the output is deterministic).
    public static let date = "January 1, 2025"

    /// Examples per command path (`"create"`, `"db delete"`; `""` is metactl itself):
    /// a comment and the command, as in mdadm(8).
    public static let examples: [String: [(String, String)]] = [
        "": [
            ("Give a new host a state database on three disks, then a RAID-5 volume with a hot spare:",
             "metactl db create /dev/sdb1 /dev/sdc1 /dev/sdd1\nmetactl hs create hsp001 /dev/sdh\nmetactl create d10 raid5 --hot-spare-pool hsp001 /dev/sde /dev/sdf /dev/sdg"),
            ("Serve the set's volumes over NBD (foreground; see metactl.serve(8) for systemd), and attach one with the kernel client:",
             "metactl serve &\nnbd-client -unix /run/metactl/local.nbd -N d10 /dev/nbd0"),
            ("Look at the state, as metastat does; the md.tab lines that recreate it:",
             "metactl status\nmetactl status -p"),
            ("Replace a failed column and follow the rebuild; re-enable a column after a transient fault:",
             "metactl replace d10 /dev/sdf /dev/sdj --wait\nmetactl replace d10 --enable /dev/sdf"),
            ("Work on another set; global options go before or after the subcommand:",
             "metactl -s data status -c\nmetactl status -c -s data"),
            ("A whole set on image files, without root (private directories):",
             "truncate -s 1G a.img b.img c.img\nmetactl --config-dir ~/.metactl --run-dir ~/.metactl/run create d0 raid5 a.img b.img c.img"),
            ("Use the exit status in a script:",
             "metactl status d10 >/dev/null 2>&1; [ $? -eq 2 ] && echo \"d10 does not exist\""),
        ],
        "db": [("Create, check and extend the state database:",
                "metactl db create /dev/sdb1 /dev/sdc1 /dev/sdd1\nmetactl db status\nmetactl db add /dev/sde1")],
        "hs": [("A pool, a spare more, and the pool on a volume:",
                "metactl hs create hsp001 /dev/sdh\nmetactl hs add hsp001 /dev/sdi\nmetactl set d10 --hot-spare-pool hsp001")],
        "devices": [("List the block devices with their signatures and use:", "metactl devices"),
                    ("Every device, as JSON:", "metactl devices --all --json")],
        "db create": [("Three replicas on three disks (at least 3 are recommended):", "metactl db create /dev/sdb1 /dev/sdc1 /dev/sdd1"),
                      ("Two replicas on each of two image files:", "metactl db create --copies 2 a.img b.img")],
        "db add": [("Add a replica on another disk:", "metactl db add /dev/sde1")],
        "db delete": [("Remove the replicas of a disk that is going away:", "metactl db delete /dev/sdc1"),
                      ("Quorum lost: drop the dead replicas so the set is writable again:", "metactl -s local db delete --force /dev/sdc1 /dev/sdd1"),
                      ("Delete a set whose volumes and pools are gone (its last replicas):", "metactl db delete --force /dev/sdb1 /dev/sde1")],
        "db status": [("The replicas and the quorum verdict (metadb -i):", "metactl db status"),
                      ("Why a replica is unreadable:", "metactl db status -v")],
        "create": [("A concatenation and a stripe with a 64 KiB interlace:",
                    "metactl create d0 concat /dev/sdb /dev/sdc\nmetactl create d1 stripe -i 64k /dev/sdd /dev/sde"),
                   ("A RAID-5 volume with a hot spare pool (SVM: metainit d10 -r … -h hsp001):",
                    "metactl create d10 raid5 --hot-spare-pool hsp001 /dev/sdf /dev/sdg /dev/sdh"),
                   ("Zeroed new disks: skip the parity initialisation:", "metactl create d10 raid5 --no-init /dev/sdf /dev/sdg /dev/sdh"),
                   ("A RAID-6 volume of five disks (three disks of data; any two may fail):",
                    "metactl create d20 raid6 /dev/sdi /dev/sdj /dev/sdk /dev/sdl /dev/sdm"),
                   ("Soft partitions of a RAID-5 volume (SVM: metainit d1 -p d10 1g), one with explicit extents as status -p prints them:",
                    "metactl create d1 softpart d10 1g\nmetactl create d2 softpart d10 -o 2098176b -b 1048576b"),
                   ("A mirror of two stripes (SVM: metainit d0 -m d10, metattach d0 d11):",
                    "metactl create d10 stripe /dev/sdb /dev/sdc\nmetactl create d11 stripe /dev/sdd /dev/sde\nmetactl create d0 mirror d10 d11"),
                   ("A mirror of two disks, as mdadm --level=1 makes one (sides d0-s0 and d0-s1):",
                    "metactl create d0 mirror /dev/sdb /dev/sdc"),
                   ("A mirror whose sides take hot spares for failed components (SVM: metainit d10 … -h hsp001):",
                    "metactl hs create hsp001 /dev/sdf\nmetactl create d0 mirror d10 d11 --hot-spare-pool hsp001"),
                   ("Soft partitions directly on a disk (carved from a one-device concat named sdg, made first):",
                    "metactl create d5 softpart /dev/sdg 10g\nmetactl create d6 softpart /dev/sdg 10g")],
        "clear": [("Delete a volume (refused while clients have it open):", "metactl clear d10"),
                  ("Delete it anyway, disconnecting its clients:", "metactl clear -f d10")],
        "grow": [("One more data column for a RAID-5 volume, online:", "metactl grow d10 /dev/sdi --wait"),
                 ("A new striped row for a stripe:", "metactl grow d1 -i 64k /dev/sdj /dev/sdk"),
                 ("Give up an interrupted grow:", "metactl grow d10 --cancel"),
                 ("Half a gigabyte more for a soft partition:", "metactl grow d1 512m"),
                 ("A mirror grows with its sides: grow each; the mirror takes the new space, resynced, once both have it:",
                  "metactl grow d10 /dev/sdl\nmetactl grow d11 /dev/sdm")],
        "recover": [("List the soft partitions the watermarks in d10 describe, then add them to the configuration:",
                     "metactl recover d10 -n\nmetactl recover d10"),
                    ("After the state database was lost: recreate the parent without writing data, then recover:",
                     "metactl create d10 raid5 --no-init /dev/sdf /dev/sdg /dev/sdh\nmetactl recover d10")],
        "status": [("The report (metastat), one line per volume, md.tab lines:",
                    "metactl status\nmetactl status -c\nmetactl status -p"),
                   ("One volume, as JSON:", "metactl status --json d10")],
        "replace": [("Copy a failing column to a new disk, keeping redundancy, and wait:", "metactl replace d10 /dev/sdf /dev/sdj --wait"),
                    ("A column back after a transient fault (regenerated in place):", "metactl replace d10 --enable /dev/sdf"),
                    ("Last Erred: trust the Last Erred column, then replace the failed one (what status's Invoke line says):",
                     "metactl replace d10 --enable /dev/sdg --force\nmetactl replace d10 /dev/sdf /dev/sdj")],
        "hs create": [("A pool with one spare, used by d10:", "metactl hs create hsp001 /dev/sdh\nmetactl set d10 --hot-spare-pool hsp001")],
        "hs add": [("Another spare:", "metactl hs add hsp001 /dev/sdi")],
        "hs delete": [("Remove one spare; delete the whole (unused) pool:", "metactl hs delete hsp001 /dev/sdi\nmetactl hs delete hsp001")],
        "hs enable": [("A spare marked Broken is usable again (after fixing it):", "metactl hs enable /dev/sdh")],
        "set": [("Attach a hot spare pool; limit the resync rate:",
                 "metactl set d10 --hot-spare-pool hsp001\nmetactl set d10 --resync-rate 10m:200m"),
                ("A mirror's reads from each side's share of the volume, writes one side after the other:",
                 "metactl set d0 --read-policy geometric --write-policy serial")],
        "attach": [("Add a third side to mirror d0; it resyncs while the mirror is in use:", "metactl attach d0 d12\nmetactl status d0")],
        "detach": [("Remove a side (it keeps the mirror's data as of now); a failed one needs -f:",
                    "metactl detach d0 d12\nmetactl detach -f d0 d11")],
        "offline": [("Take a side out for a backup or a disk check; writes meanwhile are recorded:",
                     "metactl offline d0 d11")],
        "online": [("Bring it back: only the regions written while it was offline are copied:",
                    "metactl online d0 d11\nmetactl status d0")],
        "serve": [("Serve every volume of the set on its Unix socket:", "metactl serve"),
                  ("Also on TCP, plain (loopback only):", "metactl serve --listen 127.0.0.1:10809"),
                  ("On every address, TLS with pre-shared keys required (make keys with psktool -u alice -p keys.psk):",
                   "metactl serve --listen 0.0.0.0:10809 --tls-psk /etc/metactl/keys.psk\nnbdinfo 'nbds://alice@HOST:10809/d10?tls-psk-file=keys.psk'"),
                  ("TLS with x509 certificates (the directory holds ca-cert.pem, server-cert.pem, server-key.pem); only clients with a certificate from that CA:",
                   "metactl serve --listen 0.0.0.0:10809 --tls-certificates /etc/metactl/pki --tls-verify-peer"),
                  ("Image files through the page cache:", "metactl serve --cache writeback")],
        "check": [("Check a RAID-5 volume's parity and follow it; repair what does not match:",
                   "metactl check d10 --wait\nmetactl check d10 --repair --wait"),
                  ("Stop a running check; see the last check's result:", "metactl check d10 --stop\nmetactl status d10"),
                  ("A monthly check of every RAID-5 volume of the set (contrib/metactl-check@.timer does this):",
                   "for v in $(metactl status --json | jq -r '.volumes[] | select(.type==\"raid5\" or .type==\"raid6\") | .name'); do metactl check \"$v\" --wait; done")],
        "monitor": [("Follow the events of set local as they happen:", "metactl monitor"),
                    ("Mail failures (the event is in the environment; docs/MONITOR.md):",
                     "metactl monitor --program 'case $METACTL_EVENT in component-failed|spare-broken) echo \"$METACTL_MESSAGE\" | mail -s metactl root;; esac'"),
                    ("The last events (up to 64) as JSON lines, then the new ones as they happen:", "metactl monitor --json --replay 64"),
                    ("Wait for the next event, print it and exit:", "metactl monitor --count 1")],
        "map": [("Map a served volume, put ext4 on it and mount it (the device is printed):",
                 "dev=$(metactl map d10)\nmkfs.ext4 \"$dev\" && mount \"$dev\" /mnt"),
                ("Read-only, on a loop device of your choice:", "metactl map --read-only d10 /dev/loop7")],
        "unmap": [("Unmount, then unmap by name or by device:", "umount /mnt\nmetactl unmap d10"),
                  ("Tear it down even though it is mounted (the file system sees I/O errors):",
                   "metactl unmap --force /dev/loop0")],
        "import": [("Find a set after device names changed, or on a new host:", "metactl import"),
                   ("Image files are not scanned: name them:", "metactl import --no-scan a.img b.img c.img")],
    ]

    /// Renders every page: file name → content.
    public static func render(dumpHelp: Data) throws -> [String: String] {
        let root = try JSONDecoder().decode(Dump.self, from: dumpHelp).command
        var pages: [String: String] = [:]
        func walk(_ c: Command, path: [String]) {
            pages[(path + [c.commandName]).joined(separator: ".") + ".8"] = page(c, path: path, root: root)
            for s in c.subcommands ?? [] where s.shouldDisplay != false && s.commandName != "help" {
                walk(s, path: path + [c.commandName])
            }
        }
        walk(root, path: [])
        return pages
    }

    /// Escapes text for mdoc: a leading `.` or `'` is protected, backslashes are `\e`, and
    /// non-ASCII characters become `\[uXXXX]`, which groff and mandoc render as the
    /// character whatever the input encoding they assume (`1–16` stays `1–16`).
    static func text(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            if u == "\\" { out += "\\e" } else if u.isASCII { out.unicodeScalars.append(u) } else {
                out += "\\[u" + String(format: "%04X", u.value) + "]"
            }
        }
        if out.hasPrefix(".") || out.hasPrefix("'") { out = "\\&" + out }
        return out
    }

    /// Paragraphs of a help text as mdoc lines, `.Pp` between paragraphs.
    static func paragraphs(_ s: String) -> [String] {
        s.components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
            .map { p in p.split(separator: "\n").map { text(String($0)) }.joined(separator: "\n") }
            .enumerated().flatMap { $0.offset == 0 ? [$0.element] : [".Pp", $0.element] }
    }

    static func flag(_ a: Argument) -> String {
        let names = (a.names ?? []).map { $0.kind == "short" ? "Fl \($0.name)" : "Fl -\($0.name)" }
        var s = names.joined(separator: " , ")
        if a.kind == "option", let v = a.valueName { s += " Ar \(v)" }
        return s
    }

    static func synopsisItem(_ a: Argument) -> String {
        if a.kind == "positional" {
            let v = (a.valueName ?? "arg") + (a.isRepeating == true ? " ..." : "")
            return a.isOptional == true ? ".Op Ar \(v)" : ".Ar \(v)"
        }
        let n = a.names?.first { $0.kind == "long" } ?? a.names?.first
        var s = n.map { $0.kind == "short" ? "Fl \($0.name)" : "Fl -\($0.name)" } ?? ""
        if a.kind == "option", let v = a.valueName { s += " Ar \(v)" }
        return a.isOptional == false ? ".\(s)" : ".Op \(s)"
    }

    static func page(_ c: Command, path: [String], root: Command) -> String {
        let full = (path + [c.commandName]).joined(separator: " ")
        let key = Array((path + [c.commandName]).dropFirst()).joined(separator: " ")
        let isRoot = path.isEmpty
        var l: [String] = [
            ".\\\" Generated by scripts/gen-docs (metactl-man) from metactl --experimental-dump-help; do not edit.",
            ".Dd \(date)", ".Dt \(full.uppercased().replacingOccurrences(of: " ", with: ".")) 8", ".Os metactl \(Metactl.version)",
            ".Sh NAME", ".Nm \"\(full)\"", ".Nd \"\(text(c.abstract ?? ""))\"",
            ".Sh SYNOPSIS",
        ]
        let args = (c.arguments ?? []).filter { $0.shouldDisplay != false }
        let subs = (c.subcommands ?? []).filter { $0.shouldDisplay != false && $0.commandName != "help" }
        if isRoot {
            l += [".Nm", ".Op Ar global-options", ".Ar command", ".Op Ar arguments ..."]
        } else if !subs.isEmpty {
            l += [".Nm", ".Ar command"]
        } else {
            l.append(".Nm")
            l += args.map(synopsisItem)
        }
        l.append(".Sh DESCRIPTION")
        var body = c.abstract ?? ""
        if let d = c.discussion, !d.isEmpty { body += "\n\n" + d }
        if isRoot { body += "\n\n" + rootDescription }
        l += paragraphs(body)
        if !subs.isEmpty {
            l += [".Pp", "Commands:", ".Bl -tag -width 6n"]
            for s in subs {
                l += [".It Xr \(full.replacingOccurrences(of: " ", with: ".")).\(s.commandName) 8", text(s.abstract ?? "")]
            }
            l.append(".El")
        }
        let options = args.filter { a in !(a.names ?? []).contains { ["help", "version"].contains($0.name) } }
        if !options.isEmpty && subs.isEmpty {
            l += [".Sh OPTIONS", ".Bl -tag -width 6n"]
            for a in options {
                l.append(a.kind == "positional" ? ".It Ar \(a.valueName ?? "arg")\(a.isRepeating == true ? " ..." : "")" : ".It \(flag(a))")
                var help = a.abstract ?? ""
                if let d = a.defaultValue, !d.isEmpty, a.kind == "option" { help += " (default: \(d))" }
                l.append(text(help))
            }
            l.append(".El")
        }
        if isRoot { l += rootSections }
        if let ex = examples[key], !ex.isEmpty {
            l.append(".Sh EXAMPLES")
            for (i, (comment, command)) in ex.enumerated() {
                if i > 0 { l.append(".Pp") }
                l += [text(comment), ".Bd -literal -offset indent"]
                l += command.split(separator: "\n").map { text(String($0)) }
                l.append(".Ed")
            }
        }
        if !isRoot {
            l += [".Sh EXIT STATUS", "0 on success; otherwise the status of the error's kind, listed in", ".Xr metactl 8 ."]
        }
        l.append(".Sh SEE ALSO")
        let parent = path.joined(separator: ".")
        let refs = (isRoot ? subs.map { "metactl.\($0.commandName)" } : [parent])
        l.append(refs.enumerated().map { ".Xr \($0.element) 8\($0.offset < refs.count - 1 ? " ," : "")" }.joined(separator: "\n"))
        return l.joined(separator: "\n") + "\n"
    }

    /// Text of metactl(8) after the abstract.
    static let rootDescription = """
    metactl manages named volumes ("metadevices") built from block devices or image files, in the line of Solaris Volume Manager: concatenations, stripes and RAID-5 with hot spares, a replicated state database with a majority quorum, and resyncs that rebuild a column while the volume stays in use. The volumes reach the system over NBD: metactl serve runs the I/O engine and exports each volume under its name.

    While metactl serve runs for a set, every other command goes through its control socket and acts on the live volumes; without a server, commands work on the devices directly, under the set's lock. Both run the same code, and an error has the same message and exit status either way.

    Errors are one line on standard error, metactl: followed by the thing at fault and the cause. With --json, a failing command also prints {"error": {"code", "message", "exitStatus"}} on standard output; code is one of the names in EXIT STATUS.

    Differences from SVM: -h is help in every command (create takes the hot spare pool as --hot-spare-pool); sizes take k, m, g, t and b (512-byte blocks).
    """

    /// GLOBAL OPTIONS, ENVIRONMENT, FILES, EXIT STATUS of metactl(8).
    static var rootSections: [String] {
        var l: [String] = [".Sh GLOBAL OPTIONS",
                           "Every command takes these, before or after the command name (metactl -s data status and metactl status -s data are the same).",
                           ".Bl -tag -width 6n"]
        let globals: [(String, String)] = [
            ("Fl s , -set Ar name", "The set to act on (default local)."),
            ("Fl -config-dir Ar dir", "Where this host records the sets it knows and where their devices are (sets.json); default /etc/metactl, or METACTL_CONFIG_DIR."),
            ("Fl -run-dir Ar dir", "Sockets, PID and lock files; default /run/metactl, or METACTL_RUN_DIR."),
            ("Fl q , -quiet", "Print less (no progress, no confirmations)."),
            ("Fl v , -verbose", "Print more (log lines, details of unreadable replicas)."),
            ("Fl -json", "On the commands that print state: one JSON document, schema in the command's page."),
            ("Fl h , -help", "Help of metactl or of the command."),
            ("Fl -version", "The version."),
        ]
        for (f, h) in globals { l += [".It \(f)", text(h)] }
        l += [".El",
              ".Sh ENVIRONMENT", ".Bl -tag -width 6n",
              ".It Ev METACTL_CONFIG_DIR", "Default of --config-dir.",
              ".It Ev METACTL_RUN_DIR", "Default of --run-dir.",
              ".It Ev METACTL_LOCK_TIMEOUT",
              "Seconds a command waits for another process holding the set's lock (default 30). A value that is not a number of seconds from 0 to 31536000 is ignored with a warning.",
              ".El",
              ".Sh FILES", ".Bl -tag -width 6n",
              ".It Pa /etc/metactl/sets.json", "The sets this host knows, with the paths of their devices (SVM: mddb.cf). metactl import rebuilds it; a malformed one is kept as sets.json.bad.",
              ".It Pa /run/metactl/SET.nbd", "The NBD socket of metactl serve.",
              ".It Pa /run/metactl/SET.ctl", "The control socket of metactl serve (mode 0600).",
              ".It Pa /run/metactl/SET.pid", "The PID of metactl serve.",
              ".It Pa /run/metactl/SET.lock", "The lock of the set, held by a server or a command changing the set.",
              ".It Pa /run/metactl/SET.maps.json", "The volumes metactl map mapped to block devices: device, path taken, helper PIDs (metactl unmap tears down exactly these).",
              ".It Pa /run/metactl/SET.map/", "A FUSE mount point per mapped volume, with the helpers' log and PID files.",
              ".El",
              ".Sh EXIT STATUS", ".Bl -tag -width 6n", ".It 0", "Success."]
        for c in ErrorCode.allCases.sorted(by: { $0.exitStatus < $1.exitStatus }) {
            l += [".It \(c.exitStatus)", text("\(c.rawValue): \(c.meaning).")]
        }
        l += [".It 130", "Interrupted (Ctrl-C) while waiting; the message says what happens to the work.", ".El"]
        return l
    }
}
