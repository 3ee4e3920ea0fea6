import Foundation
import Testing
import MetaTestSupport

/// Fails when the committed man pages (man/) or shell completions (completions/) no longer
/// match what the current command line generates. Fix: run `scripts/gen-docs`.
///
/// How it finds its tools: the test process is the package's test bundle, built into the
/// same directory as the `metactl` and `metactl-man` executables (`swift build --build-tests`
/// and `swift test` build every product), so they are looked up next to `/proc/self/exe`.
/// The man pages are regenerated with `metactl-man` and compared file by file; the
/// `man/.dump-help.json` snapshot (the generator's input) is compared too.
@Suite("Generated docs are current")
struct GeneratedDocsTests {
    /// Keep in sync with scripts/gen-docs.
    static let shells = ["bash", "zsh", "fish"]
    static let environment = ["LC_ALL": "C", "LANG": "C", "TZ": "UTC"]

    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// The directory holding the test bundle and the package's executables.
    static var binDir: String? {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            return nil
        }
        return URL(fileURLWithPath: exe).deletingLastPathComponent().path
    }

    static func tool(_ name: String) -> String? {
        guard let dir = binDir else { return nil }
        let p = "\(dir)/\(name)"
        return FileManager.default.isExecutableFile(atPath: p) ? p : nil
    }

    static func metactl() throws -> String {
        guard let p = tool("metactl") else {
            throw TestSupportError("metactl is not built next to the test bundle (\(binDir ?? "?")): run `swift build` first")
        }
        return p
    }

    static func committed(_ relative: String) throws -> String {
        try String(contentsOfFile: "\(packageRoot)/\(relative)", encoding: .utf8)
    }

    @Test func completionScriptsAreCurrent() throws {
        let bin = try Self.metactl()
        for shell in Self.shells {
            let fresh = try mustRun([bin, "--generate-completion-script", shell], environment: Self.environment)
            let file = "completions/metactl.\(shell)"
            #expect(fresh == (try? Self.committed(file)), "\(file) is stale: run scripts/gen-docs")
        }
    }

    @Test func dumpHelpSnapshotIsCurrent() throws {
        let fresh = try mustRun([try Self.metactl(), "--experimental-dump-help"], environment: Self.environment)
        #expect(fresh == (try? Self.committed("man/.dump-help.json")), "man/ is stale: run scripts/gen-docs")
    }

    @Test func manPagesAreCurrent() throws {
        let gen = try #require(Self.tool("metactl-man"), "metactl-man is not built next to the test bundle")
        let dir = try TempDir()
        try mustRun([gen, try Self.metactl(), dir.path], environment: Self.environment)
        let fm = FileManager.default
        let fresh = try fm.contentsOfDirectory(atPath: dir.path).sorted()
        let committed = try fm.contentsOfDirectory(atPath: "\(Self.packageRoot)/man").filter { !$0.hasPrefix(".") }.sorted()
        #expect(fresh == committed, "man/ has a different set of pages: run scripts/gen-docs")
        for page in fresh {
            let text = try String(contentsOfFile: dir.file(page), encoding: .utf8)
            #expect(text == (try? Self.committed("man/\(page)")), "man/\(page) is stale: run scripts/gen-docs")
        }
        #expect(fresh.contains("metactl.8"))
    }

    /// Review finding 16: non-ASCII characters survive (`1–16` was rendered `116`), and no
    /// page has an empty input line (mandoc warned about each).
    @Test func manPagesKeepTheirCharacters() throws {
        let create = try Self.committed("man/metactl.db.create.8")
        #expect(create.contains("(1\\[u2013]16)"), "\(create)")
        let hs = try Self.committed("man/metactl.hs.create.8")
        #expect(hs.contains("hsp000 \\[u2026] hsp999"), "\(hs)")
        // Rendered, the characters are there.
        if Privileged.has("groff") {
            let r = try runCommand(["groff", "-mandoc", "-ww", "-Tutf8", "\(Self.packageRoot)/man/metactl.db.create.8"])
            #expect(r.stdout.contains("(1–16)"), "\(r.stdout)")
            #expect(r.stderr.isEmpty, "\(r.stderr)")
        }
        for page in try FileManager.default.contentsOfDirectory(atPath: "\(Self.packageRoot)/man") where page.hasSuffix(".8") {
            let text = try Self.committed("man/\(page)")
            #expect(!text.contains("\n\n"), "\(page) has an empty input line")
            #expect(text.contains(".Sh EXAMPLES"), "\(page) has no EXAMPLES section")
        }
        // metactl(8): the sections of a real top page, and every exit status.
        let top = try Self.committed("man/metactl.8")
        for section in ["GLOBAL OPTIONS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES"] {
            #expect(top.contains(".Sh \(section)"), "metactl.8 lacks \(section)")
        }
        for code in ["notFound", "inUse", "noQuorum", "deviceFailed", "usage", "METACTL_LOCK_TIMEOUT"] {
            #expect(top.contains(code), "metactl.8 does not mention \(code)")
        }
    }

    /// Review finding 30: bash completion offers device paths, layouts, and the set's volume
    /// and pool names (from `metactl status -c`), driving `_metactl` as bash does.
    @Test(.enabled(if: Privileged.has("bash")))
    func bashCompletesDevicesLayoutsAndNames() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CreateClearTests.CLI(dir)
        let imgs = try CreateClearTests.images(dir, ["a", "b", "c", "s"])
        try cli.must(["create", "d10", "raid5", "--no-init", imgs[0], imgs[1], imgs[2]])
        try cli.must(["hs", "create", "hsp001", imgs[3]])
        func complete(_ words: [String]) throws -> [String] {
            let line = words.joined(separator: " ")
            let script = """
            source "\(Self.packageRoot)/completions/metactl.bash"
            COMP_WORDS=(\(words.map { "'\($0)'" }.joined(separator: " ")))
            COMP_CWORD=\(words.count - 1); COMP_LINE='\(line)'; COMP_POINT=${#COMP_LINE}
            _metactl metactl '\(words.last ?? "")' '\(words.dropLast().last ?? "")'
            printf '%s\\n' "${COMPREPLY[@]}"
            """
            let path = "\(URL(fileURLWithPath: try Self.metactl()).deletingLastPathComponent().path):\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"
            let out = try mustRun(["bash", "-c", script], environment: cli.environment.merging(["PATH": path]) { $1 })
            return out.split(separator: "\n").map(String.init)
        }
        #expect(try complete(["metactl", "create", "d11", "raid5", dir.file("")]).contains(imgs[0]))
        #expect(try complete(["metactl", "create", "d11", "r"]) == ["raid5", "raid6"])
        #expect(try complete(["metactl", "create", "d11", "raid6"]) == ["raid6"])
        #expect(try complete(["metactl", "replace", "d"]) == ["d10"])
        #expect(try complete(["metactl", "hs", "add", "h"]) == ["hsp001"])
        #expect(Set(try complete(["metactl", "status", ""])) == ["d10", "hsp001"])
    }
}
