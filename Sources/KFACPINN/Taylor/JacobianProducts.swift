import CKernels

extension TaylorPass {
    /// Per-sample Jacobian rows after `backward` with the unscaled Jacobian seeds ∂r_n/∂(u, ∇u, T):
    /// row n of `rows` (leading dimension `ld` ≥ D, layout of θ) becomes scale · ∂r_n/∂θ, where
    ///   ∂r_n/∂W_l = Σ_s G_l[:, (n,s)] Z_l[:, (n,s)]ᵀ,  ∂r_n/∂b_l = G_l[:, (n, value column)],
    /// and for layer 0 (input columns x_n, e_i, 0): ∂r_n/∂W₀[j, i] = G[j,(n,v)] x_{n,i} + G[j,(n,J_i)].
    func jacobianRows(into rows: UnsafeMutablePointer<Double>, ld: Int, scale: Double) throws {
        let net = network, widths = net.widths, n = count, s = columnsPerSample
        let d = widths[0], ns = n * s
        for l in 0..<net.numLayers {
            let hin = widths[l], hout = widths[l + 1]
            let g = UnsafePointer(adjoints[l].pointer), wo = net.weightOffset(l), bo = net.biasOffset(l)
            let gk = try sampleColumns.0.reserve(hout * s), zk = try sampleColumns.1.reserve(hin * s)
            for k in 0..<n {
                let row = rows + k * ld
                for j in 0..<hout { row[bo + j] = scale * g[j * ns + k] }
                if l == 0 && !hasExplicitInput {
                    let x = points.pointer + k
                    for j in 0..<hout {
                        let gv = scale * g[j * ns + k], out = row + wo + j * d
                        for i in 0..<d { out[i] = gv * x[i * n] + (s > 1 ? scale * g[j * ns + (1 + i) * n + k] : 0) }
                    }
                } else {
                    // This sample's columns gathered (h_out × S, h_in × S), then one small GEMM.
                    let z = layerInput(l)
                    for c in 0..<s {
                        for j in 0..<hout { gk[j * s + c] = g[j * ns + c * n + k] }
                        for i in 0..<hin { zk[i * s + c] = z[i * ns + c * n + k] }
                    }
                    BLAS.gemm(transB: true, m: hout, n: hin, k: s, alpha: scale, a: gk, lda: s,
                              b: zk, ldb: s, c: row + wo, ldc: hin)
                }
            }
        }
    }

    /// J v per sample from the adjoints of the last `backward` with the unscaled Jacobian seeds,
    /// into `out` (N values): the rows of `jacobianRows` applied to v without forming them,
    ///   J_n v = Σ_l Σ_s G_l[:, (n,s)]ᵀ (Ẇ_l Z_l[:, (n,s)] + ḃ_l [s = value column]),
    /// one GEMM Ẇ_l Z_l over all S·N columns per layer (a tangent pass takes two and the rules);
    /// layer 0 from its input columns x_n, e_i, 0. `space` (0 or 1) holds the products Ẇ_l Z_l:
    /// calls with different spaces may run at once.
    func jacobianVectorProductsFromAdjoints(_ v: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>,
                                            space: Int) throws {
        try BLAS.onLibraryThreads {
            let net = network, widths = net.widths, n = count, s = columnsPerSample
            let d = widths[0], ns = n * s, work = tangentSpaces[space]
            // Two threads: each sums its half of a layer's rows into its own N values.
            let partial = try work.values.reserve(n)
            out.update(repeating: 0, count: n)
            partial.update(repeating: 0, count: n)
            func accumulate(_ h: Int, _ body: (Range<Int>, UnsafeMutablePointer<Double>) -> Void) {
                forEachRowRange(h, ns) { rows, part in body(rows, part == 0 ? out : partial) }
            }
            // Layer 0 from its input columns x_n, e_i, 0 (a `.directional` pass: a GEMM as every layer).
            if !hasExplicitInput {
                let g0 = UnsafePointer(adjoints[0].pointer), h1 = widths[1]
                let dw0 = v + net.weightOffset(0), db0 = v + net.biasOffset(0), x = UnsafePointer(points.pointer)
                accumulate(h1) { rows, sums in
                    kernels_first_adjoint_products(kernelISA, rows.count, n, d, s, g0 + rows.lowerBound * ns,
                                                   dw0 + rows.lowerBound * d, db0 + rows.lowerBound, x, sums)
                }
            }
            for l in (hasExplicitInput ? 0 : 1)..<net.numLayers {
                let hin = widths[l], hout = widths[l + 1]
                let p = try work.pre.reserve(hout * ns), g = UnsafePointer(adjoints[l].pointer)
                let input = layerInput(l)
                BLAS.gemm(m: hout, n: ns, k: hin, a: v + net.weightOffset(l), lda: hin, b: input,
                          ldb: ns, c: p, ldc: ns, threads: elementwiseThreads)
                let db = v + net.biasOffset(l), pc = UnsafePointer(p)
                accumulate(hout) { rows, sums in
                    let first = rows.lowerBound * ns
                    kernels_adjoint_products(kernelISA, rows.count, n, s, g + first, pc + first, db + rows.lowerBound, sums)
                }
            }
            for k in 0..<n { out[k] += partial[k] }
        }
    }
}
