import Glibc
import Testing
@testable import KFACPINN

/// The scaled residuals r̃ of all terms (√(w_t/N_t) r_{t,n}, terms in order) at the current
/// parameters, from the forward pass alone.
private func scaledResiduals(_ loss: PINNLoss, _ batch: Batch) throws -> [Double] {
    try loss.forward(batch)
    return loss.terms.flatMap { ev -> [Double] in
        let scale = ev.weight.squareRoot() / Double(ev.count).squareRoot()
        return (0..<ev.count).map { scale * ev.residuals.pointer[$0] }
    }
}

/// Solves the dense symmetric positive definite system A x = b (n × n, row-major) by Cholesky.
private func denseSolve(_ a: [Double], _ b: [Double], _ n: Int) -> [Double] {
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0...i {
            var s = a[i * n + j]
            for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
            l[i * n + j] = i == j ? s.squareRoot() : s / l[j * n + j]
        }
    }
    var y = b
    for i in 0..<n { for k in 0..<i { y[i] -= l[i * n + k] * y[k] }; y[i] /= l[i * n + i] }
    for i in stride(from: n - 1, through: 0, by: -1) { for k in (i + 1)..<n { y[i] -= l[k * n + i] * y[k] }; y[i] /= l[i * n + i] }
    return y
}

private func springOptions(momentum: Double, damping: Double = 1e-3, fixed: Bool = false, normConstraint: Double = 1e-3) -> SPRING.Options {
    var o = SPRING.Options()
    o.momentum = momentum
    o.damping = damping
    o.normConstraint = normConstraint
    if fixed {
        o.stepRule = .fixed
        o.learningRate = 1
    }
    return o
}

@Test func springWithoutMomentumStepsAsWoodburyENGD() throws {
    let batch = try smallBatch(2, interior: 30, boundary: 12, seed: 3), op = try Operator.poisson(dimension: 2)
    let a = try MLP(widths: [2, 8, 8, 1], seed: 2), b = try MLP(widths: [2, 8, 8, 1], seed: 2)
    let spring = try SPRING(network: a, operator: op, options: springOptions(momentum: 0, damping: 1e-4))
    var engdOptions = ENGD.Options()
    engdOptions.variant = .woodbury
    engdOptions.damping = 1e-4
    let engd = try ENGD(network: b, operator: op, options: engdOptions)
    for _ in 0..<4 {
        _ = try spring.step(batch)
        _ = try engd.step(batch)
    }
    let difference = maxRelativeDifference(a.parameters, b.parameters)
    #expect(difference <= 1e-12, "SPRING with μ = 0 against Woodbury ENGD after 4 steps: \(difference)")
}

@Test func springDirectionMinimisesTheMomentumProblem() throws {
    // φ₂ = argmin ‖J̃φ − ε‖² + λ‖φ − μφ₁‖², i.e. (J̃ᵀJ̃ + λI) φ₂ = J̃ᵀε + λμφ₁, with J̃ by central
    // differences of the scaled residuals; fixed steps of η = 1 (no cap) make φ the update.
    let op = try Operator.heat(spaceDimension: 1, kappa: 0.25)
    try op.setTrainable("kappa", initial: 0.5, positive: true)
    let batch = try Problem(name: "heat1d").sample(interior: 15, boundary: 8, seed: 2)
    let net = try MLP(widths: [2, 5, 1], seed: 4)
    let (mu, lambda) = (0.9, 1e-2)
    let spring = try SPRING(network: net, operator: op, options: springOptions(momentum: mu, damping: lambda, fixed: true, normConstraint: 1e30))
    let start = spring.loss.parameters
    _ = try spring.step(batch)
    let middle = spring.loss.parameters
    let phi1 = zip(middle, start).map { $0 - $1 }
    _ = try spring.step(batch)
    let phi2 = zip(spring.loss.parameters, middle).map { $0 - $1 }
    // The dense problem at the middle parameters.
    let probe = try PINNLoss(network: try MLP(widths: [2, 5, 1], seed: 4), operator: op)
    probe.assignParameters(middle)
    let P = probe.parameterCount, h = 1e-6
    let epsilon = try scaledResiduals(probe, batch).map { -$0 }, M = epsilon.count
    var J = [Double](repeating: 0, count: M * P)
    for j in 0..<P {
        var v = middle
        v[j] += h
        probe.assignParameters(v)
        let plus = try scaledResiduals(probe, batch)
        v[j] -= 2 * h
        probe.assignParameters(v)
        let minus = try scaledResiduals(probe, batch)
        for i in 0..<M { J[i * P + j] = (plus[i] - minus[i]) / (2 * h) }
    }
    probe.assignParameters(middle)
    var A = [Double](repeating: 0, count: P * P), rhs = [Double](repeating: 0, count: P)
    for a in 0..<P {
        for b in 0..<P { A[a * P + b] = (0..<M).reduce(0.0) { $0 + J[$1 * P + a] * J[$1 * P + b] } + (a == b ? lambda : 0) }
        rhs[a] = (0..<M).reduce(0.0) { $0 + J[$1 * P + a] * epsilon[$1] } + lambda * mu * phi1[a]
    }
    let reference = denseSolve(A, rhs, P)
    let difference = maxRelativeDifference(phi2, reference)
    #expect(difference < 1e-6, "SPRING's φ against the dense minimiser with a finite-difference Jacobian: \(difference)")
}

@Test func springNormConstraintCapsFixedSteps() throws {
    let batch = try smallBatch(2, interior: 20, boundary: 8, seed: 5), op = try Operator.poisson(dimension: 2)
    let net = try MLP(widths: [2, 6, 1], seed: 1)
    let spring = try SPRING(network: net, operator: op, options: springOptions(momentum: 0.5, fixed: true, normConstraint: 1e-6))
    for _ in 0..<3 {
        let before = net.parameters
        let stats = try spring.step(batch)
        let moved = zip(net.parameters, before).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        #expect(abs(moved - 1e-3) <= 1e-12, "‖ηφ‖ = \(moved), the cap √C = 1e-3")
        #expect(stats.stepSize < 1 && abs(stats.updateNorm - 1e-3) <= 1e-12)
    }
}

@Test func springResumesExactly() throws {
    let batch = try smallBatch(2, interior: 25, boundary: 10, seed: 8), op = try Operator.poisson(dimension: 2)
    let net = try MLP(widths: [2, 6, 6, 1], seed: 3), twin = try MLP(widths: [2, 6, 6, 1], seed: 3)
    let spring = try SPRING(network: net, operator: op)
    for _ in 0..<3 { _ = try spring.step(batch) }
    try twin.setParameters(net.parameters)
    let loaded = try loadOptimizer(checkpoint: try spring.checkpoint(), network: twin, operator: op)
    for _ in 0..<3 {
        _ = try spring.step(batch)
        _ = try loaded.step(batch)
    }
    #expect(net.parameters.map(\.bitPattern) == twin.parameters.map(\.bitPattern))
}

@Test func springRefusesBadOptions() throws {
    let net = try MLP(widths: [2, 4, 1]), op = try Operator.poisson(dimension: 2)
    let spring = try SPRING(network: net, operator: op)
    for (option, value) in [(OptimizerOption.momentum, 1.0), (.momentum, -0.1), (.damping, 0), (.normConstraint, 0),
                            (.normConstraint, .infinity)] {
        #expect(throws: KFPError.self) { try spring.setOption(option, .double(value)) }
    }
    #expect(spring.options == SPRING.Options())
    #expect(throws: KFPError.self) { try spring.setOption(.variant, .string("full")) }
}

@Test func nystromWithFullRankEqualsTheExactKernel() throws {
    let batch = try smallBatch(2, interior: 30, boundary: 12, seed: 6), op = try Operator.poisson(dimension: 2)
    let M = 42
    for variants in [(SPRING.Variant.exact, SPRING.Variant.nystrom)] {
        let a = try MLP(widths: [2, 8, 8, 1], seed: 5), b = try MLP(widths: [2, 8, 8, 1], seed: 5)
        var exact = springOptions(momentum: 0.9, damping: 1e-3, fixed: true, normConstraint: 1e30)
        exact.variant = variants.0
        var sketched = exact
        sketched.variant = variants.1
        sketched.rank = M
        let x = try SPRING(network: a, operator: op, options: exact), y = try SPRING(network: b, operator: op, options: sketched)
        _ = try x.step(batch)
        _ = try y.step(batch)
        let difference = maxRelativeDifference(b.parameters, a.parameters)
        #expect(difference < 1e-8, "SPRING nystrom with k = M against exact: \(difference)")
    }
    // ENGD: nystrom with k = M against woodbury.
    let a = try MLP(widths: [2, 8, 8, 1], seed: 5), b = try MLP(widths: [2, 8, 8, 1], seed: 5)
    var woodbury = ENGD.Options()
    woodbury.variant = .woodbury
    woodbury.damping = 1e-3
    var nystrom = woodbury
    nystrom.variant = .nystrom
    nystrom.rank = M
    let x = try ENGD(network: a, operator: op, options: woodbury), y = try ENGD(network: b, operator: op, options: nystrom)
    _ = try x.step(batch)
    _ = try y.step(batch)
    let difference = maxRelativeDifference(b.parameters, a.parameters)
    #expect(difference < 1e-8, "ENGD nystrom with k = M against woodbury: \(difference)")
}

@Test func nystromOfLowRankTrainsAndRefusesARankAboveTheResiduals() throws {
    let batch = try smallBatch(2, interior: 30, boundary: 12, seed: 7), op = try Operator.poisson(dimension: 2)
    let net = try MLP(widths: [2, 8, 8, 1], seed: 2)
    var options = SPRING.Options()
    options.variant = .nystrom
    options.rank = 10
    let spring = try SPRING(network: net, operator: op, options: options)
    let first = try spring.step(batch).loss
    var last = first
    for _ in 0..<10 { last = try spring.step(batch).loss }
    #expect(last < 0.8 * first, "SPRING nystrom (k = 10 of M = 42): loss \(first) → \(last)")
    try spring.setOption(.rank, .int(43))
    let before = net.parameters
    #expect(throws: KFPError.self) { _ = try spring.step(batch) }
    #expect(net.parameters == before)
    #expect(throws: KFPError.self) { try spring.setOption(.rank, .int(0)) }
}

@Test func sampleSpaceStepsRefuseAJacobianBeyondMemory() throws {
    // M·P·8 bytes = 10000 · 264193 · 8 ≈ 21 GB: more than half of any machine this runs on
    // with less than 42 GB, and refused before the Jacobian is allocated.
    let net = try MLP(widths: [2, 512, 512, 1], seed: 1), op = try Operator.poisson(dimension: 2)
    let batch = try smallBatch(2, interior: 10000, boundary: 0, seed: 1)
    let physical = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
    guard physical < 40e9 else { return }
    let spring = try SPRING(network: net, operator: op)
    let before = net.parameters
    #expect(throws: KFPError.self) {
        do { _ = try spring.step(batch) } catch KFPError.outOfMemory(let message) {
            #expect(message.contains("SPRING"))
            throw KFPError.outOfMemory(message)
        }
    }
    #expect(net.parameters == before)
}
