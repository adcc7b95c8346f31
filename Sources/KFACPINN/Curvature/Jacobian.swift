extension TaylorPass {
    /// Per-sample Jacobian rows after `backward` with the unscaled Jacobian seeds ∂r_n/∂(u, ∇u, T):
    /// row n of `rows` (leading dimension `ld` ≥ D, layout of θ) becomes scale · ∂r_n/∂θ, where
    ///   ∂r_n/∂W_l = Σ_s G_l[:, (n,s)] Z_l[:, (n,s)]ᵀ,  ∂r_n/∂b_l = G_l[:, (n, value column)],
    /// and for layer 0 (input columns x_n, e_i, 0): ∂r_n/∂W₀[j, i] = G[j,(n,v)] x_{n,i} + G[j,(n,J_i)].
    func jacobianRows(into rows: UnsafeMutablePointer<Double>, ld: Int, scale: Double) {
        let net = network, widths = net.widths, n = count, s = columnsPerSample
        let d = widths[0], ns = n * s
        for l in 0..<net.numLayers {
            let hin = widths[l], hout = widths[l + 1]
            let g = UnsafePointer(adjoints[l].pointer), wo = net.weightOffset(l), bo = net.biasOffset(l)
            let gk = reduceScratch.reserve(hout * s), zk = reduceScratch2.reserve(hin * s)
            for k in 0..<n {
                let row = rows + k * ld
                for j in 0..<hout { row[bo + j] = scale * g[j * ns + k] }
                if l == 0 {
                    let x = points.pointer + k
                    for j in 0..<hout {
                        let gv = scale * g[j * ns + k], out = row + wo + j * d
                        for i in 0..<d { out[i] = gv * x[i * n] + (s > 1 ? scale * g[j * ns + (1 + i) * n + k] : 0) }
                    }
                } else {
                    // This sample's columns gathered (h_out × S, h_in × S), then one small GEMM.
                    let z = post[l - 1].pointer
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
}

extension PINNLoss {
    /// After `forward`: the scaled Jacobian J̃ = [J_Ω/√N_Ω; J_∂/√N_∂] ((N_Ω + N_∂) × D, row-major)
    /// and the scaled residuals r̃ = [r/√N_Ω; (u − g)/√N_∂], so that G = J̃ᵀJ̃, ∇L = J̃ᵀr̃ and
    /// L = ½‖r̃‖². Runs the backward passes with the unscaled seeds.
    func scaledJacobian(_ batch: Batch, rows: UnsafeMutablePointer<Double>, residuals: UnsafeMutablePointer<Double>) {
        let n = batch.interiorCount, m = batch.boundaryCount, D = network.numParameters
        let si = 1 / Double(n).squareRoot()
        interiorPass.backward(seeds: interiorSeeds.pointer)
        interiorPass.jacobianRows(into: rows, ld: D, scale: si)
        for k in 0..<n { residuals[k] = si * interiorResiduals.pointer[k] }
        if m > 0 {
            let sb = 1 / Double(m).squareRoot()
            boundaryPass.backward(seeds: boundarySeeds.pointer)
            boundaryPass.jacobianRows(into: rows + n * D, ld: D, scale: sb)
            for k in 0..<m { residuals[n + k] = sb * boundaryResiduals.pointer[k] }
        }
    }

    /// The dense Jacobians of the interior and condition residuals, ∂r_n/∂θ (N_Ω × D) and
    /// ∂(u − g)_m/∂θ (N_∂ × D), row-major, on `batch`.
    public func jacobians(_ batch: Batch) throws -> (interior: [Double], boundary: [Double]) {
        try forward(batch)
        let n = batch.interiorCount, m = batch.boundaryCount, D = network.numParameters
        var ji = [Double](repeating: 0, count: n * D), jb = [Double](repeating: 0, count: m * D)
        interiorPass.backward(seeds: interiorSeeds.pointer)
        ji.withUnsafeMutableBufferPointer { interiorPass.jacobianRows(into: $0.baseAddress!, ld: D, scale: 1) }
        if m > 0 {
            boundaryPass.backward(seeds: boundarySeeds.pointer)
            jb.withUnsafeMutableBufferPointer { boundaryPass.jacobianRows(into: $0.baseAddress!, ld: D, scale: 1) }
        }
        return (ji, jb)
    }
}
