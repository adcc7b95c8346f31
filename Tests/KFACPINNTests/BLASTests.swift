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
    func bufferAlignment() {
        let buffer = Buffer(3)
        var addresses = [Int(bitPattern: buffer.pointer)]
        for count in [100, 12_345, 1 << 20] { addresses.append(Int(bitPattern: buffer.reserve(count))) }
        #expect(addresses.allSatisfy { $0 % 64 == 0 }, "addresses modulo 64: \(addresses.map { $0 % 64 })")
    }
}
