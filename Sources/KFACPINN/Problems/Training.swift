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
    /// The values of the operator's trainable coefficients after the latest step, in their order
    /// (CSV columns coef_<name>).
    public var coefficients: [Double] = []

    /// The CSV columns, in the order of `values`.
    public static let columns = ["step", "seconds", "loss", "loss_interior", "loss_boundary", "l2_error",
                                 "relative_l2_error", "step_size"]

    /// The fixed columns' values (not the coefficients).
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
    /// Where to keep a checkpoint of the run (network, optimizer, driver state and log; nil: none).
    /// It is written every `checkpointEvery` steps (0: only at the end), at the end, and after a
    /// failing step (then holding the state before that step).
    public var checkpointPath: String? = nil
    public var checkpointEvery = 0
    /// Continue the run saved at `checkpointPath` if that file exists (else start afresh): the
    /// network, optimizer, step, time, batch and log become the saved ones, and training goes on to
    /// `steps` steps in all. The data options must be those the run was started with.
    public var resume = false

    public init() {}

    func validate() throws {
        guard steps >= 1 else { throw KFPError.invalidArgument("steps must be at least 1, got \(steps)") }
        if let s = seconds { guard s.isFinite, s > 0 else { throw KFPError.invalidArgument("seconds must be positive and finite, got \(s)") } }
        guard resampleEvery >= 0 else { throw KFPError.invalidArgument("resample_every must be at least 0, got \(resampleEvery)") }
        guard logEvery >= 1 else { throw KFPError.invalidArgument("log_every must be at least 1, got \(logEvery)") }
        if let n = interior { guard n >= 1 else { throw KFPError.invalidArgument("interior points must be at least 1, got \(n)") } }
        if let m = boundary { guard m >= 0 else { throw KFPError.invalidArgument("boundary points must be at least 0, got \(m)") } }
        if let e = evaluationPoints { guard e >= 1 else { throw KFPError.invalidArgument("evaluation points must be at least 1, got \(e)") } }
        guard checkpointEvery >= 0 else { throw KFPError.invalidArgument("checkpoint_every must be at least 0, got \(checkpointEvery)") }
        guard checkpointPath != nil || (checkpointEvery == 0 && !resume) else {
            throw KFPError.invalidArgument("checkpoint_every and resume need a checkpoint path")
        }
    }
}

/// Trains `optimizer`'s network on `problem` (docs/math.md §1 loss on seeded batches), logging
/// every `logEvery` steps. `callback` sees each record as it is made (after a resume, the saved
/// ones first) and returns false to stop. Returns the log. Deterministic for fixed seeds and
/// thread count, across checkpoints and resumes. A failing step throws after the last good step
/// has been logged (to the callback and the CSV file) and checkpointed; the network and the
/// optimizer are then as after that step, or, when the step reports divergence, as before it
/// (the checkpoint then holds the run before the undone step). `progress` holds the steps that
/// stand, also after a throw.
///
/// Data-parallel (an optimizer with a communicator of P processes, §13): every process calls
/// `train` with the same problem and options; the batch sizes are per process, and each process
/// trains on its part of the batch of P·N_Ω and P·N_∂ points that one process would draw from the
/// seed, so that a run of P processes takes the steps of one process with P times the points.
/// The training time is the processes' mean, a callback's stop stops every process, only rank 0
/// writes the checkpoint (a resume reads it on every process: a shared file system), and a
/// failure on any process (a file, memory) ends the call on every process.
@discardableResult
public func train(_ optimizer: any Optimizer, on problem: Problem, options: TrainingOptions = TrainingOptions(),
                  progress: TrainingProgress? = nil, callback: ((TrainingRecord) -> Bool)? = nil) throws -> [TrainingRecord] {
    try options.validate()
    let net = optimizer.network
    guard net.inputDimension == problem.dimension else {
        throw KFPError.dimensionMismatch("the network has \(net.inputDimension) inputs, problem \(problem.name) is \(problem.dimension)-dimensional")
    }
    let n = options.interior ?? problem.defaultInterior, m = options.boundary ?? problem.defaultBoundary
    // The trained coefficients of the optimizer's operator, logged with every record.
    let coefficients = (optimizer as? any CheckpointableOptimizer)?.loss.op.trainable ?? TrainableCoefficients()
    let data = TrainingData(problem: problem.name, interior: n, boundary: m, sampler: options.sampler,
                            seed: options.dataSeed, resampleEvery: options.resampleEvery)
    let group = (optimizer as? any CheckpointableOptimizer)?.loss.group ?? ProcessGroup()
    if group.isDistributed {
        var settings = SectionWriter()
        data.write(&settings)
        settings.int(options.steps)
        settings.double(options.seconds ?? 0)
        try requireSame(fnv1a(settings.bytes), on: group, "training settings (problem, points, sampler, seed, resampling, steps, time)")
    }
    /// This process's part of the batch of step `step` (all of it on a single process).
    func sampleBatch(step: Int) throws -> Batch {
        var batch: Batch? = nil
        try group.agree {
            batch = try problem.sample(interior: group.size * n, boundary: group.size * m, seed: data.batchSeed(step: step),
                                       sampler: options.sampler).part(group.rank, of: group.size)
        }
        return batch!
    }
    var run = TrainingRun()
    let resumes = try group.sum(count: 1) {
        [options.resume && options.checkpointPath.map { access($0, F_OK) == 0 } == true ? 1 : 0]
    }[0]
    if resumes > 0 {
        guard resumes == Double(group.size) else {
            throw KFPError.io("the checkpoint '\(options.checkpointPath ?? "")' to resume exists for \(Int(resumes)) of the \(group.size) processes")
        }
        try group.agree { run = try resumeTraining(optimizer, from: options.checkpointPath!, data: data) }
    }
    progress?.steps = run.step
    // Errors against the exact solution, when the problem has one (else NaN in the log).
    var evaluation: Problem.EvaluationSet? = nil
    var csv: UnsafeMutablePointer<FILE>? = nil
    defer { if let csv { fclose(csv) } }
    try group.agree {
        if problem.hasExactSolution {
            evaluation = try problem.evaluationSet(count: options.evaluationPoints ?? 10 * n, seed: options.evaluationSeed)
        }
        if let path = options.csvPath {
            guard let f = fopen(path, "w") else {
                throw KFPError.invalidArgument("cannot write the log to '\(path)': \(String(cString: strerror(errno)))")
            }
            csv = f
            fputs((TrainingRecord.columns + coefficients.entries.map { "coef_\($0.name)" }).joined(separator: ",") + "\n", f)
        }
    }
    func currentErrors() throws -> (l2: Double, relativeL2: Double) {
        guard let evaluation else { return (.nan, .nan) }
        return try problem.errors(net, on: evaluation)
    }
    var records: [TrainingRecord] = []
    var stopped = false
    // The log a checkpoint keeps: the records of step 0, 1 and every logEvery steps (not those
    // made because a run stopped or failed there), so a resumed log equals an uninterrupted one.
    func log(_ record: TrainingRecord, scheduled: Bool = true) {
        records.append(record)
        if scheduled { run.records.append(record) }
        if let csv { fputs((record.values + record.coefficients).map { "\($0)" }.joined(separator: ",") + "\n", csv); fflush(csv) }
        if let callback, !callback(record) { stopped = true }
    }
    let saved = run.records
    run.records = []
    for record in saved { log(record) }
    func saveCheckpoint() throws {
        guard let path = options.checkpointPath else { return }
        try group.agree {
            if group.rank == 0 { try ArchiveFile.write(try trainingCheckpoint(optimizer, data: data, run: run), to: path) }
        }
    }
    var batch = try sampleBatch(step: run.step)
    if run.step == 0 && records.isEmpty {
        // The loss as the optimizer sees it (a randomized operator's estimate with the first step's probes).
        let loss = try PINNLoss(network: net, operator: (optimizer as? any CheckpointableOptimizer)?.loss.op ?? problem.op)
        loss.group = group
        let initial = try loss.loss(batch)
        var errors = (l2: Double.nan, relativeL2: Double.nan)
        try group.agree { errors = try currentErrors() }
        log(TrainingRecord(step: 0, seconds: 0, loss: initial.total, lossInterior: initial.interior,
                           lossBoundary: initial.boundary, l2Error: errors.l2, relativeL2Error: errors.relativeL2, stepSize: 0,
                           coefficients: coefficients.values))
    }
    func record(_ stats: StepStatistics) throws -> TrainingRecord {
        let errors = try currentErrors()
        return TrainingRecord(step: run.step, seconds: run.seconds, loss: stats.loss, lossInterior: stats.lossInterior,
                              lossBoundary: stats.lossBoundary, l2Error: errors.l2, relativeL2Error: errors.relativeL2,
                              stepSize: stats.stepSize, coefficients: coefficients.values)
    }
    // A callback's stop on any process stops all.
    func agreeOnStop() throws {
        if group.isDistributed { stopped = try group.sum(count: 1) { [stopped ? 1 : 0] }[0] > 0 }
    }
    try agreeOnStop()
    var unlogged: StepStatistics? = nil
    var runBeforeLastStep = run
    while !stopped && run.step < options.steps && run.seconds < (options.seconds ?? .infinity) {
        let start = monotonicSeconds()
        let stats: StepStatistics
        do {
            if data.resampleEvery > 0 && run.step > 0 && run.step % data.resampleEvery == 0 {
                batch = try sampleBatch(step: run.step)
            }
            stats = try optimizer.step(batch)
        } catch {
            if case KFPError.diverged = error, (optimizer as? any GuardedOptimizer)?.divergence.stepsUndone == 1 {
                // The optimizer undid the last step: so does the run (its log rows stay written).
                run = runBeforeLastStep
                progress?.steps = run.step
            } else if let last = unlogged, let r = try? record(last) {
                // The optimizer is as after the last good step: log it if it was not.
                log(r, scheduled: false)
            }
            try? saveCheckpoint()
            throw error
        }
        runBeforeLastStep = run
        let elapsed = monotonicSeconds() - start
        run.seconds += group.isDistributed ? try group.sum(count: 1) { [elapsed] }[0] / Double(group.size) : elapsed
        run.step += 1
        progress?.steps = run.step
        unlogged = stats
        let last = run.step == options.steps || run.seconds >= (options.seconds ?? .infinity)
        let scheduled = run.step == 1 || run.step % options.logEvery == 0
        if scheduled || last {
            var made: TrainingRecord? = nil
            try group.agree { made = try record(stats) }
            log(made!, scheduled: scheduled)
            unlogged = nil
        }
        if options.checkpointEvery > 0 && run.step % options.checkpointEvery == 0 { try saveCheckpoint() }
        try agreeOnStop()
    }
    try saveCheckpoint()
    return records
}

/// The data settings of a run; a resumed run must have the same.
struct TrainingData: Equatable {
    var problem: String, interior: Int, boundary: Int, sampler: Problem.Sampler, seed: UInt64, resampleEvery: Int

    /// Seed of the batch that step `step` (0-based) trains on: a new batch every `resampleEvery` steps.
    func batchSeed(step: Int) -> UInt64 { seed &+ UInt64(resampleEvery > 0 ? step / resampleEvery : 0) }

    func write(_ s: inout SectionWriter) {
        s.string(problem)
        s.int(interior)
        s.int(boundary)
        s.string(sampler.rawValue)
        s.uint64(seed)
        s.int(resampleEvery)
    }

    static func read(_ s: inout SectionReader) throws -> TrainingData {
        let problem = try s.string(maxBytes: 256, "the problem's name")
        let interior = try s.int(in: 1...SectionReader.maxCount, "the interior points"), boundary = try s.int(in: 0...SectionReader.maxCount, "the condition points")
        let name = try s.string(maxBytes: 64, "the sampler")
        guard let sampler = Problem.Sampler(rawValue: name) else { throw s.corrupt("unknown sampler '\(name)'") }
        return TrainingData(problem: problem, interior: interior, boundary: boundary, sampler: sampler,
                            seed: try s.uint64(), resampleEvery: try s.int(in: 0...SectionReader.maxCount, "resample_every"))
    }

    /// Throws `.invalidArgument` naming the first setting in which `other` (the saved run's) differs.
    func requireSame(as other: TrainingData) throws {
        let pairs: [(String, String, String)] = [
            ("problem", problem, other.problem), ("interior points", "\(interior)", "\(other.interior)"),
            ("condition points", "\(boundary)", "\(other.boundary)"), ("sampler", sampler.rawValue, other.sampler.rawValue),
            ("seed", "\(seed)", "\(other.seed)"), ("resample_every", "\(resampleEvery)", "\(other.resampleEvery)")]
        for (what, mine, saved) in pairs where mine != saved {
            throw KFPError.invalidArgument("cannot resume: the checkpoint's run has \(what) \(saved), the options say \(mine)")
        }
    }
}

/// What a run has done so far, also when `train` throws.
public final class TrainingProgress {
    /// Steps taken that stand (in all, counting those of a resumed run; not one undone on divergence).
    public internal(set) var steps = 0

    public init() {}
}

/// Where a run stands: steps taken, training time, the log so far.
struct TrainingRun {
    var step = 0, seconds = 0.0, records: [TrainingRecord] = []
}

/// A training checkpoint: the network (NETW), the optimizer (OPTM, STAT) and the driver (DRIV:
/// data settings, step, time, batch index, log).
func trainingCheckpoint(_ optimizer: any Optimizer, data: TrainingData, run: TrainingRun) throws -> [UInt8] {
    var archive = ArchiveWriter(kind: .training)
    try optimizer.network.writeNetwork(into: &archive)
    try writeOptimizer(optimizer, into: &archive)
    archive.section("DRIV") { s in
        data.write(&s)
        s.int(run.step)
        s.double(run.seconds)
        s.int(run.records.count)
        for r in run.records { for v in r.values { s.double(v) } }
        // The records' coefficient values, p per record.
        let p = run.records.first?.coefficients.count ?? 0
        s.int(p)
        for r in run.records { for v in r.coefficients { s.double(v) } }
    }
    return try archive.bytes()
}

/// Restores the network and optimizer of the training checkpoint at `path` into `optimizer`
/// (bound to the same network shape and operator) and returns where the run stood. On a throw
/// nothing has changed.
func resumeTraining(_ optimizer: any Optimizer, from path: String, data: TrainingData) throws -> TrainingRun {
    let archive = try ArchiveReader(try ArchiveFile.read(path), expecting: .training)
    var s = try archive.section("DRIV")
    try data.requireSame(as: try TrainingData.read(&s))
    var run = TrainingRun()
    run.step = try s.int(in: 0...SectionReader.maxCount, "the step")
    run.seconds = try s.finiteDouble("the training time")
    let count = try s.int(in: 0...(s.remaining / (8 * TrainingRecord.columns.count)), "the number of log records")
    for _ in 0..<count {
        var v: [Double] = []
        for _ in TrainingRecord.columns { v.append(try s.double()) }
        guard let step = Int(exactly: v[0]) else { throw s.corrupt("a log record's step is \(v[0])") }
        run.records.append(TrainingRecord(step: step, seconds: v[1], loss: v[2], lossInterior: v[3], lossBoundary: v[4],
                                          l2Error: v[5], relativeL2Error: v[6], stepSize: v[7]))
    }
    let p = try s.int(in: 0...(count == 0 ? SectionReader.maxCount : s.remaining / (8 * count)), "the coefficients per log record")
    for k in run.records.indices { run.records[k].coefficients = try (0..<p).map { _ in try s.double() } }
    try s.finish()
    let saved = try MLP.readNetwork(archive)
    guard saved.widths == optimizer.network.widths, saved.activation == optimizer.network.activation else {
        throw KFPError.corrupt("the checkpoint is for a network of widths \(saved.widths) (\(saved.activation.rawValue)), the optimizer's has \(optimizer.network.widths) (\(optimizer.network.activation.rawValue))")
    }
    try restoreOptimizer(optimizer, from: archive)
    optimizer.network.assignParameters(saved.parameters)
    return run
}
