import Foundation
import Synchronization

/// Threads for blocking component I/O, so a request's pieces run concurrently regardless
/// of the CPU count (GCD's `concurrentPerform` runs no more blocking calls at once than there
/// are CPUs, which leaves the disks idle).
///
/// A caller waiting for its tasks first runs its own still-queued tasks, so fan-out inside
/// fan-out (lines, then columns) never deadlocks: every queued task is at least run by the
/// thread that queued it. It never runs another caller's task, which might wait for a line
/// lock the caller holds.
final class IOPool: @unchecked Sendable {
    /// The process-wide pool.
    static let shared = IOPool(threads: 32)

    private final class Group: @unchecked Sendable {
        let remaining: Atomic<Int>
        let done = DispatchSemaphore(value: 0)
        init(_ n: Int) { remaining = Atomic(n) }
        func finish() {
            if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { done.signal() }
        }
    }
    private struct Task { let run: () -> Void; let group: Group }

    private let cond = NSCondition()
    private var queue: [Task?] = []
    private var head = 0

    init(threads: Int) {
        for i in 0..<threads {
            let t = Thread { [unowned self] in self.worker() }
            t.name = "metactl-io-\(i)"
            t.start()
        }
    }

    /// Takes the next task; its slot is cleared so no reference to a caller's closure
    /// outlives the call (the closure is non-escaping).
    private func popLocked() -> Task? {
        while head < queue.count {
            let t = queue[head]
            queue[head] = nil
            head += 1
            if let t { compactLocked(); return t }
        }
        compactLocked()
        return nil
    }

    /// Takes a queued task of `group` (a waiter runs only its own work: another request's
    /// task could block on a lock the waiter holds).
    private func pop(_ group: Group) -> Task? {
        cond.lock()
        defer { cond.unlock() }
        var i = head
        while i < queue.count {
            if let t = queue[i], t.group === group {
                queue[i] = nil
                return t
            }
            i += 1
        }
        return nil
    }

    private func compactLocked() {
        if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0 }
    }

    /// Runs a task and drops every reference to its closure before signalling completion.
    private static func execute(_ task: inout Task?) {
        let group = task!.group
        task!.run()
        task = nil
        group.finish()
    }

    private func worker() {
        while true {
            cond.lock()
            var task = popLocked()
            while task == nil {
                cond.wait()
                task = popLocked()
            }
            cond.unlock()
            Self.execute(&task)
        }
    }

    /// Runs `body(0..<count)` concurrently and returns when every call has returned.
    func run(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 { body(0); return }
        withoutActuallyEscaping(body) { b in
            let box = UncheckedSendable(b)
            let group = Group(count - 1)
            cond.lock()
            for i in 1..<count {
                queue.append(Task(run: { box.value(i) }, group: group))
                cond.signal()
            }
            cond.unlock()
            box.value(0)
            while group.remaining.load(ordering: .acquiring) > 0 {
                var t = pop(group)
                if t == nil {
                    group.done.wait()
                    break
                }
                Self.execute(&t)
            }
        }
    }
}
