import CKernels
import Glibc

/// Taylor mode (the forward Laplacian) through an MLP, with its reverse pass.
///
/// Every hidden vector of sample n carries S columns Z_n = [v, J_1, …, J_d, T]:
/// the value, the d directional derivatives ∂_i v and T = 𝒟_C v. A batch is
/// stored row-major as h × (S·N) in column blocks: block c (0 the value, 1…d
/// the J_i, d+1 T) holds that column of all N samples contiguously, so every
/// elementwise rule is a contiguous loop over N and each linear layer is one
/// GEMM W · Z over all S·N columns. In `.value` mode S = 1 (a plain forward
/// pass, used for boundary points and evaluation).
///
/// The first layer is not a GEMM over S columns: its input columns are x_n,
/// e_i and 0, so W J_i is column i of W and T = 0.
///
/// In `.directional` mode (docs/math.md §9) S = 2, Z_n = [v, J] with J = ∂_{n_k} v the
/// derivative along a direction n_k of its own per point k: the input columns [x_k | n_k]
/// (d × 2N) go through every layer as a GEMM, and an activation maps (v, J) to
/// (σ(v), σ'(v) J).
///
/// In `.probes` mode (docs/math.md §12) S = m + 2, Z_n = [v, J_1, …, J_m, T̂] with J_c the
/// derivative along direction v_{n,c} of point n and T̂ = Σ_c w_c ∂²_{v_{n,c}} v, the collapsed
/// second-order column: the input columns [x | v_1 | … | v_m | 0] (d × S·N) go through layer 0
/// as a GEMM, and every activation applies the Taylor rules with C = diag(w) over the m columns.
final class TaylorPass {
    enum Mode {
        case value
        case taylor(Coefficients)
        /// Per-point directions, row-major N × d.
        case directional([Double])
        case probes(ProbeColumns)
    }

    let network: MLP
    private(set) var count = 0              // N
    private(set) var columnsPerSample = 1   // S
    /// Whether the last forward pass was in `.directional` mode.
    private(set) var isDirectional = false
    /// Whether layer 0 of the last pass was a GEMM over stored input columns (`.directional`,
    /// `.probes`) rather than the structured columns x_n, e_i, 0 of `.taylor`.
    private(set) var hasExplicitInput = false
    /// The derivative columns J per sample of a Taylor pass: d in `.taylor`, m in `.probes`.
    var derivativeColumns: Int { columnsPerSample > 2 ? columnsPerSample - 2 : 0 }

    /// Input points as d rows of N values (row i: coordinate i of every point); in
    /// `.directional` mode d rows of 2N, [x_{·,i} | n_{·,i}], in `.probes` mode d rows of S·N,
    /// [x_{·,i} | v_{·,1,i} | … | v_{·,s,i} | 0]: the first layer's input columns.
    let points = Buffer()
    /// Layer 0 pre-activation values W₀x_n + b₀, h₁ × N (activations other than tanh, whose
    /// kernels form them block by block).
    let firstValues = Buffer()
    /// Per hidden layer l: pre-activation (h × N·S); the reverse and tangent passes read its J and T
    /// blocks (a tanh pass leaves the bias out of the value block). pre[0] is used by `.directional` passes only.
    private(set) var pre: [Buffer] = []
    /// Per hidden layer l: post-activation σ(·) columns (h × N·S), the input of layer l+1.
    private(set) var post: [Buffer] = []
    /// Per hidden layer l: σ', σ'', σ''' at the pre-activation values (3 blocks of h × N).
    private(set) var slopes: [Buffer] = []
    /// Output columns, 1 × S·N in blocks [u | ∂_1 u | … | ∂_d u | 𝒟_C u] of N values each.
    let outputBuffer = Buffer()
    /// Per linear layer l: adjoints of its output, G_l (h_out × N·S), set by `backward`.
    private(set) var adjoints: [Buffer] = []
    /// Layer 0 structure: per hidden unit j, q_j = Σ_ik C_ik W_ji W_jk, and (C W₀ᵀ)ᵀ rows.
    let firstQuadratic = Buffer(), firstCW = Buffer()
    /// W₀ of the last pass that kept slopes (h₁ × d).
    let firstWeights = Buffer()
    let coefficientValues = Buffer()
    private(set) var coefficientsDiagonal = true
    private let scratch = Buffer(), rowSums = Buffer()
    /// Whether ∇u of a pass at trial parameters is read: if not (an operator without drift or
    /// nonlinearity), the fused output kernels leave the ∂_i u blocks zero.
    var outputGradientUsed = true
    /// Whether the pass runs on one thread of several (the parallel line search): its
    /// elementwise loops then stay on the calling thread.
    var runsConcurrently = false
    /// Threads of the elementwise loops: the library's thread count (kfp_set_num_threads).
    var elementwiseThreads: Int { runsConcurrently ? 1 : BLAS.numThreads }
    /// Per-row work of the reverse rules, and one sample's columns of two layers (Jacobian rows).
    let ruleWork = Buffer(), sampleColumns = (Buffer(), Buffer())
    /// Work space of two tangent passes (two directions may run at once on two threads).
    let tangentSpaces = [TangentSpace(), TangentSpace()]

    /// The machine's memory in bytes (read once: every line-search trial checks against it).
    static let physicalMemory = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))

    init(network: MLP) {
        self.network = network
        let hidden = network.numLayers - 1
        pre = (0..<hidden).map { _ in Buffer() }
        post = (0..<hidden).map { _ in Buffer() }
        slopes = (0..<hidden).map { _ in Buffer() }
        adjoints = (0..<network.numLayers).map { _ in Buffer() }
    }

    var output: UnsafeMutablePointer<Double> { outputBuffer.pointer }

    /// (u, ∇u, 𝒟_C u) of the last forward pass in `.taylor` mode.
    func outputTriple() -> (value: [Double], gradient: [Double], secondOrder: [Double]) {
        let n = count, d = network.inputDimension, s = columnsPerSample
        var u = [Double](repeating: 0, count: n), g = [Double](repeating: 0, count: n * d)
        var t = [Double](repeating: 0, count: n)
        for k in 0..<n {
            u[k] = output[k]
            for i in 0..<d { g[k * d + i] = output[(1 + i) * n + k] }
            t[k] = output[(s - 1) * n + k]
        }
        return (u, g, t)
    }

    /// Layer 0 of a `.probes` pass at a point θ = θ₀ + α p of a line (a line-search trial). Its
    /// pre-activation is affine in α, W₀(θ) X = W₀(θ₀) X + α P₀ X (X the input columns, which do
    /// not depend on θ), so the trials of one line share the two products: h₁ × N(S − 1) each
    /// (the value and J blocks; the T̂ block is 0), side by side in `products`. Without `ready`
    /// the pass forms them from X first; with it, it neither forms X nor multiplies by W₀.
    struct LineLayer {
        let origin: UnsafePointer<Double>, direction: UnsafePointer<Double>, alpha: Double
        let products: UnsafeMutablePointer<Double>, ready: Bool

        /// Values of `products` for `count` points of a pass with S = `columns` on `network`.
        static func productCount(_ network: MLP, count: Int, columns: Int) -> Int {
            2 * network.widths[1] * count * (columns - 1)
        }
    }

    /// Forward pass on `count` points x (row-major count × d, already validated), at the
    /// network's parameters or at `theta` (D values; then only the output may be used, the
    /// reverse and tangent passes assume the network's parameters). `line` (`.probes` mode at
    /// `theta` only): θ is a point of that line.
    func forward(_ x: [Double], count n: Int, mode: Mode, parameters theta: UnsafePointer<Double>? = nil,
                 line: LineLayer? = nil) throws {
        let d = network.inputDimension
        let s: Int
        switch mode {
        case .value: s = 1
        case .taylor: s = d + 2
        case .directional: s = 2
        case .probes(let p): s = p.count + 2
        }
        // Every BLAS dimension must fit in 32 bits; N·S is the column count of each GEMM.
        guard n <= Int(Int32.max) / s else {
            throw KFPError.invalidArgument("too many points: \(n) points × \(s) Taylor columns exceeds \(Int32.max) columns")
        }
        // The pass keeps about three h × N·S buffers per layer (inputs, adjoints, work); refuse
        // a batch that cannot fit in the machine's memory instead of failing to allocate.
        let values = network.widths.dropFirst().reduce(0.0) { $0 + 3 * Double($1) * Double(n) * Double(s) }
        guard values * 8 < TaylorPass.physicalMemory else {
            let gib = values * 8 / 1073741824
            throw KFPError.invalidArgument("too many points for this network: the Taylor pass would need about \(Int(gib.rounded())) GiB, more than the machine's memory")
        }
        count = n
        columnsPerSample = s
        hasExplicitInput = false
        if case .taylor(let c) = mode {
            coefficientsDiagonal = c.diagonal != nil
            let values = c.diagonal ?? c.dense
            let cp = try coefficientValues.reserve(values.count)
            for (i, v) in values.enumerated() { cp[i] = v }
        }
        if case .probes(let probes) = mode {
            // C = diag(w) over the m direction columns; input columns [x | v_1 | … | v_m | 0].
            isDirectional = false
            hasExplicitInput = true
            coefficientsDiagonal = true
            let m = probes.count, ns = n * s
            let cp = try coefficientValues.reserve(m)
            for (c, w) in probes.weights.enumerated() { cp[c] = w }
            if let line, line.ready {
                try forwardOnLine(theta, line)
                return
            }
            let zp = try points.reserve(d * ns)
            try probes.directions.withUnsafeBufferPointer { v in
                guard v.count == n * m * d else {
                    throw KFPError.dimensionMismatch("\(v.count) probe coordinates for \(n) points × \(m) probes × \(d) dimensions")
                }
                for i in 0..<d {
                    let row = zp + i * ns
                    for k in 0..<n { row[k] = x[k * d + i] }
                    for c in 0..<m {
                        let block = row + (1 + c) * n
                        for k in 0..<n { block[k] = v[(k * m + c) * d + i] }
                    }
                    (row + (s - 1) * n).update(repeating: 0, count: n)
                }
            }
        } else if case .directional(let directions) = mode {
            isDirectional = true
            hasExplicitInput = true
            let zp = try points.reserve(2 * n * d)
            for k in 0..<n {
                for i in 0..<d {
                    zp[i * 2 * n + k] = x[k * d + i]
                    zp[i * 2 * n + n + k] = directions[k * d + i]
                }
            }
            try BLAS.onLibraryThreads {
                if let theta {
                    try forwardDirectional(theta)
                } else {
                    try network.parameters.withUnsafeBufferPointer { try forwardDirectional($0.baseAddress!) }
                }
            }
            return
        } else {
            isDirectional = false
            let xp = try points.reserve(n * d)
            for k in 0..<n { for i in 0..<d { xp[i * n + k] = x[k * d + i] } }
        }
        if let line, case .probes = mode {
            // X is in place: the line's products, then the pass from them.
            BLAS.onLibraryThreads { formLineProducts(line) }
            try forwardOnLine(theta, line)
            return
        }
        try BLAS.onLibraryThreads {
            if let theta {
                try forwardLayers(theta, outputOnly: true)
            } else {
                try network.parameters.withUnsafeBufferPointer { try forwardLayers($0.baseAddress!, outputOnly: false) }
            }
        }
    }

    /// W₀(θ₀) X and P₀ X into the line's products (h₁ × N(S − 1) each, from the input columns X).
    private func formLineProducts(_ line: LineLayer) {
        let net = network, h1 = net.widths[1], d = net.widths[0], ns = count * columnsPerSample
        let nc = count * (columnsPerSample - 1), offset = net.weightOffset(0)
        for k in 0..<2 {
            let weights = k == 0 ? line.origin : line.direction
            BLAS.gemm(m: h1, n: nc, k: d, a: weights + offset, lda: d, b: points.pointer, ldb: ns,
                      c: line.products + k * h1 * nc, ldc: nc, threads: elementwiseThreads)
        }
    }

    /// The pass at θ on a line whose products are formed: layer 0 from them, then every layer on.
    private func forwardOnLine(_ theta: UnsafePointer<Double>?, _ line: LineLayer) throws {
        guard let theta else { throw KFPError.invalidArgument("a pass on a line needs its trial parameters") }
        try BLAS.onLibraryThreads { try forwardLayers(theta, outputOnly: true, line: line) }
    }

    /// With `outputOnly` (a pass at trial parameters) a tanh network keeps no slopes: each unit's
    /// activation and Taylor rule are one kernel, and with one output the last hidden layer is
    /// fused with the output layer (none of its columns are stored). A pass with explicit input
    /// columns (`.probes`) computes layer 0 as the other layers, from `points`, or on a line from
    /// the line's products.
    private func forwardLayers(_ theta: UnsafePointer<Double>, outputOnly: Bool, line: LineLayer? = nil) throws {
        let net = network, widths = net.widths, n = count, s = columnsPerSample
        let ns = n * s, L = net.numLayers, dJ = derivativeColumns
        let act = net.activation
        let cvals = UnsafePointer(coefficientValues.pointer), diag = coefficientsDiagonal
        let tanh = act == .tanh, noSlopes = outputOnly && tanh, fused = noSlopes && L >= 2 && widths[L] == 1
        let outputWeights = theta + net.weightOffset(L - 1), outputBias = theta[net.biasOffset(L - 1)]
        if !hasExplicitInput {
            guard try forwardStructuredFirstLayer(theta, noSlopes: noSlopes, fused: fused) else { return }
        }
        // Layers 1..L−1 (0..L−1 with explicit inputs): one GEMM over S·N columns, bias on the value block.
        let qs = try scratch.reserve(2 * max(n, 1))
        for l in (hasExplicitInput ? 0 : 1)..<L {
            let hout = widths[l + 1], b = theta + net.biasOffset(l)
            let z: UnsafeMutablePointer<Double>
            if l == 0, let line { z = try lineLayer(line) } else { z = try linearLayer(l, theta) }
            if l == L - 1 {
                for j in 0..<hout {
                    let row = z + j * ns, bj = b[j]
                    for k in 0..<n { row[k] += bj }
                }
                break
            }
            if fused && l == L - 2 {
                let out = try outputBuffer.reserve(ns)
                forEachColumnRange(n, hout) { k in
                    kernels_tanh_output(kernelISA, hout, k.count, dJ, z + k.lowerBound, n, ns, b, cvals, diag ? 1 : 0,
                                        s > 1 ? 1 : 0, outputGradientUsed ? 1 : 0, outputWeights, out + k.lowerBound)
                }
                for k in 0..<n { out[k] += outputBias }
                return
            }
            // Per unit: bias, σ and its derivatives, then J' = σ' J, T' = σ' T + σ'' Q, Q = Σ C_ij J_i J_j.
            let out = try post[l].reserve(hout * ns), hn = hout * n
            if tanh {
                let sl = noSlopes ? nil : try slopes[l].reserve(3 * hn)
                forEachRowRange(hout, n) { rows, _ in
                    for j in rows {
                        kernels_tanh_taylor_rule(kernelISA, n, dJ, z + j * ns, b[j], cvals, diag ? 1 : 0, s > 1 ? 1 : 0,
                                                 out + j * ns, sl.map { $0 + j * n }, hn)
                    }
                }
                continue
            }
            let sl = try slopes[l].reserve(3 * hn)
            forEachRowRange(hout, n) { rows, part in
                for j in rows {
                    let zj = z + j * ns, o = out + j * ns, s1 = sl + j * n, s2 = s1 + hn, bj = b[j]
                    for k in 0..<n { zj[k] += bj }
                    act.evaluate(n, zj, value: o, d1: s1, d2: s2, d3: s2 + hn)
                    if s > 1 { kernels_taylor_rule(kernelISA, n, dJ, zj, cvals, diag ? 1 : 0, s1, s2, o, qs + part * n) }
                }
            }
        }
    }

    /// Layer 0 from its structured input columns x_n, e_i, 0 and its activation into post[0];
    /// false when that already produced the output (a one-layer network, or a fused two-layer
    /// tanh pass).
    private func forwardStructuredFirstLayer(_ theta: UnsafePointer<Double>, noSlopes: Bool, fused: Bool) throws -> Bool {
        let net = network, widths = net.widths, n = count, s = columnsPerSample
        let d = widths[0], ns = n * s, L = net.numLayers, act = net.activation, tanh = act == .tanh
        let cvals = UnsafePointer(coefficientValues.pointer), diag = coefficientsDiagonal
        let x = UnsafePointer(points.pointer)
        let outputWeights = theta + net.weightOffset(L - 1), outputBias = theta[net.biasOffset(L - 1)]
        // Layer 0: values W₀ x_n + b₀ (d multiply-adds per value, no GEMM); J_i = W₀[:, i]; T = 0.
        // tanh passes compute them inside their kernels.
        let h1 = widths[1]
        let w0 = theta + net.weightOffset(0), b0 = theta + net.biasOffset(0)
        let v0 = try firstValues.reserve(h1 * n)
        if !tanh || L == 1 { kernels_first_layer_values(kernelISA, h1, n, d, w0, b0, x, v0) }
        if L == 1 {
            // A linear model: the output columns come straight from layer 0.
            writeLinearOutput(values: v0, weights: w0, into: try outputBuffer.reserve(ns))
            return false
        }
        if s > 1 {
            // q_j = Σ_ik C_ik W_ji W_jk and (C W_jᵀ)_i for the first hidden layer.
            let q = try firstQuadratic.reserve(h1), cw = try firstCW.reserve(h1 * d)
            for j in 0..<h1 {
                let wj = w0 + j * d
                q[j] = Coefficients.quadratic(d, wj, wj, cvals, diagonal: diag)
                Coefficients.apply(d, wj, cw + j * d, cvals, diagonal: diag)
            }
        }
        if fused && L == 2 {
            let out = try outputBuffer.reserve(ns), q = UnsafePointer(firstQuadratic.pointer)
            forEachColumnRange(n, h1) { k in
                kernels_tanh_first_output(kernelISA, h1, k.count, d, x + k.lowerBound, n, b0, w0, q, outputWeights,
                                          s > 1 ? 1 : 0, outputGradientUsed ? 1 : 0, out + k.lowerBound)
            }
            for k in 0..<n { out[k] += outputBias }
            return false
        }
        // Activation of layer 0 into post[0]: v' = σ(v), J'_i = σ' W₀[:, i], T' = σ'' q.
        if !noSlopes { try firstWeights.reserve(h1 * d).update(from: w0, count: h1 * d) }
        if tanh {
            let out = try post[0].reserve(h1 * ns), q = UnsafePointer(firstQuadratic.pointer)
            let sl = noSlopes ? nil : try slopes[0].reserve(3 * h1 * n), hn = h1 * n
            forEachRowRange(h1, n) { rows, _ in
                for j in rows {
                    kernels_tanh_first_rule(kernelISA, n, d, x, b0[j], w0 + j * d, s > 1 ? q[j] : 0, s > 1 ? 1 : 0,
                                            out + j * ns, sl.map { $0 + j * n }, hn)
                }
            }
        } else {
            let out = try post[0].reserve(h1 * ns), sl = try slopes[0].reserve(3 * h1 * n)
            let q = UnsafePointer(firstQuadratic.pointer), hn = h1 * n
            forEachRowRange(h1, n) { rows, _ in
                for j in rows {
                    let o = out + j * ns, s1 = sl + j * n, s2 = s1 + hn
                    act.evaluate(n, v0 + j * n, value: o, d1: s1, d2: s2, d3: s2 + hn)
                    if s > 1 { kernels_taylor_first_rule(kernelISA, n, d, w0 + j * d, q[j], s1, s2, o) }
                }
            }
        }
        return true
    }

    /// `.directional` mode: every layer l is one GEMM over the 2N columns of its input
    /// (`layerInput`), the bias on the value block; an activation keeps z = [v | J] in
    /// pre[l] and σ', σ'', σ''' in slopes[l], and writes [σ(v) | σ'(v) J] to post[l].
    private func forwardDirectional(_ theta: UnsafePointer<Double>) throws {
        let net = network, widths = net.widths, n = count, ns = 2 * n, L = net.numLayers, act = net.activation
        for l in 0..<L {
            let hout = widths[l + 1], b = theta + net.biasOffset(l)
            let z = try linearLayer(l, theta)
            for j in 0..<hout {
                let row = z + j * ns, bj = b[j]
                for k in 0..<n { row[k] += bj }
            }
            if l == L - 1 { return }
            let out = try post[l].reserve(hout * ns), hn = hout * n, sl = try slopes[l].reserve(3 * hn)
            forEachRowRange(hout, n) { rows, _ in
                for j in rows {
                    let zj = z + j * ns, o = out + j * ns, s1 = sl + j * n, s2 = s1 + hn
                    act.evaluate(n, zj, value: o, d1: s1, d2: s2, d3: s2 + hn)
                    for k in 0..<n { o[n + k] = s1[k] * zj[n + k] }
                }
            }
        }
    }

    /// Layer 0 of a pass on a line into pre[0], or into the output for a one-layer network
    /// (h₁ × N·S, no bias): W₀(θ₀) X + α P₀ X from the line's products, 0 in the T̂ block.
    private func lineLayer(_ line: LineLayer) throws -> UnsafeMutablePointer<Double> {
        let h1 = network.widths[1], ns = count * columnsPerSample, nc = count * (columnsPerSample - 1)
        let z = network.numLayers == 1 ? try outputBuffer.reserve(h1 * ns) : try pre[0].reserve(h1 * ns), alpha = line.alpha
        let base = UnsafePointer(line.products), along = base + h1 * nc
        forEachRowRange(h1, ns) { rows, _ in
            for j in rows {
                let row = z + j * ns, b = base + j * nc, a = along + j * nc
                for k in 0..<nc { row[k] = b[k] + alpha * a[k] }
                (row + nc).update(repeating: 0, count: ns - nc)
            }
        }
        return z
    }

    /// W_l · (layer l's input columns) into pre[l], or into the output for the last layer
    /// (h_out × N·S, no bias). A single output row z = Σ_j w_j post_j is summed row by row (no
    /// BLAS thread is woken for it). Layer 0 of a `.probes` pass leaves out the input's T̂ block
    /// (zero) and writes 0 there.
    private func linearLayer(_ l: Int, _ theta: UnsafePointer<Double>) throws -> UnsafeMutablePointer<Double> {
        let net = network, hin = net.widths[l], hout = net.widths[l + 1], ns = count * columnsPerSample
        let w = theta + net.weightOffset(l), input = layerInput(l)
        let z = l == net.numLayers - 1 ? try outputBuffer.reserve(hout * ns) : try pre[l].reserve(hout * ns)
        let zeroBlock = l == 0 && hasExplicitInput && !isDirectional ? count : 0, nc = ns - zeroBlock
        if hout == 1 {
            kernels_row_combination(kernelISA, hin, nc, w, input, ns, z)
        } else {
            BLAS.gemm(m: hout, n: nc, k: hin, a: w, lda: hin, b: input, ldb: ns, c: z, ldc: ns, threads: elementwiseThreads)
        }
        if zeroBlock > 0 {
            for j in 0..<hout { (z + j * ns + nc).update(repeating: 0, count: zeroBlock) }
        }
        return z
    }

    /// The input columns of linear layer l (h_in × N·S): the previous activation's columns, or
    /// for l = 0 of a pass with explicit inputs (`.directional`, `.probes`) the stored input columns.
    func layerInput(_ l: Int) -> UnsafePointer<Double> {
        l == 0 ? UnsafePointer(points.pointer) : UnsafePointer(post[l - 1].pointer)
    }

    /// Runs `body(rows, part)` over the rows 0..<rows of an h × n block: in two halves on two
    /// threads (part 0 and 1) when the block is large and the pass may use two threads, else
    /// at once (part 0). The halves must write disjoint memory.
    func forEachRowRange(_ rows: Int, _ n: Int, _ body: (Range<Int>, Int) -> Void) {
        guard rows * n >= 32768 && rows >= 2 && elementwiseThreads >= 2 else {
            body(0..<rows, 0)
            return
        }
        let half = rows / 2
        WorkerPool.shared.parallelFor(2, threads: 2) { part in body(part == 0 ? 0..<half : half..<rows, part) }
    }

    /// Runs `body(samples)` over the samples 0..<n of a block of h rows: in two halves on two
    /// threads when the block is large (as `forEachRowRange`), else at once.
    func forEachColumnRange(_ n: Int, _ h: Int, _ body: (Range<Int>) -> Void) {
        forEachRowRange(n, h) { samples, _ in body(samples) }
    }

    /// Output columns of a linear model (one layer, one output): [v_n, w, 0] per sample,
    /// from the values v (N) and the weight row w (d) — its gradient, or their tangents.
    func writeLinearOutput(values v: UnsafePointer<Double>, weights w: UnsafePointer<Double>,
                           into out: UnsafeMutablePointer<Double>) {
        let n = count, s = columnsPerSample, d = network.inputDimension
        out.update(from: v, count: n)
        if s > 1 {
            for i in 0..<d { (out + (1 + i) * n).update(repeating: w[i], count: n) }
            (out + (d + 1) * n).update(repeating: 0, count: n)
        }
    }

    /// Reverse pass. `seeds` (S·N, in the blocks of the output) are the adjoints of the output
    /// columns [∂/∂u, ∂/∂∇u, ∂/∂T]. Fills `adjoints[l]` = G_l for every layer.
    func backward(seeds: UnsafePointer<Double>) throws {
        try BLAS.onLibraryThreads {
            try network.parameters.withUnsafeBufferPointer { theta in
                try backwardLayers(theta.baseAddress!, seeds)
            }
        }
    }

    private func backwardLayers(_ theta: UnsafePointer<Double>, _ seeds: UnsafePointer<Double>) throws {
        let net = network, widths = net.widths, n = count, s = columnsPerSample
        let d = widths[0], ns = n * s, L = net.numLayers, dJ = derivativeColumns
        let cvals = UnsafePointer(coefficientValues.pointer), diag = coefficientsDiagonal
        let top = try adjoints[L - 1].reserve(ns)
        top.update(from: seeds, count: ns)
        guard L > 1 else { return }
        // Per-row work of the rules, for each of two threads: S·N values.
        let work = try ruleWork.reserve(2 * s * max(n, 1))
        let w0 = theta + net.weightOffset(0)
        let firstCWs = UnsafePointer(firstCW.pointer), firstQs = UnsafePointer(firstQuadratic.pointer)
        for l in stride(from: L - 1, through: 1, by: -1) {
            let hin = widths[l], hout = widths[l + 1]
            let w = theta + net.weightOffset(l)
            // Upstream adjoint of the post-activation: Wᵀ G_l over all S·N columns; for one output
            // row an outer product, row j = w_j G_l, passed to the rules as G_l and the scale w_j.
            let outer = hout == 1
            let up = outer ? adjoints[l].pointer : try scratch.reserve(hin * ns)
            if !outer {
                BLAS.gemm(transA: true, m: hin, n: ns, k: hout, a: w, lda: hin,
                          b: adjoints[l].pointer, ldb: ns, c: up, ldc: ns, threads: elementwiseThreads)
            }
            let g = try adjoints[l - 1].reserve(hin * ns)
            let sl = slopes[l - 1].pointer, hn = hin * n
            let z = l > 1 || hasExplicitInput ? UnsafePointer(pre[l - 1].pointer) : nil
            // T̄ = σ'T̄', J̄_i = σ'J̄'_i + 2σ''T̄'(CJ)_i, v̄ = σ'v̄' + σ''Σ J_i J̄'_i + (σ''T + σ'''Q)T̄'
            // (layer 0's pre-activation from structured inputs: J_i = W₀[j, i], T = 0, Q = q_j).
            let directional = isDirectional, zd = UnsafePointer(pre[l - 1].pointer)
            forEachRowRange(hin, n) { rows, part in
                let wk = work + part * s * n
                for j in rows {
                    let u = outer ? up : up + j * ns, scale = outer ? w[j] : 1, o = g + j * ns, e = j * n
                    let s1 = sl + e, s2 = sl + hn + e, s3 = sl + 2 * hn + e
                    if directional {
                        // J̄ = σ' J̄', v̄ = σ' v̄' + σ'' J J̄' (J: the pre-activation's directional column).
                        let jz = zd + j * ns + n
                        for k in 0..<n {
                            o[k] = scale * (s1[k] * u[k] + s2[k] * jz[k] * u[n + k])
                            o[n + k] = scale * (s1[k] * u[n + k])
                        }
                    } else if s == 1 {
                        for k in 0..<n { o[k] = scale * (s1[k] * u[k]) }
                    } else if let z {
                        kernels_taylor_rule_adjoint(kernelISA, n, dJ, z + j * ns, cvals, diag ? 1 : 0, s1, s2, s3, u, scale,
                                                    o, wk)
                    } else {
                        kernels_taylor_first_rule_adjoint(kernelISA, n, d, w0 + j * d, firstCWs + j * d, firstQs[j],
                                                          s1, s2, s3, u, scale, o, wk)
                    }
                }
            }
        }
    }

    /// grad += Σ_l ∂/∂θ_l of Σ_{n} w_n · (seeded output), i.e. for every layer
    /// ∇W̃_l += Σ_{n,s} w_n G_l[:, (n,s)] Z̃_l[:, (n,s)]ᵀ. With `weights` nil, w_n = 1.
    func accumulateGradient(into grad: UnsafeMutablePointer<Double>, weights: UnsafePointer<Double>?) throws {
        try BLAS.onLibraryThreads { try accumulateLayerGradients(into: grad, weights: weights) }
    }

    private func accumulateLayerGradients(into grad: UnsafeMutablePointer<Double>, weights: UnsafePointer<Double>?) throws {
        let net = network, widths = net.widths, n = count, s = columnsPerSample
        let d = widths[0], ns = n * s, L = net.numLayers
        for l in 0..<L {
            let hin = widths[l], hout = widths[l + 1], unscaled = UnsafePointer(adjoints[l].pointer)
            let scaled = weights == nil ? nil : try scratch.reserve(hout * ns), g = scaled.map { UnsafePointer($0) } ?? unscaled
            // Row sums of the value block (the bias's input row is 1 there, 0 elsewhere) and, for
            // layer 0, of the J_i blocks (its input columns e_i): block b's sums at sums[b·hout...].
            let plainPoints = l == 0 && !hasExplicitInput
            let blocks = plainPoints && s > 1 ? 1 + d : 1, sums = try rowSums.reserve(blocks * hout)
            forEachRowRange(hout, ns) { rows, _ in
                if let weights, let scaled {
                    for r in (rows.lowerBound * s)..<(rows.upperBound * s) {
                        let src = unscaled + r * n, dst = scaled + r * n
                        for k in 0..<n { dst[k] = weights[k] * src[k] }
                    }
                }
                for b in 0..<blocks {
                    kernels_row_sums(kernelISA, rows.count, n, g + rows.lowerBound * ns + b * n, ns, sums + b * hout + rows.lowerBound)
                }
            }
            let gw = grad + net.weightOffset(l), gb = grad + net.biasOffset(l)
            for j in 0..<hout { gb[j] += sums[j] }
            if plainPoints {
                // Input columns x_n, e_i, 0: ∇W₀ += G_v X + [Σ_n Ḡ_{J_i}]_i, G_v the value blocks.
                BLAS.gemm(transB: true, m: hout, n: d, k: n, a: g, lda: ns, b: points.pointer, ldb: n, beta: 1, c: gw, ldc: d)
                for i in 0..<(blocks - 1) {
                    for j in 0..<hout { gw[j * d + i] += sums[(1 + i) * hout + j] }
                }
            } else {
                let input = layerInput(l)
                BLAS.gemm(transB: true, m: hout, n: hin, k: ns, a: g, lda: ns,
                          b: input, ldb: ns, beta: 1, c: gw, ldc: hin, threads: elementwiseThreads)
            }
        }
    }
}
