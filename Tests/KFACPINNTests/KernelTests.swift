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
