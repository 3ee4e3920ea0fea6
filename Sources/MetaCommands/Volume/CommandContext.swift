import Foundation
import Logging
import MetaControl
import MetaDB
import MetaModel

/// Glue shared by commands: logging setup and running a request through ``SetAccess``.
enum CommandContext {
    /// A logger printing to stderr; warnings and up unless -v.
    static func logger(_ g: GlobalOptions, label: String = "metactl") -> Logger {
        var l = Logger(label: label) { MetactlLogHandler(label: $0) }
        l.logLevel = g.verbose ? .info : .warning
        return l
    }

    /// Runs `request` on the set named by the global options (server or direct) and decodes
    /// the result; errors become one-line ``UserError``s.
    static func perform<T: Decodable>(_ request: ControlRequest, _ g: GlobalOptions, as type: T.Type,
                                      progress: (@Sendable (String, String, Double, Double) -> Void)? = nil) throws -> T {
        let response: ControlResponse
        do {
            response = try SetAccess.perform(request, set: g.set, configDir: g.configDir, runDir: g.runDir,
                                             logger: logger(g), progress: progress)
        } catch {
            throw UserError(wrapping: error)
        }
        do { return try response.decode(T.self) } catch { throw UserError(wrapping: error) }
    }
}
