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

/// A batch of random points in [−1, 1)^d with random sources and boundary values.
func smallBatch(_ d: Int, interior n: Int, boundary m: Int, seed: UInt64) throws -> Batch {
    var rng = RandomSource(seed: seed)
    return try Batch(dimension: d, interiorPoints: randomPoints(n, d, seed: seed),
                     source: (0..<n).map { _ in rng.uniform(-1, 1) },
                     boundaryPoints: randomPoints(m, d, seed: seed + 7),
                     boundaryValues: (0..<m).map { _ in rng.uniform(-1, 1) })
}
