import Foundation
import MetaControl
import MetaDB
import MetaModel

/// Progress display for long work: a bar on a terminal, plain periodic lines otherwise.
enum ProgressDisplay {
    static func format(_ name: String, _ kind: String, _ percent: Double, _ bytesPerSecond: Double, _ secondsLeft: Double?) -> String {
        let rate = bytesPerSecond > 0 ? "\(Output.humanSize(UInt64(bytesPerSecond)))/s" : "-"
        let left = secondsLeft.map(clock) ?? "--:--:--"
        return String(format: "%@: %@ %5.1f%% done (%@, %@ left)", name, kind, percent, rate, left)
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return String(format: "%02d:%02d:%02d", t / 3600, t / 60 % 60, t % 60)
    }

    /// Prints one progress update to stderr.
    static func show(_ line: String, percent: Double) {
        if isatty(2) != 0 {
            let width = 30
            let filled = Int(percent / 100 * Double(width))
            let bar = String(repeating: "#", count: max(0, min(width, filled))) + String(repeating: ".", count: max(0, width - filled))
            FileHandle.standardError.write(Data("\r[\(bar)] \(line)\u{1B}[K".utf8))
        } else {
            FileHandle.standardError.write(Data("\(line)\n".utf8))
        }
    }

    static func done() {
        if isatty(2) != 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// A reporter for work running in this process (no server).
    static let reporter: @Sendable (String, String, Double, Double) -> Void = { name, kind, pct, rate in
        show(format(name, kind, pct, rate, nil), percent: pct)
    }

    /// Polls the server's status until the volume's background work ends; throws if the
    /// volume is not Okay afterwards, unless `component` (a device of the volume, the one a
    /// replace rebuilt) is Okay: then the volume's state is returned (a RAID-6 with a second
    /// failed column still needs it replaced).
    @discardableResult
    static func waitForVolume(_ name: String, _ g: GlobalOptions, component: String? = nil) throws -> StatusReport.VolumeStatus {
        var shown = false
        while true {
            let report = try CommandContext.perform(.status(names: [name]), g, as: StatusReport.self)
            guard let v = report.volumes.first else { throw UserError("\(name): volume disappeared") }
            if v.state == VolumeState.lastErred.rawValue {
                if shown { done() }
                throw UserError("\(name): stopped: Last Erred\(v.invoke.map { "; Invoke: \($0)" } ?? "")")
            }
            if let r = v.resync {
                show(format(name, r.kind, r.percent, r.bytesPerSecond, r.secondsLeft), percent: r.percent)
                shown = true
            } else if v.state != VolumeState.resyncing.rawValue && v.state != VolumeState.initializing.rawValue {
                if shown { done() }
                let rebuilt = component.map { c in v.components.contains { ($0.device == c || $0.hotSpare == c) && $0.state == ComponentState.okay.rawValue } } ?? false
                guard v.state == VolumeState.okay.rawValue || rebuilt else {
                    throw UserError("\(name): finished in state \(v.state)\(v.invoke.map { "; Invoke: \($0)" } ?? "")")
                }
                return v
            }
            usleep(isatty(2) != 0 ? 500_000 : 2_000_000)
        }
    }
}

extension ProgressDisplay {
    /// Runs `request`, whose answer comes only when its long work (`kind` on `volume`, e.g. a
    /// grow's zeroing) is done, showing that work's progress meanwhile: through the running
    /// server (the request waits on its own thread while the server's status is polled),
    /// giving up waiting after `giveUpAfter` seconds (nil: never; the server carries on,
    /// `onGiveUp` says so, and nil is returned); or, without a server, here, where the work
    /// reports its progress directly.
    static func performShowingWork(_ request: ControlRequest, volume: String, kind: ResyncKind, _ g: GlobalOptions,
                                   giveUpAfter: TimeInterval?, onGiveUp: String) throws -> ControlResponse? {
        let printer = ProgressPrinter(quiet: g.quiet, kind: kind.rawValue)
        defer { printer.finish() }
        let sock = ControlClient.socketPath(runDir: g.runDir, set: g.set)
        if FileManager.default.fileExists(atPath: sock) {
            let box = ResponseBox()
            let t = Thread { box.finish(Result { try ControlClient.send(request, socketPath: sock, timeout: 0) }) }
            t.start()
            let began = Date()
            while true {
                if let r = box.wait(seconds: 2) {
                    switch r {
                    case .success(let resp?): return resp
                    case .success(nil): break  // no server after all: below, here
                    case .failure(let e): throw UserError(wrapping: e)
                    }
                    break
                }
                if let st = try? ControlClient.send(.status(names: [volume]), socketPath: sock, timeout: 5),
                   let rep = try? st.decode(StatusReport.self), let rs = rep.volumes.first?.resync, rs.kind == kind.rawValue {
                    printer.report(volume, percent: rs.percent, bytesPerSecond: rs.bytesPerSecond)
                }
                if let limit = giveUpAfter, Date().timeIntervalSince(began) >= limit {
                    Output.warn(onGiveUp)
                    return nil
                }
            }
        }
        do {
            return try SetAccess.perform(request, set: g.set, configDir: g.configDir, runDir: g.runDir,
                                         logger: CommandContext.logger(g)) { vol, k, pct, bps in
                if k == kind.rawValue { printer.report(vol, percent: pct, bytesPerSecond: bps) }
            }
        } catch {
            throw UserError(wrapping: error)
        }
    }
}

/// Shows long work's progress with the same display as `replace --wait` (a bar on a
/// terminal, plain lines otherwise), once the operation has run for a moment.
final class ProgressPrinter: @unchecked Sendable {
    private let lock = NSLock()
    private let began = Date()
    private var last = Date.distantPast
    private var shown = false
    private let quiet: Bool
    private let kind: String
    init(quiet: Bool, kind: String) { self.quiet = quiet; self.kind = kind }

    func report(_ volume: String, percent: Double, bytesPerSecond: Double) {
        guard !quiet else { return }
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        let elapsed = now.timeIntervalSince(began)
        let every: Double = isatty(2) != 0 ? 0.5 : 2
        guard elapsed >= 1, now.timeIntervalSince(last) >= every else { return }
        last = now
        let left = percent > 0 ? elapsed * (100 - percent) / percent : nil
        ProgressDisplay.show(ProgressDisplay.format(volume, kind, percent, bytesPerSecond, left), percent: percent)
        shown = true
    }

    /// Ends the bar's line, if one was shown.
    func finish() {
        lock.lock(); defer { lock.unlock() }
        if shown { ProgressDisplay.done(); shown = false }
    }
}

/// The answer of a request running on another thread.
private final class ResponseBox: @unchecked Sendable {
    private let sem = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var result: Result<ControlResponse?, any Error>?

    func finish(_ r: Result<ControlResponse?, any Error>) {
        lock.lock(); result = r; lock.unlock()
        sem.signal()
    }

    /// The result, or nil if it is not there within `seconds`.
    func wait(seconds: Double) -> Result<ControlResponse?, any Error>? {
        guard sem.wait(timeout: .now() + seconds) == .success else { return nil }
        lock.lock(); defer { lock.unlock() }
        return result
    }
}

/// Ctrl-C while a command waits on long work: one line saying what happens to the work,
/// instead of a silent exit.
enum Interrupt {
    nonisolated(unsafe) private static var source: (any DispatchSourceSignal)?

    /// From now on, SIGINT ends the line of a progress bar, prints `message` on stderr and
    /// exits with status 130 (128 + SIGINT, as shells report it).
    static func onSIGINT(_ message: String) {
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        s.setEventHandler {
            if isatty(2) != 0 { FileHandle.standardError.write(Data("\n".utf8)) }
            FileHandle.standardError.write(Data("metactl: \(message)\n".utf8))
            exit(130)
        }
        s.resume()
        source = s
    }
}
