import ArgumentParser
import Foundation
import MetaControl

/// `metactl recover PARENT [-n] [--json]`
struct RecoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Rebuild the soft partitions of a volume from their watermarks (metarecover -p).",
        discussion: """
        Every extent of a soft partition starts with a watermark in its parent volume: the \
        partition's name, identity, generation, the extent's place among its extents and its \
        length, with a checksum (docs/FORMAT.md). recover reads the parent's free space in \
        1 MiB chunks, looking at every 4 KiB, and jumps over the data of each extent it finds; \
        a partition whose every extent is found is added to the configuration under its name. \
        One already in the configuration (the same identity) is left as it is; one whose name \
        another volume has, or whose extents overlap a soft partition in the configuration, is \
        skipped and said why. A cleared partition's watermarks are marked free and are not \
        found.

        After the state database is lost, recreate the parent first (the `metactl status -p` \
        output kept from before, or the same `create` with --no-init for a RAID volume, so \
        that no data is written), then run recover on it. -n only lists what would be \
        recovered.

        --json prints {"parent", "unreadableChunks", "partitions": [{"name", "sizeBytes", \
        "extents", "outcome" (recovered, would recover, known, skipped), "reason"}]}. \
        Exit status 0 also when nothing was found.
        """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The volume the soft partitions are in.", completion: .shellCommand(Completions.volumes))
    var parent: String

    @Flag(name: [.customShort("n"), .customLong("dry-run")], help: "List what would be recovered; change nothing.")
    var dryRun = false

    @OptionGroup var output: JSONOption

    func run() throws {
        let res = try CommandContext.perform(.recover(RecoverRequest(parent: parent, dryRun: dryRun)), global, as: RecoverResult.self)
        if output.json { try Output.printJSON(res); return }
        if res.unreadableChunks > 0 {
            Output.warn("\(parent): \(res.unreadableChunks) MiB could not be read; soft partitions with an extent there are not found")
        }
        if res.partitions.isEmpty {
            if !global.quiet { print("\(parent): no soft partition watermarks found") }
            return
        }
        for p in res.partitions {
            var line = "\(p.name): \(p.outcome) (\(Output.humanSize(p.sizeBytes)), \(p.extents) extent\(p.extents == 1 ? "" : "s"))"
            if let r = p.reason { line += ": \(r)" }
            print(line)
        }
    }
}
