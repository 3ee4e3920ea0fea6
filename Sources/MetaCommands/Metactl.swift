import ArgumentParser

/// The `metactl` command: a software volume manager in the line of Solaris Volume Manager.
public struct Metactl: AsyncParsableCommand {
    public static let version = "0.1.0"
    public static let configuration = CommandConfiguration(
        commandName: "metactl",
        abstract: "Software volume manager: stripes, RAID-5, hot spares and resync, served over NBD.",
        discussion: """
        Global options (-s/--set NAME, --config-dir DIR, --run-dir DIR, -q, -v) go before or \
        after the command: `metactl -s data status` = `metactl status -s data`. Exit statuses, \
        environment, files and examples: metactl(8) (`man -l man/metactl.8` in the source tree).
        """,
        version: version,
        subcommands: [
            DevicesCommand.self,
            CreateCommand.self,
            ClearCommand.self,
            GrowCommand.self,
            StatusCommand.self,
            DBCommand.self,
            ImportCommand.self,
            ServeCommand.self,
            ReplaceCommand.self,
            HotSpareCommand.self,
            SetCommand.self,
            CheckCommand.self,
            RecoverCommand.self,
            AttachCommand.self,
            DetachCommand.self,
            OfflineCommand.self,
            OnlineCommand.self,
            MonitorCommand.self,
            MapCommand.self,
            UnmapCommand.self,
        ]
    )
    public init() {}
}
