/// Gauss–Newton products of the PINN loss: G = 1/N_Ω Σ_n J_nᵀJ_n + 1/N_∂ Σ_m J_mᵀJ_m with
/// J_n = ∂r_n/∂θ (for a nonlinear residual, its linearisation).
extension PINNLoss {
    /// After `forward`: J v for the interior residuals (N_Ω values, in `interiorJv[space]`) and
    /// the condition residuals (N_∂ values, in `boundaryJv[space]`) by forward tangent passes in
    /// the passes' tangent space `space` (calls with spaces 0 and 1 may run at once).
    func jacobianVectorProducts(_ v: UnsafePointer<Double>, batch: Batch, space: Int = 0) {
        let n = batch.interiorCount, s = network.inputDimension + 2
        let t = interiorPass.tangent(v, space: space), seeds = interiorSeeds.pointer
        let jv = interiorJv[space].reserve(n)
        for k in 0..<n {
            // J_n v = Σ_c ∂r_n/∂(out_c) · (out_c)˙
            var sum = 0.0
            for c in 0..<s { sum += seeds[c * n + k] * t[c * n + k] }
            jv[k] = sum
        }
        let m = batch.boundaryCount
        if m > 0 {
            let tb = boundaryPass.tangent(v, space: space)
            boundaryJv[space].reserve(m).update(from: tb, count: m)
        }
    }

    /// `jacobianVectorProducts` from the adjoints that `keepJacobianAdjoints` or
    /// `gradientKeepingJacobianAdjoints` left in the passes (no other pass in between): one GEMM
    /// per layer instead of a tangent pass (`TaylorPass.jacobianVectorProductsFromAdjoints`).
    func jacobianVectorProductsFromAdjoints(_ v: UnsafePointer<Double>, batch: Batch, space: Int = 0) {
        interiorPass.jacobianVectorProductsFromAdjoints(v, into: interiorJv[space].reserve(batch.interiorCount),
                                                        space: space)
        let m = batch.boundaryCount
        if m > 0 { boundaryPass.jacobianVectorProductsFromAdjoints(v, into: boundaryJv[space].reserve(m), space: space) }
    }

    /// (JΔ)ᵀ(Jδ)-type products: vᵀGw = 1/N Σ (J_n v)(J_n w) + 1/M Σ (J_m v)(J_m w), given
    /// stored J v (interior, boundary) and J w.
    static func ggnInner(_ jvInterior: UnsafePointer<Double>, _ jwInterior: UnsafePointer<Double>, _ n: Int,
                         _ jvBoundary: UnsafePointer<Double>, _ jwBoundary: UnsafePointer<Double>, _ m: Int) -> Double {
        var value = BLAS.dot(n, jvInterior, jwInterior) / Double(n)
        if m > 0 { value += BLAS.dot(m, jvBoundary, jwBoundary) / Double(m) }
        return value
    }

    /// J v on `batch`: the interior and condition residuals' directional derivatives.
    public func jacobianVectorProduct(_ batch: Batch, _ v: [Double]) throws -> (interior: [Double], boundary: [Double]) {
        try requireDirection(v)
        try forward(batch)
        v.withUnsafeBufferPointer { jacobianVectorProducts($0.baseAddress!, batch: batch) }
        return (Array(UnsafeBufferPointer(start: interiorJv[0].pointer, count: batch.interiorCount)),
                Array(UnsafeBufferPointer(start: boundaryJv[0].pointer, count: batch.boundaryCount)))
    }

    /// G v = Jᵀ J v / N (interior) + Jᵀ J v / N_∂ (conditions) on `batch`.
    public func ggnVectorProduct(_ batch: Batch, _ v: [Double]) throws -> [Double] {
        try requireDirection(v)
        try forward(batch)
        keepJacobianAdjoints(batch)
        var out = [Double](repeating: 0, count: network.numParameters)
        v.withUnsafeBufferPointer { vp in
            out.withUnsafeMutableBufferPointer { ggnVectorProduct(vp.baseAddress!, batch: batch, into: $0.baseAddress!) }
        }
        return out
    }

    /// After `forward`: the backward passes with the unscaled Jacobian seeds ∂r_n/∂(u, ∇u, T), so
    /// that the passes hold the adjoints the Jacobian products from adjoints read.
    func keepJacobianAdjoints(_ batch: Batch) {
        interiorPass.backward(seeds: interiorSeeds.pointer)
        if batch.boundaryCount > 0 { boundaryPass.backward(seeds: boundarySeeds.pointer) }
    }

    /// out = G v from the kept Jacobian adjoints (after `keepJacobianAdjoints` or
    /// `gradientKeepingJacobianAdjoints`): J v (`jacobianVectorProductsFromAdjoints`), then
    /// Jᵀ(J v)/N as a gradient with the per-sample weights (J_n v)/N. Two GEMMs per layer; the
    /// adjoints stay, so any number of products can follow one backward pass.
    func ggnVectorProduct(_ v: UnsafePointer<Double>, batch: Batch, into out: UnsafeMutablePointer<Double>) {
        jacobianVectorProductsFromAdjoints(v, batch: batch)
        out.update(repeating: 0, count: network.numParameters)
        let n = batch.interiorCount, m = batch.boundaryCount
        let w = scaledSeeds.reserve(max(n, m)), jv = interiorJv[0].pointer
        for k in 0..<n { w[k] = jv[k] / Double(n) }
        interiorPass.accumulateGradient(into: out, weights: w)
        if m > 0 {
            let jb = boundaryJv[0].pointer
            for k in 0..<m { w[k] = jb[k] / Double(m) }
            boundaryPass.accumulateGradient(into: out, weights: w)
        }
    }

    private func requireDirection(_ v: [Double]) throws {
        guard v.count == network.numParameters else {
            throw KFPError.dimensionMismatch("direction has \(v.count) entries, the network has \(network.numParameters) parameters")
        }
        try requireFinite(v, "direction")
    }

    /// After `forward`: ∇L into `grad`, leaving in each pass the adjoints of the Jacobian seeds
    /// (∂r_n/∂·, unscaled) that the Kronecker factors need. The gradient weights each sample's
    /// contribution by r_n/N afterwards (the backward pass is linear in its seeds).
    func gradientKeepingJacobianAdjoints(_ batch: Batch, into grad: UnsafeMutablePointer<Double>) {
        grad.update(repeating: 0, count: network.numParameters)
        let n = batch.interiorCount, m = batch.boundaryCount
        let w = scaledSeeds.reserve(max(n, m)), r = interiorResiduals.pointer
        for k in 0..<n { w[k] = r[k] / Double(n) }
        interiorPass.backward(seeds: interiorSeeds.pointer)
        interiorPass.accumulateGradient(into: grad, weights: w)
        if m > 0 {
            let rb = boundaryResiduals.pointer
            for k in 0..<m { w[k] = rb[k] / Double(m) }
            boundaryPass.backward(seeds: boundarySeeds.pointer)
            boundaryPass.accumulateGradient(into: grad, weights: w)
        }
    }
}
