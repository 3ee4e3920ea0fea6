import Foundation
import Logging
import MetaNBD
import MetaTestSupport

/// An in-process NBD server on a Unix socket in a temp directory.
struct NBDTestServer {
    let dir: TempDir
    let server: NBDServer
    let socketPath: String

    /// The NBD URI of an export on this server.
    func uri(_ name: String) -> String { "nbd+unix:///\(name)?socket=\(socketPath)" }

    static func start(exports: [any NBDExport], dir: TempDir,
                      configure: (inout NBDServer.Configuration) -> Void = { _ in }) async throws -> NBDTestServer {
        let socketPath = dir.file("nbd.sock")
        var config = NBDServer.Configuration(unixSocketPath: socketPath)
        config.ioThreads = 8
        config.eventLoopThreads = 2
        configure(&config)
        var logger = Logger(label: "metactl.nbd.test")
        logger.logLevel = ProcessInfo.processInfo.environment["NBD_TEST_LOG"] == "1" ? .debug : .error
        let server = NBDServer(configuration: config, exports: NBDExportRegistry(exports), logger: logger)
        do {
            try await server.start()
        } catch {
            await server.shutdown(drain: false)
            throw error
        }
        return NBDTestServer(dir: dir, server: server, socketPath: socketPath)
    }
}

/// Runs `body` with a started server and always shuts it down afterwards.
func withNBDServer<T>(exports: [any NBDExport], dir: TempDir,
                      configure: (inout NBDServer.Configuration) -> Void = { _ in },
                      _ body: (NBDTestServer) async throws -> T) async throws -> T {
    let s = try await NBDTestServer.start(exports: exports, dir: dir, configure: configure)
    do {
        let r = try await body(s)
        await s.server.shutdown()
        return r
    } catch {
        await s.server.shutdown(drain: false)
        throw error
    }
}

/// Writes `size` random bytes to a new file and returns them.
@discardableResult
func writeRandomFile(_ path: String, size: Int) throws -> Data {
    var g = SystemRandomNumberGenerator()
    var bytes = [UInt8](repeating: 0, count: size)
    bytes.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for i in 0..<words.count { words[i] = g.next() }
    }
    let data = Data(bytes)
    guard FileManager.default.createFile(atPath: path, contents: data) else {
        throw NBDTestError("cannot write \(path)")
    }
    return data
}

func readFile(_ path: String) throws -> Data {
    guard let d = FileManager.default.contents(atPath: path) else { throw NBDTestError("cannot read \(path)") }
    return d
}

/// Parses JSON printed by a tool.
func parseJSON(_ text: String) throws -> [String: Any] {
    guard let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw NBDTestError("not a JSON object: \(text)")
    }
    return obj
}
