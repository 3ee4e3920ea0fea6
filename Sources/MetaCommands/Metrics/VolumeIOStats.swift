import Foundation
import Prometheus

/// The I/O counters of one volume's NBD export (`serve --metrics`): requests, bytes, errors
/// and latency per kind of request, in the server's Prometheus registry.
package final class VolumeIOStats: Sendable {
    /// The kinds of request counted (the `op` label).
    package enum Op: Int, CaseIterable, Sendable {
        case read, write, flush, trim, zero
        var label: String { ["read", "write", "flush", "trim", "write_zeroes"][rawValue] }
    }

    /// Latency buckets: 50 µs (a cached read) to 10 s (a device that hangs).
    static let buckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(2.5), .seconds(10),
    ]

    private let requests: [Counter]
    private let bytes: [Counter]
    private let errors: [Counter]
    private let latency: [DurationHistogram]

    /// Registers (or finds: the registry returns existing ones) the counters of `volume`.
    init(registry: PrometheusCollectorRegistry, set: String, volume: String) {
        func labels(_ op: Op) -> [(String, String)] { [("set", set), ("volume", volume), ("op", op.label)] }
        requests = Op.allCases.map {
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "metactl", metricName: "requests", unitName: "total",
                                                                  helpText: "NBD requests answered, by kind"), labels: labels($0))
        }
        bytes = Op.allCases.map {
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "metactl", metricName: "bytes", unitName: "total",
                                                                  helpText: "Bytes read, written, trimmed or zeroed by NBD requests"), labels: labels($0))
        }
        errors = Op.allCases.map {
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "metactl", metricName: "request_errors", unitName: "total",
                                                                  helpText: "NBD requests answered with an error, by kind"), labels: labels($0))
        }
        latency = Op.allCases.map {
            registry.makeDurationHistogram(
                descriptor: MetricNameDescriptor(namespace: "metactl", metricName: "request_duration", unitName: "seconds",
                                                 helpText: "Time from a request's arrival at the volume to its answer"),
                labels: labels($0), buckets: Self.buckets)
        }
    }

    /// Records one request that started at `start`.
    func record(_ op: Op, bytes count: UInt64, since start: ContinuousClock.Instant, failed: Bool) {
        let i = op.rawValue
        latency[i].record(ContinuousClock.now - start)
        requests[i].increment()
        if failed { errors[i].increment() } else if count > 0 { bytes[i].increment(by: Int64(count)) }
    }
}
