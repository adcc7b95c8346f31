/// The kinds of loss terms (docs/math.md §9). A kind fixes the term's residual, the Taylor
/// columns its pass carries (S = d + 2 interior, 1 Dirichlet and observation, 2 Neumann and
/// Robin: the pass mode `TermEvaluation.forward` picks) and the Kronecker product its curvature
/// joins; adding a kind touches this file and `TermEvaluation.forward`, nothing in the optimizers.
public enum LossTermKind: String, CaseIterable, Sendable {
    /// r = 𝒟_C u + βᵀ∇u + c u + N(u, ∇u) − f, the loss's operator at the points (S = d + 2).
    case interior
    /// r = u − g (S = 1): boundary values, and initial values on t = 0.
    case dirichlet
    /// r = u − y (S = 1): measurements y of the solution.
    case observation
    /// r = nᵀ∇u − g (S = 2: the value and the derivative along the point's unit vector n);
    /// with n = e_t an initial velocity.
    case neumann
    /// r = a u + b nᵀ∇u − g (S = 2), a and b per point, not both zero.
    case robin

    /// Whether the term's curvature is Kronecker product 1 (interior operator terms) or
    /// product 2 (all other terms, merged; docs/math.md §9).
    public var isInterior: Bool { self == .interior }

    /// The targets' name in messages.
    var targetName: String {
        switch self {
        case .interior: return "source f"
        case .dirichlet: return "values g"
        case .observation: return "observations y"
        case .neumann, .robin: return "values g"
        }
    }

    /// Whether the term's points carry unit vectors n (its residual reads nᵀ∇u).
    var hasNormals: Bool { self == .neumann || self == .robin }
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
    /// Neumann and Robin terms: a unit vector n per point (row-major N_t × d), else empty.
    public let normals: [Double]
    /// Robin terms: a and b per point (N_t each), else empty.
    public let robinA: [Double], robinB: [Double]

    public init(kind: LossTermKind, points: [Double], targets: [Double], weight: Double = 1, normals: [Double] = [],
                robinA: [Double] = [], robinB: [Double] = []) {
        self.kind = kind
        self.points = points
        self.targets = targets
        self.weight = weight
        self.normals = normals
        self.robinA = robinA
        self.robinB = robinB
    }

    public var count: Int { targets.count }
    /// The index of the first point in the term this one was sliced from (0 for a whole term):
    /// a randomized operator draws each point's probes from its index.
    private(set) var firstIndex = 0

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
        if kind.hasNormals {
            guard normals.count == points.count else {
                throw KFPError.dimensionMismatch("\(what): \(normals.count) normal values for \(count) points of dimension \(d) (a unit vector per point is required)")
            }
            try requireFinite(normals, "\(what) normals")
            for k in 0..<count {
                let norm = (0..<d).reduce(0.0) { $0 + normals[k * d + $1] * normals[k * d + $1] }.squareRoot()
                guard abs(norm - 1) <= 1e-8 else {
                    throw KFPError.invalidArgument("\(what): the normal of point \(k) has length \(norm), not 1")
                }
            }
        } else if !normals.isEmpty {
            throw KFPError.invalidArgument("\(what): a \(kind.rawValue) term takes no normals")
        }
        if kind == .robin {
            guard robinA.count == count, robinB.count == count else {
                throw KFPError.dimensionMismatch("\(what): \(robinA.count) values of a and \(robinB.count) of b for \(count) points")
            }
            try requireFinite(robinA, "\(what) a")
            try requireFinite(robinB, "\(what) b")
            if let k = (0..<count).first(where: { robinA[$0] == 0 && robinB[$0] == 0 }) {
                throw KFPError.invalidArgument("\(what): a = b = 0 at point \(k) (the Robin condition a u + b ∂u/∂n = g needs one of them)")
            }
        } else if !robinA.isEmpty || !robinB.isEmpty {
            throw KFPError.invalidArgument("\(what): a \(kind.rawValue) term takes no Robin coefficients")
        }
    }

    /// Points `range` of the term (no checks).
    func slice(_ range: Range<Int>, dimension d: Int) -> LossTerm {
        let rows = (range.lowerBound * d)..<(range.upperBound * d)
        var part = LossTerm(kind: kind, points: Array(points[rows]), targets: Array(targets[range]), weight: weight,
                            normals: normals.isEmpty ? [] : Array(normals[rows]),
                            robinA: robinA.isEmpty ? [] : Array(robinA[range]), robinB: robinB.isEmpty ? [] : Array(robinB[range]))
        part.firstIndex = firstIndex + range.lowerBound
        return part
    }
}
