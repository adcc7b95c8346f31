import Glibc

/// The sample-space (Woodbury) solve of Gauss–Newton methods (docs/math.md §7, §11): with the
/// scaled Jacobian J̃ (M × P, row-major) and λ > 0,
///
///     out += J̃ᵀ (J̃J̃ᵀ + λI)⁻¹ b,
///
/// the kernel J̃J̃ᵀ by one SYRK over the rows, one Cholesky (`dampedSymmetricSolve`), and one
/// GEMV; no P × P matrix. Buffers are kept across steps.
final class SampleSpaceSolver {
    private let kernel = Buffer(), solution = Buffer(), work = Buffer(), sketch = Buffer(), sketchProducts = Buffer()

    func solve(_ J: UnsafePointer<Double>, rows: Int, columns: Int, _ b: UnsafePointer<Double>, damping lambda: Double,
               addingTo out: UnsafeMutablePointer<Double>, scale: Double = 1) throws {
        let K = try kernel.reserve(rows * rows), y = try solution.reserve(rows)
        BLAS.syrk(n: rows, k: columns, a: J, lda: columns, c: K, ldc: rows)
        try dampedSymmetricSolve(K, n: rows, damping: lambda, b, into: y, work: work)
        BLAS.gemv(trans: true, m: rows, n: columns, alpha: scale, a: J, lda: columns, x: y, beta: 1, y: out)
    }

    /// The randomized variant (docs/math.md §11): J̃J̃ᵀ ≈ U Λ Uᵀ, the rank-k Nyström
    /// approximation from the sketch Y = J̃(J̃ᵀΩ) with a Gaussian M × k matrix Ω drawn from `seed`
    /// (two GEMMs, O(M k P)), in the stable form of Tropp, Yurtsever, Udell and Cevher (2017):
    /// with a shift ν = √M ε ‖Y‖_F, Y_ν = Y + νΩ, B = Y_ν (ΩᵀY_ν)^{−1/2} = U Σ Vᵀ, Λ = max(Σ² − ν, 0).
    /// Then out += scale · J̃ᵀ y with
    ///
    ///     y = (U Λ Uᵀ + λI)⁻¹ b = U (Λ + λ)⁻¹ Uᵀ b + (b − U Uᵀ b) / λ.
    ///
    /// With k = M the approximation is J̃J̃ᵀ itself (up to rounding).
    func solveNystrom(_ J: UnsafePointer<Double>, rows M: Int, columns P: Int, rank k: Int, seed: UInt64,
                      _ b: UnsafePointer<Double>, damping lambda: Double, addingTo out: UnsafeMutablePointer<Double>,
                      scale: Double = 1) throws {
        let omega = try sketch.reserve(M * k), z = try sketchProducts.reserve(P * k), y = try kernel.reserve(2 * M * k)
        let u = y + M * k, core = try work.reserve(3 * k * k + 2 * k), q = core + k * k, r = q + k * k
        let w = r + k * k, t = w + k, solutionValues = try solution.reserve(M)
        var rng = RandomSource(seed: seed)
        for i in 0..<(M * k) { omega[i] = rng.normal() }
        // Y = J̃ (J̃ᵀ Ω), then Y_ν = Y + ν Ω.
        BLAS.gemm(transA: true, m: P, n: k, k: M, a: J, lda: P, b: omega, ldb: k, c: z, ldc: k)
        BLAS.gemm(m: M, n: k, k: P, a: J, lda: P, b: z, ldb: k, c: y, ldc: k)
        let nu = Double(M).squareRoot() * Double.ulpOfOne * BLAS.nrm2(M * k, y)
        for i in 0..<(M * k) { y[i] += nu * omega[i] }
        // C = Ωᵀ Y_ν (symmetric positive definite), C^{−1/2} = Q Θ^{−1/2} Qᵀ over Θ above rounding.
        BLAS.gemm(transA: true, m: k, n: k, k: M, a: omega, lda: k, b: y, ldb: k, c: core, ldc: k)
        for i in 0..<k { for j in 0..<i { let v = 0.5 * (core[i * k + j] + core[j * k + i]); core[i * k + j] = v; core[j * k + i] = v } }
        _ = try SampleSpaceSolver.scaledEigenvectors(core, k, w, into: q, "core")
        BLAS.gemm(transB: true, m: k, n: k, k: k, a: q, lda: k, b: core, ldb: k, c: r, ldc: k)
        // B = Y_ν C^{−1/2} (into u), BᵀB = V Σ² Vᵀ, U = B V Σ⁻¹ (into y's storage).
        BLAS.gemm(m: M, n: k, k: k, a: y, lda: k, b: r, ldb: k, c: u, ldc: k)
        BLAS.syrk(trans: true, n: k, k: M, a: u, lda: k, c: core, ldc: k)
        let floor = try SampleSpaceSolver.scaledEigenvectors(core, k, w, into: q, "factor")
        BLAS.gemm(m: M, n: k, k: k, a: u, lda: k, b: q, ldb: k, c: y, ldc: k)
        // t = Uᵀ b; y = b/λ + U ((Λ + λ)⁻¹ − λ⁻¹) t, Λ_j = max(Σ_j² − ν, 0) (0 for a dropped column).
        BLAS.gemv(trans: true, m: M, n: k, a: y, lda: k, x: b, y: t)
        for j in 0..<k {
            let eigenvalue = w[j] > floor ? max(w[j] - nu, 0) : 0
            t[j] *= 1 / (eigenvalue + lambda) - 1 / lambda
        }
        for i in 0..<M { solutionValues[i] = b[i] / lambda }
        BLAS.gemv(m: M, n: k, a: y, lda: k, x: t, beta: 1, y: solutionValues)
        if let i = firstNonFinite(solutionValues, M) {
            throw KFPError.nonFinite("the Nyström solve has a non-finite entry at index \(i)")
        }
        BLAS.gemv(trans: true, m: M, n: P, alpha: scale, a: J, lda: P, x: solutionValues, beta: 1, y: out)
    }

    /// A = Q diag(w) Qᵀ (k × k, upper triangle read, overwritten by Q) and q = Q diag(w^{−1/2}),
    /// a column zero where w_j is at or below k ε max|w|; returns that floor.
    private static func scaledEigenvectors(_ a: UnsafeMutablePointer<Double>, _ k: Int, _ w: UnsafeMutablePointer<Double>,
                                           into q: UnsafeMutablePointer<Double>, _ what: String) throws -> Double {
        guard BLAS.syevd(n: k, a: a, w: w) == 0 else {
            throw KFPError.numerical("the eigendecomposition of the \(k) × \(k) Nyström \(what) failed")
        }
        let floor = Double(k) * Double.ulpOfOne * max(abs(w[k - 1]), Double.leastNormalMagnitude)
        for j in 0..<k {
            let s = w[j] > floor ? 1 / w[j].squareRoot() : 0
            for i in 0..<k { q[i * k + j] = a[i * k + j] * s }
        }
        return floor
    }

    /// The seed of step `step`'s sketch Ω (a checkpoint's step count gives the same sketch).
    static func sketchSeed(step: Int) -> UInt64 { 0x4E59_5354_524F_4D00 &+ UInt64(step) }

    /// `.invalidArgument` unless 1 ≤ k ≤ M.
    static func requireRank(_ k: Int, rows: Int) throws {
        guard k >= 1, k <= rows else {
            throw KFPError.invalidArgument("rank \(k) of the Nyström sketch must be between 1 and the batch's \(rows) residuals")
        }
    }

    /// Work space of `solveNystrom` besides the Jacobian: Ω, the sketch and U (3 M k), J̃ᵀΩ (P k)
    /// and the k × k matrices.
    static func nystromValues(rows: Int, columns: Int, rank k: Int, what: String) throws -> Int {
        try Memory.total([try Memory.product(3, rows, k, what: what), try Memory.product(columns, k, what: what),
                          try Memory.product(3, k, k, what: what), rows], what)
    }

    /// Refuses (`.outOfMemory`) work space of `counts` float64 values in all that would not fit:
    /// more than half the machine's memory, or more than can be allocated now.
    static func requireMemory(_ counts: [Int], what: String) throws {
        let bytes = try Memory.bytes(doubles: Memory.total(counts, what), what)
        let physical = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        guard Double(bytes) < physical / 2 else {
            throw KFPError.outOfMemory("\(what) needs \(bytes) bytes (\(Memory.formatted(bytes))), more than half the machine's memory")
        }
        try Memory.require(bytes: bytes, what)
    }

    /// `requireMemory` for a sample-space step: the Jacobian (M × P) and the kernel with its
    /// factorisation (2 M²).
    static func requireMemory(rows: Int, columns: Int, what: String) throws {
        let description = "\(what) on \(rows) residuals and \(columns) parameters"
        try requireMemory([try Memory.product(rows, columns, what: description), try Memory.product(2, rows, rows, what: description)],
                          what: description)
    }
}
