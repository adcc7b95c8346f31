import Glibc

/// SPRING (Goldshlager, Abrahamsen, Lin 2024; for PINNs: Guzmán-Cordero, Dangel, Goldshlager,
/// Zeinhofer 2025), docs/math.md §11: sample-space Gauss–Newton with momentum. With the scaled
/// Jacobian J̃ (M × P) and residuals r̃ of the step's batch, ε = −r̃,
///
///     φ_k = μ φ_{k−1} + J̃ᵀ (J̃J̃ᵀ + λI)⁻¹ (ε − μ J̃ φ_{k−1}),
///
/// the minimiser of ‖J̃φ − ε‖² + λ‖φ − μφ_{k−1}‖², and θ ← θ + η φ_k with η from the grid line
/// search, or η = min(lr, √C / ‖φ_k‖) (fixed step with the norm constraint C). The M × M kernel
/// comes from one SYRK and one Cholesky (`SampleSpaceSolver`); no P × P matrix is formed. μ = 0 is
/// sample-space (Woodbury) ENGD.
public final class SPRING: Optimizer, OptionTable, GuardedOptimizer {
    static let displayName = "SPRING"
    static let defaultOptions = Options()

    public typealias StepRule = GaussNewtonStepRule

    /// How the M × M kernel J̃J̃ᵀ enters the solve.
    public enum Variant: String, CaseIterable, Sendable {
        /// J̃J̃ᵀ itself (SYRK and Cholesky).
        case exact
        /// Its rank-k Nyström approximation (`SampleSpaceSolver.solveNystrom`).
        case nystrom
    }

    public struct Options: Sendable, Equatable {
        /// λ > 0.
        public var damping = 1e-3
        /// μ ∈ [0, 1).
        public var momentum = 0.99
        public var stepRule = StepRule.lineSearch
        /// η of fixed steps (capped by the norm constraint).
        public var learningRate = 1.0
        /// C > 0: a fixed step has ‖η φ‖ ≤ √C.
        public var normConstraint = 1e-3
        public var variant = Variant.exact
        /// k of the nystrom variant's sketch (at most the batch's residual count).
        public var rank = 100

        public init() {}

        func validate() throws {
            try requireDamping(damping)
            try requireUnitInterval(momentum, "momentum")
            try requireLearningRate(learningRate)
            guard normConstraint.isFinite, normConstraint > 0 else {
                throw KFPError.invalidArgument("norm_constraint must be positive and finite, got \(normConstraint)")
            }
            guard rank >= 1 else { throw KFPError.invalidArgument("rank must be at least 1, got \(rank)") }
        }
    }

    public let network: MLP
    public let loss: PINNLoss
    let divergence = DivergenceGuard()
    public private(set) var options: Options
    public private(set) var stepCount = 0
    let lineSearch: GridLineSearch
    /// φ_{k−1} (P values) and whether there is one.
    private var previous: [Double]
    private var hasPrevious = false
    private var direction: [Double], theta0: [Double]
    private let solver = SampleSpaceSolver(), jacobian = Buffer(), residuals = Buffer(), rhs = Buffer()

    public init(network: MLP, operator op: Operator, options: Options = Options()) throws {
        try options.validate()
        self.network = network
        loss = try PINNLoss(network: network, operator: op)
        lineSearch = GridLineSearch(loss: loss)
        self.options = options
        previous = [Double](repeating: 0, count: loss.parameterCount)
        direction = previous
        theta0 = previous
    }

    static var optionFields: [OptimizerOption: OptionField<Options>] {
        [.damping: .double(\.damping), .momentum: .double(\.momentum), .learningRate: .double(\.learningRate),
         .normConstraint: .double(\.normConstraint), .stepRule: .choice(\.stepRule, "step rule for SPRING"),
         .variant: .choice(\.variant, "SPRING variant"), .rank: .int(\.rank)]
    }

    /// Replaces all options at once (validated; nothing changes on failure).
    public func setOptions(_ new: Options) throws {
        try new.validate()
        options = new
    }

    func unguardedStep(_ batch: Batch) throws -> StepStatistics {
        if loss.group.isDistributed { throw ENGD.sampleSpaceNotDistributed("SPRING") }
        let value = try loss.forward(batch)
        let P = loss.parameterCount, rows = loss.residualCount
        let nystrom = options.variant == .nystrom
        if nystrom {
            try SampleSpaceSolver.requireRank(options.rank, rows: rows)
            let what = "SPRING (nystrom) on \(rows) residuals and \(P) parameters"
            try SampleSpaceSolver.requireMemory([try Memory.product(rows, P, what: what),
                                                 try SampleSpaceSolver.nystromValues(rows: rows, columns: P, rank: options.rank, what: what)],
                                                what: what)
        } else {
            try SampleSpaceSolver.requireMemory(rows: rows, columns: P, what: "SPRING")
        }
        let J = try jacobian.reserve(rows * P), r = try residuals.reserve(rows), b = try rhs.reserve(rows)
        try loss.scaledJacobian(rows: J, residuals: r)
        let mu = hasPrevious ? options.momentum : 0
        // b = ε − μ J̃ φ_{k−1} = −r̃ − μ J̃ φ_{k−1}.
        previous.withUnsafeBufferPointer { phi in
            BLAS.gemv(m: rows, n: P, alpha: -mu, a: J, lda: P, x: phi.baseAddress!, y: b)
        }
        for k in 0..<rows { b[k] -= r[k] }
        // φ = μ φ_{k−1} + J̃ᵀ (J̃J̃ᵀ + λI)⁻¹ b; a failed solve or a non-finite φ is retried with λ ×10.
        let lambda = try withDampingRetries(options.damping) { lambda, _ in
            try direction.withUnsafeMutableBufferPointer { dir in
                try previous.withUnsafeBufferPointer { phi in
                    for i in 0..<P { dir[i] = mu * phi[i] }
                    if nystrom {
                        try solver.solveNystrom(J, rows: rows, columns: P, rank: options.rank, seed: SampleSpaceSolver.sketchSeed(step: stepCount),
                                                b, damping: lambda, addingTo: dir.baseAddress!)
                    } else {
                        try solver.solve(J, rows: rows, columns: P, b, damping: lambda, addingTo: dir.baseAddress!)
                    }
                }
                try requireFiniteUpdate(dir.baseAddress!, P, "SPRING")
            }
        }
        copyValues(loss.parameters, into: &theta0)
        let norm = direction.withUnsafeBufferPointer { BLAS.nrm2(P, $0.baseAddress!) }
        var eta: Double
        switch options.stepRule {
        case .lineSearch:
            eta = try lineSearch.search(batch, from: theta0, along: direction, below: value.total)
        case .fixed:
            eta = norm > 0 ? min(options.learningRate, options.normConstraint.squareRoot() / norm) : options.learningRate
        }
        try loss.moveParameters(from: theta0, by: eta, along: direction, optimizer: "SPRING")
        swap(&previous, &direction)
        hasPrevious = true
        stepCount += 1
        return StepStatistics(loss: value.total, lossInterior: value.interior, lossBoundary: value.boundary,
                              stepSize: eta, momentum: mu, updateNorm: eta * norm, accepted: eta > 0, damping: lambda)
    }
}

extension SPRING {
    /// Steps taken and φ_{k−1}.
    func writeState(_ s: inout SectionWriter) throws {
        s.int(stepCount)
        s.bool(hasPrevious)
        try s.doubles(previous)
    }

    func readState(_ s: inout SectionReader) throws {
        let steps = try s.int(in: 0...SectionReader.maxCount, "the step count")
        let has = try s.bool("the momentum flag")
        let phi = try s.doubles(count: loss.parameterCount, "the previous direction")
        guard phi.allSatisfy(\.isFinite) else { throw s.corrupt("the previous direction has a non-finite value") }
        try s.finish()
        (stepCount, hasPrevious, previous) = (steps, has, phi)
    }
}
