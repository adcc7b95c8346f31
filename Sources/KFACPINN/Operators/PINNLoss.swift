/// The PINN loss of one network and operator over the terms of a batch (docs/math.md §1, §9):
///
///     L(θ) = Σ_t w_t/(2N_t) Σ_n r_{t,n}²
///
/// One Taylor-mode pass per term (S_t columns per point); the gradient, the Jacobian-vector
/// products and the Kronecker factors come from one backward pass per term. Buffers are kept
/// per term index and reused across batches.
///
/// In a data-parallel run (`group` over several processes, §13) each process holds a part of
/// every term's points: N_t counts the points of all processes, and the loss, the gradient and
/// the products G v and vᵀG w are sums over the processes; per-point quantities (residuals,
/// J v, Jacobian rows) are this process's.
///
/// The loss is a function of the parameter vector [θ; κ̂] (P = D + p values): the network's
/// parameters θ followed by the trained variables κ̂ of the operator's p trainable coefficients
/// (docs/math.md §10). Gradients, Jacobian products and directions have P entries.
public final class PINNLoss {
    /// The loss and its parts: interior operator terms, and all other (condition) terms.
    public struct Value: Sendable, Equatable {
        public var total: Double
        public var interior: Double
        public var boundary: Double
    }

    public let network: MLP
    public let op: Operator
    /// The operator's trained (not frozen) coefficients, as indices of its trainable ones, and
    /// their number p (fixed while this loss exists).
    let trainedIndices: [Int]
    public let coefficientCount: Int
    /// The operator's coefficient values when it has no trainable coefficient (resolved once).
    private let fixedValues: ResolvedCoefficients
    /// E_ij of the trained entries of C, in order (their columns need Taylor passes of their own).
    private let secondOrderEntries: [Coefficients]
    /// [θ; κ̂] of `withMutableParameters` when p > 0.
    private let combined = Buffer()
    /// The evaluation state of term t of the last batch at index t (more may be kept from
    /// earlier batches); `termCount` of them are in use.
    private(set) var evaluations: [TermEvaluation] = []
    private(set) var termCount = 0
    /// Per-sample weights of a backward pass or gradient (reused).
    let scaledSeeds = Buffer()
    /// The draw of a randomized estimator's probes (docs/math.md §12): set by the optimizer to its
    /// step count, so that every step sees fresh probes and a resumed run the same.
    var probeDraw: UInt64 = 0
    /// The processes whose points make up the batch (one by default).
    var group = ProcessGroup()
    /// Names the line of the running line search (`beginLine`): trial passes on it share their
    /// first layer's products (TaylorPass.LineLayer), kept per term and slice of points.
    private(set) var lineGeneration = 0

    /// Starts a new line θ₀ + α p for the trials of `loss(_:at:squares:line:stopAbove:)`.
    func beginLine() { lineGeneration &+= 1 }

    public init(network: MLP, operator op: Operator) throws {
        try op.requireCompatible(with: network)
        self.network = network
        self.op = op
        op.trainable.bind()
        trainedIndices = op.trainable.trainedIndices
        coefficientCount = trainedIndices.count
        fixedValues = op.coefficientValues()
        secondOrderEntries = op.trainedSecondOrderEntries
    }

    deinit { op.trainable.unbind() }

    /// P = D + p.
    public var parameterCount: Int { network.numParameters + coefficientCount }

    /// [θ; κ̂] (θ itself when p = 0).
    public var parameters: [Double] {
        coefficientCount == 0 ? network.parameters : network.parameters + trainedIndices.map { op.trainable.raw[$0] }
    }

    /// [θ; κ̂] ← v (P values) without checks.
    func assignParameters(_ v: [Double]) {
        let D = network.numParameters
        if coefficientCount == 0 { return network.assignParameters(v) }
        network.assignParameters(Array(v[..<D]))
        for (k, e) in trainedIndices.enumerated() { op.trainable.raw[e] = v[D + k] }
    }

    /// [θ; κ̂] ← v₀ + α w without checks.
    func setParameters(_ v0: UnsafePointer<Double>, plus alpha: Double, times w: UnsafePointer<Double>) {
        network.setParameters(v0, plus: alpha, times: w)
        let D = network.numParameters
        for (k, e) in trainedIndices.enumerated() { op.trainable.raw[e] = v0[D + k] + alpha * w[D + k] }
    }

    /// Runs `body` on [θ; κ̂] in place (through a copy when p > 0), without checks.
    func withMutableParameters<R>(_ body: (UnsafeMutablePointer<Double>) throws -> R) throws -> R {
        if coefficientCount == 0 { return try network.withMutableParameters(body) }
        let D = network.numParameters, v = try combined.reserve(parameterCount)
        network.parameters.withUnsafeBufferPointer { v.update(from: $0.baseAddress!, count: D) }
        for (k, e) in trainedIndices.enumerated() { v[D + k] = op.trainable.raw[e] }
        defer {
            network.withMutableParameters { $0.update(from: v, count: D) }
            for (k, e) in trainedIndices.enumerated() { op.trainable.raw[e] = v[D + k] }
        }
        return try body(v)
    }

    /// The terms of the last `forward`.
    var terms: ArraySlice<TermEvaluation> { evaluations[..<termCount] }

    /// Throws unless `batch` has the network's dimension and (`interior`) an interior point.
    func requireCompatible(_ batch: Batch, interior: Bool = true) throws {
        guard batch.dimension == network.inputDimension else {
            throw KFPError.dimensionMismatch("the batch has \(batch.dimension)-dimensional points, the network expects \(network.inputDimension)")
        }
        guard !interior || batch.interiorCount > 0 else { throw Self.noInteriorPoint }
    }

    private static let noInteriorPoint = KFPError.invalidArgument("the batch has no interior point: a PINN loss needs an interior term with points")

    /// Forward passes and residuals of every term of `batch` on this process's points; each
    /// term's `squares` is its local Σ_n r_n². No sum over processes.
    private func forwardLocal(_ batch: Batch, at theta: UnsafePointer<Double>?, line: LinePoint? = nil) throws {
        try requireCompatible(batch, interior: !group.isDistributed)
        while evaluations.count < batch.terms.count { evaluations.append(TermEvaluation(network: network)) }
        termCount = batch.terms.count
        let values = op.trainable.count == 0 ? fixedValues : op.coefficientValues(raw: theta.map { $0 + network.numParameters })
        for (index, (term, ev)) in zip(batch.terms, evaluations).enumerated() {
            try ev.forward(term, op, values, secondOrderEntries: secondOrderEntries, at: theta, draw: probeDraw, index: index,
                           line: line.map { ($0, lineGeneration) })
        }
    }

    /// Forward passes and residuals of every term of `batch`; returns the loss. At `theta` (P
    /// values) instead of the current parameters only the returned value may be used (see
    /// TaylorPass.forward). Sets each term's N_t (`total`), over all processes.
    @discardableResult
    func forward(_ batch: Batch, at theta: UnsafePointer<Double>? = nil) throws -> Value {
        let T = batch.terms.count
        var value = Value(total: 0, interior: 0, boundary: 0)
        // Per term Σ_n r_n² and N_t, summed over the processes.
        try withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * T) { buffer in
            let sums = buffer.baseAddress!
            try group.sum(sums, count: 2 * T) {
                try forwardLocal(batch, at: theta)
                for (t, ev) in evaluations[..<T].enumerated() {
                    sums[t] = ev.squares
                    sums[T + t] = Double(ev.count)
                }
            }
            var interiorPoints = 0.0
            for (t, (term, ev)) in zip(batch.terms, evaluations).enumerated() {
                ev.total = sums[T + t]
                let part = ev.total > 0 ? ev.weight * (0.5 * sums[t] / ev.total) : 0
                if term.kind.isInterior {
                    value.interior += part
                    interiorPoints += ev.total
                } else {
                    value.boundary += part
                }
            }
            if interiorPoints == 0 { throw Self.noInteriorPoint }
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
    /// (a lower bound of L: every chunk adds non-negative terms). `squares` is work space. With
    /// `line`, θ is that point of the line begun last (`beginLine`).
    func loss(_ chunks: [Batch], at theta: UnsafePointer<Double>, squares: Buffer, line: LinePoint? = nil,
              stopAbove: () -> Double = { .infinity }) throws -> Double? {
        guard let first = chunks.first else { return nil }
        let T = first.terms.count, sums = try squares.reserve(2 * T), totals = sums + T
        sums.update(repeating: 0, count: T)
        for t in 0..<T { totals[t] = Double(chunks.reduce(0) { $0 + $1.terms[t].count }) }
        var sum = 0.0
        for chunk in chunks {
            guard (try? forwardLocal(chunk, at: theta, line: line)) != nil else { return nil }
            sum = 0
            for t in 0..<T {
                sums[t] += evaluations[t].squares
                if totals[t] > 0 { sum += first.terms[t].weight * (0.5 * sums[t] / totals[t]) }
            }
            if sum > stopAbove() { return nil }
        }
        return sum.isFinite ? sum : nil
    }

    /// Per term t, Σ_n r_{t,n}² over the points of `chunks` (consecutive slices of a batch) at θ,
    /// on this process, into `out` (T values). No sum over processes. `line` as for `loss`.
    func squares(_ chunks: [Batch], at theta: UnsafePointer<Double>, line: LinePoint? = nil,
                 into out: UnsafeMutablePointer<Double>) throws {
        guard let first = chunks.first else { return }
        out.update(repeating: 0, count: first.terms.count)
        for chunk in chunks {
            try forwardLocal(chunk, at: theta, line: line)
            for t in 0..<first.terms.count { out[t] += evaluations[t].squares }
        }
    }

    /// L(θ) on `batch`.
    public func loss(_ batch: Batch) throws -> Value { try forward(batch) }

    /// L and ∇L on `batch` (P values: the layout of `MLP.parameters`, then κ̂).
    public func lossAndGradient(_ batch: Batch) throws -> (loss: Value, gradient: [Double]) {
        var gradient = [Double](repeating: 0, count: parameterCount)
        let value = try gradient.withUnsafeMutableBufferPointer { try lossAndGradient(batch, into: $0.baseAddress!) }
        return (value, gradient)
    }

    /// As `lossAndGradient(_:)`, writing ∇L into `grad` (P values, overwritten): per term one
    /// backward pass seeded with (w_t r_n/N_t) ∂r_n/∂(output columns).
    func lossAndGradient(_ batch: Batch, into grad: UnsafeMutablePointer<Double>) throws -> Value {
        let value = try forward(batch)
        try group.sum(grad, count: parameterCount) {
            grad.update(repeating: 0, count: parameterCount)
            for ev in terms where ev.count > 0 {
                let n = ev.count, s = ev.pass.columnsPerSample
                let seeds = try scaledSeeds.reserve(n * s), r = ev.residuals.pointer, js = ev.seeds.pointer
                for k in 0..<n {
                    let w = ev.weight * r[k] / ev.total
                    for c in 0..<s { seeds[c * n + k] = w * js[c * n + k] }
                }
                try ev.pass.backward(seeds: seeds)
                try ev.pass.accumulateGradient(into: grad, weights: nil)
                accumulateCoefficientTranspose(ev, ev.residuals.pointer, into: grad)
            }
        }
        if let i = firstNonFinite(grad, parameterCount) {
            throw KFPError.nonFinite("the gradient has a non-finite entry at index \(i)")
        }
        return value
    }

    /// After `forward`: ∇L into `grad`, leaving in each term's pass the adjoints of the unscaled
    /// Jacobian seeds ∂r_n/∂(output columns) that the Kronecker factors and the Jacobian products
    /// read. The gradient weights each sample by w_t r_n/N_t afterwards (the backward pass is
    /// linear in its seeds).
    func gradientKeepingJacobianAdjoints(into grad: UnsafeMutablePointer<Double>) throws {
        try group.sum(grad, count: parameterCount) {
            grad.update(repeating: 0, count: parameterCount)
            for ev in terms where ev.count > 0 {
                let n = ev.count, w = try scaledSeeds.reserve(n), r = ev.residuals.pointer
                for k in 0..<n { w[k] = ev.weight * r[k] / ev.total }
                try ev.pass.backward(seeds: ev.seeds.pointer)
                try ev.pass.accumulateGradient(into: grad, weights: w)
                accumulateCoefficientTranspose(ev, r, into: grad)
            }
        }
    }

    /// out[D + k] += w_t/N_t Σ_n (∂r_n/∂κ̂_k) y_n for an interior term (Jᵀ y in the κ̂ block).
    func accumulateCoefficientTranspose(_ ev: TermEvaluation, _ y: UnsafePointer<Double>,
                                        into out: UnsafeMutablePointer<Double>) {
        guard coefficientCount > 0, ev.kind.isInterior else { return }
        let n = ev.count, D = network.numParameters, scale = ev.weight / ev.total
        for k in 0..<coefficientCount {
            out[D + k] += scale * BLAS.dot(n, ev.coefficientRows.pointer + k * n, y)
        }
    }

    /// jv_n += Σ_k (∂r_n/∂κ̂_k) v[D + k] for an interior term (J v's κ̂ part).
    func addCoefficientProducts(_ ev: TermEvaluation, _ v: UnsafePointer<Double>, into jv: UnsafeMutablePointer<Double>) {
        guard coefficientCount > 0, ev.kind.isInterior else { return }
        let n = ev.count, D = network.numParameters
        for k in 0..<coefficientCount {
            let row = ev.coefficientRows.pointer + k * n, vk = v[D + k]
            for i in 0..<n { jv[i] += row[i] * vk }
        }
    }

    /// G_κκ = Σ_t w_t/N_t Σ_n (∂r_n/∂κ̂)(∂r_n/∂κ̂)ᵀ (p × p, row-major) after `forward`.
    func coefficientGramian(into g: UnsafeMutablePointer<Double>) throws {
        let p = coefficientCount
        try group.sum(g, count: p * p) {
            g.update(repeating: 0, count: p * p)
            for ev in terms where ev.count > 0 && ev.kind.isInterior {
                let n = ev.count, scale = ev.weight / ev.total, rows = ev.coefficientRows.pointer
                for a in 0..<p {
                    for b in 0...a {
                        let v = scale * BLAS.dot(n, rows + a * n, rows + b * n)
                        g[a * p + b] += v
                        if a != b { g[b * p + a] += v }
                    }
                }
            }
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

/// A point θ = θ₀ + α p of a line (a line-search trial; θ itself is passed as well).
struct LinePoint {
    let origin: UnsafePointer<Double>, direction: UnsafePointer<Double>, alpha: Double
}

/// The evaluation state of one loss term: its Taylor pass, residuals r_n, their Jacobian seeds
/// ∂r_n/∂(output columns) (S·N, in the pass's column blocks), and J v per tangent space.
final class TermEvaluation {
    let pass: TaylorPass
    let residuals = Buffer(), seeds = Buffer()
    /// Interior terms of a loss with trainable coefficients: ∂r_n/∂κ̂_k (p × N, row k), after a
    /// forward pass at the current parameters.
    let coefficientRows = Buffer()
    /// Taylor passes with the trained C entries' E_ij, and their 𝒟_{E_ij} u (one row of N each).
    private var entryPasses: [TaylorPass] = []
    private let entryTerms = Buffer()
    /// J_n v of the term's residuals for up to two directions at once (one per tangent space).
    let jv = [Buffer(), Buffer()]
    /// The probe directions of a randomized interior term for the draw and the (slices of) points
    /// seen with it: a line search evaluates the same slices many times.
    private var probes: [(draw: UInt64, first: Int, points: [Double], directions: [Double])] = []
    /// A randomized term's first-layer products on a line (TaylorPass.LineLayer), per slice of
    /// points (by its first index), with the line, draw and point count they were formed for.
    private var lineProducts: [Int: (products: Buffer, generation: Int, draw: UInt64, count: Int)] = [:]
    /// Most values all slices' line products may hold together; slices beyond it take the GEMM.
    static let lineProductLimit = 1 << 24
    /// The slices of points with line products kept (for tests).
    var lineProductSlices: Int { lineProducts.count }
    private(set) var kind = LossTermKind.interior
    /// This process's points of the term, and N_t, the term's points over all processes (set by
    /// `PINNLoss.forward`).
    private(set) var count = 0
    var total = 0.0
    private(set) var weight = 1.0
    /// Σ_n r_n² of the last forward pass.
    private(set) var squares = 0.0

    init(network: MLP) { pass = TaylorPass(network: network) }

    /// The term's pass and residuals at the network's parameters or at `theta`, with the
    /// operator's coefficients `values`; at the network's parameters also the coefficient rows
    /// (with 𝒟_{E_ij} u from a pass per trained C entry in `secondOrderEntries`). A randomized
    /// operator's probes are drawn for (`draw`, term `index`) once per batch of points.
    func forward(_ term: LossTerm, _ op: Operator, _ values: ResolvedCoefficients, secondOrderEntries: [Coefficients],
                 at theta: UnsafePointer<Double>?, draw: UInt64, index: Int,
                 line: (point: LinePoint, generation: Int)? = nil) throws {
        kind = term.kind
        count = term.count
        weight = term.weight
        squares = 0
        let n = count
        guard n > 0 else { return }
        switch term.kind {
        case .interior:
            pass.outputGradientUsed = op.readsGradient
            let gradientColumns: Int
            if case .randomized(let e) = op.estimator {
                probes.removeAll { $0.draw != draw }
                let directions: [Double]
                if let cached = probes.first(where: { $0.first == term.firstIndex && $0.points == term.points }) {
                    directions = cached.directions
                } else {
                    directions = try op.probeDirections(e, points: term.points, count: n, draw: draw, term: index, first: term.firstIndex)
                    probes.append((draw, term.firstIndex, term.points, directions))
                }
                let columns = ProbeColumns(weights: op.probeWeights(e, passScale: values.passScale), directions: directions)
                let layer = theta == nil ? nil : line.flatMap { lineLayer($0.point, generation: $0.generation, first: term.firstIndex,
                                                                          count: n, columns: columns.count + 2, draw: draw) }
                try pass.forward(term.points, count: n, mode: .probes(columns), parameters: theta, line: layer)
                if layer != nil, let line { lineProducts[term.firstIndex]?.generation = line.generation }
                gradientColumns = op.randomizedGradientColumns
            } else {
                try pass.forward(term.points, count: n, mode: .taylor(values.pass), parameters: theta)
                gradientColumns = op.dimension
            }
            let S = pass.columnsPerSample, r = try residuals.reserve(n), js = try seeds.reserve(n * S)
            term.points.withUnsafeBufferPointer { x in
                term.targets.withUnsafeBufferPointer { f in
                    op.residuals(output: pass.output, points: x.baseAddress!, source: f.baseAddress!, count: n,
                                 columnsPerSample: S, gradientColumns: gradientColumns, values: values, residuals: r, seeds: js)
                }
            }
            let p = values.chain.count
            if p > 0 && theta == nil {
                let rows = try coefficientRows.reserve(p * n), s = pass.columnsPerSample
                let terms = try entryTerms.reserve(secondOrderEntries.count * n)
                for (k, e) in secondOrderEntries.enumerated() {
                    if k == entryPasses.count { entryPasses.append(TaylorPass(network: pass.network)) }
                    try entryPasses[k].forward(term.points, count: n, mode: .taylor(e))
                    (terms + k * n).update(from: entryPasses[k].output + (s - 1) * n, count: n)
                }
                term.targets.withUnsafeBufferPointer { f in
                    op.coefficientJacobian(output: pass.output, source: f.baseAddress!, count: n,
                                           secondOrderBlock: S - 1, values: values, entryTerms: terms, into: rows)
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

extension TermEvaluation {
    /// The first layer of a pass at `point` on the line `generation` for the slice of `count`
    /// points from `first`: its products ready if formed for this line, draw and slice; nil (the
    /// pass multiplies by W₀) when they would exceed `lineProductLimit` or cannot be allocated.
    /// The caller marks them formed after the pass.
    fileprivate func lineLayer(_ point: LinePoint, generation: Int, first: Int, count n: Int, columns: Int,
                               draw: UInt64) -> TaylorPass.LineLayer? {
        let size = TaylorPass.LineLayer.productCount(pass.network, count: n, columns: columns)
        if let kept = lineProducts[first], kept.products.capacity >= size {
            let current = kept.draw == draw && kept.count == n
            if !current { lineProducts[first] = (kept.products, generation &- 1, draw, n) }
            return TaylorPass.LineLayer(origin: point.origin, direction: point.direction, alpha: point.alpha,
                                        products: kept.products.pointer, ready: current && kept.generation == generation)
        }
        var others = 0
        for (key, kept) in lineProducts where key != first { others += kept.products.capacity }
        guard others + size <= Self.lineProductLimit else { return nil }
        let products = lineProducts[first]?.products ?? Buffer()
        guard (try? products.reserve(size)) != nil else { return nil }
        lineProducts[first] = (products, generation &- 1, draw, n)
        return TaylorPass.LineLayer(origin: point.origin, direction: point.direction, alpha: point.alpha,
                                    products: products.pointer, ready: false)
    }
}

/// Σ_k r_k² on the calling thread (the loss of every line-search trial).
func sumOfSquares(_ n: Int, _ r: UnsafePointer<Double>) -> Double {
    var sum = 0.0
    for k in 0..<n { sum += r[k] * r[k] }
    return sum
}
