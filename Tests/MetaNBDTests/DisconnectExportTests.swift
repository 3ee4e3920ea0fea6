import Foundation
import MetaNBD
import MetaTestSupport
import Testing

/// `NBDServer.disconnect(exportNamed:)`: what `clear -f` uses to end the connections of a
/// volume that no longer exists.
@Suite struct DisconnectExportTests {
    @Test func closesOnlyThatExportsConnections() async throws {
        let dir = try TempDir(prefix: "nbd-disconnect")
        let a = try FileExport(name: "d10", path: try dir.image("a.img", size: 1 << 20))
        let b = try FileExport(name: "d20", path: try dir.image("b.img", size: 1 << 20))
        try await withNBDServer(exports: [a, b], dir: dir) { s in
            let ca = try RawNBDClient(socketPath: s.socketPath)
            _ = try ca.connect(export: "d10")
            let cb = try RawNBDClient(socketPath: s.socketPath)
            _ = try cb.connect(export: "d20")
            // Both work.
            #expect(try ca.read(offset: 0, length: 512).error == 0)
            #expect(try cb.read(offset: 0, length: 512).error == 0)
            #expect(s.server.openConnections(toExport: "d10") == 1)
            #expect(s.server.disconnect(exportNamed: "d10") == 1)
            #expect(ca.waitForClose(), "the client of the removed export sees its connection end")
            #expect(try cb.read(offset: 512, length: 512).error == 0, "other exports keep their clients")
            #expect(s.server.disconnect(exportNamed: "d99") == 0)
            for _ in 0..<100 where s.server.openConnections(toExport: "d10") != 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(s.server.openConnections(toExport: "d10") == 0)
        }
    }
}
