import Dispatch
@testable import MetaNBD
import Synchronization
import Testing

@Suite struct NBDWorkerPoolTests {
    /// Blocking jobs bring in every worker: 8 jobs that each wait for all 8 to be running finish
    /// only if the pool really runs them at the same time.
    @Test func blockingJobsRunConcurrentlyOnAllWorkers() async {
        let pool = NBDWorkerPool(threads: 8)
        let arrived = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<8 {
            #expect(pool.submit {
                arrived.signal()
                go.wait()
                done.signal()
            })
        }
        for _ in 0..<8 { arrived.wait() }   // all 8 are inside a job at once
        for _ in 0..<8 { go.signal() }
        for _ in 0..<8 { done.wait() }
        await pool.shutdown()
    }

    /// Shutdown runs every job already queued, then refuses new ones.
    @Test func shutdownRunsQueuedJobsThenRefuses() async {
        let pool = NBDWorkerPool(threads: 2)
        let count = Mutex(0)
        for _ in 0..<10_000 {
            _ = pool.submit { count.withLock { $0 += 1 } }
        }
        await pool.shutdown()
        #expect(count.withLock { $0 } == 10_000)
        #expect(!pool.submit { count.withLock { $0 += 1 } })
        #expect(count.withLock { $0 } == 10_000)
    }
}
