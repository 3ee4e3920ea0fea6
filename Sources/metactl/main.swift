import ArgumentParser
import Foundation
import MetaCommands
import MetaDevices

/// Runs an async command through its async `run()` (opening the existential).
func runAsync<C: AsyncParsableCommand>(_ command: C) async throws {
    var c = command
    try await c.run()
}

let arguments = Metactl.normalizedArguments(Array(CommandLine.arguments.dropFirst()))

// Parse, then run. Help and --version go back to ArgumentParser; a usage error prints one
// line `metactl: …` and exits 64; every error a command throws prints one line and exits with
// its code's status (Metactl.fail, documented in metactl(8)).
// Bare `metactl`, and `metactl help NAME` for no command NAME, are usage errors (exit 64),
// not help that exits 0 (review finding 36).
if let problem = Metactl.helpUsageProblem(arguments) {
    if arguments.isEmpty { FileHandle.standardError.write(Data((Metactl.helpMessage() + "\n").utf8)) }
    Metactl.fail(UserError(problem, code: .usage), arguments: arguments)
}
let parsed: any ParsableCommand
do {
    parsed = try Metactl.parseAsRoot(arguments)
} catch {
    if Metactl.exitCode(for: error) == .success { Metactl.exit(withError: error) }
    Metactl.fail(UserError(Metactl.usageMessage(for: error, arguments: arguments), code: .usage), arguments: arguments)
}
do {
    if let asyncCommand = parsed as? any AsyncParsableCommand {
        try await runAsync(asyncCommand)
    } else {
        var command = parsed
        try command.run()
    }
} catch let code as ExitCode {
    // A command that has printed its own report and only sets the status (import).
    Foundation.exit(code.rawValue)
} catch where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
    if Metactl.exitCode(for: error) == .success { Metactl.exit(withError: error) }
    Metactl.fail(UserError(Metactl.usageMessage(for: error, arguments: arguments), code: .usage), arguments: arguments)
} catch {
    Metactl.fail(UserError(wrapping: error), arguments: arguments)
}
