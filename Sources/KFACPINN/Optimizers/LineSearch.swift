import Synchronization

/// The step sizes of the grid line search: 2^0, 2^−1, …, 2^−30.
public let lineSearchGrid: [Double] = (0...30).map { 1 / Double(1 << $0) }

/// The grid line search over `lineSearchGrid` of one loss, with its work space: trial
/// parameters, trial losses, the batch's chunks, and a second loss of the same network and
/// operator on which the second thread evaluates its trials.
final class GridLineSearch {
    let loss: PINNLoss
    /// The second thread's loss (created on first use).
    private(set) var twin: PINNLoss?
    /// Trial parameters and per-term sums of squares, one of each per thread.
    private let trialParameters = [Buffer(), Buffer()], trialSquares = [Buffer(), Buffer()]
    /// The trial losses of the last search (one per grid step size).
    let trials = Buffer()
    /// The last batch searched on and its chunks for the trials (a fixed batch is sliced once).
    private(set) var trialChunks: (batch: Batch, chunks: [Batch])?
    /// The running search's lowest loss (bits of a Double), the number of trials taken by its
    /// threads, and the chunk passes it evaluated.
    private let best = Atomic<UInt64>(0), nextTrial = Atomic<Int>(0)
    let chunkEvaluations = Atomic<Int>(0)

    init(loss: PINNLoss) { self.loss = loss }

    var network: MLP { loss.network }

    /// Grid line search: the α of `lineSearchGrid` minimising L(θ₀ + α p) on `batch` (the first
    /// in grid order on ties), or 0 if none is below `current` (non-finite trial losses count as
    /// no decrease). The network's parameters are not changed.
    ///
    /// A trial's loss is a sum of non-negative terms, one per chunk of the batch, so the terms of
    /// the chunks evaluated so far bound it from below (rounding is monotone). A trial stops as
    /// soon as that bound exceeds the lowest loss found so far (at first `current`): it cannot be
    /// the minimiser. The chosen α is therefore the one a full evaluation of every trial picks.
    ///
    /// With two library threads (kfp_set_num_threads) the trials are independent work for two
    /// cores: each thread takes the next trial, smallest α first (those rarely stop early, and the
    /// cheap overshooting ones at the end even out the two threads), and evaluates it entirely
    /// on its own PINNLoss (`loss` or `twin`); the odd last trial runs on both. A trial's loss
    /// does not depend on the threads that evaluate it.
    func search(_ batch: Batch, from theta0: UnsafePointer<Double>, along p: UnsafePointer<Double>,
                below current: Double) throws -> Double {
        if loss.group.isDistributed { return try searchAcrossProcesses(batch, from: theta0, along: p, below: current) }
        let grid = lineSearchGrid, D = loss.parameterCount
        // Work space kept between searches: no allocation per step.
        let trials = try self.trials.reserve(grid.count)
        trials.update(repeating: .infinity, count: grid.count)
        if trialChunks?.batch != batch {
            let n = batch.interiorCount, w = network.widths
            // A first chunk to stop early on pays where a trial costs more than its extra pass.
            let work = Double(n * loss.op.interiorColumns) * zip(w, w.dropFirst()).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            trialChunks = (batch, work < Self.earlyStopWork ? batch.chunks(maxInterior: trialChunkPoints)
                : batch.chunks(interiorCounts: Batch.trialChunkSizes(n, minimum: Self.minimumTrialChunk, maximum: trialChunkPoints)))
        }
        let chunks = trialChunks!.chunks, concurrent = BLAS.numThreads >= 2
        if concurrent && twin == nil { twin = try? PINNLoss(network: network, operator: loss.op) }
        let twin = concurrent ? self.twin : nil, parts = twin == nil ? 1 : 2
        twin?.probeDraw = loss.probeDraw
        loss.beginLine()
        twin?.beginLine()
        for part in 0..<parts { try trialParameters[part].reserve(D) }
        best.store(current.bitPattern, ordering: .relaxed)
        nextTrial.store(0, ordering: .relaxed)
        chunkEvaluations.store(0, ordering: .relaxed)
        // Takes the trials before `end` from the shared counter and evaluates them on the loss
        // (part 0) or its twin.
        struct Work: @unchecked Sendable {
            let search: GridLineSearch, twin: PINNLoss?, trials: UnsafeMutablePointer<Double>
            let chunks: [Batch], theta0: UnsafePointer<Double>, p: UnsafePointer<Double>, D: Int, grid: [Double]
            func run(_ part: Int, end: Int) throws {
                let theta = search.trialParameters[part].pointer, evaluator = part == 0 ? search.loss : twin!
                while true {
                    let taken = search.nextTrial.add(1, ordering: .relaxed).oldValue
                    guard taken < end else { return }
                    let i = grid.count - 1 - taken, alpha = grid[i]
                    for j in 0..<D { theta[j] = theta0[j] + alpha * p[j] }
                    let value = try evaluator.loss(chunks, at: theta, squares: search.trialSquares[part],
                                                   line: LinePoint(origin: theta0, direction: p, alpha: alpha)) {
                        search.chunkEvaluations.add(1, ordering: .relaxed)
                        return search.bestSoFar
                    }
                    guard let value else { continue }
                    trials[i] = value
                    search.lowerBest(to: value)
                }
            }
        }
        try BLAS.onLibraryThreads {
            let work = Work(search: self, twin: twin, trials: trials, chunks: chunks, theta0: theta0, p: p, D: D, grid: grid)
            if let twin {
                // Trials in pairs, one per thread; an odd last one (α = 1) with both threads in its
                // passes, so that neither waits for the other's last trial.
                let paired = grid.count - grid.count % 2
                loss.setRunsConcurrently(true)
                twin.setRunsConcurrently(true)
                try WorkerPool.shared.parallelFor(2) { try work.run($0, end: paired) }
                loss.setRunsConcurrently(false)
                twin.setRunsConcurrently(false)
                nextTrial.store(paired, ordering: .relaxed)
                try work.run(0, end: grid.count)
            } else {
                try work.run(0, end: grid.count)
            }
        }
        var best = current, bestAlpha = 0.0
        for i in grid.indices where trials[i] < best {
            best = trials[i]
            bestAlpha = grid[i]
        }
        return bestAlpha
    }

    /// `search` in a data-parallel run: every trial's per-term sums of squares over this
    /// process's points (whole, in chunks of `trialChunkPoints`), then one sum over the processes
    /// of all trials' sums and the terms' point counts, from which every process finds the same
    /// α. A trial that fails on some process is not finite everywhere. No trial stops early (a
    /// bound on one process's part is no bound on the whole), and the trials run one after another.
    private func searchAcrossProcesses(_ batch: Batch, from theta0: UnsafePointer<Double>, along p: UnsafePointer<Double>,
                                       below current: Double) throws -> Double {
        let grid = lineSearchGrid, D = loss.parameterCount, T = batch.terms.count, K = grid.count
        if trialChunks?.batch != batch { trialChunks = (batch, batch.chunks(maxInterior: trialChunkPoints)) }
        let chunks = trialChunks!.chunks
        let trials = try self.trials.reserve(K)
        loss.beginLine()
        return try withUnsafeTemporaryAllocation(of: Double.self, capacity: (K + 1) * T) { buffer in
            // Row i: trial i's Σ_n r_{t,n}² per term; row K: the terms' points.
            let sums = buffer.baseAddress!, counts = sums + K * T
            try loss.group.sum(sums, count: (K + 1) * T) {
                let theta = try trialParameters[0].reserve(D)
                for i in 0..<K {
                    for j in 0..<D { theta[j] = theta0[j] + grid[i] * p[j] }
                    let point = LinePoint(origin: theta0, direction: p, alpha: grid[i])
                    if (try? loss.squares(chunks, at: theta, line: point, into: sums + i * T)) == nil {
                        (sums + i * T).update(repeating: .nan, count: T)
                    }
                }
                for t in 0..<T { counts[t] = Double(batch.terms[t].count) }
            }
            var best = current, bestAlpha = 0.0
            for i in 0..<K {
                var value = 0.0
                for t in 0..<T where counts[t] > 0 { value += batch.terms[t].weight * (0.5 * sums[i * T + t] / counts[t]) }
                trials[i] = value.isFinite ? value : .infinity
                if trials[i] < best {
                    best = trials[i]
                    bestAlpha = grid[i]
                }
            }
            return bestAlpha
        }
    }

    /// The lowest loss of the running search (`current` or a finished trial).
    private var bestSoFar: Double { Double(bitPattern: best.load(ordering: .relaxed)) }

    private func lowerBest(to value: Double) {
        var seen = best.load(ordering: .relaxed)
        while value < Double(bitPattern: seen) {
            let (exchanged, original) = best.compareExchange(expected: seen, desired: value.bitPattern, ordering: .relaxed)
            if exchanged { return }
            seen = original
        }
    }

    /// Fewest interior points in the first trial chunk.
    static let minimumTrialChunk = 32

    /// Multiply-adds of a trial's forward pass (n·S·Σ_l h_l h_{l+1}) from which the trials start
    /// with a small chunk to stop early on. Below it the extra pass costs more than it saves
    /// (docs/performance.md, design choices).
    static let earlyStopWork = 5e6

    /// Most interior points per trial chunk.
    ///
    /// A chunk whose hidden-layer Taylor block (h × S·n values) is about 2^20 values (8 MiB), at
    /// least 256 points, stays in cache. With two library threads, two trials run at once, each
    /// entirely on its own thread (inside `BLAS.onLibraryThreads` OpenBLAS runs on the calling
    /// thread), which beats one trial with its products split over two threads
    /// (docs/performance.md, design choices).
    private var trialChunkPoints: Int {
        let w = network.widths.map(Double.init), s = Double(loss.op.interiorColumns)
        return max(256, (1 << 20) / Int((w.dropFirst().max() ?? 1) * s))
    }
}

/// How a Gauss–Newton step (ENGD, SPRING) is scaled: by the grid line search, or by a fixed
/// learning rate.
public enum GaussNewtonStepRule: String, CaseIterable, Sendable {
    case lineSearch = "line_search", fixed
}

extension GridLineSearch {
    /// `search` from θ₀ along p given as arrays.
    func search(_ batch: Batch, from theta0: [Double], along p: [Double], below current: Double) throws -> Double {
        try theta0.withUnsafeBufferPointer { t in
            try p.withUnsafeBufferPointer { try search(batch, from: t.baseAddress!, along: $0.baseAddress!, below: current) }
        }
    }
}
