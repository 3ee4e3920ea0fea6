import Foundation
@testable import MetaControl
import MetaDevices
import MetaTestSupport
import Testing

/// `--cache writeback` reopens components by path; the reopened descriptor must be the same
/// file or device as the set's O_DIRECT one (review item 9).
@Suite("writeback descriptors are checked against the set's descriptor")
struct CacheModeIdentityTests {
    static func base(_ path: String) throws -> FileDevice {
        let d = try FileDevice(path: path, options: OpenOptions(readOnly: false, exclusive: true, direct: .always))
        #expect(d.isDirect)
        return d
    }

    @Test func reopensTheSameFileAndUsesIt() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let file = try Self.base(try dir.image("c0.img", size: 4 << 20))
        defer { file.close() }
        let dd = DataDevices(mode: .writeback)
        defer { dd.closeAll() }
        let u = UUID()
        let d = dd.device(u, over: file)
        #expect(d !== file as AnyObject)
        #expect(d.isBuffered)
        // The same descriptor on the next call; writes through it reach the file.
        #expect(dd.device(u, over: file) === d as AnyObject)
        try d.write(bytes: [UInt8](repeating: 0xab, count: 4096), at: 1 << 20)
        try d.flush()
        #expect(try file.read(count: 4096, at: 1 << 20) == [UInt8](repeating: 0xab, count: 4096))
        #expect(dd.mismatched.isEmpty)
        // The default mode never reopens.
        #expect(DataDevices(mode: .none).device(u, over: file) === file as AnyObject)
    }

    @Test func aPathThatNowNamesAnotherFileIsNotUsed() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let path = try dir.image("c0.img", size: 4 << 20)
        let file = try Self.base(path)
        defer { file.close() }
        // The image is replaced under the same name (same size) before the buffered
        // descriptor is first opened (a spare taken over later, a reload).
        try FileManager.default.moveItem(atPath: path, toPath: path + ".orig")
        let impostor = try dir.image("c0.img", size: 4 << 20)
        let dd = DataDevices(mode: .writeback)
        defer { dd.closeAll() }
        let u = UUID()
        let d = dd.device(u, over: file)
        #expect(d === file as AnyObject, "the O_DIRECT descriptor is used, not one on the new file")
        #expect(dd.mismatched == [u: path])
        try d.write(bytes: [UInt8](repeating: 0x5a, count: 4096), at: 1 << 20)
        let other = try FileDevice(path: impostor, options: OpenOptions(readOnly: true, exclusive: false, direct: .never))
        defer { other.close() }
        #expect(try other.read(count: 4096, at: 1 << 20) == [UInt8](repeating: 0, count: 4096))
        // A buffered descriptor opened before the swap stays valid: it is the set's file.
        try FileManager.default.removeItem(atPath: impostor)
        try FileManager.default.moveItem(atPath: path + ".orig", toPath: path)
        let good = DataDevices(mode: .writeback)
        defer { good.closeAll() }
        let g = good.device(u, over: file)
        #expect(g !== file as AnyObject)
        try FileManager.default.moveItem(atPath: path, toPath: path + ".moved")
        _ = try dir.image("c0.img", size: 4 << 20)
        #expect(good.device(u, over: file) === g as AnyObject)
    }
}
