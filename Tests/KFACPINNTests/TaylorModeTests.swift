import Testing
import KFACPINN
import Glibc

/// Taylor-mode derivatives against central finite differences and closed forms.
struct TaylorModeTests {
    static let cases: [(widths: [Int], activation: Activation)] = [
        ([2, 16, 1], .tanh),
        ([3, 12, 10, 1], .tanh),
        ([2, 8, 8, 8, 1], .sigmoid),
        ([4, 10, 6, 1], .sin),
        ([3, 9, 7, 1], .softplus),
        ([5, 20, 20, 10, 1], .tanh),
        ([100, 12, 8, 1], .tanh),
    ]

    @Test("gradient and Laplacian match central finite differences", arguments: 0..<cases.count)
    func laplacianMatchesFiniteDifferences(_ index: Int) throws {
        let (widths, activation) = Self.cases[index]
        let d = widths[0], n = 3
        let net = try MLP(widths: widths, activation: activation, seed: UInt64(index + 1))
        let x = randomPoints(n, d, seed: 7)
        let (u, grad, lap) = try net.derivatives(x, count: n)
        #expect(maxRelativeDifference(u, try net.evaluate(x, count: n)) < 1e-14)
        var fdGrad = [Double](repeating: 0, count: n * d), fdLap = [Double](repeating: 0, count: n)
        let h1 = 1e-5, h2 = 1e-3
        for k in 0..<n {
            let p = Array(x[(k * d)..<((k + 1) * d)])
            let u0 = try value(net, p)
            for i in 0..<d {
                var plus = p, minus = p
                plus[i] += h1; minus[i] -= h1
                fdGrad[k * d + i] = (try value(net, plus) - value(net, minus)) / (2 * h1)
                plus = p; minus = p
                plus[i] += h2; minus[i] -= h2
                fdLap[k] += (try value(net, plus) - 2 * u0 + value(net, minus)) / (h2 * h2)
            }
        }
        let gradDiff = maxRelativeDifference(grad, fdGrad)
        let lapDiff = maxRelativeDifference(lap, fdLap)
        #expect(gradDiff < 1e-8, "widths \(widths) \(activation): max gradient difference \(gradDiff)")
        #expect(lapDiff < 1e-5 * Double(max(1, d / 10)), "widths \(widths) \(activation): max Laplacian difference \(lapDiff)")
    }

    @Test("a large batch (activation rules split into two row ranges for two threads) gives what each point gives alone",
          arguments: [Activation.tanh, .softplus])
    func largeBatchMatchesSinglePoints(_ activation: Activation) throws {
        let d = 3, n = 1200
        let net = try MLP(widths: [d, 40, 40, 1], activation: activation, seed: 9)
        let x = randomPoints(n, d, seed: 13)
        let c = [2.0, 0.5, 0.5, 0.5, 1.0, 0.0, 0.5, 0.0, 3.0]   // non-diagonal C
        for coefficients in [SecondOrderCoefficients.laplacian, .matrix(c)] {
            let (u, g, t) = try net.derivatives(x, count: n, coefficients: coefficients)
            var worst = 0.0
            for k in stride(from: 0, to: n, by: 37) {
                let (u1, g1, t1) = try net.derivatives(Array(x[(k * d)..<((k + 1) * d)]), count: 1, coefficients: coefficients)
                worst = max(worst, maxRelativeDifference([u[k]] + g[(k * d)..<((k + 1) * d)] + [t[k]], u1 + g1 + t1))
            }
            #expect(worst < 1e-13, "\(activation) \(coefficients): max relative difference batch vs single points \(worst)")
        }
    }

    @Test("general second-order term matches Σ C_ij H_ij with H from finite differences of ∇u",
          arguments: [Activation.tanh, .sigmoid, .sin, .softplus])
    func generalCoefficients(_ activation: Activation) throws {
        let d = 4, n = 2
        let net = try MLP(widths: [d, 10, 8, 1], activation: activation, seed: 3)
        let x = randomPoints(n, d, seed: 11)
        // A symmetric, non-diagonal, indefinite C.
        var c = [Double](repeating: 0, count: d * d)
        var rng = RandomSource(seed: 5)
        for i in 0..<d { for j in i..<d { let v = rng.uniform(-1, 1); c[i * d + j] = v; c[j * d + i] = v } }
        let (_, _, t) = try net.derivatives(x, count: n, coefficients: .matrix(c))
        let h = 1e-5
        for k in 0..<n {
            let p = Array(x[(k * d)..<((k + 1) * d)])
            var expected = 0.0
            for j in 0..<d {
                var plus = p, minus = p
                plus[j] += h; minus[j] -= h
                let gp = try net.derivatives(plus, count: 1).gradient
                let gm = try net.derivatives(minus, count: 1).gradient
                for i in 0..<d { expected += c[i * d + j] * (gp[i] - gm[i]) / (2 * h) }
            }
            let diff = abs(t[k] - expected) / max(1, abs(expected))
            #expect(diff < 1e-7, "\(activation) point \(k): Σ C H = \(t[k]), finite differences \(expected), difference \(diff)")
        }
        // The diagonal special case agrees with the matrix path.
        let diag = (0..<d).map { c[$0 * d + $0] }
        var cd = [Double](repeating: 0, count: d * d)
        for i in 0..<d { cd[i * d + i] = diag[i] }
        let viaDiagonal = try net.derivatives(x, count: n, coefficients: .diagonal(diag)).secondOrder
        let viaMatrix = try net.derivatives(x, count: n, coefficients: .matrix(cd)).secondOrder
        #expect(maxRelativeDifference(viaDiagonal, viaMatrix) < 1e-14)
    }

    @Test("one hidden unit: Δ[a tanh(w·x + b) + c] = a σ''(w·x + b) ‖w‖² (closed form)")
    func closedFormSingleUnit() throws {
        let d = 6
        let net = try MLP(widths: [d, 1, 1], seed: 9)
        let theta = net.parameters  // w (d), b, a, c
        let w = Array(theta[0..<d]), b = theta[d], a = theta[d + 1]
        let x = randomPoints(4, d, seed: 2)
        let (_, grad, lap) = try net.derivatives(x, count: 4)
        for k in 0..<4 {
            var z = b
            for i in 0..<d { z += w[i] * x[k * d + i] }
            let t = tanh(z), s1 = 1 - t * t, s2 = -2 * t * s1
            let expected = a * s2 * w.reduce(0) { $0 + $1 * $1 }
            #expect(abs(lap[k] - expected) < 1e-13, "Δu = \(lap[k]), closed form \(expected)")
            for i in 0..<d { #expect(abs(grad[k * d + i] - a * s1 * w[i]) < 1e-13) }
        }
    }

    @Test("a linear model [d, 1] has ∇u = w and Δu = 0")
    func linearModel() throws {
        let net = try MLP(widths: [3, 1], seed: 4)
        let (u, grad, lap) = try net.derivatives([0.1, 0.2, 0.3], count: 1)
        let p = net.parameters
        #expect(abs(u[0] - (0.1 * p[0] + 0.2 * p[1] + 0.3 * p[2] + p[3])) < 1e-15)
        #expect(grad == Array(p[0..<3]))
        #expect(lap == [0])
    }

    @Test("spatial Laplacian diag(0, 1, …, 1) equals the full Laplacian minus ∂²_t (finite differences)")
    func spatialLaplacian() throws {
        let d = 3
        let net = try MLP(widths: [d, 16, 16, 1], seed: 21)
        let x = randomPoints(2, d, seed: 8)
        let full = try net.derivatives(x, count: 2).secondOrder
        let spatial = try net.derivatives(x, count: 2, coefficients: .diagonal([0, 1, 1])).secondOrder
        let h = 1e-3
        for k in 0..<2 {
            var plus = Array(x[(k * d)..<((k + 1) * d)]), minus = plus
            let u0 = try value(net, plus)
            plus[0] += h; minus[0] -= h
            let utt = (try value(net, plus) - 2 * u0 + value(net, minus)) / (h * h)
            #expect(abs(full[k] - utt - spatial[k]) < 1e-6, "difference \(abs(full[k] - utt - spatial[k]))")
        }
    }
}
