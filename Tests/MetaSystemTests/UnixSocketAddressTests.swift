import Foundation
import MetaSystem
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `UnixSocketAddress` against the kernel: a path that fits connects to a listening socket,
/// one that does not is refused by name, a missing socket gives its errno, and an abstract
/// name (`@…`) is as long as the name.
@Suite("Unix socket address")
struct UnixSocketAddressTests {
    @Test func connectsToAListeningSocket() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("metasys-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s").path
        let addr = try UnixSocketAddress(path: path)
        let server = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(server >= 0)
        defer { close(server) }
        #expect(addr.withSockaddr { bind(server, $0, $1) } == 0)
        #expect(listen(server, 1) == 0)
        let client = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        #expect(addr.connect(client) == 0)

        // Nothing at the path: the errno, not a crash.
        let other = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(other) }
        #expect(try UnixSocketAddress(path: dir.appendingPathComponent("none").path).connect(other) == ENOENT)
    }

    @Test func tooLongIsRefusedByName() {
        let long = "/tmp/" + String(repeating: "x", count: 200)
        #expect(throws: UnixSocketAddress.TooLong.self) { try UnixSocketAddress(path: long) }
        do { _ = try UnixSocketAddress(path: long) } catch { #expect("\(error)" == "\(long): socket path too long") }
    }

    @Test func abstractNamesAreAsLongAsTheName() throws {
        let a = try UnixSocketAddress(path: "@notify", abstract: true)
        #expect(Int(a.length) == MemoryLayout<sa_family_t>.size + 7)
        a.withSockaddr { sa, _ in
            sa.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { un in
                withUnsafeBytes(of: un.pointee.sun_path) { #expect($0[0] == 0 && $0[1] == UInt8(ascii: "n")) }
            }
        }
        // Without `abstract`, `@` is an ordinary first character of a path.
        #expect(Int(try UnixSocketAddress(path: "@notify").length) == MemoryLayout<sockaddr_un>.size)
    }
}
