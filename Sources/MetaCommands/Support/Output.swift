import Foundation
import MetaDevices
#if canImport(Glibc)
import Glibc
#endif

/// An error a user caused or can act on: printed as one line `metactl: <message>`; the exit
/// status is its ``code``'s (``ErrorCode/exitStatus``, listed in metactl(8)).
public struct UserError: CodedError, CustomStringConvertible, Sendable {
    /// One line naming the thing at fault and the cause.
    public var message: String
    /// What kind of failure this is.
    public var code: ErrorCode
    /// An error with `message` and `code` (``ErrorCode/general`` unless said).
    public init(_ message: String, code: ErrorCode = .general) { self.message = message; self.code = code }
    /// Wraps any error, keeping its message and its code.
    public init(wrapping error: any Error) {
        if let u = error as? UserError { self = u; return }
        self.init("\(error)", code: ErrorCode.of(error))
    }
    /// The exit status of `metactl` for this error.
    public var exitCode: Int32 { code.exitStatus }
    public var description: String { message }
}

/// Output helpers shared by the commands.
public enum Output {
    /// Writes a line to standard error.
    public static func warn(_ s: String) {
        FileHandle.standardError.write(Data("metactl: \(s)\n".utf8))
    }
    /// Writes `value` as one pretty, key-sorted JSON document to standard output.
    public static func printJSON<T: Encodable>(_ value: T) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        FileHandle.standardOutput.write(Data((compactEmpty(String(decoding: try enc.encode(value), as: UTF8.self)) + "\n").utf8))
    }

    /// Foundation's pretty printer writes an empty array or object over three lines
    /// (`[\n\n  ]`); this makes them `[]` and `{}` (review finding 39). Only layout
    /// whitespace is touched: a newline inside a JSON string is always escaped.
    public static func compactEmpty(_ json: String) -> String {
        json.replacingOccurrences(of: #"\[\n\s*\]"#, with: "[]", options: .regularExpression)
            .replacingOccurrences(of: #"\{\n\s*\}"#, with: "{}", options: .regularExpression)
    }
    /// Formats rows as a left-aligned table (columns separated by two spaces).
    public static func table(_ header: [String], _ rows: [[String]], indent: String = "") -> String {
        let all = [header] + rows
        let n = all.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: n)
        for r in all { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return all.map { r in
            var line = indent
            for (i, c) in r.enumerated() {
                line += i == r.count - 1 ? c : c.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0)
            }
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }.joined(separator: "\n")
    }
    /// `3.0 GiB`-style human size (binary units).
    public static func humanSize(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(bytes), i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(bytes) B" : String(format: "%.1f %@", v, units[i])
    }
    /// Whether standard output is a terminal.
    public static var stdoutIsTTY: Bool { isatty(1) != 0 }
}

/// Parses sizes as SPEC says: `512`, `64k`, `1m`, `2g`, `1t` (binary units) and `b` for
/// 512-byte blocks. Returns bytes.
public enum SizeParser {
    public static func parse(_ text: String) throws -> UInt64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        // ASCII only: lowercasing maps some other letters onto units (the Kelvin sign to `k`).
        guard trimmed.utf8.allSatisfy({ $0 < 0x80 }) else {
            throw UserError("bad size '\(text)': expected a number with an optional unit (k, m, g, t, b)", code: .invalidArgument)
        }
        let t = trimmed.lowercased()
        guard let last = t.last else { throw UserError("empty size", code: .invalidArgument) }
        var digits = t
        var mult: UInt64 = 1
        if last.isLetter {
            digits.removeLast()
            switch last {
            case "b": mult = 512
            case "k": mult = 1 << 10
            case "m": mult = 1 << 20
            case "g": mult = 1 << 30
            case "t": mult = 1 << 40
            default: throw UserError("bad size '\(text)': not a size (a number with an optional unit k, m, g, t or b)", code: .invalidArgument)
            }
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber), let n = UInt64(digits) else {
            throw UserError("bad size '\(text)': not a size (a number with an optional unit k, m, g, t or b)", code: .invalidArgument)
        }
        let (r, o) = n.multipliedReportingOverflow(by: mult)
        if o { throw UserError("bad size '\(text)': too large", code: .invalidArgument) }
        return r
    }
}
