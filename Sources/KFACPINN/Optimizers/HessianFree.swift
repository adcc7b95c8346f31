/// Hessian-free optimisation (Martens 2010) with the Gauss–Newton matrix, docs/math.md §7.
///
/// Each step runs conjugate gradients on (G + λI) x = −∇L with GGN-vector products (no matrix:
/// from the Jacobian adjoints of the step's one backward pass, two GEMMs per layer),
/// warm-started from 0.95 times the previous run's last iterate and stopped by Martens'
/// relative-progress rule on the quadratic
/// φ(x) = ½xᵀ(G + λI)x + ∇Lᵀx (at iteration i with k = max(10, i/10): stop when φ_i < 0 and
/// (φ_i − φ_{i−k})/φ_i < k·5·10⁻⁴), or at the iteration cap. CG backtracking then evaluates the
/// loss at the iterates kept at i = 1, 2, 3, 4, 6, 8, … (×1.3) and the last, from the last back
/// while the loss keeps falling. λ follows Levenberg–Marquardt with ρ = (L(θ + x) − L(θ)) /
/// (∇Lᵀx + ½xᵀGx): ρ < ¼ → λ ← 3λ/2, ρ > ¾ → λ ← 2λ/3. The step is θ ← θ + αx with α from an
/// Armijo backtracking line search (α = 1, 0.8, 0.8², …; L(θ + αx) ≤ L(θ) + 10⁻² α ∇Lᵀx).
public final class HessianFree: Optimizer, OptionTable, GuardedOptimizer {
    static let displayName = "Hessian-free"
    static let defaultOptions = Options()

    public struct Options: Sendable, Equatable {
        /// λ > 0 at the next step (Levenberg–Marquardt changes it after every step).
        public var damping = 1.0
        /// CG iteration cap per step, ≥ 1.
        public var maxCGIterations = 300

        public init() {}

        func validate() throws {
            try requireDamping(damping)
            guard maxCGIterations >= 1 else { throw KFPError.invalidArgument("max_cg_iterations must be at least 1, got \(maxCGIterations)") }
        }
    }

    static let warmStartDecay = 0.95, progressTolerance = 5e-4, armijo = 1e-2, armijoShrink = 0.8
    static let armijoTrials = 60

    public let network: MLP
    public let loss: PINNLoss
    let divergence = DivergenceGuard()
    /// Current options; `damping` is the adapted λ.
    public private(set) var options: Options
    public private(set) var stepCount = 0
    /// CG iterations of the last step.
    public private(set) var lastIterations = 0
    private var gradient: [Double], x: [Double], r: [Double], p: [Double], ap: [Double], theta0: [Double]
    /// The previous run's last CG iterate (warm start).
    private(set) var previous: [Double]
    private var hasPrevious = false
    /// Iterates kept for backtracking.
    private var kept: [Buffer] = []

    public init(network: MLP, operator op: Operator, options: Options = Options()) throws {
        try options.validate()
        self.network = network
        loss = try PINNLoss(network: network, operator: op)
        self.options = options
        gradient = [Double](repeating: 0, count: loss.parameterCount)
        (x, r, p, ap, theta0, previous) = (gradient, gradient, gradient, gradient, gradient, gradient)
    }

    static var optionFields: [OptimizerOption: OptionField<Options>] {
        [.damping: .double(\.damping), .maxCGIterations: .int(\.maxCGIterations)]
    }

    /// Replaces all options at once (validated; nothing changes on failure).
    public func setOptions(_ new: Options) throws {
        try new.validate()
        options = new
    }

    func unguardedStep(_ batch: Batch) throws -> StepStatistics {
        // The gradient, keeping the Jacobian adjoints that every CG product reads.
        let value = try loss.forward(batch)
        let D = loss.parameterCount
        try gradient.withUnsafeMutableBufferPointer { g in
            try loss.gradientKeepingJacobianAdjoints(into: g.baseAddress!)
            if let i = firstNonFinite(g.baseAddress!, D) {
                throw KFPError.nonFinite("Hessian-free: the gradient has a non-finite entry at index \(i)")
            }
        }
        theta0 = loss.parameters
        // CG on (G + λI) x = −∇L; a failure or a non-finite iterate is retried with λ raised tenfold.
        var keptCount = 0, keptPhi: [Double] = []
        let lambda = try withDampingRetries(options.damping) { lambda, _ in
            (keptCount, keptPhi) = try conjugateGradients(batch, lambda: lambda)
            if let i = firstNonFinite(kept[keptCount - 1].pointer, D) {
                throw KFPError.nonFinite("Hessian-free: the CG iterate has a non-finite entry at index \(i)")
            }
        }
        // Backtracking over the kept iterates, from the last while the loss falls.
        func trialLoss(_ v: UnsafePointer<Double>, _ alpha: Double) -> Double {
            theta0.withUnsafeBufferPointer { loss.setParameters($0.baseAddress!, plus: alpha, times: v) }
            return (try? loss.forward(batch).total) ?? .infinity
        }
        var chosen = keptCount - 1
        var chosenLoss = trialLoss(kept[chosen].pointer, 1)
        while chosen > 0 {
            let l = trialLoss(kept[chosen - 1].pointer, 1)
            guard l < chosenLoss else { break }
            chosen -= 1
            chosenLoss = l
        }
        let xc = kept[chosen].pointer
        let gx = gradient.withUnsafeBufferPointer { BLAS.dot(D, $0.baseAddress!, xc) }
        let xx = BLAS.dot(D, xc, xc)
        // Levenberg–Marquardt: ρ = actual / predicted reduction of the undamped model.
        let predicted = keptPhi[chosen] - 0.5 * lambda * xx
        let rho = predicted < 0 ? (chosenLoss - value.total) / predicted : -Double.infinity
        var newDamping = lambda
        if rho < 0.25 { newDamping = lambda * 1.5 } else if rho > 0.75 { newDamping = lambda * 2 / 3 }
        // Armijo backtracking on θ + αx.
        var alpha = 1.0, trial = chosenLoss, tries = 0
        while !(gx < 0 && trial <= value.total + HessianFree.armijo * alpha * gx) {
            tries += 1
            if tries > HessianFree.armijoTrials || gx >= 0 { alpha = 0; break }
            alpha *= HessianFree.armijoShrink
            trial = trialLoss(xc, alpha)
        }
        theta0.withUnsafeBufferPointer { loss.setParameters($0.baseAddress!, plus: alpha, times: xc) }
        try loss.parameters.withUnsafeBufferPointer { t in
            do { try requireFiniteUpdate(t.baseAddress!, D, "Hessian-free") } catch {
                loss.assignParameters(theta0)
                throw error
            }
        }
        guard newDamping.isFinite, newDamping > 0 else {
            loss.assignParameters(theta0)
            throw KFPError.nonFinite("Hessian-free: the adapted damping is \(newDamping); the step was rejected")
        }
        swap(&previous, &x)
        hasPrevious = true
        options.damping = newDamping
        stepCount += 1
        return StepStatistics(loss: value.total, lossInterior: value.interior, lossBoundary: value.boundary,
                              stepSize: alpha, momentum: 0, updateNorm: alpha * xx.squareRoot(), accepted: alpha > 0,
                              damping: lambda)
    }

    /// CG on (G + λI) x = b = −∇L at the current forward pass, from x₀ = 0.95 × the previous
    /// last iterate. Keeps iterates for backtracking in `kept`; returns how many and their φ.
    /// The last iterate stays in `x`. Throws if a curvature product is not finite.
    private func conjugateGradients(_ batch: Batch, lambda: Double) throws -> (Int, [Double]) {
        let D = loss.parameterCount
        var phis: [Double] = [], keptPhi: [Double] = [], keptCount = 0, nextKept = 1
        return try x.withUnsafeMutableBufferPointer { xb in
            try r.withUnsafeMutableBufferPointer { rb in
                try p.withUnsafeMutableBufferPointer { pb in
                    try ap.withUnsafeMutableBufferPointer { apb in
                        try gradient.withUnsafeBufferPointer { gb in
                            let x = xb.baseAddress!, r = rb.baseAddress!, p = pb.baseAddress!, ap = apb.baseAddress!
                            let g = gb.baseAddress!
                            // A v = G v + λ v.
                            func applyA(_ v: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>) throws {
                                try loss.ggnVectorProduct(v, into: out)
                                for i in 0..<D { out[i] += lambda * v[i] }
                                if let i = firstNonFinite(out, D) {
                                    throw KFPError.nonFinite("Hessian-free: a GGN-vector product has a non-finite entry at index \(i)")
                                }
                            }
                            // φ(x) = ½xᵀAx − bᵀx = −½ xᵀ(b + r) with r = b − Ax and b = −g.
                            func phi() -> Double {
                                var s = 0.0
                                for i in 0..<D { s += x[i] * (-g[i] + r[i]) }
                                return -0.5 * s
                            }
                            func keep() throws {
                                if kept.count <= keptCount { kept.append(Buffer()) }
                                try kept[keptCount].reserve(D).update(from: x, count: D)
                                keptPhi.append(phi())
                                keptCount += 1
                            }
                            if hasPrevious {
                                previous.withUnsafeBufferPointer { prev in
                                    for i in 0..<D { x[i] = HessianFree.warmStartDecay * prev[i] }
                                }
                                try applyA(x, ap)
                                for i in 0..<D { r[i] = -g[i] - ap[i] }
                            } else {
                                for i in 0..<D { x[i] = 0; r[i] = -g[i] }
                            }
                            p.update(from: r, count: D)
                            var rr = BLAS.dot(D, r, r), iterations = 0, lastKept = -1
                            while iterations < options.maxCGIterations && rr > 0 {
                                try applyA(p, ap)
                                let pAp = BLAS.dot(D, p, ap)
                                guard pAp > 0 else { break }
                                let a = rr / pAp
                                for i in 0..<D { x[i] += a * p[i]; r[i] -= a * ap[i] }
                                let rrNew = BLAS.dot(D, r, r), b = rrNew / rr
                                for i in 0..<D { p[i] = r[i] + b * p[i] }
                                rr = rrNew
                                iterations += 1
                                let current = phi()
                                phis.append(current)
                                if iterations == nextKept {
                                    try keep()
                                    lastKept = iterations
                                    nextKept = max(nextKept + 1, Int((1.3 * Double(nextKept)).rounded(.up)))
                                }
                                let k = max(10, iterations / 10)
                                if iterations > k, current < 0,
                                   (current - phis[iterations - 1 - k]) / current < Double(k) * HessianFree.progressTolerance {
                                    break
                                }
                            }
                            if lastKept != iterations { try keep() }
                            lastIterations = iterations
                            return (keptCount, keptPhi)
                        }
                    }
                }
            }
        }
    }
}

extension HessianFree {
    /// Steps taken, the last step's CG iterations and the warm start (the adapted damping is
    /// the `damping` option).
    func writeState(_ s: inout SectionWriter) throws {
        s.int(stepCount)
        s.int(lastIterations)
        s.bool(hasPrevious)
        try s.doubles(previous)
    }

    func readState(_ s: inout SectionReader) throws {
        let steps = try s.int(in: 0...SectionReader.maxCount, "the step count")
        let iterations = try s.int(in: 0...SectionReader.maxCount, "the CG iterations")
        let has = try s.bool("the warm-start flag")
        let x0 = try s.doubles(count: loss.parameterCount, "the warm start")
        try s.finish()
        (stepCount, lastIterations, hasPrevious, previous) = (steps, iterations, has, x0)
    }
}
