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

/// Work space of the Kronecker factors of one layer (the Grams of the first hidden layer, the
/// reduced columns of KFAC-reduce), kept by whoever computes them so that layers on different
/// threads never share it.
final class FactorWorkspace {
    let gram = Buffer(), reducedInputs = Buffer(), reducedAdjoints = Buffer()
    init() {}
}

extension TaylorPass {
    /// The Kronecker factors of linear layer l from the stored layer inputs Z̃ and output
    /// adjoints G_l (call `backward` with the Jacobian seeds ∂r_n/∂(output columns) first):
    /// A ((h_in+1)², bias last, as W̃ = [W b]) into `a`, B (h_out²) into `b`, both full
    /// symmetric. For a `.value` pass (S = 1) expand and reduce coincide. `threads`: 1 when
    /// called for several layers at once, else the pass's threads.
    func kroneckerFactors(layer l: Int, approximation: KroneckerApproximation, a: UnsafeMutablePointer<Double>,
                          b: UnsafeMutablePointer<Double>, workspace: FactorWorkspace, threads: Int? = nil) throws {
        try BLAS.onLibraryThreads {
            try layerFactors(l, approximation, a, b, workspace, threads: threads ?? elementwiseThreads)
        }
    }

    /// Σ_{n,s} z zᵀ (h × h, upper triangle, into `a` with leading dimension `lda`) over the
    /// Taylor columns of the first hidden layer, z = [σ(v); σ'(v) W₀[:, i] (i = 1..d); σ''(v) q]:
    /// the gradient blocks sum to (Σ_n σ'_n σ'_nᵀ) ⊙ (W₀W₀ᵀ), so three Grams over N columns (value,
    /// σ', Laplacian block) replace one over (d+2)·N.
    private func firstHiddenGram(_ a: UnsafeMutablePointer<Double>, _ lda: Int, _ workspace: FactorWorkspace, threads: Int) throws {
        let h = network.widths[1], d = network.widths[0], n = count, ns = n * columnsPerSample
        let z = UnsafePointer(post[0].pointer)
        BLAS.syrk(n: h, k: n, a: z, lda: ns, c: a, ldc: lda, threads: threads)
        BLAS.syrk(n: h, k: n, a: z + (d + 1) * n, lda: ns, beta: 1, c: a, ldc: lda, threads: threads)
        let slopes = try workspace.gram.reserve(2 * h * h), weights = slopes + h * h
        BLAS.syrk(n: h, k: n, a: self.slopes[0].pointer, lda: n, c: slopes, ldc: h, threads: threads)
        BLAS.syrk(n: h, k: d, a: firstWeights.pointer, lda: d, c: weights, ldc: h)
        for j in 0..<h {
            for k in j..<h { a[j * lda + k] += slopes[j * h + k] * weights[j * h + k] }
        }
    }

    private func layerFactors(_ l: Int, _ approximation: KroneckerApproximation, _ a: UnsafeMutablePointer<Double>,
                              _ b: UnsafeMutablePointer<Double>, _ workspace: FactorWorkspace, threads: Int) throws {
        let widths = network.widths, n = count, s = columnsPerSample, ns = n * s
        let hin = widths[l], hout = widths[l + 1], h1 = hin + 1, d = widths[0]
        let g = UnsafePointer(adjoints[l].pointer)
        if approximation == .expand || s == 1 {
            // A = 1/(N S) Σ_{n,s} z̃ z̃ᵀ with z̃ = [z; 1 in the value column, 0 elsewhere].
            a.update(repeating: 0, count: h1 * h1)
            if l == 0 && !hasExplicitInput {
                // Input columns x_n, e_i (i = 1..d), 0: Σ z zᵀ = XᵀX + N·I.
                BLAS.syrk(n: d, k: n, a: points.pointer, lda: n, c: a, ldc: h1)
                if s > 1 { for i in 0..<d { a[i * h1 + i] += Double(n) } }
            } else if l == 1 && s > 1 && !hasExplicitInput {
                try firstHiddenGram(a, h1, workspace, threads: threads)
            } else {
                BLAS.syrk(n: hin, k: ns, a: layerInput(l), lda: ns, c: a, ldc: h1, threads: threads)
            }
            // Bias column: Σ_n of each input's value row (in the last row first, which is below the
            // diagonal and overwritten by the symmetrisation).
            let plainPoints = l == 0 && !hasExplicitInput
            let input = plainPoints ? UnsafePointer(points.pointer) : layerInput(l)
            kernels_row_sums(kernelISA, hin, n, input, plainPoints ? n : ns, a + hin * h1)
            for i in 0..<hin { a[i * h1 + hin] = a[hin * h1 + i] }
            a[h1 * h1 - 1] = Double(n)
            BLAS.scal(h1 * h1, 1 / Double(ns), a)
            // B = 1/N Σ_{n,s} g gᵀ.
            BLAS.syrk(n: hout, k: ns, a: g, lda: ns, c: b, ldc: hout, threads: threads)
            BLAS.scal(hout * hout, 1 / Double(n), b)
        } else {
            // z̄_n = mean_s z̃_{n,s} (h_in+1 × N), ḡ_n = Σ_s g_{n,s} (h_out × N).
            let zbar = try workspace.reducedInputs.reserve(h1 * n)
            for k in 0..<n { zbar[hin * n + k] = 1 / Double(s) }
            if l == 0 && !hasExplicitInput {
                for i in 0..<d {
                    for k in 0..<n { zbar[i * n + k] = (points.pointer[i * n + k] + 1) / Double(s) }
                }
            } else {
                let z = layerInput(l)
                for i in 0..<hin {
                    for k in 0..<n {
                        var sum = 0.0
                        for c in 0..<s { sum += z[i * ns + c * n + k] }
                        zbar[i * n + k] = sum / Double(s)
                    }
                }
            }
            BLAS.syrk(n: h1, k: n, alpha: 1 / Double(n), a: zbar, lda: n, c: a, ldc: h1, threads: threads)
            let gbar = try workspace.reducedAdjoints.reserve(hout * n)
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
/// the bias last, as W̃ = [W b]): product 1 of the interior terms, product 2 of the condition
/// terms (empty when the batch has none).
public struct LayerFactors: Sendable {
    public var interiorA: [Double], interiorB: [Double], boundaryA: [Double], boundaryB: [Double]
}

extension PINNLoss {
    /// The factors of Kronecker product 1 (`interior`) or 2 of layer l from the terms of the last
    /// `forward` and backward passes with the Jacobian seeds, merged over the product's terms
    /// (docs/math.md §9): A = Σ_t w_t A_t / Σ_t w_t, B = Σ_t B_t with A_t = 1/(N_t S_t) Σ z̃z̃ᵀ,
    /// B_t = w_t/N_t Σ g gᵀ. `term` (A, B) is work space of the second and later terms. Returns
    /// false, writing nothing, when the product has no term with points and positive weight.
    /// In a data-parallel run (N_t counting every process's points) the sums are over this
    /// process's points, so that the factors are the sums over the processes of these; a process
    /// without points of the product writes zeros.
    func productFactors(layer l: Int, interior: Bool, approximation: KroneckerApproximation,
                        a: UnsafeMutablePointer<Double>, b: UnsafeMutablePointer<Double>,
                        term: (a: Buffer, b: Buffer), workspace: FactorWorkspace, threads: Int) throws -> Bool {
        func member(_ ev: TermEvaluation) -> Bool { ev.kind.isInterior == interior && ev.total > 0 && ev.weight > 0 }
        let totalWeight = terms.reduce(0) { member($1) ? $0 + $1.weight : $0 }
        guard totalWeight > 0 else { return false }
        let h1 = network.widths[l] + 1, hout = network.widths[l + 1]
        var first = true
        for ev in terms where member(ev) && ev.count > 0 {
            let ta = first ? a : try term.a.reserve(h1 * h1), tb = first ? b : try term.b.reserve(hout * hout)
            try ev.pass.kroneckerFactors(layer: l, approximation: approximation, a: ta, b: tb, workspace: workspace,
                                     threads: threads)
            // The pass normalises by this process's points n; N_t counts all processes'.
            let share = ev.count == Int(ev.total) ? 1 : Double(ev.count) / ev.total
            let wa = share * ev.weight / totalWeight, wb = share * ev.weight
            if first {
                if wa != 1 { BLAS.scal(h1 * h1, wa, a) }
                if wb != 1 { BLAS.scal(hout * hout, wb, b) }
            } else {
                for k in 0..<(h1 * h1) { a[k] += wa * ta[k] }
                for k in 0..<(hout * hout) { b[k] += wb * tb[k] }
            }
            first = false
        }
        if first {
            a.update(repeating: 0, count: h1 * h1)
            b.update(repeating: 0, count: hout * hout)
        }
        return true
    }

    /// The Kronecker factors of every layer on `batch` (one forward and one backward pass per term).
    public func kroneckerFactors(_ batch: Batch, approximation: KroneckerApproximation = .expand) throws -> [LayerFactors] {
        try forward(batch)
        var gradient = [Double](repeating: 0, count: parameterCount)
        try gradient.withUnsafeMutableBufferPointer { try gradientKeepingJacobianAdjoints(into: $0.baseAddress!) }
        let workspace = FactorWorkspace(), term = (a: Buffer(), b: Buffer())
        return try (0..<network.numLayers).map { l in
            let h1 = network.widths[l] + 1, hout = network.widths[l + 1]
            func product(_ interior: Bool) throws -> (a: [Double], b: [Double]) {
                var a = [Double](repeating: 0, count: h1 * h1), b = [Double](repeating: 0, count: hout * hout)
                let present = try a.withUnsafeMutableBufferPointer { ap in
                    try b.withUnsafeMutableBufferPointer { bp in
                        try productFactors(layer: l, interior: interior, approximation: approximation, a: ap.baseAddress!,
                                       b: bp.baseAddress!, term: term, workspace: workspace, threads: BLAS.numThreads)
                    }
                }
                return present ? (a, b) : ([], [])
            }
            let (ai, bi) = try product(true), (ab, bb) = try product(false)
            return LayerFactors(interiorA: ai, interiorB: bi, boundaryA: ab, boundaryB: bb)
        }
    }
}

extension TaylorPass {
    /// The factors A and B of layer l as new arrays (see `kroneckerFactors(layer:approximation:a:b:workspace:threads:)`).
    func kroneckerFactors(layer l: Int, approximation: KroneckerApproximation) throws -> (a: [Double], b: [Double]) {
        let h1 = network.widths[l] + 1, ho = network.widths[l + 1]
        var a = [Double](repeating: 0, count: h1 * h1), b = [Double](repeating: 0, count: ho * ho)
        try a.withUnsafeMutableBufferPointer { ap in
            try b.withUnsafeMutableBufferPointer { bp in
                try kroneckerFactors(layer: l, approximation: approximation, a: ap.baseAddress!, b: bp.baseAddress!,
                                 workspace: FactorWorkspace())
            }
        }
        return (a, b)
    }
}
