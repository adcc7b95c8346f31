import CKernels

/// How weight sharing over the S Taylor columns of a sample enters the factors.
public enum KroneckerApproximation: String, CaseIterable, Sendable {
    /// A = 1/(N S) Σ_{n,s} z̃ z̃ᵀ, B = 1/N Σ_{n,s} g gᵀ (the default).
    case expand
    /// A = 1/N Σ_n z̄_n z̄_nᵀ (z̄_n: mean over s), B = 1/N Σ_n ḡ_n ḡ_nᵀ (ḡ_n: sum over s).
    case reduce
}

/// Copies the upper triangle of an n × n row-major matrix into its lower triangle.
func symmetrizeFromUpper(_ m: UnsafeMutablePointer<Double>, _ n: Int) {
    for i in 0..<n {
        for j in 0..<i { m[i * n + j] = m[j * n + i] }
    }
}

extension TaylorPass {
    /// The Kronecker factors of linear layer l from the stored layer inputs Z̃ and output
    /// adjoints G_l (call `backward` with the Jacobian seeds ∂r_n/∂(u, ∇u, T) first):
    /// A ((h_in+1)², bias last, as W̃ = [W b]) into `a`, B (h_out²) into `b`, both full
    /// symmetric. For a `.value` pass (S = 1) expand and reduce coincide. `threads`: 1 when
    /// called for several layers at once, else the pass's threads.
    func kroneckerFactors(layer l: Int, approximation: KroneckerApproximation,
                          a: UnsafeMutablePointer<Double>, b: UnsafeMutablePointer<Double>, threads: Int? = nil) {
        BLAS.onLibraryThreads {
            layerFactors(l, approximation, a, b, threads: threads ?? elementwiseThreads)
        }
    }

    /// Σ_{n,s} z zᵀ (h × h, upper triangle, into `a` with leading dimension `lda`) over the
    /// Taylor columns of the first hidden layer, z = [σ(v); σ'(v) W₀[:, i] (i = 1..d); σ''(v) q]:
    /// the gradient blocks sum to (Σ_n σ'_n σ'_nᵀ) ⊙ (W₀W₀ᵀ), so three Grams over N columns (value,
    /// σ', Laplacian block) replace one over (d+2)·N.
    private func firstHiddenGram(_ a: UnsafeMutablePointer<Double>, _ lda: Int, threads: Int) {
        let h = network.widths[1], d = network.widths[0], n = count, ns = n * columnsPerSample
        let z = UnsafePointer(post[0].pointer)
        BLAS.syrk(n: h, k: n, a: z, lda: ns, c: a, ldc: lda, threads: threads)
        BLAS.syrk(n: h, k: n, a: z + (d + 1) * n, lda: ns, beta: 1, c: a, ldc: lda, threads: threads)
        let slopes = firstGram.reserve(2 * h * h), weights = slopes + h * h
        BLAS.syrk(n: h, k: n, a: self.slopes[0].pointer, lda: n, c: slopes, ldc: h, threads: threads)
        BLAS.syrk(n: h, k: d, a: firstWeights.pointer, lda: d, c: weights, ldc: h)
        for j in 0..<h {
            for k in j..<h { a[j * lda + k] += slopes[j * h + k] * weights[j * h + k] }
        }
    }

    private func layerFactors(_ l: Int, _ approximation: KroneckerApproximation, _ a: UnsafeMutablePointer<Double>,
                              _ b: UnsafeMutablePointer<Double>, threads: Int) {
        let widths = network.widths, n = count, s = columnsPerSample, ns = n * s
        let hin = widths[l], hout = widths[l + 1], h1 = hin + 1, d = widths[0]
        let g = UnsafePointer(adjoints[l].pointer)
        if approximation == .expand || s == 1 {
            // A = 1/(N S) Σ_{n,s} z̃ z̃ᵀ with z̃ = [z; 1 in the value column, 0 elsewhere].
            a.update(repeating: 0, count: h1 * h1)
            if l == 0 {
                // Input columns x_n, e_i (i = 1..d), 0: Σ z zᵀ = XᵀX + N·I.
                BLAS.syrk(n: d, k: n, a: points.pointer, lda: n, c: a, ldc: h1)
                if s > 1 { for i in 0..<d { a[i * h1 + i] += Double(n) } }
            } else if l == 1 && s > 1 {
                firstHiddenGram(a, h1, threads: threads)
            } else {
                BLAS.syrk(n: hin, k: ns, a: post[l - 1].pointer, lda: ns, c: a, ldc: h1, threads: threads)
            }
            // Bias column: Σ_n of each input's value row (in the last row first, which is below the
            // diagonal and overwritten by the symmetrisation).
            let input = l == 0 ? UnsafePointer(points.pointer) : UnsafePointer(post[l - 1].pointer)
            kernels_row_sums(kernelISA, hin, n, input, l == 0 ? n : ns, a + hin * h1)
            for i in 0..<hin { a[i * h1 + hin] = a[hin * h1 + i] }
            a[h1 * h1 - 1] = Double(n)
            BLAS.scal(h1 * h1, 1 / Double(ns), a)
            // B = 1/N Σ_{n,s} g gᵀ.
            BLAS.syrk(n: hout, k: ns, a: g, lda: ns, c: b, ldc: hout, threads: threads)
            BLAS.scal(hout * hout, 1 / Double(n), b)
        } else {
            // z̄_n = mean_s z̃_{n,s} (h_in+1 × N), ḡ_n = Σ_s g_{n,s} (h_out × N).
            let zbar = reduceScratch.reserve(h1 * n)
            for k in 0..<n { zbar[hin * n + k] = 1 / Double(s) }
            if l == 0 {
                for i in 0..<d {
                    for k in 0..<n { zbar[i * n + k] = (points.pointer[i * n + k] + 1) / Double(s) }
                }
            } else {
                let z = post[l - 1].pointer
                for i in 0..<hin {
                    for k in 0..<n {
                        var sum = 0.0
                        for c in 0..<s { sum += z[i * ns + c * n + k] }
                        zbar[i * n + k] = sum / Double(s)
                    }
                }
            }
            BLAS.syrk(n: h1, k: n, alpha: 1 / Double(n), a: zbar, lda: n, c: a, ldc: h1, threads: threads)
            let gbar = reduceScratch2.reserve(hout * n)
            for j in 0..<hout {
                for k in 0..<n {
                    var sum = 0.0
                    for c in 0..<s { sum += g[j * ns + c * n + k] }
                    gbar[j * n + k] = sum
                }
            }
            BLAS.syrk(n: hout, k: n, alpha: 1 / Double(n), a: gbar, lda: n, c: b, ldc: hout, threads: threads)
        }
        symmetrizeFromUpper(a, h1)
        symmetrizeFromUpper(b, hout)
    }
}

/// The Kronecker factors of one linear layer for one batch (row-major, full symmetric; A with
/// the bias last, as W̃ = [W b]); the condition factors are empty without condition points.
public struct LayerFactors: Sendable {
    public var interiorA: [Double], interiorB: [Double], boundaryA: [Double], boundaryB: [Double]
}

extension PINNLoss {
    /// The Kronecker factors of every layer on `batch` (one forward and one backward pass per term).
    public func kroneckerFactors(_ batch: Batch, approximation: KroneckerApproximation = .expand) throws -> [LayerFactors] {
        try forward(batch)
        var gradient = [Double](repeating: 0, count: network.numParameters)
        gradient.withUnsafeMutableBufferPointer { gradientKeepingJacobianAdjoints(batch, into: $0.baseAddress!) }
        return (0..<network.numLayers).map { l in
            let (ai, bi) = interiorPass.kroneckerFactors(layer: l, approximation: approximation)
            let (ab, bb) = batch.boundaryCount > 0 ? boundaryPass.kroneckerFactors(layer: l, approximation: approximation) : ([], [])
            return LayerFactors(interiorA: ai, interiorB: bi, boundaryA: ab, boundaryB: bb)
        }
    }
}

extension TaylorPass {
    /// The factors A and B of layer l as new arrays (see `kroneckerFactors(layer:approximation:a:b:)`).
    func kroneckerFactors(layer l: Int, approximation: KroneckerApproximation) -> (a: [Double], b: [Double]) {
        let h1 = network.widths[l] + 1, ho = network.widths[l + 1]
        var a = [Double](repeating: 0, count: h1 * h1), b = [Double](repeating: 0, count: ho * ho)
        a.withUnsafeMutableBufferPointer { ap in
            b.withUnsafeMutableBufferPointer { bp in
                kroneckerFactors(layer: l, approximation: approximation, a: ap.baseAddress!, b: bp.baseAddress!)
            }
        }
        return (a, b)
    }
}
