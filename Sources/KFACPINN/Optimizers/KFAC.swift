/// KFAC for PINN losses (Dangel, Müller, Zeinhofer 2024), docs/math.md §5–6.
///
/// One `KroneckerBlock` per linear layer keeps the Kronecker factors of the interior and
/// condition GGN blocks, G₁ ≈ B₁ ⊗ A₁ and G₂ ≈ B₂ ⊗ A₂, as moving averages and preconditions
/// the gradient with the exact inverse of their damped Kronecker sum. The operator's trainable
/// coefficients κ̂ (p of them) are one more block: their exact GGN block G_κκ on the step's batch,
/// damped with the same λ and solved densely (block-diagonal preconditioner, docs/math.md §10). This class keeps the
/// schedule (T_kfac, T_inv) and the step: a grid line search on heavy-ball momentum (KFAC), a
/// fixed learning rate, or the step size and momentum of the damped 2-D quadratic model
/// (KFAC*, `QuadraticModel`).
public final class KFAC: Optimizer, OptionTable, GuardedOptimizer {
    static let displayName = "KFAC"
    static let defaultOptions = Options()

    /// How the step is scaled.
    public enum StepRule: String, CaseIterable, Sendable {
        /// θ ← θ + α* m, α* minimising the batch loss over {2^−30, …, 2^0}.
        case lineSearch = "line_search"
        /// KFAC*: α, μ from the damped quadratic model with the exact GGN.
        case automatic = "auto"
        /// θ ← θ + lr · m.
        case fixed
    }

    /// How λ evolves over the steps.
    public enum DampingRule: String, CaseIterable, Sendable {
        /// λ stays the `damping` option (the paper's KFAC*).
        case fixed
        /// KFAC* steps adapt λ by Levenberg–Marquardt from each step's reduction ratio on its
        /// batch and are not taken when they do not lower that batch's loss (`QuadraticModel`);
        /// the adapted λ is the `damping` option. Line-search and fixed steps keep λ.
        case adaptive
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
        public var dampingRule = DampingRule.adaptive
        /// Lower bound λ_min > 0 of the adaptive damping rule.
        public var minDamping = 1e-14

        public init() {}

        func validate() throws {
            try requireDamping(damping)
            guard minDamping.isFinite, minDamping > 0, minDamping <= KFAC.maxDamping else {
                throw KFPError.invalidArgument("min_damping must lie in (0, \(KFAC.maxDamping)], got \(minDamping)")
            }
            try requireUnitInterval(ema, "ema")
            try requireUnitInterval(momentum, "momentum")
            try requireLearningRate(learningRate)
            guard factorPeriod >= 1 else { throw KFPError.invalidArgument("factor_period must be at least 1, got \(factorPeriod)") }
            guard inversePeriod >= 1 else { throw KFPError.invalidArgument("inverse_period must be at least 1, got \(inversePeriod)") }
        }
    }

    public let network: MLP
    public let loss: PINNLoss
    let divergence = DivergenceGuard()
    public internal(set) var options: Options
    /// Steps taken (including rejected line-search steps).
    public private(set) var stepCount = 0
    /// Time per phase, accumulated over the steps.
    public private(set) var profile = StepProfile()
    /// One curvature block per linear layer.
    let blocks: [KroneckerBlock]
    let lineSearch: GridLineSearch
    var invertedOnce = false
    /// λ of the kept factorisations: a step under another λ refactorises.
    var factorizationDamping = 0.0
    /// λ of the current step (`options.damping`, raised on a retry).
    var stepDamping = 0.0
    /// Heavy-ball buffer m (line search, fixed) or the previous update δ (KFAC*).
    var previousUpdate: [Double]
    var hasPreviousUpdate = false

    // Work space, reused across steps.
    var gradient: [Double], direction: [Double]
    var theta0: [Double], candidate: [Double]
    /// Multiply-adds of the Kronecker-sum solves of all layers.
    private let solveProducts: Int
    /// The layers by decreasing cost of their factorisation, for `factorizeInverses`.
    private let inverseOrder: [Int]
    /// Per layer, the error of its factorisation in `factorizeInverses` (kept: no array per step).
    private var inverseErrors: [(any Error)?]
    /// G_κκ of the step's batch (p × p) and the work space of its damped solve.
    private let coefficientBlock = Buffer(), coefficientSolution = Buffer(), coefficientWork = Buffer()
    /// The layers' batch factors, packed for their sum over the processes of a data-parallel run
    /// (`packedFactorCount` values, reserved when the communicator is set).
    let factorSums = Buffer()
    var packedFactorCount: Int { blocks.reduce(0) { $0 + $1.packedFactorCount } }

    public init(network: MLP, operator op: Operator, options: Options = Options()) throws {
        try options.validate()
        self.network = network
        self.loss = try PINNLoss(network: network, operator: op)
        self.options = options
        stepDamping = options.damping
        lineSearch = GridLineSearch(loss: loss)
        let d = loss.parameterCount
        let what = "KFAC on a network of widths \(network.widths)"
        let storage = try (0..<network.numLayers).map { try KroneckerBlock.storage(network: network, layer: $0) }
        try Memory.require(doubles: Memory.total(storage + [Memory.product(5, d, what: what)], what), what)
        gradient = [Double](repeating: 0, count: d)
        direction = gradient
        theta0 = gradient
        candidate = gradient
        previousUpdate = gradient
        let blocks = (0..<network.numLayers).map {
            KroneckerBlock(network: network, layer: $0, initialization: options.factorInitialization)
        }
        self.blocks = blocks
        solveProducts = blocks.reduce(0) { $0 + $1.solveProducts }
        inverseOrder = blocks.indices.sorted { l, k in (blocks[l].factorizationCost, k) > (blocks[k].factorizationCost, l) }
        inverseErrors = [(any Error)?](repeating: nil, count: blocks.count)
    }

    /// Replaces all options at once (validated; nothing changes on failure).
    public func setOptions(_ new: Options) throws {
        try new.validate()
        if new.factorInitialization != options.factorInitialization {
            guard stepCount == 0 else { throw KFPError.invalidArgument("factor_init can only be changed before the first step") }
            for block in blocks { block.reset(new.factorInitialization) }
        }
        options = new
    }

    static var optionFields: [OptimizerOption: OptionField<Options>] {
        [.damping: .double(\.damping), .ema: .double(\.ema), .momentum: .double(\.momentum),
         .learningRate: .double(\.learningRate), .factorPeriod: .int(\.factorPeriod), .inversePeriod: .int(\.inversePeriod),
         .stepRule: .choice(\.stepRule, "step rule"), .factorInitialization: .choice(\.factorInitialization, "factor initialisation"),
         .approximation: .choice(\.approximation, "Kronecker approximation"), .dampingRule: .choice(\.dampingRule, "damping rule"),
         .minDamping: .double(\.minDamping)]
    }

    /// One KFAC (or KFAC*) step on `batch`. On a thrown error (dimension mismatch, a
    /// non-finite loss, gradient or update, a failed eigendecomposition) the parameters
    /// and the optimizer state are as before.
    func unguardedStep(_ batch: Batch) throws -> StepStatistics {
        try BLAS.onLibraryThreads { try stepOnLibraryThreads(batch) }
    }

    private func stepOnLibraryThreads(_ batch: Batch) throws -> StepStatistics {
        var clock = monotonicSeconds(), times = StepProfile()
        func lap(_ phase: WritableKeyPath<StepProfile, Double>) throws {
            let now = monotonicSeconds()
            times[keyPath: phase] += now - clock
            clock = now
        }
        let value = try loss.forward(batch)
        try lap(\.forward)
        let D = loss.parameterCount
        try gradient.withUnsafeMutableBufferPointer { g in
            try loss.gradientKeepingJacobianAdjoints(into: g.baseAddress!)
            if let i = firstNonFinite(g.baseAddress!, D) {
                throw KFPError.nonFinite("KFAC: the gradient has a non-finite entry at index \(i)")
            }
        }
        try lap(\.backward)
        // The blocks' candidate states; committed only when the whole step succeeds.
        let updateFactors = stepCount % options.factorPeriod == 0
        var invert = stepCount % options.inversePeriod == 0 || !invertedOnce || factorizationDamping != options.damping
        for block in blocks { block.prepare(updateFactors: updateFactors, refactorize: invert) }
        if updateFactors {
            // The batch's factors; in a data-parallel run summed over the processes before the
            // moving averages take them.
            let distributed = loss.group.isDistributed
            let count = distributed ? packedFactorCount : 0
            let packed = try factorSums.reserve(count)
            try loss.group.sum(packed, count: count) {
                if factorsStayOnTheirThread {
                    // The layers' factors are independent work: two layers at a time, on two threads.
                    struct Work: @unchecked Sendable { let kfac: KFAC, blend: Bool }
                    let work = Work(kfac: self, blend: !distributed)
                    try WorkerPool.shared.parallelFor(blocks.count) { l in
                        let kfac = work.kfac, block = kfac.blocks[l]
                        try block.computeBatchFactors(from: kfac.loss, approximation: kfac.options.approximation, threads: 1)
                        if work.blend { block.blendBatchFactors(ema: kfac.options.ema) }
                    }
                } else {
                    for block in blocks {
                        try block.computeBatchFactors(from: loss, approximation: options.approximation, threads: BLAS.numThreads)
                        if !distributed { block.blendBatchFactors(ema: options.ema) }
                    }
                }
                if distributed {
                    var k = 0
                    for block in blocks {
                        block.packBatchFactors(into: packed + k)
                        k += block.packedFactorCount
                    }
                }
            }
            if distributed {
                var k = 0
                for block in blocks {
                    block.unpackBatchFactors(from: packed + k)
                    k += block.packedFactorCount
                    block.blendBatchFactors(ema: options.ema)
                }
            }
        }
        let p = loss.coefficientCount
        if p > 0 { try loss.coefficientGramian(into: try coefficientBlock.reserve(p * p)) }
        try lap(\.factors)
        // Δ = −X, X solving the damped Kronecker sum, per layer: right after the layer's
        // factorisation when the inverses are recomputed. A failed factorisation or a non-finite
        // direction is retried (refactorising) with λ raised tenfold (`withDampingRetries`).
        stepDamping = try withDampingRetries(options.damping, retryFloor: { KFAC.relativeRetryDamping * largestFactorDiagonal }) { lambda, retry in
            stepDamping = lambda
            invert = invert || retry
            if invert {
                try factorizeInverses(threads: BLAS.numThreads, solve: true)
                try lap(\.inverse)
            } else {
                try preconditionGradient()
            }
            if p > 0 { try solveCoefficientBlock(damping: lambda) }
            try direction.withUnsafeBufferPointer { try requireFiniteUpdate($0.baseAddress!, D, "KFAC") }
        }
        try lap(\.solve)

        var stats = StepStatistics(loss: value.total, lossInterior: value.interior, lossBoundary: value.boundary,
                                   stepSize: 0, momentum: 0, updateNorm: 0, accepted: false, damping: stepDamping)
        switch options.stepRule {
        case .automatic: try automaticStep(batch, &stats)
        case .lineSearch, .fixed: try momentumStep(batch, &stats)
        }
        try lap(\.stepSize)
        times.steps = 1
        profile.add(times)
        for block in blocks { block.commit() }
        invertedOnce = true
        if invert { factorizationDamping = stepDamping }
        stepCount += 1
        return stats
    }

    /// A retried step's damping is at least this times the largest diagonal entry of the step's
    /// Kronecker factors (`withDampingRetries`): far above their rounding level (about n·ε
    /// relative), far below any damping that shapes a step.
    static let relativeRetryDamping = 1e-10

    /// The largest diagonal entry of the step's candidate factors, over all layers.
    private var largestFactorDiagonal: Double { blocks.reduce(0) { max($0, $1.largestCandidateDiagonal) } }

    /// Whether the layers' factors are computed two layers at a time, each on one thread (each
    /// block has its own work space): with two library threads.
    private var factorsStayOnTheirThread: Bool { BLAS.numThreads >= 2 }

    /// The blocks' candidate factorisations, with damping λ = `stepDamping`: independent work,
    /// with two threads two layers at a time, largest first, each LAPACK call on its thread. With
    /// `solve`, a layer's block of the direction is solved right after its factorisation, so a
    /// thread done with the factorisations solves instead of waiting for the largest one. On
    /// failure, the error of the first failing layer.
    func factorizeInverses(threads: Int, solve: Bool = false) throws {
        struct Work: @unchecked Sendable {
            let blocks: [KroneckerBlock], errors: UnsafeMutablePointer<(any Error)?>, damping: Double, solve: Bool
            let grad: UnsafePointer<Double>, dir: UnsafeMutablePointer<Double>
            func run(_ l: Int) throws {
                do { try blocks[l].factorize(damping: damping) } catch {
                    errors[l] = error
                    return
                }
                if solve { try blocks[l].multiplyInverse(grad, into: dir, scale: -1) }
            }
        }
        for l in inverseErrors.indices { inverseErrors[l] = nil }
        let order = inverseOrder
        try inverseErrors.withUnsafeMutableBufferPointer { er in
            try gradient.withUnsafeBufferPointer { g in
                try direction.withUnsafeMutableBufferPointer { d in
                    let work = Work(blocks: blocks, errors: er.baseAddress!, damping: stepDamping, solve: solve,
                                    grad: g.baseAddress!, dir: d.baseAddress!)
                    try WorkerPool.shared.parallelFor(blocks.count, threads: threads) { try work.run(order[$0]) }
                }
            }
        }
        if let error = inverseErrors.lazy.compactMap({ $0 }).first { throw error }
    }

    /// direction = −X per layer with the blocks' candidate factorisations; with two library
    /// threads and products worth it (over 2^20 multiply-adds in all), two layers at a time,
    /// each writing its own part of the direction.
    private func preconditionGradient() throws {
        struct Work: @unchecked Sendable {
            let blocks: [KroneckerBlock], grad: UnsafePointer<Double>, dir: UnsafeMutablePointer<Double>
        }
        try gradient.withUnsafeBufferPointer { g in
            try direction.withUnsafeMutableBufferPointer { d in
                let work = Work(blocks: blocks, grad: g.baseAddress!, dir: d.baseAddress!)
                let threads = solveProducts >= 1 << 20 ? BLAS.numThreads : 1
                try WorkerPool.shared.parallelFor(blocks.count, threads: threads) {
                    try work.blocks[$0].multiplyInverse(work.grad, into: work.dir, scale: -1)
                }
            }
        }
    }

    /// direction[D..<P] = −(G_κκ + λI)⁻¹ ∇_κ̂ L.
    private func solveCoefficientBlock(damping lambda: Double) throws {
        let p = loss.coefficientCount, D = network.numParameters, x = try coefficientSolution.reserve(p)
        try gradient.withUnsafeBufferPointer { g in
            try dampedSymmetricSolve(coefficientBlock.pointer, n: p, damping: lambda, g.baseAddress! + D, into: x,
                                     work: coefficientWork)
        }
        for k in 0..<p { direction[D + k] = -x[k] }
    }

    /// Heavy ball m ← μ m + Δ, then θ ← θ + α m with α from the grid line search or fixed.
    private func momentumStep(_ batch: Batch, _ stats: inout StepStatistics) throws {
        let D = loss.parameterCount, mu = hasPreviousUpdate ? options.momentum : 0
        candidate.withUnsafeMutableBufferPointer { m in
            previousUpdate.withUnsafeBufferPointer { prev in
                direction.withUnsafeBufferPointer { dir in
                    for i in 0..<D { m[i] = mu * prev[i] + dir[i] }
                }
            }
        }
        copyValues(loss.parameters, into: &theta0)   // in place: no copy-on-write of θ later
        var alpha = options.learningRate
        if options.stepRule == .lineSearch {
            alpha = try theta0.withUnsafeBufferPointer { t in
                try candidate.withUnsafeBufferPointer { m in
                    try lineSearch.search(batch, from: t.baseAddress!, along: m.baseAddress!, below: stats.loss)
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
            candidate.withUnsafeBufferPointer { m in loss.setParameters(t.baseAddress!, plus: alpha, times: m.baseAddress!) }
        }
    }

    /// θ ← θ₀ + α · candidate if that is finite (else θ₀ is restored and the step throws);
    /// the candidate becomes the stored momentum buffer / previous update.
    private func commitCandidate(alpha: Double) throws {
        setParameters(alpha: alpha)
        try loss.parameters.withUnsafeBufferPointer { p in
            do { try requireFiniteUpdate(p.baseAddress!, p.count, "KFAC") } catch {
                loss.assignParameters(theta0)
                throw error
            }
        }
        swap(&previousUpdate, &candidate)
        hasPreviousUpdate = true
    }
}

extension KFAC {
    /// Steps taken, whether and with which λ the factorisations were computed, the momentum
    /// buffer / previous update, and every layer's factors and factorisation.
    func writeState(_ s: inout SectionWriter) throws {
        s.int(stepCount)
        s.bool(invertedOnce)
        s.double(factorizationDamping)
        s.bool(hasPreviousUpdate)
        try s.doubles(previousUpdate)
        for block in blocks { try block.writeState(&s) }
    }

    func readState(_ s: inout SectionReader) throws {
        let steps = try s.int(in: 0...SectionReader.maxCount, "the step count")
        let inverted = try s.bool("the factorisation flag")
        let lambda = try s.finiteDouble("the damping of the factorisations")
        guard lambda >= 0 else { throw s.corrupt("the damping of the factorisations is \(lambda)") }
        let hasPrevious = try s.bool("the momentum flag")
        let previous = try s.doubles(count: loss.parameterCount, "the previous update")
        let states = try blocks.map { try $0.readState(&s) }
        try s.finish()
        for (block, state) in zip(blocks, states) { block.restore(state) }
        (stepCount, invertedOnce, factorizationDamping) = (steps, inverted, lambda)
        (hasPreviousUpdate, previousUpdate) = (hasPrevious, previous)
    }
}
