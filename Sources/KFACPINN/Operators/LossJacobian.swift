/// Jacobian products of the loss's residuals: J_t = ∂r_t/∂(θ, κ̂) per term (for a nonlinear
/// residual, its linearisation), and the Gauss–Newton matrix G = Σ_t w_t/N_t J_tᵀJ_t
/// (docs/math.md §1, §9, §10). Vectors have P = D + p entries; the κ̂ columns of J are the
/// stored ∂r_n/∂κ̂ (`TermEvaluation.coefficientRows`).
extension PINNLoss {
    /// After `forward`: J_t v of every term's residuals (N_t values, in the term's `jv[space]`) by
    /// forward tangent passes in tangent space `space` (calls with spaces 0 and 1 may run at once).
    /// A term with a directional pass (Neumann, Robin) takes its products from the adjoints of a
    /// backward pass with its Jacobian seeds instead.
    func jacobianVectorProducts(_ v: UnsafePointer<Double>, space: Int = 0) throws {
        for ev in terms where ev.count > 0 {
            if ev.pass.isDirectional {
                try ev.pass.backward(seeds: ev.seeds.pointer)
                try ev.pass.jacobianVectorProductsFromAdjoints(v, into: try ev.jv[space].reserve(ev.count), space: space)
                continue
            }
            defer { addCoefficientProducts(ev, v, into: ev.jv[space].pointer) }
            let n = ev.count, s = ev.pass.columnsPerSample
            let t = try ev.pass.tangent(v, space: space), seeds = ev.seeds.pointer, jv = try ev.jv[space].reserve(n)
            for k in 0..<n {
                // J_n v = Σ_c ∂r_n/∂(out_c) · (out_c)˙
                var sum = 0.0
                for c in 0..<s { sum += seeds[c * n + k] * t[c * n + k] }
                jv[k] = sum
            }
        }
    }

    /// `jacobianVectorProducts` from the adjoints that `keepJacobianAdjoints` or
    /// `gradientKeepingJacobianAdjoints` left in the passes (no other pass in between): one GEMM
    /// per layer instead of a tangent pass (`TaylorPass.jacobianVectorProductsFromAdjoints`).
    func jacobianVectorProductsFromAdjoints(_ v: UnsafePointer<Double>, space: Int = 0) throws {
        for ev in terms where ev.count > 0 {
            let jv = try ev.jv[space].reserve(ev.count)
            try ev.pass.jacobianVectorProductsFromAdjoints(v, into: jv, space: space)
            addCoefficientProducts(ev, v, into: jv)
        }
    }

    /// vᵀGw = Σ_t w_t/N_t Σ_n (J_n v)(J_n w) over this process's points, from the stored products
    /// of tangent spaces `a` (v) and `b` (w).
    func ggnInner(_ a: Int, _ b: Int) -> Double {
        var value = 0.0
        for ev in terms where ev.count > 0 {
            value += ev.weight * BLAS.dot(ev.count, ev.jv[a].pointer, ev.jv[b].pointer) / ev.total
        }
        return value
    }

    /// The stored J v of tangent space `space`: the interior terms' products and the condition
    /// terms' products, each in term order.
    func storedJacobianVectorProducts(space: Int = 0) -> (interior: [Double], boundary: [Double]) {
        var interior: [Double] = [], boundary: [Double] = []
        for ev in terms where ev.count > 0 {
            let values = UnsafeBufferPointer(start: ev.jv[space].pointer, count: ev.count)
            if ev.kind.isInterior { interior += values } else { boundary += values }
        }
        return (interior, boundary)
    }

    /// J v on `batch`: the interior and condition residuals' directional derivatives.
    public func jacobianVectorProduct(_ batch: Batch, _ v: [Double]) throws -> (interior: [Double], boundary: [Double]) {
        try requireDirection(v)
        try forward(batch)
        try v.withUnsafeBufferPointer { try jacobianVectorProducts($0.baseAddress!) }
        return storedJacobianVectorProducts()
    }

    /// G v = Σ_t w_t/N_t J_tᵀ J_t v on `batch`.
    public func ggnVectorProduct(_ batch: Batch, _ v: [Double]) throws -> [Double] {
        try requireDirection(v)
        try forward(batch)
        try keepJacobianAdjoints()
        var out = [Double](repeating: 0, count: parameterCount)
        try v.withUnsafeBufferPointer { vp in
            try out.withUnsafeMutableBufferPointer { try ggnVectorProduct(vp.baseAddress!, into: $0.baseAddress!) }
        }
        return out
    }

    /// out = G v from the kept Jacobian adjoints (after `keepJacobianAdjoints` or
    /// `gradientKeepingJacobianAdjoints`): J v (`jacobianVectorProductsFromAdjoints`), then
    /// J_tᵀ(J_t v) w_t/N_t as a gradient with the per-sample weights w_t (J_n v)/N_t. Two GEMMs per
    /// layer; the adjoints stay, so any number of products can follow one backward pass.
    func ggnVectorProduct(_ v: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) throws {
        try group.sum(out, count: parameterCount) {
            try jacobianVectorProductsFromAdjoints(v)
            out.update(repeating: 0, count: parameterCount)
            for ev in terms where ev.count > 0 {
                let n = ev.count, w = try scaledSeeds.reserve(n), jv = ev.jv[0].pointer
                for k in 0..<n { w[k] = ev.weight * jv[k] / ev.total }
                try ev.pass.accumulateGradient(into: out, weights: w)
                accumulateCoefficientTranspose(ev, jv, into: out)
            }
        }
    }

    private func requireDirection(_ v: [Double]) throws {
        guard v.count == parameterCount else {
            throw KFPError.dimensionMismatch("direction has \(v.count) entries, the loss has \(parameterCount) parameters (\(network.numParameters) of the network, \(coefficientCount) coefficients)")
        }
        try requireFinite(v, "direction")
    }

    /// Residuals of all terms of the last `forward` (Σ_t N_t rows).
    var residualCount: Int { terms.reduce(0) { $0 + $1.count } }

    /// After `forward`: the scaled Jacobian J̃ (Σ_t N_t × P, row-major; term t's rows scaled by
    /// √(w_t/N_t), terms in order) and the scaled residuals r̃, so that G = J̃ᵀJ̃, ∇L = J̃ᵀr̃ and
    /// L = ½‖r̃‖². Runs the backward passes with the unscaled seeds. In a data-parallel run, this
    /// process's rows (N_t still counts all processes' points).
    func scaledJacobian(rows: UnsafeMutablePointer<Double>, residuals: UnsafeMutablePointer<Double>) throws {
        let P = parameterCount
        var offset = 0
        for ev in terms where ev.count > 0 {
            let n = ev.count, scale = ev.weight.squareRoot() / ev.total.squareRoot()
            try ev.pass.backward(seeds: ev.seeds.pointer)
            try ev.pass.jacobianRows(into: rows + offset * P, ld: P, scale: scale)
            writeCoefficientColumns(ev, into: rows + offset * P, ld: P, scale: scale)
            for k in 0..<n { residuals[offset + k] = scale * ev.residuals.pointer[k] }
            offset += n
        }
    }

    /// Columns D..<P of a term's rows (ld apart): scale · ∂r_n/∂κ̂ for an interior term, else 0.
    private func writeCoefficientColumns(_ ev: TermEvaluation, into rows: UnsafeMutablePointer<Double>, ld: Int, scale: Double) {
        let D = network.numParameters, n = ev.count
        for k in 0..<coefficientCount {
            let source = ev.coefficientRows.pointer + k * n, interior = ev.kind.isInterior
            for i in 0..<n { rows[i * ld + D + k] = interior ? scale * source[i] : 0 }
        }
    }

    /// The dense Jacobians of the interior and condition residuals, ∂r_n/∂(θ, κ̂) (N_Ω × P) and
    /// ∂r_m/∂(θ, κ̂) (N_∂ × P), row-major, terms in order, on `batch`.
    public func jacobians(_ batch: Batch) throws -> (interior: [Double], boundary: [Double]) {
        try forward(batch)
        let D = parameterCount, what = "the Jacobian of \(residualCount) residuals and \(D) parameters"
        try Memory.require(doubles: Memory.product(2, residualCount, D, what: what), what)
        var interior: [Double] = [], boundary: [Double] = []
        for ev in terms where ev.count > 0 {
            var rows = [Double](repeating: 0, count: ev.count * D)
            try ev.pass.backward(seeds: ev.seeds.pointer)
            try rows.withUnsafeMutableBufferPointer {
                try ev.pass.jacobianRows(into: $0.baseAddress!, ld: D, scale: 1)
                writeCoefficientColumns(ev, into: $0.baseAddress!, ld: D, scale: 1)
            }
            if ev.kind.isInterior { interior += rows } else { boundary += rows }
        }
        return (interior, boundary)
    }
}
