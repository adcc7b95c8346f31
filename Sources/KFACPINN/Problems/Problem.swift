import Glibc

/// A built-in PDE problem of the paper's experiments (experiments.md): operator, box domain,
/// seeded samplers of interior and condition points, source f, exact solution u* (which also
/// gives the condition data g = u* on the condition points), and the default networks.
public struct Problem: Sendable {
    /// Where the condition points lie.
    public enum Conditions: Sendable {
        /// On the faces of the box (all coordinates).
        case boundary
        /// Half on the spatial faces (coordinates 1…), half at t = 0 (coordinate 0); one merged term.
        case boundaryAndInitial
        /// At t = 0 only.
        case initial
        /// Per face of the box, as `faceConditions` lists them (a loss term per condition).
        case faces
        /// Points the user supplies (`pointSet`), with their terms.
        case points
    }

    /// How points are drawn.
    public enum Sampler: String, CaseIterable, Sendable {
        /// Independent uniform points (xoshiro256**).
        case uniform
        /// Sobol' quasi-random points with a seeded random digital shift (see `SobolSequence`).
        case sobol
    }

    public internal(set) var name: String
    public internal(set) var op: Operator
    /// The box: coordinate i ranges over [lower[i], upper[i]].
    public let lower: [Double], upper: [Double]
    public let conditions: Conditions
    /// Default N_Ω and N_∂ of the paper's runs, and whether those resample every step.
    public let defaultInterior: Int, defaultBoundary: Int
    /// Hidden widths of the default networks by size (small, medium, big, huge as available).
    public let networks: [(size: String, hidden: [Int])]
    /// The conditions on the box's faces when `conditions` is `.faces`, else empty.
    public let faceConditions: [FaceCondition]
    /// u* (nil when the problem has no exact solution) and f.
    let exactSolution: PointFunction?
    var sourceTerm: PointFunction
    /// A ball domain (center, radius) instead of the box; `lower`, `upper` are then its bounding box.
    public let ball: (center: [Double], radius: Double)?
    /// A problem of the user's (`init(custom:)`): its conditions as named; nil for a built-in one.
    let conditionSpecs: [ConditionSpec]?
    /// A problem on points the user supplies (`init(custom:operator:points:)`): every batch is this one.
    public let pointSet: Batch?
    var isCustom: Bool { conditionSpecs != nil }
    /// Measurements of the solution added to every batch as an observation term (inverse
    /// problems, docs/math.md §9–§10), or nil.
    public internal(set) var observations: LossTerm? = nil
    /// The values of the operator's trainable coefficients that generated the data (built-in
    /// inverse problems), by name.
    public internal(set) var trueCoefficients: [(name: String, value: Double)] = []

    public var dimension: Int { op.dimension }

    /// The names of the built-in problems.
    public static let names = ["poisson2d_sin", "poisson5d_cos", "poisson10d_pairs", "poisson100d_sq", "poisson1000d_sq",
                               "heat1d", "heat4d", "logfp9d", "poisson2d_mixed", "wave1d", "disk_robin",
                               "heat1d_inverse", "heat1d_inverse_noisy", "poisson2d_reaction_inverse"]

    /// The built-in problem `name` (see `names`).
    public init(name: String) throws {
        let pi = Double.pi
        let standardNetworks: [(String, [Int])] = [
            ("small", [64]), ("medium", [64, 64, 48, 48]), ("big", [256, 256, 128, 128]),
        ]
        func unitBox(_ d: Int) -> ([Double], [Double]) {
            ([Double](repeating: 0, count: d), [Double](repeating: 1, count: d))
        }
        if name == "heat1d_inverse" || name == "heat1d_inverse_noisy" {
            // heat1d with κ unknown (true ¼, trained through log κ from 1) and 200 observations
            // of u* at uniform (t, x), exact or with Gaussian noise of 1% of their RMS, weight 10.
            self = try Problem(name: "heat1d").inverse(name, coefficient: "kappa", start: 1, positive: true, truth: 0.25,
                               observations: 200, noise: name.hasSuffix("noisy") ? 0.01 : 0)
            return
        }
        if name == "poisson2d_reaction_inverse" {
            // −Δu + c u = f on [0,1]², u* = sin πx₁ sin πx₂, f = (2π² + 2) u*: c unknown (true 2,
            // trained from 0), Dirichlet data on the boundary and 200 exact observations of weight 10.
            let truth = 2.0
            let problem = try Problem(name: "poisson2d_sin").replacingOperator(
                try Operator(name: "screened_poisson", dimension: 2, secondOrder: .diagonal([-1, -1]), reaction: truth),
                source: PointFunction { x in (2 * pi * pi + truth) * sin(pi * x[0]) * sin(pi * x[1]) })
            self = try problem.inverse(name, coefficient: "c", start: 0, positive: false, truth: truth,
                                       observations: 200, noise: 0)
            return
        }
        if name == "disk_robin" {
            // −Δu + u = f on the unit disk, u* = e^{x₁+x₂}: f = −u*; Robin u + ∂u/∂n = g on the
            // circle, where n = x, so g = u* (1 + x₁ + x₂).
            let u: @Sendable (UnsafePointer<Double>) -> Double = { x in exp(x[0] + x[1]) }
            self = try Problem(custom: name, operator: try Operator(name: "screened_poisson", dimension: 2,
                                                                   secondOrder: .diagonal([-1, -1]), reaction: 1),
                               ball: ([0, 0], 1), source: PointFunction { x in -u(x) },
                               conditions: [ConditionSpec(faces: "boundary", kind: .robin(a: 1, b: 1),
                                                          value: PointFunction { x in u(x) * (1 + x[0] + x[1]) })],
                               exact: PointFunction(u), interior: 900, boundary: 120)
            return
        }
        self.name = name
        var faceConditions: [FaceCondition] = []
        ball = nil
        conditionSpecs = nil
        pointSet = nil
        switch name {
        case "poisson2d_sin":
            // u* = sin πx₁ sin πx₂, −Δu* = 2π² u*.
            op = try .poisson(dimension: 2)
            (lower, upper) = unitBox(2)
            conditions = .boundary
            (defaultInterior, defaultBoundary) = (900, 120)
            networks = standardNetworks
            exactSolution = PointFunction { x in sin(pi * x[0]) * sin(pi * x[1]) }
            sourceTerm = PointFunction { x in 2 * pi * pi * sin(pi * x[0]) * sin(pi * x[1]) }
        case "poisson5d_cos":
            // u* = Σ cos πx_i, −Δu* = π² u*.
            op = try .poisson(dimension: 5)
            (lower, upper) = unitBox(5)
            conditions = .boundary
            (defaultInterior, defaultBoundary) = (3000, 500)
            networks = standardNetworks
            exactSolution = PointFunction { x in (0..<5).reduce(0) { $0 + cos(pi * x[$1]) } }
            sourceTerm = PointFunction { x in pi * pi * (0..<5).reduce(0) { $0 + cos(pi * x[$1]) } }
        case "poisson10d_pairs":
            // u* = Σ_k x_{2k−1} x_{2k} (harmonic), f = 0.
            op = try .poisson(dimension: 10)
            (lower, upper) = unitBox(10)
            conditions = .boundary
            (defaultInterior, defaultBoundary) = (3000, 1000)
            networks = [("big", [256, 256, 128, 128])]
            exactSolution = PointFunction { x in (0..<5).reduce(0) { $0 + x[2 * $1] * x[2 * $1 + 1] } }
            sourceTerm = PointFunction { _ in 0 }
        case "poisson100d_sq":
            // u* = ‖x‖², −Δu* = −2d.
            op = try .poisson(dimension: 100)
            (lower, upper) = unitBox(100)
            conditions = .boundary
            (defaultInterior, defaultBoundary) = (100, 50)
            networks = [("huge", [768, 768, 512, 512])]
            exactSolution = PointFunction { x in (0..<100).reduce(0) { $0 + x[$1] * x[$1] } }
            sourceTerm = PointFunction { _ in -200 }
        case "poisson1000d_sq":
            // u* = ‖x‖²/d in d = 1000 (values in [0, 1]), −Δu* = −2; the operator estimates Δu from
            // 16 Rademacher probes per point (randomized Taylor mode; `exact()` for the exact term).
            let d = 1000
            op = try Operator.poisson(dimension: d).randomized(probes: 16, seed: 0)
            (lower, upper) = unitBox(d)
            conditions = .boundary
            (defaultInterior, defaultBoundary) = (100, 50)
            networks = [("big", [256, 256, 128, 128]), ("huge", [768, 768, 512, 512])]
            exactSolution = PointFunction { x in (0..<d).reduce(0) { $0 + x[$1] * x[$1] } / Double(d) }
            sourceTerm = PointFunction { _ in -2 }
        case "heat1d":
            // (t, x): ∂_t u = ¼ ∂²_x u, u* = e^{−π²t/4} sin πx.
            op = try .heat(spaceDimension: 1, kappa: 0.25)
            (lower, upper) = unitBox(2)
            conditions = .boundaryAndInitial
            (defaultInterior, defaultBoundary) = (900, 120)
            networks = standardNetworks
            exactSolution = PointFunction { x in exp(-pi * pi * x[0] / 4) * sin(pi * x[1]) }
            sourceTerm = PointFunction { _ in 0 }
        case "heat4d":
            // (t, x) ∈ [0,1]⁵: ∂_t u = ¼ Δ_x u, u* = e^{−t} Σ sin 2x_i (¼·4 = 1).
            op = try .heat(spaceDimension: 4, kappa: 0.25)
            (lower, upper) = unitBox(5)
            conditions = .boundaryAndInitial
            (defaultInterior, defaultBoundary) = (3000, 500)
            networks = standardNetworks
            exactSolution = PointFunction { x in exp(-x[0]) * (1...4).reduce(0) { $0 + sin(2 * x[$1]) } }
            sourceTerm = PointFunction { _ in 0 }
        case "logfp9d":
            // q = log p for dX = −X/2 dt + √2 dW from N(0, I): p(t) = N(0, v(t) I),
            // v(t) = e^{−t} + 2(1 − e^{−t}); q = −(d/2) log(2πv) − ‖x‖²/(2v).
            op = try .logFokkerPlanck(spaceDimension: 9)
            lower = [0] + [Double](repeating: -5, count: 9)
            upper = [1] + [Double](repeating: 5, count: 9)
            conditions = .initial
            (defaultInterior, defaultBoundary) = (3000, 1000)
            networks = [("big", [256, 256, 128, 128])]
            exactSolution = PointFunction { x in
                let v = exp(-x[0]) + 2 * (1 - exp(-x[0]))
                let r2 = (1...9).reduce(0) { $0 + x[$1] * x[$1] }
                return -4.5 * log(2 * pi * v) - r2 / (2 * v)
            }
            sourceTerm = PointFunction { _ in 0 }
        case "poisson2d_mixed":
            // −Δu = f on [0,1]², u* = sin πx₁ sin πx₂ + x₂: Dirichlet on x0−, x0+; Neumann on x1−
            // (∂u/∂n = −∂₂u = −π sin πx₁ − 1); Robin u + ∂u/∂n = g on x1+ (∂u/∂n = ∂₂u).
            op = try .poisson(dimension: 2)
            (lower, upper) = unitBox(2)
            conditions = .faces
            (defaultInterior, defaultBoundary) = (900, 120)
            networks = standardNetworks
            let u: @Sendable (UnsafePointer<Double>) -> Double = { x in sin(pi * x[0]) * sin(pi * x[1]) + x[1] }
            let du2: @Sendable (UnsafePointer<Double>) -> Double = { x in pi * sin(pi * x[0]) * cos(pi * x[1]) + 1 }
            exactSolution = PointFunction(u)
            sourceTerm = PointFunction { x in 2 * pi * pi * sin(pi * x[0]) * sin(pi * x[1]) }
            faceConditions = [
                FaceCondition(faces: [.side(coordinate: 0, upper: false), .side(coordinate: 0, upper: true)], kind: .dirichlet, value: u),
                FaceCondition(faces: [.side(coordinate: 1, upper: false)], kind: .neumann, value: { x in -du2(x) }),
                FaceCondition(faces: [.side(coordinate: 1, upper: true)], kind: .robin(a: 1, b: 1), value: { x in u(x) + du2(x) }),
            ]
        case "wave1d":
            // (t, x) ∈ [0,1]²: u_tt = u_xx (C = diag(1, −1)), u* = sin πx cos πt; u(0, x) = sin πx,
            // u_t(0, x) = 0 (a Neumann condition along +e_t on t = 0), u = 0 at x = 0 and 1.
            op = try Operator(name: "wave", dimension: 2, secondOrder: .diagonal([1, -1]))
            (lower, upper) = unitBox(2)
            conditions = .faces
            (defaultInterior, defaultBoundary) = (2000, 400)
            networks = standardNetworks
            exactSolution = PointFunction { x in sin(pi * x[1]) * cos(pi * x[0]) }
            sourceTerm = PointFunction { _ in 0 }
            faceConditions = [
                FaceCondition(faces: [.side(coordinate: 0, upper: false)], kind: .dirichlet, value: { x in sin(pi * x[1]) }),
                FaceCondition(faces: [.side(coordinate: 0, upper: false)], kind: .neumann, direction: [1, 0], value: { _ in 0 }),
                FaceCondition(faces: [.side(coordinate: 1, upper: false), .side(coordinate: 1, upper: true)], kind: .dirichlet, value: { _ in 0 }),
            ]
        default:
            throw KFPError.invalidArgument("unknown problem '\(name)' (known: \(Problem.names.joined(separator: ", ")))")
        }
        self.faceConditions = faceConditions
    }

    /// This problem with operator `op` (of the same dimension) and source `source`.
    private func replacingOperator(_ op: Operator, source: PointFunction) throws -> Problem {
        guard op.dimension == dimension else { throw KFPError.dimensionMismatch("the operator is \(op.dimension)-dimensional, the problem \(dimension)") }
        var problem = self
        problem.op = op
        problem.sourceTerm = source
        return problem
    }

    /// This problem, named `name`, as an inverse problem: coefficient `coefficient` of its operator
    /// trainable from `start` (its true value `truth`), and `count` observations of u* at uniform
    /// points of the box (seeded), with Gaussian noise of standard deviation `noise` times their
    /// RMS. The observation term has weight 10: with weight 1 the data pull too weakly against
    /// the residual at a random network, whose best-fitting coefficient can lie far from the
    /// truth (docs/experiments.md, inverse problems).
    private func inverse(_ name: String, coefficient: String, start: Double, positive: Bool, truth: Double,
                         observations count: Int, noise: Double) throws -> Problem {
        var problem = self
        try problem.op.setTrainable(coefficient, initial: start, positive: positive)
        var rng = RandomSource(seed: 20_240_521)
        var unit = [Double](repeating: 0, count: dimension), points: [Double] = []
        for k in 0..<count { points += boxPoint(k, nil, &rng, &unit) }
        var values = try exact(points, count: count)
        if noise > 0 {
            let rms = (values.reduce(0) { $0 + $1 * $1 } / Double(count)).squareRoot()
            for k in 0..<count { values[k] += noise * rms * rng.normal() }
        }
        problem.name = name
        problem.observations = LossTerm(kind: .observation, points: points, targets: values, weight: 10)
        problem.trueCoefficients = [(coefficient, truth)]
        return problem
    }

    /// Widths d → hidden → 1 of the default network of `size` ("small", "medium", "big", "huge").
    public func networkWidths(size: String) throws -> [Int] {
        guard let hidden = networks.first(where: { $0.size == size })?.hidden else {
            throw KFPError.invalidArgument("problem \(name) has no \(size) network (has: \(networks.map(\.size).joined(separator: ", ")))")
        }
        return [dimension] + hidden + [1]
    }

    /// u* at `count` points (row-major count × d).
    public func exact(_ x: [Double], count n: Int) throws -> [Double] {
        try requirePoints(x, count: n)
        guard let exactSolution else { throw KFPError.invalidArgument("problem \(name) has no exact solution") }
        return try exactSolution.values(x, count: n, dimension: dimension, what: "the exact solution")
    }

    /// f at `count` points (row-major count × d).
    public func source(_ x: [Double], count n: Int) throws -> [Double] {
        try requirePoints(x, count: n)
        return try sourceTerm.values(x, count: n, dimension: dimension, what: "the source f")
    }

    /// Whether the problem has an exact solution (errors are logged only then).
    public var hasExactSolution: Bool { exactSolution != nil }

    private func requirePoints(_ x: [Double], count n: Int) throws {
        guard n >= 0, x.count == (try checkedProduct(n, dimension, "points")) else {
            throw KFPError.dimensionMismatch("\(x.count) values are not \(n) points of dimension \(dimension)")
        }
        try requireFinite(x, "points")
    }


    /// A training batch: `interior` points strictly inside the box, `boundary` condition points
    /// as `conditions` says (a point of the box with one coordinate set to a face), with f and
    /// g = u*; deterministic per seed. Faces and the initial/boundary split come from the seed's
    /// random stream in both samplers.
    public func sample(interior n: Int, boundary m: Int, seed: UInt64, sampler: Sampler = .uniform) throws -> Batch {
        guard n >= 1, m >= 0 else {
            throw KFPError.invalidArgument("a sample needs at least one interior point and no negative count, got \(n) and \(m)")
        }
        let batch = try sampleTerms(interior: n, boundary: m, seed: seed, sampler: sampler)
        return try observations.map { try batch.adding($0) } ?? batch
    }

    /// `sample` without the observations.
    private func sampleTerms(interior n: Int, boundary m: Int, seed: UInt64, sampler: Sampler) throws -> Batch {
        if let pointSet { return pointSet }
        // Points, targets and the batch's copies of them.
        let what = "a batch of \(n) interior and \(m) condition points in \(dimension) dimensions"
        try Memory.require(doubles: Memory.product(2, Memory.total([n, m], what), dimension + 2, what: what), what)
        if conditions == .faces { return try sampleFaces(interior: n, boundary: m, seed: seed, sampler: sampler) }
        // The paper's problems: u* gives g.
        let d = dimension
        var rng = RandomSource(seed: seed)
        // Points of the open unit cube: uniform (53 random bits, offset by half a step) or Sobol'.
        let interiorSobol = sampler == .sobol ? SobolSequence(dimension: d, seed: seed) : nil
        let boundarySobol = sampler == .sobol ? SobolSequence(dimension: d, seed: seed ^ 0x5DEE_CE66_D1CE_F00D) : nil
        var unit = [Double](repeating: 0, count: d)
        func point(_ index: Int, _ sobol: SobolSequence?) -> [Double] { boxPoint(index, sobol, &rng, &unit) }
        var xi = [Double](), xb = [Double]()
        xi.reserveCapacity(n * d)
        for k in 0..<n { xi += point(k, interiorSobol) }
        for k in 0..<m {
            var p = point(k, boundarySobol)
            let initial: Bool
            switch conditions {
            case .boundary, .faces, .points: initial = false
            case .initial: initial = true
            case .boundaryAndInitial: initial = k % 2 == 1
            }
            if initial {
                p[0] = lower[0]
            } else {
                // One coordinate (spatial only when time is coordinate 0) set to a face.
                let first = conditions == .boundary ? 0 : 1
                let i = first + Int(rng.next() % UInt64(d - first))
                p[i] = rng.next() % 2 == 0 ? lower[i] : upper[i]
            }
            xb += p
        }
        return try Batch(dimension: d, interiorPoints: xi, source: try source(xi, count: n),
                         boundaryPoints: xb, boundaryValues: try exact(xb, count: m))
    }

    /// A point of the box: Sobol' point `index` of `sobol`, or uniform from `rng` (53 random bits,
    /// offset by half a step, so never on a face); `unit` is work space of d values.
    func boxPoint(_ index: Int, _ sobol: SobolSequence?, _ rng: inout RandomSource, _ unit: inout [Double]) -> [Double] {
        let d = dimension
        if let sobol {
            sobol.point(index, into: &unit)
        } else {
            for i in 0..<d { unit[i] = (Double(rng.next() >> 11) + 0.5) * 0x1.0p-53 }
        }
        return (0..<d).map { lower[$0] + (upper[$0] - lower[$0]) * unit[$0] }
    }

    /// A point of the domain's interior: `boxPoint` for a box; for a ball, box points of its
    /// bounding box until one lies strictly inside (rejection keeps uniform and Sobol' points
    /// uniform in the ball).
    func domainPoint(_ index: inout Int, _ sobol: SobolSequence?, _ rng: inout RandomSource, _ unit: inout [Double]) -> [Double] {
        while true {
            let p = boxPoint(index, sobol, &rng, &unit)
            index += 1
            guard let ball else { return p }
            let r2 = zip(p, ball.center).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            if r2 < ball.radius * ball.radius { return p }
        }
    }

    /// Fresh interior points drawn with `seed` and u* there, for the errors.
    public struct EvaluationSet: Sendable {
        public let points: [Double], exact: [Double]
    }

    public func evaluationSet(count: Int, seed: UInt64) throws -> EvaluationSet {
        guard count >= 1 else { throw KFPError.invalidArgument("the error needs at least one evaluation point, got \(count)") }
        // A point set has no other points: its interior points are the evaluation points.
        let points = try pointSet?.interiorPoints ?? sample(interior: count, boundary: 0, seed: seed).interiorPoints
        return EvaluationSet(points: points, exact: try exact(points, count: points.count / dimension))
    }

    /// The L2 (RMS) error √(mean (u_θ − u*)²) and the relative L2 error ‖u_θ − u*‖/‖u*‖ on
    /// `count` fresh interior points drawn with `seed` (docs/math.md §8).
    public func errors(_ net: MLP, count: Int, seed: UInt64) throws -> (l2: Double, relativeL2: Double) {
        try errors(net, on: try evaluationSet(count: count, seed: seed))
    }

    public func errors(_ net: MLP, on set: EvaluationSet) throws -> (l2: Double, relativeL2: Double) {
        guard net.inputDimension == dimension else {
            throw KFPError.dimensionMismatch("the network has \(net.inputDimension) inputs, problem \(name) is \(dimension)-dimensional")
        }
        let count = set.exact.count
        let u = try net.evaluate(set.points, count: count)
        var difference = 0.0, norm = 0.0
        for k in 0..<count {
            difference += (u[k] - set.exact[k]) * (u[k] - set.exact[k])
            norm += set.exact[k] * set.exact[k]
        }
        return ((difference / Double(count)).squareRoot(), (difference / norm).squareRoot())
    }
}

extension Problem.Conditions: Equatable {}
