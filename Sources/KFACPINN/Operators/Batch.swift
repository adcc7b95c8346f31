/// Training points: interior points x_n with source values f(x_n), and
/// condition points x_m^b with prescribed values g(x_m^b) (Dirichlet).
public struct Batch: Sendable, Equatable {
    public let dimension: Int
    /// Interior points, row-major N_Ω × d.
    public let interiorPoints: [Double]
    /// f at the interior points (N_Ω).
    public let source: [Double]
    /// Condition points, row-major N_∂ × d (may be empty).
    public let boundaryPoints: [Double]
    /// g at the condition points (N_∂).
    public let boundaryValues: [Double]

    public var interiorCount: Int { source.count }
    public var boundaryCount: Int { boundaryValues.count }

    /// Validates shapes (at least one interior point) and finiteness.
    public init(dimension d: Int, interiorPoints: [Double], source: [Double],
                boundaryPoints: [Double] = [], boundaryValues: [Double] = []) throws {
        guard d >= 1 else { throw KFPError.invalidArgument("batch dimension must be at least 1, got \(d)") }
        guard source.count >= 1 else { throw KFPError.invalidArgument("a batch needs at least one interior point") }
        guard interiorPoints.count == (try checkedProduct(source.count, d, "interior points")) else {
            throw KFPError.dimensionMismatch("interior points: \(interiorPoints.count) values for \(source.count) points of dimension \(d)")
        }
        guard boundaryPoints.count == (try checkedProduct(boundaryValues.count, d, "boundary points")) else {
            throw KFPError.dimensionMismatch("boundary points: \(boundaryPoints.count) values for \(boundaryValues.count) points of dimension \(d)")
        }
        try requireFinite(interiorPoints, "interior points")
        try requireFinite(source, "source f")
        try requireFinite(boundaryPoints, "boundary points")
        try requireFinite(boundaryValues, "boundary values g")
        dimension = d
        self.interiorPoints = interiorPoints
        self.source = source
        self.boundaryPoints = boundaryPoints
        self.boundaryValues = boundaryValues
    }
}

extension Batch {
    /// Consecutive slices of at most `maxInterior` interior points each, the condition points split
    /// over the same number of slices (a slice may hold none). One slice when the batch is small.
    func chunks(maxInterior: Int) -> [Batch] {
        let n = interiorCount, count = max(1, (n + maxInterior - 1) / max(maxInterior, 1))
        return chunks(interiorCounts: (0..<count).map { c in (c + 1) * n / count - c * n / count })
    }

    /// Consecutive slices with the given numbers of interior points (positive, summing to N_Ω); the
    /// condition points are split in the same proportions (a slice may hold none).
    func chunks(interiorCounts counts: [Int]) -> [Batch] {
        let n = interiorCount, m = boundaryCount, d = dimension
        guard counts.count > 1 else { return [self] }
        var i0 = 0
        return counts.map { count in
            let i1 = i0 + count, b0 = i0 * m / n, b1 = i1 * m / n
            defer { i0 = i1 }
            return Batch(validated: d, interiorPoints: Array(interiorPoints[(i0 * d)..<(i1 * d)]), source: Array(source[i0..<i1]),
                         boundaryPoints: Array(boundaryPoints[(b0 * d)..<(b1 * d)]), boundaryValues: Array(boundaryValues[b0..<b1]))
        }
    }

    /// Interior counts of the line-search trial chunks: an eighth of the points (at least
    /// `minimum`), then the rest in equal chunks; none above `maximum`. A trial that cannot win
    /// stops after a chunk (see `gridLineSearch`); most that overshoot do so by far more than a
    /// factor of 8 and stop after the first.
    static func trialChunkSizes(_ n: Int, minimum: Int, maximum: Int) -> [Int] {
        let maximum = max(1, maximum), first = min(n, maximum, max(minimum, (n + 7) / 8)), rest = n - first
        let count = (rest + maximum - 1) / maximum
        return [first] + (0..<count).map { c in (c + 1) * rest / count - c * rest / count }
    }

    /// A slice of a validated batch (no checks).
    private init(validated d: Int, interiorPoints: [Double], source: [Double], boundaryPoints: [Double], boundaryValues: [Double]) {
        dimension = d
        self.interiorPoints = interiorPoints
        self.source = source
        self.boundaryPoints = boundaryPoints
        self.boundaryValues = boundaryValues
    }
}
