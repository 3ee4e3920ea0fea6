// metactl-fuzz --list: names the targets. metactl-fuzz --write-seeds DIR: writes the seed corpus (MetaFuzz.FuzzSeeds).
// metactl-fuzz TARGET [INPUT…]: runs inputs (files, or directories of files) through a fuzz
// target of MetaFuzz and says which fail. Built by scripts/fuzz with -sanitize=fuzzer and
// METACTL_LIBFUZZER, it is libFuzzer instead: `metactl-fuzz TARGET [libFuzzer options] [CORPUS…]`.
import Foundation
import MetaFuzz
#if METACTL_LIBFUZZER
import CFuzzDriver
#endif

func usage() -> Never {
    let names = FuzzTarget.all.map { "  \($0.name): \($0.summary)" }.joined(separator: "\n")
    FileHandle.standardError.write(Data("usage: metactl-fuzz TARGET [INPUT…]\ntargets:\n\(names)\n".utf8))
    exit(2)
}

let arguments = CommandLine.arguments
if arguments.count == 2 && arguments[1] == "--list" {
    for t in FuzzTarget.all { print(t.name) }
    exit(0)
}
if arguments.count == 3 && arguments[1] == "--write-seeds" {
    // Writes the seed corpus: DIR/<target>/seed-<name>.
    do {
        for (name, seeds) in try FuzzSeeds.all() {
            let dir = "\(arguments[2])/\(name)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for s in seeds {
                let file = s.name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
                try Data(s.bytes).write(to: URL(fileURLWithPath: "\(dir)/seed-\(String(file))"))
            }
        }
    } catch {
        FileHandle.standardError.write(Data("metactl-fuzz: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
}
guard arguments.count >= 2, let target = FuzzTarget.named(arguments[1]) else { usage() }

#if METACTL_LIBFUZZER
nonisolated(unsafe) var selected: FuzzTarget = target
let callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    let input = data.map { Data(bytes: $0, count: size) } ?? Data()
    do { try selected.run(input) } catch {
        FileHandle.standardError.write(Data("\n*** \(selected.name): \(error)\n".utf8))
        abort()
    }
    return 0
}
// libFuzzer sees the program name followed by everything after the target name.
var argv: [UnsafeMutablePointer<CChar>?] = ([arguments[0]] + arguments.dropFirst(2)).map { strdup($0) } + [nil]
var argc = Int32(argv.count - 1)
let rc = argv.withUnsafeMutableBufferPointer { buf -> Int32 in
    var p = buf.baseAddress
    return LLVMFuzzerRunDriver(&argc, &p, callback)
}
exit(rc)
#else
var failed = 0, ran = 0
for path in arguments.dropFirst(2) {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        print("\(path): no such file"); failed += 1; continue
    }
    let files = isDir.boolValue
        ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(path)/\($0)" }
        : [path]
    for f in files {
        guard let data = FileManager.default.contents(atPath: f) else { continue }
        ran += 1
        do { try target.run(data) } catch {
            print("\(f): \(error)"); failed += 1
        }
    }
}
print("\(target.name): \(ran) inputs, \(failed) failed")
exit(failed == 0 ? 0 : 1)
#endif
