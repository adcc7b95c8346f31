import CKernels

/// KFAC for PINN losses (Dangel, Müller, Zeinhofer 2024), math.md §5–6.
///
/// Per linear layer it keeps Kronecker factors of the interior and condition GGN blocks,
/// G_Ω ≈ B_Ω ⊗ A_Ω and G_∂ ≈ B_∂ ⊗ A_∂, as exponential moving averages, and preconditions
/// the gradient with the exact inverse of their damped Kronecker sum. The step is
/// either a grid line search on heavy-ball momentum (KFAC), a fixed learning rate, or
/// the automatic step size and momentum of the damped 2-D quadratic model (KFAC*).
public final class KFAC: Optimizer {
    /// How the step is scaled.
    public enum StepRule: String, CaseIterable, Sendable {
        /// θ ← θ + α* m, α* minimising the batch loss over {2^−30, …, 2^0}.
        case lineSearch = "line_search"
        /// KFAC*: α, μ from the damped quadratic model with the exact GGN.
        case automatic = "auto"
        /// θ ← θ + lr · m.
        case fixed
    }

    /// Initial value of the moving averages of the factors.
    public enum FactorInitialization: String, CaseIterable, Sendable {
        case identity, zero
    }

    public struct Options: Sendable, Equatable {
        /// λ > 0, added to all four factors (and to the quadratic model of KFAC*).
        public var damping = 1e-10
        /// β ∈ [0, 1): F ← β F + (1 − β) F_batch.
        public var ema = 0.95
        /// Heavy-ball μ ∈ [0, 1) of the line-search and fixed steps.
        public var momentum = 0.0
        public var stepRule = StepRule.lineSearch
        /// Learning rate of `.fixed` steps.
        public var learningRate = 1.0
        /// T_kfac: update the factors every this many steps.
        public var factorPeriod = 1
        /// T_inv: recompute the eigendecompositions every this many steps.
        public var inversePeriod = 1
        public var factorInitialization = FactorInitialization.identity
        public var approximation = KroneckerApproximation.expand

        public init() {}

        func validate() throws {
            try requireDamping(damping)
            try requireUnitInterval(ema, "ema")
            try requireUnitInterval(momentum, "momentum")
            try requireLearningRate(learningRate)
            guard factorPeriod >= 1 else { throw KFPError.invalidArgument("factor_period must be at least 1, got \(factorPeriod)") }
            guard inversePeriod >= 1 else { throw KFPError.invalidArgument("inverse_period must be at least 1, got \(inversePeriod)") }
        }
    }

    /// The damped Kronecker factors of one layer (undamped moving averages).
    struct LayerState {
        var interiorA: [Double], interiorB: [Double], boundaryA: [Double], boundaryB: [Double]
        var inverse: KroneckerSumInverse

        /// Takes over the factors of `other` (same layer) with `factors`, its inverse with
        /// `inverse`, in place.
        mutating func assign(_ other: LayerState, factors withFactors: Bool, inverse withInverse: Bool) {
            if withFactors {
                copyValues(other.interiorA, into: &interiorA)
                copyValues(other.interiorB, into: &interiorB)
                copyValues(other.boundaryA, into: &boundaryA)
                copyValues(other.boundaryB, into: &boundaryB)
            }
            if withInverse { inverse.assign(other.inverse) }
        }
    }

    public let network: MLP
    public let loss: PINNLoss
    public private(set) var options: Options
    /// Steps taken (including rejected line-search steps).
    public private(set) var stepCount = 0
    /// Time per phase, accumulated over the steps.
    public private(set) var profile = StepProfile()
    var layers: [LayerState]
    /// The next step's state, written in place and swapped with `layers` when the step succeeds:
    /// no factor or eigenvector array is allocated per step.
    private var candidateLayers: [LayerState]
    /// Whether any batch had condition points (else the Kronecker sum has one term).
    var hasBoundary = false
    var invertedOnce = false
    /// Heavy-ball buffer m (line search, fixed) or the previous update δ (KFAC*).
    var previousUpdate: [Double]
    var hasPreviousUpdate = false

    // Work space, reused across steps.
    var gradient: [Double], direction: [Double]
    private var theta0: [Double], candidate: [Double]
    /// Per layer: work space for the batch's factors A and B, and for the solve.
    private let batchFactors: [(a: Buffer, b: Buffer)], solveWork: [Buffer]
    /// Multiply-adds of the Kronecker-sum solves of all layers (four GEMMs per layer).
    private let solveProducts: Int
    /// The layers by decreasing cost of their factorisation ((h_in+1)³ + h_out³), for `factorizeInverses`.
    private let inverseOrder: [Int]
    /// Per layer, the error of its factorisation in `factorizeInverses` (kept: no array per step).
    private var inverseErrors: [(any Error)?] = []

    public init(network: MLP, operator op: Operator, options: Options = Options()) throws {
        try options.validate()
        self.network = network
        self.loss = try PINNLoss(network: network, operator: op)
        self.options = options
        let d = network.numParameters
        gradient = [Double](repeating: 0, count: d)
        direction = gradient
        theta0 = gradient
        candidate = gradient
        previousUpdate = gradient
        batchFactors = (0..<network.numLayers).map { _ in (Buffer(), Buffer()) }
        solveWork = (0..<network.numLayers).map { _ in Buffer() }
        solveProducts = (0..<network.numLayers).reduce(0) { sum, l in
            let hout = network.widths[l + 1], h1 = network.widths[l] + 1
            return sum + 2 * hout * h1 * (hout + h1)
        }
        inverseOrder = (0..<network.numLayers).sorted { l, k in
            func cost(_ l: Int) -> Double {
                let a = Double(network.widths[l] + 1), b = Double(network.widths[l + 1])
                return a * a * a + b * b * b
            }
            return (cost(l), k) > (cost(k), l)
        }
        layers = []
        for l in 0..<network.numLayers {
            let hin1 = network.widths[l] + 1, hout = network.widths[l + 1]
            let a = KFAC.initialFactor(hin1, options.factorInitialization)
            let b = KFAC.initialFactor(hout, options.factorInitialization)
            layers.append(LayerState(interiorA: a, interiorB: b, boundaryA: a, boundaryB: b,
                                     inverse: KroneckerSumInverse(rows: hout, columns: hin1)))
        }
        candidateLayers = layers
    }

    static func initialFactor(_ n: Int, _ kind: FactorInitialization) -> [Double] {
        var m = [Double](repeating: 0, count: n * n)
        if kind == .identity { for i in 0..<n { m[i * n + i] = 1 } }
        return m
    }

    /// Replaces all options at once (validated; nothing changes on failure).
    public func setOptions(_ new: Options) throws {
        try new.validate()
        if new.factorInitialization != options.factorInitialization {
            guard stepCount == 0 else { throw KFPError.invalidArgument("factor_init can only be changed before the first step") }
            for l in 0..<layers.count {
                let hin1 = network.widths[l] + 1, hout = network.widths[l + 1]
                let a = KFAC.initialFactor(hin1, new.factorInitialization)
                let b = KFAC.initialFactor(hout, new.factorInitialization)
                layers[l].interiorA = a; layers[l].boundaryA = a
                layers[l].interiorB = b; layers[l].boundaryB = b
            }
        }
        options = new
    }

    static var optionFields: [OptimizerOption: OptionField<Options>] {
        [.damping: .double(\.damping), .ema: .double(\.ema), .momentum: .double(\.momentum),
         .learningRate: .double(\.learningRate), .factorPeriod: .int(\.factorPeriod), .inversePeriod: .int(\.inversePeriod),
         .stepRule: .choice(\.stepRule, "step rule"), .factorInitialization: .choice(\.factorInitialization, "factor initialisation"),
         .approximation: .choice(\.approximation, "Kronecker approximation")]
    }

    public func setOption(_ option: OptimizerOption, _ value: OptionValue) throws {
        try setOptions(try updatedOptions(options, option, value, KFAC.optionFields, optimizer: "KFAC"))
    }

    public func option(_ option: OptimizerOption) throws -> OptionValue {
        try optionValue(options, option, KFAC.optionFields, optimizer: "KFAC")
    }

    /// One KFAC (or KFAC*) step on `batch`. On a thrown error (dimension mismatch, a
    /// non-finite loss, gradient or update, a failed eigendecomposition) the parameters
    /// and the optimizer state are as before.
    public func step(_ batch: Batch) throws -> StepStatistics {
        try BLAS.onLibraryThreads { try stepOnLibraryThreads(batch) }
    }

    private func stepOnLibraryThreads(_ batch: Batch) throws -> StepStatistics {
        var clock = monotonicSeconds(), times = StepProfile()
        func lap(_ phase: WritableKeyPath<StepProfile, Double>) {
            let now = monotonicSeconds()
            times[keyPath: phase] += now - clock
            clock = now
        }
        let value = try loss.forward(batch)
        lap(\.forward)
        let D = network.numParameters
        try gradient.withUnsafeMutableBufferPointer { g in
            loss.gradientKeepingJacobianAdjoints(batch, into: g.baseAddress!)
            if let i = firstNonFinite(g.baseAddress!, D) {
                throw KFPError.nonFinite("KFAC: the gradient has a non-finite entry at index \(i)")
            }
        }
        lap(\.backward)
        // Candidate curvature state; committed only when the whole step succeeds.
        let updateFactors = stepCount % options.factorPeriod == 0
        let invert = stepCount % options.inversePeriod == 0 || !invertedOnce
        var newLayers = [LayerState]()
        swap(&newLayers, &candidateLayers)
        defer { swap(&newLayers, &candidateLayers) }
        // Updated factors are written from the current ones (`updateMovingAverages`), not copied.
        for l in 0..<newLayers.count { newLayers[l].assign(layers[l], factors: !updateFactors, inverse: !invert) }
        var newHasBoundary = hasBoundary
        if updateFactors {
            if batch.boundaryCount > 0 { newHasBoundary = true }
            let boundary = batch.boundaryCount > 0
            if factorsStayOnTheirThread {
                // The layers' factors are independent work: two layers at a time, on two threads.
                newLayers.withUnsafeMutableBufferPointer { states in
                    struct Work: @unchecked Sendable { let kfac: KFAC, states: UnsafeMutableBufferPointer<LayerState> }
                    let work = Work(kfac: self, states: states)
                    WorkerPool.shared.parallelFor(states.count) { l in
                        work.kfac.updateMovingAverages(&work.states[l], layer: l, boundary: boundary, threads: 1)
                    }
                }
            } else {
                for l in 0..<newLayers.count {
                    updateMovingAverages(&newLayers[l], layer: l, boundary: boundary, threads: BLAS.numThreads)
                }
            }
        }
        lap(\.factors)
        // Δ = −X, X solving the damped Kronecker sum, per layer: right after the layer's
        // factorisation when the inverses are recomputed.
        if invert {
            try factorizeInverses(&newLayers, boundary: newHasBoundary, threads: BLAS.numThreads, solve: true)
            lap(\.inverse)
        } else {
            preconditionGradient(newLayers)
        }
        try direction.withUnsafeBufferPointer { try requireFiniteUpdate($0.baseAddress!, D, "KFAC") }
        lap(\.solve)

        var stats = StepStatistics(loss: value.total, lossInterior: value.interior, lossBoundary: value.boundary,
                                   stepSize: 0, momentum: 0, updateNorm: 0, accepted: false)
        switch options.stepRule {
        case .automatic: try automaticStep(batch, &stats)
        case .lineSearch, .fixed: try momentumStep(batch, &stats)
        }
        lap(\.stepSize)
        times.steps = 1
        profile.add(times)
        swap(&layers, &newLayers)
        hasBoundary = newHasBoundary
        invertedOnce = true
        stepCount += 1
        return stats
    }

    /// Whether the layers' factors are computed two layers at a time, each on one thread: with two
    /// library threads and KFAC-expand (KFAC-reduce shares work space between layers).
    private var factorsStayOnTheirThread: Bool {
        BLAS.numThreads >= 2 && options.approximation == .expand
    }

    /// The layers' inverses: independent factorisations (`KroneckerSumInverse.factorize`), with
    /// two threads two layers at a time, largest first, each LAPACK call on its thread. With
    /// `solve`, a layer's block of the direction is solved right after its factorisation, so a
    /// thread done with the factorisations solves instead of waiting for the largest one. On
    /// failure, the error of the first failing layer.
    func factorizeInverses(_ states: inout [LayerState], boundary: Bool, threads: Int, solve: Bool = false) throws {
        struct Work: @unchecked Sendable {
            let kfac: KFAC, states: UnsafeMutableBufferPointer<LayerState>, errors: UnsafeMutableBufferPointer<(any Error)?>
            let damping: Double, boundary: Bool, solve: Bool
            let grad: UnsafePointer<Double>, dir: UnsafeMutablePointer<Double>
            func run(_ l: Int) {
                // The factors only: a copy of the whole state would share (and so copy) the eigenvectors.
                let (ia, ib, ba, bb) = (states[l].interiorA, states[l].interiorB, states[l].boundaryA, states[l].boundaryB)
                do {
                    try states[l].inverse.factorize(interiorA: ia, interiorB: ib, boundaryA: boundary ? ba : nil,
                                                    boundaryB: boundary ? bb : nil, damping: damping, layer: l)
                } catch {
                    errors[l] = error
                    return
                }
                if solve { kfac.preconditionGradient(layer: l, inverse: states[l].inverse, grad, dir) }
            }
        }
        if inverseErrors.count != states.count { inverseErrors = [(any Error)?](repeating: nil, count: states.count) }
        for l in inverseErrors.indices { inverseErrors[l] = nil }
        // Largest first for the network's layers; any other list of states in its own order.
        let order = states.count == inverseOrder.count ? inverseOrder : Array(states.indices)
        states.withUnsafeMutableBufferPointer { st in
            inverseErrors.withUnsafeMutableBufferPointer { er in
                gradient.withUnsafeBufferPointer { g in
                    direction.withUnsafeMutableBufferPointer { d in
                        let work = Work(kfac: self, states: st, errors: er, damping: options.damping, boundary: boundary,
                                        solve: solve, grad: g.baseAddress!, dir: d.baseAddress!)
                        WorkerPool.shared.parallelFor(st.count, threads: threads) { work.run(order[$0]) }
                    }
                }
            }
        }
        if let error = inverseErrors.lazy.compactMap({ $0 }).first { throw error }
    }

    /// F ← β F_current + (1 − β) F_batch for the four factors of layer l, written into `state`
    /// (the candidate); without condition points in the batch the boundary factors are copied.
    private func updateMovingAverages(_ state: inout LayerState, layer l: Int, boundary: Bool, threads: Int) {
        let hin1 = network.widths[l] + 1, hout = network.widths[l + 1], beta = options.ema, current = layers[l]
        let a = batchFactors[l].a.reserve(hin1 * hin1), b = batchFactors[l].b.reserve(hout * hout)
        func blend(_ f: inout [Double], _ old: [Double], _ batch: UnsafePointer<Double>) {
            f.withUnsafeMutableBufferPointer { p in
                old.withUnsafeBufferPointer { o in
                    for i in 0..<p.count { p[i] = beta * o[i] + (1 - beta) * batch[i] }
                }
            }
        }
        loss.interiorPass.kroneckerFactors(layer: l, approximation: options.approximation, a: a, b: b, threads: threads)
        blend(&state.interiorA, current.interiorA, a)
        blend(&state.interiorB, current.interiorB, b)
        if boundary {
            loss.boundaryPass.kroneckerFactors(layer: l, approximation: options.approximation, a: a, b: b, threads: threads)
            blend(&state.boundaryA, current.boundaryA, a)
            blend(&state.boundaryB, current.boundaryB, b)
        } else {
            copyValues(current.boundaryA, into: &state.boundaryA)
            copyValues(current.boundaryB, into: &state.boundaryB)
        }
    }

    /// direction = −X per layer, X the Kronecker-sum solve of the layer's gradient; with two
    /// library threads and products worth it (over 2^20 multiply-adds in all), two layers at a
    /// time, each writing its own part of the direction.
    private func preconditionGradient(_ states: [LayerState]) {
        struct Work: @unchecked Sendable {
            let kfac: KFAC, states: UnsafeBufferPointer<LayerState>
            let grad: UnsafePointer<Double>, dir: UnsafeMutablePointer<Double>
            func run(_ l: Int) { kfac.preconditionGradient(layer: l, inverse: states[l].inverse, grad, dir) }
        }
        states.withUnsafeBufferPointer { st in
            gradient.withUnsafeBufferPointer { g in
                direction.withUnsafeMutableBufferPointer { d in
                    let work = Work(kfac: self, states: st, grad: g.baseAddress!, dir: d.baseAddress!)
                    let threads = solveProducts >= 1 << 20 ? BLAS.numThreads : 1
                    WorkerPool.shared.parallelFor(st.count, threads: threads) { work.run($0) }
                }
            }
        }
    }

    /// dir[layer l] = −X for the gradient `grad`, in the layer's work space.
    private func preconditionGradient(layer l: Int, inverse: KroneckerSumInverse, _ grad: UnsafePointer<Double>,
                                      _ dir: UnsafeMutablePointer<Double>) {
        let hin = network.widths[l], hout = network.widths[l + 1], h1 = hin + 1
        let wo = network.weightOffset(l), bo = network.biasOffset(l), size = hout * h1
        let g = solveWork[l].reserve(3 * size), x = g + size, w = x + size
        for j in 0..<hout {
            for i in 0..<hin { g[j * h1 + i] = grad[wo + j * hin + i] }
            g[j * h1 + hin] = grad[bo + j]
        }
        inverse.solve(g, into: x, work: w)
        for j in 0..<hout {
            for i in 0..<hin { dir[wo + j * hin + i] = -x[j * h1 + i] }
            dir[bo + j] = -x[j * h1 + hin]
        }
    }

    /// Heavy ball m ← μ m + Δ, then θ ← θ + α m with α from the grid line search or fixed.
    private func momentumStep(_ batch: Batch, _ stats: inout StepStatistics) throws {
        let D = network.numParameters, mu = hasPreviousUpdate ? options.momentum : 0
        candidate.withUnsafeMutableBufferPointer { m in
            previousUpdate.withUnsafeBufferPointer { prev in
                direction.withUnsafeBufferPointer { dir in
                    for i in 0..<D { m[i] = mu * prev[i] + dir[i] }
                }
            }
        }
        copyValues(network.parameters, into: &theta0)   // in place: no copy-on-write of θ later
        var alpha = options.learningRate
        if options.stepRule == .lineSearch {
            alpha = theta0.withUnsafeBufferPointer { t in
                candidate.withUnsafeBufferPointer { m in
                    loss.gridLineSearch(batch, from: t.baseAddress!, along: m.baseAddress!, below: stats.loss)
                }
            }
            if alpha == 0 {
                // No grid value lowers the loss: the parameters stay where they were, the
                // heavy-ball buffer still becomes μ m + Δ (so the next step's direction differs).
                swap(&previousUpdate, &candidate)
                hasPreviousUpdate = true
                stats.momentum = mu
                return
            }
        }
        try commitCandidate(alpha: alpha)
        stats.stepSize = alpha
        stats.momentum = mu
        stats.updateNorm = alpha * previousUpdate.withUnsafeBufferPointer { BLAS.nrm2(D, $0.baseAddress!) }
        stats.accepted = true
    }

    /// θ ← θ₀ + α · candidate.
    private func setParameters(alpha: Double) {
        theta0.withUnsafeBufferPointer { t in
            candidate.withUnsafeBufferPointer { m in network.setParameters(t.baseAddress!, plus: alpha, times: m.baseAddress!) }
        }
    }

    /// θ ← θ₀ + α · candidate if that is finite (else θ₀ is restored and the step throws);
    /// the candidate becomes the stored momentum buffer / previous update.
    private func commitCandidate(alpha: Double) throws {
        setParameters(alpha: alpha)
        try network.parameters.withUnsafeBufferPointer { p in
            do { try requireFiniteUpdate(p.baseAddress!, p.count, "KFAC") } catch {
                network.assignParameters(theta0)
                throw error
            }
        }
        swap(&previousUpdate, &candidate)
        hasPreviousUpdate = true
    }

    /// KFAC*: minimise the damped quadratic model over span{Δ, δ}:
    /// M = [[ΔᵀGΔ + λ‖Δ‖², ΔᵀGδ + λΔᵀδ], [·, δᵀGδ + λ‖δ‖²]], b = [∇ᵀΔ, ∇ᵀδ], (α, μ) = −M⁻¹b;
    /// first step (no δ) with the 1-D model. Then δ ← αΔ + μδ, θ ← θ + δ.
    private func automaticStep(_ batch: Batch, _ stats: inout StepStatistics) throws {
        let D = network.numParameters
        let (alpha, mu) = quadraticModelStep(batch)
        guard alpha.isFinite, mu.isFinite else {
            throw KFPError.nonFinite("KFAC*: the quadratic model gave a non-finite step (α = \(alpha), μ = \(mu))")
        }
        // One sweep: candidate δ = αΔ + μδ_prev, θ₀ = θ, θ ← θ + δ, ‖δ‖² and a finiteness sum.
        let sums = candidate.withUnsafeMutableBufferPointer { c in
            theta0.withUnsafeMutableBufferPointer { t0 in
                previousUpdate.withUnsafeBufferPointer { prev in
                    direction.withUnsafeBufferPointer { dir in
                        network.withMutableParameters { theta in
                            withUnsafeTemporaryAllocation(of: Double.self, capacity: 2) { out in
                                kernels_apply_update(kernelISA, D, alpha, dir.baseAddress!, mu, prev.baseAddress!, theta,
                                                     t0.baseAddress!, c.baseAddress!, out.baseAddress!)
                                return (squares: out[0], finite: out[1])
                            }
                        }
                    }
                }
            }
        }
        if sums.finite != 0, let error = network.parameters.withUnsafeBufferPointer({ nonFiniteUpdate($0.baseAddress!, D, "KFAC") }) {
            network.assignParameters(theta0)
            throw error
        }
        swap(&previousUpdate, &candidate)
        hasPreviousUpdate = true
        stats.stepSize = alpha
        stats.momentum = mu
        stats.updateNorm = sums.squares.squareRoot()
        stats.accepted = true
    }

    /// (α, μ) of the damped quadratic model at the current forward pass and the Jacobian adjoints
    /// of `gradientKeepingJacobianAdjoints` (see `automaticStep`).
    func quadraticModelStep(_ batch: Batch) -> (alpha: Double, mu: Double) {
        let c = quadraticModelCoefficients(batch)
        if hasPreviousUpdate {
            let det = c.m11 * c.m22 - c.m12 * c.m12
            if det > 0, det.isFinite {
                let alpha = -(c.m22 * c.b1 - c.m12 * c.b2) / det
                let mu = -(-c.m12 * c.b1 + c.m11 * c.b2) / det
                return (alpha, mu)
            }
        }
        // A zero direction (zero gradient) gives a zero model: no step.
        return c.m11 > 0 ? (-c.b1 / c.m11, 0) : (0, 0)
    }

    /// Entries of the damped 2-D quadratic model, from J Δ and J δ (from the Jacobian adjoints the
    /// step's gradient pass kept; with two library threads both at once, one per thread).
    func quadraticModelCoefficients(_ batch: Batch)
        -> (m11: Double, m12: Double, m22: Double, b1: Double, b2: Double)
    {
        let D = network.numParameters, n = batch.interiorCount, m = batch.boundaryCount
        let lambda = options.damping
        return direction.withUnsafeBufferPointer { dirp in
            gradient.withUnsafeBufferPointer { gp in
                previousUpdate.withUnsafeBufferPointer { pp in
                    let dir = dirp.baseAddress!, g = gp.baseAddress!, prev = pp.baseAddress!
                    struct Directions: @unchecked Sendable {
                        let loss: PINNLoss, batch: Batch, dir: UnsafePointer<Double>, prev: UnsafePointer<Double>
                    }
                    let directions = Directions(loss: loss, batch: batch, dir: dir, prev: prev)
                    let count = hasPreviousUpdate ? 2 : 1, concurrent = count == 2 && BLAS.numThreads >= 2
                    if concurrent { loss.setRunsConcurrently(true) }
                    WorkerPool.shared.parallelFor(count, threads: concurrent ? 2 : 1) { k in
                        directions.loss.jacobianVectorProductsFromAdjoints(k == 0 ? directions.dir : directions.prev,
                                                                           batch: directions.batch, space: k)
                    }
                    if concurrent { loss.setRunsConcurrently(false) }
                    // ΔᵀΔ, ∇ᵀΔ, Δᵀδ, δᵀδ, ∇ᵀδ in one sweep.
                    let dots = withUnsafeTemporaryAllocation(of: Double.self, capacity: 5) { out in
                        kernels_model_products(kernelISA, D, g, dir, prev, out.baseAddress!)
                        return (dd: out[0], gd: out[1], dp: out[2], pp: out[3], gp: out[4])
                    }
                    let ji = loss.interiorJv[0].pointer, jb = loss.boundaryJv[0].pointer
                    let m11 = PINNLoss.ggnInner(ji, ji, n, jb, jb, m) + lambda * dots.dd
                    guard hasPreviousUpdate else { return (m11, 0, 0, dots.gd, 0) }
                    let ki = loss.interiorJv[1].pointer, kb = loss.boundaryJv[1].pointer
                    let m12 = PINNLoss.ggnInner(ji, ki, n, jb, kb, m) + lambda * dots.dp
                    let m22 = PINNLoss.ggnInner(ki, ki, n, kb, kb, m) + lambda * dots.pp
                    return (m11, m12, m22, dots.gd, dots.gp)
                }
            }
        }
    }
}
