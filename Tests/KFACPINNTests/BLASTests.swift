import Testing
@testable import KFACPINN

/// The products split over the library's threads, against sums written out, and the thread scope.
struct BLASTests {
    static func random(_ count: Int, _ rng: inout RandomSource) -> [Double] {
        (0..<count).map { _ in rng.uniform(-1, 1) }
    }

    @Test("gemm split in two halves of C's rows or columns (every transpose) equals the sum over k",
          arguments: [(300, 200, 96), (40, 900, 150), (900, 40, 150), (123, 77, 700), (2, 3, 700_000),
                      (1, 3601, 64), (1, 64, 3601), (1, 10, 3600)])
    func splitGemm(m: Int, n: Int, k: Int) throws {
        // The first four shapes are split (m·n·k ≥ BLAS.splitSize, a side ≥ 16); (2, 3, …) is too
        // narrow to split and runs whole. One row (a matrix-vector product) is split in halves of
        // n from n·k ≥ BLAS.gemvSplitSize on, except the narrow (1, 10, …) (non-transposed A only).
        var rng = RandomSource(seed: 11)
        let a = Self.random(m * k, &rng), b = Self.random(k * n, &rng), c0 = Self.random(m * n, &rng)
        for transA in [false, true] {
            for transB in [false, true] {
                #expect(m > 1 || n < 16 || Double(n) * Double(k) >= BLAS.gemvSplitSize, "a one-row shape meant to split does not")
                // A stored m×k (or k×m when transposed), B k×n (or n×k); β = 0.5 on a random C.
                func aAt(_ i: Int, _ l: Int) -> Double { transA ? a[l * m + i] : a[i * k + l] }
                func bAt(_ l: Int, _ j: Int) -> Double { transB ? b[j * k + l] : b[l * n + j] }
                var c = c0
                BLAS.onLibraryThreads {
                    c.withUnsafeMutableBufferPointer { cp in
                        BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 2, a: a, lda: transA ? m : k,
                                  b: b, ldb: transB ? k : n, beta: 0.5, c: cp.baseAddress!, ldc: n, threads: 2)
                    }
                }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0
                        for l in 0..<k { sum += aAt(i, l) * bAt(l, j) }
                        worst = max(worst, abs(c[i * n + j] - (2 * sum + 0.5 * c0[i * n + j])))
                    }
                }
                // Sums of k products of magnitude ≤ 1, in another order than BLAS's.
                #expect(worst < 1e-15 * Double(k), "transA \(transA), transB \(transB): max difference \(worst)")
            }
        }
    }

    @Test("syrk split into diagonal SYRKs and an off-diagonal GEMM equals the sum over k (upper triangle; lower untouched)",
          arguments: [(257, 400), (129, 3600), (40, 5000)])
    func splitSyrk(n: Int, k: Int) throws {
        var rng = RandomSource(seed: 12)
        let a = Self.random(n * k, &rng), c0 = Self.random(n * n, &rng)
        for trans in [false, true] {
            // A stored n×k, or k×n for C = AᵀA.
            func aAt(_ i: Int, _ l: Int) -> Double { trans ? a[l * n + i] : a[i * k + l] }
            var c = c0
            BLAS.onLibraryThreads {
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.syrk(trans: trans, n: n, k: k, alpha: 0.25, a: a, lda: trans ? n : k, beta: 2,
                              c: cp.baseAddress!, ldc: n, threads: 2)
                }
            }
            var worst = 0.0, lowerChanged = 0
            for i in 0..<n {
                for j in 0..<n {
                    if j < i {
                        if c[i * n + j] != c0[i * n + j] { lowerChanged += 1 }
                        continue
                    }
                    var sum = 0.0
                    for l in 0..<k { sum += aAt(i, l) * aAt(j, l) }
                    worst = max(worst, abs(c[i * n + j] - (0.25 * sum + 2 * c0[i * n + j])))
                }
            }
            #expect(worst < 1e-15 * Double(k), "trans \(trans): max difference \(worst) in the upper triangle")
            #expect(lowerChanged == 0, "trans \(trans): \(lowerChanged) entries below the diagonal changed")
        }
    }

    @Test("generalised eigenproblem: Kᵀ B K = I and Kᵀ A K = diag(w), w ascending, for damped rank-deficient Gramians; K = U⁻¹ and w = 0 for A = 0; an indefinite B reported",
          arguments: [3, 40, 257])
    func generalizedEigen(n: Int) throws {
        var rng = RandomSource(seed: 31)
        /// V Vᵀ / rank + λI with V n × rank, as a damped Kronecker factor.
        func gramian(rank: Int, damping: Double) -> [Double] {
            let v = Self.random(n * rank, &rng)
            var m = [Double](repeating: 0, count: n * n)
            for i in 0..<n {
                for j in 0..<n {
                    var sum = 0.0
                    for k in 0..<rank { sum += v[i * rank + k] * v[j * rank + k] }
                    m[i * n + j] = sum / Double(rank) + (i == j ? damping : 0)
                }
            }
            return m
        }
        let b = gramian(rank: max(1, n / 2), damping: 1e-6), a = gramian(rank: max(1, n / 3), damping: 1e-6)
        /// Max |Kᵀ M K − diag(d)| / (1 + |d_i| + |d_j|), written out.
        func worst(_ k: [Double], _ m: [Double], _ d: [Double]) -> Double {
            var mk = [Double](repeating: 0, count: n * n), result = 0.0
            for i in 0..<n { for j in 0..<n { for l in 0..<n { mk[i * n + j] += m[i * n + l] * k[l * n + j] } } }
            for i in 0..<n {
                for j in 0..<n {
                    var sum = 0.0
                    for l in 0..<n { sum += k[l * n + i] * mk[l * n + j] }
                    let want = i == j ? d[i] : 0
                    result = max(result, abs(sum - want) / (1 + abs(d[i]) + abs(d[j])))
                }
            }
            return result
        }
        let workspace = EigenWorkspace()
        func solve(_ a: [Double]?, _ b: [Double]) -> (k: [Double], w: [Double], info: Int) {
            var k = a ?? [Double](repeating: .nan, count: n * n), bw = b, w = [Double](repeating: .nan, count: n)
            let info = BLAS.generalizedEigen(n: n, a: &k, zero: a == nil, b: &bw, w: &w, workspace: workspace)
            return (k, w, info)
        }
        let (k, w, info) = solve(a, b)
        #expect(info == 0)
        // κ(B) ≈ 10⁶ (damping 10⁻⁶): backward-stable reductions leave errors of order κ·n·ε ≈ 10⁻⁸.
        let identity = worst(k, b, [Double](repeating: 1, count: n)), diagonal = worst(k, a, w)
        #expect(identity < 1e-8, "n = \(n): max |Kᵀ B K − I| \(identity)")
        #expect(diagonal < 1e-8, "n = \(n): max |Kᵀ A K − diag(w)| relative \(diagonal)")
        #expect(zip(w, w.dropFirst()).allSatisfy { $0 <= $1 }, "eigenvalues not ascending: \(w.prefix(6))")
        // A = 0: K = U⁻¹ (upper triangular in the row-major K of the column-major LAPACK view).
        let (u, zeros, zeroInfo) = solve(nil, b)
        #expect(zeroInfo == 0 && zeros.allSatisfy { $0 == 0 })
        let inverse = worst(u, b, [Double](repeating: 1, count: n))
        #expect(inverse < 1e-8, "n = \(n), A = 0: max |Kᵀ B K − I| \(inverse)")
        var strictlyLower = 0.0
        for i in 0..<n { for j in 0..<i { strictlyLower = max(strictlyLower, abs(u[i * n + j])) } }
        #expect(strictlyLower == 0, "K = U⁻¹ has entries below the diagonal: \(strictlyLower)")
        // B with a negative eigenvalue: dpotrf stops at a leading minor, reported as n + i.
        var indefinite = b
        indefinite[(n - 1) * n + n - 1] = -1
        let failed = solve(a, indefinite).info
        #expect(failed > n && failed <= 2 * n, "indefinite B: info \(failed)")
    }

    @Test("thread scopes: the outermost scope puts OpenBLAS on one thread and gives the library's count back; a count set inside waits for its end")
    func threadScopes() {
        var scopes = ThreadScopes(threads: 2)
        #expect(scopes.enter() == 1)
        #expect(scopes.enter() == nil, "an inner scope changed OpenBLAS's threads")
        #expect(scopes.leave() == nil, "an inner scope's end changed OpenBLAS's threads")
        #expect(scopes.setThreads(3) == nil && scopes.threads == 3)
        #expect(scopes.leave() == 3)
        #expect(scopes.setThreads(4) == 4)
        // With one library thread OpenBLAS is never changed by a scope.
        var single = ThreadScopes(threads: 1)
        #expect(single.enter() == nil && single.leave() == nil)
        #expect(single.enter() == nil && single.setThreads(2) == nil && single.leave() == 2)
    }

    @Test("buffers are 64-byte aligned, also after growing")
    func bufferAlignment() throws {
        let buffer = try Buffer(3)
        var addresses = [Int(bitPattern: buffer.pointer)]
        for count in [100, 12_345, 1 << 20] { addresses.append(Int(bitPattern: try buffer.reserve(count))) }
        #expect(addresses.allSatisfy { $0 % 64 == 0 }, "addresses modulo 64: \(addresses.map { $0 % 64 })")
    }
}
