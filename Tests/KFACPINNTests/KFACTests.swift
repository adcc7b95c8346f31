import Testing
@testable import KFACPINN

struct KFACTests {
    @Test("bad options are rejected and leave the options unchanged")
    func badOptions() throws {
        let net = try MLP(widths: [2, 4, 1], seed: 1)
        let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2))
        let before = kfac.options
        for (option, value) in [(OptimizerOption.damping, OptionValue.double(0)), (.damping, .double(-1)),
                                (.damping, .double(.nan)), (.ema, .double(1)), (.ema, .double(-0.1)),
                                (.momentum, .double(1.5)), (.learningRate, .double(0)), (.factorPeriod, .int(0)),
                                (.inversePeriod, .int(-2)), (.stepRule, .string("newton")), (.damping, .string("x")),
                                (.approximation, .string("diagonal")), (.factorInitialization, .string("random")),
                                (.minDamping, .double(0)), (.minDamping, .double(-1e-8)), (.minDamping, .double(.infinity)),
                                (.minDamping, .double(1e9))] {
            #expect(throws: KFPError.self, "\(option) = \(value)") { try kfac.setOption(option, value) }
        }
        #expect(kfac.options == before)
        var bad = KFAC.Options()
        bad.ema = 2
        #expect(throws: KFPError.self) { try KFAC(network: net, operator: try Operator.poisson(dimension: 2), options: bad) }
        try kfac.setOption(.stepRule, .string("auto"))
        #expect(kfac.options.stepRule == .automatic)
        #expect(try kfac.option(.damping) == .double(1e-10))
    }

    @Test("a failed step leaves parameters and optimizer state unchanged")
    func failedStepChangesNothing() throws {
        let net = try MLP(widths: [2, 6, 1], seed: 2)
        let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2))
        let batch = try Poisson2D.batch(interior: 30, boundary: 10, seed: 1)
        _ = try kfac.step(batch)
        let theta = net.parameters, steps = kfac.stepCount, previous = kfac.previousUpdate
        let factors = kfac.blocks.map(\.state.a1)
        // A batch of the wrong dimension.
        let batch3 = try smallBatch(3, interior: 4, boundary: 2, seed: 1)
        #expect(throws: KFPError.self) { try kfac.step(batch3) }
        // A non-finite loss: f so large that r² overflows.
        let huge = try Batch(dimension: 2, interiorPoints: [0.5, 0.5], source: [1e200])
        #expect(throws: KFPError.nonFinite("the loss is not finite (interior inf, boundary 0.0)")) { try kfac.step(huge) }
        #expect(net.parameters == theta)
        #expect(kfac.stepCount == steps)
        #expect(kfac.previousUpdate == previous)
        #expect(kfac.blocks.map(\.state.a1) == factors)
    }

    @Test("an update that would make the parameters non-finite is rejected")
    func overflowingUpdate() throws {
        let net = try MLP(widths: [2, 6, 1], seed: 2)
        var options = KFAC.Options()
        options.stepRule = .fixed
        options.learningRate = .greatestFiniteMagnitude
        let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2), options: options)
        let batch = try Poisson2D.batch(interior: 30, boundary: 10, seed: 1)
        let theta = net.parameters, factors = kfac.blocks.map(\.state.b1)
        #expect(throws: KFPError.self) { try kfac.step(batch) }
        // The rejected direction had entries beyond 1, so θ + lr·Δ overflowed.
        #expect(kfac.direction.contains { abs($0) > 1 })
        #expect(net.parameters == theta && kfac.stepCount == 0 && !kfac.hasPreviousUpdate)
        #expect(kfac.blocks.map(\.state.b1) == factors)
    }

    @Test("a line search that finds no lower loss does not move the parameters")
    func lineSearchWithoutDecrease() throws {
        // At a minimiser of the loss (a zero network for f = 0, g = 0) no step lowers it.
        let net = try MLP(widths: [2, 3, 1], seed: 5)
        try net.setParameters([Double](repeating: 0, count: net.numParameters))
        let batch = try Batch(dimension: 2, interiorPoints: [0.2, 0.3, 0.6, 0.1], source: [0, 0],
                              boundaryPoints: [0, 0.5], boundaryValues: [0])
        let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2))
        let stats = try kfac.step(batch)
        #expect(!stats.accepted && stats.stepSize == 0 && stats.loss == 0)
        #expect(net.parameters.allSatisfy { $0 == 0 })
        // KFAC* at the minimiser: a zero gradient gives a zero step, not an error.
        try kfac.setOption(.stepRule, .string("auto"))
        let auto = try kfac.step(batch)
        #expect(auto.stepSize == 0 && auto.updateNorm == 0)
        #expect(net.parameters.allSatisfy { $0 == 0 })
    }

    @Test("a new damping takes effect at the next step also between refactorisations (inverse_period > 1)")
    func changedDampingRefactorizes() throws {
        let batch = try smallBatch(2, interior: 30, boundary: 10, seed: 1)
        func make() throws -> KFAC {
            let kfac = try KFAC(network: try MLP(widths: [2, 5, 4, 1], seed: 3), operator: try Operator.poisson(dimension: 2))
            try kfac.setOption(.inversePeriod, .int(5))
            _ = try kfac.step(batch)
            return kfac
        }
        let (changed, kept) = (try make(), try make())
        let factorization = kept.blocks.map { $0.state.inverse.k1 + $0.state.inverse.s1 + $0.state.inverse.k2 + $0.state.inverse.factors }
        try changed.setOption(.damping, .double(1e-3))
        _ = try changed.step(batch)
        _ = try kept.step(batch)
        let after = { (k: KFAC) in k.blocks.map { $0.state.inverse.k1 + $0.state.inverse.s1 + $0.state.inverse.k2 + $0.state.inverse.factors } }
        #expect(after(kept) == factorization, "the kept damping refactorised before inverse_period steps")
        #expect(after(changed) != factorization && changed.factorizationDamping == 1e-3, "the new damping was not used")
    }

    @Test("KFAC*'s adaptive damping follows Levenberg–Marquardt with ρ from the dense GGN; a step that raises the loss is not taken")
    func adaptiveDampingFollowsTheReductionRatio() throws {
        // The log Fokker–Planck operator is nonlinear: the Gauss–Newton model is only approximate.
        let op = try Operator.logFokkerPlanck(spaceDimension: 1)
        let net = try MLP(widths: [2, 6, 5, 1], seed: 2)
        let batch = try smallBatch(2, interior: 20, boundary: 8, seed: 3)
        let kfac = try KFAC(network: net, operator: op)
        try kfac.setOption(.stepRule, .string("auto"))
        #expect(try kfac.option(.dampingRule) == .string("adaptive"))
        let loss = try PINNLoss(network: net, operator: op)
        var branches: Set<String> = []
        for step in 0..<40 {
            let theta = net.parameters, lambda = kfac.options.damping, before = try loss.loss(batch).total
            let (ji, jb) = try denseJacobians(net, op, batch)
            try net.setParameters(theta)
            let g = try loss.lossAndGradient(batch).gradient
            let previous = kfac.previousUpdate
            let stats = try kfac.step(batch)
            let after = try loss.loss(batch).total, lambdaAfter = kfac.options.damping
            guard stats.accepted else {
                // Not taken: θ and the previous update stay, λ grows tenfold.
                #expect(net.parameters == theta && kfac.previousUpdate == previous, "step \(step)")
                #expect(lambdaAfter == min(10 * lambda, 1e8), "step \(step): λ \(lambda) → \(lambdaAfter)")
                branches.insert("rejected")
                continue
            }
            // ρ = (L⁺ − L) / (gᵀδ + ½ δᵀGδ), G = J_Ωᵀ J_Ω / N_Ω + J_∂ᵀ J_∂ / N_∂ from dense Jacobians.
            let D = theta.count, delta = zip(net.parameters, theta).map { $0 - $1 }
            func squaredNorm(_ j: [Double], _ rows: Int) -> Double {
                (0..<rows).reduce(0.0) { sum, k in let v = (0..<D).reduce(0.0) { $0 + j[k * D + $1] * delta[$1] }; return sum + v * v }
            }
            let curvature = squaredNorm(ji, 20) / 20 + squaredNorm(jb, 8) / 8
            let rho = (after - before) / (zip(g, delta).reduce(0.0) { $0 + $1.0 * $1.1 } + 0.5 * curvature)
            #expect(after < before, "step \(step): an accepted step raised the loss \(before) → \(after)")
            let expected = rho < 0.25 ? lambda * 1.5 : rho > 0.75 ? lambda / 1.5 : lambda
            #expect(abs(lambdaAfter - min(max(expected, 1e-14), 1e8)) <= 1e-12 * expected,
                    "step \(step): ρ = \(rho), λ \(lambda) → \(lambdaAfter), expected \(expected)")
            branches.insert(rho < 0.25 ? "raised" : rho > 0.75 ? "lowered" : "kept")
        }
        #expect(branches.isSuperset(of: ["rejected", "lowered"]), "branches seen: \(branches)")
    }

    @Test("the adaptive damping never falls below min_damping, and the bound is what stops its fall")
    func adaptiveDampingFloor() throws {
        // A batch of 6 + 4 points for 61 parameters: each step fits its batch, ρ stays near 1 and λ
        // falls by 1.5 per step until the floor.
        func run(minDamping: Double?) throws -> [Double] {
            let net = try MLP(widths: [2, 6, 6, 1], seed: 4)
            let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2))
            try kfac.setOption(.stepRule, .string("auto"))
            try kfac.setOption(.damping, .double(1e-3))
            if let minDamping { try kfac.setOption(.minDamping, .double(minDamping)) }
            return try (0..<60).map { step in
                _ = try kfac.step(try Poisson2D.batch(interior: 6, boundary: 4, seed: UInt64(step)))
                return kfac.options.damping
            }
        }
        let free = try run(minDamping: nil), floored = try run(minDamping: 1e-6)
        #expect(free.min()! < 1e-7, "without a bound λ only fell to \(free.min()!)")
        #expect(floored.min()! == 1e-6, "with min_damping 1e-6 λ reached \(floored.min()!)")
        #expect(try KFAC(network: try MLP(widths: [2, 3, 1], seed: 1), operator: try Operator.poisson(dimension: 2))
                    .option(.minDamping) == .double(1e-14))
    }

    @Test("a failed factorisation is retried with the damping raised tenfold, up to four times, then reported")
    func failedFactorizationRetriesWithMoreDamping() throws {
        // Layer 1's B factor gets an eigenvalue −e; with ema close to 1 it stays about −e, so the
        // damped factor is definite from λ > e on: λ = 1e-6 · 10^k succeeds at k = 4 (λ = 1e-2) for e = 2e-3
        // and never (k ≤ 4) for e = 10.
        func step(_ e: Double) throws -> (StepStatistics, MLP) {
            let net = try MLP(widths: [2, 5, 4, 1], seed: 3)
            let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2))
            try kfac.setOption(.damping, .double(1e-6))
            try kfac.setOption(.ema, .double(1 - 1e-9))
            kfac.blocks[1].state.b1[0] = -e
            return (try kfac.step(try smallBatch(2, interior: 30, boundary: 10, seed: 1)), net)
        }
        let (stats, _) = try step(2e-3)
        #expect(abs(stats.damping - 1e-2) < 1e-12, "damping used: \(stats.damping)")
        do {
            let (_, net) = try step(10)
            Issue.record("an indefinite factor beyond four retries was accepted: \(net.parameters.prefix(2))")
        } catch let KFPError.numerical(message) {
            #expect(message.contains("not positive definite") && message.contains("raised to"), "\(message)")
        }
    }

    @Test("a retry raises the damping to at least 1e-10 times the largest factor diagonal")
    func retryDampingIsRelativeToTheFactors() throws {
        // Layer 1's B factor: diagonal 1e8 and one eigenvalue −1e-3 (−1e-11 relative: rounding
        // level). From λ = 1e-14, four tenfold retries reach 1e-10 and fail; the relative floor
        // 1e-10 · 1e8 = 1e-2 cures it at the first retry.
        let net = try MLP(widths: [2, 5, 4, 1], seed: 3)
        let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2))
        try kfac.setOption(.damping, .double(1e-14))
        try kfac.setOption(.ema, .double(1 - 1e-9))
        for i in 1..<4 { kfac.blocks[1].state.b1[i * 4 + i] = 1e8 }
        kfac.blocks[1].state.b1[0] = -1e-3
        let stats = try kfac.step(try smallBatch(2, interior: 30, boundary: 10, seed: 1))
        #expect(stats.damping >= 0.99e-2 && stats.damping < 1e-1, "damping used: \(stats.damping)")
    }

    @Test("a failed factorisation of the inverses reports the first failing layer, whether the layers run one after another or at once")
    func failedFactorizationNamesTheFirstLayer() throws {
        let net = try MLP(widths: [2, 5, 4, 3, 1], seed: 3)
        let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2))
        // −I is not positive definite: layers 1 (B) and 2 (A) fail, layer 1 first.
        func negated(_ n: Int) -> [Double] { KroneckerBlock.initialFactor(n, .identity).map { -$0 } }
        kfac.blocks[1].state.b1 = negated(4)
        kfac.blocks[2].state.a1 = negated(5)
        let alone = KroneckerBlock(network: net, layer: 3, initialization: .identity)
        alone.prepare(updateFactors: false, refactorize: true)
        try alone.factorize(damping: kfac.options.damping)
        for (threads, label) in [(1, "one after another"), (2, "two at a time")] {
            for block in kfac.blocks { block.prepare(updateFactors: false, refactorize: true) }
            do {
                try kfac.factorizeInverses(threads: threads)
                Issue.record("\(label): the indefinite factors were accepted")
            } catch let KFPError.numerical(message) {
                #expect(message.contains("B factors of layer 1") && message.contains("not positive definite"),
                        "\(label): \(message)")
            }
            // A healthy layer was factorised as it is alone.
            let (got, want) = (kfac.blocks[3].candidate.inverse, alone.candidate.inverse)
            #expect(got.k1 == want.k1 && got.s1 == want.s1 && got.factors == want.factors && !got.factors.isEmpty,
                    "\(label): layer 3 differs from its own factorisation")
        }
    }

    @Test("once warm, steps reuse the storage of the factors and eigenvectors (two sets, swapped per step)")
    func factorStorageIsReused() throws {
        // Layer 0 is narrow (Cholesky factors), layer 1 eigendecomposed on both sides.
        let net = try MLP(widths: [2, 20, 20, 1], seed: 5)
        let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2))
        #expect(kfac.blocks.map(\.state.inverse.method) == [.narrowColumns, .eigen, .narrowRows])
        let batch = try Poisson2D.batch(interior: 50, boundary: 20, seed: 3)
        func addresses() -> [UnsafeRawPointer?] {
            kfac.blocks.map(\.state).flatMap { state in
                [state.a1, state.b1, state.a2, state.b2, state.inverse.k1, state.inverse.k2,
                 state.inverse.factors].filter { !$0.isEmpty }
                    .map { $0.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } }
            }
        }
        var seen: [[UnsafeRawPointer?]] = []
        for _ in 0..<6 {
            _ = try kfac.step(batch)
            seen.append(addresses())
        }
        // Steps 3 and 5, 4 and 6 use the same arrays; consecutive steps different ones.
        let moved = (0..<seen[2].count).filter { seen[2][$0] != seen[4][$0] || seen[3][$0] != seen[5][$0] }
        #expect(moved.isEmpty, "factor or eigenvector storage was reallocated: arrays \(moved) (non-empty ones, in layer order)")
        #expect(seen[4] != seen[5], "consecutive steps share storage")
        // The parameters are updated in place by both step rules (no copy of θ per step).
        for rule in ["line_search", "auto"] {
            try kfac.setOption(.stepRule, .string(rule))
            _ = try kfac.step(batch)
            let before = net.parameters.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
            for _ in 0..<3 { _ = try kfac.step(batch) }
            let after = net.parameters.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
            #expect(before == after, "\(rule): the parameter array was reallocated")
        }
    }

    @Test("the factors are moving averages F ← β F + (1 − β) F_batch of each step's batch factors; a batch without condition points keeps the boundary factors, and with T_kfac = 2 every other step keeps all")
    func factorMovingAverages() throws {
        let beta = 0.6, widths = [2, 7, 5, 1]
        let withBoundary = try Poisson2D.batch(interior: 40, boundary: 12, seed: 7)
        let interiorOnly = try Batch(dimension: 2, interiorPoints: withBoundary.interiorPoints, source: withBoundary.source)
        let batches = [withBoundary, interiorOnly, try Poisson2D.batch(interior: 30, boundary: 9, seed: 8), withBoundary]
        for period in [1, 2] {
            let net = try MLP(widths: widths, seed: 12)
            var options = KFAC.Options()
            options.ema = beta
            options.factorPeriod = period
            let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2), options: options)
            var expected = kfac.blocks.map(\.state).map { [$0.a1, $0.b1, $0.a2, $0.b2] }
            for (step, batch) in batches.enumerated() {
                // The batch's factors at the parameters of this step, from a separate loss.
                let fresh = try PINNLoss(network: net, operator: kfac.loss.op).kroneckerFactors(batch)
                if step % period == 0 {
                    for l in expected.indices {
                        let f = fresh[l]
                        let batchFactors = batch.boundaryCount > 0 ? [f.interiorA, f.interiorB, f.boundaryA, f.boundaryB]
                                                                   : [f.interiorA, f.interiorB]
                        for (k, factor) in batchFactors.enumerated() {
                            expected[l][k] = zip(expected[l][k], factor).map { beta * $0 + (1 - beta) * $1 }
                        }
                    }
                }
                _ = try kfac.step(batch)
                for l in expected.indices {
                    let state = kfac.blocks[l].state, got = [state.a1, state.b1, state.a2, state.b2]
                    for k in 0..<4 {
                        // Upper triangles (the factors are symmetric; solves read the upper one).
                        let n = Int(Double(got[k].count).squareRoot())
                        var difference = 0.0
                        for i in 0..<n { for j in i..<n { difference = max(difference, abs(got[k][i * n + j] - expected[l][k][i * n + j])) } }
                        #expect(difference < 1e-12, "T_kfac \(period), step \(step), layer \(l), factor \(k): max difference \(difference)")
                    }
                }
            }
        }
    }

    @Test("steps are deterministic for a fixed seed and thread count")
    func deterministic() throws {
        func run() throws -> [Double] {
            let net = try MLP(widths: [2, 16, 16, 1], seed: 3)
            var options = KFAC.Options()
            options.momentum = 0.3
            let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2), options: options)
            let batch = try Poisson2D.batch(interior: 100, boundary: 40, seed: 2)
            for _ in 0..<10 { _ = try kfac.step(batch) }
            return net.parameters
        }
        #expect(try run() == run())
    }

    @Test("KFAC-reduce and T_kfac/T_inv > 1 train too")
    func variants() throws {
        let batch = try Poisson2D.batch(interior: 200, boundary: 60, seed: 4)
        for (approximation, periods) in [(KroneckerApproximation.reduce, 1), (.expand, 3)] {
            let net = try MLP(widths: [2, 16, 1], seed: 6)
            var options = KFAC.Options()
            options.approximation = approximation
            options.factorPeriod = periods
            options.inversePeriod = periods
            options.damping = 1e-8
            let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2), options: options)
            let first = try kfac.step(batch).loss
            var last = first
            for _ in 0..<60 { last = try kfac.step(batch).loss }
            #expect(last < 1e-2 * first, "\(approximation), period \(periods): loss \(first) → \(last)")
        }
    }
}
