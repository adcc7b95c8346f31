import CKernels

/// The buffers of one tangent pass: layer-0 value tangents, per-thread rule work, and the
/// tangent columns before and after each activation and at the output. J v from kept adjoints
/// (`jacobianVectorProductsFromAdjoints`) uses `pre` and `values` of the same space.
final class TangentSpace {
    let values = Buffer(), work = Buffer(), pre = Buffer(), post = Buffer(), output = Buffer()
}

extension TaylorPass {
    /// Forward tangent of the output columns [u, ∇u, 𝒟_C u] in the parameter direction
    /// v (D values, layout of θ), at the parameters and points of the last `forward`.
    /// Linearises every rule of the Taylor pass (docs/math.md §3):
    ///   linear:     Ż' = W Ż + Ẇ Z + ḃ e₁ᵀ
    ///   activation: v̇' = σ'v̇,  J̇'_i = σ''v̇ J_i + σ'J̇_i,
    ///               Ṫ' = σ''v̇ T + σ'Ṫ + σ'''v̇ Q + σ''Q̇,  Q̇ = 2 Σ_ij C_ij J_i J̇_j.
    /// Returns S·N values in the blocks of the output, valid until the next call with the same
    /// `space` (0 or 1; passes with different spaces may run at once).
    func tangent(_ v: UnsafePointer<Double>, space: Int = 0) throws -> UnsafePointer<Double> {
        try BLAS.onLibraryThreads {
            try network.parameters.withUnsafeBufferPointer { theta in
                try tangentLayers(theta.baseAddress!, v, tangentSpaces[space])
            }
        }
    }

    private func tangentLayers(_ theta: UnsafePointer<Double>, _ v: UnsafePointer<Double>,
                               _ space: TangentSpace) throws -> UnsafePointer<Double> {
        let net = network, widths = net.widths, n = count, s = columnsPerSample
        let ns = n * s, L = net.numLayers, dJ = derivativeColumns
        let cvals = UnsafePointer(coefficientValues.pointer), diag = coefficientsDiagonal
        // Per-row work of the rules, for each of two threads: S·N values.
        let work = try space.work.reserve(2 * s * max(n, 1))
        // Layer 0: the inputs do not depend on θ, so Ż = Ẇ₀ Z₀ + ḃ₀ (explicit input columns: one GEMM
        // in the loop below; structured ones: values Ẇ₀x_n + ḃ₀, J̇_i = Ẇ₀[:, i], Ṫ = 0, here).
        var post = space.post.pointer
        if !hasExplicitInput {
            guard let first = try structuredFirstLayerTangent(theta, v, space) else { return UnsafePointer(space.output.pointer) }
            post = first
        }
        for l in (hasExplicitInput ? 0 : 1)..<L {
            let hin = widths[l], hout = widths[l + 1]
            let w = theta + net.weightOffset(l), dw = v + net.weightOffset(l), db = v + net.biasOffset(l)
            let z = l == L - 1 ? try space.output.reserve(hout * ns) : try space.pre.reserve(hout * ns)
            if l == 0 {
                BLAS.gemm(m: hout, n: ns, k: hin, a: dw, lda: hin, b: layerInput(0), ldb: ns, c: z, ldc: ns,
                          threads: elementwiseThreads)
            } else {
                BLAS.gemm(m: hout, n: ns, k: hin, a: w, lda: hin, b: post, ldb: ns, c: z, ldc: ns, threads: elementwiseThreads)
                BLAS.gemm(m: hout, n: ns, k: hin, a: dw, lda: hin, b: layerInput(l), ldb: ns,
                          beta: 1, c: z, ldc: ns, threads: elementwiseThreads)
            }
            for j in 0..<hout {
                let row = z + j * ns, dbj = db[j]
                for k in 0..<n { row[k] += dbj }
            }
            if l == L - 1 { break }
            // Activation of hidden layer l: pre (v, J, T) from the forward pass, tangents in z.
            post = try space.post.reserve(hout * ns)
            let sl = slopes[l].pointer, hn = hout * n, p = UnsafePointer(pre[l].pointer), out = post
            forEachRowRange(hout, n) { rows, part in
                let wk = work + part * s * n
                for j in rows {
                    let t = z + j * ns, o = out + j * ns, e = j * n, s1 = sl + e
                    if s == 1 {
                        for k in 0..<n { o[k] = s1[k] * t[k] }
                    } else {
                        kernels_taylor_rule_tangent(kernelISA, n, dJ, p + j * ns, cvals, diag ? 1 : 0, s1, sl + hn + e,
                                                    sl + 2 * hn + e, t, o, wk)
                    }
                }
            }
        }
        return UnsafePointer(space.output.pointer)
    }

    /// The tangent of layer 0 and its activation from the structured input columns x_n, e_i, 0:
    /// the activation's tangent columns, or nil when the network is one layer (the output is then
    /// written).
    private func structuredFirstLayerTangent(_ theta: UnsafePointer<Double>, _ v: UnsafePointer<Double>,
                                             _ space: TangentSpace) throws -> UnsafeMutablePointer<Double>? {
        let net = network, widths = net.widths, n = count, s = columnsPerSample
        let d = widths[0], ns = n * s, L = net.numLayers, h1 = widths[1]
        let w0 = theta + net.weightOffset(0), dw0 = v + net.weightOffset(0), db0 = v + net.biasOffset(0)
        let vdot = try space.values.reserve(h1 * n)
        kernels_first_layer_values(kernelISA, h1, n, d, dw0, db0, points.pointer, vdot)
        if L == 1 {
            let out = try space.output.reserve(ns)
            writeLinearOutput(values: vdot, weights: dw0, into: out)
            return nil
        }
        // Activation of layer 0 (pre J_i = W₀[:, i], T = 0, Q = q_j, Q̇_j = 2 Σ_i (C W_j)_i Ẇ_ji).
        let post = try space.post.reserve(h1 * ns)
        do {
            let q = UnsafePointer(firstQuadratic.pointer), cw = UnsafePointer(firstCW.pointer)
            let sl = slopes[0].pointer, hn = h1 * n, out = post
            forEachRowRange(h1, n) { rows, _ in
                for j in rows {
                    let e = j * n, o = out + j * ns, s1 = sl + e, s2 = sl + hn + e, vd = vdot + e
                    for k in 0..<n { o[k] = s1[k] * vd[k] }
                    guard s > 1 else { continue }
                    var qdot = 0.0
                    for i in 0..<d { qdot += 2 * cw[j * d + i] * dw0[j * d + i] }
                    kernels_taylor_first_rule_tangent(kernelISA, n, d, w0 + j * d, dw0 + j * d, q[j], qdot,
                                                      s1, s2, sl + 2 * hn + e, vd, o)
                }
            }
        }
        return post
    }
}
