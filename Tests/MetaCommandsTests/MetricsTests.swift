import Foundation
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `serve --metrics`: Prometheus text over HTTP (scraped with curl) and as a node_exporter
/// textfile; I/O counters that match what a real client did; state gauges that follow a real
/// column failure.
@Suite("serve --metrics")
struct MetricsTests {
    /// The value of the sample whose line starts with `prefix` (name and labels), if any.
    static func sample(_ text: String, _ prefix: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(prefix + " ") }
            .flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    static func scrape(_ port: Int, path: String = "/metrics") throws -> CommandResult {
        try runCommand(["curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
    }

    static func metricsPort(_ server: ServeProcess) throws -> Int {
        guard let line = server.log.split(separator: "\n").first(where: { $0.contains("metrics on http://") }),
              let port = line.split(separator: ":").last.flatMap({ Int($0.prefix { $0.isNumber }) }) else {
            throw TestSupportError("no metrics line in the log:\n\(server.log)")
        }
        return port
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["curl", "nbdcopy"])), .timeLimit(.minutes(3)))
    func httpCountersMatchAClientAndErrorsAreOneLine() throws {
        let f = try ServeFixture(prefix: "metactl-metrics")
        defer { f.cleanup() }
        try f.create("d10", "raid5", try f.images("r", count: 3, size: 32 << 20), extra: ["--no-init"])
        let server = try f.startServer(["--metrics", "127.0.0.1:0"])
        let port = try Self.metricsPort(server)
        let src = f.dir.file("data")
        try writeRandomFile(src, size: 1 << 20)
        try MetaTestSupport.mustRun(["nbdcopy", "--flush", src, f.uri("d10")])
        try MetaTestSupport.mustRun(["nbdcopy", f.uri("d10"), f.dir.file("back")])

        let r = try Self.scrape(port)
        #expect(r.ok && r.stdout.hasSuffix("\n200"), "\(r.stderr)")
        let text = r.stdout
        let l = "{set=\"local\",volume=\"d10\""
        #expect(Self.sample(text, "metactl_bytes_total\(l),op=\"write\"}") == Double(1 << 20))
        let size = try #require(Self.sample(text, "metactl_volume_size_bytes\(l)}"))
        // nbdcopy read the whole volume.
        #expect(Self.sample(text, "metactl_bytes_total\(l),op=\"read\"}") == size)
        #expect((Self.sample(text, "metactl_requests_total\(l),op=\"flush\"}") ?? 0) >= 1)
        #expect(Self.sample(text, "metactl_request_errors_total\(l),op=\"write\"}") == 0)
        let writes = try #require(Self.sample(text, "metactl_requests_total\(l),op=\"write\"}"))
        #expect(Self.sample(text, "metactl_request_duration_seconds_count\(l),op=\"write\"}") == writes)
        #expect(Self.sample(text, "metactl_request_duration_seconds_bucket\(l),op=\"write\",le=\"+Inf\"}") == writes)
        #expect(Self.sample(text, "metactl_volume_state\(l),state=\"Okay\"}") == 1)
        #expect(Self.sample(text, "metactl_volume_state\(l),state=\"Needs Maintenance\"}") == 0)
        #expect(Self.sample(text, "metactl_component_state\(l),component=\"column 0\",device=\"\(f.dir.file("r0.img"))\",state=\"Okay\"}") == 1)
        #expect(Self.sample(text, "metactl_quorum{set=\"local\"}") == 1)
        #expect(Self.sample(text, "metactl_replicas{set=\"local\"}") == 3)
        #expect(text.contains("# TYPE metactl_request_duration_seconds histogram"))
        #expect(text.contains("# HELP metactl_volume_state "))

        let missing = try Self.scrape(port, path: "/")
        #expect(missing.stdout.hasSuffix("\n404"))

        // Bad targets: one line each, before anything starts.
        for (arg, message) in [("9100", "--metrics 9100: expected HOST:PORT or the path of a .prom file"),
                               ("/tmp/x.txt", "--metrics /tmp/x.txt: a metrics file must end in .prom (node_exporter's textfile collector reads only those)")] {
            let bad = try f.run(["serve", "--metrics", arg])
            #expect(bad.status == 65 && bad.stderr == "metactl: \(message)\n", "\(bad.stderr)")
        }
        #expect(server.stop() == 0)
    }

    @Test(.enabled(if: ResyncE2ETests.enabled), .timeLimit(.minutes(3)))
    func textfileFollowsAColumnFailure() throws {
        let (rig, _, fds) = try ResyncE2ETests.rig()
        defer { rig.cleanup() }
        let f = rig.f
        let prom = f.dir.file("metactl.prom")
        let server = try f.startServer(["--metrics", prom])
        let first = try String(contentsOfFile: prom, encoding: .utf8)
        let l = "{set=\"local\",volume=\"d10\""
        #expect(Self.sample(first, "metactl_volume_state\(l),state=\"Okay\"}") == 1)

        fds[0].fail()
        _ = try rig.readDigest()
        try rig.waitFor("the column to fail", log: server) { ResyncRig.state(try rig.volume(), fds[0].path) == "Maintenance" }
        // The file is rewritten every 10 s.
        var text = ""
        try rig.waitFor("the metrics file to show it", limit: 60) {
            text = (try? String(contentsOfFile: prom, encoding: .utf8)) ?? ""
            return Self.sample(text, "metactl_volume_state\(l),state=\"Needs Maintenance\"}") == 1
        }
        #expect(Self.sample(text, "metactl_component_state\(l),component=\"column 3\",device=\"\(fds[0].path)\",state=\"Maintenance\"}") == 1)
        // The client saw no error: the reads were answered from parity.
        #expect(Self.sample(text, "metactl_request_errors_total\(l),op=\"read\"}") == 0)
        #expect((Self.sample(text, "metactl_bytes_total\(l),op=\"read\"}") ?? 0) > 0)
        #expect(server.stop() == 0)
        // A stopped server leaves no stale file behind.
        #expect(!FileManager.default.fileExists(atPath: prom))
    }
}
