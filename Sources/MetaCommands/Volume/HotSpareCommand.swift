import ArgumentParser
import Foundation
import MetaControl
import MetaDB
import MetaModel

/// `metactl hs create|add|delete|enable`
struct HotSpareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hs",
        abstract: "Manage hot spare pools (metainit hsp, metahs).",
        subcommands: [Create.self, Add.self, Delete.self, Enable.self])

    static func run(_ r: HotSpareRequest, _ g: GlobalOptions) throws {
        let req = HotSpareRequest(action: r.action, pool: r.pool, devices: r.devices.map(Paths.absolute), force: r.force)
        let res = try CommandContext.perform(.hotSpare(req), g, as: [String: String].self)
        if let w = res["warnings"] { for line in w.split(separator: "\n") { Output.warn(String(line)) } }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a pool, optionally with spares.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Pool name, hsp000 … hsp999.") var pool: String
        @Argument(help: "Spare devices, in the order they are used.", completion: .file()) var devices: [String] = []
        @Flag(name: .shortAndLong, help: "Overwrite devices that carry a signature.") var force = false
        func run() throws {
            try HotSpareCommand.run(HotSpareRequest(action: .create, pool: pool, devices: devices, force: force), global)
            if !global.quiet { print(Said.poolSetUp(pool)) }
        }
    }
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add spares to a pool.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Pool name.", completion: .shellCommand(Completions.pools)) var pool: String
        @Argument(help: "Spare devices.", completion: .file()) var devices: [String]
        @Flag(name: .shortAndLong, help: "Overwrite devices that carry a signature.") var force = false
        func run() throws {
            try HotSpareCommand.run(HotSpareRequest(action: .add, pool: pool, devices: devices, force: force), global)
            if !global.quiet { print(Said.spareAdded(pool)) }
        }
    }
    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove spares from a pool (or the whole pool when no device is named).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Pool name.", completion: .shellCommand(Completions.pools)) var pool: String
        @Argument(help: "Spares to remove.", completion: .file()) var devices: [String] = []
        func run() throws {
            try HotSpareCommand.run(HotSpareRequest(action: .delete, pool: pool, devices: devices), global)
            if !global.quiet { print(devices.isEmpty ? Said.poolCleared(pool) : Said.spareDeleted(pool)) }
        }
    }
    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Return Broken spares to Available after the fault is fixed.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Spare devices.", completion: .file()) var devices: [String]
        func run() throws {
            try HotSpareCommand.run(HotSpareRequest(action: .enable, pool: nil, devices: devices), global)
            if !global.quiet { for d in devices { print(Said.spareEnabled(d)) } }
        }
    }
}
