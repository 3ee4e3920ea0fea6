import Foundation

/// An input that a parser handled wrongly: the invariant it broke, for the fuzzer's crash
/// report or a failing replay test.
public struct FuzzFailure: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Fails with `message` unless `condition` holds.
@inline(__always)
func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzFailure) {
    if !condition { throw FuzzFailure(message()) }
}

/// One fuzz target: a parser, driven with arbitrary bytes, checking its invariants.
///
/// `run` must never trap: corrupt input is rejected by the parser; it throws ``FuzzFailure``
/// when an invariant is broken (a value that does not re-encode, a session that ends without
/// a valid reply). The same function runs under libFuzzer (`metactl-fuzz`, built by
/// `scripts/fuzz`) and in the test suite, which replays `Tests/Corpus/<name>/`.
public struct FuzzTarget: Sendable {
    /// The target's name, also its corpus directory's.
    public var name: String
    /// What it parses.
    public var summary: String
    /// Runs one input.
    public var run: @Sendable (Data) throws(FuzzFailure) -> Void

    /// Every target.
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "label", summary: "device label copies (Label.decode/read)", run: fuzzLabel),
        FuzzTarget(name: "replica", summary: "replica slot headers and payloads, and the configuration in them",
                   run: fuzzReplica),
        FuzzTarget(name: "config", summary: "the configuration JSON decoder (ConfigCodec)", run: fuzzConfig),
        FuzzTarget(name: "registry", summary: "the host registry (sets.json)", run: fuzzRegistry),
        FuzzTarget(name: "nbd-handshake", summary: "NBD option haggling, then transmission, on the real handler",
                   run: fuzzNBDHandshake),
        FuzzTarget(name: "nbd-transmission",
                   summary: "NBD request framing and every command, structured replies on and off", run: fuzzNBDTransmission),
        FuzzTarget(name: "nbd-tls", summary: "the client's TLS bytes after NBD_OPT_STARTTLS (pre-shared keys, TLS required)",
                   run: fuzzNBDTLS),
        FuzzTarget(name: "control", summary: "control-socket request lines", run: fuzzControl),
        FuzzTarget(name: "size", summary: "size arguments (SizeParser)", run: fuzzSize),
        FuzzTarget(name: "names", summary: "volume, hot spare pool and set names", run: fuzzNames),
        FuzzTarget(name: "log-record", summary: "RAID-5 write-log records (LogRecord.decodeHeader/scan)", run: fuzzLogRecord),
    ]

    /// The target called `name`.
    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}
