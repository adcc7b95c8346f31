// Timings of the Taylor-mode forward pass (u, ∇u, Δu) and of the PINN loss +
// gradient, for the networks of the paper's experiments.
//
//     .build/release/kfacpinn-bench [--threads T] [--quick]
import Glibc
import KFACPINN

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Median wall time of `body` over at least 3 runs and about `budget` seconds (after one warm-up).
func medianTime(budget: Double, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var times: [Double] = []
    let start = now()
    repeat {
        let t0 = now()
        try body()
        times.append(now() - t0)
    } while times.count < 3 || (now() - start < budget && times.count < 50)
    times.sort()
    return times[times.count / 2]
}

var arguments = CommandLine.arguments.dropFirst()
var threads = 2, quick = false
while let arg = arguments.popFirst() {
    switch arg {
    case "--threads": threads = Int(arguments.popFirst() ?? "") ?? 2
    case "--quick": quick = true
    default:
        print("usage: kfacpinn-bench [--threads T] [--quick]")
        exit(2)
    }
}
BLAS.numThreads = threads

let networks: [(String, [Int])] = [
    ("small", [64]), ("medium", [64, 64, 48, 48]), ("big", [256, 256, 128, 128]),
]
var cases: [(name: String, d: Int, hidden: [Int], n: Int)] = []
for d in [2, 5] {
    for (name, hidden) in networks {
        for n in [900, 3000] { cases.append((name, d, hidden, n)) }
    }
}
for n in [900, 3000] { cases.append(("big", 100, networks[2].1, n)) }
cases.append(("huge", 100, [768, 768, 512, 512], 100))
if quick { cases = cases.filter { $0.n == 900 || $0.name == "huge" } }

print("kfacpinn \(Version.string) benchmark, \(threads) BLAS thread(s), median wall time")
print("d    network        D  N_Ω   N_∂   forward (u,∇u,Δu) [ms]   loss+gradient [ms]")
for c in cases {
    let widths = [c.d] + c.hidden + [1]
    let net = try MLP(widths: widths, seed: 0)
    let op = try Operator.poisson(dimension: c.d)
    var rng = RandomSource(seed: 1)
    let m = c.n / 6
    let x = (0..<(c.n * c.d)).map { _ in rng.uniform() }
    let batch = try Batch(dimension: c.d, interiorPoints: x, source: (0..<c.n).map { _ in rng.uniform() },
                          boundaryPoints: (0..<(m * c.d)).map { _ in rng.uniform() },
                          boundaryValues: [Double](repeating: 0, count: m))
    let loss = try PINNLoss(network: net, operator: op)
    let budget = c.d == 100 ? 4.0 : 2.0
    let forward = try medianTime(budget: budget) { _ = try loss.loss(batch) }
    let gradient = try medianTime(budget: budget) { _ = try loss.lossAndGradient(batch) }
    let line = [String(c.d).padding(3), c.name.padding(7), String(net.numParameters).padding(8, left: true),
                String(c.n).padding(5, left: true), String(m).padding(5, left: true),
                format(forward * 1e3).padding(24, left: true), format(gradient * 1e3).padding(20, left: true)]
    print(line.joined(separator: "  "))
}

func format(_ v: Double) -> String {
    let scaled = (v * 100).rounded() / 100
    return "\(scaled)"
}

extension String {
    func padding(_ width: Int, left: Bool = false) -> String {
        let pad = String(repeating: " ", count: max(0, width - count))
        return left ? pad + self : self + pad
    }
}
