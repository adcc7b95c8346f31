import KFACPINN

/// Deterministic test points, uniform in [lo, hi)^d, row-major count × d.
func randomPoints(_ count: Int, _ d: Int, seed: UInt64, lo: Double = -1, hi: Double = 1) -> [Double] {
    var rng = RandomSource(seed: seed)
    return (0..<(count * d)).map { _ in rng.uniform(lo, hi) }
}

/// max_i |a_i − b_i| / max(1, |b_i|).
func maxRelativeDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var m = 0.0
    for (x, y) in zip(a, b) { m = max(m, abs(x - y) / max(1, abs(y))) }
    return m
}

/// u at one point.
func value(_ net: MLP, _ x: [Double]) throws -> Double {
    try net.evaluate(x, count: 1)[0]
}
