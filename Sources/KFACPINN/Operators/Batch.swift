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
        let n = interiorCount, m = boundaryCount, d = dimension
        let count = max(1, (n + maxInterior - 1) / max(maxInterior, 1))
        guard count > 1 else { return [self] }
        return (0..<count).map { c in
            let i0 = c * n / count, i1 = (c + 1) * n / count, b0 = c * m / count, b1 = (c + 1) * m / count
            return Batch(validated: d, interiorPoints: Array(interiorPoints[(i0 * d)..<(i1 * d)]), source: Array(source[i0..<i1]),
                         boundaryPoints: Array(boundaryPoints[(b0 * d)..<(b1 * d)]), boundaryValues: Array(boundaryValues[b0..<b1]))
        }
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
