import Foundation
import MetaModel

/// Paces background work (resync, check) to the volume's rate limits, as md's
/// speed_limit_min/max: the maximum while the volume is idle, the minimum while foreground
/// requests arrive. Sleeps only outside simulation; one instance per run.
struct ResyncPacer {
    private var windowStart = Date()
    private var windowBytes: Double = 0
    private var lastForeground: UInt64

    init(foreground: UInt64) { lastForeground = foreground }

    /// Accounts `bytes` just moved and sleeps as long as `limits` ask. `foreground` is the
    /// volume's count of foreground requests so far (a change since the last call means the
    /// volume is busy).
    mutating func pace(_ bytes: Double, foreground: UInt64, limits: ResyncRate, simulated: Bool) {
        windowBytes += bytes
        let busy = foreground != lastForeground
        lastForeground = foreground
        let target = Double(busy ? limits.minBytesPerSecond : limits.maxBytesPerSecond)
        let elapsed = Date().timeIntervalSince(windowStart)
        if !simulated && target > 0 && target < Double(UInt64.max) / 2 {
            let due = windowBytes / target
            if due > elapsed { usleep(UInt32(min(1, due - elapsed) * 1_000_000)) }
        }
        if Date().timeIntervalSince(windowStart) > 1 { windowStart = Date(); windowBytes = 0 }
    }
}
