/// The exact inverse of one layer's damped Kronecker SUM
///
///     B̂_Ω X Â_Ω + B̂_∂ X Â_∂ = ∇      (X, ∇: h_out × (h_in+1), row-major, W̃ = [W b])
///
/// through two generalised symmetric eigenproblems: K₁ᵀ B̂_Ω K₁ = I, K₁ᵀ B̂_∂ K₁ = diag(s₁)
/// and K₂ᵀ Â_Ω K₂ = I, K₂ᵀ Â_∂ K₂ = diag(s₂). Then
///
///     X = K₁ [ (K₁ᵀ ∇ K₂) ⊘ (1 + s₁ s₂ᵀ) ] K₂ᵀ.
struct KroneckerSumInverse {
    let rows: Int      // h_out
    let columns: Int   // h_in + 1
    var k1: [Double], s1: [Double], k2: [Double], s2: [Double]
    /// Work space of the factorisation (shared by copies of this value; one layer's at a time).
    private let definiteWork = Buffer()
    private let eigenWork = EigenWorkspace()

    init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        k1 = [Double](repeating: 0, count: rows * rows)
        s1 = [Double](repeating: 0, count: rows)
        k2 = [Double](repeating: 0, count: columns * columns)
        s2 = [Double](repeating: 0, count: columns)
    }

    /// Takes over the eigendecompositions of `other` (same shape), in place.
    mutating func assign(_ other: KroneckerSumInverse) {
        copyValues(other.k1, into: &k1)
        copyValues(other.s1, into: &s1)
        copyValues(other.k2, into: &k2)
        copyValues(other.s2, into: &s2)
    }

    /// Factorises from the undamped factors; `damping` λ is added to all four diagonals.
    /// `boundaryA`/`boundaryB` nil means the sum has only the interior term (s = 0).
    mutating func factorize(interiorA: [Double], interiorB: [Double], boundaryA: [Double]?,
                            boundaryB: [Double]?, damping: Double, layer: Int) throws {
        // Static, with the work space passed: a method of self would hold a second reference to
        // k1 and k2 during the call, and writing them would copy them.
        try Self.generalizedEigen(n: rows, definite: interiorB, other: boundaryB, damping: damping, vectors: &k1,
                                  values: &s1, work: definiteWork, eigenWork: eigenWork, what: "B factors of layer \(layer)")
        try Self.generalizedEigen(n: columns, definite: interiorA, other: boundaryA, damping: damping, vectors: &k2,
                                  values: &s2, work: definiteWork, eigenWork: eigenWork, what: "A factors of layer \(layer)")
    }

    /// K with Kᵀ(F + λI)K = I and Kᵀ(O + λI)K = diag(values) (O = 0 and no damping when `other` is nil).
    private static func generalizedEigen(n: Int, definite: [Double], other: [Double]?, damping: Double,
                                         vectors: inout [Double], values: inout [Double], work: Buffer,
                                         eigenWork: EigenWorkspace, what: String) throws {
        let b = work.reserve(n * n)
        b.update(from: definite, count: n * n)
        for i in 0..<n { b[i * n + i] += damping }
        let info = vectors.withUnsafeMutableBufferPointer { v in
            if let other {
                v.baseAddress!.update(from: other, count: n * n)
                for i in 0..<n { v[i * n + i] += damping }
            } else {
                v.update(repeating: 0)
            }
            return values.withUnsafeMutableBufferPointer { w in
                BLAS.sygvd(n: n, a: v.baseAddress!, b: b, w: w.baseAddress!, workspace: eigenWork)
            }
        }
        guard info == 0 else {
            let reason = info > n ? "the damped interior factor is not positive definite" : "no convergence"
            throw KFPError.numerical("eigendecomposition of the \(what) failed (LAPACK dsygvd info \(info): \(reason)); increase the damping")
        }
    }

    /// X for the gradient matrix `g`, written to `x`; `work` holds rows × columns values.
    func solve(_ g: UnsafePointer<Double>, into x: UnsafeMutablePointer<Double>, work: UnsafeMutablePointer<Double>) {
        let m = rows, n = columns
        k1.withUnsafeBufferPointer { k1 in
            k2.withUnsafeBufferPointer { k2 in
                let k1 = k1.baseAddress!, k2 = k2.baseAddress!
                // work = K₁ᵀ ∇ ; x = work K₂
                BLAS.gemm(transA: true, m: m, n: n, k: m, a: k1, lda: m, b: g, ldb: n, c: work, ldc: n)
                BLAS.gemm(m: m, n: n, k: n, a: work, lda: n, b: k2, ldb: n, c: x, ldc: n)
                for i in 0..<m {
                    let si = s1[i]
                    for j in 0..<n { x[i * n + j] /= 1 + si * s2[j] }
                }
                // work = K₁ x ; x = work K₂ᵀ
                BLAS.gemm(m: m, n: n, k: m, a: k1, lda: m, b: x, ldb: n, c: work, ldc: n)
                BLAS.gemm(transB: true, m: m, n: n, k: n, a: work, lda: n, b: k2, ldb: n, c: x, ldc: n)
            }
        }
    }
}
