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

    @Test("the grid line search (two trials at a time on two threads) picks the α a sequential evaluation of the grid picks, with the exact and the randomized second-order term",
          arguments: [[2, 16, 1], [2, 8, 8, 1], [2, 64, 64, 1]], [0, 3])
    func matchesSequentialSearch(widths: [Int], probes: Int) throws {
        let net = try MLP(widths: widths, seed: 4), poisson = try Operator.poisson(dimension: 2)
        let loss = try PINNLoss(network: net, operator: probes == 0 ? poisson : try poisson.randomized(probes: probes, seed: 3))
        let batch = try Poisson2D.batch(interior: 200, boundary: 40, seed: 5)
        let theta0 = net.parameters
        // Direction: the negative gradient, and a random one (its best α differs).
        var rng = RandomSource(seed: 6)
        let gradient = try loss.lossAndGradient(batch).gradient
        let directions = [gradient.map { -$0 }, theta0.map { _ in rng.uniform(-1, 1) }]
        let current = try loss.loss(batch).total, search = GridLineSearch(loss: loss)
        for p in directions {
            let trials = try Self.sequentialTrials(loss, batch, theta0, p)
            var expected = 0.0, best = current
            for (alpha, trial) in zip(lineSearchGrid, trials) where trial < best { best = trial; expected = alpha }
            let alpha = try theta0.withUnsafeBufferPointer { t in
                try p.withUnsafeBufferPointer { try search.search(batch, from: t.baseAddress!, along: $0.baseAddress!, below: current) }
            }
            #expect(alpha == expected, "grid search picked \(alpha), the sequential evaluation \(expected) (trials \(trials))")
            #expect(net.parameters == theta0, "the line search changed the network's parameters")
            // Below the smallest trial loss nothing is accepted (the trials' output-only pass sums in
            // another order than the full pass: a margin of 1e-12 relative).
            let floor = trials.min()! * (1 - 1e-12)
            let none = try theta0.withUnsafeBufferPointer { t in
                try p.withUnsafeBufferPointer { try search.search(batch, from: t.baseAddress!, along: $0.baseAddress!, below: floor) }
            }
            #expect(none == 0, "a search below every trial loss returned α = \(none)")
        }
        // With two library threads the trials ran on two threads, the 200 points in one chunk.
        if BLAS.numThreads >= 2 {
            #expect(search.twin != nil, "the second-thread loss was not used")
            let chunks = search.trialChunks?.chunks.count ?? 0
            #expect(chunks == 1, "\(chunks) trial chunks of the 200 points (expected 1)")
        }
    }
}

extension LineSearchTests {
    @Test("the loss evaluated chunk by chunk (as the line-search trials do) equals the loss of the whole batch, for operators with and without ∇u",
          arguments: [[2, 12, 1], [2, 12, 12, 1]])
    func chunkedLoss(widths: [Int]) throws {
        let net = try MLP(widths: widths, seed: 7)
        let poisson = try Operator.poisson(dimension: 2)
        let drift = try Operator(dimension: 2, secondOrder: .diagonal([-1, -0.5]), drift: [0.7, -0.4])
        let nonlinear = try Operator(dimension: 2, secondOrder: .diagonal([-1, -1]), nonlinearity: .negativeGradientNormSquared(first: 0))
        #expect(!poisson.readsGradient && drift.readsGradient && nonlinear.readsGradient)
        for op in [poisson, drift, nonlinear] {
            try checkChunkedLoss(net, op)
        }
    }

    func checkChunkedLoss(_ net: MLP, _ op: Operator) throws {
        let loss = try PINNLoss(network: net, operator: op)
        let batch = try Poisson2D.batch(interior: 301, boundary: 45, seed: 8)
        let whole = try loss.loss(batch).total
        for size in [1, 37, 100, 300, 301, 1000] {
            let chunks = batch.chunks(maxInterior: size)
            #expect(chunks.count == (301 + size - 1) / size)
            #expect(chunks.map(\.interiorCount).reduce(0, +) == 301 && chunks.map(\.boundaryCount).reduce(0, +) == 45)
            #expect(chunks.flatMap(\.interiorPoints) == batch.interiorPoints && chunks.flatMap(\.boundaryValues) == batch.boundaryValues)
            let chunked = try net.parameters.withUnsafeBufferPointer { try loss.loss(chunks, at: $0.baseAddress!, squares: Buffer()) }
            let difference = abs((chunked ?? .nan) - whole) / whole
            #expect(difference < 1e-13, "\(chunks.count) chunks: relative difference \(difference) from the whole batch's loss")
        }
    }
}

extension LineSearchTests {
    @Test("the output-only pass of the trials (last hidden layer fused with the output) gives the full pass's output",
          arguments: [([2, 64, 1], Activation.tanh), ([3, 40, 30, 1], .tanh), ([2, 8, 8, 8, 1], .tanh), ([2, 16, 1], .sigmoid)])
    func outputOnlyPassMatchesFullPass(widths: [Int], activation: Activation) throws {
        let d = widths[0], n = 700   // 700 points × 64 or 40 units: the fused layer splits its samples over two threads
        let net = try MLP(widths: widths, activation: activation, seed: 21)
        let x = randomPoints(n, d, seed: 22)
        var rng = RandomSource(seed: 23)
        let theta = net.parameters.map { $0 + 0.1 * rng.uniform(-1, 1) }
        var dense = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0..<d { dense[i * d + j] = i == j ? 1.5 + Double(i) : 0.3 / Double(1 + i + j) } }
        let modes: [(String, TaylorPass.Mode)] = [("value", .value), ("Laplacian", .taylor(Coefficients(diagonal: [Double](repeating: 1, count: d)))),
                                                 ("dense C", .taylor(Coefficients(dense: dense, dimension: d)))]
        for (name, mode) in modes {
            let trial = TaylorPass(network: net), full = TaylorPass(network: net)
            try theta.withUnsafeBufferPointer { try trial.forward(x, count: n, mode: mode, parameters: $0.baseAddress!) }
            let original = net.parameters
            try net.setParameters(theta)
            defer { net.assignParameters(original) }
            try full.forward(x, count: n, mode: mode)
            let size = n * full.columnsPerSample
            let got = Array(UnsafeBufferPointer(start: trial.output, count: size))
            let expected = Array(UnsafeBufferPointer(start: full.output, count: size))
            let difference = maxRelativeDifference(got, expected)
            #expect(difference < 1e-13, "\(widths) \(activation), \(name): max relative difference \(difference)")
        }
    }
}

extension LineSearchTests {
    @Test("trial chunks: a first chunk of an eighth of the points (at least the minimum), the rest in equal chunks, none above the maximum")
    func trialChunkSizes() {
        for (n, minimum, maximum) in [(1, 32, 256), (31, 32, 256), (33, 32, 256), (300, 32, 256), (900, 32, 1024), (3000, 32, 585), (100, 32, 256), (5000, 8, 100)] {
            let sizes = Batch.trialChunkSizes(n, minimum: minimum, maximum: maximum)
            #expect(sizes.reduce(0, +) == n && sizes.allSatisfy { $0 > 0 && $0 <= maximum }, "n \(n): sizes \(sizes)")
            #expect(sizes[0] == min(n, maximum, max(minimum, (n + 7) / 8)), "n \(n): first chunk \(sizes[0])")
            let rest = sizes.dropFirst()
            #expect((rest.max() ?? 0) - (rest.min() ?? 0) <= 1, "n \(n): unequal later chunks \(sizes)")
            #expect(rest.count == (n - sizes[0] + maximum - 1) / maximum, "n \(n): \(rest.count) later chunks")
        }
    }

    @Test("a trial stops once its loss over the chunks so far exceeds the best loss found, and the search still picks the α a full evaluation of every trial picks")
    func trialsStopEarly() throws {
        // 400 points × S = 4 × Σ h_l h_(l+1) = 4288: 6.9·10^6 multiply-adds per trial, above
        // `earlyStopWork`, so the trials start with a chunk of 50 points.
        let net = try MLP(widths: [2, 64, 64, 1], seed: 9), op = try Operator.poisson(dimension: 2)
        let loss = try PINNLoss(network: net, operator: op)
        let batch = try Poisson2D.batch(interior: 400, boundary: 60, seed: 10)
        // Trained a little, so that random directions overshoot the loss by far at large α.
        let kfac = try KFAC(network: net, operator: op, options: KFAC.Options())
        for _ in 0..<20 { _ = try kfac.step(batch) }
        let theta0 = net.parameters, current = try loss.loss(batch).total
        var rng = RandomSource(seed: 11)
        let gradient = try loss.lossAndGradient(batch).gradient
        let directions = [gradient.map { -$0 }, theta0.map { _ in rng.uniform(-1, 1) }, theta0.map { _ in 3 * rng.uniform(-1, 1) }]
        let search = GridLineSearch(loss: loss)
        for (k, p) in directions.enumerated() {
            let alpha = try theta0.withUnsafeBufferPointer { t in
                try p.withUnsafeBufferPointer { try search.search(batch, from: t.baseAddress!, along: $0.baseAddress!, below: current) }
            }
            let chunks = try #require(search.trialChunks?.chunks)
            #expect(chunks.map(\.interiorCount) == [50, 350], "trial chunks \(chunks.map(\.interiorCount))")
            // Every trial in full, over the same chunks.
            let full = try lineSearchGrid.map { a in
                let theta = zip(theta0, p).map { $0 + a * $1 }
                return try theta.withUnsafeBufferPointer { try loss.loss(chunks, at: $0.baseAddress!, squares: Buffer()) } ?? .infinity
            }
            var expected = 0.0, best = current
            for (a, value) in zip(lineSearchGrid, full) where value < best { best = value; expected = a }
            #expect(alpha == expected, "direction \(k): the search picked \(alpha), the full evaluation \(expected) (trials \(full))")
            // A finished trial's loss is the full one; a stopped trial's full loss exceeds the best.
            let kept = Array(UnsafeBufferPointer(start: search.trials.pointer, count: lineSearchGrid.count))
            for i in lineSearchGrid.indices {
                if kept[i].isFinite {
                    #expect(kept[i] == full[i], "direction \(k), trial \(i): \(kept[i]) against the full \(full[i])")
                } else {
                    #expect(!(full[i] <= best), "direction \(k), trial \(i) stopped, but its full loss \(full[i]) is not above the best \(best)")
                }
            }
            let evaluations = search.chunkEvaluations.load(ordering: .relaxed)
            #expect(evaluations <= 2 * lineSearchGrid.count)
            if k > 0 {
                // Random directions overshoot by far at the largest step sizes: those trials stop after one chunk.
                let stoppedFirst = full.filter { $0 > 8 * best }.count
                #expect(stoppedFirst >= 3 && evaluations <= 2 * lineSearchGrid.count - stoppedFirst,
                        "direction \(k): \(evaluations) chunk passes, \(stoppedFirst) trials 8 times above the best")
            }
        }
        #expect(net.parameters == theta0)
    }
}
