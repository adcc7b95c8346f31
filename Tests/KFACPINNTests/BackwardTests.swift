import Testing
@testable import KFACPINN

/// The reverse pass is linear in its seeds: weighting the per-sample gradient
/// contributions afterwards equals scaling the seeds beforehand.
struct BackwardTests {
    @Test("per-sample weights in the gradient equal seeds scaled by the same weights")
    func weightsEqualScaledSeeds() throws {
        let d = 3, n = 5, s = d + 2
        let net = try MLP(widths: [d, 7, 6, 1], seed: 4)
        let pass = TaylorPass(network: net)
        let coefficients = try SecondOrderCoefficients.laplacian.resolved(dimension: d)
        try pass.forward(randomPoints(n, d, seed: 3), count: n, mode: .taylor(coefficients))
        var rng = RandomSource(seed: 9)
        let seeds = (0..<(n * s)).map { _ in rng.uniform(-1, 1) }
        let weights = (0..<n).map { _ in rng.uniform(-2, 2) }
        var scaled = seeds
        for k in 0..<n { for c in 0..<s { scaled[c * n + k] *= weights[k] } }
        var viaWeights = [Double](repeating: 0, count: net.numParameters)
        var viaSeeds = viaWeights
        try pass.backward(seeds: seeds)
        try weights.withUnsafeBufferPointer { w in
            try viaWeights.withUnsafeMutableBufferPointer { try pass.accumulateGradient(into: $0.baseAddress!, weights: w.baseAddress!) }
        }
        try pass.backward(seeds: scaled)
        try viaSeeds.withUnsafeMutableBufferPointer { try pass.accumulateGradient(into: $0.baseAddress!, weights: nil) }
        let diff = maxRelativeDifference(viaWeights, viaSeeds)
        #expect(diff < 1e-14, "max difference \(diff)")
        #expect(viaSeeds.contains { abs($0) > 1e-3 })
    }
}
