/// The coefficients C of a second-order term 𝒟_C u = Σ_ij C_ij ∂_i∂_j u.
public enum SecondOrderCoefficients: Sendable, Equatable {
    /// C = I: the Laplacian Δu.
    case laplacian
    /// C = diag(c): Σ_i c_i ∂_i²u (e.g. the spatial Laplacian diag(0, 1, …, 1)).
    case diagonal([Double])
    /// A symmetric d × d matrix, row-major.
    case matrix([Double])

    /// Checks the coefficients against the input dimension d and resolves them.
    func resolved(dimension d: Int) throws -> Coefficients {
        switch self {
        case .laplacian:
            return Coefficients(diagonal: [Double](repeating: 1, count: d))
        case .diagonal(let c):
            guard c.count == d else {
                throw KFPError.dimensionMismatch("diagonal coefficients have \(c.count) entries, the input dimension is \(d)")
            }
            try requireFinite(c, "coefficients")
            return Coefficients(diagonal: c)
        case .matrix(let m):
            guard m.count == d * d else {
                throw KFPError.dimensionMismatch("coefficient matrix has \(m.count) entries, expected \(d)×\(d) = \(d * d)")
            }
            try requireFinite(m, "coefficient matrix")
            var scale = 0.0
            for v in m { scale = max(scale, abs(v)) }
            var isDiagonal = true
            for i in 0..<d {
                for j in 0..<d where i != j {
                    if abs(m[i * d + j] - m[j * d + i]) > 1e-12 * scale {
                        throw KFPError.invalidArgument("coefficient matrix is not symmetric: C[\(i)][\(j)] = \(m[i * d + j]), C[\(j)][\(i)] = \(m[j * d + i])")
                    }
                    if m[i * d + j] != 0 { isDiagonal = false }
                }
            }
            if isDiagonal { return Coefficients(diagonal: (0..<d).map { m[$0 * d + $0] }) }
            return Coefficients(dense: m, dimension: d)
        }
    }
}

/// Validated coefficients C of one input dimension d, diagonal or dense.
struct Coefficients {
    let dimension: Int
    /// C's diagonal when C is diagonal (the cheap path), else nil.
    let diagonal: [Double]?
    /// C, d × d row-major (always present).
    let dense: [Double]

    init(diagonal c: [Double]) {
        dimension = c.count
        diagonal = c
        var m = [Double](repeating: 0, count: c.count * c.count)
        for i in 0..<c.count { m[i * c.count + i] = c[i] }
        dense = m
    }

    init(dense m: [Double], dimension d: Int) {
        dimension = d
        diagonal = nil
        dense = m
    }

    /// C with entries (i, j) and (j, i) set to v for each (i, j, v); diagonal if the result is.
    func replacing(_ entries: [(Int, Int, Double)]) -> Coefficients {
        let d = dimension
        var m = dense
        for (i, j, v) in entries {
            m[i * d + j] = v
            m[j * d + i] = v
        }
        let isDiagonal = (0..<d).allSatisfy { i in (0..<d).allSatisfy { j in i == j || m[i * d + j] == 0 } }
        return isDiagonal ? Coefficients(diagonal: (0..<d).map { m[$0 * d + $0] }) : Coefficients(dense: m, dimension: d)
    }

    /// κ C (the same storage); C itself for κ = 1.
    func scaled(_ kappa: Double) -> Coefficients {
        if kappa == 1 { return self }
        if let c = diagonal { return Coefficients(diagonal: c.map { kappa * $0 }) }
        return Coefficients(dense: dense.map { kappa * $0 }, dimension: dimension)
    }

    /// Q = Σ_ij C_ij a_i b_j for a, b of length d; `c` holds C's diagonal (d values)
    /// when `isDiagonal`, else C (d × d, row-major).
    @inline(__always)
    static func quadratic(_ d: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
                          _ c: UnsafePointer<Double>, diagonal isDiagonal: Bool) -> Double {
        var q = 0.0
        if isDiagonal {
            for i in 0..<d { q += c[i] * a[i] * b[i] }
        } else {
            for i in 0..<d {
                var row = 0.0
                let ci = c + i * d
                for j in 0..<d { row += ci[j] * b[j] }
                q += a[i] * row
            }
        }
        return q
    }

    /// out_i = Σ_j C_ij a_j (storage of `c` as in `quadratic`).
    @inline(__always)
    static func apply(_ d: Int, _ a: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>,
                      _ c: UnsafePointer<Double>, diagonal isDiagonal: Bool) {
        if isDiagonal {
            for i in 0..<d { out[i] = c[i] * a[i] }
        } else {
            for i in 0..<d {
                var row = 0.0
                let ci = c + i * d
                for j in 0..<d { row += ci[j] * a[j] }
                out[i] = row
            }
        }
    }
}
