/// The step sizes of the grid line search: 2^0, 2^−1, …, 2^−30.
public let lineSearchGrid: [Double] = (0...30).map { 1 / Double(1 << $0) }

extension PINNLoss {
    /// Grid line search: the α of `lineSearchGrid` minimising L(θ₀ + α p) on `batch` (the first
    /// in grid order on ties), or 0 if none is below `current` (non-finite trial losses count as
    /// no decrease). The network's parameters are not changed.
    ///
    /// With two library threads (kfp_set_num_threads) the trials are independent work for two
    /// cores: even grid indices run here, odd ones on `lineSearchTwin`, each trial entirely on its
    /// thread. Every trial computes exactly what a sequential search would.
    func gridLineSearch(_ batch: Batch, from theta0: UnsafePointer<Double>, along p: UnsafePointer<Double>,
                        below current: Double) -> Double {
        let grid = lineSearchGrid, D = network.numParameters
        // Work space kept between searches: no allocation per step.
        let trials = lineSearchTrials.reserve(grid.count)
        trials.update(repeating: .infinity, count: grid.count)
        // The trials evaluate the loss chunk by chunk (`trialChunkPoints`), two at a time with two
        // library threads.
        if trialChunks?.batch != batch { trialChunks = (batch, batch.chunks(maxInterior: trialChunkPoints)) }
        let chunks = trialChunks!.chunks, concurrent = BLAS.numThreads >= 2
        if concurrent && lineSearchTwin == nil { lineSearchTwin = try? PINNLoss(network: network, operator: op) }
        let twin = concurrent ? lineSearchTwin : nil, parts = twin == nil ? 1 : 2
        for part in 0..<parts { trialParameters[part].reserve(D) }
        // Evaluates the grid indices part, part + parts, … on this loss (part 0) or its twin (part 1).
        struct Work: @unchecked Sendable {
            let loss: PINNLoss, twin: PINNLoss?, parts: Int, trials: UnsafeMutablePointer<Double>
            let chunks: [Batch], theta0: UnsafePointer<Double>, p: UnsafePointer<Double>, D: Int, grid: [Double]
            func run(_ part: Int) {
                let theta = loss.trialParameters[part].pointer, evaluator = part == 0 ? loss : twin!
                for i in stride(from: part, to: grid.count, by: parts) {
                    let alpha = grid[i]
                    for j in 0..<D { theta[j] = theta0[j] + alpha * p[j] }
                    if let value = evaluator.loss(chunks, at: theta) { trials[i] = value }
                }
            }
        }
        BLAS.onLibraryThreads {
            let work = Work(loss: self, twin: twin, parts: parts, trials: trials, chunks: chunks, theta0: theta0, p: p,
                            D: D, grid: grid)
            if let twin {
                setRunsConcurrently(true)
                twin.setRunsConcurrently(true)
                WorkerPool.shared.parallelFor(2) { work.run($0) }
                setRunsConcurrently(false)
                twin.setRunsConcurrently(false)
            } else {
                work.run(0)
            }
        }
        var best = current, bestAlpha = 0.0
        for i in grid.indices where trials[i] < best {
            best = trials[i]
            bestAlpha = grid[i]
        }
        return bestAlpha
    }

    /// The loss of a batch given as consecutive chunks (`Batch.chunks`), at θ:
    /// L = Σ_c (n_c/N) L_Ω,c + Σ_c (m_c/M) L_∂,c; nil if it is not finite.
    func loss(_ chunks: [Batch], at theta: UnsafePointer<Double>) -> Double? {
        if chunks.count == 1 { return try? forward(chunks[0], at: theta).total }
        var interior = 0.0, boundary = 0.0, n = 0, m = 0
        for chunk in chunks {
            guard let value = try? forward(chunk, at: theta) else { return nil }
            interior += Double(chunk.interiorCount) * value.interior
            boundary += Double(chunk.boundaryCount) * value.boundary
            n += chunk.interiorCount
            m += chunk.boundaryCount
        }
        return interior / Double(n) + (m > 0 ? boundary / Double(m) : 0)
    }

    /// Interior points per trial chunk.
    ///
    /// A chunk whose hidden-layer Taylor block (h × S·n values) is about 2^20 values (8 MiB), at
    /// least 256 points, stays in cache (measured: the 5-d big KFAC step, 3000 points in 6 chunks,
    /// 2.6 → 2.0 s; smaller chunks slowed the GEMM-bound 100-d case). With two library threads,
    /// two trials run at once, each entirely on its own thread (inside `BLAS.onLibraryThreads`
    /// OpenBLAS runs on the calling thread). Measured, 2-d KFAC step, two trials at a time against
    /// one trial with its products split over two threads: small network 4.8 against 8.6 ms,
    /// medium 42 against 66 ms, big 323 against 390 ms.
    private var trialChunkPoints: Int {
        let w = network.widths.map(Double.init), s = w[0] + 2
        return max(256, (1 << 20) / Int((w.dropFirst().max() ?? 1) * s))
    }

    func setRunsConcurrently(_ flag: Bool) {
        interiorPass.runsConcurrently = flag
        boundaryPass.runsConcurrently = flag
    }
}
