// Timings for the networks of the paper's experiments: the Taylor-mode forward
// pass (u, ∇u, Δu) and the PINN loss + gradient ("taylor"), KFAC / KFAC* steps
// with the share of each phase ("kfac"), the baselines ("baselines"), the sample-space kernel
// and the steps of Woodbury ENGD and SPRING ("samplespace", not in "all"), KFAC and KFAC* steps
// with the exact and the randomized second-order term in d = 100 and 1000, also refactorising
// every 10th step ("randomized", not in "all"); and, for benchmarks/compare_pytorch.py, one
// comparison case or the DGEMM rate as JSON.
//
//     .build/release/kfacpinn-bench [taylor|kfac|baselines|scaling|samplespace|randomized|all] [--threads T] [--quick]
//     .build/release/kfacpinn-bench case NAME | dgemm [--threads T]
import CBLAS
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

/// Mean wall time per call of `step` (no warm-up): at least `minimum` calls, then more until
/// the quick or full time budget or `maximum` calls.
@MainActor func meanStepTime(minimum: Int, maximum: Int, _ step: () throws -> Void) rethrows -> Double {
    let start = now()
    var steps = 0
    repeat {
        try step()
        steps += 1
    } while steps < minimum || (now() - start < (quick ? 2 : 6) && steps < maximum)
    return (now() - start) / Double(steps)
}

/// The cases of the side-by-side comparison (benchmarks/compare_pytorch.py): dimension,
/// hidden widths, interior and condition points.
let comparisonCases: [String: (d: Int, hidden: [Int], n: Int, m: Int)] = [
    "small2": (2, [64], 900, 120), "medium2": (2, [64, 64, 48, 48], 900, 120),
    "big2": (2, [256, 256, 128, 128], 900, 120), "big5": (5, [256, 256, 128, 128], 3000, 500),
    "huge100": (100, [768, 768, 512, 512], 100, 20),
]
var comparisonCase = ""

var arguments = CommandLine.arguments.dropFirst()
var threads = 2, quick = false, sections: Set<String> = ["taylor", "kfac", "baselines", "scaling"]
while let arg = arguments.popFirst() {
    switch arg {
    case "--threads": threads = Int(arguments.popFirst() ?? "") ?? 2
    case "--quick": quick = true
    case "taylor", "kfac", "baselines", "scaling", "samplespace", "randomized": sections = [arg]
    case "case":
        guard let name = arguments.popFirst(), comparisonCases[name] != nil else {
            print("known cases: " + comparisonCases.keys.sorted().joined(separator: ", "))
            exit(2)
        }
        sections = ["case"]
        comparisonCase = name
    case "dgemm": sections = ["dgemm"]
    case "all": break
    default:
        print("usage: kfacpinn-bench [taylor|kfac|baselines|scaling|samplespace|randomized|all] [--threads T] [--quick]")
        print("       kfacpinn-bench case NAME [--threads T]   (one JSON line: the side-by-side quantities)")
        print("       kfacpinn-bench dgemm [--threads T]       (one JSON line: the measured DGEMM rate)")
        exit(2)
    }
}
BLAS.numThreads = threads

/// Uniform points in [0,1]^d with random sources, and boundary points with g = 0.
func poissonBatch(d: Int, interior n: Int, boundary m: Int) throws -> Batch {
    var rng = RandomSource(seed: 1)
    var xb = (0..<(m * d)).map { _ in rng.uniform() }
    for k in 0..<m { xb[k * d + Int(rng.next() % UInt64(d))] = Double(rng.next() % 2) }
    return try Batch(dimension: d, interiorPoints: (0..<(n * d)).map { _ in rng.uniform() },
                     source: (0..<n).map { _ in rng.uniform() }, boundaryPoints: xb,
                     boundaryValues: [Double](repeating: 0, count: m))
}

/// Resident memory of this process in MiB.
func residentMiB() -> Double {
    guard let f = fopen("/proc/self/statm", "r") else { return .nan }
    defer { fclose(f) }
    var size = 0, resident = 0
    _ = withUnsafeMutablePointer(to: &size) { sp in
        withUnsafeMutablePointer(to: &resident) { rp in withVaList([sp, rp]) { vfscanf(f, "%ld %ld", $0) } }
    }
    return Double(resident) * Double(sysconf(Int32(_SC_PAGESIZE))) / 1048576
}

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

if sections == ["case"] {
    try comparisonSection(comparisonCase)
    exit(0)
}
if sections == ["dgemm"] {
    dgemmSection()
    exit(0)
}
print("kfacpinn \(Version.string) benchmark, \(threads) BLAS thread(s)")
if sections.contains("taylor") { try taylorSection() }
if sections.contains("kfac") { try kfacSection() }
if sections.contains("baselines") { try baselineSection() }
if sections.contains("scaling") { try scalingSection() }
if sections == ["samplespace"] { try sampleSpaceSection() }
if sections == ["randomized"] { try randomizedSection() }

@MainActor func taylorSection() throws {
print("\nTaylor mode: median wall time")
print("d    network        D  N_Ω   N_∂   forward (u,∇u,Δu) [ms]   loss+gradient [ms]")
for c in cases {
    let widths = [c.d] + c.hidden + [1]
    let net = try MLP(widths: widths, seed: 0)
    let op = try Operator.poisson(dimension: c.d)
    let m = c.n / 6
    let batch = try poissonBatch(d: c.d, interior: c.n, boundary: m)
    let loss = try PINNLoss(network: net, operator: op)
    let budget = c.d == 100 ? 4.0 : 2.0
    let forward = try medianTime(budget: budget) { _ = try loss.loss(batch) }
    let gradient = try medianTime(budget: budget) { _ = try loss.lossAndGradient(batch) }
    let line = [String(c.d).padding(3), c.name.padding(7), String(net.numParameters).padding(8, left: true),
                String(c.n).padding(5, left: true), String(m).padding(5, left: true),
                format(forward * 1e3).padding(24, left: true), format(gradient * 1e3).padding(20, left: true)]
    print(line.joined(separator: "  "))
}
}

/// Per-step time of KFAC (line search) and KFAC*, the share of each phase, and resident memory.
@MainActor func kfacSection() throws {
    var cases: [(name: String, d: Int, hidden: [Int], n: Int, m: Int)] = [
        ("small", 2, networks[0].1, 900, 120), ("medium", 2, networks[1].1, 900, 120),
        ("big", 2, networks[2].1, 900, 120), ("big", 5, networks[2].1, 3000, 500),
    ]
    if quick { cases.removeLast() }
    print("\nKFAC steps on Poisson: mean wall time per step and its share per phase")
    print("d  network        D  N_Ω/N_∂    rule          ms/step  forward backward factors inverse  solve  step-size   RSS MiB (first → last)")
    for c in cases {
        for rule in [KFAC.StepRule.lineSearch, .automatic] {
            let net = try MLP(widths: [c.d] + c.hidden + [1], seed: 0)
            var options = KFAC.Options()
            options.stepRule = rule
            options.dampingRule = .fixed   // the paper's KFAC*
            options.damping = 1e-10
            let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: c.d), options: options)
            let batch = try poissonBatch(d: c.d, interior: c.n, boundary: c.m)
            for _ in 0..<2 { _ = try kfac.step(batch) }
            let before = kfac.profile, rss0 = residentMiB()
            let perStep = try meanStepTime(minimum: 3, maximum: 500) { _ = try kfac.step(batch) }
            let p = kfac.profile, total = p.total - before.total
            func share(_ k: KeyPath<StepProfile, Double>) -> String {
                format(100 * (p[keyPath: k] - before[keyPath: k]) / total).padding(6, left: true) + "%"
            }
            let fields = [String(c.d).padding(2), c.name.padding(7), String(net.numParameters).padding(7, left: true),
                          "\(c.n)/\(c.m)".padding(9, left: true), (rule == .lineSearch ? "KFAC" : "KFAC*").padding(6),
                          format(perStep * 1e3).padding(14, left: true),
                          share(\.forward), share(\.backward), share(\.factors), share(\.inverse), share(\.solve),
                          share(\.stepSize), "\(format(rss0)) → \(format(residentMiB()))".padding(24, left: true)]
            print(fields.joined(separator: " "))
        }
    }
}

/// Time per KFAC and KFAC* step against the number of points (2-d Poisson, medium network,
/// N_∂ = N_Ω / 7.5): linear growth shows as a constant time per 1000 points.
@MainActor func scalingSection() throws {
    print("\nKFAC steps against N_\u{03A9} (2-d Poisson, medium network): median ms per step, and per 1000 points")
    print("  N_\u{03A9}   N_\u{2202}    KFAC ms  per 1000   KFAC* ms  per 1000")
    for n in quick ? [450, 900, 1800] : [225, 450, 900, 1800, 3600, 7200] {
        let m = max(n * 2 / 15, 1)
        var fields = [String(n).padding(6, left: true), String(m).padding(5, left: true)]
        for rule in [KFAC.StepRule.lineSearch, .automatic] {
            let net = try MLP(widths: [2] + networks[1].1 + [1], seed: 0)
            var options = KFAC.Options()
            options.stepRule = rule
            options.dampingRule = .fixed   // the paper's KFAC*
            let kfac = try KFAC(network: net, operator: try Operator.poisson(dimension: 2), options: options)
            let batch = try poissonBatch(d: 2, interior: n, boundary: m)
            for _ in 0..<2 { _ = try kfac.step(batch) }
            let t = try medianTime(budget: quick ? 1 : 3) { _ = try kfac.step(batch) }
            fields += [format(t * 1e3).padding(10, left: true), format(t * 1e6 / Double(n)).padding(9, left: true)]
        }
        print(fields.joined(separator: " "))
    }
}

/// Per-step time of each baseline on 2-d Poisson (900/120 points), after 2 warm-up steps.
@MainActor func baselineSection() throws {
    let op = try Operator.poisson(dimension: 2)
    let makers: [(String, (MLP) throws -> any Optimizer)] = [
        ("SGD", { try SGD(network: $0, operator: op) }), ("Adam", { try Adam(network: $0, operator: op) }),
        ("L-BFGS", { try LBFGS(network: $0, operator: op) }),
        ("ENGD full", { try ENGD(network: $0, operator: op) }),
        ("ENGD per-layer", { net in
            let o = try ENGD(network: net, operator: op); try o.setOption(.variant, .string("per_layer")); return o }),
        ("ENGD woodbury", { net in
            let o = try ENGD(network: net, operator: op); try o.setOption(.variant, .string("woodbury")); return o }),
        ("Hessian-free", { try HessianFree(network: $0, operator: op) }),
    ]
    print("\nBaselines on 2-d Poisson, 900/120 points: mean wall time per step (L-BFGS: one iteration; Hessian-free: mean CG iterations)")
    print("network        D  optimizer          ms/step")
    let batch = try poissonBatch(d: 2, interior: 900, boundary: 120)
    for (name, hidden) in networks.prefix(quick ? 1 : 2) {
        for (label, make) in makers {
            let net = try MLP(widths: [2] + hidden + [1], seed: 0)
            let optimizer = try make(net)
            for _ in 0..<2 { _ = try optimizer.step(batch) }
            let start = now()
            var steps = 0, iterations = 0
            repeat {
                _ = try optimizer.step(batch)
                steps += 1
                iterations += (optimizer as? HessianFree)?.lastIterations ?? 0
            } while steps < 3 || (now() - start < (quick ? 2 : 6) && steps < 500)
            let perStep = format((now() - start) / Double(steps) * 1e3)
            let cg = optimizer is HessianFree ? "   (\(format(Double(iterations) / Double(steps))) CG iterations)" : ""
            print([name.padding(7), String(net.numParameters).padding(6, left: true), label.padding(15),
                   perStep.padding(10, left: true)].joined(separator: "  ") + cg)
        }
    }
}

/// The sample-space methods (docs/math.md §7, §11): the kernel J̃J̃ᵀ of an M × D Jacobian by
/// one DSYRK against a DGEMM of the same product (M²D multiply-adds, GFLOP/s counting 2 per
/// multiply-add for both), and the mean step of Woodbury ENGD, SPRING and SPRING with a
/// rank-100 Nyström sketch on 5-d Poisson batches of M residuals (after one warm-up step).
@MainActor func sampleSpaceSection() throws {
    let widths: [(String, [Int])] = [("small", [5, 64, 1]), ("medium", [5, 64, 64, 48, 48, 1]), ("big", [5, 256, 256, 128, 128, 1])]
    let sizes = quick ? [1000] : [1000, 3500]
    print("\nSample-space kernel J J^T (M x D): DSYRK against DGEMM of the same product, GFLOP/s")
    print("    M       D    dsyrk    dgemm   dsyrk s")
    for m in sizes {
        for (_, w) in widths {
            let d = try MLP(widths: w).numParameters
            var rng = RandomSource(seed: 1)
            let j = (0..<(m * d)).map { _ in rng.uniform(-1, 1) }
            var k = [Double](repeating: 0, count: m * m)
            let flops = 2 * Double(m) * Double(m) * Double(d)
            let budget = flops > 1e11 ? 0.0 : 2.0
            let syrk = medianTime(budget: budget) {
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(m), Int32(d), 1, j, Int32(d), 0, &k, Int32(m))
            }
            let gemm = medianTime(budget: budget) {
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(m), Int32(d), 1, j, Int32(d), j, Int32(d),
                            0, &k, Int32(m))
            }
            // DSYRK computes one triangle: half the multiply-adds of the DGEMM.
            print([String(m).padding(5, left: true), String(d).padding(7, left: true),
                   format(flops / 2 / syrk / 1e9).padding(8, left: true), format(flops / gemm / 1e9).padding(8, left: true),
                   format(syrk).padding(9, left: true)].joined(separator: " "))
        }
    }
    print("\nSteps on 5-d Poisson with M = N_interior + N_boundary residuals (line search): mean ms/step")
    print("    M  network       D  ENGD woodbury       SPRING  SPRING nystrom k=100")
    let op = try Operator.poisson(dimension: 5)
    for m in sizes {
        let batch = try poissonBatch(d: 5, interior: m * 6 / 7, boundary: m - m * 6 / 7)
        for (name, w) in widths {
            var cells: [String] = []
            for make in [{ (net: MLP) -> any Optimizer in
                              let o = try ENGD(network: net, operator: op); try o.setOption(.variant, .string("woodbury")); return o },
                         { (net: MLP) -> any Optimizer in try SPRING(network: net, operator: op) },
                         { (net: MLP) -> any Optimizer in
                              let o = try SPRING(network: net, operator: op); try o.setOption(.variant, .string("nystrom")); return o }] {
                let net = try MLP(widths: w, seed: 0)
                let optimizer = try make(net)
                _ = try optimizer.step(batch)
                cells.append(format(try meanStepTime(minimum: 2, maximum: 100) { _ = try optimizer.step(batch) } * 1e3))
            }
            let d = try MLP(widths: w).numParameters
            print([String(m).padding(5, left: true), name.padding(7), String(d).padding(7, left: true),
                   cells[0].padding(14, left: true), cells[1].padding(12, left: true), cells[2].padding(21, left: true)].joined(separator: "  "))
        }
    }
}

/// KFAC and KFAC* steps on d-dimensional Poisson (N_Ω = 100, N_∂ = 50, the poisson100d_sq sizes)
/// with the exact second-order term and the randomized one from s probes per point; then, for
/// the first case, the same with the damped Kronecker sums refactorised every 10th step.
@MainActor func randomizedSection() throws {
    let cases: [(d: Int, name: String, hidden: [Int])] = quick ? [(100, "big", [256, 256, 128, 128])]
        : [(100, "huge", [768, 768, 512, 512]), (1000, "big", [256, 256, 128, 128]), (1000, "huge", [768, 768, 512, 512])]
    /// A KFAC optimizer (damping 1e-10, fixed) on the case's network and operator after its first
    /// step, which factorises.
    func warmedUp(_ c: (d: Int, name: String, hidden: [Int]), _ rule: KFAC.StepRule, probes: Int, inversePeriod: Int,
                  _ batch: Batch) throws -> KFAC {
        let base = try Operator.poisson(dimension: c.d)
        let op = probes == 0 ? base : try base.randomized(probes: probes, seed: 0)
        let net = try MLP(widths: [c.d] + c.hidden + [1], seed: 0)
        var options = KFAC.Options()
        options.stepRule = rule
        options.dampingRule = .fixed
        options.damping = 1e-10
        options.inversePeriod = inversePeriod
        let kfac = try KFAC(network: net, operator: op, options: options)
        _ = try kfac.step(batch)
        return kfac
    }
    func ruleName(_ rule: KFAC.StepRule) -> String { rule == .lineSearch ? "KFAC" : "KFAC*" }
    var phases: [String] = []
    /// A row of the phase table: ms per step in each phase from `before` to `after`.
    func phaseRow(_ c: (d: Int, name: String, hidden: [Int]), _ rule: KFAC.StepRule, probes: Int, period: Int,
                  _ before: StepProfile, _ after: StepProfile) -> String {
        let parts: [KeyPath<StepProfile, Double>] = [\.forward, \.backward, \.factors, \.inverse, \.solve, \.stepSize]
        let steps = Double(after.steps - before.steps)
        return [String(c.d).padding(4, left: true), c.name.padding(7), ruleName(rule).padding(6),
                (probes == 0 ? "exact" : "s = \(probes)").padding(7), String(period).padding(3, left: true)].joined(separator: "  ") + " "
            + parts.map { format((after[keyPath: $0] - before[keyPath: $0]) / steps * 1e3).padding(9, left: true) }.joined(separator: " ")
    }
    /// A row of a speed-up table: mean ms per step, exact and with s = 8, 16, 32 probes, refactorising
    /// every `period`-th step (1: over at least 2 steps and 6 s; else over `period` steps, one of
    /// which refactorises); the phases of exact and s = 16 go to `phases`.
    func speedRow(_ c: (d: Int, name: String, hidden: [Int]), _ rule: KFAC.StepRule, period: Int, _ batch: Batch) throws -> String {
        var cells: [String] = [], exact = 0.0
        for probes in [0, 8, 16, 32] {
            let kfac = try warmedUp(c, rule, probes: probes, inversePeriod: period, batch)
            let before = kfac.profile, ms: Double
            if period == 1 {
                ms = try meanStepTime(minimum: 2, maximum: 200) { _ = try kfac.step(batch) } * 1e3
            } else {
                let start = now()
                for _ in 0..<period { _ = try kfac.step(batch) }
                ms = (now() - start) / Double(period) * 1e3
            }
            if probes == 0 || probes == 16 { phases.append(phaseRow(c, rule, probes: probes, period: period, before, kfac.profile)) }
            if probes == 0 { exact = ms }
            cells.append(probes == 0 ? format(ms) : "\(format(ms)) (\(format(exact / ms))×)")
        }
        let D = try MLP(widths: [c.d] + c.hidden + [1]).numParameters
        return [String(c.d).padding(4, left: true), c.name.padding(7), String(D).padding(8, left: true),
                ruleName(rule).padding(6)].joined(separator: "  ") + " " + cells.map { $0.padding(12, left: true) }.joined(separator: " ")
    }
    print("\nKFAC and KFAC* steps on Poisson, N_Ω/N_∂ = 100/50: mean ms/step, exact against s probes (speed-up)")
    print("   d  network        D  rule         exact        s = 8       s = 16       s = 32")
    for c in cases {
        let batch = try poissonBatch(d: c.d, interior: 100, boundary: 50)
        for rule in [KFAC.StepRule.lineSearch, .automatic] { print(try speedRow(c, rule, period: 1, batch)) }
    }

    let period = 10, c = cases[0]
    print("\nThe same, d = \(c.d), refactorising every \(period)th step (inverse_period = \(period)): mean ms/step over \(period) steps")
    print("   d  network        D  rule         exact        s = 8       s = 16       s = 32")
    let batch = try poissonBatch(d: c.d, interior: 100, boundary: 50)
    for rule in [KFAC.StepRule.lineSearch, .automatic] { print(try speedRow(c, rule, period: period, batch)) }
    print("\nWhere a step's time goes, ms/step: exact against s = 16, refactorising every T_inv-th step")
    print("   d  network  rule    term    T_inv  forward  backward  factors  inverse    solve step-size")
    for line in phases { print(line) }
}

/// Peak resident memory of this process (VmHWM) in MiB.
func peakMiB() -> Double {
    guard let f = fopen("/proc/self/status", "r") else { return .nan }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), f) != nil {
        let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if text.hasPrefix("VmHWM:") {
            return Double(text.dropFirst(6).filter { $0.isNumber }).map { $0 / 1024 } ?? .nan
        }
    }
    return .nan
}

/// One JSON line for a comparison case: median seconds of the interior forward pass (u, ∇u, Δu
/// and residuals), loss + gradient, all Kronecker factors from scratch, one KFAC step (line
/// search) and one KFAC* step; BLAS flops and LAPACK's nominal flops per step; peak memory.
@MainActor func comparisonSection(_ name: String) throws {
    let c = comparisonCases[name]!
    let net = try MLP(widths: [c.d] + c.hidden + [1], seed: 0)
    let op = try Operator.poisson(dimension: c.d)
    let batch = try poissonBatch(d: c.d, interior: c.n, boundary: c.m)
    let interior = try Batch(dimension: c.d, interiorPoints: batch.interiorPoints, source: batch.source)
    let loss = try PINNLoss(network: net, operator: op)
    let budget = 3.0
    let forward = try medianTime(budget: budget) { _ = try loss.loss(interior) }
    let gradient = try medianTime(budget: budget) { _ = try loss.lossAndGradient(batch) }
    let factors = try medianTime(budget: budget) { _ = try loss.kroneckerFactors(batch) }
    var stepTimes: [Double] = [], stepFlops: [Double] = [], stepLAPACKFlops: [Double] = []
    for rule in [KFAC.StepRule.lineSearch, .automatic] {
        var options = KFAC.Options()
        options.stepRule = rule
        options.dampingRule = .fixed   // the paper's KFAC*
        let kfac = try KFAC(network: try MLP(widths: net.widths, seed: 0), operator: op, options: options)
        _ = try kfac.step(batch)
        let flops0 = BLAS.flops, lapackFlops0 = BLAS.lapackFlops
        var steps = 0.0
        stepTimes.append(try medianTime(budget: budget) { _ = try kfac.step(batch); steps += 1 })
        stepFlops.append((BLAS.flops - flops0) / steps)
        stepLAPACKFlops.append((BLAS.lapackFlops - lapackFlops0) / steps)
    }
    let fields: [(String, String)] = [
        ("case", "\"\(name)\""), ("parameters", "\(net.numParameters)"), ("threads", "\(threads)"),
        ("forward", "\(forward)"), ("loss_gradient", "\(gradient)"), ("factors", "\(factors)"),
        ("kfac_step", "\(stepTimes[0])"), ("kfac_star_step", "\(stepTimes[1])"),
        ("kfac_step_flops", "\(stepFlops[0])"), ("kfac_star_step_flops", "\(stepFlops[1])"),
        ("kfac_step_lapack_flops", "\(stepLAPACKFlops[0])"), ("kfac_star_step_lapack_flops", "\(stepLAPACKFlops[1])"),
        ("peak_mib", "\(peakMiB())"),
    ]
    print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
}

/// One JSON line: the best GFLOP/s of an n × n DGEMM (n = 2000 and 4000) with the current threads.
@MainActor func dgemmSection() {
    _ = BLAS.kernel
    var best = 0.0
    for n in [2000, 4000] {
        let a = [Double](repeating: 1.0 / Double(n), count: n * n)
        var c = [Double](repeating: 0, count: n * n)
        for _ in 0..<3 {
            let t0 = now()
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), a,
                        Int32(n), 0, &c, Int32(n))
            best = max(best, 2 * pow(Double(n), 3) / (now() - t0) / 1e9)
        }
    }
    print("{\"dgemm_gflops\": \(best), \"threads\": \(threads), \"kernel\": \"\(BLAS.kernel)\"}")
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
