/// x = (G + λI)⁺ b for a symmetric positive semi-definite G (n × n, row-major, upper triangle
/// read; `g` is not changed) and λ ≥ 0: a Cholesky solve, and where rounding makes G + λI
/// numerically indefinite, the pseudo-inverse from its eigendecomposition (eigenvalues at or
/// below n·ε·max|w| are dropped). `work` holds n² + 2n values. Throws `.numerical` if LAPACK fails.
func dampedSymmetricSolve(_ g: UnsafePointer<Double>, n: Int, damping lambda: Double, _ b: UnsafePointer<Double>,
                          into x: UnsafeMutablePointer<Double>, work: Buffer) throws {
    let a = try work.reserve(n * n + 2 * n), w = a + n * n, c = w + n
    func loadMatrix() {
        a.update(from: g, count: n * n)
        for i in 0..<n { a[i * n + i] += lambda }
    }
    loadMatrix()
    x.update(from: b, count: n)
    if BLAS.posv(n: n, a: a, b: x) == 0 { return }
    loadMatrix()
    let info = BLAS.syevd(n: n, a: a, w: w)
    guard info == 0 else {
        throw KFPError.numerical("the symmetric eigendecomposition of a \(n) × \(n) damped Gramian failed (LAPACK info \(info))")
    }
    let cutoff = Double(n) * Double.ulpOfOne * max(abs(w[0]), abs(w[n - 1]))
    // x = Q diag(1/w_k for w_k > cutoff) Qᵀ b.
    BLAS.gemv(trans: true, m: n, n: n, a: a, lda: n, x: b, y: c)
    for k in 0..<n { c[k] = w[k] > cutoff ? c[k] / w[k] : 0 }
    BLAS.gemv(m: n, n: n, a: a, lda: n, x: c, y: x)
}
