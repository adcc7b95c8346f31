/// The kinds of loss terms (docs/math.md §9). A kind fixes the term's residual, the Taylor
/// columns its pass carries and the Kronecker product its curvature joins; adding a kind
/// touches this file and the residuals in `PINNLoss.forward`, nothing in the optimizers.
public enum LossTermKind: String, CaseIterable, Sendable {
    /// r = 𝒟_C u + βᵀ∇u + c u + N(u, ∇u) − f, the loss's operator at the points (S = d + 2).
    case interior
    /// r = u − g (S = 1): boundary values, and initial values on t = 0.
    case dirichlet
    /// r = u − y (S = 1): measurements y of the solution.
    case observation

    /// Whether the term's curvature is Kronecker product 1 (interior operator terms) or
    /// product 2 (all other terms, merged; docs/math.md §9).
    public var isInterior: Bool { self == .interior }

    /// The targets' name in messages.
    var targetName: String {
        switch self {
        case .interior: return "source f"
        case .dirichlet: return "values g"
        case .observation: return "observations y"
        }
    }

    /// Taylor columns S per point in inputs of dimension d.
    func columns(dimension d: Int) -> Int {
        switch self {
        case .interior: return d + 2
        case .dirichlet, .observation: return 1
        }
    }
}

/// One term of a batch: N_t points with their targets (the source f of an interior term, the
/// prescribed values g of a condition, the measured values y of an observation term) and the
/// weight w_t ≥ 0 of its mean squared residual.
public struct LossTerm: Sendable, Equatable {
    public let kind: LossTermKind
    /// Points, row-major N_t × d.
    public let points: [Double]
    /// Targets, N_t values.
    public let targets: [Double]
    /// w_t: the term contributes w_t/(2N_t) Σ_n r_n².
    public let weight: Double

    public init(kind: LossTermKind, points: [Double], targets: [Double], weight: Double = 1) {
        self.kind = kind
        self.points = points
        self.targets = targets
        self.weight = weight
    }

    public var count: Int { targets.count }

    /// Shapes against `dimension`, finite values, a finite weight ≥ 0; `index` names the term.
    func validate(dimension d: Int, index t: Int) throws {
        let what = "term \(t) (\(kind.rawValue))"
        guard points.count == (try checkedProduct(count, d, "\(what) points")) else {
            throw KFPError.dimensionMismatch("\(what): \(points.count) point values for \(count) points of dimension \(d)")
        }
        try requireFinite(points, "\(what) points")
        try requireFinite(targets, "\(what) \(kind.targetName)")
        guard weight.isFinite, weight >= 0 else {
            throw KFPError.invalidArgument("\(what): the weight must be finite and non-negative, got \(weight)")
        }
    }

    /// Points `range` of the term (no checks).
    func slice(_ range: Range<Int>, dimension d: Int) -> LossTerm {
        LossTerm(kind: kind, points: Array(points[(range.lowerBound * d)..<(range.upperBound * d)]),
                 targets: Array(targets[range]), weight: weight)
    }
}
