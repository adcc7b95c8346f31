import CBLAS
import Synchronization

/// The one place where kfacpinn calls OpenBLAS and LAPACKE.
///
/// All matrices are row-major and contiguous unless a leading dimension says
/// otherwise. Sizes are `Int` here and narrowed to the 32-bit BLAS integers at
/// the call; callers have validated that they fit.
public enum BLAS {
    /// Floating-point operations issued through gemm, syrk and gemv (2mnk, n²k, 2mn), for the
    /// benchmark's GFLOP/s; LAPACK calls are not counted.
    public static var flops: Double { Double(flopCount.load(ordering: .relaxed)) }
    private static let flopCount = Atomic<UInt64>(0)
    @inline(__always)
    private static func count(_ operations: Double) { flopCount.wrappingAdd(UInt64(operations), ordering: .relaxed) }

    /// OpenBLAS runs a GEMM on the calling thread when m·n·k is below about 2^20 (measured with
    /// OpenBLAS 0.3.21: 64·64·192 ran on one thread, 64·64·256 on two). Only speed depends on it.
    static let singleThreadedGemmSize = 1_000_000.0

    /// C ← α op(A) op(B) + β C, with op(A) m×k, op(B) k×n, C m×n (row-major).
    @inline(__always)
    static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Double = 1, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if beta != 1 { scaleRows(c, rows: m, cols: n, ld: ldc, by: beta) }
            return
        }
        count(2 * Double(m) * Double(n) * Double(k))
        if m == 1 && !transA {
            // One output row (the network's last layer): a matrix-vector product, no packing.
            // cᵀ ← α op(B)ᵀ aᵀ + β cᵀ
            cblas_dgemv(CblasRowMajor, transB ? CblasNoTrans : CblasTrans, Int32(transB ? n : k),
                        Int32(transB ? k : n), alpha, b, Int32(ldb), a, 1, beta, c, 1)
            return
        }
        cblas_dgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Upper triangle of C ← α A Aᵀ + β C (trans = false, A n×k) or α AᵀA + β C (A k×n).
    static func syrk(
        trans: Bool = false, n: Int, k: Int, alpha: Double = 1,
        a: UnsafePointer<Double>, lda: Int, beta: Double = 0,
        c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        guard n > 0, k > 0 else { return }
        count(Double(n) * Double(n) * Double(k))
        cblas_dsyrk(
            CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, Int32(n), Int32(k), alpha,
            a, Int32(lda), beta, c, Int32(ldc))
    }

    /// Σ x_i y_i.
    @inline(__always)
    static func dot(_ n: Int, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double {
        n > 0 ? cblas_ddot(Int32(n), x, 1, y, 1) : 0
    }

    /// x ← α x.
    @inline(__always)
    static func scal(_ n: Int, _ alpha: Double, _ x: UnsafeMutablePointer<Double>) {
        if n > 0 { cblas_dscal(Int32(n), alpha, x, 1) }
    }

    /// Euclidean norm of x.
    static func nrm2(_ n: Int, _ x: UnsafePointer<Double>) -> Double {
        n > 0 ? cblas_dnrm2(Int32(n), x, 1) : 0
    }

    private static func scaleRows(
        _ c: UnsafeMutablePointer<Double>, rows: Int, cols: Int, ld: Int, by beta: Double
    ) {
        for i in 0..<rows {
            let row = c + i * ld
            for j in 0..<cols { row[j] = beta == 0 ? 0 : beta * row[j] }
        }
    }

    /// Generalised symmetric-definite eigenproblem A v = s B v (B positive definite):
    /// on return `a` holds K with Kᵀ B K = I, Kᵀ A K = diag(w). `b` is overwritten.
    static func sygvd(
        n: Int, a: UnsafeMutablePointer<Double>, b: UnsafeMutablePointer<Double>,
        w: UnsafeMutablePointer<Double>
    ) -> Int {
        Int(LAPACKE_dsygvd(LAPACK_ROW_MAJOR, 1, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")),
                           Int32(n), a, Int32(n), b, Int32(n), w))
    }

    /// y ← α op(A) x + β y with A m×n (row-major), op(A) = Aᵀ when `trans`.
    static func gemv(trans: Bool = false, m: Int, n: Int, alpha: Double = 1, a: UnsafePointer<Double>, lda: Int,
                     x: UnsafePointer<Double>, beta: Double = 0, y: UnsafeMutablePointer<Double>) {
        guard m > 0, n > 0 else {
            let count = trans ? n : m
            for i in 0..<count { y[i] = beta == 0 ? 0 : beta * y[i] }
            return
        }
        count(2 * Double(m) * Double(n))
        cblas_dgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda),
                    x, 1, beta, y, 1)
    }

    /// Solves A x = b for symmetric positive definite A (n × n, upper triangle read; overwritten
    /// by its Cholesky factor); `b` becomes x. Returns LAPACK's info (> 0: not positive definite).
    static func posv(n: Int, a: UnsafeMutablePointer<Double>, b: UnsafeMutablePointer<Double>) -> Int {
        Int(LAPACKE_dposv(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), 1, a, Int32(n), b, 1))
    }

    /// Symmetric eigendecomposition A = Q diag(w) Qᵀ (upper triangle read): on return `a[i·n + k]`
    /// is component i of eigenvector k and `w` holds the eigenvalues in ascending order.
    static func syevd(n: Int, a: UnsafeMutablePointer<Double>, w: UnsafeMutablePointer<Double>) -> Int {
        Int(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")), Int32(n), a,
                           Int32(n), w))
    }

    /// Number of threads OpenBLAS uses (process-wide).
    public static var numThreads: Int {
        get { _ = kernel; return Int(openblas_get_num_threads()) }
        set { _ = kernel; openblas_set_num_threads(Int32(newValue)) }
    }

    /// The OpenBLAS kernel family in use, chosen once per process before the library's first BLAS
    /// call. OpenBLAS builds older than the CPU (Debian's 0.3.21 on recent Xeons) fall back to
    /// their generic SSE3 "Prescott" kernels, several times slower than the CPU allows. When that
    /// happened and OPENBLAS_CORETYPE is not set, OpenBLAS's kernel choice is run again with
    /// SkylakeX (AVX-512 F/DQ/CD/BW/VL usable) or Haswell (AVX2 + FMA). A set OPENBLAS_CORETYPE
    /// is always left as it is.
    public static let kernel: String = {
        let chosen = String(cString: openblas_get_corename())
        guard getenv("OPENBLAS_CORETYPE") == nil, chosen.lowercased() == "prescott" else { return chosen }
        let family = kfp_cpu_has_avx512() != 0 ? "SkylakeX" : kfp_cpu_has_avx2_fma() != 0 ? "Haswell" : nil
        guard let family else { return chosen }
        setenv("OPENBLAS_CORETYPE", family, 1)
        kfp_openblas_choose_kernel_again()
        unsetenv("OPENBLAS_CORETYPE")
        return String(cString: openblas_get_corename())
    }()
}
