#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Who holds the `flock` of a file, read from `/proc/locks` (the kernel's list of file
/// locks: `N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END`, device numbers in hex).
public enum FileLockHolder {
    /// The PID of a process holding an `flock` on `path`, or nil when none is listed (or the
    /// file or `/proc/locks` cannot be read).
    public static func pid(of path: String) -> Int32? {
        var st = stat()
        guard stat(path, &st) == 0,
              let text = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return nil }
        return pid(in: text, device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// The first `FLOCK` holder of (`device`, `inode`) in `text` (the contents of `/proc/locks`).
    public static func pid(in text: String, device: UInt64, inode: UInt64) -> Int32? {
        // glibc's encoding of dev_t (gnu_dev_major / gnu_dev_minor).
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~UInt64(0xfff))
        let minor = (device & 0xff) | ((device >> 12) & ~UInt64(0xff))
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            // "1:" "FLOCK" "ADVISORY" "WRITE" PID "fe:00:1234" START END; a blocked waiter has "->" first.
            guard f.count >= 6, f[0].hasSuffix(":"), f[1] == "FLOCK" else { continue }
            let id = f[5].split(separator: ":")
            guard id.count == 3, UInt64(id[0], radix: 16) == major, UInt64(id[1], radix: 16) == minor,
                  UInt64(id[2]) == inode, let pid = Int32(f[4]) else { continue }
            return pid
        }
        return nil
    }
}
