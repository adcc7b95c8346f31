import Testing
import KFACPINN
import Glibc

/// The loss gradient of every operator against central finite differences of the loss.
struct LossTests {
    static func generalOperator() throws -> Operator {
        // Non-diagonal C, affine drift and reaction: every term of the residual is active.
        try Operator(dimension: 3, secondOrder: .matrix([1.0, 0.3, -0.2, 0.3, 0.5, 0.1, -0.2, 0.1, 0.8]),
                     drift: [0.4, -0.7, 0.2], driftJacobian: [0.1, 0, 0.3, -0.2, 0.5, 0, 0, 0.1, -0.4],
                     reaction: -1.5, reactionGradient: [0.2, 0.1, -0.3])
    }

    static func makeOperator(_ name: String) throws -> Operator {
        switch name {
        case "poisson": return try Operator.poisson(dimension: 3)
        case "heat": return try Operator.heat(spaceDimension: 2, kappa: 0.25)
        case "linear": return try generalOperator()
        default: return try Operator.logFokkerPlanck(spaceDimension: 2)
        }
    }

    @Test("∇L matches central finite differences of L", arguments: ["poisson", "heat", "linear", "log_fokker_planck"])
    func gradientMatchesFiniteDifferences(_ name: String) throws {
        let op = try Self.makeOperator(name)
        for activation in [Activation.tanh, .sin] {
            let net = try MLP(widths: [op.dimension, 7, 5, 1], activation: activation, seed: 31)
            let loss = try PINNLoss(network: net, operator: op)
            let b = try smallBatch(op.dimension, interior: 6, boundary: 4, seed: 3)
            let (value, grad) = try loss.lossAndGradient(b)
            #expect(abs(value.total - (try loss.loss(b).total)) == 0)
            let theta = net.parameters, h = 1e-6
            var fd = [Double](repeating: 0, count: theta.count)
            for i in 0..<theta.count {
                var p = theta
                p[i] += h; try net.setParameters(p)
                let lp = try loss.loss(b).total
                p[i] -= 2 * h; try net.setParameters(p)
                let lm = try loss.loss(b).total
                fd[i] = (lp - lm) / (2 * h)
            }
            try net.setParameters(theta)
            let diff = maxRelativeDifference(grad, fd)
            #expect(diff < 1e-7, "\(name) \(activation): max gradient difference \(diff)")
        }
    }

    @Test("residuals match the operator applied to finite-difference derivatives")
    func residualsMatchDefinition() throws {
        let op = try Operator.logFokkerPlanck(spaceDimension: 2)
        let net = try MLP(widths: [3, 10, 1], seed: 8)
        let x = randomPoints(3, 3, seed: 4), f = [0.1, -0.2, 0.3]
        let r = try op.residual(network: net, points: x, count: 3, source: f)
        let h = 1e-4
        for k in 0..<3 {
            let p = Array(x[(k * 3)..<(k * 3 + 3)])
            let u0 = try value(net, p)
            var g = [0.0, 0, 0], second = [0.0, 0, 0]
            for i in 0..<3 {
                var a = p, b = p
                a[i] += h; b[i] -= h
                let (ua, ub) = (try value(net, a), try value(net, b))
                g[i] = (ua - ub) / (2 * h)
                second[i] = (ua - 2 * u0 + ub) / (h * h)
            }
            // r = ∂t q − dx/2 − ½ x·∇x q − ‖∇x q‖² − Δx q − f, with dx = 2
            let expected = g[0] - 1 - 0.5 * (p[1] * g[1] + p[2] * g[2]) - (g[1] * g[1] + g[2] * g[2])
                - (second[1] + second[2]) - f[k]
            #expect(abs(r[k] - expected) < 1e-5, "r = \(r[k]), finite differences \(expected)")
        }
        // Poisson: r = −Δu − f.
        let poisson = try Operator.poisson(dimension: 3)
        let lap = try net.derivatives(x, count: 3).secondOrder
        let rp = try poisson.residual(network: net, points: x, count: 3, source: f)
        for k in 0..<3 { #expect(abs(rp[k] - (-lap[k] - f[k])) < 1e-14) }
    }

    @Test("the loss is ½ mean r² + ½ mean (u − g)²")
    func lossDefinition() throws {
        let op = try Operator.poisson(dimension: 2)
        let net = try MLP(widths: [2, 6, 1], seed: 2)
        let b = try smallBatch(2, interior: 5, boundary: 3, seed: 9)
        let value = try PINNLoss(network: net, operator: op).loss(b)
        let r = try op.residual(network: net, points: b.interiorPoints, count: 5, source: b.source)
        let u = try net.evaluate(b.boundaryPoints, count: 3)
        let li = r.reduce(0) { $0 + $1 * $1 } / 10
        let lb = zip(u, b.boundaryValues).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / 6
        #expect(abs(value.interior - li) < 1e-15 && abs(value.boundary - lb) < 1e-15)
        #expect(value.total == value.interior + value.boundary)
    }

    @Test("mismatched dimensions and non-finite data are rejected")
    func badInput() throws {
        let net = try MLP(widths: [2, 4, 1], seed: 1)
        #expect(throws: KFPError.self) { try PINNLoss(network: net, operator: try Operator.poisson(dimension: 3)) }
        let loss = try PINNLoss(network: net, operator: try Operator.poisson(dimension: 2))
        #expect(throws: KFPError.self) { try loss.loss(try smallBatch(3, interior: 2, boundary: 1, seed: 1)) }
        #expect(throws: KFPError.self) { try Batch(dimension: 2, interiorPoints: [0.1, .nan], source: [1]) }
        #expect(throws: KFPError.self) { try Batch(dimension: 2, interiorPoints: [0.1, 0.2], source: [.infinity]) }
        #expect(throws: KFPError.self) { try Batch(dimension: 2, interiorPoints: [], source: []) }
        #expect(throws: KFPError.self) { try Batch(dimension: 2, interiorPoints: [0.1, 0.2, 0.3], source: [1]) }
        #expect(throws: KFPError.self) { try Operator.heat(spaceDimension: 1, kappa: -1) }
        #expect(throws: KFPError.self) { try Operator(dimension: 2, secondOrder: .diagonal([1])) }
    }
}
