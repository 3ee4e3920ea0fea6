import Foundation
import MetaTestSupport
import Testing

/// Replica changes while the set is served go through the control socket.
@Suite("db add/delete through a running server")
struct ControlPathDBTests {
    func replicaCount(_ f: ServeFixture) throws -> Int {
        let out = try f.mustRun(["db", "status", "--json"])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        return (doc["replicas"] as? [Any])?.count ?? -1
    }

    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo"])))
    func addAndDeleteWhileServed() throws {
        let f = try ServeFixture(prefix: "metactl-ctl-db")
        defer { f.cleanup() }
        try f.create("d10", "raid5", try f.images("c", count: 3, size: 32 << 20), extra: ["--no-init"])
        try f.startServer()
        #expect(try replicaCount(f) == 3)
        let extra = try f.images("r", count: 1, size: 16 << 20)
        _ = try f.mustRun(["db", "add", "--copies", "2", extra[0]])
        #expect(try replicaCount(f) == 5)
        _ = try f.mustRun(["db", "delete", extra[0]])
        #expect(try replicaCount(f) == 3)
        // Below the safe count needs --force, and the refusal is one line.
        let r = try f.run(["db", "delete", f.dir.file("c0.img")])
        #expect(!r.ok)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(try replicaCount(f) == 3)
    }
}
