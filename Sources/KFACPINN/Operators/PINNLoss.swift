/// The PINN loss of one network and operator over the terms of a batch (docs/math.md §1, §9):
///
///     L(θ) = Σ_t w_t/(2N_t) Σ_n r_{t,n}²
///
/// One Taylor-mode pass per term (S_t columns per point); the gradient, the Jacobian-vector
/// products and the Kronecker factors come from one backward pass per term. Buffers are kept
/// per term index and reused across batches.
public final class PINNLoss {
    /// The loss and its parts: interior operator terms, and all other (condition) terms.
    public struct Value: Sendable, Equatable {
        public var total: Double
        public var interior: Double
        public var boundary: Double
    }

    public let network: MLP
    public let op: Operator
    /// The evaluation state of term t of the last batch at index t (more may be kept from
    /// earlier batches); `termCount` of them are in use.
    private(set) var evaluations: [TermEvaluation] = []
    private(set) var termCount = 0
    /// Per-sample weights of a backward pass or gradient (reused).
    let scaledSeeds = Buffer()

    public init(network: MLP, operator op: Operator) throws {
        try op.requireCompatible(with: network)
        self.network = network
        self.op = op
    }

    /// The terms of the last `forward`.
    var terms: ArraySlice<TermEvaluation> { evaluations[..<termCount] }

    func requireCompatible(_ batch: Batch) throws {
        guard batch.dimension == network.inputDimension else {
            throw KFPError.dimensionMismatch("the batch has \(batch.dimension)-dimensional points, the network expects \(network.inputDimension)")
        }
        guard batch.interiorCount > 0 else {
            throw KFPError.invalidArgument("the batch has no interior point: a PINN loss needs an interior term with points")
        }
    }

    /// Forward passes and residuals of every term of `batch`; returns the loss. At `theta` (D
    /// values) instead of the network's parameters only the returned value may be used (see
    /// TaylorPass.forward).
    @discardableResult
    func forward(_ batch: Batch, at theta: UnsafePointer<Double>? = nil) throws -> Value {
        try requireCompatible(batch)
        while evaluations.count < batch.terms.count { evaluations.append(TermEvaluation(network: network)) }
        termCount = batch.terms.count
        var value = Value(total: 0, interior: 0, boundary: 0)
        for (term, ev) in zip(batch.terms, evaluations) {
            try ev.forward(term, op, at: theta)
            let part = ev.count > 0 ? ev.weight * (0.5 * ev.squares / Double(ev.count)) : 0
            if term.kind.isInterior { value.interior += part } else { value.boundary += part }
        }
        value.total = value.interior + value.boundary
        guard value.total.isFinite else {
            throw KFPError.nonFinite("the loss is not finite (interior \(value.interior), boundary \(value.boundary))")
        }
        return value
    }

    /// The loss of a batch given as consecutive chunks (`Batch.chunks`), at θ:
    /// L = Σ_t w_t/(2N_t) Σ_c Σ_{n ∈ chunk c} r_{t,n}², with N_t the term's points over all chunks;
    /// nil if it is not finite, or as soon as the sum over the chunks so far exceeds `stopAbove()`
    /// (a lower bound of L: every chunk adds non-negative terms). `squares` is work space.
    func loss(_ chunks: [Batch], at theta: UnsafePointer<Double>, squares: Buffer,
              stopAbove: () -> Double = { .infinity }) throws -> Double? {
        guard let first = chunks.first else { return nil }
        let T = first.terms.count, sums = try squares.reserve(2 * T), totals = sums + T
        sums.update(repeating: 0, count: T)
        for t in 0..<T { totals[t] = Double(chunks.reduce(0) { $0 + $1.terms[t].count }) }
        var sum = 0.0
        for chunk in chunks {
            guard (try? forward(chunk, at: theta)) != nil else { return nil }
            sum = 0
            for t in 0..<T {
                sums[t] += evaluations[t].squares
                if totals[t] > 0 { sum += first.terms[t].weight * (0.5 * sums[t] / totals[t]) }
            }
            if sum > stopAbove() { return nil }
        }
        return sum.isFinite ? sum : nil
    }

    /// L(θ) on `batch`.
    public func loss(_ batch: Batch) throws -> Value { try forward(batch) }

    /// L(θ) and ∇L(θ) on `batch` (gradient in the layout of `MLP.parameters`).
    public func lossAndGradient(_ batch: Batch) throws -> (loss: Value, gradient: [Double]) {
        var gradient = [Double](repeating: 0, count: network.numParameters)
        let value = try gradient.withUnsafeMutableBufferPointer { try lossAndGradient(batch, into: $0.baseAddress!) }
        return (value, gradient)
    }

    /// As `lossAndGradient(_:)`, writing ∇L into `grad` (D values, overwritten): per term one
    /// backward pass seeded with (w_t r_n/N_t) ∂r_n/∂(output columns).
    func lossAndGradient(_ batch: Batch, into grad: UnsafeMutablePointer<Double>) throws -> Value {
        let value = try forward(batch)
        grad.update(repeating: 0, count: network.numParameters)
        for ev in terms where ev.count > 0 {
            let n = ev.count, s = ev.pass.columnsPerSample
            let seeds = try scaledSeeds.reserve(n * s), r = ev.residuals.pointer, js = ev.seeds.pointer
            for k in 0..<n {
                let w = ev.weight * r[k] / Double(n)
                for c in 0..<s { seeds[c * n + k] = w * js[c * n + k] }
            }
            try ev.pass.backward(seeds: seeds)
            try ev.pass.accumulateGradient(into: grad, weights: nil)
        }
        if let i = firstNonFinite(grad, network.numParameters) {
            throw KFPError.nonFinite("the gradient has a non-finite entry at index \(i)")
        }
        return value
    }

    /// After `forward`: ∇L into `grad`, leaving in each term's pass the adjoints of the unscaled
    /// Jacobian seeds ∂r_n/∂(output columns) that the Kronecker factors and the Jacobian products
    /// read. The gradient weights each sample by w_t r_n/N_t afterwards (the backward pass is
    /// linear in its seeds).
    func gradientKeepingJacobianAdjoints(into grad: UnsafeMutablePointer<Double>) throws {
        grad.update(repeating: 0, count: network.numParameters)
        for ev in terms where ev.count > 0 {
            let n = ev.count, w = try scaledSeeds.reserve(n), r = ev.residuals.pointer
            for k in 0..<n { w[k] = ev.weight * r[k] / Double(n) }
            try ev.pass.backward(seeds: ev.seeds.pointer)
            try ev.pass.accumulateGradient(into: grad, weights: w)
        }
    }

    /// After `forward`: the backward passes with the unscaled Jacobian seeds, so that the passes
    /// hold the adjoints the Jacobian products read.
    func keepJacobianAdjoints() throws {
        for ev in terms where ev.count > 0 { try ev.pass.backward(seeds: ev.seeds.pointer) }
    }

    /// Whether the passes run on one thread of several (a parallel line search).
    func setRunsConcurrently(_ flag: Bool) {
        for ev in evaluations { ev.pass.runsConcurrently = flag }
    }
}

/// The evaluation state of one loss term: its Taylor pass, residuals r_n, their Jacobian seeds
/// ∂r_n/∂(output columns) (S·N, in the pass's column blocks), and J v per tangent space.
final class TermEvaluation {
    let pass: TaylorPass
    let residuals = Buffer(), seeds = Buffer()
    /// J_n v of the term's residuals for up to two directions at once (one per tangent space).
    let jv = [Buffer(), Buffer()]
    private(set) var kind = LossTermKind.interior
    private(set) var count = 0
    private(set) var weight = 1.0
    /// Σ_n r_n² of the last forward pass.
    private(set) var squares = 0.0

    init(network: MLP) { pass = TaylorPass(network: network) }

    /// The term's pass and residuals at the network's parameters or at `theta`.
    func forward(_ term: LossTerm, _ op: Operator, at theta: UnsafePointer<Double>?) throws {
        kind = term.kind
        count = term.count
        weight = term.weight
        squares = 0
        let n = count
        guard n > 0 else { return }
        switch term.kind {
        case .interior:
            pass.outputGradientUsed = op.readsGradient
            try pass.forward(term.points, count: n, mode: .taylor(op.coefficients), parameters: theta)
            let r = try residuals.reserve(n), js = try seeds.reserve(n * pass.columnsPerSample)
            term.points.withUnsafeBufferPointer { x in
                term.targets.withUnsafeBufferPointer { f in
                    op.residuals(output: pass.output, points: x.baseAddress!, source: f.baseAddress!,
                                 count: n, residuals: r, seeds: js)
                }
            }
        case .dirichlet, .observation:
            try pass.forward(term.points, count: n, mode: .value, parameters: theta)
            let r = try residuals.reserve(n), js = try seeds.reserve(n), u = pass.output
            for k in 0..<n {
                r[k] = u[k] - term.targets[k]
                js[k] = 1
            }
        case .neumann, .robin:
            // Output columns [u | ∂u/∂n]; r = a u + b ∂u/∂n − g with (a, b) = (0, 1) for Neumann,
            // seeds ∂r/∂u = a, ∂r/∂(∂u/∂n) = b.
            try pass.forward(term.points, count: n, mode: .directional(term.normals), parameters: theta)
            let r = try residuals.reserve(n), js = try seeds.reserve(2 * n), u = pass.output, robin = term.kind == .robin
            for k in 0..<n {
                let a = robin ? term.robinA[k] : 0, b = robin ? term.robinB[k] : 1
                r[k] = a * u[k] + b * u[n + k] - term.targets[k]
                js[k] = a
                js[n + k] = b
            }
        }
        squares = sumOfSquares(n, residuals.pointer)
    }
}

/// Σ_k r_k² on the calling thread (the loss of every line-search trial).
func sumOfSquares(_ n: Int, _ r: UnsafePointer<Double>) -> Double {
    var sum = 0.0
    for k in 0..<n { sum += r[k] * r[k] }
    return sum
}
