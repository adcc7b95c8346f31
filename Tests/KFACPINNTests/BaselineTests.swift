import Testing
import Glibc
@testable import KFACPINN

/// Dense Gramian G = J_Ωᵀ J_Ω / N + J_∂ᵀ J_∂ / M (D × D) from dense Jacobians.
func denseGramian(_ ji: [Double], _ n: Int, _ jb: [Double], _ m: Int, _ D: Int) -> [Double] {
    var g = [Double](repeating: 0, count: D * D)
    for (j, rows, w) in [(ji, n, 1 / Double(n)), (jb, m, m > 0 ? 1 / Double(m) : 0)] {
        for k in 0..<rows { for a in 0..<D { for b in 0..<D { g[a * D + b] += w * j[k * D + a] * j[k * D + b] } } }
    }
    return g
}

func difference(_ a: [Double], _ b: [Double]) -> [Double] { zip(a, b).map { $0 - $1 } }

struct BaselineTests {
    let op = try! Operator.poisson(dimension: 2)

    @Test("SGD (heavy ball and Nesterov) matches the first two steps computed by hand")
    func sgdByHand() throws {
        for nesterov in [false, true] {
            let net = try MLP(widths: [2, 6, 1], seed: 1)
            let batch = try smallBatch(2, interior: 12, boundary: 5, seed: 2)
            let loss = try PINNLoss(network: net, operator: op)
            var options = SGD.Options()
            options.learningRate = 0.05
            options.momentum = 0.9
            options.nesterov = nesterov
            let sgd = try SGD(network: net, operator: op, options: options)
            let theta0 = net.parameters, g0 = try loss.lossAndGradient(batch).gradient
            _ = try sgd.step(batch)
            // b₁ = g₀; d = g₀ + μ b₁ (Nesterov) or b₁.
            let d1 = nesterov ? zip(g0, g0).map { $0 + 0.9 * $1 } : g0
            let theta1 = zip(theta0, d1).map { $0 - 0.05 * $1 }
            #expect(maxRelativeDifference(net.parameters, theta1) < 1e-15)
            let g1 = try loss.lossAndGradient(batch).gradient
            _ = try sgd.step(batch)
            let b2 = zip(g0, g1).map { 0.9 * $0 + $1 }
            let d2 = nesterov ? zip(g1, b2).map { $0 + 0.9 * $1 } : b2
            let theta2 = zip(theta1, d2).map { $0 - 0.05 * $1 }
            let diff = maxRelativeDifference(net.parameters, theta2)
            #expect(diff < 1e-14, "nesterov \(nesterov): max difference \(diff)")
        }
    }

    @Test("Adam matches the first two steps computed by hand (bias correction included)")
    func adamByHand() throws {
        let net = try MLP(widths: [2, 6, 1], seed: 3)
        let batch = try smallBatch(2, interior: 12, boundary: 5, seed: 4)
        let loss = try PINNLoss(network: net, operator: op)
        var options = Adam.Options()
        options.learningRate = 0.01
        options.beta1 = 0.8
        options.beta2 = 0.9
        options.epsilon = 1e-6
        let adam = try Adam(network: net, operator: op, options: options)
        var theta = net.parameters
        var m = [Double](repeating: 0, count: theta.count), v = m
        for t in 1...2 {
            let g = try loss.lossAndGradient(batch).gradient
            _ = try adam.step(batch)
            for i in 0..<theta.count {
                m[i] = 0.8 * m[i] + 0.2 * g[i]
                v[i] = 0.9 * v[i] + 0.1 * g[i] * g[i]
                let mhat = m[i] / (1 - pow(0.8, Double(t))), vhat = v[i] / (1 - pow(0.9, Double(t)))
                theta[i] -= 0.01 * mhat / (vhat.squareRoot() + 1e-6)
            }
            let diff = maxRelativeDifference(net.parameters, theta)
            #expect(diff < 1e-14, "step \(t): max difference \(diff)")
        }
    }

    @Test("per-sample Jacobian rows equal central differences of the residuals")
    func jacobianRows() throws {
        for (widths, operatorUnderTest) in [([2, 5, 4, 1], op), ([3, 6, 1], try Operator.heat(spaceDimension: 2, kappa: 0.25)),
                                            ([3, 5, 1], try Operator.logFokkerPlanck(spaceDimension: 2))] {
            let net = try MLP(widths: widths, seed: 5)
            let batch = try smallBatch(widths[0], interior: 7, boundary: 4, seed: 6)
            let loss = try PINNLoss(network: net, operator: operatorUnderTest)
            let (ji, jb) = try loss.jacobians(batch)
            let (fi, fb) = try denseJacobians(net, operatorUnderTest, batch)
            let diff = max(maxRelativeDifference(ji, fi), maxRelativeDifference(jb, fb))
            #expect(diff < 1e-7, "\(widths): max difference \(diff)")
        }
    }

    /// One ENGD step with a fixed learning rate 1 and its direction −(G + λI)⁻¹∇L from dense
    /// finite-difference Jacobians, restricted to `blocks` (diagonal: one block per parameter).
    func engdStep(_ variant: ENGD.Variant) throws -> (step: [Double], dense: [Double]) {
        let net = try MLP(widths: [2, 5, 4, 1], seed: 7)
        let batch = try smallBatch(2, interior: 9, boundary: 4, seed: 8)
        let D = net.numParameters, lambda = 1e-3
        let (ji, jb) = try denseJacobians(net, op, batch)
        let G = denseGramian(ji, 9, jb, 4, D)
        let grad = try PINNLoss(network: net, operator: op).lossAndGradient(batch).gradient
        let blocks: [Range<Int>]
        switch variant {
        case .full, .woodbury, .nystrom: blocks = [0..<D]
        case .perLayer: blocks = ENGD.blocks(try PINNLoss(network: net, operator: op), .perLayer)
        case .diagonal: blocks = (0..<D).map { $0..<($0 + 1) }
        }
        var dense = [Double](repeating: 0, count: D)
        for r in blocks {
            let n = r.count
            var m = [Double](repeating: 0, count: n * n)
            for a in 0..<n { for b in 0..<n { m[a * n + b] = G[(r.lowerBound + a) * D + r.lowerBound + b] } }
            for a in 0..<n { m[a * n + a] += lambda }
            let x = denseSolve(m, Array(grad[r]))
            for a in 0..<n { dense[r.lowerBound + a] = -x[a] }
        }
        var options = ENGD.Options()
        options.variant = variant
        options.rank = 13          // nystrom: k = M, the exact kernel
        options.damping = lambda
        options.stepRule = .fixed
        options.learningRate = 1
        let engd = try ENGD(network: net, operator: op, options: options)
        let theta0 = net.parameters
        _ = try engd.step(batch)
        return (difference(net.parameters, theta0), dense)
    }

    @Test("ENGD directions (full, per-layer, diagonal, woodbury) equal dense solves with the dense Jacobian",
          arguments: ENGD.Variant.allCases)
    func engdDirection(_ variant: ENGD.Variant) throws {
        let (step, dense) = try engdStep(variant)
        let diff = maxRelativeDifference(step, dense)
        #expect(diff < 1e-6, "\(variant): max difference \(diff)")
    }

    @Test("ENGD's moving average: the second step uses β G₁ + (1 − β) G₂")
    func engdMovingAverage() throws {
        let net = try MLP(widths: [2, 4, 1], seed: 9)
        let b1 = try smallBatch(2, interior: 8, boundary: 3, seed: 10), b2 = try smallBatch(2, interior: 6, boundary: 4, seed: 11)
        let D = net.numParameters, lambda = 1e-2, beta = 0.3
        var options = ENGD.Options()
        options.damping = lambda
        options.ema = beta
        options.stepRule = .fixed
        options.learningRate = 0.5
        let engd = try ENGD(network: net, operator: op, options: options)
        let (ji1, jb1) = try denseJacobians(net, op, b1)
        let g1 = denseGramian(ji1, 8, jb1, 3, D)
        _ = try engd.step(b1)
        let theta1 = net.parameters
        let (ji2, jb2) = try denseJacobians(net, op, b2)
        let g2 = denseGramian(ji2, 6, jb2, 4, D)
        let grad = try PINNLoss(network: net, operator: op).lossAndGradient(b2).gradient
        var m = zip(g1, g2).map { beta * $0 + (1 - beta) * $1 }
        for a in 0..<D { m[a * D + a] += lambda }
        let expected = zip(theta1, denseSolve(m, grad)).map { $0 - 0.5 * $1 }
        _ = try engd.step(b2)
        let diff = maxRelativeDifference(net.parameters, expected)
        #expect(diff < 1e-6, "max difference \(diff)")
    }

    @Test("ENGD refuses a Gramian above max_parameters with a clear error and changes nothing")
    func engdSizeLimit() throws {
        let net = try MLP(widths: [2, 16, 16, 1], seed: 1)
        var options = ENGD.Options()
        options.maxParameters = 300
        let engd = try ENGD(network: net, operator: op, options: options)
        let theta = net.parameters, batch = try smallBatch(2, interior: 5, boundary: 2, seed: 1)
        #expect { _ = try engd.step(batch) } throws: { "\($0)".contains("max_parameters = 300") && "\($0)".contains("337 × 337") }
        #expect(net.parameters == theta && engd.stepCount == 0)
        try engd.setOption(.variant, .string("per_layer"))
        _ = try engd.step(batch)
        #expect(engd.stepCount == 1)
        #expect(throws: KFPError.self) { try engd.setOption(.ema, .double(0.5)); try engd.setOption(.variant, .string("woodbury")) }
        #expect(try engd.option(.variant) == .string("per_layer"))
    }

    @Test("Hessian-free: the CG solution equals a dense solve of (G + λI) x = −∇L")
    func hessianFreeCG() throws {
        let net = try MLP(widths: [2, 4, 1], seed: 12)
        let batch = try smallBatch(2, interior: 20, boundary: 8, seed: 13)
        let D = net.numParameters, lambda = 1e-2
        let (ji, jb) = try denseJacobians(net, op, batch)
        var m = denseGramian(ji, 20, jb, 8, D)
        for a in 0..<D { m[a * D + a] += lambda }
        let grad = try PINNLoss(network: net, operator: op).lossAndGradient(batch).gradient
        let dense = denseSolve(m, grad.map { -$0 })
        var options = HessianFree.Options()
        options.damping = lambda
        options.maxCGIterations = 200
        let hf = try HessianFree(network: net, operator: op, options: options)
        _ = try hf.step(batch)
        let diff = maxRelativeDifference(hf.previous, dense)
        #expect(diff < 1e-6, "max difference \(diff) after \(hf.lastIterations) CG iterations")
    }

    @Test("L-BFGS two-loop recursion equals −H g with H from dense inverse-BFGS updates")
    func twoLoopRecursion() throws {
        let D = 7
        var rng = RandomSource(seed: 21)
        var pairs: [(s: [Double], y: [Double])] = []
        // y = A s with A symmetric positive definite, so sᵀy > 0.
        var a = [Double](repeating: 0, count: D * D)
        for i in 0..<D { for j in 0..<D { a[i * D + j] = rng.uniform(-0.3, 0.3) } }
        var spd = [Double](repeating: 0, count: D * D)
        for i in 0..<D { for j in 0..<D { for k in 0..<D { spd[i * D + j] += a[k * D + i] * a[k * D + j] } }; spd[i * D + i] += 1 }
        for _ in 0..<4 {
            let s = (0..<D).map { _ in rng.uniform(-1, 1) }
            let y = (0..<D).map { i in (0..<D).reduce(0.0) { $0 + spd[i * D + $1] * s[$1] } }
            pairs.append((s, y))
        }
        let g = (0..<D).map { _ in rng.uniform(-1, 1) }
        // H₀ = γ I with γ from the newest pair, then H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, oldest first.
        func dot(_ u: [Double], _ v: [Double]) -> Double { zip(u, v).reduce(0) { $0 + $1.0 * $1.1 } }
        let gamma = dot(pairs.last!.s, pairs.last!.y) / dot(pairs.last!.y, pairs.last!.y)
        var h = [Double](repeating: 0, count: D * D)
        for i in 0..<D { h[i * D + i] = gamma }
        for (s, y) in pairs {
            let rho = 1 / dot(s, y)
            var left = [Double](repeating: 0, count: D * D)   // (I − ρ s yᵀ) H
            for i in 0..<D { for j in 0..<D {
                var sum = h[i * D + j]
                for k in 0..<D { sum -= rho * s[i] * y[k] * h[k * D + j] }
                left[i * D + j] = sum
            } }
            for i in 0..<D { for j in 0..<D {
                var sum = left[i * D + j]
                for k in 0..<D { sum -= rho * left[i * D + k] * y[k] * s[j] }
                h[i * D + j] = sum + rho * s[i] * s[j]
            } }
        }
        let dense = (0..<D).map { i in -(0..<D).reduce(0.0) { $0 + h[i * D + $1] * g[$1] } }
        let diff = maxRelativeDifference(LBFGS.twoLoop(g, pairs: pairs), dense)
        #expect(diff < 1e-13, "max difference \(diff)")
    }

    @Test("L-BFGS steps satisfy the strong Wolfe conditions and report the loss before the step")
    func lbfgsWolfe() throws {
        let net = try MLP(widths: [2, 8, 1], seed: 14)
        let batch = try Poisson2D.batch(interior: 60, boundary: 20, seed: 15)
        let loss = try PINNLoss(network: net, operator: op)
        let lbfgs = try LBFGS(network: net, operator: op)
        var accepted = 0
        for _ in 0..<20 {
            let (before, g0) = try loss.lossAndGradient(batch)
            let theta0 = net.parameters
            let stats = try lbfgs.step(batch)
            #expect(stats.loss == before.total)
            guard stats.accepted else { continue }
            accepted += 1
            let step = difference(net.parameters, theta0)
            let (after, g1) = try loss.lossAndGradient(batch)
            let slope0 = zip(g0, step).reduce(0) { $0 + $1.0 * $1.1 }, slope1 = zip(g1, step).reduce(0) { $0 + $1.0 * $1.1 }
            #expect(slope0 < 0)
            #expect(after.total <= before.total + 1e-4 * slope0)
            #expect(abs(slope1) <= 0.9 * abs(slope0), "curvature condition: |φ'(t)| = \(abs(slope1)), |φ'(0)| = \(abs(slope0))")
        }
        #expect(accepted == 20)
    }

    @Test("L-BFGS after a long Adam phase keeps lowering the loss, step after step, without non-finite values")
    func lbfgsAfterAdam() throws {
        let net = try MLP(widths: [2, 16, 1], seed: 4)
        let batch = try Poisson2D.batch(interior: 200, boundary: 60, seed: 5)
        var adamOptions = Adam.Options()
        adamOptions.learningRate = 0.01
        let adam = try Adam(network: net, operator: op, options: adamOptions)
        for _ in 0..<1000 { _ = try adam.step(batch) }
        var options = LBFGS.Options()
        options.history = 50
        let lbfgs = try LBFGS(network: net, operator: op, options: options)
        var losses: [Double] = [], accepted = 0
        for _ in 0..<300 {
            let stats = try lbfgs.step(batch)
            losses.append(stats.loss)
            if stats.accepted { accepted += 1 }
            #expect(stats.loss.isFinite && stats.updateNorm.isFinite)
        }
        let final = try PINNLoss(network: net, operator: op).loss(batch).total
        let monotone = zip(losses, losses.dropFirst()).allSatisfy { $1 <= $0 }
        #expect(monotone, "the loss rose between steps")
        #expect(accepted >= 295, "\(accepted) of 300 steps accepted")
        #expect(final < 0.1 * losses[0], "loss after Adam \(losses[0]) → after 300 L-BFGS steps \(final)")
        let finite = net.parameters.allSatisfy(\.isFinite)
        #expect(finite)
    }

    @Test("every baseline lowers the loss on 2-d Poisson", arguments: ["sgd", "adam", "lbfgs", "engd", "hessian_free"])
    func baselinesLowerTheLoss(_ name: String) throws {
        let net = try MLP(widths: [2, 16, 1], seed: 2)
        let batch = try Poisson2D.batch(interior: 200, boundary: 60, seed: 3)
        let optimizer = try makeBaseline(name, net)
        let first = try optimizer.step(batch).loss
        var last = first
        for _ in 0..<60 { last = try optimizer.step(batch).loss }
        #expect(last < 0.5 * first, "\(name): loss \(first) → \(last)")
    }

    func makeBaseline(_ name: String, _ net: MLP) throws -> any Optimizer {
        switch name {
        case "sgd":
            let o = try SGD(network: net, operator: op)
            try o.setOption(.learningRate, .double(0.01)); try o.setOption(.momentum, .double(0.9))
            return o
        case "adam":
            let o = try Adam(network: net, operator: op)
            try o.setOption(.learningRate, .double(0.01))
            return o
        case "lbfgs": return try LBFGS(network: net, operator: op)
        case "engd": return try ENGD(network: net, operator: op)
        default: return try HessianFree(network: net, operator: op)
        }
    }

    @Test("invalid hyperparameters are rejected with a message and leave the options unchanged")
    func badHyperparameters() throws {
        let net = try MLP(widths: [2, 4, 1], seed: 1)
        let cases: [(String, OptimizerOption, OptionValue, String)] = [
            ("sgd", .learningRate, .double(-1), "learning rate"), ("sgd", .momentum, .double(1), "momentum"),
            ("sgd", .nesterov, .int(2), "0 or 1"), ("adam", .beta1, .double(1), "beta1"),
            ("adam", .beta2, .double(-0.1), "beta2"), ("adam", .epsilon, .double(0), "epsilon"),
            ("lbfgs", .history, .int(0), "history"), ("lbfgs", .maxEvaluations, .int(0), "max_evaluations"),
            ("engd", .damping, .double(.nan), "damping"), ("engd", .variant, .string("kfac"), "variant"),
            ("engd", .ema, .double(1), "ema"), ("hessian_free", .damping, .double(0), "damping"),
            ("hessian_free", .maxCGIterations, .int(-3), "max_cg_iterations"), ("adam", .history, .int(3), "does not apply"),
        ]
        for (name, option, value, message) in cases {
            let optimizer = try makeBaseline(name, net)
            let before = try? optimizer.option(option)
            #expect { try optimizer.setOption(option, value) } throws: { "\($0)".contains(message) }
            #expect((try? optimizer.option(option)) == before, "\(name) \(option)")
        }
    }

    @Test("a step with a non-finite loss is rejected and leaves parameters and state unchanged",
          arguments: ["sgd", "adam", "lbfgs", "engd", "hessian_free"])
    func nonFiniteStepRejected(_ name: String) throws {
        let net = try MLP(widths: [2, 4, 1], seed: 1), twinNet = try MLP(widths: [2, 4, 1], seed: 1)
        let batch = try smallBatch(2, interior: 10, boundary: 4, seed: 2)
        // r² overflows: f = 1e200 at one point.
        let overflow = try Batch(dimension: 2, interiorPoints: [0.1, 0.2], source: [1e200])
        let optimizer = try makeBaseline(name, net), twin = try makeBaseline(name, twinNet)
        _ = try optimizer.step(batch)
        _ = try twin.step(batch)
        let theta = net.parameters
        #expect { _ = try optimizer.step(overflow) } throws: { "\($0)".contains("not finite") }
        #expect(net.parameters == theta)
        // The state is as before: the next steps equal those of a twin that never saw the bad batch.
        for _ in 0..<2 {
            _ = try optimizer.step(batch)
            _ = try twin.step(batch)
        }
        #expect(net.parameters == twinNet.parameters)
    }
}
