import Glibc

/// One line of a training log.
public struct TrainingRecord: Sendable, Equatable {
    /// Steps taken so far (0: the initial network).
    public var step: Int
    /// Training wall time so far in seconds (evaluation and logging excluded).
    public var seconds: Double
    /// Loss, interior and condition terms before the latest step, on that step's batch
    /// (for step 0: at the initial parameters on the first batch).
    public var loss: Double, lossInterior: Double, lossBoundary: Double
    /// L2 (RMS) and relative L2 error after the latest step (docs/math.md §8).
    public var l2Error: Double, relativeL2Error: Double
    /// Step size α of the latest step (0 for step 0).
    public var stepSize: Double

    /// The CSV columns, in the order of `values`.
    public static let columns = ["step", "seconds", "loss", "loss_interior", "loss_boundary", "l2_error",
                                 "relative_l2_error", "step_size"]

    public var values: [Double] {
        [Double(step), seconds, loss, lossInterior, lossBoundary, l2Error, relativeL2Error, stepSize]
    }
}

/// Settings of `train`.
public struct TrainingOptions: Sendable {
    /// Stop after this many steps (≥ 1) …
    public var steps = 1000
    /// … or after this much training time in seconds (nil: no time limit), whichever comes first.
    public var seconds: Double? = nil
    /// Points per batch (nil: the problem's defaults).
    public var interior: Int? = nil, boundary: Int? = nil
    /// Draw a new batch every this many steps (0: one fixed batch).
    public var resampleEvery = 0
    /// Evaluate and log every this many steps (and after the first and the last step).
    public var logEvery = 100
    /// How the training batches are drawn (the evaluation points are always uniform).
    public var sampler = Problem.Sampler.uniform
    /// Seed of the training batches (batch k uses dataSeed + k) and of the evaluation points.
    public var dataSeed: UInt64 = 0, evaluationSeed: UInt64 = 12345
    /// Evaluation points of the errors (nil: 10·N_Ω).
    public var evaluationPoints: Int? = nil
    /// Where to write the log as CSV (nil: not written).
    public var csvPath: String? = nil

    public init() {}

    func validate() throws {
        guard steps >= 1 else { throw KFPError.invalidArgument("steps must be at least 1, got \(steps)") }
        if let s = seconds { guard s.isFinite, s > 0 else { throw KFPError.invalidArgument("seconds must be positive and finite, got \(s)") } }
        guard resampleEvery >= 0 else { throw KFPError.invalidArgument("resample_every must be at least 0, got \(resampleEvery)") }
        guard logEvery >= 1 else { throw KFPError.invalidArgument("log_every must be at least 1, got \(logEvery)") }
        if let n = interior { guard n >= 1 else { throw KFPError.invalidArgument("interior points must be at least 1, got \(n)") } }
        if let m = boundary { guard m >= 0 else { throw KFPError.invalidArgument("boundary points must be at least 0, got \(m)") } }
        if let e = evaluationPoints { guard e >= 1 else { throw KFPError.invalidArgument("evaluation points must be at least 1, got \(e)") } }
    }
}

/// Trains `optimizer`'s network on `problem` (docs/math.md §1 loss on seeded batches), logging
/// every `logEvery` steps. `callback` sees each record as it is made and returns false to
/// stop. Returns the log. Deterministic for fixed seeds and thread count. A failing step
/// throws after the records so far have reached the callback and the CSV file.
@discardableResult
public func train(_ optimizer: any Optimizer, on problem: Problem, options: TrainingOptions = TrainingOptions(),
                  callback: ((TrainingRecord) -> Bool)? = nil) throws -> [TrainingRecord] {
    try options.validate()
    let net = optimizer.network
    guard net.inputDimension == problem.dimension else {
        throw KFPError.dimensionMismatch("the network has \(net.inputDimension) inputs, problem \(problem.name) is \(problem.dimension)-dimensional")
    }
    let n = options.interior ?? problem.defaultInterior, m = options.boundary ?? problem.defaultBoundary
    // Errors against the exact solution, when the problem has one (else NaN in the log).
    let evaluation = problem.hasExactSolution
        ? try problem.evaluationSet(count: options.evaluationPoints ?? 10 * n, seed: options.evaluationSeed) : nil
    func currentErrors() throws -> (l2: Double, relativeL2: Double) {
        guard let evaluation else { return (.nan, .nan) }
        return try problem.errors(net, on: evaluation)
    }
    var csv: UnsafeMutablePointer<FILE>? = nil
    if let path = options.csvPath {
        guard let f = fopen(path, "w") else {
            throw KFPError.invalidArgument("cannot write the log to '\(path)': \(String(cString: strerror(errno)))")
        }
        csv = f
        fputs(TrainingRecord.columns.joined(separator: ",") + "\n", f)
    }
    defer { if let csv { fclose(csv) } }
    var records: [TrainingRecord] = []
    var stopped = false
    func log(_ record: TrainingRecord) {
        records.append(record)
        if let csv { fputs(record.values.map { "\($0)" }.joined(separator: ",") + "\n", csv); fflush(csv) }
        if let callback, !callback(record) { stopped = true }
    }
    var batch = try problem.sample(interior: n, boundary: m, seed: options.dataSeed, sampler: options.sampler)
    var resamples: UInt64 = 0
    let initial = try PINNLoss(network: net, operator: problem.op).loss(batch)
    var errors = try currentErrors()
    log(TrainingRecord(step: 0, seconds: 0, loss: initial.total, lossInterior: initial.interior,
                       lossBoundary: initial.boundary, l2Error: errors.l2, relativeL2Error: errors.relativeL2, stepSize: 0))
    var seconds = 0.0, step = 0
    while !stopped && step < options.steps && seconds < (options.seconds ?? .infinity) {
        let start = monotonicSeconds()
        if options.resampleEvery > 0 && step > 0 && step % options.resampleEvery == 0 {
            resamples += 1
            batch = try problem.sample(interior: n, boundary: m, seed: options.dataSeed &+ resamples, sampler: options.sampler)
        }
        let stats = try optimizer.step(batch)
        seconds += monotonicSeconds() - start
        step += 1
        let last = step == options.steps || seconds >= (options.seconds ?? .infinity)
        if step == 1 || step % options.logEvery == 0 || last {
            errors = try currentErrors()
            log(TrainingRecord(step: step, seconds: seconds, loss: stats.loss, lossInterior: stats.lossInterior,
                               lossBoundary: stats.lossBoundary, l2Error: errors.l2, relativeL2Error: errors.relativeL2,
                               stepSize: stats.stepSize))
        }
    }
    return records
}
