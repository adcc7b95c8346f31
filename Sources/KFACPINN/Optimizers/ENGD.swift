import Glibc

/// Energy natural gradient descent (Müller & Zeinhofer 2023), docs/math.md §7: the Gauss–Newton
/// direction Δ = −(G + λI)⁺ ∇L with the dense Gramian
///     G = J_Ωᵀ J_Ω / N_Ω + J_∂ᵀ J_∂ / N_∂ = J̃ᵀ J̃,
/// J̃ the scaled per-sample Jacobian (rows from the same backward pass as the gradient), an
/// optional moving average G ← β G + (1 − β) G_batch, and the grid line search (or a fixed
/// learning rate). Variants: the full D × D Gramian, its per-layer diagonal blocks, its
/// diagonal, and the sample-space (Woodbury) form Δ = −J̃ᵀ (J̃J̃ᵀ + λI)⁻¹ r̃, which needs an
/// (N_Ω + N_∂)² system instead of D² and is exact: (J̃ᵀJ̃ + λI)⁻¹ J̃ᵀ = J̃ᵀ (J̃J̃ᵀ + λI)⁻¹.
public final class ENGD: Optimizer, OptionTable, GuardedOptimizer {
    static let displayName = "ENGD"
    static let defaultOptions = Options()

    public enum Variant: String, CaseIterable, Sendable {
        case full, perLayer = "per_layer", diagonal, woodbury, nystrom

        /// Whether the variant solves in sample space (the kernel J̃J̃ᵀ of all points).
        var isSampleSpace: Bool { self == .woodbury || self == .nystrom }
    }

    /// Why a sample-space method refuses a data-parallel run.
    static func sampleSpaceNotDistributed(_ method: String) -> KFPError {
        .invalidArgument("\(method) solves with the kernel J̃J̃ᵀ of every point, which couples the processes' points pairwise: it would need every process's Jacobian rows on every process (M × D values each); data-parallel training supports SGD, Adam, L-BFGS, KFAC, ENGD (full, per_layer, diagonal) and Hessian-free")
    }

    public typealias StepRule = GaussNewtonStepRule

    public struct Options: Sendable, Equatable {
        /// λ > 0.
        public var damping = 1e-10
        /// β ∈ [0, 1) of the Gramian's moving average (0: this batch's Gramian; must be 0 for the
        /// sample-space variants woodbury and nystrom).
        public var ema = 0.0
        public var variant = Variant.full
        public var stepRule = StepRule.lineSearch
        /// Learning rate of `.fixed` steps.
        public var learningRate = 1.0
        /// Largest Gramian block (full: D, per-layer: a layer's parameter count) that a step
        /// forms (its memory is 8·n² bytes, held about three times); a larger one is refused.
        public var maxParameters = 16384
        /// k of the nystrom variant's sketch (at most the batch's residual count).
        public var rank = 100

        public init() {}

        func validate() throws {
            try requireDamping(damping)
            try requireUnitInterval(ema, "ema")
            try requireLearningRate(learningRate)
            guard maxParameters >= 1 else { throw KFPError.invalidArgument("max_parameters must be at least 1, got \(maxParameters)") }
            guard rank >= 1 else { throw KFPError.invalidArgument("rank must be at least 1, got \(rank)") }
            if variant.isSampleSpace && ema != 0 {
                throw KFPError.invalidArgument("the \(variant.rawValue) variant has no Gramian to average: ema must be 0")
            }
        }

        /// Refuses a Gramian block larger than `maxParameters` before anything is allocated.
        func requireGramianSize(for loss: PINNLoss) throws {
            let block = ENGD.blocks(loss, variant).map(\.count).max() ?? 0
            if block > maxParameters {
                let mib = Double(block) * Double(block) * 8 / 1048576
                let size = mib < 1024 ? "\(Int(mib.rounded(.up))) MiB" : "\((mib / 102.4).rounded() / 10) GiB"
                throw KFPError.invalidArgument(
                    "ENGD (\(variant.rawValue)) would form a \(block) × \(block) Gramian (\(size)), above max_parameters = \(maxParameters); use the per_layer, diagonal or woodbury variant or raise max_parameters")
            }
        }
    }

    public let network: MLP
    public let loss: PINNLoss
    let divergence = DivergenceGuard()
    public private(set) var options: Options
    public private(set) var stepCount = 0
    /// The Gramian blocks of the full and per-layer variants (built for the variant in use).
    private var blocks: [DenseBlock] = []
    /// The moving average of the diagonal variant's Gramian diagonal, and a step's candidate.
    private var diagonal = Buffer(), diagonalCandidate = Buffer()
    private var hasDiagonal = false
    let lineSearch: GridLineSearch
    private var gradient: [Double], direction: [Double], theta0: [Double]
    private let jacobian = Buffer(), residuals = Buffer(), solution = Buffer()
    private let sampleSpace = SampleSpaceSolver()

    public init(network: MLP, operator op: Operator, options: Options = Options()) throws {
        try options.validate()
        self.network = network
        loss = try PINNLoss(network: network, operator: op)
        lineSearch = GridLineSearch(loss: loss)
        self.options = options
        gradient = [Double](repeating: 0, count: loss.parameterCount)
        direction = gradient
        theta0 = gradient
    }

    /// The parameter ranges whose Gramian blocks are formed: all of [θ; κ̂] (full), each layer's
    /// W and b (per-layer; contiguous in θ's layout) and the trainable coefficients κ̂ if any,
    /// none for the diagonal and woodbury forms.
    static func blocks(_ loss: PINNLoss, _ variant: Variant) -> [Range<Int>] {
        let net = loss.network, D = net.numParameters, P = loss.parameterCount
        switch variant {
        case .full: return [0..<P]
        case .perLayer:
            return (0..<net.numLayers).map { net.weightOffset($0)..<(net.biasOffset($0) + net.widths[$0 + 1]) }
                + (P > D ? [D..<P] : [])
        case .diagonal, .woodbury, .nystrom: return []
        }
    }

    static var optionFields: [OptimizerOption: OptionField<Options>] {
        [.damping: .double(\.damping), .ema: .double(\.ema), .learningRate: .double(\.learningRate),
         .maxParameters: .int(\.maxParameters), .stepRule: .choice(\.stepRule, "step rule for ENGD"),
         .variant: .choice(\.variant, "ENGD variant"), .rank: .int(\.rank)]
    }

    /// Replaces all options at once (validated; nothing changes on failure). Another variant
    /// starts its moving average afresh.
    public func setOptions(_ new: Options) throws {
        try new.validate()
        if new.variant != options.variant {
            blocks = []
            hasDiagonal = false
        }
        options = new
    }

    func unguardedStep(_ batch: Batch) throws -> StepStatistics {
        try options.requireGramianSize(for: loss)
        if loss.group.isDistributed && options.variant.isSampleSpace { throw ENGD.sampleSpaceNotDistributed(options.variant.rawValue) }
        let value = try loss.forward(batch)
        let D = loss.parameterCount, rows = loss.residualCount
        if options.variant == .nystrom { try SampleSpaceSolver.requireRank(options.rank, rows: rows) }
        // ∇L = J̃ᵀ r̃ (summed over the processes of a data-parallel run: each holds its rows).
        var J = jacobian.pointer, r = residuals.pointer
        try gradient.withUnsafeMutableBufferPointer { g in
            try loss.group.sum(g.baseAddress!, count: D) {
                try requireMemory(rows: rows)
                J = try jacobian.reserve(rows * D)
                r = try residuals.reserve(rows)
                try loss.scaledJacobian(rows: J, residuals: r)
                if rows == 0 { g.update(repeating: 0) }
                BLAS.gemv(trans: true, m: rows, n: D, a: J, lda: D, x: r, y: g.baseAddress!)
            }
            if let i = firstNonFinite(g.baseAddress!, D) {
                throw KFPError.nonFinite("ENGD: the gradient has a non-finite entry at index \(i)")
            }
        }
        // A failed solve or a non-finite direction is retried with λ raised tenfold.
        let lambda = try withDampingRetries(options.damping) { lambda, _ in
            try direction.withUnsafeMutableBufferPointer { dir in
                try gradient.withUnsafeBufferPointer { g in
                    try computeDirection(J, rows: rows, residuals: r, gradient: g.baseAddress!, into: dir.baseAddress!,
                                         damping: lambda)
                }
                try requireFiniteUpdate(dir.baseAddress!, D, "ENGD")
            }
        }
        theta0 = loss.parameters
        var alpha = options.learningRate
        if options.stepRule == .lineSearch {
            alpha = try lineSearch.search(batch, from: theta0, along: direction, below: value.total)
        }
        var stats = StepStatistics(loss: value.total, lossInterior: value.interior, lossBoundary: value.boundary,
                                   stepSize: alpha, momentum: 0, updateNorm: 0, accepted: alpha > 0, damping: lambda)
        try loss.moveParameters(from: theta0, by: alpha, along: direction, optimizer: "ENGD")
        stats.updateNorm = alpha * direction.withUnsafeBufferPointer { BLAS.nrm2(D, $0.baseAddress!) }
        switch options.variant {
        case .full, .perLayer: for block in blocks { block.commit(keep: options.ema > 0) }
        case .diagonal:
            swap(&diagonal, &diagonalCandidate)
            hasDiagonal = options.ema > 0
        case .woodbury, .nystrom: break
        }
        stepCount += 1
        return stats
    }

    /// Refuses (`.outOfMemory`) a batch whose scaled Jacobian, kernel (woodbury) and Gramian
    /// blocks (full, per-layer) would not fit (`SampleSpaceSolver.requireMemory`).
    private func requireMemory(rows: Int) throws {
        let D = loss.parameterCount, what = "ENGD (\(options.variant.rawValue)) on \(rows) residuals and \(D) parameters"
        var counts = [try Memory.product(rows, D, what: what)]
        switch options.variant {
        case .woodbury: counts.append(try Memory.product(2, rows, rows, what: what))
        case .nystrom: counts.append(try SampleSpaceSolver.nystromValues(rows: rows, columns: D, rank: options.rank, what: what))
        case .diagonal: counts.append(try Memory.product(3, D, what: what))
        case .full, .perLayer:
            if blocks.isEmpty {
                for r in ENGD.blocks(loss, options.variant) { counts.append(try Memory.product(2, r.count, r.count, what: what)) }
            }
        }
        try SampleSpaceSolver.requireMemory(counts, what: what)
    }

    /// Δ = −(G + λI)⁺ ∇L for the variant, with the candidate moving averages.
    private func computeDirection(_ J: UnsafePointer<Double>, rows: Int, residuals r: UnsafePointer<Double>,
                                  gradient g: UnsafePointer<Double>, into dir: UnsafeMutablePointer<Double>,
                                  damping lambda: Double) throws {
        let D = loss.parameterCount
        switch options.variant {
        case .woodbury:
            // Δ = −J̃ᵀ (J̃J̃ᵀ + λI)⁻¹ r̃.
            dir.update(repeating: 0, count: D)
            try sampleSpace.solve(J, rows: rows, columns: D, r, damping: lambda, addingTo: dir, scale: -1)
        case .nystrom:
            // The same with J̃J̃ᵀ replaced by its rank-k Nyström approximation (a new sketch each step).
            dir.update(repeating: 0, count: D)
            try sampleSpace.solveNystrom(J, rows: rows, columns: D, rank: options.rank, seed: SampleSpaceSolver.sketchSeed(step: stepCount),
                                         r, damping: lambda, addingTo: dir, scale: -1)
        case .diagonal:
            let beta = hasDiagonal ? options.ema : 0
            // diag(G_batch)_i = Σ_k J̃_ki², accumulated row by row.
            var batchDiagonal = solution.pointer, diag = diagonalCandidate.pointer
            try loss.group.agree {
                batchDiagonal = try solution.reserve(D)
                diag = try diagonalCandidate.reserve(D)
            }
            try loss.group.sum(batchDiagonal, count: D) {
                batchDiagonal.update(repeating: 0, count: D)
                for k in 0..<rows {
                    let row = J + k * D
                    for i in 0..<D { batchDiagonal[i] += row[i] * row[i] }
                }
            }
            for i in 0..<D {
                diag[i] = beta > 0 ? beta * diagonal.pointer[i] + (1 - beta) * batchDiagonal[i] : batchDiagonal[i]
                dir[i] = -g[i] / (diag[i] + lambda)
            }
        case .full, .perLayer:
            if blocks.isEmpty { blocks = ENGD.blocks(loss, options.variant).map { DenseBlock(range: $0) } }
            for block in blocks {
                try block.update(jacobian: J, rows: rows, ld: D, ema: options.ema, group: loss.group)
                try block.multiplyInverse(g, into: dir, damping: lambda, scale: -1)
            }
        }
    }
}

extension ENGD {
    /// Steps taken and the variant's moving average: the Gramian blocks (full, per-layer; none
    /// before the first step) or the diagonal.
    func writeState(_ s: inout SectionWriter) throws {
        s.int(stepCount)
        s.int(blocks.count)
        for block in blocks { try block.writeState(&s) }
        s.bool(hasDiagonal)
        try s.doubles(UnsafeBufferPointer(start: diagonal.pointer, count: hasDiagonal ? loss.parameterCount : 0))
    }

    func readState(_ s: inout SectionReader) throws {
        let steps = try s.int(in: 0...SectionReader.maxCount, "the step count")
        let ranges = ENGD.blocks(loss, options.variant)
        let count = try s.int(in: 0...ranges.count, "the number of Gramian blocks")
        guard count == 0 || count == ranges.count else { throw s.corrupt("\(count) Gramian blocks, the variant has \(ranges.count)") }
        let newBlocks = ranges.prefix(count).map { DenseBlock(range: $0) }
        let read = try newBlocks.map { try $0.readState(&s) }
        let has = try s.bool("the diagonal flag")
        guard !has || options.variant == .diagonal else { throw s.corrupt("a diagonal for the \(options.variant.rawValue) variant") }
        let values = try s.doubles(count: has ? loss.parameterCount : 0, "the Gramian diagonal")
        let newDiagonal = try Buffer(values.count)
        if has { values.withUnsafeBufferPointer { newDiagonal.pointer.update(from: $0.baseAddress!, count: values.count) } }
        try s.finish()
        for (block, state) in zip(newBlocks, read) { block.restore(state) }
        (stepCount, blocks, hasDiagonal, diagonal) = (steps, newBlocks, has, newDiagonal)
    }
}
