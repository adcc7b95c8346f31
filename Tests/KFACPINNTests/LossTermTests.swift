import Testing
@testable import KFACPINN

/// Unit vectors, one per point, row-major count × d.
private func unitVectors(_ count: Int, _ d: Int, seed: UInt64) -> [Double] {
    let v = randomPoints(count, d, seed: seed)
    return (0..<count).flatMap { k -> [Double] in
        let row = Array(v[(k * d)..<(k * d + d)]), norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return row.map { $0 / norm }
    }
}

/// A batch of six weighted terms of different sizes: two interior terms, a Dirichlet, an
/// observation, a Neumann and a Robin term.
private func weightedBatch(seed: UInt64) throws -> Batch {
    var rng = RandomSource(seed: seed)
    func term(_ kind: LossTermKind, _ n: Int, _ weight: Double, _ s: UInt64) -> LossTerm {
        LossTerm(kind: kind, points: randomPoints(n, 2, seed: s), targets: (0..<n).map { _ in rng.uniform(-1, 1) }, weight: weight,
                 normals: kind.hasNormals ? unitVectors(n, 2, seed: s + 100) : [],
                 robinA: kind == .robin ? (0..<n).map { _ in rng.uniform(0.5, 2) } : [],
                 robinB: kind == .robin ? (0..<n).map { _ in rng.uniform(-1, 1) } : [])
    }
    return try Batch(dimension: 2, terms: [term(.interior, 5, 2, seed), term(.dirichlet, 3, 0.5, seed + 1),
                                           term(.interior, 4, 1, seed + 2), term(.observation, 2, 3, seed + 3),
                                           term(.neumann, 3, 1.5, seed + 4), term(.robin, 4, 0.7, seed + 5)])
}

/// Each term's residuals at the network's parameters, from the operator and the network directly.
private func termResiduals(_ net: MLP, _ op: Operator, _ batch: Batch) throws -> [[Double]] {
    try batch.terms.map { t in
        switch t.kind {
        case .interior: return try op.residual(network: net, points: t.points, count: t.count, source: t.targets)
        case .dirichlet, .observation: return zip(try net.evaluate(t.points, count: t.count), t.targets).map { $0 - $1 }
        case .neumann, .robin:
            // ∂u/∂n = nᵀ∇u with ∇u from a Taylor-mode pass (not the directional pass under test).
            let (u, gradient, _) = try net.derivatives(t.points, count: t.count)
            return (0..<t.count).map { k in
                let dn = (0..<2).reduce(0.0) { $0 + t.normals[k * 2 + $1] * gradient[k * 2 + $1] }
                return t.kind == .robin ? t.robinA[k] * u[k] + t.robinB[k] * dn - t.targets[k] : dn - t.targets[k]
            }
        }
    }
}

/// Σ_t w_t/(2N_t) Σ_n r_{t,n}², independently of PINNLoss.
private func referenceLoss(_ net: MLP, _ op: Operator, _ batch: Batch) throws -> Double {
    zip(batch.terms, try termResiduals(net, op, batch)).reduce(0) { sum, pair in
        sum + pair.0.weight / (2 * Double(pair.0.count)) * pair.1.reduce(0) { $0 + $1 * $1 }
    }
}

/// Per term, the dense Jacobian (N_t × D) of its residuals by central differences.
private func termJacobians(_ net: MLP, _ op: Operator, _ batch: Batch, h: Double = 1e-6) throws -> [[Double]] {
    let theta = net.parameters, D = theta.count
    var jacobians = batch.terms.map { [Double](repeating: 0, count: $0.count * D) }
    for p in 0..<D {
        var t = theta
        t[p] += h; try net.setParameters(t)
        let plus = try termResiduals(net, op, batch)
        t[p] -= 2 * h; try net.setParameters(t)
        let minus = try termResiduals(net, op, batch)
        for k in jacobians.indices { for n in 0..<batch.terms[k].count { jacobians[k][n * D + p] = (plus[k][n] - minus[k][n]) / (2 * h) } }
    }
    try net.setParameters(theta)
    return jacobians
}

struct LossTermTests {
    @Test("a batch of weighted interior, Dirichlet, observation, Neumann and Robin terms: loss, gradient (central differences) and G v (dense Jacobians)")
    func weightedTerms() throws {
        let net = try MLP(widths: [2, 6, 5, 1], seed: 21), op = try Operator.poisson(dimension: 2)
        let batch = try weightedBatch(seed: 30), loss = try PINNLoss(network: net, operator: op)
        let value = try loss.loss(batch), reference = try referenceLoss(net, op, batch)
        #expect(abs(value.total - reference) <= 1e-14 * reference, "loss \(value.total), reference \(reference)")
        let residuals = try termResiduals(net, op, batch)
        let interior = 2.0 / 10 * residuals[0].reduce(0) { $0 + $1 * $1 } + 1.0 / 8 * residuals[2].reduce(0) { $0 + $1 * $1 }
        #expect(abs(value.boundary - (reference - interior)) <= 1e-13 * reference, "condition part \(value.boundary)")
        #expect(abs(value.interior - interior) <= 1e-14 * interior, "interior part \(value.interior), reference \(interior)")

        // ∇L against central differences of the reference loss.
        let theta = net.parameters, gradient = try loss.lossAndGradient(batch).gradient
        var fd = [Double](repeating: 0, count: theta.count)
        for p in theta.indices {
            var t = theta
            t[p] += 1e-6; try net.setParameters(t)
            let plus = try referenceLoss(net, op, batch)
            t[p] -= 2e-6; try net.setParameters(t)
            fd[p] = (plus - (try referenceLoss(net, op, batch))) / 2e-6
        }
        try net.setParameters(theta)
        let gradientDifference = maxRelativeDifference(gradient, fd)
        #expect(gradientDifference < 1e-7, "gradient against central differences: \(gradientDifference)")

        // G v = Σ_t w_t/N_t J_tᵀ J_t v from the dense Jacobians.
        var rng = RandomSource(seed: 4)
        let v = theta.map { _ in rng.uniform(-1, 1) }, D = theta.count
        var dense = [Double](repeating: 0, count: D)
        for (t, J) in zip(batch.terms, try termJacobians(net, op, batch)) {
            for n in 0..<t.count {
                let jv = (0..<D).reduce(0.0) { $0 + J[n * D + $1] * v[$1] }
                for p in 0..<D { dense[p] += t.weight / Double(t.count) * J[n * D + p] * jv }
            }
        }
        let gv = try loss.ggnVectorProduct(batch, v)
        #expect(maxRelativeDifference(gv, dense) < 1e-7, "G v against dense: \(maxRelativeDifference(gv, dense))")
    }

    @Test("merged factors: product 2 of weighted Dirichlet, observation, Neumann and Robin terms is A = Σ w_t A_t / Σ w_t, B = Σ w_t B_t of the terms' own factors; one weighted point gives A ⊗ B = the exact GGN block")
    func mergedFactors() throws {
        let net = try MLP(widths: [2, 5, 4, 1], seed: 8), op = try Operator.poisson(dimension: 2)
        let batch = try weightedBatch(seed: 40), loss = try PINNLoss(network: net, operator: op)
        let merged = try loss.kroneckerFactors(batch)
        // Each term's own factors (1/(N S) Σ z̃z̃ᵀ, 1/N Σ g gᵀ) from its pass.
        let own = try batch.terms.indices.map { try factors(loss.terms[$0].pass) }
        let w = batch.terms.map(\.weight)
        for l in 0..<net.numLayers {
            for (product, members) in [[0, 2], [1, 3, 4, 5]].enumerated() {
                let total = members.reduce(0) { $0 + w[$1] }
                let a = own[0][l].a.indices.map { e in members.reduce(0.0) { $0 + w[$1] * own[$1][l].a[e] } / total }
                let b = own[0][l].b.indices.map { e in members.reduce(0.0) { $0 + w[$1] * own[$1][l].b[e] } }
                let got = product == 0 ? (merged[l].interiorA, merged[l].interiorB) : (merged[l].boundaryA, merged[l].boundaryB)
                #expect(maxRelativeDifference(got.0, a) < 1e-13 && maxRelativeDifference(got.1, b) < 1e-13,
                        "layer \(l), product \(product + 1): A \(maxRelativeDifference(got.0, a)), B \(maxRelativeDifference(got.1, b))")
            }
        }
        // One Dirichlet point of weight 3: A ⊗ B = 3 JᵀJ of that point (the exact GGN block).
        let single = try Batch(dimension: 2, terms: [
            LossTerm(kind: .interior, points: [0.1, 0.2, -0.3, 0.4], targets: [1, 2]),
            LossTerm(kind: .dirichlet, points: [0.5, -0.7], targets: [0.3], weight: 3)])
        let f = try loss.kroneckerFactors(single)
        let J = try termJacobians(net, op, single)[1]
        for l in 0..<net.numLayers {
            let h1 = net.widths[l] + 1, ho = net.widths[l + 1], block = kron(f[l].boundaryB, ho, f[l].boundaryA, h1)
            var worst = 0.0
            for j in 0..<ho { for i in 0..<h1 { for jj in 0..<ho { for ii in 0..<h1 {
                let exact = 3 * J[thetaIndex(net, layer: l, row: j, column: i)] * J[thetaIndex(net, layer: l, row: jj, column: ii)]
                worst = max(worst, abs(block[(j * h1 + i) * (ho * h1) + jj * h1 + ii] - exact))
            } } } }
            #expect(worst < 1e-8, "layer \(l): max difference to 3 JᵀJ \(worst)")
        }
    }

    @Test("bad terms are refused with the term named: a negative weight, points of the wrong shape, a NaN target, no interior point")
    func badTerms() throws {
        #expect(throws: KFPError.invalidArgument("term 1 (dirichlet): the weight must be finite and non-negative, got -1.0")) {
            try Batch(dimension: 2, terms: [LossTerm(kind: .interior, points: [0, 0], targets: [1]),
                                            LossTerm(kind: .dirichlet, points: [0, 0], targets: [1], weight: -1)])
        }
        #expect(throws: KFPError.dimensionMismatch("term 0 (interior): 3 point values for 1 points of dimension 2")) {
            try Batch(dimension: 2, terms: [LossTerm(kind: .interior, points: [0, 0, 0], targets: [1])])
        }
        #expect(throws: KFPError.self) {
            try Batch(dimension: 2, terms: [LossTerm(kind: .interior, points: [0, 0], targets: [.nan])])
        }
        let noInterior = try Batch(dimension: 2, terms: [LossTerm(kind: .dirichlet, points: [0, 0], targets: [1])])
        let loss = try PINNLoss(network: try MLP(widths: [2, 3, 1], seed: 1), operator: try Operator.poisson(dimension: 2))
        #expect(throws: KFPError.invalidArgument("the batch has no interior point: a PINN loss needs an interior term with points")) {
            try loss.loss(noInterior)
        }
    }

    @Test("KFAC and KFAC* train on a batch of weighted terms (the loss falls)")
    func kfacTrainsWeightedTerms() throws {
        for rule in ["line_search", "auto"] {
            let net = try MLP(widths: [2, 8, 1], seed: 3), op = try Operator.poisson(dimension: 2)
            let kfac = try KFAC(network: net, operator: op)
            try kfac.setOption(.stepRule, .string(rule))
            let batch = try weightedBatch(seed: 50)
            let first = try kfac.step(batch).loss
            var last = first
            for _ in 0..<20 { last = try kfac.step(batch).loss }
            #expect(last < 0.8 * first, "\(rule): loss \(first) → \(last)")
        }
    }
}

struct DirectionalPassTests {
    @Test("the directional column ∂u/∂n of a directional pass equals central differences of u along n, for every activation; S = 2 and the A factor's bias–bias entry is 1/2",
          arguments: Activation.allCases)
    func directionalColumn(activation: Activation) throws {
        let net = try MLP(widths: [3, 7, 5, 1], activation: activation, seed: 6)
        let n = 6, x = randomPoints(n, 3, seed: 2), normals = unitVectors(n, 3, seed: 3)
        let pass = TaylorPass(network: net)
        try pass.forward(x, count: n, mode: .directional(normals))
        #expect(pass.columnsPerSample == 2)
        let h = 1e-5
        for k in 0..<n {
            let xk = Array(x[(3 * k)..<(3 * k + 3)]), nk = Array(normals[(3 * k)..<(3 * k + 3)])
            let up = try value(net, zip(xk, nk).map { $0 + h * $1 }), down = try value(net, zip(xk, nk).map { $0 - h * $1 })
            let fd = (up - down) / (2 * h)
            #expect(abs(pass.output[n + k] - fd) < 1e-8 * max(1, abs(fd)), "\(activation) point \(k): \(pass.output[n + k]) against \(fd)")
            #expect(abs(pass.output[k] - (try value(net, xk))) < 1e-14, "value of point \(k)")
        }
        try pass.backward(seeds: [Double](repeating: 1, count: 2 * n))
        let f = try factors(pass)
        let h1 = net.widths[1] + 1
        #expect(abs(f[1].a[h1 * h1 - 1] - 0.5) < 1e-15, "bias–bias entry \(f[1].a[h1 * h1 - 1])")
    }

    @Test("Neumann and Robin terms: bad normals, missing normals and a = b = 0 are refused with the term and point named")
    func badConditions() throws {
        func neumann(_ normals: [Double]) -> LossTerm { LossTerm(kind: .neumann, points: [0, 0, 1, 1], targets: [0, 0], normals: normals) }
        let interior = LossTerm(kind: .interior, points: [0.5, 0.5], targets: [1])
        #expect(throws: KFPError.invalidArgument("term 1 (neumann): the normal of point 1 has length 2.0, not 1")) {
            try Batch(dimension: 2, terms: [interior, neumann([1, 0, 0, 2])])
        }
        #expect(throws: KFPError.dimensionMismatch("term 1 (neumann): 0 normal values for 2 points of dimension 2 (a unit vector per point is required)")) {
            try Batch(dimension: 2, terms: [interior, neumann([])])
        }
        let robin = LossTerm(kind: .robin, points: [0, 0, 1, 1], targets: [0, 0], normals: [1, 0, 0, 1], robinA: [1, 0], robinB: [0, 0])
        #expect(throws: KFPError.self) { try Batch(dimension: 2, terms: [interior, robin]) }
        #expect(throws: KFPError.invalidArgument("term 1 (dirichlet): a dirichlet term takes no normals")) {
            try Batch(dimension: 2, terms: [interior, LossTerm(kind: .dirichlet, points: [0, 0], targets: [0], normals: [1, 0])])
        }
    }

    @Test("every optimizer lowers a loss with Neumann and Robin terms",
          arguments: ["kfac", "kfac*", "sgd", "adam", "lbfgs", "engd", "engd-woodbury", "hessian-free"])
    func optimizersTrainConditions(name: String) throws {
        let net = try MLP(widths: [2, 8, 1], seed: 3), op = try Operator.poisson(dimension: 2)
        let opt: any Optimizer
        switch name {
        case "kfac", "kfac*":
            let k = try KFAC(network: net, operator: op)
            if name == "kfac*" { try k.setOption(.stepRule, .string("auto")) }
            opt = k
        case "sgd":
            opt = try SGD(network: net, operator: op)
            try opt.setOption(.learningRate, .double(1e-2))
        case "adam":
            opt = try Adam(network: net, operator: op)
            try opt.setOption(.learningRate, .double(1e-2))
        case "lbfgs": opt = try LBFGS(network: net, operator: op)
        case "engd": opt = try ENGD(network: net, operator: op)
        case "engd-woodbury":
            opt = try ENGD(network: net, operator: op)
            try opt.setOption(.variant, .string("woodbury"))
        default: opt = try HessianFree(network: net, operator: op)
        }
        let batch = try weightedBatch(seed: 60)
        let first = try opt.step(batch).loss
        var last = first
        for _ in 0..<15 { last = try opt.step(batch).loss }
        #expect(last < first, "\(name): loss \(first) → \(last)")
    }
}
