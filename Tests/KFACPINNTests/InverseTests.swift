import Foundation
import Testing
@testable import KFACPINN

/// A 2-d operator with every kind of trainable coefficient: κ C with a dense C (κ positive),
/// the entries C₀₁ and C₁₁, c, β₁, κ₀ and s, and a drift Jacobian and reaction gradient that
/// stay fixed.
private func generalOperator() throws -> Operator {
    let op = try Operator(name: "general", dimension: 2, secondOrder: .matrix([-1, 0.3, 0.3, -0.7]), secondOrderScale: 0.8,
                          drift: [0.4, -0.2], driftJacobian: [0.1, 0, 0.2, -0.1], reaction: 0.5, reactionGradient: [0.3, -0.1],
                          constant: 0.2)
    try op.setTrainable("kappa", initial: 0.8, positive: true)
    try op.setTrainable("c", initial: 0.5)
    try op.setTrainable("beta_1", initial: -0.2)
    try op.setTrainable("constant", initial: 0.2)
    try op.setTrainable("source_scale", initial: 1.3)
    try op.setTrainable("C_1_0", initial: 0.3)
    try op.setTrainable("C_1_1", initial: -0.7)
    return op
}

/// An interior term (weight 2), a Dirichlet term and an observation term (weight 3).
private func inverseBatch(seed: UInt64) throws -> Batch {
    var rng = RandomSource(seed: seed)
    func term(_ kind: LossTermKind, _ n: Int, _ weight: Double, _ s: UInt64) -> LossTerm {
        LossTerm(kind: kind, points: randomPoints(n, 2, seed: s), targets: (0..<n).map { _ in rng.uniform(-1, 1) }, weight: weight)
    }
    return try Batch(dimension: 2, terms: [term(.interior, 6, 2, seed), term(.dirichlet, 3, 1, seed + 1), term(.observation, 4, 3, seed + 2)])
}

/// The interior residuals at trained variables κ̂ (the operator's residual with its values set).
private func interiorResiduals(_ net: MLP, _ op: Operator, _ term: LossTerm, raw: [Double]) throws -> [Double] {
    let saved = op.trainable.raw
    defer { op.trainable.raw = saved }
    op.trainable.raw = raw
    return try op.residual(network: net, points: term.points, count: term.count, source: term.targets)
}

@Test func residualDerivativesInTheCoefficientsMatchCentralDifferences() throws {
    let net = try MLP(widths: [2, 5, 4, 1], seed: 3), op = try generalOperator(), batch = try inverseBatch(seed: 5)
    let loss = try PINNLoss(network: net, operator: op)
    let D = net.numParameters, P = loss.parameterCount, p = 7
    #expect(P == D + p)
    let (interior, boundary) = try loss.jacobians(batch)
    let term = batch.terms[0], n = term.count, h = 1e-6
    var worst = 0.0
    for k in 0..<p {
        var plus = op.trainable.raw, minus = plus
        plus[k] += h
        minus[k] -= h
        let rp = try interiorResiduals(net, op, term, raw: plus), rm = try interiorResiduals(net, op, term, raw: minus)
        for i in 0..<n {
            let fd = (rp[i] - rm[i]) / (2 * h), exact = interior[i * P + D + k]
            worst = max(worst, abs(fd - exact) / max(1, abs(fd)))
        }
    }
    #expect(worst < 1e-7, "max relative difference of ∂r/∂κ̂ against central differences: \(worst)")
    // Condition and observation residuals do not depend on the coefficients.
    let rows = boundary.count / P
    #expect((0..<rows).allSatisfy { i in (D..<P).allSatisfy { boundary[i * P + $0] == 0 } })
}

@Test func lossGradientInTheCoefficientsMatchesCentralDifferences() throws {
    let net = try MLP(widths: [2, 5, 4, 1], seed: 3), op = try generalOperator(), batch = try inverseBatch(seed: 6)
    let loss = try PINNLoss(network: net, operator: op)
    let (_, gradient) = try loss.lossAndGradient(batch)
    let D = net.numParameters, h = 1e-6
    let theta = loss.parameters
    var worst = 0.0
    for k in 0..<loss.coefficientCount {
        var v = theta
        v[D + k] += h
        loss.assignParameters(v)
        let plus = try loss.loss(batch).total
        v[D + k] -= 2 * h
        loss.assignParameters(v)
        let minus = try loss.loss(batch).total
        loss.assignParameters(theta)
        let fd = (plus - minus) / (2 * h)
        worst = max(worst, abs(fd - gradient[D + k]) / max(1, abs(fd)))
    }
    #expect(worst < 1e-7, "max relative difference of ∂L/∂κ̂ against central differences: \(worst)")
}

@Test func coefficientGramianAndMixedGGNProductsMatchTheDenseJacobian() throws {
    let net = try MLP(widths: [2, 5, 4, 1], seed: 8), op = try generalOperator(), batch = try inverseBatch(seed: 9)
    let loss = try PINNLoss(network: net, operator: op)
    let D = net.numParameters, P = loss.parameterCount, p = loss.coefficientCount
    // Dense G = Σ_t w_t/N_t J_tᵀ J_t from the dense per-term Jacobians.
    _ = try loss.jacobians(batch)
    var rows: [(weight: Double, row: [Double])] = []
    for (t, term) in batch.terms.enumerated() {
        let single = try Batch(dimension: 2, terms: [batch.terms[0]] + (t == 0 ? [] : [term]))
        let (interior, boundary) = try loss.jacobians(single)
        let J = t == 0 ? interior : boundary
        for i in 0..<term.count { rows.append((term.weight / Double(term.count), Array(J[(i * P)..<((i + 1) * P)]))) }
    }
    func dense(_ a: Int, _ b: Int) -> Double { rows.reduce(0) { $0 + $1.weight * $1.row[a] * $1.row[b] } }
    // The κ block that KFAC solves with.
    try loss.forward(batch)
    var block = [Double](repeating: 0, count: p * p)
    try block.withUnsafeMutableBufferPointer { try loss.coefficientGramian(into: $0.baseAddress!) }
    var worst = 0.0
    for a in 0..<p { for b in 0..<p { worst = max(worst, abs(block[a * p + b] - dense(D + a, D + b)) / max(1, abs(dense(D + a, D + b)))) } }
    #expect(worst < 1e-12, "max relative difference of G_κκ against the dense Jacobian: \(worst)")
    // G v for a v with both θ and κ̂ parts.
    var rng = RandomSource(seed: 2)
    let v = (0..<P).map { _ in rng.uniform(-1, 1) }
    let gv = try loss.ggnVectorProduct(batch, v)
    let reference = (0..<P).map { a in (0..<P).reduce(0.0) { $0 + dense(a, $1) * v[$1] } }
    let difference = maxRelativeDifference(gv, reference)
    #expect(difference < 1e-12, "max relative difference of the mixed G v against the dense Jacobian: \(difference)")
}

@Test func kfacSolvesTheCoefficientBlockDenselyWithItsDamping() throws {
    let net = try MLP(widths: [2, 5, 1], seed: 1), op = try generalOperator(), batch = try inverseBatch(seed: 4)
    var options = KFAC.Options()
    options.stepRule = .fixed
    options.learningRate = 1
    options.damping = 1e-3
    let kfac = try KFAC(network: net, operator: op, options: options)
    let loss = try PINNLoss(network: try MLP(widths: [2, 5, 1], seed: 1), operator: op)
    let D = net.numParameters, p = loss.coefficientCount
    let (_, g) = try loss.lossAndGradient(batch)
    var G = [Double](repeating: 0, count: p * p)
    try G.withUnsafeMutableBufferPointer { try loss.coefficientGramian(into: $0.baseAddress!) }
    let before = kfac.loss.parameters
    _ = try kfac.step(batch)
    let after = kfac.loss.parameters
    // (G_κκ + λI) Δκ̂ = −g_κ̂.
    var worst = 0.0
    for a in 0..<p {
        var lhs = 0.0
        for b in 0..<p { lhs += (G[a * p + b] + (a == b ? 1e-3 : 0)) * (after[D + b] - before[D + b]) }
        worst = max(worst, abs(lhs + g[D + a]) / max(1, abs(g[D + a])))
    }
    #expect(worst < 1e-10, "max residual of the κ block's damped solve: \(worst)")
}

@Test func aFrozenCoefficientTrainsAsTheFixedOperator() throws {
    let problem = try Problem(name: "heat1d")
    let batch = try problem.sample(interior: 60, boundary: 20, seed: 3)
    for make in [{ (n: MLP, o: Operator) -> any Optimizer in try KFAC(network: n, operator: o) },
                 { (n: MLP, o: Operator) -> any Optimizer in try ENGD(network: n, operator: o) }] {
        let fixed = try MLP(widths: [2, 8, 1], seed: 5), frozen = try MLP(widths: [2, 8, 1], seed: 5)
        let frozenOp = try Operator.heat(spaceDimension: 1, kappa: 0.25)
        try frozenOp.setTrainable("kappa", initial: 0.25, positive: true, frozen: true)
        let a = try make(fixed, try Operator.heat(spaceDimension: 1, kappa: 0.25)), b = try make(frozen, frozenOp)
        for _ in 0..<5 {
            _ = try a.step(batch)
            _ = try b.step(batch)
        }
        #expect(fixed.parameters.map(\.bitPattern) == frozen.parameters.map(\.bitPattern))
        #expect(frozenOp.trainable.values == [0.25])
    }
    // A trained coefficient at the true value: the same loss, and the same θ part of the gradient.
    let trainedOp = try Operator.heat(spaceDimension: 1, kappa: 0.25)
    try trainedOp.setTrainable("kappa", initial: 0.25)
    let net = try MLP(widths: [2, 8, 1], seed: 5)
    let (fixedLoss, fixedGradient) = try PINNLoss(network: net, operator: try Operator.heat(spaceDimension: 1, kappa: 0.25)).lossAndGradient(batch)
    let (trainedLoss, trainedGradient) = try PINNLoss(network: net, operator: trainedOp).lossAndGradient(batch)
    #expect(fixedLoss == trainedLoss)
    #expect(Array(trainedGradient[..<net.numParameters]).map(\.bitPattern) == fixedGradient.map(\.bitPattern))
}

@Test func everyOptimizerTrainsTheCoefficients() throws {
    // heat1d_inverse on a fixed batch: every optimizer lowers the loss and moves κ.
    let problem = try Problem(name: "heat1d_inverse")
    let batch = try problem.sample(interior: 200, boundary: 60, seed: 1)
    let makers: [(String, (MLP, Operator) throws -> any Optimizer, Int)] = [
        ("SGD", { n, o in var x = SGD.Options(); x.learningRate = 1e-2; return try SGD(network: n, operator: o, options: x) }, 50),
        ("Adam", { n, o in var x = Adam.Options(); x.learningRate = 1e-2; return try Adam(network: n, operator: o, options: x) }, 50),
        ("L-BFGS", { try LBFGS(network: $0, operator: $1) }, 20),
        ("KFAC", { try KFAC(network: $0, operator: $1) }, 20),
        ("ENGD", { try ENGD(network: $0, operator: $1) }, 10),
        ("ENGD woodbury", { n, o in var x = ENGD.Options(); x.variant = .woodbury; return try ENGD(network: n, operator: o, options: x) }, 10),
        ("ENGD per_layer", { n, o in var x = ENGD.Options(); x.variant = .perLayer; return try ENGD(network: n, operator: o, options: x) }, 10),
        ("Hessian-free", { try HessianFree(network: $0, operator: $1) }, 10),
        ("SPRING", { try SPRING(network: $0, operator: $1) }, 10),
    ]
    for (name, make, steps) in makers {
        let p = try Problem(name: "heat1d_inverse"), net = try MLP(widths: [2, 16, 1], seed: 2)
        let optimizer = try make(net, p.op)
        let first = try optimizer.step(batch).loss
        var last = first
        for _ in 1..<steps { last = try optimizer.step(batch).loss }
        let kappa = p.op.trainable.values[0]
        #expect(last < first, "\(name): the loss went from \(first) to \(last)")
        #expect(kappa != 1 && kappa.isFinite, "\(name): κ = \(kappa) was not trained")
    }
}

@Test func trainingWithCoefficientsResumesExactly() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kfp-inverse-\(getpid())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = directory + "/run.kfp", csv = directory + "/log.csv"
    func train(_ steps: Int, resume: Bool, checkpoint: String?) throws -> (MLP, Problem, [TrainingRecord]) {
        let problem = try Problem(name: "heat1d_inverse"), net = try MLP(widths: [2, 12, 1], seed: 4)
        var options = KFAC.Options()
        options.stepRule = .automatic
        let kfac = try KFAC(network: net, operator: problem.op, options: options)
        var settings = TrainingOptions()
        settings.steps = steps
        settings.interior = 100
        settings.boundary = 40
        settings.resampleEvery = 2
        settings.logEvery = 2
        settings.checkpointPath = checkpoint
        settings.resume = resume
        settings.csvPath = csv
        let records = try KFACPINN.train(kfac, on: problem, options: settings)
        return (net, problem, records)
    }
    let (straight, straightProblem, straightRecords) = try train(8, resume: false, checkpoint: nil)
    _ = try train(4, resume: false, checkpoint: path)
    let (resumed, resumedProblem, resumedRecords) = try train(8, resume: true, checkpoint: path)
    #expect(resumed.parameters.map(\.bitPattern) == straight.parameters.map(\.bitPattern))
    #expect(resumedProblem.op.trainable.raw.map(\.bitPattern) == straightProblem.op.trainable.raw.map(\.bitPattern))
    #expect(resumedRecords.map(\.coefficients) == straightRecords.map(\.coefficients))
    #expect(straightRecords.last!.coefficients.count == 1)
    let header = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").first.map(String.init)
    #expect(header?.hasSuffix(",coef_kappa") == true)
}

@Test func badCoefficientInputIsRefusedAndChangesNothing() throws {
    let op = try Operator.heat(spaceDimension: 1, kappa: 0.25)
    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return ""
    }
    #expect(message { try op.setTrainable("kapa", initial: 1) }.contains("kappa, c, beta_0, beta_1, constant, source_scale, C_i_j"))
    #expect(message { try op.setTrainable("C_0_2", initial: 1) }.contains("C_0_0 to C_1_1"))
    #expect(message { try op.setTrainable("beta_2", initial: 1) }.contains("beta_0 to beta_1"))
    #expect(message { try op.setTrainable("kappa", initial: .nan) }.contains("initial value"))
    #expect(message { try op.setTrainable("kappa", initial: -1, positive: true) }.contains("must be > 0"))
    let transport = try Operator(name: "transport", dimension: 2, secondOrder: .diagonal([0, 0]), drift: [1, 1])
    #expect(message { try transport.setTrainable("kappa", initial: 1) }.contains("no second-order term"))
    #expect(op.trainable.count == 0)
    try op.setTrainable("kappa", initial: 1, positive: true)
    let net = try MLP(widths: [2, 4, 1])
    let kfac = try KFAC(network: net, operator: op)
    #expect(message { try op.setTrainable("c", initial: 1) }.contains("in use by an optimizer"))
    #expect(op.trainable.count == 1 && op.trainable.values == [1])
    _ = kfac
    // Observations with NaN are refused by the batch.
    #expect(message { _ = try Batch(dimension: 2, terms: [LossTerm(kind: .observation, points: [0, 0], targets: [.nan])]) }.contains("observations y"))
}
