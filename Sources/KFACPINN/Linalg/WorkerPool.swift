import CKernels
import Dispatch
import Glibc
import Synchronization

/// The library's own threads: T − 1 persistent workers (T = `BLAS.numThreads`) that run the
/// iterations of `parallelFor` together with the calling thread.
///
/// A worker spins for `spinSeconds` after its last job before it sleeps, so that the jobs of one
/// optimizer step (tens of them, from microseconds to milliseconds each) start at once; waking
/// a sleeping thread costs about as much as the shortest jobs (docs/performance.md, design
/// choices).
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// How long an idle worker waits for the next job before it sleeps.
    static let spinSeconds = 1e-3

    /// Online processors: workers beyond one per processor besides the caller's sleep at once
    /// instead of spinning (they would take the cores of the threads doing the work).
    static let processors = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    private struct State {
        var generation = 0
        var open = false     // the current job still takes workers
        var width = 0        // workers 0..<width may join it
        var sleeping = 0
        var started = 0
    }
    private let state = Mutex(State())
    /// The generation of the last job, for the workers' spin (the state's copy decides).
    private let published = Atomic<Int>(0)
    /// Workers inside the current job; the caller returns when none is left.
    private let active = Atomic<Int>(0)
    private let nextIndex = Atomic<Int>(0)
    /// Set while a job runs: a `parallelFor` from inside one, or from a second thread, runs inline.
    private let busy = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    /// The current job; written by the caller before it is published, read by joined workers.
    private var body: ((Int) -> Void)?
    private var iterations = 0

    /// Set in the child of a fork: its workers do not exist there, and their lock may have been
    /// held at the fork, so every job runs inline.
    private static let forkedChild = Atomic<Bool>(false)

    private init() {
        pthread_atfork(nil, nil) { WorkerPool.forkedChild.store(true, ordering: .relaxed) }
    }

    /// Runs body(0..<n), each index once, on the calling thread and up to `threads` − 1 workers;
    /// returns when all have finished. Iterations must write disjoint memory. Inline (in order)
    /// when `threads` < 2, n < 2, the pool is busy (nested or concurrent use), or in a forked child.
    func parallelFor(_ n: Int, threads: Int = BLAS.numThreads, _ body: (Int) -> Void) {
        guard n >= 2, threads >= 2, !Self.forkedChild.load(ordering: .relaxed),
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else {
            for i in 0..<n { body(i) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        let workers = min(threads, n) - 1
        startWorkers(workers)
        withoutActuallyEscaping(body) { body in
            self.body = body
            iterations = n
            nextIndex.store(0, ordering: .relaxed)
            let (generation, sleepers) = state.withLock { s in
                s.generation += 1
                s.open = true
                s.width = workers
                defer { s.sleeping = 0 }
                return (s.generation, s.sleeping)
            }
            published.store(generation, ordering: .releasing)
            for _ in 0..<sleepers { wake.signal() }
            runIterations()
            state.withLock { $0.open = false }
            var spins = 0
            while active.load(ordering: .acquiring) > 0 {
                kernels_spin_pause()
                spins += 1
                if spins % 256 == 0 { sched_yield() }   // a joined worker may wait for this core
            }
            self.body = nil
        }
    }

    /// `parallelFor` with a throwing body: every iteration runs, then the first error thrown
    /// (in completion order) is rethrown.
    func parallelFor(_ n: Int, threads: Int = BLAS.numThreads, _ body: (Int) throws -> Void) throws {
        let failure = Mutex<(any Error)?>(nil)
        parallelFor(n, threads: threads) { (i: Int) -> Void in
            do { try body(i) } catch { failure.withLock { if $0 == nil { $0 = error } } }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    private func runIterations() {
        while true {
            let i = nextIndex.add(1, ordering: .relaxed).oldValue
            guard i < iterations else { return }
            body!(i)
        }
    }

    private func startWorkers(_ count: Int) {
        let new: Range<Int> = state.withLock { s in
            defer { s.started = max(s.started, count) }
            return s.started..<max(s.started, count)
        }
        for id in new {
            let context = Unmanaged.passRetained(WorkerContext(pool: self, id: id)).toOpaque()
            var thread = pthread_t()
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
            let created = pthread_create(&thread, &attributes, { context in
                let worker = Unmanaged<WorkerContext>.fromOpaque(context!).takeRetainedValue()
                worker.pool.workerLoop(id: worker.id)
            }, context)
            pthread_attr_destroy(&attributes)
            if created != 0 {
                // No thread: the jobs run with fewer workers (joining is optional).
                Unmanaged<WorkerContext>.fromOpaque(context).release()
            }
        }
    }

    private final class WorkerContext {
        let pool: WorkerPool, id: Int
        init(pool: WorkerPool, id: Int) { self.pool = pool; self.id = id }
    }

    private func workerLoop(id: Int) -> Never {
        var seen = 0
        while true {
            waitForJob(after: seen, id: id)
            let (generation, joined) = state.withLock { s -> (Int, Bool) in
                guard s.open && id < s.width else { return (s.generation, false) }
                active.add(1, ordering: .relaxed)
                return (s.generation, true)
            }
            seen = generation
            if joined {
                runIterations()
                active.subtract(1, ordering: .releasing)
            }
        }
    }

    /// Spins until a job after `generation` is published, for up to `spinSeconds` (none for
    /// workers beyond `processors` − 1), then sleeps.
    private func waitForJob(after generation: Int, id: Int) {
        let spinSeconds = id < Self.processors - 1 ? Self.spinSeconds : 0
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        var spins = 0
        while published.load(ordering: .acquiring) == generation {
            kernels_spin_pause()
            spins += 1
            guard spins % 256 == 0 else { continue }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let elapsed = Double(now.tv_sec - start.tv_sec) + 1e-9 * Double(now.tv_nsec - start.tv_nsec)
            guard elapsed >= spinSeconds else { continue }
            let sleeps = state.withLock { s -> Bool in
                guard s.generation == generation else { return false }
                s.sleeping += 1
                return true
            }
            if sleeps { wake.wait() }
            clock_gettime(CLOCK_MONOTONIC, &start)
        }
    }
}
