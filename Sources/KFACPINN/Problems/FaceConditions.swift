/// A condition on faces of a problem's box: Dirichlet u = g, Neumann ∂u/∂n = g or Robin
/// a u + b ∂u/∂n = g (docs/math.md §9). The derivative is along the face's outward normal, or
/// along a fixed unit `direction` (an initial velocity: +e_t on t = 0).
public struct FaceCondition: Sendable {
    public enum Kind: Sendable {
        case dirichlet, neumann
        case robin(a: Double, b: Double)
    }

    /// The faces: coordinate i at its lower (`upper` false) or upper bound.
    public let faces: [(coordinate: Int, upper: Bool)]
    public let kind: Kind
    public let direction: [Double]?
    /// g at one point (d values).
    let value: @Sendable (UnsafePointer<Double>) -> Double

    public init(faces: [(coordinate: Int, upper: Bool)], kind: Kind, direction: [Double]? = nil,
                value: @escaping @Sendable (UnsafePointer<Double>) -> Double) {
        self.faces = faces
        self.kind = kind
        self.direction = direction
        self.value = value
    }
}

extension Problem {
    /// The (d − 1)-dimensional area of the face where coordinate i is fixed.
    func faceArea(_ i: Int) -> Double {
        (0..<dimension).reduce(1.0) { $1 == i ? $0 : $0 * (upper[$1] - lower[$1]) }
    }

    /// `sample` for `.faces` problems: the interior points as for every problem, and the m
    /// condition points split over the conditions by the area of their faces (largest
    /// remainders), each point on a face of its condition chosen by area, with the face's
    /// outward normal (or the condition's direction). One loss term per condition, weight 1.
    func sampleFaces(interior n: Int, boundary m: Int, seed: UInt64, sampler: Sampler) throws -> Batch {
        let d = dimension
        var rng = RandomSource(seed: seed), unit = [Double](repeating: 0, count: d)
        let interiorSobol = sampler == .sobol ? SobolSequence(dimension: d, seed: seed) : nil
        let boundarySobol = sampler == .sobol ? SobolSequence(dimension: d, seed: seed ^ 0x5DEE_CE66_D1CE_F00D) : nil
        var xi = [Double]()
        xi.reserveCapacity(n * d)
        for k in 0..<n { xi += boxPoint(k, interiorSobol, &rng, &unit) }
        var terms = [LossTerm(kind: .interior, points: xi, targets: try source(xi, count: n))]
        // Points per condition: m · (its faces' area) / (all conditions' area), largest remainders first.
        let areas = faceConditions.map { c in c.faces.reduce(0.0) { $0 + faceArea($1.coordinate) } }
        let total = areas.reduce(0, +), shares = areas.map { Double(m) * $0 / total }
        var counts = shares.map { Int($0) }
        let byRemainder = shares.indices.sorted { (shares[$0] - Double(counts[$0]), $1) > (shares[$1] - Double(counts[$1]), $0) }
        for c in byRemainder.prefix(m - counts.reduce(0, +)) { counts[c] += 1 }
        var index = 0
        for (condition, count) in zip(faceConditions, counts) {
            var points = [Double](), normals = [Double]()
            let faceAreas = condition.faces.map { faceArea($0.coordinate) }, faceTotal = faceAreas.reduce(0, +)
            for _ in 0..<count {
                var p = boxPoint(index, boundarySobol, &rng, &unit)
                index += 1
                // A face of the condition with probability proportional to its area.
                var r = Double(rng.next() >> 11) * 0x1.0p-53 * faceTotal, f = 0
                while f < faceAreas.count - 1 && r >= faceAreas[f] { r -= faceAreas[f]; f += 1 }
                let face = condition.faces[f]
                p[face.coordinate] = face.upper ? upper[face.coordinate] : lower[face.coordinate]
                points += p
                normals += condition.direction ?? (0..<d).map { $0 == face.coordinate ? (face.upper ? 1 : -1) : 0 }
            }
            let g = points.withUnsafeBufferPointer { x in (0..<count).map { condition.value(x.baseAddress! + $0 * d) } }
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
