import Foundation
import MetaDB
import MetaModel
import MetaDevices
import MetaEngine

/// A request to a set: the same value is handled directly (no server) or sent over the
/// server's control socket as one JSON line.
public enum ControlRequest: Codable, Sendable, Equatable {
    case ping
    case status(names: [String])
    case create(CreateRequest)
    case clear(name: String, force: Bool)
    case grow(GrowRequest)
    case replace(ReplaceRequest)
    case hotSpare(HotSpareRequest)
    case setParams(SetParamsRequest)
    case dbAdd(ReplicaRequest)
    case dbDelete(ReplicaRequest)
    case check(CheckRequest)
    /// Rebuild soft partitions from the watermarks in a volume (`metactl recover`).
    case recover(RecoverRequest)
    /// `attach`, `detach`, `offline`, `online` of a mirror's side.
    case mirror(MirrorRequest)
    /// Follow the set's events (`metactl monitor`): the server answers with a
    /// ``MonitorHello`` line, then one ``MonitorEvent`` JSON line per event until either
    /// side closes. `replay`: how many of the most recent events to send first.
    case monitor(replay: Int)

    /// Whether the request changes the set (needs it open read-write).
    public var isMutating: Bool {
        switch self {
        case .ping, .status, .monitor: return false
        case .create, .clear, .grow, .replace, .hotSpare, .setParams, .dbAdd, .dbDelete, .check, .recover, .mirror: return true
        }
    }

    /// Parses one request as the control socket receives it (the JSON text of one line,
    /// without its newline).
    public static func decode(line: some Sequence<UInt8>) throws -> ControlRequest {
        try JSONDecoder().decode(ControlRequest.self, from: Data(line))
    }

    /// The JSON text of the request, as a client sends it (without the newline).
    public func encodedLine() throws -> [UInt8] {
        Array(try JSONEncoder().encode(self))
    }
}

/// The answer: `ok` with a JSON-encoded result, or a one-line error with its ``ErrorCode``
/// (so the client exits with the same status as it would without a server).
public struct ControlResponse: Codable, Sendable {
    public var ok: Bool
    public var error: String?
    /// The kind of the error (nil on success, and from servers older than the field).
    public var code: ErrorCode?
    /// The result encoded as JSON text (its type depends on the request).
    public var result: String?

    public static func success<T: Encodable>(_ value: T) throws -> ControlResponse {
        let data = try JSONEncoder().encode(value)
        return ControlResponse(ok: true, error: nil, code: nil, result: String(decoding: data, as: UTF8.self))
    }
    /// A failure with `message` and `code`.
    public static func failure(_ message: String, code: ErrorCode = .general) -> ControlResponse {
        ControlResponse(ok: false, error: message, code: code, result: nil)
    }
    /// A failure carrying `error`'s description and code.
    public static func failure(_ error: any Error) -> ControlResponse {
        failure("\(error)", code: ErrorCode.of(error))
    }

    /// Decodes the result, or throws the error as an ``OperationError`` with its code.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard ok, let result else { throw OperationError(error ?? "request failed", code: code ?? .general) }
        return try JSONDecoder().decode(T.self, from: Data(result.utf8))
    }
}

/// The first line of a `monitor` stream.
public struct MonitorHello: Codable, Sendable {
    public var set: String
    public var pid: Int32
}

/// Reply to `ping`: who serves the set.
public struct PingResult: Codable, Sendable {
    public var set: String
    public var pid: Int32
    public var volumes: [String]
}

extension SetManager {
    /// Runs one request against this open set.
    public func handle(_ request: ControlRequest) -> ControlResponse {
        do {
            switch request {
            case .ping:
                return try .success(PingResult(set: setName, pid: getpid(), volumes: volumeNames))
            case .status(let names):
                return try .success(try status(names: names))
            case .create(let r):
                let res = try create(r)
                onVolumesChanged?()
                return try .success(res)
            case .clear(let name, let force):
                let type = try clear(name: name, force: force)
                onVolumesChanged?()
                return try .success(["type": type.rawValue])
            case .grow(let r):
                return try .success(try grow(r))
            case .replace(let r):
                return try .success(try replace(r))
            case .hotSpare(let r):
                return try .success(try hotSpare(r))
            case .setParams(let r):
                return try .success(try setParams(r))
            case .dbAdd(let r):
                return try .success(try dbAdd(r))
            case .dbDelete(let r):
                return try .success(try dbDelete(r))
            case .check(let r):
                return try .success(try check(r))
            case .recover(let r):
                return try .success(try recover(r))
            case .mirror(let r):
                return try .success(try mirrorOperation(r))
            case .monitor:
                // The control server streams events itself; without a server there are none.
                return .failure("set '\(setName)': metactl monitor follows a running server, and none serves the set (start one: metactl serve -s \(setName))", code: .notFound)
            }
        } catch {
            return .failure(error)
        }
    }
}
