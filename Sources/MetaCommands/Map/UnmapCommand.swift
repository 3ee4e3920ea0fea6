import ArgumentParser
import Foundation
import MetaControl
import MetaDevices

/// `metactl unmap NAME|DEV`: tears down a mapping made by `metactl map`.
struct UnmapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmap",
        abstract: "Tear down the block device metactl map gave a volume.",
        discussion: """
        Takes the volume's name or its device. Detaches the loop device, unmounts the FUSE \
        file (nbdfuse and nbdkit exit) and forgets the mapping; helpers that linger are \
        stopped by their recorded PID. Refused while the device is mounted or open \
        exclusively (exit status 3), unless --force: then it is torn down all the same and \
        the file system on it sees I/O errors, as when a disk is pulled. Works without a \
        server.
        """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The volume, or the device it is mapped to.")
    var target: String

    @Flag(name: .shortAndLong, help: "Unmap even while the device is in use.")
    var force = false

    func run() throws {
        let mapper = Mapper(set: global.set, runDir: global.runDir)
        let rec = try mapper.unmap(target, force: force)
        if !global.quiet { print("\(rec.volume): unmapped from \(rec.device)") }
    }
}
