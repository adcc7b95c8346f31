import Glibc

/// A scalar function of points, evaluated a batch at a time: x (n points, row-major n × d) → n
/// values. Built from a Swift closure per point, or from a function of whole batches (the C and
/// Python callbacks).
public struct PointFunction: Sendable {
    let body: @Sendable (UnsafePointer<Double>, Int, Int, UnsafeMutablePointer<Double>) throws -> Void

    /// f(x) at one point (d values).
    public init(_ f: @escaping @Sendable (UnsafePointer<Double>) -> Double) {
        body = { x, n, d, out in for k in 0..<n { out[k] = f(x + k * d) } }
    }

    /// out[k] = f(x_k) for the n points of x (n × d); may throw.
    public init(batch: @escaping @Sendable (UnsafePointer<Double>, Int, Int, UnsafeMutablePointer<Double>) throws -> Void) {
        body = batch
    }

    /// A constant.
    public static func constant(_ c: Double) -> PointFunction { PointFunction { _ in c } }

    /// The values at `count` points; a non-finite value is an error naming `what`, the point and its coordinates.
    func values(_ x: [Double], count n: Int, dimension d: Int, what: @autoclosure () -> String) throws -> [Double] {
        var out = [Double](repeating: .nan, count: n)
        guard n > 0 else { return out }
        try x.withUnsafeBufferPointer { xp in
            try out.withUnsafeMutableBufferPointer { try body(xp.baseAddress!, n, d, $0.baseAddress!) }
        }
        if let k = out.firstIndex(where: { !$0.isFinite }) {
            let point = x[(k * d)..<(k * d + d)].map { "\($0)" }.joined(separator: ", ")
            throw KFPError.nonFinite("\(what()) is \(out[k]) at point \(k) (\(point))")
        }
        return out
    }
}

/// Where a condition holds: a face of a box (coordinate i at its lower or upper bound), or the
/// sphere that bounds a ball.
public enum Face: Sendable, Equatable, CustomStringConvertible {
    case side(coordinate: Int, upper: Bool)
    case sphere

    /// "x0-", "x2+", "boundary".
    public var description: String {
        switch self {
        case .side(let i, let upper): return "x\(i)\(upper ? "+" : "-")"
        case .sphere: return "boundary"
        }
    }
}

/// A condition on faces of a problem's domain: Dirichlet u = g, Neumann ∂u/∂n = g or Robin
/// a u + b ∂u/∂n = g (docs/math.md §9). The derivative is along the outward normal, or along a
/// fixed unit `direction` (an initial velocity: +e_t on t = 0).
public struct FaceCondition: Sendable {
    public enum Kind: Sendable {
        case dirichlet, neumann
        case robin(a: Double, b: Double)
    }

    public let faces: [Face]
    public let kind: Kind
    public let direction: [Double]?
    /// g.
    let value: PointFunction
    /// Points per batch, or nil for a share of the condition points by face area.
    public let count: Int?

    public init(faces: [Face], kind: Kind, direction: [Double]? = nil, value: PointFunction, count: Int? = nil) {
        self.faces = faces
        self.kind = kind
        self.direction = direction
        self.value = value
        self.count = count
    }

    public init(faces: [Face], kind: Kind, direction: [Double]? = nil,
                value: @escaping @Sendable (UnsafePointer<Double>) -> Double) {
        self.init(faces: faces, kind: kind, direction: direction, value: PointFunction(value))
    }
}

/// A condition as the user names it: faces by name ("x0-", "x1+,x2-", "all", "boundary").
public struct ConditionSpec: Sendable {
    public var faces: String
    public var kind: FaceCondition.Kind
    public var direction: [Double]?
    public var value: PointFunction
    /// Points per batch, or nil for a share of the condition points by face area.
    public var count: Int?

    public init(faces: String, kind: FaceCondition.Kind, direction: [Double]? = nil, value: PointFunction, count: Int? = nil) {
        self.faces = faces
        self.kind = kind
        self.direction = direction
        self.value = value
        self.count = count
    }
}

extension Problem {
    /// A problem of the user's: an operator on a box or ball, a source f, conditions and,
    /// optionally, the exact solution (for the logged errors). Conditions name their faces:
    /// "x<i>-" / "x<i>+" (coordinate i at its lower / upper bound) or "all" (every face no other
    /// condition names) for a box, "boundary" or "all" for a ball; several as "x0-,x1+". A face
    /// takes one condition, except that a condition with a fixed `direction` (an initial
    /// velocity) may share its face.
    public init(custom name: String = "custom", operator op: Operator, box: (lower: [Double], upper: [Double])? = nil,
                ball: (center: [Double], radius: Double)? = nil, source: PointFunction,
                conditions: [ConditionSpec], exact: PointFunction? = nil, interior: Int = 1000, boundary: Int = 200) throws {
        let d = op.dimension
        switch (box, ball) {
        case (let box?, nil):
            guard box.lower.count == d, box.upper.count == d else {
                throw KFPError.dimensionMismatch("the box has \(box.lower.count) lower and \(box.upper.count) upper bounds, the operator is \(d)-dimensional")
            }
            try requireFinite(box.lower + box.upper, "box bounds")
            for i in 0..<d where !(box.lower[i] < box.upper[i]) {
                throw KFPError.invalidArgument("the box's coordinate \(i) has lower bound \(box.lower[i]) not below its upper bound \(box.upper[i])")
            }
            (lower, upper) = (box.lower, box.upper)
        case (nil, let ball?):
            guard ball.center.count == d else {
                throw KFPError.dimensionMismatch("the ball's center has \(ball.center.count) coordinates, the operator is \(d)-dimensional")
            }
            try requireFinite(ball.center, "ball center")
            guard ball.radius.isFinite, ball.radius > 0 else {
                throw KFPError.invalidArgument("the ball's radius must be positive and finite, got \(ball.radius)")
            }
            lower = ball.center.map { $0 - ball.radius }
            upper = ball.center.map { $0 + ball.radius }
        default:
            throw KFPError.invalidArgument("a problem's domain is a box or a ball: give exactly one")
        }
        guard interior >= 1, boundary >= 0 else {
            throw KFPError.invalidArgument("default sizes must be at least 1 interior and 0 condition points, got \(interior) and \(boundary)")
        }
        self.name = name
        self.op = op
        self.ball = ball
        self.conditions = .faces
        pointSet = nil
        (defaultInterior, defaultBoundary) = (interior, boundary)
        networks = [("small", [64]), ("medium", [64, 64, 48, 48]), ("big", [256, 256, 128, 128])]
        exactSolution = exact
        sourceTerm = source
        conditionSpecs = conditions
        let all: [Face] = ball == nil ? (0..<d).flatMap { [Face.side(coordinate: $0, upper: false), .side(coordinate: $0, upper: true)] } : [.sphere]
        // Faces by name; "all" resolved last, to the faces no other condition names.
        var named: [[Face]?] = [], taken: [Face] = []
        for c in conditions {
            if let direction = c.direction {
                guard direction.count == d else {
                    throw KFPError.dimensionMismatch("the direction of the condition on '\(c.faces)' has \(direction.count) entries, the domain is \(d)-dimensional")
                }
                let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
                guard abs(norm - 1) <= 1e-8 else {
                    throw KFPError.invalidArgument("the direction of the condition on '\(c.faces)' has length \(norm), not 1")
                }
            }
            if let count = c.count, count < 0 {
                throw KFPError.invalidArgument("the condition on '\(c.faces)' asks for \(count) points")
            }
            if case .robin(let a, let b) = c.kind, a == 0 && b == 0 {
                throw KFPError.invalidArgument("the Robin condition on '\(c.faces)' has a = b = 0")
            }
            let names = c.faces.split(separator: ",").map { $0.trimmingCharacters() }
            guard !names.isEmpty else { throw KFPError.invalidArgument("a condition names no face") }
            if names == ["all"] { named.append(nil); continue }
            var faces: [Face] = []
            for n in names {
                guard let face = all.first(where: { $0.description == n || (ball != nil && n == "all") }) else {
                    throw KFPError.invalidArgument("unknown face '\(n)' (this domain's faces: \(all.map(\.description).joined(separator: ", ")), all)")
                }
                if c.direction == nil {
                    guard !taken.contains(face) else { throw KFPError.invalidArgument("face '\(n)' is given two conditions") }
                    taken.append(face)
                }
                faces.append(face)
            }
            named.append(faces)
        }
        let rest = all.filter { !taken.contains($0) }
        if named.filter({ $0 == nil }).count > 1 { throw KFPError.invalidArgument("two conditions name 'all'") }
        faceConditions = try zip(conditions, named).map { c, faces in
            let resolved = faces ?? rest
            guard !resolved.isEmpty else { throw KFPError.invalidArgument("'all' names no face: every face has a condition already") }
            return FaceCondition(faces: resolved, kind: c.kind, direction: c.direction, value: c.value, count: c.count)
        }
    }

    /// A problem on points the user supplies: every batch is `points` (any geometry, its terms
    /// with their targets, normals and weights); the errors, given `exact`, are on its interior
    /// points.
    public init(custom name: String = "custom", operator op: Operator, points: Batch, exact: PointFunction? = nil) throws {
        guard points.dimension == op.dimension else {
            throw KFPError.dimensionMismatch("the points are \(points.dimension)-dimensional, the operator \(op.dimension)-dimensional")
        }
        guard points.interiorCount > 0 else { throw KFPError.invalidArgument("the points have no interior term with points") }
        let all = points.terms.flatMap(\.points), d = points.dimension
        lower = (0..<d).map { i in stride(from: i, to: all.count, by: d).map { all[$0] }.min()! }
        upper = (0..<d).map { i in stride(from: i, to: all.count, by: d).map { all[$0] }.max()! }
        self.name = name
        self.op = op
        ball = nil
        conditions = .points
        pointSet = points
        (defaultInterior, defaultBoundary) = (points.interiorCount, points.boundaryCount)
        networks = [("small", [64]), ("medium", [64, 64, 48, 48]), ("big", [256, 256, 128, 128])]
        exactSolution = exact
        sourceTerm = PointFunction(batch: { _, _, _, _ in
            throw KFPError.invalidArgument("a problem on points has no source function: its batch carries the values")
        })
        conditionSpecs = nil
        faceConditions = []
    }

    /// This problem of the user's with one more condition (validated as `init(custom:)` does).
    public func adding(faces: String, kind: FaceCondition.Kind, direction: [Double]?, value: PointFunction) throws -> Problem {
        try rebuilt(conditions: (conditionSpecs ?? []) + [ConditionSpec(faces: faces, kind: kind, direction: direction, value: value)])
    }

    /// This problem of the user's with condition `index` (in the order added) given `count`
    /// points per batch (nil: a share by area).
    public func withConditionPoints(_ index: Int, _ count: Int?) throws -> Problem {
        var specs = conditionSpecs ?? []
        guard specs.indices.contains(index) else {
            throw KFPError.invalidArgument("condition index \(index) out of range [0, \(specs.count))")
        }
        specs[index].count = count
        return try rebuilt(conditions: specs)
    }

    /// This problem of the user's with the exact solution `exact`.
    public func withExact(_ exact: PointFunction) throws -> Problem {
        if let pointSet { return try Problem(custom: name, operator: op, points: pointSet, exact: exact) }
        return try rebuilt(exact: exact)
    }

    /// This problem of the user's with other default batch sizes.
    public func withSizes(interior: Int, boundary: Int) throws -> Problem { try rebuilt(interior: interior, boundary: boundary) }

    private func rebuilt(conditions: [ConditionSpec]? = nil, exact: PointFunction? = nil, interior: Int? = nil,
                         boundary: Int? = nil) throws -> Problem {
        guard pointSet == nil else {
            throw KFPError.invalidArgument("a problem on points takes its conditions and sizes from its batch: add terms to the batch")
        }
        guard isCustom else { throw KFPError.invalidArgument("problem \(name) is built in: only a problem of your own takes conditions, an exact solution or sizes") }
        var problem = try Problem(custom: name, operator: op, box: ball == nil ? (lower, upper) : nil, ball: ball, source: sourceTerm,
                                  conditions: conditions ?? conditionSpecs ?? [], exact: exact ?? exactSolution,
                                  interior: interior ?? defaultInterior, boundary: boundary ?? defaultBoundary)
        problem.observations = observations
        return problem
    }

    /// This problem of the user's with measurements: `values` y of the solution at `points`
    /// (row-major count × d), added to every batch as an observation term of weight `weight`
    /// (r = u − y; replaces earlier observations). For inverse problems (docs/math.md §10).
    public func withObservations(points: [Double], values: [Double], weight: Double = 1) throws -> Problem {
        guard pointSet == nil else {
            throw KFPError.invalidArgument("a problem on points takes its observations from its batch: add an observation term to the batch")
        }
        guard isCustom else { throw KFPError.invalidArgument("problem \(name) is built in: only a problem of your own takes observations") }
        guard !values.isEmpty else { throw KFPError.invalidArgument("observations need at least one point") }
        try requireFinite(points, "the observation points")
        try requireFinite(values, "the observed values")
        let term = LossTerm(kind: .observation, points: points, targets: values, weight: weight)
        try term.validate(dimension: dimension, index: 0)
        var problem = self
        problem.observations = term
        return problem
    }

    /// The (d − 1)-dimensional area of a face: of a box side, the product of the other sides; of
    /// a ball's sphere, 2π^{d/2} r^{d−1} / Γ(d/2).
    func faceArea(_ face: Face) -> Double {
        switch face {
        case .side(let i, _): return (0..<dimension).reduce(1.0) { $1 == i ? $0 : $0 * (upper[$1] - lower[$1]) }
        case .sphere:
            let d = Double(dimension), r = ball?.radius ?? 1
            return 2 * pow(Double.pi, d / 2) * pow(r, d - 1) / tgamma(d / 2)
        }
    }

    /// `sample` for `.faces` problems: interior points strictly inside the domain, and the m
    /// condition points split over the conditions: a condition with a count takes that many, the
    /// others share the rest by the area of their faces (largest remainders); each point lies on
    /// a face of its condition chosen by area, with the face's outward normal (or the condition's
    /// direction). One loss term per condition, weight 1.
    func sampleFaces(interior n: Int, boundary m: Int, seed: UInt64, sampler: Sampler) throws -> Batch {
        let d = dimension
        var rng = RandomSource(seed: seed), unit = [Double](repeating: 0, count: d)
        let interiorSobol = sampler == .sobol ? SobolSequence(dimension: d, seed: seed) : nil
        let boundarySobol = sampler == .sobol ? SobolSequence(dimension: d, seed: seed ^ 0x5DEE_CE66_D1CE_F00D) : nil
        var xi = [Double](), index = 0
        xi.reserveCapacity(n * d)
        for _ in 0..<n { xi += domainPoint(&index, interiorSobol, &rng, &unit) }
        var terms = [LossTerm(kind: .interior, points: xi, targets: try source(xi, count: n))]
        // Points per condition: its count, or (m − the counts) · (its faces' area) / (the area of all
        // conditions without a count), largest remainders first.
        let fixed = faceConditions.reduce(0) { $0 + ($1.count ?? 0) }
        guard fixed <= m || faceConditions.allSatisfy({ $0.count != nil }) else {
            throw KFPError.invalidArgument("the conditions' point counts add up to \(fixed), more than the \(m) condition points of the batch")
        }
        let areas = faceConditions.map { c in c.count == nil ? c.faces.reduce(0.0) { $0 + faceArea($1) } : 0 }
        let rest = max(0, m - fixed), total = areas.reduce(0, +)
        let shares = areas.map { total > 0 ? Double(rest) * $0 / total : 0 }
        var counts = zip(faceConditions, shares).map { $0.count ?? Int($1) }
        let free = shares.indices.filter { faceConditions[$0].count == nil }
        let byRemainder = free.sorted { (shares[$0] - Double(counts[$0]), $1) > (shares[$1] - Double(counts[$1]), $0) }
        let assigned = free.reduce(0) { $0 + counts[$1] }
        for c in byRemainder.prefix(max(0, rest - assigned)) { counts[c] += 1 }
        index = 0
        for (t, (condition, count)) in zip(faceConditions, counts).enumerated() {
            var points = [Double](), normals = [Double]()
            let faceAreas = condition.faces.map { faceArea($0) }, faceTotal = faceAreas.reduce(0, +)
            for _ in 0..<count {
                var p = boxPoint(index, boundarySobol, &rng, &unit)
                index += 1
                // A face of the condition with probability proportional to its area.
                var r = Double(rng.next() >> 11) * 0x1.0p-53 * faceTotal, f = 0
                while f < faceAreas.count - 1 && r >= faceAreas[f] { r -= faceAreas[f]; f += 1 }
                var normal = [Double](repeating: 0, count: d)
                switch condition.faces[f] {
                case .side(let i, let isUpper):
                    p[i] = isUpper ? upper[i] : lower[i]
                    normal[i] = isUpper ? 1 : -1
                case .sphere:
                    // A direction from a Gaussian vector (Box–Muller on the point's coordinates).
                    let ball = self.ball!
                    var g = (0..<d).map { i -> Double in
                        let u1 = (p[i] - lower[i]) / (upper[i] - lower[i]), u2 = Double(rng.next() >> 11) * 0x1.0p-53
                        return (-2 * log(max(u1, 0x1.0p-60))).squareRoot() * cos(2 * Double.pi * u2)
                    }
                    let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    if norm == 0 { g = [1] + [Double](repeating: 0, count: d - 1) }
                    normal = g.map { $0 / max(norm, 1e-300) }
                    p = (0..<d).map { ball.center[$0] + ball.radius * normal[$0] }
                }
                points += p
                normals += condition.direction ?? normal
            }
            let g = try condition.value.values(points, count: count, dimension: d, what: "the value g of condition \(t) (\(condition.faces.map(\.description).joined(separator: ",")))")
            switch condition.kind {
            case .dirichlet: terms.append(LossTerm(kind: .dirichlet, points: points, targets: g))
            case .neumann: terms.append(LossTerm(kind: .neumann, points: points, targets: g, normals: normals))
            case .robin(let a, let b):
                terms.append(LossTerm(kind: .robin, points: points, targets: g, normals: normals,
                                      robinA: [Double](repeating: a, count: count), robinB: [Double](repeating: b, count: count)))
            }
        }
        return try Batch(dimension: d, terms: terms)
    }
}

extension Substring {
    /// Without leading and trailing spaces.
    func trimmingCharacters() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
