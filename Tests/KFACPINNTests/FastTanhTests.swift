import Testing
@testable import KFACPINN
import Glibc

struct FastTanhTests {
    @Test("fastTanh agrees with libm tanh to a few ulps, from tiny to saturated arguments")
    func matchesLibm() {
        var worst = 0.0, worstAt = 0.0
        var rng = RandomSource(seed: 1)
        var samples: [Double] = [0, -0.0, 1e-300, -1e-200, 1e-10, 0.34657359, 0.3466, 0.5, 1, 19.99, 20, 25, 700, -700,
                                 .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        for _ in 0..<200_000 { samples.append(rng.uniform(-25, 25)) }
        for _ in 0..<50_000 { samples.append(rng.uniform(-1, 1) * pow(10, rng.uniform(-20, 0))) }
        for x in samples {
            let exact = tanh(x), approx = fastTanh(x)
            let rel = exact == 0 ? abs(approx) : abs(approx - exact) / abs(exact)
            if rel > worst { worst = rel; worstAt = x }
        }
        #expect(worst < 1e-15, "max relative difference \(worst) at x = \(worstAt)")
    }
}
