extension TaylorPass {
    /// Forward tangent of the output columns [u, ∇u, 𝒟_C u] in the parameter direction
    /// v (D values, layout of θ), at the parameters and points of the last `forward`.
    /// Linearises every rule of the Taylor pass (math.md §3):
    ///   linear:     Ż' = W Ż + Ẇ Z + ḃ e₁ᵀ
    ///   activation: v̇' = σ'v̇,  J̇'_i = σ''v̇ J_i + σ'J̇_i,
    ///               Ṫ' = σ''v̇ T + σ'Ṫ + σ'''v̇ Q + σ''Q̇,  Q̇ = 2 Σ_ij C_ij J_i J̇_j.
    /// Returns S·N values in the blocks of the output, valid until the next call.
    func tangent(_ v: UnsafePointer<Double>) -> UnsafePointer<Double> {
        network.parameters.withUnsafeBufferPointer { theta in
            tangentLayers(theta.baseAddress!, v)
        }
    }

    private func tangentLayers(_ theta: UnsafePointer<Double>, _ v: UnsafePointer<Double>) -> UnsafePointer<Double> {
        let net = network, widths = net.widths, n = count, s = columnsPerSample
        let d = widths[0], ns = n * s, L = net.numLayers, h1 = widths[1]
        let cvals = UnsafePointer(coefficientValues.pointer), diag = coefficientsDiagonal
        // Layer 0: the inputs do not depend on θ, so Ż = Ẇ₀ Z₀ + ḃ₀: values Ẇ₀x_n + ḃ₀, J̇_i = Ẇ₀[:, i], Ṫ = 0.
        let w0 = theta + net.weightOffset(0), dw0 = v + net.weightOffset(0), db0 = v + net.biasOffset(0)
        let vdot = reduceScratch.reserve(h1 * n)
        BLAS.gemm(transB: true, m: h1, n: n, k: d, a: dw0, lda: d, b: points.pointer, ldb: d, c: vdot, ldc: n)
        for j in 0..<h1 { for k in 0..<n { vdot[j * n + k] += db0[j] } }
        if L == 1 {
            let out = tangentOutput.reserve(ns)
            writeLinearOutput(values: vdot, weights: dw0, into: out)
            return UnsafePointer(out)
        }
        // Activation of layer 0 (pre J_i = W₀[:, i], T = 0, Q = q_j, Q̇_j = 2 Σ_i (C W_j)_i Ẇ_ji).
        var post = tangentPost.reserve(h1 * ns)
        do {
            let q = firstQuadratic.pointer, cw = firstCW.pointer
            let sl = slopes[0].pointer, hn = h1 * n
            for j in 0..<h1 {
                let wj = w0 + j * d, dwj = dw0 + j * d, e = j * n, o = post + j * ns
                let s1 = sl + e, s2 = sl + hn + e, s3 = sl + 2 * hn + e, vd = vdot + e
                for k in 0..<n { o[k] = s1[k] * vd[k] }
                guard s > 1 else { continue }
                var qdot = 0.0
                for i in 0..<d { qdot += 2 * cw[j * d + i] * dwj[i] }
                for i in 0..<d {
                    let oi = o + (1 + i) * n, wji = wj[i], dwji = dwj[i]
                    for k in 0..<n { oi[k] = s2[k] * vd[k] * wji + s1[k] * dwji }
                }
                let ot = o + (d + 1) * n, qj = q[j]
                for k in 0..<n { ot[k] = s3[k] * vd[k] * qj + s2[k] * qdot }
            }
        }
        // Per-row work: the (CJ)_i blocks (d·N), Q and Q̇ (N each).
        let cj = reduceScratch2.reserve(max((d + 2) * n, 1)), qs = cj + d * n, qdot = qs + n
        for l in 1..<L {
            let hin = widths[l], hout = widths[l + 1]
            let w = theta + net.weightOffset(l), dw = v + net.weightOffset(l), db = v + net.biasOffset(l)
            let z = l == L - 1 ? tangentOutput.reserve(hout * ns) : tangentPre.reserve(hout * ns)
            BLAS.gemm(m: hout, n: ns, k: hin, a: w, lda: hin, b: post, ldb: ns, c: z, ldc: ns)
            BLAS.gemm(m: hout, n: ns, k: hin, a: dw, lda: hin, b: self.post[l - 1].pointer, ldb: ns,
                      beta: 1, c: z, ldc: ns)
            for j in 0..<hout {
                let row = z + j * ns, dbj = db[j]
                for k in 0..<n { row[k] += dbj }
            }
            if l == L - 1 { break }
            // Activation of hidden layer l: pre (v, J, T) from the forward pass, tangents in z.
            post = tangentPost.reserve(hout * ns)
            let sl = slopes[l].pointer, hn = hout * n
            for j in 0..<hout {
                let p = pre[l].pointer + j * ns, t = z + j * ns, o = post + j * ns, e = j * n
                let s1 = sl + e, s2 = sl + hn + e, s3 = sl + 2 * hn + e
                for k in 0..<n { o[k] = s1[k] * t[k] }
                guard s > 1 else { continue }
                Coefficients.applyBlocks(d, p + n, n, cvals, diagonal: diag, into: cj)
                for k in 0..<n { qs[k] = 0; qdot[k] = 0 }
                for i in 0..<d {
                    let ji = p + (1 + i) * n, jd = t + (1 + i) * n, ci = cj + i * n, oi = o + (1 + i) * n
                    for k in 0..<n {
                        qs[k] += ji[k] * ci[k]
                        qdot[k] += 2 * ci[k] * jd[k]
                        oi[k] = s2[k] * t[k] * ji[k] + s1[k] * jd[k]
                    }
                }
                let pt = p + (d + 1) * n, td = t + (d + 1) * n, ot = o + (d + 1) * n
                for k in 0..<n {
                    ot[k] = s2[k] * t[k] * pt[k] + s1[k] * td[k] + s3[k] * t[k] * qs[k] + s2[k] * qdot[k]
                }
            }
        }
        return UnsafePointer(tangentOutput.pointer)
    }
}
