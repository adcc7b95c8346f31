import Testing
@testable import KFACPINN

// MARK: - Independent reference computations

/// Solves the dense system M x = b (n × n, row-major) by Gaussian elimination with partial pivoting.
func denseSolve(_ matrix: [Double], _ rhs: [Double]) -> [Double] {
    let n = rhs.count
    var a = matrix, b = rhs
    for col in 0..<n {
        var pivot = col
        for r in (col + 1)..<max(col + 1, n) where abs(a[r * n + col]) > abs(a[pivot * n + col]) { pivot = r }
        if pivot != col {
            for c in 0..<n { a.swapAt(col * n + c, pivot * n + c) }
            b.swapAt(col, pivot)
        }
        for r in (col + 1)..<max(col + 1, n) {
            let f = a[r * n + col] / a[col * n + col]
            if f == 0 { continue }
            for c in col..<n { a[r * n + c] -= f * a[col * n + c] }
            b[r] -= f * b[col]
        }
    }
    var x = [Double](repeating: 0, count: n)
    for r in stride(from: n - 1, through: 0, by: -1) {
        var s = b[r]
        for c in (r + 1)..<max(r + 1, n) { s -= a[r * n + c] * x[c] }
        x[r] = s / a[r * n + r]
    }
    return x
}

/// B ⊗ A (row-major flattening of X: index j·cols + i), n = rows·cols.
func kron(_ b: [Double], _ rows: Int, _ a: [Double], _ cols: Int) -> [Double] {
    let n = rows * cols
    var k = [Double](repeating: 0, count: n * n)
    for j in 0..<rows { for jj in 0..<rows { for i in 0..<cols { for ii in 0..<cols {
        k[(j * cols + i) * n + jj * cols + ii] = b[j * rows + jj] * a[i * cols + ii]
    } } } }
    return k
}

/// Index in θ of entry (j, i) of layer l's W̃ = [W b] (i = h_in is the bias).
func thetaIndex(_ net: MLP, layer l: Int, row j: Int, column i: Int) -> Int {
    let hin = net.widths[l]
    return i < hin ? net.weightOffset(l) + j * hin + i : net.biasOffset(l) + j
}

/// Dense Jacobians of the interior residuals (N × D) and condition residuals (M × D) by central differences.
func denseJacobians(_ net: MLP, _ op: Operator, _ batch: Batch, h: Double = 1e-6) throws -> (interior: [Double], boundary: [Double]) {
    let theta = net.parameters, D = theta.count, n = batch.interiorCount, m = batch.boundaryCount
    var ji = [Double](repeating: 0, count: n * D), jb = [Double](repeating: 0, count: m * D)
    func residuals() throws -> ([Double], [Double]) {
        let r = try op.residual(network: net, points: batch.interiorPoints, count: n, source: batch.source)
        let u = m > 0 ? try net.evaluate(batch.boundaryPoints, count: m) : []
        return (r, zip(u, batch.boundaryValues).map { $0 - $1 })
    }
    for p in 0..<D {
        var t = theta
        t[p] += h; try net.setParameters(t)
        let (rp, bp) = try residuals()
        t[p] -= 2 * h; try net.setParameters(t)
        let (rm, bm) = try residuals()
        for k in 0..<n { ji[k * D + p] = (rp[k] - rm[k]) / (2 * h) }
        for k in 0..<m { jb[k * D + p] = (bp[k] - bm[k]) / (2 * h) }
    }
    try net.setParameters(theta)
    return (ji, jb)
}

/// Batch factors of every layer of a pass.
func factors(_ pass: TaylorPass, _ approximation: KroneckerApproximation = .expand) throws -> [(a: [Double], b: [Double])] {
    try (0..<pass.network.numLayers).map { try pass.kroneckerFactors(layer: $0, approximation: approximation) }
}

// MARK: - Tests

struct CurvatureTests {
    @Test("one condition point: A_∂ ⊗ B_∂ equals the exact GGN block from the dense Jacobian")
    func boundaryFactorsOneSample() throws {
        let net = try MLP(widths: [2, 5, 4, 1], seed: 3)
        let op = try Operator.poisson(dimension: 2)
        let batch = try smallBatch(2, interior: 3, boundary: 1, seed: 5)
        let loss = try PINNLoss(network: net, operator: op)
        try loss.forward(batch)
        var g = [Double](repeating: 0, count: net.numParameters)
        try g.withUnsafeMutableBufferPointer { try loss.gradientKeepingJacobianAdjoints(into: $0.baseAddress!) }
        let f = try factors(loss.terms[1].pass)
        let jb = try denseJacobians(net, op, batch).boundary
        for l in 0..<net.numLayers {
            let h1 = net.widths[l] + 1, ho = net.widths[l + 1]
            let block = kron(f[l].b, ho, f[l].a, h1)
            var worst = 0.0
            for j in 0..<ho { for i in 0..<h1 { for jj in 0..<ho { for ii in 0..<h1 {
                let exact = jb[thetaIndex(net, layer: l, row: j, column: i)] * jb[thetaIndex(net, layer: l, row: jj, column: ii)]
                worst = max(worst, abs(block[(j * h1 + i) * (ho * h1) + jj * h1 + ii] - exact))
            } } } }
            #expect(worst < 1e-8, "layer \(l): max difference to the exact GGN block \(worst)")
            #expect(abs(f[l].a[h1 * h1 - 1] - 1) < 1e-15, "boundary bias–bias entry of A is \(f[l].a[h1 * h1 - 1])")
        }
        #expect(f[net.numLayers - 1].b == [1])
    }

    @Test("sanity values: interior bias–bias of A is 1/S, the last layer's B_Ω is [[1]] for the Laplacian")
    func sanityValues() throws {
        let net = try MLP(widths: [2, 6, 5, 1], seed: 1)
        let loss = try PINNLoss(network: net, operator: try Operator.poisson(dimension: 2))
        let batch = try smallBatch(2, interior: 7, boundary: 3, seed: 2)
        try loss.forward(batch)
        var g = [Double](repeating: 0, count: net.numParameters)
        try g.withUnsafeMutableBufferPointer { try loss.gradientKeepingJacobianAdjoints(into: $0.baseAddress!) }
        let f = try factors(loss.terms[0].pass)
        for l in 0..<net.numLayers {
            let h1 = net.widths[l] + 1
            #expect(abs(f[l].a[h1 * h1 - 1] - 0.25) < 1e-15, "layer \(l): \(f[l].a[h1 * h1 - 1])")
        }
        #expect(abs(f[net.numLayers - 1].b[0] - 1) < 1e-14, "B_Ω of the last layer is \(f[net.numLayers - 1].b)")
    }

    @Test("interior factors equal the expand/reduce formulas evaluated sample by sample",
          arguments: ["poisson", "log_fokker_planck"])
    func interiorFactorsBruteForce(_ name: String) throws {
        let op = name == "poisson" ? try Operator.poisson(dimension: 3) : try Operator.logFokkerPlanck(spaceDimension: 2)
        let d = 3, s = d + 2, n = 4
        let net = try MLP(widths: [d, 5, 4, 1], seed: 8)
        let batch = try smallBatch(d, interior: n, boundary: 2, seed: 4)
        let loss = try PINNLoss(network: net, operator: op)
        try loss.forward(batch)
        var grad = [Double](repeating: 0, count: net.numParameters)
        try grad.withUnsafeMutableBufferPointer { try loss.gradientKeepingJacobianAdjoints(into: $0.baseAddress!) }
        let expand = try factors(loss.terms[0].pass, .expand), reduce = try factors(loss.terms[0].pass, .reduce)
        let jac = try denseJacobians(net, op, batch).interior
        let D = net.numParameters
        for l in 0..<net.numLayers {
            let hin = net.widths[l], h1 = hin + 1, ho = net.widths[l + 1]
            var aE = [Double](repeating: 0, count: h1 * h1), bE = [Double](repeating: 0, count: ho * ho)
            var aR = aE, bR = bE
            for k in 0..<n {
                // One sample alone: its Taylor columns Z̃ (h_in+1 × S) and adjoints g (h_out × S).
                let x = Array(batch.interiorPoints[(k * d)..<((k + 1) * d)])
                let single = TaylorPass(network: net)
                try single.forward(x, count: 1, mode: .taylor(op.coefficients))
                var r = [0.0], seeds = [Double](repeating: 0, count: s)
                x.withUnsafeBufferPointer { xp in
                    [batch.source[k]].withUnsafeBufferPointer { fp in
                        op.residuals(output: single.output, points: xp.baseAddress!, source: fp.baseAddress!, count: 1, columnsPerSample: s,
                                     gradientColumns: d, values: op.coefficientValues(), residuals: &r, seeds: &seeds)
                    }
                }
                try seeds.withUnsafeBufferPointer { try single.backward(seeds: $0.baseAddress!) }
                var z = [Double](repeating: 0, count: h1 * s)
                for c in 0..<s {
                    if l == 0 {
                        for i in 0..<d { z[i * s + c] = c == 0 ? x[i] : (c == 1 + i ? 1 : 0) }
                    } else {
                        for i in 0..<hin { z[i * s + c] = single.post[l - 1].pointer[i * s + c] }
                    }
                    z[hin * s + c] = c == 0 ? 1 : 0
                }
                let g = single.adjoints[l].pointer
                // Per-sample Jacobian Σ_s g_s z̃_sᵀ equals ∂r_n/∂W̃ from finite differences.
                for j in 0..<ho { for i in 0..<h1 {
                    var sum = 0.0
                    for c in 0..<s { sum += g[j * s + c] * z[i * s + c] }
                    let fd = jac[k * D + thetaIndex(net, layer: l, row: j, column: i)]
                    #expect(abs(sum - fd) < 1e-7, "layer \(l) sample \(k) (\(j), \(i)): \(sum) vs \(fd)")
                } }
                for i in 0..<h1 { for ii in 0..<h1 {
                    var e = 0.0, zi = 0.0, zii = 0.0
                    for c in 0..<s { e += z[i * s + c] * z[ii * s + c]; zi += z[i * s + c]; zii += z[ii * s + c] }
                    aE[i * h1 + ii] += e / Double(n * s)
                    aR[i * h1 + ii] += (zi / Double(s)) * (zii / Double(s)) / Double(n)
                } }
                for j in 0..<ho { for jj in 0..<ho {
                    var e = 0.0, gj = 0.0, gjj = 0.0
                    for c in 0..<s { e += g[j * s + c] * g[jj * s + c]; gj += g[j * s + c]; gjj += g[jj * s + c] }
                    bE[j * ho + jj] += e / Double(n)
                    bR[j * ho + jj] += gj * gjj / Double(n)
                } }
            }
            for (got, want, what) in [(expand[l].a, aE, "A expand"), (expand[l].b, bE, "B expand"),
                                      (reduce[l].a, aR, "A reduce"), (reduce[l].b, bR, "B reduce")] {
                let diff = maxRelativeDifference(got, want)
                #expect(diff < 1e-13, "\(name) layer \(l) \(what): max difference \(diff)")
            }
        }
    }

    @Test("Kronecker-sum solve equals a dense solve of (B̂_Ω⊗Â_Ω + B̂_∂⊗Â_∂) x = g, by each method",
          arguments: [(4, 5), (5, 4), (1, 6), (6, 1)])
    func kroneckerSumSolve(_ shape: (rows: Int, cols: Int)) throws {
        let (rows, cols) = shape, lambda = 1e-3
        var rng = RandomSource(seed: 17)
        func spd(_ n: Int, rank: Int) -> [Double] {
            let v = (0..<(n * rank)).map { _ in rng.uniform(-1, 1) }
            var m = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { for k in 0..<rank { m[i * n + j] += v[i * rank + k] * v[j * rank + k] } } }
            return m
        }
        // Rank-deficient factors: the damping makes the system solvable.
        let aO = spd(cols, rank: 3), bO = spd(rows, rank: 2), aB = spd(cols, rank: 2), bB = spd(rows, rank: 4)
        let g = (0..<(rows * cols)).map { _ in rng.uniform(-1, 1) }
        func damped(_ m: [Double], _ n: Int) -> [Double] { var d = m; for i in 0..<n { d[i * n + i] += lambda }; return d }
        let k1 = kron(damped(bO, rows), rows, damped(aO, cols), cols), k2 = kron(damped(bB, rows), rows, damped(aB, cols), cols)
        let expected = denseSolve(zip(k1, k2).map { $0 + $1 }, g)
        // Without boundary factors: X = B̂⁻¹ ∇ Â⁻¹.
        let single = denseSolve(k1, g)
        #expect(KroneckerSumInverse(rows: rows, columns: cols).method == (rows < cols ? .narrowRows : .narrowColumns))
        for method in [KroneckerSumInverse.Method.eigen, .narrowRows, .narrowColumns] {
            var inverse = KroneckerSumInverse(rows: rows, columns: cols, method: method)
            func solved() -> [Double] {
                var x = [Double](repeating: 0, count: rows * cols), work = x
                g.withUnsafeBufferPointer { gp in
                    x.withUnsafeMutableBufferPointer { xp in
                        work.withUnsafeMutableBufferPointer { inverse.solve(gp.baseAddress!, into: xp.baseAddress!, work: $0.baseAddress!) }
                    }
                }
                return x
            }
            try inverse.factorize(interiorA: aO, interiorB: bO, boundaryA: aB, boundaryB: bB, damping: lambda, layer: 0)
            let diff = maxRelativeDifference(solved(), expected)
            #expect(diff < 1e-9, "\(method) \(rows) × \(cols): max difference \(diff)")
            try inverse.factorize(interiorA: aO, interiorB: bO, boundaryA: nil, boundaryB: nil, damping: lambda, layer: 0)
            let one = maxRelativeDifference(solved(), single)
            #expect(one < 1e-9, "\(method) \(rows) × \(cols): one-term max difference \(one)")
        }
    }

    @Test("a narrow layer's Kronecker-sum factorisation reports an indefinite wide side")
    func narrowFactorizationReportsIndefinite() throws {
        var inverse = KroneckerSumInverse(rows: 1, columns: 4)
        var minusI = [Double](repeating: 0, count: 16)
        for i in 0..<4 { minusI[i * 4 + i] = -1 }
        do {
            try inverse.factorize(interiorA: minusI, interiorB: [1], boundaryA: nil, boundaryB: nil, damping: 1e-3, layer: 2)
            Issue.record("the indefinite A factor was accepted")
        } catch let KFPError.numerical(message) {
            #expect(message.contains("A factors of layer 2") && message.contains("not positive definite"), "\(message)")
        }
    }

    @Test("J v and G v equal products with the dense Jacobians", arguments: ["poisson", "heat", "log_fokker_planck"])
    func jacobianAndGGNProducts(_ name: String) throws {
        let op = try LossTests.makeOperator(name)
        let net = try MLP(widths: [op.dimension, 6, 5, 1], seed: 12)
        let batch = try smallBatch(op.dimension, interior: 5, boundary: 3, seed: 6)
        let loss = try PINNLoss(network: net, operator: op)
        var rng = RandomSource(seed: 2)
        let v = (0..<net.numParameters).map { _ in rng.uniform(-1, 1) }
        let (ji, jb) = try denseJacobians(net, op, batch)
        let D = net.numParameters, n = 5, m = 3
        let (jvI, jvB) = try loss.jacobianVectorProduct(batch, v)
        var denseI = [Double](repeating: 0, count: n), denseB = [Double](repeating: 0, count: m)
        for k in 0..<n { for p in 0..<D { denseI[k] += ji[k * D + p] * v[p] } }
        for k in 0..<m { for p in 0..<D { denseB[k] += jb[k * D + p] * v[p] } }
        #expect(maxRelativeDifference(jvI, denseI) < 1e-7, "\(name) interior Jv: \(maxRelativeDifference(jvI, denseI))")
        #expect(maxRelativeDifference(jvB, denseB) < 1e-7, "\(name) boundary Jv: \(maxRelativeDifference(jvB, denseB))")
        let gv = try loss.ggnVectorProduct(batch, v)
        var denseG = [Double](repeating: 0, count: D)
        for p in 0..<D {
            for k in 0..<n { denseG[p] += ji[k * D + p] * denseI[k] / Double(n) }
            for k in 0..<m { denseG[p] += jb[k * D + p] * denseB[k] / Double(m) }
        }
        #expect(maxRelativeDifference(gv, denseG) < 1e-7, "\(name) Gv: \(maxRelativeDifference(gv, denseG))")
        // Several products after one backward pass (as in CG): the kept adjoints stay valid.
        let w = (0..<D).map { _ in rng.uniform(-1, 1) }
        try loss.forward(batch)
        try loss.keepJacobianAdjoints()
        for u in [w, v, w] {
            var got = [Double](repeating: .nan, count: D), dense = [Double](repeating: 0, count: D)
            try u.withUnsafeBufferPointer { up in
                try got.withUnsafeMutableBufferPointer { try loss.ggnVectorProduct(up.baseAddress!, into: $0.baseAddress!) }
            }
            for k in 0..<n {
                let jk = (0..<D).reduce(0.0) { $0 + ji[k * D + $1] * u[$1] }
                for p in 0..<D { dense[p] += ji[k * D + p] * jk / Double(n) }
            }
            for k in 0..<m {
                let jk = (0..<D).reduce(0.0) { $0 + jb[k * D + $1] * u[$1] }
                for p in 0..<D { dense[p] += jb[k * D + p] * jk / Double(m) }
            }
            #expect(maxRelativeDifference(got, dense) < 1e-7, "\(name) repeated Gv: \(maxRelativeDifference(got, dense))")
        }
    }

    @Test("KFAC* quadratic-model coefficients equal those from the dense GGN")
    func quadraticModel() throws {
        let op = try Operator.heat(spaceDimension: 1, kappa: 0.25)
        let net = try MLP(widths: [2, 6, 5, 1], seed: 13)
        let batch = try smallBatch(2, interior: 6, boundary: 4, seed: 3)
        var options = KFAC.Options()
        options.stepRule = .automatic
        options.damping = 1e-3
        let kfac = try KFAC(network: net, operator: op, options: options)
        _ = try kfac.step(batch)   // leaves the previous update δ
        var rng = RandomSource(seed: 4)
        let D = net.numParameters
        let delta = (0..<D).map { _ in rng.uniform(-1, 1) }
        // The step's state: forward pass, gradient keeping the Jacobian adjoints, direction.
        try kfac.loss.forward(batch)
        var grad = [Double](repeating: 0, count: D)
        try grad.withUnsafeMutableBufferPointer { try kfac.loss.gradientKeepingJacobianAdjoints(into: $0.baseAddress!) }
        #expect(maxRelativeDifference(grad, try kfac.loss.lossAndGradient(batch).gradient) < 1e-12)
        try kfac.loss.forward(batch)
        try grad.withUnsafeMutableBufferPointer { try kfac.loss.gradientKeepingJacobianAdjoints(into: $0.baseAddress!) }
        kfac.direction = delta
        kfac.gradient = grad
        let c = try kfac.quadraticModelCoefficients()
        let (ji, jb) = try denseJacobians(net, op, batch)
        let prev = kfac.previousUpdate
        func gInner(_ a: [Double], _ b: [Double]) -> Double {
            var s = 0.0
            for k in 0..<6 {
                var ja = 0.0, jbv = 0.0
                for p in 0..<D { ja += ji[k * D + p] * a[p]; jbv += ji[k * D + p] * b[p] }
                s += ja * jbv / 6
            }
            for k in 0..<4 {
                var ja = 0.0, jbv = 0.0
                for p in 0..<D { ja += jb[k * D + p] * a[p]; jbv += jb[k * D + p] * b[p] }
                s += ja * jbv / 4
            }
            return s
        }
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        let lambda = 1e-3
        let expected = [gInner(delta, delta) + lambda * dot(delta, delta), gInner(delta, prev) + lambda * dot(delta, prev),
                        gInner(prev, prev) + lambda * dot(prev, prev), dot(grad, delta), dot(grad, prev)]
        let got = [c.m11, c.m12, c.m22, c.b1, c.b2]
        #expect(maxRelativeDifference(got, expected) < 1e-7, "coefficients \(got), dense \(expected)")
        // J Δ and J δ come from two work spaces (two threads at once when the library has two):
        // each equals the dense product, and repeated runs give the same bits.
        for (space, v) in [(0, delta), (1, prev)] {
            let dense = (0..<6).map { k in (0..<D).reduce(0.0) { $0 + ji[k * D + $1] * v[$1] } }
            let stored = kfac.loss.storedJacobianVectorProducts(space: space).interior
            #expect(maxRelativeDifference(stored, dense) < 1e-9, "space \(space): J v differs from the dense product")
        }
        for _ in 0..<20 {
            let again = try kfac.quadraticModelCoefficients()
            #expect([again.m11, again.m12, again.m22, again.b1, again.b2] == got, "a repeated evaluation differs")
        }
        // The automatic step minimises the model: (α, μ) = −M⁻¹ b.
        let (alpha, mu, _) = try kfac.quadraticModelStep()
        let sol = denseSolve([expected[0], expected[1], expected[1], expected[2]], [-expected[3], -expected[4]])
        #expect(maxRelativeDifference([alpha, mu], sol) < 1e-7, "(α, μ) = (\(alpha), \(mu)), dense \(sol)")
    }

    @Test("J v from the kept Jacobian adjoints equals the dense product and the tangent pass's J v",
          arguments: ["poisson", "heat", "log_fokker_planck"])
    func jacobianVectorProductsFromAdjoints(_ name: String) throws {
        let op = try LossTests.makeOperator(name)
        var rng = RandomSource(seed: 9)
        // Small networks against the dense Jacobians (a linear model too: layer 0 alone).
        for widths in [[op.dimension, 6, 5, 1], [op.dimension, 4, 1], [op.dimension, 1]] {
            let net = try MLP(widths: widths, seed: 14)
            let batch = try smallBatch(op.dimension, interior: 7, boundary: 3, seed: 8)
            let loss = try PINNLoss(network: net, operator: op)
            let D = net.numParameters
            let v = (0..<D).map { _ in rng.uniform(-1, 1) }
            let (ji, jb) = try denseJacobians(net, op, batch)
            try loss.forward(batch)
            var grad = [Double](repeating: 0, count: D)
            try grad.withUnsafeMutableBufferPointer { try loss.gradientKeepingJacobianAdjoints(into: $0.baseAddress!) }
            for space in 0..<2 {
                try v.withUnsafeBufferPointer { try loss.jacobianVectorProductsFromAdjoints($0.baseAddress!, space: space) }
                let (gotI, gotB) = loss.storedJacobianVectorProducts(space: space)
                let denseI = (0..<7).map { k in (0..<D).reduce(0.0) { $0 + ji[k * D + $1] * v[$1] } }
                let denseB = (0..<3).map { k in (0..<D).reduce(0.0) { $0 + jb[k * D + $1] * v[$1] } }
                let (di, db) = (maxRelativeDifference(gotI, denseI), maxRelativeDifference(gotB, denseB))
                #expect(di < 1e-9 && db < 1e-9, "\(name) \(widths) space \(space): interior \(di), boundary \(db)")
            }
        }
        // A batch large enough for two threads' partial sums, against the tangent pass.
        let net = try MLP(widths: [op.dimension, 48, 40, 1], seed: 15)
        let batch = try smallBatch(op.dimension, interior: 2000, boundary: 300, seed: 10)
        let loss = try PINNLoss(network: net, operator: op)
        let v = (0..<net.numParameters).map { _ in rng.uniform(-1, 1) }
        try loss.forward(batch)
        try v.withUnsafeBufferPointer { try loss.jacobianVectorProducts($0.baseAddress!, space: 1) }
        var grad = [Double](repeating: 0, count: net.numParameters)
        try grad.withUnsafeMutableBufferPointer { try loss.gradientKeepingJacobianAdjoints(into: $0.baseAddress!) }
        try v.withUnsafeBufferPointer { try loss.jacobianVectorProductsFromAdjoints($0.baseAddress!, space: 0) }
        func products(_ space: Int) -> [Double] {
            let (interior, boundary) = loss.storedJacobianVectorProducts(space: space)
            return interior + boundary
        }
        let difference = maxRelativeDifference(products(0), products(1))
        #expect(difference < 1e-10, "\(name): J v from the adjoints and from the tangent pass differ by \(difference)")
    }

    @Test("two tangent passes at once (spaces 0 and 1, one per thread) equal the same passes one after the other")
    func concurrentTangentPasses() throws {
        let op = try Operator.poisson(dimension: 2)
        let net = try MLP(widths: [2, 48, 48, 1], seed: 8)
        let batch = try Poisson2D.batch(interior: 3000, boundary: 400, seed: 5)
        let loss = try PINNLoss(network: net, operator: op)
        try loss.forward(batch)
        var rng = RandomSource(seed: 6)
        let directions = (0..<2).map { _ in (0..<net.numParameters).map { _ in rng.uniform(-1, 1) } }
        func products(_ space: Int) -> [Double] {
            let (interior, boundary) = loss.storedJacobianVectorProducts(space: space)
            return interior + boundary
        }
        for k in 0..<2 { try directions[k].withUnsafeBufferPointer { try loss.jacobianVectorProducts($0.baseAddress!, space: k) } }
        let expected = [products(0), products(1)]
        struct Shared: @unchecked Sendable { let loss: PINNLoss, batch: Batch, directions: [[Double]] }
        let shared = Shared(loss: loss, batch: batch, directions: directions)
        for _ in 0..<10 {
            loss.setRunsConcurrently(true)
            try BLAS.onLibraryThreads {
                try WorkerPool.shared.parallelFor(2, threads: 2) { k in
                    try shared.directions[k].withUnsafeBufferPointer {
                        try shared.loss.jacobianVectorProducts($0.baseAddress!, space: k)
                    }
                }
            }
            loss.setRunsConcurrently(false)
            #expect(products(0) == expected[0] && products(1) == expected[1], "concurrent tangent passes differ")
        }
    }

    @Test("first step with ema = 0 and a fixed learning rate is −lr (dense Kronecker sum)⁻¹ ∇L")
    func firstStepEqualsDenseSolve() throws {
        let op = try Operator.poisson(dimension: 2)
        let net = try MLP(widths: [2, 5, 4, 1], seed: 21)
        let batch = try smallBatch(2, interior: 8, boundary: 5, seed: 9)
        var options = KFAC.Options()
        options.ema = 0
        options.stepRule = .fixed
        options.learningRate = 0.5
        options.damping = 1e-4
        let kfac = try KFAC(network: net, operator: op, options: options)
        let theta0 = net.parameters
        let (_, grad) = try kfac.loss.lossAndGradient(batch)
        try kfac.loss.forward(batch)
        var scratch = grad
        try scratch.withUnsafeMutableBufferPointer { try kfac.loss.gradientKeepingJacobianAdjoints(into: $0.baseAddress!) }
        let fi = try factors(kfac.loss.terms[0].pass), fb = try factors(kfac.loss.terms[1].pass)
        let stats = try kfac.step(batch)
        #expect(stats.accepted && stats.stepSize == 0.5)
        for l in 0..<net.numLayers {
            let h1 = net.widths[l] + 1, ho = net.widths[l + 1]
            func damped(_ m: [Double], _ n: Int) -> [Double] { var d = m; for i in 0..<n { d[i * n + i] += 1e-4 }; return d }
            let k = zip(kron(damped(fi[l].b, ho), ho, damped(fi[l].a, h1), h1),
                        kron(damped(fb[l].b, ho), ho, damped(fb[l].a, h1), h1)).map { $0 + $1 }
            var g = [Double](repeating: 0, count: ho * h1)
            for j in 0..<ho { for i in 0..<h1 { g[j * h1 + i] = grad[thetaIndex(net, layer: l, row: j, column: i)] } }
            let x = denseSolve(k, g)
            var worst = 0.0
            for j in 0..<ho { for i in 0..<h1 {
                let p = thetaIndex(net, layer: l, row: j, column: i)
                let stepTaken = net.parameters[p] - theta0[p], expected = -0.5 * x[j * h1 + i]
                worst = max(worst, abs(stepTaken - expected) / max(1, abs(expected)))
            } }
            #expect(worst < 1e-8, "layer \(l): max difference \(worst)")
        }
    }
}

/// Large batches split the elementwise rules of the reverse and tangent passes into two row ranges
/// (run on two threads when GCD has a free worker); the results must equal those of two half
/// batches, which stay below the threshold and run as one range.
struct LargeBatchTests {
    @Test("gradient and GGN-vector product of a large batch equal the point-weighted combination of its two halves",
          arguments: [SecondOrderCoefficients.laplacian, .matrix([2.0, 0.5, 0.5, 0.5, 1.0, 0.0, 0.5, 0.0, 3.0])])
    func largeBatchMatchesHalves(_ coefficients: SecondOrderCoefficients) throws {
        let d = 3, n = 1200, widths = [d, 40, 40, 1]   // 40 · 1200 values per layer: above the threshold
        let net = try MLP(widths: widths, seed: 21)
        let op = try Operator(dimension: d, secondOrder: coefficients, drift: [0.3, -0.2, 0.1])
        let loss = try PINNLoss(network: net, operator: op)
        let x = randomPoints(n, d, seed: 22), f = randomPoints(n, 1, seed: 23)
        func batch(_ r: Range<Int>) throws -> Batch {
            try Batch(dimension: d, interiorPoints: Array(x[(r.lowerBound * d)..<(r.upperBound * d)]), source: Array(f[r]))
        }
        var rng = RandomSource(seed: 24)
        let v = (0..<net.numParameters).map { _ in rng.uniform(-1, 1) }
        let whole = try batch(0..<n), halves = [try batch(0..<(n / 2)), try batch((n / 2)..<n)]
        let g = try loss.lossAndGradient(whole).gradient, gv = try loss.ggnVectorProduct(whole, v)
        var gHalves = [Double](repeating: 0, count: g.count), gvHalves = gHalves
        for h in halves {
            // Both terms are means over the points: the whole is the average of the halves.
            let gh = try loss.lossAndGradient(h).gradient, gvh = try loss.ggnVectorProduct(h, v)
            for i in 0..<g.count { gHalves[i] += 0.5 * gh[i]; gvHalves[i] += 0.5 * gvh[i] }
        }
        let gDiff = maxRelativeDifference(g, gHalves), gvDiff = maxRelativeDifference(gv, gvHalves)
        #expect(gDiff < 1e-11, "gradient: max relative difference \(gDiff)")
        #expect(gvDiff < 1e-11, "GGN-vector product: max relative difference \(gvDiff)")
    }
}
