import Testing
@testable import KFACPINN

struct LineSearchTests {
    /// L(θ₀ + α p) for every grid α, evaluated one after another through the public loss.
    static func sequentialTrials(_ loss: PINNLoss, _ batch: Batch, _ theta0: [Double], _ p: [Double]) throws -> [Double] {
        let net = loss.network
        defer { net.assignParameters(theta0) }
        return try lineSearchGrid.map { alpha in
            try net.setParameters(zip(theta0, p).map { $0 + alpha * $1 })
            return try loss.loss(batch).total
        }
    }

    @Test("the grid line search (two trials at a time on two threads) picks the α a sequential evaluation of the grid picks",
          arguments: [[2, 16, 1], [2, 8, 8, 1]])
    func matchesSequentialSearch(widths: [Int]) throws {
        let net = try MLP(widths: widths, seed: 4)
        let loss = try PINNLoss(network: net, operator: try Operator.poisson(dimension: 2))
        let batch = try Poisson2D.batch(interior: 200, boundary: 40, seed: 5)
        let theta0 = net.parameters
        // Direction: the negative gradient, and a random one (its best α differs).
        var rng = RandomSource(seed: 6)
        let gradient = try loss.lossAndGradient(batch).gradient
        let directions = [gradient.map { -$0 }, theta0.map { _ in rng.uniform(-1, 1) }]
        let current = try loss.loss(batch).total
        for p in directions {
            let trials = try Self.sequentialTrials(loss, batch, theta0, p)
            var expected = 0.0, best = current
            for (alpha, trial) in zip(lineSearchGrid, trials) where trial < best { best = trial; expected = alpha }
            let alpha = theta0.withUnsafeBufferPointer { t in
                p.withUnsafeBufferPointer { loss.gridLineSearch(batch, from: t.baseAddress!, along: $0.baseAddress!, below: current) }
            }
            #expect(alpha == expected, "grid search picked \(alpha), the sequential evaluation \(expected) (trials \(trials))")
            #expect(net.parameters == theta0, "the line search changed the network's parameters")
            // Below the smallest trial loss nothing is accepted.
            let none = theta0.withUnsafeBufferPointer { t in
                p.withUnsafeBufferPointer { loss.gridLineSearch(batch, from: t.baseAddress!, along: $0.baseAddress!, below: trials.min()!) }
            }
            #expect(none == 0, "a search below every trial loss returned α = \(none)")
        }
        // With two library threads the trials of these small networks ran on two threads.
        if BLAS.numThreads >= 2 { #expect(loss.lineSearchTwin != nil, "the second-thread loss was not used") }
    }
}
