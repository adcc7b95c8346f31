/// How the second-order term κ 𝒟_C u of the interior residual is computed (docs/math.md §12).
public enum SecondOrderEstimator: Sendable, Equatable {
    /// The forward Laplacian: d derivative columns per point, exact.
    case exact
    /// A stochastic estimate from `probes` directions per point (see `RandomizedEstimator`).
    case randomized(RandomizedEstimator)
}

/// The distribution of ξ in a probe v = L ξ: E[ξ ξᵀ] = I for both.
public enum ProbeDistribution: String, Sendable, CaseIterable {
    /// Entries ±1 with probability ½ each.
    case rademacher
    /// Standard normal entries.
    case gaussian
}

/// The randomized second-order estimate. With C = σ L Lᵀ (σ = ±1, C semi-definite) and probes
/// v_k = L ξ_k, E[v vᵀ] = σ C, so
///
///     𝒟̂_C u = σ/s Σ_k v_kᵀ ∇²u v_k,   E[𝒟̂_C u] = 𝒟_C u.
///
/// The Taylor pass carries the value, the derivative along each probe and one collapsed
/// second-order column: S = s + 2 columns instead of d + 2. What the residual needs of ∇u is
/// exact, in columns of its own before the probes: none (no drift, no nonlinearity), one along
/// the drift β(x_n) (β(x)ᵀ∇u is a directional derivative), or all d when the operator has the
/// nonlinearity N(u, ∇u) or a trained drift entry. Probes are drawn per point, from the seed and
/// the draw (the optimizer's step count), so every step sees fresh ones and a resumed run the same.
public struct RandomizedEstimator: Sendable, Equatable {
    public let probes: Int
    public let distribution: ProbeDistribution
    public let seed: UInt64
    /// σ: +1 for a positive, −1 for a negative semi-definite C.
    let sign: Double
    /// L with C = σ L Lᵀ: its diagonal (d values) for a diagonal C, else d × d row-major.
    let factor: [Double]
    let factorIsDiagonal: Bool
}

extension Operator {
    /// Refuses (`.outOfMemory`) probes whose d-vectors (`vectors` per point: the directions, the
    /// pass's input columns and the drawn ξ) for N points exceed half the machine's memory.
    static func requireProbeMemory(dimension d: Int, vectors: Int, points n: Int) throws {
        let bytes = 8 * Double(d) * Double(vectors) * Double(n)
        guard bytes < TaylorPass.physicalMemory / 2 else {
            throw KFPError.outOfMemory("the randomized pass's \(vectors) vectors per point for \(n) points in \(d) dimensions need \(Int((bytes / 1073741824).rounded())) GiB, more than half the machine's memory")
        }
    }

    /// This operator with the randomized second-order estimator (`probes` ≥ 1 directions per point).
    /// Throws for probes < 1, a C that is indefinite (no C = σ L Lᵀ), or trained entries of C
    /// (their columns need the exact pass).
    public func randomized(probes: Int, distribution: ProbeDistribution = .rademacher, seed: UInt64 = 0) throws -> Operator {
        guard probes >= 1 else { throw KFPError.invalidArgument("the number of probes must be at least 1, got \(probes)") }
        guard probes <= 1 << 20 else { throw KFPError.invalidArgument("at most \(1 << 20) probes per point, got \(probes)") }
        guard trainedSecondOrderEntries.isEmpty else {
            throw KFPError.invalidArgument("trained entries of C need the exact second-order term; the randomized estimator allows kappa but not C_i_j")
        }
        let (sign, factor, isDiagonal) = try Operator.semidefiniteFactor(baseCoefficients)
        var copy = self
        copy.estimator = .randomized(RandomizedEstimator(probes: probes, distribution: distribution, seed: seed, sign: sign,
                                                         factor: factor, factorIsDiagonal: isDiagonal))
        return copy
    }

    /// This operator with the exact second-order term.
    public func exact() -> Operator {
        var copy = self
        copy.estimator = .exact
        return copy
    }

    /// (σ, L, diagonal) with C = σ L Lᵀ; throws when C is indefinite or zero.
    static func semidefiniteFactor(_ c: Coefficients) throws -> (Double, [Double], Bool) {
        let d = c.dimension
        if let diag = c.diagonal {
            let positive = diag.contains { $0 > 0 }, negative = diag.contains { $0 < 0 }
            guard positive || negative else { throw KFPError.invalidArgument("the operator has no second-order term to estimate") }
            guard !(positive && negative) else {
                throw KFPError.invalidArgument("C is indefinite (diagonal entries of both signs): the randomized estimator needs C = ±L Lᵀ, a semi-definite C")
            }
            return (positive ? 1 : -1, diag.map { abs($0).squareRoot() }, true)
        }
        var a = c.dense, w = [Double](repeating: 0, count: d)
        let info = a.withUnsafeMutableBufferPointer { ap in w.withUnsafeMutableBufferPointer { BLAS.syevd(n: d, a: ap.baseAddress!, w: $0.baseAddress!) } }
        guard info == 0 else { throw KFPError.numerical("the eigendecomposition of C failed (LAPACK info \(info))") }
        let scale = w.map(abs).max() ?? 0, tolerance = 1e-12 * scale
        guard scale > 0 else { throw KFPError.invalidArgument("the operator has no second-order term to estimate") }
        let sign: Double = w[d - 1] > tolerance ? 1 : -1
        guard !(w[0] < -tolerance && w[d - 1] > tolerance) else {
            throw KFPError.invalidArgument("C is indefinite (eigenvalues from \(w[0]) to \(w[d - 1])): the randomized estimator needs C = ±L Lᵀ, a semi-definite C")
        }
        // L = Q diag(√|λ|): column k of Q scaled.
        var l = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for k in 0..<d { l[i * d + k] = a[i * d + k] * max(sign * w[k], 0).squareRoot() }
        }
        return (sign, l, false)
    }

    /// S, the Taylor columns per interior point: d + 2, or g + s + 2 when randomized.
    var interiorColumns: Int {
        guard case .randomized(let e) = estimator else { return dimension + 2 }
        return randomizedGradientColumns + e.probes + 2
    }

    /// The exact gradient columns a randomized pass carries before its probes: 0, 1 (along the
    /// drift β(x_n)) or d (∂_i u, for the nonlinearity or a trained drift entry).
    var randomizedGradientColumns: Int {
        let trainedDrift = trainable.entries.contains { if case .drift = $0.slot { return true } else { return false } }
        if nonlinearity != .none || trainedDrift { return dimension }
        return drift.contains { $0 != 0 } || driftJacobian != nil ? 1 : 0
    }

    /// The input directions of a randomized pass at points x (N × d, row-major) that are points
    /// `first ..< first + N` of term `term`: per point the g gradient directions
    /// (`randomizedGradientColumns`), then s probes L ξ, ξ drawn from (seed, draw, term, point
    /// index), so a point's probes do not depend on how its batch is cut; N × (g + s) × d values.
    func probeDirections(_ e: RandomizedEstimator, points x: [Double], count n: Int, draw: UInt64, term: Int,
                         first: Int = 0) throws -> [Double] {
        let d = dimension, g = randomizedGradientColumns, s = e.probes, m = g + s
        try Operator.requireProbeMemory(dimension: d, vectors: m + (m + 2) + 2 * s, points: n)
        var v = [Double](repeating: 0, count: n * m * d)
        // ξ of every point's probes, (N·s) × d row-major, each point from its own stream.
        var xi = [Double](repeating: 0, count: n * s * d)
        let stream = RandomSource.mix(RandomSource.mix(e.seed, draw), UInt64(term))
        for k in 0..<n {
            var rng = RandomSource(seed: RandomSource.mix(stream, UInt64(first + k)))
            for j in (k * s * d)..<((k + 1) * s * d) {
                switch e.distribution {
                case .rademacher: xi[j] = rng.next() >> 63 == 0 ? 1 : -1
                case .gaussian: xi[j] = rng.normal()
                }
            }
        }
        // v = L ξ: L's diagonal, or one GEMM Ξ Lᵀ for a dense L.
        if !e.factorIsDiagonal {
            let product = xi
            product.withUnsafeBufferPointer { a in
                e.factor.withUnsafeBufferPointer { l in
                    xi.withUnsafeMutableBufferPointer {
                        BLAS.gemm(transB: true, m: n * s, n: d, k: d, a: a.baseAddress!, lda: d, b: l.baseAddress!, ldb: d,
                                  c: $0.baseAddress!, ldc: d)
                    }
                }
            }
        }
        for k in 0..<n {
            let base = k * m * d
            if g == d {
                for i in 0..<d { v[base + i * d + i] = 1 }
            } else if g == 1 {
                for i in 0..<d {
                    var b = drift[i]
                    if let jac = driftJacobian { for j in 0..<d { b += jac[i * d + j] * x[k * d + j] } }
                    v[base + i] = b
                }
            }
            for c in 0..<s {
                let out = base + (g + c) * d, source = (k * s + c) * d
                for i in 0..<d { v[out + i] = e.factorIsDiagonal ? e.factor[i] * xi[source + i] : xi[source + i] }
            }
        }
        return v
    }

    /// The weight of each direction in the collapsed second-order column: 0 for the gradient
    /// directions, σ κ̄ / s for the probes (κ̄ = `passScale`, the factor of the pass's C).
    func probeWeights(_ e: RandomizedEstimator, passScale: Double) -> [Double] {
        [Double](repeating: 0, count: randomizedGradientColumns) + [Double](repeating: e.sign * passScale / Double(e.probes), count: e.probes)
    }
}
