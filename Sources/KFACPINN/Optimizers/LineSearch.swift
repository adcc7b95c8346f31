/// The line-search grid of math.md §6, largest first: 2^0, 2^−1, …, 2^−30.
public let lineSearchGrid: [Double] = (0...30).map { 1 / Double(1 << $0) }

extension PINNLoss {
    /// Grid line search: the α of `lineSearchGrid` minimising L(θ₀ + α p) on `batch`, or 0 if
    /// none is below `current` (non-finite trial losses count as no decrease). The network's
    /// parameters are left at the last trial; the caller sets the ones it keeps.
    func gridLineSearch(_ batch: Batch, from theta0: UnsafePointer<Double>, along p: UnsafePointer<Double>,
                        below current: Double) -> Double {
        var best = current, bestAlpha = 0.0
        for alpha in lineSearchGrid {
            network.setParameters(theta0, plus: alpha, times: p)
            if let trial = try? forward(batch).total, trial < best {
                best = trial
                bestAlpha = alpha
            }
        }
        return bestAlpha
    }
}
