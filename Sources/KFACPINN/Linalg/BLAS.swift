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

    /// Nominal floating-point operations of the LAPACK calls, by the standard operation counts:
    /// dpotrf n³/3; dpotrs 2n² per right-hand side; dposv both; dsyevd with vectors 10n³/3 (the
    /// tridiagonal reduction 4n³/3 and its back-transformation 2n³; the divide-and-conquer, which
    /// depends on the data, is not counted); the generalised eigenproblem as dsygvd, 17n³/3 (dpotrf,
    /// dsygst n³, dsyevd, dtrsm n³).
    public static var lapackFlops: Double { Double(lapackFlopCount.load(ordering: .relaxed)) }
    private static let lapackFlopCount = Atomic<UInt64>(0)
    private static func countLAPACK(_ n: Int, cubes: Double, squares: Double = 0) {
        let size = Double(n)
        lapackFlopCount.wrappingAdd(UInt64(cubes * size * size * size + squares * size * size), ordering: .relaxed)
    }

    // MARK: Threads

    private static let threading = Mutex(ThreadScopes(threads: { _ = kernel; return Int(openblas_get_num_threads()) }()))

    /// The library's thread count T (kfp_set_num_threads; at first OpenBLAS's own count). Outside
    /// `onLibraryThreads` OpenBLAS runs on T threads; inside it on the calling thread, and the
    /// library spreads its work over T threads itself.
    public static var numThreads: Int {
        get { threading.withLock { $0.threads } }
        set { threading.withLock { if let t = $0.setThreads(newValue) { openblas_set_num_threads(Int32(t)) } } }
    }

    /// Runs `body` with OpenBLAS on the calling thread (process-wide, until the last scope of any
    /// thread ends). Inside, the library's own T threads do all parallel work: `gemm` and `syrk`
    /// split large products over them, the optimizers run layers and line-search trials at once.
    /// One pool of threads instead of two: after each threaded call OpenBLAS 0.3.21 keeps its
    /// workers spinning on sched_yield for a while, taking cores from the library's threads
    /// (docs/performance.md, design choices).
    static func onLibraryThreads<R>(_ body: () throws -> R) rethrows -> R {
        threading.withLock { if let t = $0.enter() { openblas_set_num_threads(Int32(t)) } }
        defer { threading.withLock { if let t = $0.leave() { openblas_set_num_threads(Int32(t)) } } }
        return try body()
    }

    /// Parts a product of `work` multiply-adds is split into for `threads` library threads: none
    /// outside `onLibraryThreads` (OpenBLAS threads it) or below `minimum`.
    private static func parts(_ threads: Int, work: Double, minimum: Double = splitSize) -> Int {
        guard threads >= 2, work >= minimum else { return 1 }
        return threading.withLock { $0.depth > 0 } ? min(threads, 2) : 1
    }

    /// m·n·k below which a product stays on one thread: about 40 µs of work, several times what
    /// handing half of it to a second thread costs.
    static let splitSize = 4_000_000.0

    /// n·k below which a matrix-vector product stays on one thread.
    static let gemvSplitSize = 100_000.0

    /// Runs body(0) and body(1) at once on two threads.
    private static func inTwo(_ body: (Int) -> Void) {
        WorkerPool.shared.parallelFor(2, threads: 2, body)
    }

    // MARK: Level 3

    /// C ← α op(A) op(B) + β C, with op(A) m×k, op(B) k×n, C m×n (row-major). With `threads` ≥ 2
    /// inside `onLibraryThreads`, a large product is split in two halves of C's longer side.
    @inline(__always)
    static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Double = 1, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int, threads: Int = 1
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if beta != 1 { scaleRows(c, rows: m, cols: n, ld: ldc, by: beta) }
            return
        }
        count(2 * Double(m) * Double(n) * Double(k))
        if m > 1 && max(m, n) >= 16 && parts(threads, work: Double(m) * Double(n) * Double(k)) == 2 {
            // Halves at a multiple of 8 (whole SIMD blocks of the kernels), of a side of at least 16.
            if n >= m {
                let half = (n / 2 + 7) / 8 * 8
                inTwo { part in
                    let j = part == 0 ? 0 : half
                    gemmCall(transA, transB, m, part == 0 ? half : n - half, k, alpha, a, lda,
                             transB ? b + j * ldb : b + j, ldb, beta, c + j, ldc)
                }
            } else {
                let half = (m / 2 + 7) / 8 * 8
                inTwo { part in
                    let i = part == 0 ? 0 : half
                    gemmCall(transA, transB, part == 0 ? half : m - half, n, k, alpha, transA ? a + i : a + i * lda,
                             lda, b, ldb, beta, c + i * ldc, ldc)
                }
            }
            return
        }
        if m == 1 && !transA {
            // One output row (the network's last layer): a matrix-vector product, no packing.
            // cᵀ ← α op(B)ᵀ aᵀ + β cᵀ; with two threads in halves of c.
            func gemv(_ j: Int, _ count: Int) {
                cblas_dgemv(CblasRowMajor, transB ? CblasNoTrans : CblasTrans, Int32(transB ? count : k),
                            Int32(transB ? k : count), alpha, transB ? b + j * ldb : b + j, Int32(ldb), a, 1, beta,
                            c + j, 1)
            }
            if n >= 16 && parts(threads, work: Double(n) * Double(k), minimum: gemvSplitSize) == 2 {
                let half = (n / 2 + 7) / 8 * 8
                inTwo { part in gemv(part == 0 ? 0 : half, part == 0 ? half : n - half) }
            } else {
                gemv(0, n)
            }
            return
        }
        gemmCall(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    @inline(__always)
    private static func gemmCall(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double,
                                 _ a: UnsafePointer<Double>, _ lda: Int, _ b: UnsafePointer<Double>, _ ldb: Int,
                                 _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int) {
        cblas_dgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Upper triangle of C ← α A Aᵀ + β C (trans = false, A n×k) or α AᵀA + β C (A k×n). With
    /// `threads` ≥ 2 inside `onLibraryThreads`, a large product is split at the row h of C: the
    /// diagonal blocks C₁₁, C₂₂ (two SYRKs, h²k/2 + (n−h)²k/2) on one thread, C₁₂ = A₁A₂ᵀ (a GEMM,
    /// h(n−h)k) on the other.
    static func syrk(
        trans: Bool = false, n: Int, k: Int, alpha: Double = 1,
        a: UnsafePointer<Double>, lda: Int, beta: Double = 0,
        c: UnsafeMutablePointer<Double>, ldc: Int, threads: Int = 1
    ) {
        guard n > 0, k > 0 else { return }
        count(Double(n) * Double(n) * Double(k))
        // Rows i0..<i0+r of A (columns when `trans`).
        func rows(_ i0: Int) -> UnsafePointer<Double> { trans ? a + i0 : a + i0 * lda }
        func syrkCall(_ i0: Int, _ r: Int) {
            cblas_dsyrk(
                CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, Int32(r), Int32(k), alpha,
                rows(i0), Int32(lda), beta, c + i0 * ldc + i0, Int32(ldc))
        }
        guard n >= 16, parts(threads, work: Double(n) * Double(n) * Double(k)) == 2 else { return syrkCall(0, n) }
        let h = (n / 2 + 7) / 8 * 8
        inTwo { part in
            if part == 0 {
                syrkCall(0, h)
                syrkCall(h, n - h)
            } else {
                gemmCall(trans, !trans, h, n - h, k, alpha, rows(0), lda, rows(h), lda, beta, c + h, ldc)
            }
        }
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

    /// Generalised symmetric-definite eigenproblem A v = s B v (B positive definite), for A and B
    /// full symmetric n × n: on return `a` holds K (row-major) with Kᵀ B K = I, Kᵀ A K = diag(w),
    /// w ascending; `b` is overwritten. With `zero` A is 0 and not read: K = U⁻¹, w = 0.
    /// Returns 0, n + i when B's leading minor of order i is not positive definite, or i ≤ n when
    /// the eigensolver did not converge (dsygvd's convention).
    ///
    /// The reduction of dsygvd, with triangular products in place of its triangular solves (which
    /// run several times slower in OpenBLAS): B = UᵀU (dpotrf), U⁻¹ (dtrtri), C = U⁻ᵀ A U⁻¹ (two
    /// dtrmm), C = Q diag(w) Qᵀ (dsyevd), K = U⁻¹ Q (dtrmm). Counted as dsygvd's 17n³/3 (with
    /// `zero`, dpotrf's and dtrtri's n³/3 each).
    /// LAPACK works in place on the column-major view (the same matrices, as they are symmetric)
    /// with the work space of `workspace`: no allocation, no copies but K's final transposition.
    static func generalizedEigen(
        n: Int, a: UnsafeMutablePointer<Double>, zero: Bool = false, b: UnsafeMutablePointer<Double>,
        w: UnsafeMutablePointer<Double>, workspace: EigenWorkspace
    ) -> Int {
        let upper = Int8(UInt8(ascii: "U")), n32 = Int32(n)
        countLAPACK(n, cubes: zero ? 2.0 / 3 : 17.0 / 3)
        let potrf = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, upper, n32, b, n32)
        guard potrf == 0 else { return potrf > 0 ? n + Int(potrf) : Int(potrf) }
        // A positive diagonal (dpotrf succeeded): U is invertible.
        _ = LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, upper, Int8(UInt8(ascii: "N")), n32, b, n32)
        guard !zero else {
            w.update(repeating: 0, count: n)
            // K = U⁻¹ (upper triangular; column-major in b), row-major.
            for i in 0..<n {
                for k in 0..<n { a[i * n + k] = k >= i ? b[k * n + i] : 0 }
            }
            return 0
        }
        // C = U⁻ᵀ (A U⁻¹), in a.
        cblas_dtrmm(CblasColMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, n32, n32, 1, b, n32, a, n32)
        cblas_dtrmm(CblasColMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, n32, n32, 1, b, n32, a, n32)
        let jobz = Int8(UInt8(ascii: "V"))
        if workspace.size != n {
            // LAPACK's optimal work sizes for n; the arrays only grow (a workspace serves both
            // sides of a Kronecker sum, of two sizes).
            var lwork = 0.0, liwork: Int32 = 0
            _ = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, upper, n32, a, n32, w, &lwork, -1, &liwork, -1)
            let count = max(Int(lwork), 1 + 6 * n + 2 * n * n), icount = max(Int(liwork), 3 + 5 * n)
            if count > workspace.work.count { workspace.work = [Double](repeating: 0, count: count) }
            if icount > workspace.iwork.count { workspace.iwork = [Int32](repeating: 0, count: icount) }
            workspace.size = n
        }
        let info = workspace.work.withUnsafeMutableBufferPointer { work in
            workspace.iwork.withUnsafeMutableBufferPointer { iwork in
                LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, upper, n32, a, n32, w, work.baseAddress!,
                                    Int32(work.count), iwork.baseAddress!, Int32(iwork.count))
            }
        }
        guard info == 0 else { return Int(info) }
        // K = U⁻¹ Q, then column-major K → row-major.
        cblas_dtrmm(CblasColMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, n32, n32, 1, b, n32, a, n32)
        for i in 0..<n {
            for k in (i + 1)..<n { swap(&a[i * n + k], &a[k * n + i]) }
        }
        return 0
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
        countLAPACK(n, cubes: 1.0 / 3, squares: 2)
        return Int(LAPACKE_dposv(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), 1, a, Int32(n), b, 1))
    }

    /// Cholesky factorisation of a full symmetric positive definite n × n matrix, in place (the
    /// column-major view of the same matrix; no copies). Returns LAPACK's info (> 0: not definite).
    static func potrf(n: Int, a: UnsafeMutablePointer<Double>) -> Int {
        countLAPACK(n, cubes: 1.0 / 3)
        return Int(LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), a, Int32(n)))
    }

    /// Solves A x = b with the factor of `potrf`; `b` (n values) becomes x.
    static func potrs(n: Int, factor: UnsafePointer<Double>, b: UnsafeMutablePointer<Double>) {
        countLAPACK(n, cubes: 0, squares: 2)
        _ = LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), 1, factor, Int32(n), b, Int32(n))
    }

    /// Symmetric eigendecomposition A = Q diag(w) Qᵀ (upper triangle read): on return `a[i·n + k]`
    /// is component i of eigenvector k and `w` holds the eigenvalues in ascending order.
    static func syevd(n: Int, a: UnsafeMutablePointer<Double>, w: UnsafeMutablePointer<Double>) -> Int {
        countLAPACK(n, cubes: 10.0 / 3)
        return Int(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")), Int32(n), a,
                           Int32(n), w))
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

/// The library's thread count and the nesting depth of `BLAS.onLibraryThreads` scopes over all
/// threads. Each change returns the thread count OpenBLAS must be set to, or nil for none.
struct ThreadScopes {
    private(set) var threads: Int
    private(set) var depth = 0

    init(threads: Int) { self.threads = threads }

    /// Entering a scope: the outermost one puts OpenBLAS on one thread.
    mutating func enter() -> Int? {
        depth += 1
        return depth == 1 && threads > 1 ? 1 : nil
    }

    /// Leaving a scope: the outermost one gives OpenBLAS the library's count back.
    mutating func leave() -> Int? {
        depth -= 1
        return depth == 0 && threads > 1 ? threads : nil
    }

    /// A new library count: OpenBLAS gets it now outside scopes, else when the last scope ends
    /// (inside, OpenBLAS is on one thread whatever the count).
    mutating func setThreads(_ n: Int) -> Int? {
        threads = n
        return depth == 0 ? n : nil
    }
}

/// LAPACK work space of `BLAS.generalizedEigen`, large enough for every n so far (`size`: the last n);
/// one per concurrent caller.
final class EigenWorkspace: @unchecked Sendable {
    var size = 0
    var work: [Double] = [], iwork: [Int32] = []
}
