import MetaSystem
#if canImport(Glibc)
import Glibc
#endif
import CMetaShim

/// Small readers for sysfs and procfs files (no Foundation, no udev).
enum Sysfs {
    /// The whole file as a string, nil when it cannot be read.
    static func readFile(_ path: String, limit: Int = 1 << 20) -> String? {
        let fd = metashim_open(path, O_RDONLY | metashim_o_cloexec(), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let n = retryingInterrupted { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            if n < 0 { return nil }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A sysfs attribute, trimmed; nil when missing or empty.
    static func attr(_ path: String) -> String? {
        guard let s = readFile(path, limit: 65536) else { return nil }
        let t = trim(s)
        return t.isEmpty ? nil : t
    }

    static func trim(_ s: String) -> String {
        var sub = Substring(s)
        while let c = sub.first, c.isWhitespace || c == "\0" { sub.removeFirst() }
        while let c = sub.last, c.isWhitespace || c == "\0" { sub.removeLast() }
        return String(sub)
    }

    /// Names in a directory (without `.` and `..`), sorted; empty when it cannot be read.
    static func list(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted(by: naturalLess)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// `realpath(3)`, nil when the path does not resolve.
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// The last path component.
    static func baseName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// The directory part of a path.
    static func dirName(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        return i == path.startIndex ? "/" : String(path[..<i])
    }

    /// `major:minor` → numbers.
    static func parseMajorMinor(_ s: String) -> (UInt32, UInt32)? {
        let parts = s.split(separator: ":")
        guard parts.count == 2, let a = UInt32(parts[0]), let b = UInt32(parts[1]) else { return nil }
        return (a, b)
    }

    /// Decodes the octal escapes (`\040` for a space) used in mountinfo and /proc/swaps.
    static func unescapeOctal(_ s: Substring) -> String {
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count {
                let digits = b[(i + 1)...(i + 3)]
                if digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) {
                    let v = digits.reduce(0) { $0 * 8 + Int($1 - UInt8(ascii: "0")) }
                    if v < 256 { out.append(UInt8(v)); i += 4; continue }
                }
            }
            out.append(b[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Orders names the way people expect: `loop2` before `loop10`, `sda` before `sda1`.
func naturalLess(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var i = 0, j = 0
    func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    while i < x.count && j < y.count {
        if isDigit(x[i]) && isDigit(y[j]) {
            var ei = i, ej = j
            while ei < x.count && isDigit(x[ei]) { ei += 1 }
            while ej < y.count && isDigit(y[ej]) { ej += 1 }
            // Compare numerically without overflow: strip leading zeroes, then by length, then digits.
            var si = i, sj = j
            while si < ei - 1 && x[si] == 48 { si += 1 }
            while sj < ej - 1 && y[sj] == 48 { sj += 1 }
            if ei - si != ej - sj { return ei - si < ej - sj }
            for k in 0..<(ei - si) where x[si + k] != y[sj + k] { return x[si + k] < y[sj + k] }
            i = ei; j = ej
        } else {
            if x[i] != y[j] { return x[i] < y[j] }
            i += 1; j += 1
        }
    }
    return x.count - i < y.count - j
}

/// One line of `/proc/self/mountinfo`.
public struct MountEntry: Sendable, Equatable {
    public var major: UInt32
    public var minor: UInt32
    /// Where it is mounted.
    public var mountPoint: String
    /// File system type.
    public var fsType: String
    /// Mount source (e.g. `/dev/loop3`).
    public var source: String
}

/// The mount table, read from `/proc/self/mountinfo` and matched by `major:minor`
/// (so renamed or symlinked device paths still match).
public struct MountTable: Sendable {
    public var entries: [MountEntry]

    public init(entries: [MountEntry]) { self.entries = entries }

    /// The current mount table of this process's mount namespace (empty if unreadable).
    public static func current() -> MountTable {
        parse(Sysfs.readFile("/proc/self/mountinfo") ?? "")
    }

    /// Parses mountinfo text; malformed lines are skipped.
    public static func parse(_ text: String) -> MountTable {
        var out: [MountEntry] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: false)
            guard f.count >= 7, let (ma, mi) = Sysfs.parseMajorMinor(String(f[2])),
                  let dash = f.firstIndex(of: "-"), dash + 2 < f.count else { continue }
            out.append(MountEntry(major: ma, minor: mi, mountPoint: Sysfs.unescapeOctal(f[4]),
                                  fsType: String(f[dash + 1]), source: Sysfs.unescapeOctal(f[dash + 2])))
        }
        return MountTable(entries: out)
    }

    /// Mount points of a device, in table order.
    public func mountPoints(major: UInt32, minor: UInt32) -> [String] {
        entries.filter { $0.major == major && $0.minor == minor }.map(\.mountPoint)
    }
}

/// Active swap areas from `/proc/swaps`, as device numbers (block devices) and
/// device/inode pairs (swap files).
struct SwapTable {
    var blockDevices: Set<UInt64> = []
    var files: Set<[UInt64]> = []

    static func current() -> SwapTable {
        var t = SwapTable()
        guard let text = Sysfs.readFile("/proc/swaps") else { return t }
        for line in text.split(separator: "\n").dropFirst() {
            guard let first = line.split(separator: " ", omittingEmptySubsequences: true).first else { continue }
            let path = Sysfs.unescapeOctal(first)
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFBLK {
                t.blockDevices.insert(UInt64(st.st_rdev))
            } else {
                t.files.insert([UInt64(st.st_dev), UInt64(st.st_ino)])
            }
        }
        return t
    }

    func contains(major: UInt32, minor: UInt32) -> Bool {
        blockDevices.contains { metashim_major($0) == major && metashim_minor($0) == minor }
    }
}

/// What the kernel says about an attached loop device's backing file.
struct LoopBacking {
    /// The loop device, e.g. `/dev/loop3`.
    var loopPath: String
    /// The backing file path as recorded by the kernel (may be stale or end in ` (deleted)`).
    var file: String
    /// `st_dev`/`st_ino` of the backing file (from `LOOP_GET_STATUS64`), when available.
    var device: UInt64?
    var inode: UInt64?
    /// `st_rdev` of the backing file when it is itself a block device.
    var rdev: UInt64?

    /// Every attached loop device, from sysfs plus `LOOP_GET_STATUS64`.
    static func all() -> [LoopBacking] {
        var out: [LoopBacking] = []
        for name in Sysfs.list("/sys/class/block") where name.hasPrefix("loop") {
            guard let file = Sysfs.attr("/sys/class/block/\(name)/loop/backing_file") else { continue }
            var b = LoopBacking(loopPath: "/dev/\(name)", file: file)
            if let st = status(loopPath: b.loopPath) {
                b.device = st.0
                b.inode = st.1
            }
            var s = stat()
            if stat(file, &s) == 0, (s.st_mode & S_IFMT) == S_IFBLK { b.rdev = UInt64(s.st_rdev) }
            out.append(b)
        }
        return out
    }

    /// `LOOP_GET_STATUS64`: (lo_device, lo_inode) of the backing file.
    private static func status(loopPath: String) -> (UInt64, UInt64)? {
        let fd = metashim_open(loopPath, O_RDONLY | O_NONBLOCK | metashim_o_cloexec(), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // struct loop_info64 is 232 bytes; lo_device at 0, lo_inode at 8 (both __u64).
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 8)
        defer { raw.deallocate() }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: 256)
        let LOOP_GET_STATUS64: UInt = 0x4C05
        guard ioctl(fd, LOOP_GET_STATUS64, raw) == 0 else { return nil }
        return (raw.load(fromByteOffset: 0, as: UInt64.self), raw.load(fromByteOffset: 8, as: UInt64.self))
    }

    /// Whether this loop device is backed by the file with the given `st_dev`/`st_ino`.
    func isBacked(byFileDevice dev: UInt64, inode ino: UInt64) -> Bool {
        if let device, let inode { return device == dev && inode == ino }
        var s = stat()
        return stat(file, &s) == 0 && UInt64(s.st_dev) == dev && UInt64(s.st_ino) == ino
    }
}
