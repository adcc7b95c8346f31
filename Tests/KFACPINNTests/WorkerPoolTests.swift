import Dispatch
import Glibc
import Synchronization
import Testing
@testable import KFACPINN

/// The library's worker threads: every index once, nesting and concurrent callers, and that a
/// job really runs on two threads, also after the worker has gone to sleep.
struct WorkerPoolTests {
    @Test("parallelFor runs every index exactly once (1–3 threads, nested calls, two calling threads)")
    func everyIndexOnce() {
        for threads in [1, 2, 3] {
            for n in [0, 1, 2, 3, 7, 64] {
                // counts[i·4 + 0]: outer index i; counts[i·4 + 1 + j]: the nested job's index j.
                let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4 * max(n, 1))
                defer { counts.deallocate() }
                for _ in 0..<100 {
                    counts.initialize(repeating: 0)
                    WorkerPool.shared.parallelFor(n, threads: threads) { i in
                        counts[4 * i] += 1
                        WorkerPool.shared.parallelFor(3, threads: threads) { j in counts[4 * i + 1 + j] += 1 }
                    }
                    let wrong = (0..<(4 * n)).filter { counts[$0] != 1 }
                    #expect(wrong.isEmpty, "threads \(threads), n \(n): slots run other than once: \(wrong)")
                    if !wrong.isEmpty { return }
                }
            }
        }
        // Two threads calling at once: one gets the workers, the other runs inline.
        let n = 40, rounds = 200
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: 2 * n)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0)
        struct Shared: @unchecked Sendable { let counts: UnsafeMutableBufferPointer<Int> }
        let shared = Shared(counts: counts)
        DispatchQueue.concurrentPerform(iterations: 2) { caller in
            for _ in 0..<rounds {
                WorkerPool.shared.parallelFor(n, threads: 2) { i in shared.counts[caller * n + i] += 1 }
            }
        }
        let wrong = (0..<(2 * n)).filter { counts[$0] != rounds }
        #expect(wrong.isEmpty, "concurrent callers: slots not run \(rounds) times: \(wrong.map { counts[$0] })")
    }

    @Test("a two-index job runs on two threads at once, also when the worker has slept")
    func workerJoins() {
        final class Arrivals: Sendable { let count = Atomic<Int>(0) }
        func now() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t)
            return Double(t.tv_sec) + 1e-9 * Double(t.tv_nsec)
        }
        // The pool can be busy with other tests' jobs (then the job runs inline): tries for up to 10 s.
        for gap in [0, 5 * WorkerPool.spinSeconds] {
            var together = false, tries = 0
            let deadline = now() + 10
            while !together && now() < deadline {
                tries += 1
                if gap > 0 { usleep(useconds_t(gap * 1e6)) }
                let arrivals = Arrivals(), met = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 2)
                defer { met.deallocate() }
                met.initialize(repeating: false)
                WorkerPool.shared.parallelFor(2, threads: 2) { i in
                    arrivals.count.add(1, ordering: .sequentiallyConsistent)
                    // Wait up to 20 ms for the other index to start.
                    let start = now()
                    while arrivals.count.load(ordering: .sequentiallyConsistent) < 2 && now() - start < 0.02 {}
                    met[i] = arrivals.count.load(ordering: .sequentiallyConsistent) == 2
                }
                together = met[0] && met[1]
            }
            #expect(together, "after a gap of \(gap) s the two indices never ran at once in \(tries) tries (10 s)")
        }
    }
}
