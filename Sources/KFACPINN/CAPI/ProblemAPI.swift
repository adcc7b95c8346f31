/// Box of a built-in problem behind a `kfp_problem` handle.
final class ProblemHandle {
    let problem: Problem
    init(_ problem: Problem) { self.problem = problem }
}

/// Columns of a training log record (kfp_train's callback and CSV file). Values are fixed; new ones are only appended.
@c public enum kfp_log_column: Int32 {
    /// Steps taken so far (0: the initial network).
    case KFP_LOG_STEP = 0
    /// Training wall time in seconds (evaluation and logging excluded).
    case KFP_LOG_SECONDS = 1
    /// Loss before the latest step, on its batch.
    case KFP_LOG_LOSS = 2
    /// Interior term of that loss.
    case KFP_LOG_LOSS_INTERIOR = 3
    /// Condition (boundary/initial) term of that loss.
    case KFP_LOG_LOSS_BOUNDARY = 4
    /// L2 (RMS) error after the latest step on the evaluation points.
    case KFP_LOG_L2_ERROR = 5
    /// Relative L2 error after the latest step.
    case KFP_LOG_RELATIVE_L2_ERROR = 6
    /// Step size of the latest step.
    case KFP_LOG_STEP_SIZE = 7
    /// Number of columns.
    case KFP_LOG_COUNT = 8
}

/// Creates a built-in problem: "poisson2d_sin", "poisson5d_cos", "poisson10d_pairs",
/// "poisson100d_sq", "heat1d", "heat4d" or "logfp9d" (operator, domain, samplers, exact solution).
/// @param name NUL-terminated problem name.
/// @param out_problem receives the new handle (NULL on failure). Free it with kfp_problem_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for an unknown name.
@c public func kfp_problem_create(_ name: UnsafePointer<CChar>?, _ out_problem: UnsafeMutablePointer<OpaquePointer?>?) -> kfp_status {
    entryPoint("kfp_problem_create") {
        let out = try required(out_problem, "out_problem")
        out.pointee = nil
        publish(ProblemHandle(try Problem(name: String(cString: try required(name, "name")))), to: out)
    }
}

/// Frees a problem. NULL is a no-op.
@c public func kfp_problem_free(_ problem: OpaquePointer?) {
    releaseHandle(problem, ProblemHandle.self)
}

/// The input dimension of a problem (time first for time-dependent problems).
/// @param out_dim receives d.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE.
@c public func kfp_problem_dim(_ problem: OpaquePointer?, _ out_dim: UnsafeMutablePointer<Int64>?) -> kfp_status {
    entryPoint("kfp_problem_dim") {
        let p = try object(problem, ProblemHandle.self, "problem").problem
        try required(out_dim, "out_dim").pointee = Int64(p.dimension)
    }
}

/// A new handle to the problem's PDE operator.
/// @param out_op receives the new handle (NULL on failure). Free it with kfp_operator_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE.
@c public func kfp_problem_operator(_ problem: OpaquePointer?, _ out_op: UnsafeMutablePointer<OpaquePointer?>?) -> kfp_status {
    entryPoint("kfp_problem_operator") {
        let out = try required(out_op, "out_op")
        out.pointee = nil
        publish(OperatorHandle(try object(problem, ProblemHandle.self, "problem").problem.op), to: out)
    }
}

/// The layer widths (d, hidden..., 1) of one of the problem's default networks.
/// @param size NUL-terminated "small", "medium", "big" or "huge" (the sizes the problem has).
/// @param widths receives the widths (at most `capacity`).
/// @param capacity size of `widths`, >= the number of widths.
/// @param out_count receives the number of widths.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for an unknown size or a too small capacity.
@c public func kfp_problem_network_widths(
    _ problem: OpaquePointer?, _ size: UnsafePointer<CChar>?, _ widths: UnsafeMutablePointer<Int64>?,
    _ capacity: Int64, _ out_count: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_problem_network_widths") {
        let p = try object(problem, ProblemHandle.self, "problem").problem
        let w = try p.networkWidths(size: String(cString: try required(size, "size")))
        let out = try required(widths, "widths"), count = try required(out_count, "out_count")
        guard capacity >= Int64(w.count) else {
            throw KFPError.invalidArgument("capacity \(capacity) is less than the \(w.count) widths")
        }
        for (i, v) in w.enumerated() { out[i] = Int64(v) }
        count.pointee = Int64(w.count)
    }
}

/// Draws a training batch: interior points strictly inside the domain with f, condition points
/// (boundary faces and/or t = 0, as the problem defines) with g = u*; deterministic per seed.
/// @param num_interior N >= 1, or 0 for the problem's default.
/// @param num_boundary >= 0, or -1 for the problem's default.
/// @param sampler NUL-terminated "uniform" or "sobol" (quasi-random), or NULL for uniform.
/// @param out_batch receives the new handle (NULL on failure). Free it with kfp_batch_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for negative counts or an unknown sampler.
@c public func kfp_problem_sample(
    _ problem: OpaquePointer?, _ num_interior: Int64, _ num_boundary: Int64, _ seed: UInt64,
    _ sampler: UnsafePointer<CChar>?, _ out_batch: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    entryPoint("kfp_problem_sample") {
        let out = try required(out_batch, "out_batch")
        out.pointee = nil
        let p = try object(problem, ProblemHandle.self, "problem").problem
        let n = num_interior == 0 ? p.defaultInterior : try countArgument(num_interior, "num_interior")
        let m = num_boundary == -1 ? p.defaultBoundary : try countArgument(num_boundary, "num_boundary", minimum: 0)
        publish(BatchHandle(try p.sample(interior: n, boundary: m, seed: seed, sampler: try samplerNamed(sampler))), to: out)
    }
}

/// The sampler named by a C string (NULL: uniform).
private func samplerNamed(_ name: UnsafePointer<CChar>?) throws -> Problem.Sampler {
    let text = string(name, default: "uniform")
    guard let sampler = Problem.Sampler(rawValue: text) else {
        throw KFPError.invalidArgument("unknown sampler '\(text)' (known: uniform, sobol)")
    }
    return sampler
}

/// The exact solution u* at points.
/// @param x points, row-major num_points x dim.
/// @param num_points N >= 1.
/// @param dim must equal the problem's dimension.
/// @param u receives N values.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT; KFP_ERROR_DIMENSION_MISMATCH; KFP_ERROR_NON_FINITE.
@c public func kfp_problem_exact(
    _ problem: OpaquePointer?, _ x: UnsafePointer<Double>?, _ num_points: Int64, _ dim: Int64,
    _ u: UnsafeMutablePointer<Double>?
) -> kfp_status {
    entryPoint("kfp_problem_exact") {
        let p = try object(problem, ProblemHandle.self, "problem").problem
        let n = try countArgument(num_points, "num_points")
        guard dim == Int64(p.dimension) else {
            throw KFPError.dimensionMismatch("dim is \(dim), problem \(p.name) is \(p.dimension)-dimensional")
        }
        let values = try p.exact(try array(x, try checkedProduct(n, p.dimension, "points"), "x"), count: n)
        let out = try required(u, "u")
        for k in 0..<n { out[k] = values[k] }
    }
}

/// The L2 (RMS) and relative L2 errors of `net` against u* on num_eval fresh interior points.
/// @param num_eval >= 1 evaluation points, drawn with `seed`; 0 for 10 times the problem's default N_interior.
/// @param out_l2 receives sqrt(mean (u - u*)^2).
/// @param out_relative receives ||u - u*|| / ||u*|| (may be NULL).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT; KFP_ERROR_DIMENSION_MISMATCH.
@c public func kfp_problem_errors(
    _ problem: OpaquePointer?, _ net: OpaquePointer?, _ num_eval: Int64, _ seed: UInt64,
    _ out_l2: UnsafeMutablePointer<Double>?, _ out_relative: UnsafeMutablePointer<Double>?
) -> kfp_status {
    entryPoint("kfp_problem_errors") {
        let p = try object(problem, ProblemHandle.self, "problem").problem
        let mlp = try object(net, MLP.self, "net")
        let l2 = try required(out_l2, "out_l2")
        let n = num_eval == 0 ? 10 * p.defaultInterior : try countArgument(num_eval, "num_eval")
        let e = try p.errors(mlp, count: n, seed: seed)
        l2.pointee = e.l2
        out_relative?.pointee = e.relativeL2
    }
}

/// Trains `net` with `optimizer` on `problem`: batches drawn with seed, seed + 1, ... (a new one
/// every resample_every steps, or one fixed batch for 0); stops after `steps` steps or `seconds`
/// of training time, whichever comes first, or when the callback returns nonzero. Evaluates the
/// errors on 10 N_interior fresh points after step 0, 1, every log_every steps and the last.
/// @param steps >= 1.
/// @param seconds training-time budget; <= 0 for none.
/// @param num_interior, num_boundary batch sizes; 0 and -1 for the problem's defaults.
/// @param sampler "uniform" or "sobol" for the training batches, or NULL for uniform.
/// @param csv_path file for the log as CSV (header: the KFP_LOG_* names in lower case), or NULL.
/// @param callback called with each record (KFP_LOG_COUNT values) and user_data; nonzero stops; may be NULL.
/// @param out_steps receives the steps taken, on failure those up to the last record (may be NULL).
/// @return KFP_OK; the status of a failing step (its records so far were delivered); KFP_ERROR_NULL_POINTER;
///         KFP_ERROR_INVALID_ARGUMENT (counts, unwritable csv_path, net not the optimizer's); KFP_ERROR_DIMENSION_MISMATCH.
@c public func kfp_train(
    _ optimizer: OpaquePointer?, _ net: OpaquePointer?, _ problem: OpaquePointer?, _ steps: Int64, _ seconds: Double,
    _ num_interior: Int64, _ num_boundary: Int64, _ sampler: UnsafePointer<CChar>?, _ resample_every: Int64,
    _ log_every: Int64, _ seed: UInt64, _ csv_path: UnsafePointer<CChar>?,
    _ callback: (@convention(c) (UnsafePointer<Double>?, Int64, UnsafeMutableRawPointer?) -> Int32)?,
    _ user_data: UnsafeMutableRawPointer?, _ out_steps: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_train") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        let mlp = try object(net, MLP.self, "net")
        let p = try object(problem, ProblemHandle.self, "problem").problem
        guard mlp === opt.network else {
            throw KFPError.invalidArgument("net is not the network this optimizer was created for")
        }
        guard !seconds.isNaN else { throw KFPError.invalidArgument("seconds is NaN") }
        var options = TrainingOptions()
        options.steps = try countArgument(steps, "steps")
        options.seconds = seconds > 0 && seconds.isFinite ? seconds : nil
        options.interior = num_interior == 0 ? nil : try countArgument(num_interior, "num_interior")
        options.boundary = num_boundary == -1 ? nil : try countArgument(num_boundary, "num_boundary", minimum: 0)
        options.sampler = try samplerNamed(sampler)
        options.resampleEvery = try countArgument(resample_every, "resample_every", minimum: 0)
        options.logEvery = try countArgument(log_every, "log_every")
        options.dataSeed = seed
        options.csvPath = csv_path.map { String(cString: $0) }
        var taken: Int64 = 0
        defer { out_steps?.pointee = taken }
        try train(opt, on: p, options: options) { record in
            taken = Int64(record.step)
            guard let callback else { return true }
            return record.values.withUnsafeBufferPointer { callback($0.baseAddress, Int64($0.count), user_data) } == 0
        }
    }
}
