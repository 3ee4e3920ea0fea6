import Foundation
import MetaSim

/// Prints a line and flushes it at once (progress shows up in a log file too).
func say(_ line: String) { print(line); fflush(nil) }

// metactl-torture [--seconds N] [--seed S] [--schedules N] [--operations N] [--raid6 | --mirror | --softpart]
// Runs deterministic simulation schedules (docs/RELIABILITY.md) until the time or count is
// up, or until one fails: then prints its seed and trace and exits 1.
var seconds: Double = 60
var firstSeed: UInt64 = UInt64(Date().timeIntervalSince1970)
var onlySeed: UInt64?
var schedules = Int.max
var options = SimOptions()
var softpart = false
var args = CommandLine.arguments.dropFirst()
@MainActor func value(_ flag: String) -> String {
    guard let v = args.popFirst() else { FileHandle.standardError.write("metactl-torture: \(flag) needs a value\n".data(using: .utf8)!); exit(2) }
    return v
}
while let a = args.popFirst() {
    switch a {
    case "--seconds": seconds = Double(value(a)) ?? seconds
    case "--seed": onlySeed = UInt64(value(a)); schedules = 1
    case "--first-seed": firstSeed = UInt64(value(a)) ?? firstSeed
    case "--schedules": schedules = Int(value(a)) ?? schedules
    case "--operations": options.operations = Int(value(a)) ?? options.operations
    case "--raid6": options.raid6 = true
    case "--mirror": options.mirror = true
    case "--softpart": softpart = true
    case "-h", "--help":
        say("usage: metactl-torture [--seconds N] [--seed S | --first-seed S] [--schedules N] [--operations N] [--raid6 | --mirror | --softpart]")
        exit(0)
    default:
        FileHandle.standardError.write("metactl-torture: unknown argument \(a)\n".data(using: .utf8)!)
        exit(2)
    }
}
let began = Date()
var ran = 0
var ops = 0
var coverage: [String: Int] = [:]
var lastReport = Date()
var seed = onlySeed ?? firstSeed
while ran < schedules && (onlySeed != nil || Date().timeIntervalSince(began) < seconds) {
    do {
        if softpart {
            // Soft partitions' configuration and watermarks under crashes (SoftPartitionSimulation).
            let sim = SoftPartitionSimulation(seed: seed)
            try sim.run()
            ops += sim.operations
            for (k, v) in sim.coverage { coverage[k, default: 0] += v }
        } else {
            let sim = Simulation(seed: seed, options: options)
            try sim.run()
            ops += sim.operationCount
            for (k, v) in sim.coverage { coverage[k, default: 0] += v }
        }
    } catch {
        say("FAILED \(error)")
        say("replay: bash scripts/torture --seed \(seed)\(options.raid6 ? " --raid6" : "")\(options.mirror ? " --mirror" : "")\(softpart ? " --softpart" : "")")
        exit(1)
    }
    ran += 1
    seed &+= 1
    if Date().timeIntervalSince(lastReport) >= 10 {
        lastReport = Date()
        let t = Date().timeIntervalSince(began)
        say(String(format: "%d schedules in %.0f s (%.1f/s), %.1f operations per schedule", ran, t, Double(ran) / t, Double(ops) / Double(max(1, ran))))
    }
}
let t = Date().timeIntervalSince(began)
say(String(format: "%d schedules passed in %.1f s: %.1f schedules/s, %.1f operations per schedule (seeds %llu-%llu)",
             ran, t, Double(ran) / max(t, 0.001), Double(ops) / Double(max(1, ran)), onlySeed ?? firstSeed, seed &- 1))
say("operations: " + coverage.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
