import Testing
import Glibc
@testable import KFACPINN

/// The contents of a text file ("" if it cannot be read).
func readTextFile(_ path: String) -> String {
    guard let f = fopen(path, "r") else { return "" }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n == 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

struct ProblemTests {
    @Test("samplers put points where they belong and are deterministic per seed", arguments: Problem.names)
    func samplers(_ name: String) throws {
        let p = try Problem(name: name)
        guard p.conditions != .faces else { return }   // faceConditions: tested below
        let d = p.dimension, n = 300, m = 200
        // Inverse problems add their fixed observation term to every batch.
        let full = try p.sample(interior: n, boundary: m, seed: 7), observed = p.observations?.count ?? 0
        let batch = try Batch(dimension: d, terms: full.terms.filter { $0.kind != .observation })
        #expect(full.terms.filter { $0.kind == .observation }.map(\.count) == (observed > 0 ? [observed] : []))
        #expect(batch.interiorPoints.count == n * d && batch.boundaryPoints.count == m * d)
        for k in 0..<n {
            for i in 0..<d {
                let x = batch.interiorPoints[k * d + i]
                #expect(x > p.lower[i] && x < p.upper[i], "\(name): interior point \(k) coordinate \(i) = \(x)")
            }
        }
        var initial = 0, faces = 0
        for k in 0..<m {
            let x = Array(batch.boundaryPoints[(k * d)..<((k + 1) * d)])
            let onFace = (0..<d).filter { x[$0] == p.lower[$0] || x[$0] == p.upper[$0] }
            #expect(onFace.count == 1, "\(name): condition point \(k) lies on \(onFace.count) faces")
            if p.conditions != .boundary && onFace == [0] {
                #expect(x[0] == 0)
                initial += 1
            } else {
                faces += 1
                #expect(p.conditions == .boundary || onFace[0] >= 1, "\(name): a spatial face must not be a time face")
            }
        }
        switch p.conditions {
        case .boundary: #expect(faces == m)
        case .initial: #expect(initial == m)
        case .boundaryAndInitial: #expect(initial == m / 2 && faces == m / 2)
        case .faces, .points: break
        }
        // g = u* at the condition points; f at the interior points.
        #expect(batch.boundaryValues == (try p.exact(batch.boundaryPoints, count: m)))
        #expect(batch.source == (try p.source(batch.interiorPoints, count: n)))
        let again = try p.sample(interior: n, boundary: m, seed: 7), other = try p.sample(interior: n, boundary: m, seed: 8)
        #expect(again == full)
        #expect(other.interiorPoints != batch.interiorPoints)
    }

    @Test("face conditions: a term per condition with points on its faces, split by area, outward normals (or the condition's direction), and u* satisfies each condition (central differences for ∂u*/∂n)",
          arguments: ["poisson2d_mixed", "wave1d"])
    func faceConditions(_ name: String) throws {
        let p = try Problem(name: name)
        let d = p.dimension, m = 200, h = 1e-6
        let batch = try p.sample(interior: 50, boundary: m, seed: 9)
        #expect(batch.terms.count == 1 + p.faceConditions.count && batch.terms[0].kind == .interior)
        let areas = p.faceConditions.map { $0.faces.reduce(0.0) { $0 + p.faceArea($1) } }
        let total = areas.reduce(0, +)
        for (condition, (term, area)) in zip(p.faceConditions, zip(batch.terms.dropFirst(), areas)) {
            #expect(abs(Double(term.count) - Double(m) * area / total) < 1, "\(name): \(term.count) points for area \(area)")
            for k in 0..<term.count {
                let x = Array(term.points[(k * d)..<((k + 1) * d)])
                let onFace = (0..<d).filter { x[$0] == p.lower[$0] || x[$0] == p.upper[$0] }
                #expect(onFace.count == 1, "\(name): point \(k) lies on \(onFace.count) faces")
                guard let i = onFace.first, condition.faces.contains(.side(coordinate: i, upper: x[i] == p.upper[i]))
                else { Issue.record("\(name): point \(k) is not on a face of its condition"); continue }
                let u = try p.exact(x, count: 1)[0]
                var residual = u - term.targets[k]
                if term.kind != .dirichlet {
                    let n = Array(term.normals[(k * d)..<((k + 1) * d)])
                    let outward = (0..<d).map { $0 == i ? (x[i] == p.upper[i] ? 1.0 : -1.0) : 0 }
                    #expect(n == (condition.direction ?? outward), "\(name): normal \(n) at point \(k)")
                    let du = (try p.exact(zip(x, n).map { $0 + h * $1 }, count: 1)[0]
                              - (try p.exact(zip(x, n).map { $0 - h * $1 }, count: 1)[0])) / (2 * h)
                    residual = term.kind == .neumann ? du - term.targets[k]
                        : term.robinA[k] * u + term.robinB[k] * du - term.targets[k]
                }
                #expect(abs(residual) < 1e-7, "\(name): \(term.kind) residual of u* \(residual) at point \(k)")
            }
        }
    }

    @Test("KFAC* trains the problems with Neumann, Robin and initial-velocity conditions (500 steps, small network)",
          arguments: ["poisson2d_mixed", "wave1d", "disk_robin"])
    func conditionsTrain(_ name: String) throws {
        let p = try Problem(name: name)
        let net = try MLP(widths: try p.networkWidths(size: "small"), seed: 0)
        var options = KFAC.Options()
        options.stepRule = .automatic
        var training = TrainingOptions()
        training.steps = 500
        training.logEvery = 500
        var last = Double.infinity
        try train(try KFAC(network: net, operator: p.op, options: options), on: p, options: training) { record in
            last = record.l2Error
            return true
        }
        print("\(name): KFAC* L2 error after 500 steps \(last)")
        #expect(last < 5e-3, "\(name): L2 error \(last) after 500 steps")
    }

    /// 𝓛u* − f at interior points by central differences of u* (second differences for 𝒟_C,
    /// first for ∇u*), with the operator's own coefficients; the residual must vanish.
    @Test("each exact solution satisfies its PDE (finite differences of u*)", arguments: Problem.names)
    func exactSolutionsSolveThePDE(_ name: String) throws {
        let p = try Problem(name: name)
        let d = p.dimension, n = 5, h = 1e-4
        let batch = try p.sample(interior: n, boundary: 0, seed: 3)
        var worst = 0.0
        for k in 0..<n {
            let x = Array(batch.interiorPoints[(k * d)..<((k + 1) * d)])
            func u(_ y: [Double]) -> Double { try! p.exact(y, count: 1)[0] }
            let u0 = u(x)
            var grad = [Double](repeating: 0, count: d), second = 0.0
            let c = p.op.coefficients.diagonal!
            for i in 0..<d {
                var xp = x, xm = x
                xp[i] += h; xm[i] -= h
                let (up, um) = (u(xp), u(xm))
                grad[i] = (up - um) / (2 * h)
                second += c[i] * (up - 2 * u0 + um) / (h * h)
            }
            // r = 𝒟_C u + β(x)·∇u + c u + N + κ₀ − f, the operator's definition.
            var r = second + p.op.reaction * u0 + p.op.constant - batch.source[k]
            for i in 0..<d {
                var beta = p.op.drift[i]
                if let b = p.op.driftJacobian { for j in 0..<d { beta += b[i * d + j] * x[j] } }
                r += beta * grad[i]
            }
            if case .negativeGradientNormSquared(let first) = p.op.nonlinearity {
                for i in first..<d { r -= grad[i] * grad[i] }
            }
            let scale = max(1, abs(batch.source[k]), abs(u0))
            worst = max(worst, abs(r) / scale)
        }
        #expect(worst < 1e-5, "\(name): max relative residual of u* \(worst)")
    }

    @Test("condition data: the stated boundary and initial values of experiments.md")
    func conditionData() throws {
        func batch(_ name: String) throws -> (Problem, Batch) {
            let p = try Problem(name: name)
            return (p, try p.sample(interior: 10, boundary: 200, seed: 9))
        }
        // poisson2d_sin: g = 0 on the boundary (sin π · 1 is 1.2e−16 in floating point).
        let (_, b2) = try batch("poisson2d_sin")
        #expect(b2.boundaryValues.allSatisfy { abs($0) < 1e-15 })
        // heat1d: u* = 0 at x = 0, 1 and sin πx at t = 0; heat4d: Σ sin 2x_i at t = 0.
        for name in ["heat1d", "heat4d"] {
            let (p, b) = try batch(name)
            let d = p.dimension
            for k in 0..<200 {
                let x = Array(b.boundaryPoints[(k * d)..<((k + 1) * d)]), g = b.boundaryValues[k]
                if x[0] == 0 {
                    let initial = name == "heat1d" ? sin(.pi * x[1]) : (1...4).reduce(0) { $0 + sin(2 * x[$1]) }
                    #expect(abs(g - initial) < 1e-15)
                } else if name == "heat1d" {
                    #expect(abs(g) < 1e-15)
                }
            }
        }
        // logfp9d: q(0, x) = log N(0, I)(x) = −(9/2) log 2π − ‖x‖²/2.
        let (_, bq) = try batch("logfp9d")
        for k in 0..<200 {
            let x = Array(bq.boundaryPoints[(k * 10)..<((k + 1) * 10)])
            let expected = -4.5 * log(2 * .pi) - x.dropFirst().reduce(0) { $0 + $1 * $1 } / 2
            #expect(abs(bq.boundaryValues[k] - expected) < 1e-12 * max(1, abs(expected)))
        }
    }

    @Test("primitive polynomials: the first ones over GF(2) by degree, 100 of them for 101 dimensions")
    func primitivePolynomials() {
        // x+1; x²+x+1; x³+x+1, x³+x²+1; x⁴+x+1, x⁴+x³+1 (bit s = x^s).
        #expect(Array(SobolSequence.primitivePolynomials(count: 6)) == [0b11, 0b111, 0b1011, 0b1101, 0b10011, 0b11001])
        let many = SobolSequence.primitivePolynomials(count: 100)
        // Primitive polynomials per degree: φ(2^s − 1)/s = 1, 1, 2, 2, 6, 6, 18, 16, 48 (total 100 up to degree 9).
        let degrees = many.map { 63 - $0.leadingZeroBitCount }
        #expect((1...9).map { s in degrees.filter { $0 == s }.count } == [1, 1, 2, 2, 6, 6, 18, 16, 48])
    }

    @Test("Sobol points: every block of 2^k points puts one point in each interval of width 2^−k, per coordinate")
    func sobolStratification() {
        for d in [2, 5, 10, 100] {
            let sobol = SobolSequence(dimension: d, seed: UInt64(d))
            var x = [Double](repeating: 0, count: d), bad = 0
            for k in [4, 7] {
                let n = 1 << k
                var counts = [[Int]](repeating: [Int](repeating: 0, count: n), count: d)
                var pairs = [Int](repeating: 0, count: n)   // coordinates 1, 2 in 2^(k/2) × 2^(k − k/2) boxes
                for i in n..<(2 * n) {
                    sobol.point(i, into: &x)
                    for j in 0..<d {
                        #expect(x[j] > 0 && x[j] < 1)
                        counts[j][Int(x[j] * Double(n))] += 1
                    }
                    let a = k / 2, b = k - a
                    pairs[Int(x[0] * Double(1 << a)) * (1 << b) + Int(x[1] * Double(1 << b))] += 1
                }
                bad += counts.joined().filter { $0 != 1 }.count + pairs.filter { $0 != 1 }.count
            }
            #expect(bad == 0, "dimension \(d): \(bad) intervals without exactly one point")
        }
    }

    @Test("the Sobol sampler keeps the samplers' guarantees and differs from the uniform one")
    func sobolSampler() throws {
        let p = try Problem(name: "heat4d")
        let batch = try p.sample(interior: 128, boundary: 64, seed: 3, sampler: .sobol)
        #expect(batch.interiorPoints.allSatisfy { $0 > 0 && $0 < 1 })
        for k in 0..<64 {
            let x = Array(batch.boundaryPoints[(k * 5)..<((k + 1) * 5)])
            #expect(x.filter { $0 == 0 || $0 == 1 }.count == 1)
        }
        #expect(batch.boundaryValues == (try p.exact(batch.boundaryPoints, count: 64)))
        let again = try p.sample(interior: 128, boundary: 64, seed: 3, sampler: .sobol)
        let uniform = try p.sample(interior: 128, boundary: 64, seed: 3)
        let other = try p.sample(interior: 128, boundary: 64, seed: 4, sampler: .sobol)
        #expect(again.interiorPoints == batch.interiorPoints && uniform.interiorPoints != batch.interiorPoints)
        #expect(other.interiorPoints != batch.interiorPoints)
        // Stratified in time: each of the 128 intervals of t holds one interior point.
        var counts = [Int](repeating: 0, count: 128)
        for k in 0..<128 { counts[Int(batch.interiorPoints[k * 5] * 128)] += 1 }
        #expect(counts.allSatisfy { $0 == 1 })
    }

    @Test("the errors are the RMS and relative L2 differences on the evaluation points")
    func errors() throws {
        let p = try Problem(name: "poisson2d_sin")
        let net = try MLP(widths: try p.networkWidths(size: "small"), seed: 1)
        let set = try p.evaluationSet(count: 500, seed: 4)
        let u = try net.evaluate(set.points, count: 500)
        let sq = zip(u, set.exact).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
        let e = try p.errors(net, count: 500, seed: 4)
        #expect(abs(e.l2 - (sq / 500).squareRoot()) < 1e-15)
        #expect(abs(e.relativeL2 - (sq / set.exact.map { $0 * $0 }.reduce(0, +)).squareRoot()) < 1e-15)
        #expect(throws: KFPError.self) { try Problem(name: "poisson3d") }
        #expect(throws: KFPError.self) { try p.networkWidths(size: "huge") }
        #expect(throws: KFPError.self) { try p.errors(try MLP(widths: [3, 4, 1]), count: 10, seed: 1) }
    }

    @Test("every problem trains end to end for a few KFAC steps (small sizes, fixed batch) and logs the documented columns",
          arguments: Problem.names)
    func trainsEndToEnd(_ name: String) throws {
        let p = try Problem(name: name)
        let hidden = p.dimension > 20 ? [16, 16] : [16]
        let net = try MLP(widths: [p.dimension] + hidden + [1], seed: 2)
        let kfac = try KFAC(network: net, operator: p.op)
        var training = TrainingOptions()
        training.steps = 6
        training.interior = 40
        training.boundary = 20
        training.logEvery = 3
        let path = "/tmp/kfacpinn-train-\(name)-\(getpid()).csv"
        training.csvPath = path
        var seen: [Int] = []
        let log = try train(kfac, on: p, options: training) { seen.append($0.step); return true }
        #expect(seen == [0, 1, 3, 6] && log.map(\.step) == seen)
        #expect(log.allSatisfy { $0.loss.isFinite && $0.l2Error.isFinite && $0.relativeL2Error.isFinite })
        #expect(log.last!.loss < log.first!.loss, "\(name): loss \(log.first!.loss) → \(log.last!.loss)")
        let text = readTextFile(path)
        unlink(path)
        let lines = text.split(separator: "\n")
        // Inverse problems log their trainable coefficients after the fixed columns.
        let coefficients = p.op.trainable.entries.map { ",coef_\($0.name)" }.joined()
        #expect(lines.first.map(String.init) == "step,seconds,loss,loss_interior,loss_boundary,l2_error,relative_l2_error,step_size" + coefficients)
        #expect(lines.count == 5 && lines[4].split(separator: ",").count == 8 + p.op.trainable.count)
    }

    @Test("training stops on the callback's request and on the time budget; bad options are refused")
    func stopping() throws {
        let p = try Problem(name: "heat1d")
        let net = try MLP(widths: [2, 8, 1], seed: 3)
        let opt = try Adam(network: net, operator: p.op)
        var training = TrainingOptions()
        training.steps = 1000
        training.logEvery = 5
        training.interior = 30
        training.boundary = 10
        let log = try train(opt, on: p, options: training) { $0.step < 10 }
        #expect(log.last!.step == 10)
        training.steps = 100_000_000
        training.seconds = 0.05
        let timed = try train(opt, on: p, options: training)
        #expect(timed.last!.step < training.steps && timed.last!.seconds >= 0.05 && timed.last!.seconds < 1)
        for bad in [{ (o: inout TrainingOptions) in o.steps = 0 }, { $0.logEvery = 0 }, { $0.seconds = -1 },
                    { $0.resampleEvery = -1 }, { $0.csvPath = "/nonexistent/dir/log.csv" }] {
            var o = training
            bad(&o)
            #expect(throws: KFPError.self) { try train(opt, on: p, options: o) }
        }
    }

    @Test("training is deterministic for fixed seeds")
    func deterministic() throws {
        func run() throws -> [Double] {
            let p = try Problem(name: "poisson5d_cos")
            let net = try MLP(widths: [5, 8, 1], seed: 4)
            var training = TrainingOptions()
            training.steps = 8
            training.interior = 50
            training.boundary = 20
            training.resampleEvery = 1
            _ = try train(try KFAC(network: net, operator: p.op), on: p, options: training)
            return net.parameters
        }
        #expect(try run() == run())
    }
}

struct CustomProblemTests {
    static let poisson = try! Operator.poisson(dimension: 2)

    @Test("a ball's condition points lie on its sphere with normals (x − c)/r; interior points inside; sizes and 'all' resolve")
    func ballSampling() throws {
        let center = [0.5, -1.0], r = 2.0
        let p = try Problem(custom: "disk", operator: Self.poisson, ball: (center, r), source: .constant(1),
                            conditions: [ConditionSpec(faces: "all", kind: .robin(a: 1, b: 2), value: .constant(0))],
                            interior: 100, boundary: 40)
        #expect(p.faceConditions.map(\.faces) == [[.sphere]])
        for sampler in [Problem.Sampler.uniform, .sobol] {
            let batch = try p.sample(interior: 100, boundary: 40, seed: 4, sampler: sampler)
            let robin = batch.terms[1]
            #expect(robin.kind == .robin && robin.count == 40 && robin.robinB.allSatisfy { $0 == 2 })
            for k in 0..<40 {
                let x = [robin.points[2 * k] - center[0], robin.points[2 * k + 1] - center[1]]
                let norm = (x[0] * x[0] + x[1] * x[1]).squareRoot()
                #expect(abs(norm - r) < 1e-14, "point \(k) at distance \(norm)")
                #expect(abs(robin.normals[2 * k] - x[0] / r) < 1e-14 && abs(robin.normals[2 * k + 1] - x[1] / r) < 1e-14)
            }
            for k in 0..<100 {
                let dx = batch.terms[0].points[2 * k] - center[0], dy = batch.terms[0].points[2 * k + 1] - center[1]
                #expect(dx * dx + dy * dy < r * r, "interior point \(k) outside the ball")
            }
        }
    }

    @Test("a box problem's conditions: 'all' takes the faces no other condition names; errors name the face")
    func boxConditions() throws {
        func make(_ specs: [ConditionSpec], op: Operator = Self.poisson, box: ([Double], [Double]) = ([0, 0], [1, 2])) throws -> Problem {
            try Problem(custom: "box", operator: op, box: box, source: .constant(0), conditions: specs)
        }
        let p = try make([ConditionSpec(faces: "x1+", kind: .neumann, value: .constant(0)),
                          ConditionSpec(faces: "all", kind: .dirichlet, value: .constant(0))])
        #expect(p.faceConditions[1].faces == [.side(coordinate: 0, upper: false), .side(coordinate: 0, upper: true),
                                              .side(coordinate: 1, upper: false)])
        // Areas: x1+ has length 1, the three others 2 + 2 + 1 = 5: 200 points split 33 / 167.
        let batch = try p.sample(interior: 10, boundary: 200, seed: 1)
        #expect(batch.terms[1].count == 33 && batch.terms[2].count == 167)
        #expect(throws: KFPError.invalidArgument("unknown face 'x2+' (this domain's faces: x0-, x0+, x1-, x1+, all)")) {
            try make([ConditionSpec(faces: "x2+", kind: .dirichlet, value: .constant(0))])
        }
        #expect(throws: KFPError.invalidArgument("face 'x0-' is given two conditions")) {
            try make([ConditionSpec(faces: "x0-", kind: .dirichlet, value: .constant(0)),
                      ConditionSpec(faces: "x0-,x1-", kind: .neumann, value: .constant(0))])
        }
        #expect(throws: KFPError.invalidArgument("the Robin condition on 'x0-' has a = b = 0")) {
            try make([ConditionSpec(faces: "x0-", kind: .robin(a: 0, b: 0), value: .constant(0))])
        }
        #expect(throws: KFPError.dimensionMismatch("the box has 3 lower and 3 upper bounds, the operator is 2-dimensional")) {
            try make([], box: ([0, 0, 0], [1, 1, 1]))
        }
        // A count fixes a condition's points; the others share the rest by area.
        let counted = try p.withConditionPoints(0, 50)
        #expect(try counted.sample(interior: 10, boundary: 200, seed: 1).terms.map(\.count) == [10, 50, 150])
        #expect(throws: KFPError.self) { try counted.sample(interior: 10, boundary: 20, seed: 1) }
        #expect(throws: KFPError.self) { try p.withConditionPoints(2, 5) }
        // An initial velocity (a fixed direction) may share the face of the initial value.
        let wave = try make([ConditionSpec(faces: "x0-", kind: .dirichlet, value: .constant(0)),
                             ConditionSpec(faces: "x0-", kind: .neumann, direction: [1, 0], value: .constant(0))])
        #expect(wave.faceConditions.count == 2)
        #expect(throws: KFPError.self) { try Problem(name: "poisson2d_sin").adding(faces: "x0-", kind: .dirichlet, direction: nil, value: .constant(0)) }
    }

    @Test("a problem on points returns its batch for every sample and evaluates its errors on the batch's interior points")
    func pointSet() throws {
        let batch = try smallBatch(2, interior: 30, boundary: 10, seed: 3)
        let p = try Problem(custom: "points", operator: Self.poisson, points: batch, exact: PointFunction { x in x[0] * x[1] })
        #expect(try p.sample(interior: 5, boundary: 1, seed: 9) == batch && p.defaultInterior == 30 && p.defaultBoundary == 10)
        let set = try p.evaluationSet(count: 300, seed: 1)
        #expect(set.points == batch.interiorPoints && set.exact.count == 30)
        #expect(throws: KFPError.invalidArgument("a problem on points has no source function: its batch carries the values")) {
            try p.source([0.5, 0.5], count: 1)
        }
        #expect(throws: KFPError.self) { try p.adding(faces: "all", kind: .dirichlet, direction: nil, value: .constant(0)) }
        #expect(throws: KFPError.self) { try Problem(custom: "points", operator: try Operator.poisson(dimension: 3), points: batch) }
    }

    @Test("a callback's NaN is an error naming the function and the point; a problem without exact solution trains and logs NaN errors")
    func callbacks() throws {
        let p = try Problem(custom: "nan", operator: Self.poisson, box: ([0, 0], [1, 1]),
                            source: PointFunction { x in x[0] > 0.5 ? .nan : 1 },
                            conditions: [ConditionSpec(faces: "all", kind: .dirichlet, value: .constant(0))])
        #expect(throws: KFPError.self) { try p.sample(interior: 50, boundary: 10, seed: 0) }
        do { _ = try p.sample(interior: 50, boundary: 10, seed: 0) } catch let KFPError.nonFinite(message) {
            #expect(message.hasPrefix("the source f is nan at point"), "\(message)")
        }
        let q = try Problem(custom: "plain", operator: Self.poisson, box: ([0, 0], [1, 1]), source: .constant(1),
                            conditions: [ConditionSpec(faces: "all", kind: .dirichlet, value: .constant(0))])
        let net = try MLP(widths: [2, 6, 1], seed: 1)
        var options = TrainingOptions()
        options.steps = 5
        let records = try train(try KFAC(network: net, operator: Self.poisson), on: q, options: options)
        #expect(records.count >= 2 && records.allSatisfy { $0.l2Error.isNaN } && records.last!.loss < records.first!.loss)
    }
}
