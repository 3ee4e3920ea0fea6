import Foundation
import Testing
import MetaTestSupport

/// Fails when the committed man pages (man/) or shell completions (completions/) no longer
/// match what the current command line generates. Fix: run `scripts/gen-docs`.
///
/// How it finds its tools: the test process is the package's test bundle, built into the
/// same directory as the `metactl` executable (`swift build --build-tests` and `swift test`
/// build every product), so `metactl` is looked up next to `/proc/self/exe`. The man pages are
/// regenerated with swift-argument-parser's `generate-manual` tool when it has been built into
/// that directory too (`swift build --product generate-manual`; scripts/gen-docs and
/// scripts/test do it) and compared file by file. Without it, the test compares
/// `metactl --experimental-dump-help` (the exact input generate-manual renders, with pinned
/// arguments and date) with the snapshot `man/.dump-help.json` that scripts/gen-docs writes
/// alongside the pages: any change to commands, options or help text changes it.
@Suite("Generated docs are current")
struct GeneratedDocsTests {
    /// Keep in sync with scripts/gen-docs.
    static let manArguments = ["--multi-page", "--section", "8", "--date", "2025-01-01"]
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

    @Test(.enabled(if: GeneratedDocsTests.tool("generate-manual") != nil,
                   "generate-manual not built (swift build --product generate-manual); the dump-help snapshot test covers staleness"))
    func manPagesAreCurrent() throws {
        let gen = try #require(Self.tool("generate-manual"))
        let dir = try TempDir()
        try mustRun([gen, try Self.metactl()] + Self.manArguments + ["--output-directory", dir.path],
                    environment: Self.environment)
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
}
