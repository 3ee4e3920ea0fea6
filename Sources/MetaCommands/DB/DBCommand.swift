import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

/// `metactl db create|add|delete|status`: the state database replicas (SVM's metadb).
struct DBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Manage the state database replicas of a set (metadb).",
        discussion: """
        Every set keeps its whole configuration in replicas of the state database on its own \
        devices. The set is writable while strictly more than half of its replicas are readable \
        and current; with half or fewer it is read-only until the devices come back or the dead \
        replicas are removed with `db delete --force`.
        """,
        subcommands: [DBCreateCommand.self, DBAddCommand.self, DBDeleteCommand.self, DBStatusCommand.self])
}

/// Errors from the database layer as one-line user errors.
func userError(_ e: any Error) -> UserError {
    UserError(wrapping: e)
}

/// Replicas below which `db create` warns.
let safeReplicaCount = SetManager.safeReplicaCount
