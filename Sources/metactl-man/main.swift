import Foundation
import MetaCommands

// metactl-man METACTL OUTDIR: writes the man pages of the metactl binary METACTL
// (from its --experimental-dump-help) into OUTDIR. scripts/gen-docs runs it.
let args = CommandLine.arguments
guard args.count == 3 else {
    FileHandle.standardError.write(Data("usage: metactl-man METACTL OUTDIR\n".utf8))
    exit(64)
}
let p = Process()
p.executableURL = URL(fileURLWithPath: args[1])
p.arguments = ["--experimental-dump-help"]
let pipe = Pipe()
p.standardOutput = pipe
try p.run()
let dump = pipe.fileHandleForReading.readDataToEndOfFile()
p.waitUntilExit()
guard p.terminationStatus == 0 else {
    FileHandle.standardError.write(Data("metactl-man: \(args[1]) --experimental-dump-help failed\n".utf8))
    exit(1)
}
for (name, text) in try ManPages.render(dumpHelp: dump) {
    try text.write(toFile: "\(args[2])/\(name)", atomically: true, encoding: .utf8)
}
