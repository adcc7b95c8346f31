import CKernels

/// KFAC*'s step (Martens & Grosse 2015 §7; docs/math.md §6): with the preconditioned direction Δ
/// and the previous update δ, minimise the damped quadratic model of the loss over span{Δ, δ},
///
///     M = [[ΔᵀGΔ + λ‖Δ‖², ΔᵀGδ + λΔᵀδ], [ΔᵀGδ + λΔᵀδ, δᵀGδ + λ‖δ‖²]],  b = [∇Lᵀ Δ, ∇Lᵀ δ],
///     (α, μ) = −M⁻¹ b,  δ ← αΔ + μδ,  θ ← θ + δ,
///
/// G the exact GGN through Jacobian-vector products; the first step uses the 1-D model (μ = 0).
///
/// With the adaptive damping rule (Martens & Grosse §6.5), the loss L⁺ after the step on the same
/// batch gives the reduction ratio ρ = (L⁺ − L) / (M(δ) − M(0)) of the undamped model,
/// M(δ) − M(0) = ½ bᵀ(α, μ) − ½ λ‖δ‖²;
/// λ ← ω λ if ρ < 1/4, λ ← λ / ω if ρ > 3/4 (ω = 3/2); a step with L⁺ ≥ L (or not finite) is not
/// taken and λ ← 10 λ; λ is kept in [`minDamping`, 10⁸]. λ starts from the step's λ (raised if the
/// factorisation was retried). ρ measured on the step's own batch is close to 1 whenever the batch
/// fits: with few points against D parameters (or a randomized operator's probes) λ then falls
/// step after step, and the floor `minDamping` bounds the update in the directions the batch
/// does not see.
extension KFAC {
    static let dampingFactor = 1.5
    static let maxDamping = 1e8

    func automaticStep(_ batch: Batch, _ stats: inout StepStatistics) throws {
        let D = loss.parameterCount
        let (alpha, mu, predicted) = try quadraticModelStep()
        guard alpha.isFinite, mu.isFinite else {
            throw KFPError.nonFinite("KFAC*: the quadratic model gave a non-finite step (α = \(alpha), μ = \(mu))")
        }
        // One sweep: candidate δ = αΔ + μδ_prev, θ₀ = θ, θ ← θ + δ, ‖δ‖² and a finiteness sum.
        let sums = try candidate.withUnsafeMutableBufferPointer { c in
            try theta0.withUnsafeMutableBufferPointer { t0 in
                try previousUpdate.withUnsafeBufferPointer { prev in
                    try direction.withUnsafeBufferPointer { dir in
                        try loss.withMutableParameters { theta in
                            withUnsafeTemporaryAllocation(of: Double.self, capacity: 2) { out in
                                kernels_apply_update(kernelISA, D, alpha, dir.baseAddress!, mu, prev.baseAddress!, theta,
                                                     t0.baseAddress!, c.baseAddress!, out.baseAddress!)
                                return (squares: out[0], finite: out[1])
                            }
                        }
                    }
                }
            }
        }
        if sums.finite != 0, let error = loss.parameters.withUnsafeBufferPointer({ nonFiniteUpdate($0.baseAddress!, D, "KFAC") }) {
            loss.assignParameters(theta0)
            throw error
        }
        if options.dampingRule == .adaptive {
            let after = (try? loss.forward(batch).total) ?? .infinity
            let change = predicted - 0.5 * stepDamping * sums.squares
            let rho = change < 0 ? (after - stats.loss) / change : -Double.infinity
            var lambda = stepDamping
            if !(after < stats.loss) {
                lambda *= 10
            } else if rho < 0.25 {
                lambda *= KFAC.dampingFactor
            } else if rho > 0.75 {
                lambda /= KFAC.dampingFactor
            }
            options.damping = min(max(lambda, options.minDamping), KFAC.maxDamping)
            guard after < stats.loss else {
                loss.assignParameters(theta0)
                return
            }
        }
        swap(&previousUpdate, &candidate)
        hasPreviousUpdate = true
        stats.stepSize = alpha
        stats.momentum = mu
        stats.updateNorm = sums.squares.squareRoot()
        stats.accepted = true
    }

    /// (α, μ) of the damped quadratic model at the current forward pass and the Jacobian adjoints
    /// of `gradientKeepingJacobianAdjoints`,
    /// and the model's change M(δ) − M(0) = ½ bᵀ(α, μ) at the step.
    func quadraticModelStep() throws -> (alpha: Double, mu: Double, predicted: Double) {
        let c = try quadraticModelCoefficients()
        if hasPreviousUpdate {
            let det = c.m11 * c.m22 - c.m12 * c.m12
            if det > 0, det.isFinite {
                let alpha = -(c.m22 * c.b1 - c.m12 * c.b2) / det
                let mu = -(-c.m12 * c.b1 + c.m11 * c.b2) / det
                return (alpha, mu, 0.5 * (c.b1 * alpha + c.b2 * mu))
            }
        }
        // A zero direction (zero gradient) gives a zero model: no step.
        let alpha = c.m11 > 0 ? -c.b1 / c.m11 : 0
        return (alpha, 0, 0.5 * c.b1 * alpha)
    }

    /// Entries of the damped 2-D quadratic model, from J Δ and J δ (from the Jacobian adjoints the
    /// step's gradient pass kept; with two library threads both at once, one per thread).
    func quadraticModelCoefficients() throws -> (m11: Double, m12: Double, m22: Double, b1: Double, b2: Double) {
        let D = loss.parameterCount, lambda = stepDamping
        return try direction.withUnsafeBufferPointer { dirp in
            try gradient.withUnsafeBufferPointer { gp in
                try previousUpdate.withUnsafeBufferPointer { pp in
                    let dir = dirp.baseAddress!, g = gp.baseAddress!, prev = pp.baseAddress!
                    struct Directions: @unchecked Sendable {
                        let loss: PINNLoss, dir: UnsafePointer<Double>, prev: UnsafePointer<Double>
                    }
                    let directions = Directions(loss: loss, dir: dir, prev: prev)
                    let count = hasPreviousUpdate ? 2 : 1, concurrent = count == 2 && BLAS.numThreads >= 2
                    // ΔᵀGΔ, ΔᵀGδ, δᵀGδ: sums over points (and over the processes of a data-parallel run).
                    let ggn = try loss.group.sum(count: 3) {
                        if concurrent { loss.setRunsConcurrently(true) }
                        defer { if concurrent { loss.setRunsConcurrently(false) } }
                        try WorkerPool.shared.parallelFor(count, threads: concurrent ? 2 : 1) { k in
                            try directions.loss.jacobianVectorProductsFromAdjoints(k == 0 ? directions.dir : directions.prev, space: k)
                        }
                        return hasPreviousUpdate ? [loss.ggnInner(0, 0), loss.ggnInner(0, 1), loss.ggnInner(1, 1)]
                            : [loss.ggnInner(0, 0), 0, 0]
                    }
                    // ΔᵀΔ, ∇ᵀΔ, Δᵀδ, δᵀδ, ∇ᵀδ in one sweep.
                    let dots = withUnsafeTemporaryAllocation(of: Double.self, capacity: 5) { out in
                        kernels_model_products(kernelISA, D, g, dir, prev, out.baseAddress!)
                        return (dd: out[0], gd: out[1], dp: out[2], pp: out[3], gp: out[4])
                    }
                    let m11 = ggn[0] + lambda * dots.dd
                    guard hasPreviousUpdate else { return (m11, 0, 0, dots.gd, 0) }
                    let m12 = ggn[1] + lambda * dots.dp
                    let m22 = ggn[2] + lambda * dots.pp
                    return (m11, m12, m22, dots.gd, dots.gp)
                }
            }
        }
    }
}
