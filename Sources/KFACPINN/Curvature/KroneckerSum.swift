/// A layer's factor pair in error messages: "B factors of layer 2".
struct FactorName: CustomStringConvertible {
    let side: StaticString, layer: Int
    var description: String { "\(side) factors of layer \(layer)" }
}

/// The exact inverse of one layer's damped Kronecker SUM
///
///     B̂_Ω X Â_Ω + B̂_∂ X Â_∂ = ∇      (X, ∇: h_out × (h_in+1), row-major, W̃ = [W b])
///
/// solved in one of three exact ways (`Method`):
/// - `.eigen`: two generalised symmetric eigenproblems, K₁ᵀ B̂_Ω K₁ = I, K₁ᵀ B̂_∂ K₁ = diag(s₁)
///   and K₂ᵀ Â_Ω K₂ = I, K₂ᵀ Â_∂ K₂ = diag(s₂). Then X = K₁ [ (K₁ᵀ ∇ K₂) ⊘ (1 + s₁ s₂ᵀ) ] K₂ᵀ.
/// - `.narrowColumns`: only the A side's eigenproblem. With Y = X K₂⁻ᵀ the sum reads
///   B̂_Ω Y + B̂_∂ Y diag(s₂) = ∇ K₂, so column j of Y solves (B̂_Ω + s₂ⱼ B̂_∂) yⱼ = (∇ K₂)ⱼ, one
///   Cholesky factor per eigenvalue, and X = Y K₂ᵀ.
/// - `.narrowRows`: the same with the sides exchanged. X = K₁ Z, row i of Z solves
///   (Â_Ω + s₁ᵢ Â_∂) zᵢ = (K₁ᵀ ∇)ᵢ.
/// A Cholesky factorisation of size p costs about 1/20 of a size-p generalised eigenproblem, so
/// a side of at most `narrowLimit` (the first layer's h_in + 1, the output layer's h_out) is
/// solved the narrow way.
struct KroneckerSumInverse {
    enum Method { case eigen, narrowColumns, narrowRows }
    static let narrowLimit = 16

    let rows: Int      // h_out
    let columns: Int   // h_in + 1
    let method: Method
    /// K₁, s₁ (rows) for `.eigen` and `.narrowRows`; K₂, s₂ (columns) for `.eigen` and `.narrowColumns`.
    var k1: [Double], s1: [Double], k2: [Double], s2: [Double]
    /// The narrow methods' Cholesky factors, one p × p factor per eigenvalue of the narrow side (p
    /// the other side); a single one without boundary term (all eigenvalues are 0).
    var factors: [Double]
    private var factorCount = 0
    /// Work space of the factorisation (shared by copies of this value; one layer's at a time).
    private let definiteWork = Buffer()
    private let eigenWork = EigenWorkspace()

    /// The method chosen for a layer of this shape.
    static func defaultMethod(rows: Int, columns: Int) -> Method {
        min(rows, columns) > Self.narrowLimit ? .eigen : rows < columns ? .narrowRows : .narrowColumns
    }

    /// Values the factorisation stores (K, s and the narrow methods' Cholesky factors).
    static func storage(rows: Int, columns: Int, method: Method) throws -> Int {
        let what = "the inverse of a \(rows) × \(columns) Kronecker sum"
        switch method {
        case .eigen: return try Memory.total([Memory.product(rows, rows, what: what), Memory.product(columns, columns, what: what), rows, columns], what)
        case .narrowColumns: return try Memory.total([Memory.product(columns, columns + 1, what: what), Memory.product(columns, rows, rows, what: what)], what)
        case .narrowRows: return try Memory.total([Memory.product(rows, rows + 1, what: what), Memory.product(rows, columns, columns, what: what)], what)
        }
    }

    init(rows: Int, columns: Int, method: Method? = nil) {
        self.rows = rows
        self.columns = columns
        self.method = method ?? Self.defaultMethod(rows: rows, columns: columns)
        let sides = (one: self.method != .narrowColumns, two: self.method != .narrowRows)
        k1 = [Double](repeating: 0, count: sides.one ? rows * rows : 0)
        s1 = [Double](repeating: 0, count: sides.one ? rows : 0)
        k2 = [Double](repeating: 0, count: sides.two ? columns * columns : 0)
        s2 = [Double](repeating: 0, count: sides.two ? columns : 0)
        switch self.method {
        case .eigen: factors = []
        case .narrowColumns: factors = [Double](repeating: 0, count: columns * rows * rows)
        case .narrowRows: factors = [Double](repeating: 0, count: rows * columns * columns)
        }
    }

    /// Takes over the factorisation of `other` (same shape and method), in place.
    mutating func assign(_ other: KroneckerSumInverse) {
        copyValues(other.k1, into: &k1)
        copyValues(other.s1, into: &s1)
        copyValues(other.k2, into: &k2)
        copyValues(other.s2, into: &s2)
        copyValues(other.factors, into: &factors)
        factorCount = other.factorCount
    }

    /// Factorises from the undamped factors; `damping` λ is added to all four diagonals.
    /// `boundaryA`/`boundaryB` nil means the sum has only the interior term (s = 0).
    mutating func factorize(interiorA: [Double], interiorB: [Double], boundaryA: [Double]?,
                            boundaryB: [Double]?, damping: Double, layer: Int) throws {
        // Static, with the work space passed: a method of self would hold a second reference to
        // the arrays during the call, and writing them would copy them.
        // Named by a value, formatted only when an error is thrown (no string per step).
        let whatB = FactorName(side: "B", layer: layer), whatA = FactorName(side: "A", layer: layer)
        if method != .narrowColumns {
            try Self.generalizedEigen(n: rows, definite: interiorB, other: boundaryB, damping: damping, vectors: &k1,
                                      values: &s1, work: definiteWork, eigenWork: eigenWork, what: whatB)
        }
        if method != .narrowRows {
            try Self.generalizedEigen(n: columns, definite: interiorA, other: boundaryA, damping: damping, vectors: &k2,
                                      values: &s2, work: definiteWork, eigenWork: eigenWork, what: whatA)
        }
        switch method {
        case .eigen: break
        case .narrowColumns:
            factorCount = boundaryB == nil ? 1 : columns
            try Self.choleskyFactors(n: rows, definite: interiorB, other: boundaryB, damping: damping, weights: s2,
                                     count: factorCount, into: &factors, what: whatB)
        case .narrowRows:
            factorCount = boundaryA == nil ? 1 : rows
            try Self.choleskyFactors(n: columns, definite: interiorA, other: boundaryA, damping: damping, weights: s1,
                                     count: factorCount, into: &factors, what: whatA)
        }
    }

    /// K with Kᵀ(F + λI)K = I and Kᵀ(O + λI)K = diag(values) (O = 0 and no damping when `other` is nil).
    private static func generalizedEigen(n: Int, definite: [Double], other: [Double]?, damping: Double,
                                         vectors: inout [Double], values: inout [Double], work: Buffer,
                                         eigenWork: EigenWorkspace, what: FactorName) throws {
        let b = try work.reserve(n * n)
        b.update(from: definite, count: n * n)
        for i in 0..<n { b[i * n + i] += damping }
        let info = vectors.withUnsafeMutableBufferPointer { v in
            if let other {
                v.baseAddress!.update(from: other, count: n * n)
                for i in 0..<n { v[i * n + i] += damping }
            }
            return values.withUnsafeMutableBufferPointer { w in
                BLAS.generalizedEigen(n: n, a: v.baseAddress!, zero: other == nil, b: b, w: w.baseAddress!,
                                      workspace: eigenWork)
            }
        }
        guard info == 0 else {
            let reason = info > n ? "the damped interior factor is not positive definite (dpotrf info \(info - n))"
                                  : "no convergence (dsyevd info \(info))"
            throw KFPError.numerical("eigendecomposition of the \(what) failed: \(reason); increase the damping")
        }
    }

    /// Factor j (n × n) = Cholesky of (F + λI) + s_j (O + λI), for j < count (O = 0 when `other` is nil).
    private static func choleskyFactors(n: Int, definite: [Double], other: [Double]?, damping: Double,
                                        weights s: [Double], count: Int, into factors: inout [Double],
                                        what: FactorName) throws {
        try factors.withUnsafeMutableBufferPointer { f in
            for j in 0..<count {
                let c = f.baseAddress! + j * n * n, sj = other == nil ? 0 : s[j]
                if let other {
                    for e in 0..<(n * n) { c[e] = definite[e] + sj * other[e] }
                } else {
                    c.update(from: definite, count: n * n)
                }
                for i in 0..<n { c[i * n + i] += (1 + sj) * damping }
                let info = BLAS.potrf(n: n, a: c)
                guard info == 0 else {
                    throw KFPError.numerical("Cholesky factorisation of the damped \(what) (weighted by eigenvalue \(j) of the other side) failed (LAPACK dpotrf info \(info): not positive definite); increase the damping")
                }
            }
        }
    }

    /// X for the gradient matrix `g`, written to `x`; `work` holds rows × columns values.
    func solve(_ g: UnsafePointer<Double>, into x: UnsafeMutablePointer<Double>, work: UnsafeMutablePointer<Double>) {
        let m = rows, n = columns
        switch method {
        case .eigen:
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
        case .narrowColumns:
            k2.withUnsafeBufferPointer { k2 in
                factors.withUnsafeBufferPointer { f in
                    // work = Yᵀ ← K₂ᵀ ∇ᵀ (n × m); row j ← (B̂_Ω + s₂ⱼ B̂_∂)⁻¹ row j; x = Y K₂ᵀ.
                    BLAS.gemm(transA: true, transB: true, m: n, n: m, k: n, a: k2.baseAddress!, lda: n, b: g, ldb: n,
                              c: work, ldc: m)
                    for j in 0..<n {
                        BLAS.potrs(n: m, factor: f.baseAddress! + (factorCount == 1 ? 0 : j) * m * m, b: work + j * m)
                    }
                    BLAS.gemm(transA: true, transB: true, m: m, n: n, k: n, a: work, lda: m, b: k2.baseAddress!,
                              ldb: n, c: x, ldc: n)
                }
            }
        case .narrowRows:
            k1.withUnsafeBufferPointer { k1 in
                factors.withUnsafeBufferPointer { f in
                    // work = Z ← K₁ᵀ ∇ (m × n); row i ← (Â_Ω + s₁ᵢ Â_∂)⁻¹ row i; x = K₁ Z.
                    BLAS.gemm(transA: true, m: m, n: n, k: m, a: k1.baseAddress!, lda: m, b: g, ldb: n, c: work, ldc: n)
                    for i in 0..<m {
                        BLAS.potrs(n: n, factor: f.baseAddress! + (factorCount == 1 ? 0 : i) * n * n, b: work + i * n)
                    }
                    BLAS.gemm(m: m, n: n, k: m, a: k1.baseAddress!, lda: m, b: work, ldb: n, c: x, ldc: n)
                }
            }
        }
    }
}

extension KroneckerSumInverse {
    /// The factorisation's arrays (K, s, the narrow methods' Cholesky factors and their count).
    func writeState(_ s: inout SectionWriter) throws {
        for values in [k1, s1, k2, s2, factors] { try s.doubles(values) }
        s.int(factorCount)
    }

    /// A copy of this value with the factorisation read from `s` (shapes checked against this one's).
    func readState(_ s: inout SectionReader, layer: Int) throws -> KroneckerSumInverse {
        var copy = self
        copy.k1 = try s.doubles(count: k1.count, "K of the B factors of layer \(layer)")
        copy.s1 = try s.doubles(count: s1.count, "s of the B factors of layer \(layer)")
        copy.k2 = try s.doubles(count: k2.count, "K of the A factors of layer \(layer)")
        copy.s2 = try s.doubles(count: s2.count, "s of the A factors of layer \(layer)")
        copy.factors = try s.doubles(count: factors.count, "the Cholesky factors of layer \(layer)")
        let limit = method == .eigen ? 0 : method == .narrowColumns ? columns : rows
        copy.factorCount = try s.int(in: 0...limit, "the Cholesky factor count of layer \(layer)")
        return copy
    }
}
