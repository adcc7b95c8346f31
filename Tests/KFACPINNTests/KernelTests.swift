import CKernels
import Glibc
import Testing
@testable import KFACPINN

struct KernelTests {
    /// Every instruction set this CPU supports (the baseline kernel always).
    static let supportedISAs = (0...Int32(kernels_best_isa())).map { $0 }

    @Test("the tanh kernel agrees with libm tanh, and its σ', σ'', σ''' with their closed forms, on every supported instruction set",
          arguments: supportedISAs)
    func tanhRules(isa: Int32) {
        var rng = RandomSource(seed: 1)
        var x: [Double] = [0, -0.0, 1e-300, -1e-200, 1e-10, 0.34657359, 0.3466, 0.5, 1, 19.99, 20, 25, 700, -700,
                           .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        for _ in 0..<200_000 { x.append(rng.uniform(-25, 25)) }
        for _ in 0..<50_000 { x.append(rng.uniform(-1, 1) * pow(10, rng.uniform(-20, 0))) }
        let n = x.count
        var t = [Double](repeating: .nan, count: n), d1 = t, d2 = t, d3 = t
        kernels_tanh_rules(isa, n, x, &t, &d1, &d2, &d3)
        var worst = 0.0, worstAt = 0.0, worstRule = 0.0
        for k in 0..<n {
            let exact = tanh(x[k])
            let rel = exact == 0 ? abs(t[k]) : abs(t[k] - exact) / abs(exact)
            if rel > worst { worst = rel; worstAt = x[k] }
            // σ' = sech² x, σ'' = −2 tanh x sech² x, σ''' = (4 sinh² x − 2) sech⁴ x, from libm.
            let c = cosh(x[k]), sech2 = c.isFinite ? 1 / (c * c) : 0, sh = sinh(x[k])
            let third = c.isFinite ? (4 * sh * sh - 2) * sech2 * sech2 : 0
            for (got, want) in [(d1[k], sech2), (d2[k], -2 * exact * sech2), (d3[k], third)] {
                worstRule = max(worstRule, abs(got - want))
            }
        }
        #expect(worst < 1e-15, "ISA \(isa): max relative difference of tanh \(worst) at x = \(worstAt)")
        #expect(worstRule < 1e-14, "ISA \(isa): max difference of σ', σ'', σ''' \(worstRule)")
        // NaN stays NaN.
        var v = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        kernels_tanh_rules(isa, 1, [Double.nan], &v, &s1, &s2, &s3)
        let outputs = [v, s1, s2, s3], allNaN = outputs.allSatisfy { $0.isNaN }
        #expect(allNaN, "ISA \(isa): NaN input gave \(outputs)")
    }
}

extension KernelTests {
    @Test("the fused output kernels and the row combination agree with sums over libm tanh, on every supported instruction set",
          arguments: supportedISAs)
    func fusedOutputKernels(isa: Int32) {
        // h units, m samples (more than one block of 256), d directions; blocks `stride` apart, units `ld` apart.
        let h = 13, m = 300, d = 3, stride = m + 5, ld = (d + 2) * stride + 7
        var rng = RandomSource(seed: 2)
        let z = (0..<(h * ld)).map { _ in rng.uniform(-2, 2) }
        let b = (0..<h).map { _ in rng.uniform(-1, 1) }, a = (0..<h).map { _ in rng.uniform(-1, 1) }
        let w = (0..<(h * d)).map { _ in rng.uniform(-1, 1) }, q = (0..<h).map { _ in rng.uniform(0, 2) }
        let dense = (0..<(d * d)).map { _ in rng.uniform(-1, 1) }, diagonal = (0..<d).map { _ in rng.uniform(0, 2) }
        func worst(_ got: [Double], _ want: [Double]) -> Double {
            var e = 0.0
            for c in 0..<(want.count / m) { for k in 0..<m { e = max(e, abs(got[c * stride + k] - want[c * m + k]) / max(1, abs(want[c * m + k]))) } }
            return e
        }
        // First hidden layer: pre-activation b_j + Σ_i w_ji x_i (coordinate i of the points at
        // x + i·stride), J_ij = w_ji, T_j = 0, Q_j = q_j.
        let x = (0..<(d * stride)).map { _ in rng.uniform(-1, 1) }
        var want = [Double](repeating: 0, count: (d + 2) * m)
        for j in 0..<h {
            for k in 0..<m {
                let v = (0..<d).reduce(b[j]) { $0 + w[j * d + $1] * x[$1 * stride + k] }
                let t = tanh(v), s1 = 1 - t * t
                want[k] += a[j] * t
                for i in 0..<d { want[(1 + i) * m + k] += a[j] * s1 * w[j * d + i] }
                want[(d + 1) * m + k] += a[j] * (-2 * t * s1) * q[j]
            }
        }
        var out = [Double](repeating: .nan, count: (d + 2) * stride)
        kernels_tanh_first_output(isa, h, m, d, x, stride, b, w, q, a, 1, 1, &out)
        let first = worst(out, want)
        #expect(first < 1e-13, "ISA \(isa): first-layer fused output, max relative difference \(first)")
        // Without the gradient: the same u and T, zero ∂_i u blocks.
        var noGradient = [Double](repeating: .nan, count: (d + 2) * stride)
        kernels_tanh_first_output(isa, h, m, d, x, stride, b, w, q, a, 1, 0, &noGradient)
        #expect(checkWithoutGradient(noGradient, out, d: d, m: m, stride: stride), "ISA \(isa): first layer without ∇u")
        // The first layer's values b_j + Σ_i w_ji x_i of every unit, stored (points m apart here).
        let xm = (0..<(d * m)).map { x[($0 / m) * stride + $0 % m] }
        var layerValues = [Double](repeating: .nan, count: h * m), valueDifference = 0.0
        kernels_first_layer_values(isa, h, m, d, w, b, xm, &layerValues)
        for j in 0..<h {
            for k in 0..<m {
                var v = b[j]
                for i in 0..<d { v += w[j * d + i] * xm[i * m + k] }
                valueDifference = max(valueDifference, abs(layerValues[j * m + k] - v))
            }
        }
        #expect(valueDifference < 1e-14, "ISA \(isa): first-layer values, max difference \(valueDifference)")
        out = [Double](repeating: .nan, count: m)
        kernels_tanh_first_output(isa, h, m, d, x, stride, b, w, nil, a, 0, 1, &out)
        let firstValues = worst(out, Array(want[0..<m]))
        #expect(firstValues < 1e-13, "ISA \(isa): first-layer fused value output, max relative difference \(firstValues)")
        // Any hidden layer, with a diagonal and a dense C, and the value pass.
        for (c, isDiagonal) in [(diagonal, true), (dense, false)] {
            want = [Double](repeating: 0, count: (d + 2) * m)
            for j in 0..<h {
                for k in 0..<m {
                    let zj = { (block: Int) in z[j * ld + block * stride + k] }
                    let t = tanh(zj(0) + b[j]), s1 = 1 - t * t, s2 = -2 * t * s1
                    var quadratic = 0.0
                    for i in 0..<d { for l in 0..<d where isDiagonal ? i == l : true { quadratic += c[isDiagonal ? i : i * d + l] * zj(1 + i) * zj(1 + l) } }
                    want[k] += a[j] * t
                    for i in 0..<d { want[(1 + i) * m + k] += a[j] * s1 * zj(1 + i) }
                    want[(d + 1) * m + k] += a[j] * (s1 * zj(d + 1) + s2 * quadratic)
                }
            }
            out = [Double](repeating: .nan, count: (d + 2) * stride)
            kernels_tanh_output(isa, h, m, d, z, stride, ld, b, c, isDiagonal ? 1 : 0, 1, 1, a, &out)
            let hidden = worst(out, want)
            #expect(hidden < 1e-13, "ISA \(isa): fused output (\(isDiagonal ? "diagonal" : "dense") C), max relative difference \(hidden)")
            var noGradient = [Double](repeating: .nan, count: (d + 2) * stride)
            kernels_tanh_output(isa, h, m, d, z, stride, ld, b, c, isDiagonal ? 1 : 0, 1, 0, a, &noGradient)
            #expect(checkWithoutGradient(noGradient, out, d: d, m: m, stride: stride), "ISA \(isa): hidden layer without ∇u")
        }
        out = [Double](repeating: .nan, count: m)
        kernels_tanh_output(isa, h, m, d, z, stride, ld, b, dense, 0, 0, 1, a, &out)
        let values = worst(out, Array(want[0..<m]))
        #expect(values < 1e-13, "ISA \(isa): fused value output, max relative difference \(values)")
        // Row combination: out_c = Σ_j a_j z[j·ld + c].
        out = [Double](repeating: .nan, count: m)
        kernels_row_combination(isa, h, m, a, z, ld, &out)
        want = (0..<m).map { k in (0..<h).reduce(0.0) { $0 + a[$1] * z[$1 * ld + k] } }
        let rows = worst(out, want)
        #expect(rows < 1e-13, "ISA \(isa): row combination, max relative difference \(rows)")
        // Row sums over m = 300 and 5 values (tails of the eight partial sums), rows ld apart.
        for count in [m, 5] {
            var sums = [Double](repeating: .nan, count: h)
            kernels_row_sums(isa, h, count, z, ld, &sums)
            let sumDifference = (0..<h).map { j in abs(sums[j] - (0..<count).reduce(0.0) { $0 + z[j * ld + $1] }) }.max()!
            #expect(sumDifference < 1e-12, "ISA \(isa): row sums of \(count) values, max difference \(sumDifference)")
        }
    }
}

extension KernelTests {
    @Test("the one-pass tanh Taylor rules of output-only passes agree with the rules over libm tanh, on every supported instruction set",
          arguments: supportedISAs)
    func oneUnitRulesWithoutSlopes(isa: Int32) {
        let n = 600, d = 3, bias = 0.3   // more than two blocks of 256 samples
        var rng = RandomSource(seed: 3)
        let z = (0..<((d + 2) * n)).map { _ in rng.uniform(-2, 2) }, w = (0..<d).map { _ in rng.uniform(-1, 1) }
        let dense = (0..<(d * d)).map { _ in rng.uniform(-1, 1) }, diagonal = (0..<d).map { _ in rng.uniform(0, 2) }
        // Reference per sample: t = tanh(v + b), σ' = 1 − t², σ'' = −2tσ', then J'_i = σ' J_i,
        // T' = σ' T + σ'' Σ_il C_il J_i J_l (any hidden layer) or J'_i = σ' w_i, T' = σ'' q (first layer).
        // `values`: the first layer's pre-activations (else z's value block + bias).
        func reference(_ c: [Double]?, isDiagonal: Bool, firstLayer q: Double? = nil, values: [Double]? = nil) -> [Double] {
            var out = [Double](repeating: 0, count: (d + 2) * n)
            for k in 0..<n {
                let t = tanh(values?[k] ?? z[k] + bias), s1 = 1 - t * t, s2 = -2 * t * s1
                out[k] = t
                if let q {
                    for i in 0..<d { out[(1 + i) * n + k] = s1 * w[i] }
                    out[(d + 1) * n + k] = s2 * q
                    continue
                }
                var quadratic = 0.0
                for i in 0..<d {
                    for l in 0..<d where !isDiagonal || i == l {
                        quadratic += c![isDiagonal ? i : i * d + l] * z[(1 + i) * n + k] * z[(1 + l) * n + k]
                    }
                    out[(1 + i) * n + k] = s1 * z[(1 + i) * n + k]
                }
                out[(d + 1) * n + k] = s1 * z[(d + 1) * n + k] + s2 * quadratic
            }
            return out
        }
        // Slopes kept: rows σ', σ'', σ''' `stride` apart, equal to the tanh kernel's at v + b.
        let stride = n + 3
        func tanhSlopes(_ v: [Double]) -> [Double] {
            var want = [Double](repeating: .nan, count: 3 * n), values = [Double](repeating: 0, count: n)
            want.withUnsafeMutableBufferPointer { p in
                let s = p.baseAddress!
                kernels_tanh_rules(isa, n, v, &values, s, s + n, s + 2 * n)
            }
            return want
        }
        func keptSlopes(_ slopes: [Double]) -> [Double] {
            (0..<3).flatMap { r in slopes[(r * stride)..<(r * stride + n)] }
        }
        let want = tanhSlopes((0..<n).map { z[$0] + bias })
        for (c, isDiagonal) in [(diagonal, true), (dense, false)] {
            var got = [Double](repeating: .nan, count: (d + 2) * n)
            kernels_tanh_taylor_rule(isa, n, d, z, bias, c, isDiagonal ? 1 : 0, 1, &got, nil, 0)
            let difference = maxRelativeDifference(got, reference(c, isDiagonal: isDiagonal))
            #expect(difference < 1e-13, "ISA \(isa), \(isDiagonal ? "diagonal" : "dense") C: max relative difference \(difference)")
            var kept = [Double](repeating: .nan, count: (d + 2) * n), slopes = [Double](repeating: .nan, count: 3 * stride)
            kernels_tanh_taylor_rule(isa, n, d, z, bias, c, isDiagonal ? 1 : 0, 1, &kept, &slopes, stride)
            let outputDifference = maxRelativeDifference(kept, got)
            let slopeDifference = maxRelativeDifference(keptSlopes(slopes), want)
            #expect(outputDifference == 0 && slopeDifference == 0,
                    "ISA \(isa), slopes kept: output differs by \(outputDifference), slopes by \(slopeDifference)")
        }
        var values = [Double](repeating: .nan, count: n)
        kernels_tanh_taylor_rule(isa, n, d, z, bias, dense, 0, 0, &values, nil, 0)
        let valueDifference = maxRelativeDifference(values, Array(reference(dense, isDiagonal: false)[0..<n]))
        #expect(valueDifference < 1e-14, "ISA \(isa), value only: max relative difference \(valueDifference)")
        // First layer: pre-activation bias + Σ_i w_i x_i from the points' coordinates (d rows of n).
        let quadratic = 0.7
        let x = (0..<(d * n)).map { _ in rng.uniform(-1, 1) }
        let v = (0..<n).map { k in (0..<d).reduce(bias) { $0 + w[$1] * x[$1 * n + k] } }
        let firstReference = reference(nil, isDiagonal: true, firstLayer: quadratic, values: v)
        var first = [Double](repeating: .nan, count: (d + 2) * n)
        kernels_tanh_first_rule(isa, n, d, x, bias, w, quadratic, 1, &first, nil, 0)
        let firstDifference = maxRelativeDifference(first, firstReference)
        #expect(firstDifference < 1e-13, "ISA \(isa), first layer: max relative difference \(firstDifference)")
        var firstKept = [Double](repeating: .nan, count: (d + 2) * n), firstSlopes = [Double](repeating: .nan, count: 3 * stride)
        kernels_tanh_first_rule(isa, n, d, x, bias, w, quadratic, 1, &firstKept, &firstSlopes, stride)
        let firstOutputDifference = maxRelativeDifference(firstKept, first)
        let firstSlopeDifference = maxRelativeDifference(keptSlopes(firstSlopes), tanhSlopes(v))
        // (The kernel's pre-activations may round differently from `v`: it may fuse multiply-adds.)
        #expect(firstOutputDifference == 0 && firstSlopeDifference < 1e-13,
                "ISA \(isa), first layer, slopes kept: output differs by \(firstOutputDifference), slopes by \(firstSlopeDifference)")
        var firstValue = [Double](repeating: .nan, count: n)
        kernels_tanh_first_rule(isa, n, d, x, bias, w, 0, 0, &firstValue, nil, 0)
        let firstValueDifference = maxRelativeDifference(firstValue, Array(firstReference[0..<n]))
        #expect(firstValueDifference < 1e-13, "ISA \(isa), first layer, value only: max relative difference \(firstValueDifference)")
    }
}

/// The output of a fused kernel run without ∇u: u and T bitwise those of the full run, ∂_i u zero.
func checkWithoutGradient(_ got: [Double], _ full: [Double], d: Int, m: Int, stride: Int) -> Bool {
    (0..<m).allSatisfy { k in
        got[k] == full[k] && got[(d + 1) * stride + k] == full[(d + 1) * stride + k]
            && (1...d).allSatisfy { got[$0 * stride + k] == 0 }
    }
}

extension KernelTests {
    @Test("the parameter-vector kernels: first non-finite index, the quadratic model's inner products and the one-sweep update agree with plain loops, on every supported instruction set",
          arguments: supportedISAs)
    func parameterVectorKernels(isa: Int32) {
        var rng = RandomSource(seed: 31)
        for n in [1, 7, 8, 255, 256, 257, 1000, 5003] {
            let x = (0..<n).map { _ in rng.uniform(-2, 2) }
            var index = 7
            kernels_first_nonfinite(isa, n, x, &index)
            #expect(index == -1, "ISA \(isa), n \(n): all finite, got index \(index)")
            for bad in [Double.infinity, -.infinity, .nan] {
                for at in Set([0, n / 2, n - 1]) {
                    var y = x
                    y[at] = bad
                    if at + 1 < n { y[n - 1] = .nan }   // a later one is not reported
                    kernels_first_nonfinite(isa, n, y, &index)
                    #expect(index == at, "ISA \(isa), n \(n): \(bad) at \(at), reported \(index)")
                }
            }
            let a = (0..<n).map { _ in rng.uniform(-1, 1) }, b = (0..<n).map { _ in rng.uniform(-1, 1) }
            var products = [Double](repeating: .nan, count: 5)
            kernels_model_products(isa, n, x, a, b, &products)
            func dot(_ u: [Double], _ v: [Double]) -> Double { zip(u, v).reduce(0) { $0 + $1.0 * $1.1 } }
            let expected = [dot(a, a), dot(x, a), dot(a, b), dot(b, b), dot(x, b)]
            let difference = zip(products, expected).map { abs($0 - $1) }.max()!
            #expect(difference < 1e-12 * Double(n), "ISA \(isa), n \(n): inner products differ by \(difference)")
            // c = α a + μ b, θ₀ = θ, θ ← θ + c.
            let (alpha, mu) = (0.75, -1.5)
            var theta = x, theta0 = [Double](repeating: .nan, count: n), c = theta0, sums = [Double](repeating: .nan, count: 2)
            kernels_apply_update(isa, n, alpha, a, mu, b, &theta, &theta0, &c, &sums)
            let wantC = (0..<n).map { alpha * a[$0] + mu * b[$0] }
            let cDifference = zip(c, wantC).map { abs($0 - $1) }.max()!
            let thetaDifference = (0..<n).map { abs(theta[$0] - (x[$0] + c[$0])) }.max()!
            #expect(cDifference < 1e-15 && thetaDifference == 0 && theta0 == x,
                    "ISA \(isa), n \(n): update differs by \(cDifference), θ by \(thetaDifference)")
            #expect(abs(sums[0] - dot(c, c)) < 1e-12 * Double(n) && sums[1] == 0, "ISA \(isa), n \(n): sums \(sums)")
            var big = x
            big[n / 2] = .greatestFiniteMagnitude
            kernels_apply_update(isa, n, 1, [Double](repeating: .greatestFiniteMagnitude, count: n), 0, b, &big, &theta0, &c, &sums)
            #expect(sums[1].isNaN, "ISA \(isa), n \(n): an overflowing update was not flagged (\(sums[1]))")
        }
    }
}
