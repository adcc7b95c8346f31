import Glibc
import Testing
@testable import KFACPINN

// Randomized Taylor mode (docs/math.md §12): the probe pass against the exact forward Laplacian,
// unbiasedness, derivatives with fixed probes, factors, optimizers, resume and bad input.

/// The randomized residuals of `op` at the batch's interior points for probe draw `draw`, with
/// the probe weights scaled by `bias` (1: the estimator as built).
func estimatedResiduals(_ net: MLP, _ op: Operator, _ batch: Batch, draw: UInt64, bias: Double = 1) throws -> [Double] {
    guard case .randomized(let e) = op.estimator else { throw KFPError.invalidArgument("not randomized") }
    let n = batch.interiorCount, x = batch.interiorPoints, values = op.coefficientValues()
    let pass = TaylorPass(network: net)
    let columns = ProbeColumns(weights: op.probeWeights(e, passScale: values.passScale).map { $0 * bias },
                               directions: try op.probeDirections(e, points: x, count: n, draw: draw, term: 0))
    try pass.forward(x, count: n, mode: .probes(columns))
    let S = pass.columnsPerSample, seeds = try Buffer(S * n)
    var r = [Double](repeating: 0, count: n)
    x.withUnsafeBufferPointer { xp in
        batch.source.withUnsafeBufferPointer { f in
            r.withUnsafeMutableBufferPointer {
                op.residuals(output: pass.output, points: xp.baseAddress!, source: f.baseAddress!, count: n, columnsPerSample: S,
                             gradientColumns: op.randomizedGradientColumns, values: values, residuals: $0.baseAddress!,
                             seeds: seeds.pointer)
            }
        }
    }
    return r
}

/// max_n |mean_k r̂_n − r_n| / (sd_n / √K) over `draws` draws: the largest z-score of the mean.
func largestZScore(_ net: MLP, _ op: Operator, _ batch: Batch, draws: Int, bias: Double = 1) throws -> Double {
    let exact = try op.residual(network: net, points: batch.interiorPoints, count: batch.interiorCount, source: batch.source)
    var sum = [Double](repeating: 0, count: exact.count), squares = sum
    for k in 0..<draws {
        let r = try estimatedResiduals(net, op, batch, draw: UInt64(k), bias: bias)
        for n in 0..<r.count { sum[n] += r[n]; squares[n] += r[n] * r[n] }
    }
    let K = Double(draws)
    return (0..<exact.count).map { n in
        let mean = sum[n] / K, variance = max(squares[n] / K - mean * mean, 1e-300)
        return abs(mean - exact[n]) / (variance / K).squareRoot()
    }.max()!
}

struct RandomizedTaylorTests {
    @Test("probes √d e_k with weights 1/d give the exact forward Laplacian (tanh and sin, dense C)")
    func deterministicProbesAreExact() throws {
        let d = 4, n = 7, x = randomPoints(n, d, seed: 3)
        // C = L Lᵀ dense: probes √d L e_k, weights 1/d, so Σ_k (1/d) d (L e_k)ᵀ H (L e_k) = tr(C H).
        let l = [1.0, 0, 0, 0, 0.5, 1.2, 0, 0, -0.3, 0.2, 0.8, 0, 0.1, 0.4, -0.6, 0.9]
        var c = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0..<d { for k in 0..<d { c[i * d + j] += l[i * d + k] * l[j * d + k] } } }
        for (activation, coefficients, factor) in [(Activation.tanh, SecondOrderCoefficients.laplacian, nil as [Double]?),
                                                   (.sin, .laplacian, nil), (.tanh, .matrix(c), l), (.softplus, .matrix(c), l)] {
            let net = try MLP(widths: [d, 9, 7, 1], activation: activation, seed: 2)
            let exact = try net.derivatives(x, count: n, coefficients: coefficients)
            var v = [Double](repeating: 0, count: n * d * d)
            for k in 0..<n { for p in 0..<d { for i in 0..<d {
                v[(k * d + p) * d + i] = Double(d).squareRoot() * (factor.map { $0[i * d + p] } ?? (i == p ? 1 : 0))
            } } }
            let pass = TaylorPass(network: net)
            try pass.forward(x, count: n, mode: .probes(ProbeColumns(weights: [Double](repeating: 1 / Double(d), count: d), directions: v)))
            let out = pass.output, S = pass.columnsPerSample
            #expect(S == d + 2)
            let t = (0..<n).map { out[(S - 1) * n + $0] }, u = (0..<n).map { out[$0] }
            #expect(maxRelativeDifference(t, exact.secondOrder) < 1e-12, "T̂ vs exact: \(maxRelativeDifference(t, exact.secondOrder))")
            #expect(maxRelativeDifference(u, exact.value) < 1e-14)
            if factor == nil {
                // J_p = √d ∂_p u.
                let j = (0..<n * d).map { out[(1 + $0 % d) * n + $0 / d] / Double(d).squareRoot() }
                #expect(maxRelativeDifference(j, exact.gradient) < 1e-12)
            }
            // A pass at trial parameters (fused kernels, no slopes) gives the same output.
            let trial = TaylorPass(network: net)
            try net.parameters.withUnsafeBufferPointer {
                try trial.forward(x, count: n, mode: .probes(ProbeColumns(weights: [Double](repeating: 1 / Double(d), count: d), directions: v)),
                                  parameters: $0.baseAddress!)
            }
            let tt = (0..<n).map { trial.output[(S - 1) * n + $0] }
            #expect(maxRelativeDifference(tt, t) < 1e-13)
        }
    }

    @Test("the estimate is unbiased (Poisson, heat with its drift column, log Fokker-Planck, dense C), and a 10% bias is caught")
    func unbiased() throws {
        let c = [2.0, 0.5, 0, 0.5, 1.0, 0.3, 0, 0.3, 1.5]
        let cases: [(Operator, Int)] = [
            (try Operator.poisson(dimension: 3).randomized(probes: 2, distribution: .rademacher, seed: 11), 3),
            (try Operator.heat(spaceDimension: 2, kappa: 0.7).randomized(probes: 3, distribution: .gaussian, seed: 5), 3),
            (try Operator.logFokkerPlanck(spaceDimension: 2).randomized(probes: 2, seed: 1), 3),
            (try Operator(dimension: 3, secondOrder: .matrix(c.map { -$0 })).randomized(probes: 2, seed: 4), 3),
        ]
        for (op, d) in cases {
            let net = try MLP(widths: [d, 8, 8, 1], seed: 6), batch = try smallBatch(d, interior: 6, boundary: 0, seed: 2)
            let z = try largestZScore(net, op, batch, draws: 3000)
            #expect(z < 4.5, "\(op.name): the mean of 3000 estimates is \(z) standard errors from the exact residual")
            let biased = try largestZScore(net, op, batch, draws: 3000, bias: 1.1)
            #expect(biased > 6, "\(op.name): a 10% bias in the weights moved the mean only \(biased) standard errors")
        }
    }

    @Test("with fixed probes: the gradient and the Jacobian rows against central differences")
    func derivativesWithFixedProbes() throws {
        for op in [try Operator.poisson(dimension: 3).randomized(probes: 2, seed: 9),
                   try Operator.heat(spaceDimension: 2, kappa: 0.5).randomized(probes: 2, seed: 3)] {
            let net = try MLP(widths: [3, 5, 4, 1], seed: 4), batch = try smallBatch(3, interior: 6, boundary: 3, seed: 1)
            let loss = try PINNLoss(network: net, operator: op)
            loss.probeDraw = 5
            let (_, gradient) = try loss.lossAndGradient(batch)
            let theta = net.parameters, h = 1e-6
            var fd = [Double](repeating: 0, count: theta.count)
            for p in 0..<theta.count {
                var t = theta
                t[p] += h; try net.setParameters(t)
                let plus = try loss.loss(batch).total
                t[p] -= 2 * h; try net.setParameters(t)
                fd[p] = (plus - (try loss.loss(batch).total)) / (2 * h)
            }
            try net.setParameters(theta)
            #expect(maxRelativeDifference(gradient, fd) < 1e-7, "\(op.name): ∇L vs central differences \(maxRelativeDifference(gradient, fd))")
            // Jacobian rows of the interior residuals.
            let rows = try loss.jacobians(batch).interior, n = batch.interiorCount, D = theta.count
            var fdRows = [Double](repeating: 0, count: n * D)
            func residuals() throws -> [Double] {
                try loss.forward(batch)
                return Array(UnsafeBufferPointer(start: loss.evaluations[0].residuals.pointer, count: n))
            }
            for p in 0..<D {
                var t = theta
                t[p] += h; try net.setParameters(t)
                let plus = try residuals()
                t[p] -= 2 * h; try net.setParameters(t)
                let minus = try residuals()
                for k in 0..<n { fdRows[k * D + p] = (plus[k] - minus[k]) / (2 * h) }
            }
            try net.setParameters(theta)
            #expect(maxRelativeDifference(rows, fdRows) < 1e-7, "\(op.name): Jacobian rows vs central differences \(maxRelativeDifference(rows, fdRows))")
        }
    }

    @Test("J v by the tangent pass and from kept adjoints equals the Jacobian rows times v (sin and tanh)")
    func jacobianVectorProducts() throws {
        for activation in [Activation.tanh, .sin] {
            let op = try Operator.heat(spaceDimension: 3, kappa: 0.4).randomized(probes: 3, seed: 1)
            let net = try MLP(widths: [4, 6, 5, 1], activation: activation, seed: 3), batch = try smallBatch(4, interior: 7, boundary: 4, seed: 2)
            let loss = try PINNLoss(network: net, operator: op)
            loss.probeDraw = 2
            let rows = try loss.jacobians(batch).interior, D = net.numParameters, n = batch.interiorCount
            var rng = RandomSource(seed: 9)
            let v = (0..<D).map { _ in rng.uniform(-1, 1) }
            let expected = (0..<n).map { k in (0..<D).reduce(0.0) { $0 + rows[k * D + $1] * v[$1] } }
            try loss.forward(batch)
            try v.withUnsafeBufferPointer { try loss.jacobianVectorProducts($0.baseAddress!) }
            let tangent = loss.storedJacobianVectorProducts().interior
            try loss.keepJacobianAdjoints()
            try v.withUnsafeBufferPointer { try loss.jacobianVectorProductsFromAdjoints($0.baseAddress!) }
            let adjoint = loss.storedJacobianVectorProducts().interior
            #expect(maxRelativeDifference(tangent, expected) < 1e-12, "\(activation) tangent: \(maxRelativeDifference(tangent, expected))")
            #expect(maxRelativeDifference(adjoint, expected) < 1e-12, "\(activation) adjoints: \(maxRelativeDifference(adjoint, expected))")
        }
    }

    @Test("Kronecker factors over the s + 2 columns against their definition")
    func factorsOverProbeColumns() throws {
        let d = 5, s = 3, n = 4
        let op = try Operator.poisson(dimension: d).randomized(probes: s, seed: 2)
        let net = try MLP(widths: [d, 6, 1], seed: 8), batch = try smallBatch(d, interior: n, boundary: 0, seed: 4)
        let loss = try PINNLoss(network: net, operator: op)
        loss.probeDraw = 1
        try loss.forward(batch)
        try loss.keepJacobianAdjoints()
        let pass = loss.evaluations[0].pass, S = s + 2
        #expect(pass.columnsPerSample == S)
        guard case .randomized(let e) = op.estimator else { return }
        let v = try op.probeDirections(e, points: batch.interiorPoints, count: n, draw: 1, term: 0)
        // Layer 0: z̃ = [x; 1] (value), [v_k; 0] (probes), 0 (T̂): A₀ = 1/(N S) Σ z̃ z̃ᵀ.
        var a0 = [Double](repeating: 0, count: (d + 1) * (d + 1))
        for k in 0..<n {
            var columns = [Array(batch.interiorPoints[(k * d)..<((k + 1) * d)]) + [1]]
            for c in 0..<s { columns.append(Array(v[((k * s + c) * d)..<((k * s + c + 1) * d)]) + [0]) }
            for z in columns { for i in 0...d { for j in 0...d { a0[i * (d + 1) + j] += z[i] * z[j] / Double(n * S) } } }
        }
        // Layer 1 (output): inputs [tanh(a); σ'(a) W₀v_k; σ''(a) w Σ_k (W₀v_k)²] with a = W₀x + b₀, w = −1/s.
        let h = 6, theta = net.parameters, w0 = Array(theta[net.weightOffset(0)..<(net.weightOffset(0) + h * d)])
        let b0 = Array(theta[net.biasOffset(0)..<(net.biasOffset(0) + h)])
        var a1 = [Double](repeating: 0, count: (h + 1) * (h + 1))
        for k in 0..<n {
            let x = Array(batch.interiorPoints[(k * d)..<((k + 1) * d)])
            var columns = [[Double]](repeating: [Double](repeating: 0, count: h + 1), count: S)
            for j in 0..<h {
                let a = b0[j] + (0..<d).reduce(0.0) { $0 + w0[j * d + $1] * x[$1] }
                let t = tanh(a), s1 = 1 - t * t, s2 = -2 * t * s1
                columns[0][j] = t
                var q = 0.0
                for c in 0..<s {
                    let jv = (0..<d).reduce(0.0) { $0 + w0[j * d + $1] * v[(k * s + c) * d + $1] }
                    columns[1 + c][j] = s1 * jv
                    q += -1 / Double(s) * jv * jv
                }
                columns[S - 1][j] = s2 * q
            }
            columns[0][h] = 1
            for z in columns { for i in 0...h { for j in 0...h { a1[i * (h + 1) + j] += z[i] * z[j] / Double(n * S) } } }
        }
        let f = try factors(pass)
        #expect(maxRelativeDifference(f[0].a, a0) < 1e-13, "A₀: \(maxRelativeDifference(f[0].a, a0))")
        #expect(maxRelativeDifference(f[1].a, a1) < 1e-13, "A₁: \(maxRelativeDifference(f[1].a, a1))")
        // The output layer's B: the seeds ∂r/∂T̂ = 1, others 0, so B = [[1]].
        #expect(abs(f[1].b[0] - 1) < 1e-15, "B of the output layer: \(f[1].b[0])")
    }

    @Test("every optimizer trains a randomized Poisson problem; probes change every step")
    func optimizersTrain() throws {
        let op = try Operator.poisson(dimension: 3).randomized(probes: 2, seed: 1)
        let batch = try smallBatch(3, interior: 30, boundary: 12, seed: 3)
        let makers: [(String, (MLP) throws -> any Optimizer)] = [
            ("KFAC", { try KFAC(network: $0, operator: op) }), ("SGD", { try SGD(network: $0, operator: op) }),
            ("Adam", { try Adam(network: $0, operator: op) }), ("LBFGS", { try LBFGS(network: $0, operator: op) }),
            ("ENGD", { try ENGD(network: $0, operator: op) }), ("HessianFree", { try HessianFree(network: $0, operator: op) }),
            ("SPRING", { try SPRING(network: $0, operator: op) }),
        ]
        for (name, make) in makers {
            let net = try MLP(widths: [3, 8, 1], seed: 2), opt = try make(net)
            let exactLoss = try PINNLoss(network: net, operator: op.exact())
            let start = try exactLoss.loss(batch).total
            for _ in 0..<8 { _ = try opt.step(batch) }
            let end = try exactLoss.loss(batch).total
            #expect(end < start, "\(name): the exact loss went from \(start) to \(end)")
        }
        // Two steps see different probes: the estimated loss at fixed θ differs between draws 0 and 1.
        let net = try MLP(widths: [3, 8, 1], seed: 2), loss = try PINNLoss(network: net, operator: op)
        let first = try loss.loss(batch).total
        loss.probeDraw = 1
        #expect(try loss.loss(batch).total != first)
    }

    @Test("a point's probes do not depend on how its batch is cut: the chunked loss (line-search trials) equals the whole")
    func chunksSeeTheSameProbes() throws {
        let op = try Operator.heat(spaceDimension: 3, kappa: 0.3).randomized(probes: 3, seed: 2)
        let net = try MLP(widths: [4, 7, 1], seed: 5), batch = try smallBatch(4, interior: 23, boundary: 9, seed: 7)
        let loss = try PINNLoss(network: net, operator: op)
        loss.probeDraw = 4
        let whole = try loss.forward(batch).total, squares = Buffer()
        for counts in [[5, 9, 9], [1, 22], [23]] {
            let chunked = try net.parameters.withUnsafeBufferPointer {
                try loss.loss(batch.chunks(interiorCounts: counts), at: $0.baseAddress!, squares: squares)
            }
            #expect(chunked.map { abs($0 - whole) <= 1e-13 * whole } == true, "chunks \(counts): \(chunked ?? .nan) vs \(whole)")
        }
    }

    @Test("trials on a line share layer 0's products: each equals the loss at θ₀ + α p evaluated without them, also after a new draw or a new line",
          arguments: [([4, 9, 7, 1], Activation.tanh), ([4, 9, 1], .tanh), ([4, 1], .tanh), ([4, 6, 5, 1], .sin)])
    func lineTrialsShareFirstLayer(widths: [Int], activation: Activation) throws {
        let op = try Operator.heat(spaceDimension: 3, kappa: 0.3).randomized(probes: 3, seed: 2)
        let net = try MLP(widths: widths, activation: activation, seed: 5), batch = try smallBatch(4, interior: 23, boundary: 9, seed: 7)
        let loss = try PINNLoss(network: net, operator: op), chunks = batch.chunks(interiorCounts: [5, 9, 9]), squares = Buffer()
        var rng = RandomSource(seed: 8)
        let theta0 = net.parameters, lines = (0..<2).map { _ in theta0.map { _ in rng.uniform(-1, 1) } }
        /// The loss at θ₀ + α p: on the line (layer 0 from its products) and as a plain trial.
        func trial(_ p: [Double], _ alpha: Double) throws -> (line: Double, plain: Double) {
            let theta = zip(theta0, p).map { $0 + alpha * $1 }
            return try theta.withUnsafeBufferPointer { t in
                try theta0.withUnsafeBufferPointer { o in
                    try p.withUnsafeBufferPointer { d in
                        let point = LinePoint(origin: o.baseAddress!, direction: d.baseAddress!, alpha: alpha)
                        let line = try loss.loss(chunks, at: t.baseAddress!, squares: squares, line: point) ?? .nan
                        return (line, try loss.loss(chunks, at: t.baseAddress!, squares: squares) ?? .nan)
                    }
                }
            }
        }
        // Each line's trials twice (the second time from kept products), a new draw within the
        // second line (no new line begun), then the first line again.
        for (draw, p, begins) in [(UInt64(4), lines[0], true), (4, lines[1], true), (5, lines[1], false), (5, lines[0], true)] {
            if begins { loss.beginLine() }
            loss.probeDraw = draw
            for alpha in [1, 0.25, 1.0 / 1024, 1, 0.25] {
                let (line, plain) = try trial(p, alpha)
                let difference = abs(line - plain) / plain
                #expect(difference < 1e-12, "\(widths), draw \(draw), α \(alpha): \(line) on the line, \(plain) plain (relative \(difference))")
            }
        }
        #expect(loss.terms.first?.lineProductSlices == 3, "layer 0's products kept for \(loss.terms.first?.lineProductSlices ?? 0) slices, expected 3")
    }

    @Test("a randomized run resumes exactly from a checkpoint")
    func resumesExactly() throws {
        let op = try Operator.poisson(dimension: 3).randomized(probes: 2, seed: 7)
        let batch = try smallBatch(3, interior: 20, boundary: 8, seed: 6)
        let net = try MLP(widths: [3, 6, 1], seed: 3), twin = try MLP(widths: [3, 6, 1], seed: 3)
        let kfac = try KFAC(network: net, operator: op)
        for _ in 0..<3 { _ = try kfac.step(batch) }
        try twin.setParameters(net.parameters)
        let loaded = try loadOptimizer(checkpoint: try kfac.checkpoint(), network: twin, operator: op)
        for _ in 0..<3 {
            _ = try kfac.step(batch)
            _ = try loaded.step(batch)
        }
        #expect(net.parameters.map(\.bitPattern) == twin.parameters.map(\.bitPattern))
        // The checkpoint names the estimator: an exact operator does not load it.
        #expect(throws: KFPError.self) { _ = try loadOptimizer(checkpoint: try kfac.checkpoint(), network: twin, operator: op.exact()) }
    }

    @Test("bad input: probes ≤ 0, indefinite C, trained C entries, probes × points beyond memory")
    func badInput() throws {
        let op = try Operator.poisson(dimension: 3)
        for probes in [0, -2] { #expect(throws: KFPError.self) { _ = try op.randomized(probes: probes) } }
        let indefinite = try Operator(dimension: 2, secondOrder: .diagonal([1, -1]))
        #expect(throws: KFPError.self) { _ = try indefinite.randomized(probes: 4) }
        let dense = try Operator(dimension: 2, secondOrder: .matrix([1, 2, 2, 1]))
        #expect(throws: KFPError.self) { _ = try dense.randomized(probes: 4) }
        let entry = try Operator(dimension: 2, secondOrder: .matrix([1, 0.2, 0.2, 1]))
        try entry.setTrainable("C_0_1", initial: 0.2)
        #expect(throws: KFPError.self) { _ = try entry.randomized(probes: 4) }
        let randomized = try Operator(dimension: 2, secondOrder: .laplacian).randomized(probes: 4)
        #expect(throws: KFPError.self) { try randomized.setTrainable("C_0_1", initial: 0.2) }
        #expect(randomized.trainable.count == 0)
        let huge = try Operator.poisson(dimension: 1000).randomized(probes: 1 << 20)
        guard case .randomized(let e) = huge.estimator else { return }
        do {
            _ = try huge.probeDirections(e, points: [Double](repeating: 0, count: 1000 * 100), count: 100,
                                                                      draw: 0, term: 0)
            Issue.record("2^20 probes for 100 points in 1000 dimensions were drawn")
        } catch KFPError.outOfMemory {
        } catch {
            Issue.record("expected out-of-memory, got \(error)")
        }
    }
}
