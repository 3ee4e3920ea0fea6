import CMetaShim
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The threads that run export I/O (blocking calls), with few wakeups on the submitting event loop.
///
/// A submitter wakes a sleeping worker only when no worker is awake and looking for work; a worker that
/// takes a job while more are queued wakes the next one itself. Fast jobs (page-cache hits) are then run
/// by the few workers already awake, while slow ones (disk I/O) quickly bring in every worker: the
/// event loop pays for at most one wakeup per burst instead of one per request.
final class NBDWorkerPool: @unchecked Sendable {
    typealias Job = @Sendable () -> Void

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // All below are guarded by `mutex`.
    private var queue: [Job?] = []
    private var head = 0
    private var idle = 0        // waiting on the condition, not yet woken
    private var searching = 0   // awake and not running a job
    private var permits = 0     // wakeups granted to idle workers
    private var stopping = false
    private var threads: [pthread_t] = []
    /// No threads: ``submit(_:)`` runs each job at once on the caller's thread.
    private let inline: Bool

    /// A pool of `requested` threads; 0 runs every job inline in ``submit(_:)`` (for driving a
    /// connection deterministically on an embedded channel: tests and fuzzing).
    init(threads requested: Int) {
        inline = requested <= 0
        let count = inline ? 0 : requested
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        pthread_mutex_lock(mutex)
        searching = count  // every worker starts awake and finds the queue empty
        pthread_mutex_unlock(mutex)
        for i in 0..<count {
            let box = Unmanaged.passRetained(WorkerBox(pool: self, index: i)).toOpaque()
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { arg in
                let box = Unmanaged<WorkerBox>.fromOpaque(arg!).takeRetainedValue()
                metashim_set_thread_name("metactl-nbd-io")  // else it inherits its creator's name
                box.pool.workerLoop()
                return nil
            }, box)
            if rc == 0 {
                threads.append(tid)
            } else {
                Unmanaged<WorkerBox>.fromOpaque(box).release()
                pthread_mutex_lock(mutex)
                searching -= 1
                pthread_mutex_unlock(mutex)
            }
        }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Queues `job`; returns false (and does not run it) once the pool is stopping.
    func submit(_ job: @escaping Job) -> Bool {
        pthread_mutex_lock(mutex)
        if stopping {
            pthread_mutex_unlock(mutex)
            return false
        }
        if inline {
            pthread_mutex_unlock(mutex)
            job()
            return true
        }
        queue.append(job)
        let wake = searching == 0 && idle > 0
        if wake { grantWakeupLocked() }
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_signal(condition) }
        return true
    }

    /// Stops accepting jobs, runs every queued job, and returns once all workers have exited:
    /// true. With a `timeout` (seconds), returns false when some worker is still busy by then
    /// (a job stuck in a device that does not answer); those threads are left to finish alone.
    @discardableResult
    func shutdown(timeout: Double? = nil) async -> Bool {
        pthread_mutex_lock(mutex)
        let alreadyStopping = stopping
        stopping = true
        let toJoin = threads
        threads = []
        pthread_mutex_unlock(mutex)
        pthread_cond_broadcast(condition)
        guard !alreadyStopping, !toJoin.isEmpty else { return true }
        let joined = DispatchSemaphore(value: 0)
        let joiner = Thread {
            for t in toJoin { pthread_join(t, nil) }
            joined.signal()
        }
        joiner.name = "metactl-nbd-join"
        joiner.start()
        return await withCheckedContinuation { (cont: CheckedContinuation<Bool, Never>) in
            DispatchQueue.global().async {
                let result = joined.wait(timeout: timeout.map { .now() + $0 } ?? .distantFuture)
                cont.resume(returning: result == .success)
            }
        }
    }

    private func grantWakeupLocked() {
        idle -= 1
        searching += 1
        permits += 1
    }

    private func workerLoop() {
        pthread_mutex_lock(mutex)
        while true {
            if head < queue.count {
                let job = queue[head]
                queue[head] = nil
                head += 1
                if head == queue.count {
                    queue.removeAll(keepingCapacity: true)
                    head = 0
                } else if head >= 1024 && head * 2 >= queue.count {
                    queue.removeFirst(head)
                    head = 0
                }
                searching -= 1
                let wake = head < queue.count && searching == 0 && idle > 0
                if wake { grantWakeupLocked() }
                pthread_mutex_unlock(mutex)
                if wake { pthread_cond_signal(condition) }
                job?()
                pthread_mutex_lock(mutex)
                searching += 1
                continue
            }
            if stopping {
                searching -= 1
                pthread_mutex_unlock(mutex)
                return
            }
            searching -= 1
            idle += 1
            while permits == 0 && !stopping {
                pthread_cond_wait(condition, mutex)
            }
            if permits > 0 {
                permits -= 1  // the waker already moved us from idle to searching
            } else {
                idle -= 1
                searching += 1
            }
        }
    }
}

private final class WorkerBox {
    let pool: NBDWorkerPool
    let index: Int
    init(pool: NBDWorkerPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
