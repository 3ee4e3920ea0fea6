import ArgumentParser
import Foundation
import MetaCommands

/// Runs an async command through its async `run()` (opening the existential).
func runAsync<C: AsyncParsableCommand>(_ command: C) async throws {
    var c = command
    try await c.run()
}

// Parse, then run. ArgumentParser's own errors (usage, help, version) go back to it; every
// error a command throws prints one line `metactl: …` and exits non-zero.
let parsed: any ParsableCommand
do {
    parsed = try Metactl.parseAsRoot()
} catch {
    Metactl.exit(withError: error)
}
do {
    if let asyncCommand = parsed as? any AsyncParsableCommand {
        try await runAsync(asyncCommand)
    } else {
        var command = parsed
        try command.run()
    }
} catch let error as UserError {
    FileHandle.standardError.write(Data("metactl: \(error.message)\n".utf8))
    exit(error.exitCode)
} catch where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
    Metactl.exit(withError: error)
} catch {
    FileHandle.standardError.write(Data("metactl: \(error)\n".utf8))
    exit(1)
}
