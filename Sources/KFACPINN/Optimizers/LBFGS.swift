/// L-BFGS (Nocedal & Wright, Alg. 7.4–7.5) with a strong-Wolfe line search (Alg. 3.5–3.6,
/// cubic interpolation), one iteration per step.
///
/// Direction p = −H∇L by the two-loop recursion over the last m pairs (s, y) with
/// H₀ = (sᵀy / yᵀy) I. A pair is stored only when sᵀy > 10⁻¹⁰ ‖s‖‖y‖ (so H stays positive
/// definite); a direction that is not a descent direction resets the history to steepest
/// descent. The line search starts at lr (on the first step of a history at
/// lr · min(1, 1/‖∇L‖₁)) with c₁ = 10⁻⁴, c₂ = 0.9; non-finite trial losses count as too
/// large. If no trial lowers the loss the parameters do not move and the history is cleared.
/// The gradient at the accepted point is reused by the next step on the same batch.
public final class LBFGS: Optimizer, OptionTable, GuardedOptimizer {
    static let displayName = "L-BFGS"
    static let defaultOptions = Options()

    public struct Options: Sendable, Equatable {
        /// Initial trial step of the line search, > 0.
        public var learningRate = 1.0
        /// Pairs kept, m ≥ 1.
        public var history = 10
        /// Loss-and-gradient evaluations per line search, ≥ 1.
        public var maxEvaluations = 25

        public init() {}

        func validate() throws {
            try requireLearningRate(learningRate)
            guard history >= 1 else { throw KFPError.invalidArgument("history must be at least 1, got \(history)") }
            guard maxEvaluations >= 1 else { throw KFPError.invalidArgument("max_evaluations must be at least 1, got \(maxEvaluations)") }
        }
    }

    static let c1 = 1e-4, c2 = 0.9

    public let network: MLP
    public let loss: PINNLoss
    let divergence = DivergenceGuard()
    public private(set) var options: Options
    public private(set) var stepCount = 0
    /// Stored pairs, oldest first.
    private(set) var pairs: [(s: [Double], y: [Double])] = []
    private var gradient: [Double], direction: [Double], theta0: [Double], trialGradient: [Double], bestGradient: [Double]
    /// Loss and gradient at the current parameters on `cachedBatch` (valid while θ is unchanged).
    private var cached: (batch: Batch, theta: [Double], value: PINNLoss.Value)?

    public init(network: MLP, operator op: Operator, options: Options = Options()) throws {
        try options.validate()
        self.network = network
        loss = try PINNLoss(network: network, operator: op)
        self.options = options
        gradient = [Double](repeating: 0, count: loss.parameterCount)
        (direction, theta0, trialGradient, bestGradient) = (gradient, gradient, gradient, gradient)
    }

    static var optionFields: [OptimizerOption: OptionField<Options>] {
        [.learningRate: .double(\.learningRate), .history: .int(\.history), .maxEvaluations: .int(\.maxEvaluations)]
    }

    /// Replaces all options at once (validated; nothing changes on failure). A shorter
    /// history drops the oldest pairs.
    public func setOptions(_ new: Options) throws {
        try new.validate()
        if new.history < pairs.count { pairs.removeFirst(pairs.count - new.history) }
        options = new
    }

    /// p = −H g by the two-loop recursion over `pairs` (H₀ = γI, γ = sᵀy/yᵀy of the newest pair, else 1).
    static func twoLoop(_ g: [Double], pairs: [(s: [Double], y: [Double])]) -> [Double] {
        let D = g.count
        var q = g, alphas = [Double](repeating: 0, count: pairs.count)
        for k in stride(from: pairs.count - 1, through: 0, by: -1) {
            let (s, y) = pairs[k]
            let rho = 1 / dot(s, y)
            alphas[k] = rho * dot(s, q)
            for i in 0..<D { q[i] -= alphas[k] * y[i] }
        }
        if let (s, y) = pairs.last {
            let gamma = dot(s, y) / dot(y, y)
            for i in 0..<D { q[i] *= gamma }
        }
        for k in 0..<pairs.count {
            let (s, y) = pairs[k]
            let beta = dot(y, q) / dot(s, y)
            for i in 0..<D { q[i] += (alphas[k] - beta) * s[i] }
        }
        for i in 0..<D { q[i] = -q[i] }
        return q
    }

    private static func dot(_ a: [Double], _ b: [Double]) -> Double {
        a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { BLAS.dot(a.count, x.baseAddress!, $0.baseAddress!) } }
    }

    func unguardedStep(_ batch: Batch) throws -> StepStatistics {
        let D = loss.parameterCount
        let value: PINNLoss.Value
        // The last line search's gradient at θ on this batch, if it has one (on every process of
        // a data-parallel run, each with its own points).
        let hit = try loss.group.sum(count: 1) {
            guard let c = cached, c.batch == batch, c.theta == loss.parameters else { return [1] }
            return [0]
        }[0] == 0
        if hit, let c = cached {
            value = c.value
        } else {
            value = try gradient.withUnsafeMutableBufferPointer { try loss.lossAndGradient(batch, into: $0.baseAddress!) }
        }
        if pairs.count < options.history {   // room for one more (s, y) pair
            try Memory.require(doubles: Memory.product(2, D, what: "an L-BFGS pair"), "an L-BFGS pair of \(D) parameters")
        }
        var history = pairs
        direction = LBFGS.twoLoop(gradient, pairs: history)
        var slope = LBFGS.dot(gradient, direction)
        if !(slope < 0) {
            history = []
            direction = gradient.map { -$0 }
            slope = LBFGS.dot(gradient, direction)
        }
        guard slope < 0 else {
            // ∇L = 0: a stationary point; nothing to do.
            return StepStatistics(loss: value.total, lossInterior: value.interior, lossBoundary: value.boundary,
                                  stepSize: 0, momentum: 0, updateNorm: 0, accepted: false)
        }
        try direction.withUnsafeBufferPointer { try requireFiniteUpdate($0.baseAddress!, D, "L-BFGS") }
        theta0 = loss.parameters
        var initial = options.learningRate
        if history.isEmpty {
            let l1 = gradient.reduce(0) { $0 + abs($1) }
            initial *= min(1, 1 / l1)
        }
        let found = strongWolfe(batch, f0: value.total, slope0: slope, initial: initial)
        var stats = StepStatistics(loss: value.total, lossInterior: value.interior, lossBoundary: value.boundary,
                                   stepSize: 0, momentum: 0, updateNorm: 0, accepted: false)
        guard let (t, newValue) = found else {
            loss.assignParameters(theta0)
            pairs = []
            cached = nil
            stepCount += 1
            return stats
        }
        theta0.withUnsafeBufferPointer { th in
            direction.withUnsafeBufferPointer { loss.setParameters(th.baseAddress!, plus: t, times: $0.baseAddress!) }
        }
        // New pair s = t p, y = ∇L(θ + t p) − ∇L(θ), kept if sᵀy > 10⁻¹⁰ ‖s‖‖y‖.
        let s = direction.map { t * $0 }
        var y = bestGradient
        for i in 0..<D { y[i] -= gradient[i] }
        let sy = LBFGS.dot(s, y), ss = LBFGS.dot(s, s), yy = LBFGS.dot(y, y)
        if sy > 1e-10 * (ss * yy).squareRoot() {
            history.append((s, y))
            if history.count > options.history { history.removeFirst() }
        }
        pairs = history
        swap(&gradient, &bestGradient)
        cached = (batch, loss.parameters, newValue)
        stepCount += 1
        stats.stepSize = t
        stats.updateNorm = ss.squareRoot()
        stats.accepted = true
        return stats
    }

    /// φ(t) = L(θ₀ + t p) and φ'(t) = ∇L(θ₀ + t p)ᵀp; the gradient lands in `trialGradient`.
    private func evaluate(_ batch: Batch, _ t: Double) -> (value: PINNLoss.Value, slope: Double)? {
        theta0.withUnsafeBufferPointer { th in
            direction.withUnsafeBufferPointer { loss.setParameters(th.baseAddress!, plus: t, times: $0.baseAddress!) }
        }
        guard let v = try? trialGradient.withUnsafeMutableBufferPointer({ try loss.lossAndGradient(batch, into: $0.baseAddress!) })
        else { return nil }
        return (v, LBFGS.dot(trialGradient, direction))
    }

    /// Strong-Wolfe line search: a step t with φ(t) ≤ φ(0) + c₁tφ'(0) and |φ'(t)| ≤ c₂|φ'(0)|,
    /// or, when the evaluations run out, the lowest trial below φ(0). Its gradient is left in
    /// `bestGradient`. nil if no trial lowered the loss.
    private func strongWolfe(_ batch: Batch, f0: Double, slope0: Double, initial: Double) -> (Double, PINNLoss.Value)? {
        var evaluations = 0
        var best: (t: Double, value: PINNLoss.Value)?
        // Evaluates φ at t, tracking the lowest trial (and its gradient).
        func trial(_ t: Double) -> (f: Double, slope: Double) {
            evaluations += 1
            guard let (v, slope) = evaluate(batch, t), v.total.isFinite, slope.isFinite else { return (.infinity, .nan) }
            if v.total < (best?.value.total ?? f0) {
                best = (t, v)
                swap(&bestGradient, &trialGradient)
            }
            return (v.total, slope)
        }
        func armijo(_ t: Double, _ f: Double) -> Bool { f <= f0 + LBFGS.c1 * t * slope0 }
        func curvature(_ slope: Double) -> Bool { abs(slope) <= -LBFGS.c2 * slope0 }
        // Zoom on a bracket [lo, hi] (lo satisfies Armijo and has the lower value).
        func zoom(_ lo0: (t: Double, f: Double, slope: Double), _ hi0: (t: Double, f: Double, slope: Double)) {
            var lo = lo0, hi = hi0
            while evaluations < options.maxEvaluations {
                let t = LBFGS.interpolate(lo, hi)
                let (f, slope) = trial(t)
                if !armijo(t, f) || f >= lo.f {
                    hi = (t, f, slope)
                } else {
                    if curvature(slope) { return }
                    if slope * (hi.t - lo.t) >= 0 { hi = lo }
                    lo = (t, f, slope)
                }
                if abs(hi.t - lo.t) * max(abs(lo.slope), abs(slope0)) < 1e-16 * max(1, abs(f0)) { return }
            }
        }
        var previous = (t: 0.0, f: f0, slope: slope0), t = initial
        while evaluations < options.maxEvaluations {
            let (f, slope) = trial(t)
            let current = (t: t, f: f, slope: slope)
            if !armijo(t, f) || (evaluations > 1 && f >= previous.f) {
                zoom(previous, current)
                break
            }
            if curvature(slope) { break }
            if slope >= 0 {
                zoom(current, previous)
                break
            }
            // Extrapolate: a cubic step clamped to [1.1 t, 10 t].
            let next = min(max(LBFGS.cubicMinimizer(previous, current) ?? 2 * t, 1.1 * t), 10 * t)
            previous = current
            t = next
        }
        guard let b = best else { return nil }
        // The lowest trial is the accepted one; its gradient is in `bestGradient`.
        return (b.t, b.value)
    }

    /// Minimiser of the cubic through (t₁, f₁, f₁') and (t₂, f₂, f₂'), if it exists.
    static func cubicMinimizer(_ a: (t: Double, f: Double, slope: Double), _ b: (t: Double, f: Double, slope: Double)) -> Double? {
        guard a.f.isFinite, b.f.isFinite, a.slope.isFinite, b.slope.isFinite, a.t != b.t else { return nil }
        let d1 = a.slope + b.slope - 3 * (a.f - b.f) / (a.t - b.t)
        let disc = d1 * d1 - a.slope * b.slope
        guard disc >= 0 else { return nil }
        let d2 = (b.t > a.t ? 1.0 : -1.0) * disc.squareRoot()
        let t = b.t - (b.t - a.t) * (b.slope + d2 - d1) / (b.slope - a.slope + 2 * d2)
        return t.isFinite ? t : nil
    }

    /// A trial point inside the bracket: the cubic minimiser kept at least 10% of the bracket
    /// away from its ends, else the midpoint.
    static func interpolate(_ lo: (t: Double, f: Double, slope: Double), _ hi: (t: Double, f: Double, slope: Double)) -> Double {
        let a = min(lo.t, hi.t), b = max(lo.t, hi.t), margin = 0.1 * (b - a)
        if let t = cubicMinimizer(lo, hi), t >= a + margin, t <= b - margin { return t }
        return 0.5 * (a + b)
    }
}

extension LBFGS {
    /// Steps taken and the stored (s, y) pairs, oldest first. The cached loss and gradient are
    /// not state: recomputing them gives the same values.
    func writeState(_ s: inout SectionWriter) throws {
        s.int(stepCount)
        s.int(pairs.count)
        for (sk, yk) in pairs {
            try s.doubles(sk)
            try s.doubles(yk)
        }
    }

    func readState(_ s: inout SectionReader) throws {
        let D = loss.parameterCount
        let steps = try s.int(in: 0...SectionReader.maxCount, "the step count")
        let count = try s.int(in: 0...options.history, "the number of (s, y) pairs")
        var read: [(s: [Double], y: [Double])] = []
        for k in 0..<count {
            let sk = try s.doubles(count: D, "s of pair \(k)"), yk = try s.doubles(count: D, "y of pair \(k)")
            read.append((sk, yk))
        }
        try s.finish()
        (stepCount, pairs, cached) = (steps, read, nil)
    }
}
