/// A nonlinear term N(u, ∇u) of the residual, from a small catalogue.
public enum Nonlinearity: Sendable, Equatable {
    case none
    /// N = −Σ_{i ≥ first} (∂_i u)²: −‖∇_x̃ u‖² over the coordinates from `first` on
    /// (first = 1 skips the time coordinate of (t, x̃)).
    case negativeGradientNormSquared(first: Int)
}

/// A PDE operator as data. The interior residual at a point x is
///
///     r = κ 𝒟_C u + β(x)ᵀ∇u + c(x) u + N(u, ∇u) + κ₀ − s f(x),
///     β(x) = β₀ + B x,  c(x) = c₀ + c₁ᵀ x,
///
/// built from the Taylor-mode output triple (u, ∇u, 𝒟_{κC} u). Its derivatives
/// with respect to that triple seed the backward pass:
/// ∂r/∂T = 1, ∂r/∂(∂_i u) = β_i(x) + ∂N/∂(∂_i u), ∂r/∂u = c(x) + ∂N/∂u.
/// κ, c₀, the entries of β₀, κ₀ and s (1 unless trained) can be trained
/// (`setTrainable`, `TrainableCoefficients`).
public struct Operator: Sendable {
    public let name: String
    /// Input dimension d (for time-dependent problems, time is coordinate 0).
    public let dimension: Int
    /// C of the second-order term κ 𝒟_C u = κ Σ C_ij ∂_i∂_j u.
    public let secondOrder: SecondOrderCoefficients
    /// κ ≠ 0, the factor of the second-order term.
    public let secondOrderScale: Double
    /// β₀ (d).
    public let drift: [Double]
    /// B (d × d, row-major), or nil for a constant drift.
    public let driftJacobian: [Double]?
    /// c₀.
    public let reaction: Double
    /// c₁ (d), or nil for a constant reaction coefficient.
    public let reactionGradient: [Double]?
    /// κ₀, a constant added to the residual.
    public let constant: Double
    public let nonlinearity: Nonlinearity
    /// The coefficients marked trainable and their current values, shared by copies.
    public let trainable = TrainableCoefficients()
    /// C, and κ C (the Taylor pass's coefficients).
    let baseCoefficients: Coefficients, coefficients: Coefficients
    /// Exact (the forward Laplacian) or randomized (`randomized(probes:distribution:seed:)`).
    public internal(set) var estimator = SecondOrderEstimator.exact

    /// The general operator; validates every array against `dimension`.
    public init(name: String = "linear", dimension d: Int, secondOrder: SecondOrderCoefficients,
                secondOrderScale: Double = 1, drift: [Double]? = nil, driftJacobian: [Double]? = nil,
                reaction: Double = 0, reactionGradient: [Double]? = nil,
                constant: Double = 0, nonlinearity: Nonlinearity = .none) throws {
        guard d >= 1 else { throw KFPError.invalidArgument("operator dimension must be at least 1, got \(d)") }
        guard secondOrderScale.isFinite, secondOrderScale != 0 else {
            throw KFPError.invalidArgument("the factor of the second-order term must be finite and non-zero, got \(secondOrderScale)")
        }
        baseCoefficients = try secondOrder.resolved(dimension: d)
        coefficients = baseCoefficients.scaled(secondOrderScale)
        let beta = drift ?? [Double](repeating: 0, count: d)
        guard beta.count == d else {
            throw KFPError.dimensionMismatch("drift β has \(beta.count) entries, the dimension is \(d)")
        }
        try requireFinite(beta, "drift β")
        if let b = driftJacobian {
            guard b.count == d * d else {
                throw KFPError.dimensionMismatch("drift Jacobian has \(b.count) entries, expected \(d * d)")
            }
            try requireFinite(b, "drift Jacobian")
        }
        if let c1 = reactionGradient {
            guard c1.count == d else {
                throw KFPError.dimensionMismatch("reaction gradient has \(c1.count) entries, the dimension is \(d)")
            }
            try requireFinite(c1, "reaction gradient")
        }
        guard reaction.isFinite else { throw KFPError.nonFinite("reaction coefficient c is \(reaction)") }
        guard constant.isFinite else { throw KFPError.nonFinite("constant term is \(constant)") }
        if case .negativeGradientNormSquared(let first) = nonlinearity, !(0..<d).contains(first) {
            throw KFPError.invalidArgument("nonlinearity starts at coordinate \(first), outside 0..<\(d)")
        }
        self.name = name
        self.dimension = d
        self.secondOrder = secondOrder
        self.secondOrderScale = secondOrderScale
        self.drift = beta
        self.driftJacobian = driftJacobian
        self.reaction = reaction
        self.reactionGradient = reactionGradient
        self.constant = constant
        self.nonlinearity = nonlinearity
    }

    /// Whether the residual depends on ∇u (a drift, possibly trained, or the nonlinearity).
    var readsGradient: Bool {
        drift.contains { $0 != 0 } || driftJacobian != nil || nonlinearity != .none
            || trainable.entries.contains { if case .drift = $0.slot { return true } else { return false } }
    }

    /// Poisson −Δu = f: C = −I.
    public static func poisson(dimension d: Int) throws -> Operator {
        try Operator(name: "poisson", dimension: d,
                     secondOrder: .diagonal([Double](repeating: -1, count: max(d, 0))))
    }

    /// Heat ∂_t u − κ Δ_x̃ u = f on inputs (t, x̃), time first: κ times C = −diag(0, 1, …, 1), β = e_t.
    public static func heat(spaceDimension dx: Int, kappa: Double) throws -> Operator {
        guard dx >= 1 else { throw KFPError.invalidArgument("space dimension must be at least 1, got \(dx)") }
        guard kappa.isFinite, kappa > 0 else { throw KFPError.invalidArgument("kappa must be positive and finite, got \(kappa)") }
        let d = dx + 1
        var beta = [Double](repeating: 0, count: d)
        beta[0] = 1
        return try Operator(name: "heat", dimension: d,
                            secondOrder: .diagonal([0] + [Double](repeating: -1, count: dx)), secondOrderScale: kappa,
                            drift: beta)
    }

    /// Log Fokker–Planck for dX = −X/2 dt + √2 dW in d_x space dimensions, for q = log p(t, x̃):
    /// r = ∂_t q − d_x/2 − ½ x̃·∇_x̃ q − ‖∇_x̃ q‖² − Δ_x̃ q − f.
    public static func logFokkerPlanck(spaceDimension dx: Int) throws -> Operator {
        guard dx >= 1 else { throw KFPError.invalidArgument("space dimension must be at least 1, got \(dx)") }
        let d = dx + 1
        var beta = [Double](repeating: 0, count: d)
        beta[0] = 1
        var jac = [Double](repeating: 0, count: d * d)
        for i in 1..<d { jac[i * d + i] = -0.5 }
        return try Operator(name: "log_fokker_planck", dimension: d,
                            secondOrder: .diagonal([0] + [Double](repeating: -1, count: dx)),
                            drift: beta, driftJacobian: jac, constant: -Double(dx) / 2,
                            nonlinearity: .negativeGradientNormSquared(first: 1))
    }

    func requireCompatible(with net: MLP) throws {
        guard net.inputDimension == dimension else {
            throw KFPError.dimensionMismatch("the operator is \(dimension)-dimensional, the network expects \(net.inputDimension) inputs")
        }
    }

    /// Interior residuals r_n and their seeds ∂r_n/∂(output columns) (S·N values) from the
    /// output columns of a Taylor pass (`out`, S·N in column blocks) with the coefficients
    /// `values.pass`, points x and source f. The blocks are [u | ∂_1 u … ∂_d u | T] (S = d + 2)
    /// for g = `gradientColumns` = d (exact), and [u | g gradient columns | s probe columns | T̂]
    /// with g ∈ {0, 1, d} for the randomized estimator (g = 1: the derivative along β(x_n)).
    func residuals(output out: UnsafePointer<Double>, points x: UnsafePointer<Double>,
                   source f: UnsafePointer<Double>, count n: Int, columnsPerSample S: Int, gradientColumns g: Int,
                   values: ResolvedCoefficients,
                   residuals r: UnsafeMutablePointer<Double>, seeds: UnsafeMutablePointer<Double>) {
        let d = dimension
        var first = d
        if case .negativeGradientNormSquared(let k) = nonlinearity { first = k }
        // Column c of sample k is at c·N + k (the Taylor pass's blocks), for `out` and `seeds`.
        let tSeed = values.secondOrderSeed, sourceScale = values.sourceScale, tBlock = S - 1
        seeds.update(repeating: 0, count: S * n)
        for k in 0..<n {
            let xk = x + k * d
            var c = values.reaction
            if let c1 = reactionGradient { for i in 0..<d { c += c1[i] * xk[i] } }
            var value = tSeed * out[tBlock * n + k] + c * out[k] + values.constant - sourceScale * f[k]
            seeds[k] = c
            seeds[tBlock * n + k] = tSeed
            if g == 1 {
                // β(x_n)ᵀ∇u is the column along β(x_n) (a trained drift entry has g = d).
                value += out[n + k]
                seeds[n + k] = 1
            }
            guard g == d else {
                r[k] = value
                continue
            }
            for i in 0..<d {
                var beta = values.drift[i]
                if let b = driftJacobian { for j in 0..<d { beta += b[i * d + j] * xk[j] } }
                let gi = out[(1 + i) * n + k]
                if i >= first {
                    // N = −Σ (∂_i u)²: ∂N/∂(∂_i u) = −2 ∂_i u
                    value += beta * gi - gi * gi
                    seeds[(1 + i) * n + k] = beta - 2 * gi
                } else {
                    value += beta * gi
                    seeds[(1 + i) * n + k] = beta
                }
            }
            r[k] = value
        }
    }

    /// r_n = 𝓛u(x_n) − f(x_n) for `count` points (row-major count × d), with the exact
    /// second-order term whatever the estimator.
    public func residual(network: MLP, points x: [Double], count n: Int, source f: [Double]) throws -> [Double] {
        try requireCompatible(with: network)
        try network.validatePoints(x, count: n)
        guard f.count == n else { throw KFPError.dimensionMismatch("source f has \(f.count) values for \(n) points") }
        try requireFinite(f, "source f")
        let pass = TaylorPass(network: network)
        let values = coefficientValues()
        pass.outputGradientUsed = true
        try pass.forward(x, count: n, mode: .taylor(values.pass))
        var r = [Double](repeating: 0, count: n)
        let seeds = try Buffer(n * (dimension + 2))
        x.withUnsafeBufferPointer { xp in
            f.withUnsafeBufferPointer { fp in
                r.withUnsafeMutableBufferPointer { rp in
                    residuals(output: pass.output, points: xp.baseAddress!, source: fp.baseAddress!, count: n,
                              columnsPerSample: dimension + 2, gradientColumns: dimension,
                              values: values, residuals: rp.baseAddress!, seeds: seeds.pointer)
                }
            }
        }
        return r
    }
}

/// The operator in checkpoints (docs/checkpoint-format.md): every coefficient, so that an
/// optimizer's state is bound to the operator it was computed with.
extension Operator {
    /// (name, values) of each part, in a fixed order; absent optional parts are empty.
    private var parts: [(String, [Double])] {
        // κ C as given (κ as constructed: a trained κ does not change the description).
        let second: (String, [Double]), kappa = secondOrderScale
        switch secondOrder {
        case .laplacian: second = ("second-order coefficients (Laplacian)", kappa == 1 ? [] : [kappa])
        case .diagonal(let c): second = ("second-order coefficients (diagonal)", c.map { $0 * kappa })
        case .matrix(let c): second = ("second-order coefficients (matrix)", c.map { $0 * kappa })
        }
        let nonlinear: [Double]
        switch nonlinearity {
        case .none: nonlinear = []
        case .negativeGradientNormSquared(let first): nonlinear = [Double(first)]
        }
        var estimated: [(String, [Double])] = []
        if case .randomized(let e) = estimator {
            estimated = [("randomized estimator (\(e.distribution.rawValue))", [Double(e.probes), Double(bitPattern: e.seed)])]
        }
        return [("dimension", [Double(dimension)]), second, ("drift", drift), ("drift Jacobian", driftJacobian ?? []),
                ("reaction coefficient", [reaction]), ("reaction gradient", reactionGradient ?? []),
                ("constant term", [constant]), ("nonlinearity", nonlinear)]
            + estimated
            + trainable.entries.map { ("trainable coefficient \($0.name)\($0.positive ? " (positive)" : "")\($0.frozen ? " (frozen)" : "")", []) }
    }

    func writeDescription(_ s: inout SectionWriter) throws {
        s.string(name)
        let parts = self.parts
        s.int(parts.count)
        for (what, values) in parts {
            s.string(what)
            try s.doubles(values)
        }
    }

    /// Throws `.corrupt` naming the first part that differs unless `s` describes this operator.
    func requireDescription(_ s: inout SectionReader) throws {
        let saved = try s.string(maxBytes: 256, "the operator's name")
        guard saved == name else { throw KFPError.corrupt("the checkpoint is for operator '\(saved)', not '\(name)'") }
        let parts = self.parts
        _ = try s.int(in: parts.count...parts.count, "the number of operator parts")
        for (what, values) in parts {
            let savedWhat = try s.string(maxBytes: 256, "an operator part's name")
            let savedValues = try s.doubles("operator part \(savedWhat)")
            guard savedWhat == what, savedValues.elementsEqual(values, by: { $0.bitPattern == $1.bitPattern }) else {
                throw KFPError.corrupt("the checkpoint's operator '\(name)' differs in its \(what)")
            }
        }
    }
}
