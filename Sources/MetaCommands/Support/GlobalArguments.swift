import ArgumentParser
import Foundation
import MetaDevices

extension Metactl {
    /// Global options (SPEC: `-s/--set`, `--config-dir`, `--run-dir`, `-q`, `-v`) that take a value.
    static let globalOptionsWithValue: Set<String> = ["-s", "--set", "--config-dir", "--run-dir"]
    /// Global flags.
    static let globalFlags: Set<String> = ["-q", "--quiet", "-v", "--verbose"]

    /// Moves global options written before the subcommand (`metactl -s gs db delete …`) to
    /// just after it (`metactl db delete -s gs …`), where every command declares them, so both
    /// orders are accepted, as SPEC.md's "global options" and `metaset -s`/`zpool`/`lvm`
    /// habits want. Arguments after the subcommand are left alone; without a subcommand the
    /// arguments are returned unchanged so the parser reports them.
    public static func normalizedArguments(_ args: [String]) -> [String] {
        var globals: [String] = []
        var path: [String] = []
        var command: any ParsableCommand.Type = Metactl.self
        var i = 0
        // Before the leaf subcommand, global options may come at any level
        // (`metactl -s gs db delete …`, `metactl db -s gs delete …`).
        while i < args.count {
            let a = args[i]
            if let sub = command.configuration.subcommands.first(where: { Self.names(of: $0).contains(a) }) {
                command = sub
                path.append(a)
                i += 1
                if command.configuration.subcommands.isEmpty { break }
            } else if globalFlags.contains(a) {
                globals.append(a); i += 1
            } else if globalOptionsWithValue.contains(a), i + 1 < args.count {
                globals += [a, args[i + 1]]; i += 2
            } else if ["--set=", "--config-dir=", "--run-dir="].contains(where: { a.hasPrefix($0) })
                        || (a.hasPrefix("-s") && !a.hasPrefix("--") && a.count > 2) {
                globals.append(a); i += 1
            } else {
                break
            }
        }
        // No subcommand reached, or nothing to move: the parser reports the arguments as given.
        if globals.isEmpty || path.isEmpty { return args }
        return path + globals + Array(args[i...])
    }

    /// The name and aliases a subcommand is called by.
    static func names(of command: any ParsableCommand.Type) -> [String] {
        [command.configuration.commandName ?? command._commandName] + command.configuration.aliases
    }
}

extension Metactl {
    /// One line for an argument-parser error, pointing to the help of the subcommand.
    public static func usageMessage(for error: any Error, arguments: [String]) -> String {
        var command: any ParsableCommand.Type = Metactl.self
        var path: [String] = []
        for a in arguments {
            guard let sub = command.configuration.subcommands.first(where: { names(of: $0).contains(a) }) else { break }
            command = sub
            path.append(a)
        }
        var message = Metactl.message(for: error).split(separator: "\n").first.map(String.init) ?? "usage error"
        if let negative = negativeValue(message: message, arguments: arguments) { message = negative }
        return "\(message) (see `\((["metactl"] + path + ["--help"]).joined(separator: " "))`)"
    }

    /// `-i -5` reaches the parser as an option `-i` without a value followed by an option
    /// `-5` ("Missing value for '-i <size>'"). Says what is wrong instead: every numeric value
    /// metactl takes is positive.
    static func negativeValue(message: String, arguments: [String]) -> String? {
        guard message.hasPrefix("Missing value for '") else { return nil }
        let spec = message.dropFirst("Missing value for '".count).prefix { $0 != "'" }
        let names = spec.split(separator: " ").first.map { $0.split(separator: ",").map(String.init) } ?? []
        for (i, a) in arguments.enumerated().dropLast() where names.contains(a) {
            let v = arguments[i + 1]
            if v.count > 1, v.first == "-", v.dropFirst().first?.isNumber == true {
                return "\(a) \(v): negative values are not accepted"
            }
        }
        return nil
    }

    /// Reports `error` and exits: one line `metactl: MESSAGE` on stderr and, when `--json`
    /// was asked for, `{"error": {"code", "message", "exitStatus"}}` on stdout; the exit
    /// status is the code's (metactl(8), EXIT STATUS).
    public static func fail(_ error: UserError, arguments: [String]) -> Never {
        FileHandle.standardError.write(Data("metactl: \(error.message)\n".utf8))
        if arguments.contains("--json") {
            try? Output.printJSON(["error": JSONError(code: error.code.rawValue, message: error.message,
                                                      exitStatus: error.code.exitStatus)])
        }
        Foundation.exit(error.code.exitStatus)
    }
}

extension Metactl {
    /// Why `arguments` ask for no command: nil when they do. Empty arguments, and
    /// `help WORDS` where WORDS name no command, are usage errors.
    public static func helpUsageProblem(_ arguments: [String]) -> String? {
        if arguments.isEmpty { return "no command given (see `metactl --help`)" }
        guard arguments.first == "help" else { return nil }
        var command: any ParsableCommand.Type = Metactl.self
        for a in arguments.dropFirst() where !a.hasPrefix("-") {
            guard let sub = command.configuration.subcommands.first(where: { names(of: $0).contains(a) }) else {
                return "help: no command '\(arguments.dropFirst().filter { !$0.hasPrefix("-") }.joined(separator: " "))' (see `metactl --help`)"
            }
            command = sub
        }
        return nil
    }
}

/// The error object `--json` commands print on failure.
struct JSONError: Encodable {
    var code: String
    var message: String
    var exitStatus: Int32
}
