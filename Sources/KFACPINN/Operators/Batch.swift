/// Training points as a list of loss terms (docs/math.md §9): each term has its kind, its
/// points, its targets and its weight w_t, and contributes w_t/(2N_t) Σ_n r_{t,n}² to the loss.
public struct Batch: Sendable, Equatable {
    public let dimension: Int
    public let terms: [LossTerm]

    /// Validates every term against `dimension` (shapes, finiteness, weight). A loss needs at
    /// least one interior point (`PINNLoss` refuses a batch without); a batch may be built up
    /// term by term (`adding`).
    public init(dimension d: Int, terms: [LossTerm] = []) throws {
        guard d >= 1 else { throw KFPError.invalidArgument("batch dimension must be at least 1, got \(d)") }
        for (t, term) in terms.enumerated() { try term.validate(dimension: d, index: t) }
        dimension = d
        self.terms = terms
    }

    /// This batch with `term` appended (validated as term number `terms.count`).
    public func adding(_ term: LossTerm) throws -> Batch {
        try term.validate(dimension: dimension, index: terms.count)
        return Batch(validated: dimension, terms: terms + [term])
    }

    /// An interior term (points x_n, source f(x_n)) and, with condition points, a Dirichlet
    /// term (points x_m^b, values g(x_m^b)), both of weight 1: the paper's two-term loss.
    public init(dimension d: Int, interiorPoints: [Double], source: [Double],
                boundaryPoints: [Double] = [], boundaryValues: [Double] = []) throws {
        guard source.count >= 1 else { throw KFPError.invalidArgument("a batch needs at least one interior point") }
        var terms = [LossTerm(kind: .interior, points: interiorPoints, targets: source)]
        if !boundaryValues.isEmpty || !boundaryPoints.isEmpty {
            terms.append(LossTerm(kind: .dirichlet, points: boundaryPoints, targets: boundaryValues))
        }
        try self.init(dimension: d, terms: terms)
    }

    /// Points of all interior terms (N_Ω), and of all condition terms (N_∂).
    public var interiorCount: Int { terms.reduce(0) { $1.kind.isInterior ? $0 + $1.count : $0 } }
    public var boundaryCount: Int { terms.reduce(0) { $1.kind.isInterior ? $0 : $0 + $1.count } }

    /// The interior terms' points (row-major N_Ω × d) and sources, in term order.
    public var interiorPoints: [Double] { terms.filter(\.kind.isInterior).flatMap(\.points) }
    public var source: [Double] { terms.filter(\.kind.isInterior).flatMap(\.targets) }
    /// The condition terms' points (row-major N_∂ × d) and targets, in term order.
    public var boundaryPoints: [Double] { terms.filter { !$0.kind.isInterior }.flatMap(\.points) }
    public var boundaryValues: [Double] { terms.filter { !$0.kind.isInterior }.flatMap(\.targets) }
}

extension Batch {
    /// Consecutive slices of at most `maxInterior` interior points each; every term is split
    /// over the same number of slices in proportion (a slice may hold none of a term).
    func chunks(maxInterior: Int) -> [Batch] {
        let n = interiorCount, count = max(1, (n + maxInterior - 1) / max(maxInterior, 1))
        return chunks(interiorCounts: (0..<count).map { c in (c + 1) * n / count - c * n / count })
    }

    /// Consecutive slices with the given numbers of interior points (positive, summing to N_Ω);
    /// each term is split in the same proportions, so slice c holds points
    /// ⌊i₀ N_t / N_Ω⌋ ..< ⌊i₁ N_t / N_Ω⌋ of term t. The slices keep the terms' order and weights.
    func chunks(interiorCounts counts: [Int]) -> [Batch] {
        let n = interiorCount, d = dimension
        guard counts.count > 1 else { return [self] }
        var i0 = 0
        return counts.map { count in
            let i1 = i0 + count
            defer { i0 = i1 }
            return Batch(validated: d, terms: terms.map { $0.slice(i0 * $0.count / n ..< i1 * $0.count / n, dimension: d) })
        }
    }

    /// Part `rank` of `size` of the batch, for the processes of a data-parallel run: of each
    /// term t, points ⌊rank·N_t/size⌋ ..< ⌊(rank+1)·N_t/size⌋. The parts keep the terms' order
    /// and weights, and together hold every point once.
    func part(_ rank: Int, of size: Int) -> Batch {
        guard size > 1 else { return self }
        return Batch(validated: dimension, terms: terms.map { $0.slice(rank * $0.count / size ..< (rank + 1) * $0.count / size, dimension: dimension) })
    }

    /// Interior counts of the line-search trial chunks: an eighth of the points (at least
    /// `minimum`), then the rest in equal chunks; none above `maximum`. A trial that cannot win
    /// stops after a chunk (see `GridLineSearch`); most that overshoot do so by far more than a
    /// factor of 8 and stop after the first.
    static func trialChunkSizes(_ n: Int, minimum: Int, maximum: Int) -> [Int] {
        let maximum = max(1, maximum), first = min(n, maximum, max(minimum, (n + 7) / 8)), rest = n - first
        let count = (rest + maximum - 1) / maximum
        return [first] + (0..<count).map { c in (c + 1) * rest / count - c * rest / count }
    }

    /// A slice of a validated batch (no checks).
    private init(validated d: Int, terms: [LossTerm]) {
        dimension = d
        self.terms = terms
    }
}
