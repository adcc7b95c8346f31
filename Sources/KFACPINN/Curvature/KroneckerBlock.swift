/// Initial value of the moving averages of Kronecker factors.
public enum FactorInitialization: String, CaseIterable, Sendable {
    case identity, zero
}

/// The curvature block of one linear layer, W̃ = [W b] (h_out × (h_in+1)), as KFAC sees it
/// (docs/math.md §5–6, §9): per Kronecker product p ∈ {1, 2} (interior terms; condition terms)
/// the moving averages F ← β F + (1 − β) F_batch of A_p and B_p, and the exact inverse of the
/// damped sum B̂₁ X Â₁ + B̂₂ X Â₂ = ∇ (`KroneckerSumInverse`).
///
/// A step works on a candidate state (`prepare`, `computeBatchFactors`, `blendBatchFactors`,
/// `factorize`, `multiplyInverse`) that `commit` makes current; a step that fails before `commit`
/// leaves the block as it was.
final class KroneckerBlock {
    /// Undamped moving averages of the factors (row-major, full symmetric), whether product 2 has
    /// ever had terms, and the factorisation of the damped sum.
    struct State {
        var a1: [Double], b1: [Double], a2: [Double], b2: [Double]
        var hasSecond = false
        var inverse: KroneckerSumInverse
    }

    let layer: Int
    /// h_out and h_in + 1.
    let rows: Int, columns: Int
    var state: State
    private(set) var candidate: State
    /// Offsets of W (h_out × h_in, row-major) and b in θ.
    private let weightOffset: Int, biasOffset: Int
    /// Work space: a batch's factors (A, B per product) and which products it has, a second
    /// term's factors, the factors' Grams, the solve.
    private let batchFactors = [(a: Buffer(), b: Buffer()), (a: Buffer(), b: Buffer())]
    private var batchPresent = [false, false]
    private let termFactors = (a: Buffer(), b: Buffer())
    private let workspace = FactorWorkspace(), solveWork = Buffer()

    init(network: MLP, layer l: Int, initialization: FactorInitialization, method: KroneckerSumInverse.Method? = nil) {
        layer = l
        rows = network.widths[l + 1]
        columns = network.widths[l] + 1
        weightOffset = network.weightOffset(l)
        biasOffset = network.biasOffset(l)
        let a = KroneckerBlock.initialFactor(columns, initialization), b = KroneckerBlock.initialFactor(rows, initialization)
        state = State(a1: a, b1: b, a2: a, b2: b, inverse: KroneckerSumInverse(rows: rows, columns: columns, method: method))
        candidate = state
    }

    /// Values a block of layer l stores: current and candidate state (four factors and the
    /// inverse each) and its work space (a batch's two products' and a term's factors, the solve).
    static func storage(network: MLP, layer l: Int, method: KroneckerSumInverse.Method? = nil) throws -> Int {
        let rows = network.widths[l + 1], columns = network.widths[l] + 1, what = "the Kronecker factors of layer \(l)"
        let factors = try Memory.total([Memory.product(rows, rows, what: what), Memory.product(columns, columns, what: what)], what)
        let inverse = try KroneckerSumInverse.storage(
            rows: rows, columns: columns, method: method ?? KroneckerSumInverse.defaultMethod(rows: rows, columns: columns))
        let state = try Memory.total([factors, factors, inverse], what)
        return try Memory.total([state, state, factors, factors, factors, Memory.product(rows, columns, 2, what: what)], what)
    }

    static func initialFactor(_ n: Int, _ kind: FactorInitialization) -> [Double] {
        var m = [Double](repeating: 0, count: n * n)
        if kind == .identity { for i in 0..<n { m[i * n + i] = 1 } }
        return m
    }

    /// Sets the current factors to their initial value (before any step).
    func reset(_ initialization: FactorInitialization) {
        let a = KroneckerBlock.initialFactor(columns, initialization), b = KroneckerBlock.initialFactor(rows, initialization)
        state.a1 = a; state.a2 = a
        state.b1 = b; state.b2 = b
    }

    /// Multiply-adds of one `multiplyInverse` (four GEMMs of the eigen method).
    var solveProducts: Int { 2 * rows * columns * (rows + columns) }

    /// Cost of one factorisation, (h_in+1)³ + h_out³, to schedule the largest first.
    var factorizationCost: Double { Double(columns) * Double(columns) * Double(columns) + Double(rows) * Double(rows) * Double(rows) }

    /// Starts a step's candidate: the parts that are not recomputed (factors unless
    /// `updateFactors`, the factorisation unless `refactorize`) are taken from the current state.
    func prepare(updateFactors: Bool, refactorize: Bool) {
        if !updateFactors {
            copyValues(state.a1, into: &candidate.a1)
            copyValues(state.b1, into: &candidate.b1)
            copyValues(state.a2, into: &candidate.a2)
            copyValues(state.b2, into: &candidate.b2)
        }
        candidate.hasSecond = state.hasSecond
        if !refactorize { candidate.inverse.assign(state.inverse) }
    }

    /// The factors of the batch from the terms of `loss`'s last forward and backward passes with
    /// the Jacobian seeds, per product (interior terms; condition terms): kept for
    /// `blendBatchFactors`; a product without terms in the batch is marked absent.
    func computeBatchFactors(from loss: PINNLoss, approximation: KroneckerApproximation, threads: Int) throws {
        for (p, interior) in [true, false].enumerated() {
            let a = try batchFactors[p].a.reserve(columns * columns), b = try batchFactors[p].b.reserve(rows * rows)
            batchPresent[p] = try loss.productFactors(layer: layer, interior: interior, approximation: approximation, a: a, b: b,
                                                      term: termFactors, workspace: workspace, threads: threads)
        }
    }

    /// Values of `packBatchFactors`: the upper triangles of A and B of both products.
    var packedFactorCount: Int { 2 * (UpperTriangle.count(columns) + UpperTriangle.count(rows)) }

    /// The batch's factors' upper triangles, A then B of product 1, then of product 2 (zeros for
    /// an absent product), into `out` (`packedFactorCount` values), for their sum over processes.
    func packBatchFactors(into out: UnsafeMutablePointer<Double>) {
        let na = UpperTriangle.count(columns), nb = UpperTriangle.count(rows)
        for p in 0..<2 {
            let a = out + p * (na + nb), b = a + na
            if batchPresent[p] {
                UpperTriangle.pack(batchFactors[p].a.pointer, columns, into: a)
                UpperTriangle.pack(batchFactors[p].b.pointer, rows, into: b)
            } else {
                a.update(repeating: 0, count: na + nb)
            }
        }
    }

    /// The batch's present factors from packed values (`packBatchFactors`' layout).
    func unpackBatchFactors(from packed: UnsafePointer<Double>) {
        let na = UpperTriangle.count(columns), nb = UpperTriangle.count(rows)
        for p in 0..<2 where batchPresent[p] {
            UpperTriangle.unpack(packed + p * (na + nb), columns, into: batchFactors[p].a.pointer)
            UpperTriangle.unpack(packed + p * (na + nb) + na, rows, into: batchFactors[p].b.pointer)
        }
    }

    /// Candidate factors F = β F_current + (1 − β) F_batch from `computeBatchFactors`; a product
    /// without terms in this batch keeps its current factors.
    func blendBatchFactors(ema beta: Double) {
        func blend(_ f: inout [Double], _ old: [Double], _ batch: UnsafePointer<Double>) {
            f.withUnsafeMutableBufferPointer { p in
                old.withUnsafeBufferPointer { o in
                    for i in 0..<p.count { p[i] = beta * o[i] + (1 - beta) * batch[i] }
                }
            }
        }
        if batchPresent[0] {
            blend(&candidate.a1, state.a1, batchFactors[0].a.pointer)
            blend(&candidate.b1, state.b1, batchFactors[0].b.pointer)
        } else {
            copyValues(state.a1, into: &candidate.a1)
            copyValues(state.b1, into: &candidate.b1)
        }
        if batchPresent[1] {
            blend(&candidate.a2, state.a2, batchFactors[1].a.pointer)
            blend(&candidate.b2, state.b2, batchFactors[1].b.pointer)
            candidate.hasSecond = true
        } else {
            copyValues(state.a2, into: &candidate.a2)
            copyValues(state.b2, into: &candidate.b2)
        }
    }

    /// Factorises the candidate's damped sum, λ added to every factor's diagonal (one term when
    /// product 2 never had terms). On failure the error names the layer and factor.
    func factorize(damping: Double) throws {
        let second = candidate.hasSecond
        let (a1, b1, a2, b2) = (candidate.a1, candidate.b1, candidate.a2, candidate.b2)
        try candidate.inverse.factorize(interiorA: a1, interiorB: b1, boundaryA: second ? a2 : nil,
                                        boundaryB: second ? b2 : nil, damping: damping, layer: layer)
    }

    /// direction[W̃] = scale · X, X solving the candidate's damped Kronecker sum for the layer's
    /// part of `gradient` (both in θ's layout).
    func multiplyInverse(_ gradient: UnsafePointer<Double>, into direction: UnsafeMutablePointer<Double>, scale: Double) throws {
        let hin = columns - 1, hout = rows, h1 = columns, size = hout * h1
        let wo = weightOffset, bo = biasOffset
        let g = try solveWork.reserve(3 * size), x = g + size, w = x + size
        for j in 0..<hout {
            for i in 0..<hin { g[j * h1 + i] = gradient[wo + j * hin + i] }
            g[j * h1 + hin] = gradient[bo + j]
        }
        candidate.inverse.solve(g, into: x, work: w)
        for j in 0..<hout {
            for i in 0..<hin { direction[wo + j * hin + i] = scale * x[j * h1 + i] }
            direction[bo + j] = scale * x[j * h1 + hin]
        }
    }

    /// The largest diagonal entry of the candidate's four factors.
    var largestCandidateDiagonal: Double {
        var largest = 0.0
        for (f, n) in [(candidate.a1, columns), (candidate.b1, rows), (candidate.a2, columns), (candidate.b2, rows)] where f.count == n * n {
            for i in 0..<n { largest = max(largest, f[i * n + i]) }
        }
        return largest
    }

    /// Makes the candidate current.
    func commit() { swap(&state, &candidate) }
}

extension KroneckerBlock {
    /// The current state: the four moving averages, whether product 2 had terms, the factorisation.
    func writeState(_ s: inout SectionWriter) throws {
        for f in [state.a1, state.b1, state.a2, state.b2] { try s.doubles(f) }
        s.bool(state.hasSecond)
        try state.inverse.writeState(&s)
    }

    /// A state read from `s`, for `restore`.
    func readState(_ s: inout SectionReader) throws -> State {
        let na = columns * columns, nb = rows * rows, l = layer
        var read = state
        read.a1 = try s.doubles(count: na, "A of the interior factors of layer \(l)")
        read.b1 = try s.doubles(count: nb, "B of the interior factors of layer \(l)")
        read.a2 = try s.doubles(count: na, "A of the condition factors of layer \(l)")
        read.b2 = try s.doubles(count: nb, "B of the condition factors of layer \(l)")
        read.hasSecond = try s.bool("the condition-factor flag of layer \(l)")
        read.inverse = try state.inverse.readState(&s, layer: l)
        return read
    }

    /// Makes `read` (from `readState`) the current state.
    func restore(_ read: State) { state = read }
}
