import ArgumentParser
import Foundation
import MetaCommands

// Parse, then run. Parse errors and help go through ArgumentParser; every error a
// command throws prints one line `metactl: …` and exits non-zero.
let parsed: any ParsableCommand
do {
    parsed = try Metactl.parseAsRoot()
} catch {
    Metactl.exit(withError: error)
}
do {
    var command = parsed
    if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.run()
    } else {
        try command.run()
    }
} catch let error as UserError {
    FileHandle.standardError.write(Data("metactl: \(error.message)\n".utf8))
    exit(error.exitCode)
} catch let error where error is ExitCode || error is CleanExit || error is ValidationError {
    Metactl.exit(withError: error)
} catch {
    FileHandle.standardError.write(Data("metactl: \(error)\n".utf8))
    exit(1)
}
