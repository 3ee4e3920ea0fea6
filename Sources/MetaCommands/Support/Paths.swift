import Foundation

/// Path helpers for device arguments.
public enum Paths {
    /// Makes a device argument absolute (relative to the current directory) without resolving
    /// symlinks, so `/dev/disk/by-id/…` names stay as given. Requests are absolutised before
    /// they go to a server, whose working directory differs.
    public static func absolute(_ p: String) -> String {
        if p.hasPrefix("/") { return URL(fileURLWithPath: p).standardizedFileURL.path }
        let cwd = FileManager.default.currentDirectoryPath
        return URL(fileURLWithPath: cwd).appendingPathComponent(p).standardizedFileURL.path
    }
}
