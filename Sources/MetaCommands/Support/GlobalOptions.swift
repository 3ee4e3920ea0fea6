import ArgumentParser
import Foundation

/// Options every metactl command takes (SPEC: global options).
public struct GlobalOptions: ParsableArguments, Sendable {
    @Option(name: [.customShort("s"), .customLong("set")], help: "The set to act on (default: local).")
    public var setOption: String?

    /// The set to act on: `-s`/`--set`, else `local`.
    public var set: String { setOption ?? "local" }

    @Option(name: .customLong("config-dir"),
            help: ArgumentHelp("Where this host records the sets it knows (env METACTL_CONFIG_DIR).",
                               valueName: "dir"))
    public var configDirOption: String?

    @Option(name: .customLong("run-dir"),
            help: ArgumentHelp("Sockets, PID and lock files (env METACTL_RUN_DIR).", valueName: "dir"))
    public var runDirOption: String?

    @Flag(name: .shortAndLong, help: "Print less.")
    public var quiet = false

    @Flag(name: .shortAndLong, help: "Print more.")
    public var verbose = false

    public init() {}

    /// `--config-dir`, else `$METACTL_CONFIG_DIR`, else `/etc/metactl`.
    public var configDir: String {
        configDirOption ?? ProcessInfo.processInfo.environment["METACTL_CONFIG_DIR"] ?? "/etc/metactl"
    }
    /// `--run-dir`, else `$METACTL_RUN_DIR`, else `/run/metactl`.
    public var runDir: String {
        runDirOption ?? ProcessInfo.processInfo.environment["METACTL_RUN_DIR"] ?? "/run/metactl"
    }
}

/// The `--json` flag of state-printing commands.
public struct JSONOption: ParsableArguments, Sendable {
    @Flag(name: .long, help: "Print one JSON document (its schema is in this command's description; errors: metactl(8)).")
    public var json = false
    public init() {}
}
