import Foundation
import Logging
import MetaDB
import MetaModel

/// How commands reach a set: through the running server's control socket when there is one,
/// otherwise directly on the devices (under the set lock), running the same ``SetManager``
/// code either way.
public enum SetAccess {
    /// Whether a server answers on the set's control socket.
    public static func serverRunning(set: String, runDir: String) -> Bool {
        (try? ControlClient.send(.ping, socketPath: ControlClient.socketPath(runDir: runDir, set: set), timeout: 5)) != nil
    }

    /// Runs `request` against set `set`.
    public static func perform(_ request: ControlRequest, set: String, configDir: String, runDir: String,
                               logger: Logger,
                               progress: (@Sendable (String, String, Double, Double) -> Void)? = nil) throws -> ControlResponse {
        let sock = ControlClient.socketPath(runDir: runDir, set: set)
        if let r = try ControlClient.send(request, socketPath: sock) { return r }
        if case .create(let c) = request,
           (try? HostRegistry.load(configDir: configDir).entry(named: set)) == nil {
            let (m, res) = try SetManager.createWithNewSet(c, setName: set, configDir: configDir, runDir: runDir, logger: logger)
            m.closeEngines()
            m.db.close()
            return try .success(res)
        }
        // A forced replica delete is the way out of a lost quorum: it opens without one.
        var forcedDelete = false
        if case .dbDelete(let r) = request { forcedDelete = r.force }
        let db = try SetDatabase.open(setName: set, configDir: configDir, runDir: runDir,
                                      mode: request.isMutating ? .readWrite : .readOnly, requireQuorum: !forcedDelete)
        let m = SetManager(db: db, configDir: configDir, logger: logger, isServer: false)
        m.progressReporter = progress
        defer {
            m.closeEngines()
            db.close()
        }
        return m.handle(request)
    }
}
