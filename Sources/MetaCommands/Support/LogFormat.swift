import Foundation
import Logging

/// The log lines of metactl on stderr, as a Unix daemon writes them (journald adds the time):
/// `metactl[PID]: MESSAGE` for information, `metactl[PID]: warning: MESSAGE` (and `error:`,
/// `critical:`, `debug:`) otherwise. Metadata, when a message carries any, follows the
/// message in parentheses; the Swift module that logged is not shown.
public struct MetactlLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String

    /// A handler writing to stderr under `label` (the program name).
    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The line for one message (without the newline).
    public static func line(label: String, pid: Int32, level: Logger.Level, message: String,
                            metadata: Logger.Metadata) -> String {
        let prefix = level == .info || level == .notice ? "" : "\(level.rawValue == "warning" ? "warning" : level.rawValue): "
        var s = "\(label)[\(pid)]: \(prefix)\(message)"
        if !metadata.isEmpty {
            s += " (" + metadata.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
        }
        return s
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let text = Self.line(label: label, pid: getpid(), level: event.level, message: "\(event.message)", metadata: all)
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
