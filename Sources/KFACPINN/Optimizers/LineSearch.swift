import Dispatch

/// The step sizes of the grid line search: 2^0, 2^−1, …, 2^−30.
public let lineSearchGrid: [Double] = (0...30).map { 1 / Double(1 << $0) }

extension PINNLoss {
    /// Grid line search: the α of `lineSearchGrid` minimising L(θ₀ + α p) on `batch` (the first
    /// in grid order on ties), or 0 if none is below `current` (non-finite trial losses count as
    /// no decrease). The network's parameters are not changed.
    ///
    /// With two library threads (kfp_set_num_threads) the trials are independent work for two
    /// cores when the network is small: even grid indices run here, odd ones on `lineSearchTwin`,
    /// each trial entirely on its thread. Every trial computes exactly what a sequential search would.
    func gridLineSearch(_ batch: Batch, from theta0: UnsafePointer<Double>, along p: UnsafePointer<Double>,
                        below current: Double) -> Double {
        let grid = lineSearchGrid, D = network.numParameters
        var trials = [Double](repeating: .infinity, count: grid.count)
        let threads = BLAS.numThreads >= 2 && trialsStayOnTheirThread(batch) ? 2 : 1
        if threads == 2 && lineSearchTwin == nil { lineSearchTwin = try? PINNLoss(network: network, operator: op) }
        let losses = threads == 2 && lineSearchTwin != nil ? [self, lineSearchTwin!] : [self]
        let thetas = (0..<losses.count).map { trialParameters[$0].reserve(D) }
        // Evaluates the grid indices part, part + parts, … on losses[part].
        struct Work: @unchecked Sendable {
            let losses: [PINNLoss], thetas: [UnsafeMutablePointer<Double>], trials: UnsafeMutablePointer<Double>
            let batch: Batch, theta0: UnsafePointer<Double>, p: UnsafePointer<Double>, D: Int, grid: [Double]
            func run(_ part: Int) {
                let theta = thetas[part]
                for i in stride(from: part, to: grid.count, by: losses.count) {
                    let alpha = grid[i]
                    for j in 0..<D { theta[j] = theta0[j] + alpha * p[j] }
                    if let value = try? losses[part].forward(batch, at: theta).total { trials[i] = value }
                }
            }
        }
        trials.withUnsafeMutableBufferPointer { t in
            let work = Work(losses: losses, thetas: thetas, trials: t.baseAddress!, batch: batch,
                            theta0: theta0, p: p, D: D, grid: grid)
            if losses.count == 1 {
                work.run(0)
            } else {
                for loss in losses { loss.setRunsConcurrently(true) }
                DispatchQueue.concurrentPerform(iterations: losses.count) { work.run($0) }
                for loss in losses { loss.setRunsConcurrently(false) }
            }
        }
        var best = current, bestAlpha = 0.0
        for (i, trial) in trials.enumerated() where trial < best {
            best = trial
            bestAlpha = grid[i]
        }
        return bestAlpha
    }

    private func setRunsConcurrently(_ flag: Bool) {
        interiorPass.runsConcurrently = flag
        boundaryPass.runsConcurrently = flag
    }

    /// Whether every BLAS call of a trial runs on its calling thread (its GEMMs are below
    /// OpenBLAS's threading size): then two trials at a time use the two cores fully. Larger
    /// networks keep one trial at a time, with OpenBLAS's threads inside each GEMM.
    private func trialsStayOnTheirThread(_ batch: Batch) -> Bool {
        let w = network.widths.map(Double.init), d = w[0], s = d + 2
        let points = Double(max(batch.interiorCount, batch.boundaryCount))
        if w[1] * points * d > BLAS.singleThreadedGemmSize { return false }
        for l in 1..<max(w.count - 2, 1) where w[l + 1] * Double(batch.interiorCount) * s * w[l] > BLAS.singleThreadedGemmSize {
            return false
        }
        return true
    }
}
