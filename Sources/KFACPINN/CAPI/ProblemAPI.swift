import KFPTypes
/// Box of a built-in problem behind a `kfp_problem` handle.
final class ProblemHandle {
    var problem: Problem
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
/// "poisson100d_sq", "heat1d", "heat4d", "logfp9d" (the paper's), "poisson2d_mixed" (Dirichlet,
/// Neumann and Robin faces), "wave1d" (initial value and velocity) or "disk_robin" (a Robin
/// condition on the unit circle) (operator, domain, samplers, exact solution; batches hold one
/// term per condition).
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

/// A C function of points as a PointFunction (the pointer and user data are the caller's).
private func pointFunction(_ f: kfp_point_function?, _ user_data: UnsafeMutableRawPointer?, _ name: String) throws -> PointFunction {
    guard let f else { throw KFPError.nullPointer("\(name) is NULL") }
    struct Callback: @unchecked Sendable { let f: kfp_point_function, data: UnsafeMutableRawPointer? }
    let callback = Callback(f: f, data: user_data)
    return PointFunction(batch: { x, n, d, out in
        out.update(repeating: .nan, count: n)
        callback.f(callback.data, x, Int64(n), Int64(d), out)
    })
}

/// Creates a problem of your own on a box: the operator `op` (its dimension is the box's),
/// lower[i] < upper[i], and the source f. Add conditions with kfp_problem_add_condition and, for
/// the logged errors, the exact solution with kfp_problem_set_exact. The problem keeps the
/// function pointers and user data (they must stay valid while it is used) and a copy of `op`.
/// Default batch: 1000 interior and 200 condition points (kfp_problem_set_sizes).
/// @param lower, upper dim bounds each.
/// @param source f, with source_data passed to it.
/// @param out_problem receives the new handle (NULL on failure). Free it with kfp_problem_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_DIMENSION_MISMATCH (dim and the operator);
///         KFP_ERROR_INVALID_ARGUMENT (bounds); KFP_ERROR_NON_FINITE.
@c public func kfp_problem_create_box(
    _ op: OpaquePointer?, _ lower: UnsafePointer<Double>?, _ upper: UnsafePointer<Double>?, _ dim: Int64,
    _ source: kfp_point_function?, _ source_data: UnsafeMutableRawPointer?, _ out_problem: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    createCustom("kfp_problem_create_box", op, dim, source, source_data, out_problem) { o, d, f in
        let box = (lower: try array(try required(lower, "lower"), d, "lower"), upper: try array(try required(upper, "upper"), d, "upper"))
        return try Problem(custom: "custom", operator: o, box: box, source: f, conditions: [])
    }
}

/// A problem of your own behind `out_problem`, made by `make` from the operator, the dimension
/// and the source.
private func createCustom(
    _ name: StaticString, _ op: OpaquePointer?, _ dim: Int64, _ source: kfp_point_function?,
    _ source_data: UnsafeMutableRawPointer?, _ out_problem: UnsafeMutablePointer<OpaquePointer?>?,
    _ make: (Operator, Int, PointFunction) throws -> Problem
) -> kfp_status {
    entryPoint(name) {
        let out = try required(out_problem, "out_problem")
        out.pointee = nil
        let o = try object(op, OperatorHandle.self, "op").op, d = try countArgument(dim, "dim")
        publish(ProblemHandle(try make(o, d, try pointFunction(source, source_data, "source"))), to: out)
    }
}

/// Creates a problem of your own on the ball |x - center| < radius (see kfp_problem_create_box);
/// its one face is named "boundary" (or "all"), with outward normals (x - center)/radius.
/// @param center dim coordinates.
/// @param radius > 0.
/// @return as kfp_problem_create_box.
@c public func kfp_problem_create_ball(
    _ op: OpaquePointer?, _ center: UnsafePointer<Double>?, _ radius: Double, _ dim: Int64,
    _ source: kfp_point_function?, _ source_data: UnsafeMutableRawPointer?, _ out_problem: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    createCustom("kfp_problem_create_ball", op, dim, source, source_data, out_problem) { o, d, f in
        let ball = (center: try array(try required(center, "center"), d, "center"), radius: radius)
        return try Problem(custom: "custom", operator: o, ball: ball, source: f, conditions: [])
    }
}

/// Creates a problem on points you supply: every training batch is `batch` (any geometry: its
/// terms carry points, values, normals and weights; see kfp_batch_add_term). With an exact
/// solution (kfp_problem_set_exact) the errors are evaluated on the batch's interior points.
/// @param batch copied; needs an interior term with points.
/// @param out_problem receives the new handle (NULL on failure). Free it with kfp_problem_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_DIMENSION_MISMATCH; KFP_ERROR_INVALID_ARGUMENT.
@c public func kfp_problem_create_points(
    _ op: OpaquePointer?, _ batch: OpaquePointer?, _ out_problem: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    entryPoint("kfp_problem_create_points") {
        let out = try required(out_problem, "out_problem")
        out.pointee = nil
        let o = try object(op, OperatorHandle.self, "op").op, b = try object(batch, BatchHandle.self, "batch").batch
        publish(ProblemHandle(try Problem(custom: "points", operator: o, points: b)), to: out)
    }
}

/// Adds a condition to a problem of your own: Dirichlet u = g, Neumann du/dn = g or Robin
/// a u + b du/dn = g on the named faces, along the outward normal. On failure the problem is unchanged.
/// @param faces "x<i>-" / "x<i>+" (coordinate i at its lower / upper bound), several separated by
/// commas, or "all" (the faces no other condition names); a ball's face is "boundary".
/// @param kind KFP_TERM_DIRICHLET, KFP_TERM_NEUMANN or KFP_TERM_ROBIN.
/// @param value g, with user_data passed to it.
/// @param a, b Robin's coefficients (not both 0); ignored for the other kinds.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT (kind, an unknown face, a face
///         given two conditions, a = b = 0, a built-in problem).
@c public func kfp_problem_add_condition(
    _ problem: OpaquePointer?, _ faces: UnsafePointer<CChar>?, _ kind: Int32, _ value: kfp_point_function?,
    _ user_data: UnsafeMutableRawPointer?, _ a: Double, _ b: Double
) -> kfp_status {
    entryPoint("kfp_problem_add_condition") {
        let handle = try object(problem, ProblemHandle.self, "problem")
        let names = String(cString: try required(faces, "faces"))
        let conditionKind: FaceCondition.Kind
        switch try LossTermKind(key: kind) {
        case .dirichlet: conditionKind = .dirichlet
        case .neumann: conditionKind = .neumann
        case .robin: conditionKind = .robin(a: a, b: b)
        case .interior, .observation:
            throw KFPError.invalidArgument("a condition is KFP_TERM_DIRICHLET, KFP_TERM_NEUMANN or KFP_TERM_ROBIN")
        }
        handle.problem = try handle.problem.adding(faces: names, kind: conditionKind, direction: nil,
                                                   value: try pointFunction(value, user_data, "value"))
    }
}

/// Adds initial conditions on the face t = lower[0] (time is coordinate 0): the value u = g
/// (a Dirichlet condition on "x0-") and, if `velocity` is not NULL, du/dt = v (a Neumann
/// condition along +e_t), for equations of second order in time. On failure the problem is unchanged.
/// @param value g(x) at t = 0, with value_data.
/// @param velocity v(x) at t = 0 with velocity_data, or NULL.
/// @return as kfp_problem_add_condition.
@c public func kfp_problem_add_initial(
    _ problem: OpaquePointer?, _ value: kfp_point_function?, _ value_data: UnsafeMutableRawPointer?,
    _ velocity: kfp_point_function?, _ velocity_data: UnsafeMutableRawPointer?
) -> kfp_status {
    entryPoint("kfp_problem_add_initial") {
        let handle = try object(problem, ProblemHandle.self, "problem")
        var p = try handle.problem.adding(faces: "x0-", kind: .dirichlet, direction: nil, value: try pointFunction(value, value_data, "value"))
        if velocity != nil {
            let et = [1.0] + [Double](repeating: 0, count: p.dimension - 1)
            p = try p.adding(faces: "x0-", kind: .neumann, direction: et, value: try pointFunction(velocity, velocity_data, "velocity"))
        }
        handle.problem = p
    }
}

/// Adds measurements of the solution to a problem of your own: every batch gets an observation
/// term r = u(x_k) - y_k over these points, of weight `weight` (replacing earlier observations).
/// With trainable operator coefficients (kfp_operator_set_trainable) this is an inverse problem.
/// @param x points, row-major num_points x dim (dim = the problem's dimension).
/// @param values num_points measured values y.
/// @param weight w >= 0: the term adds w/(2 num_points) sum_k (u(x_k) - y_k)^2 to the loss.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE; KFP_ERROR_INVALID_ARGUMENT (a
///         built-in problem or one on points, num_points < 1, weight); KFP_ERROR_DIMENSION_MISMATCH
///         (dim); KFP_ERROR_NON_FINITE (x, values). On failure the problem is unchanged.
@c public func kfp_problem_set_observations(
    _ problem: OpaquePointer?, _ x: UnsafePointer<Double>?, _ values: UnsafePointer<Double>?, _ num_points: Int64,
    _ dim: Int64, _ weight: Double
) -> kfp_status {
    entryPoint("kfp_problem_set_observations") {
        let handle = try object(problem, ProblemHandle.self, "problem")
        let n = try countArgument(num_points, "num_points"), d = try countArgument(dim, "dim")
        guard d == handle.problem.dimension else {
            throw KFPError.dimensionMismatch("dim is \(d), the problem is \(handle.problem.dimension)-dimensional")
        }
        let points = try array(try required(x, "x"), try checkedProduct(n, d, "the observation points"), "x")
        let measured = try array(try required(values, "values"), n, "values")
        handle.problem = try handle.problem.withObservations(points: points, values: measured, weight: weight)
    }
}

/// Gives condition `index` of a problem of your own (in the order added; kfp_problem_add_initial
/// adds one or two) a fixed number of points per batch; the other conditions share the rest of
/// the batch's condition points by face area (if every condition has a count, the counts make
/// the batch). On failure the problem is unchanged.
/// @param num_points >= 0, or -1 for a share by area (the default).
/// @return KFP_OK; KFP_ERROR_INVALID_ARGUMENT (index, num_points, a built-in problem).
@c public func kfp_problem_set_condition_points(_ problem: OpaquePointer?, _ index: Int64, _ num_points: Int64) -> kfp_status {
    entryPoint("kfp_problem_set_condition_points") {
        let handle = try object(problem, ProblemHandle.self, "problem")
        let count = num_points == -1 ? nil : try countArgument(num_points, "num_points", minimum: 0)
        guard let i = Int(exactly: index) else { throw KFPError.invalidArgument("condition index \(index) out of range") }
        handle.problem = try handle.problem.withConditionPoints(i, count)
    }
}

/// Sets the exact solution of a problem of your own: the training log then has its errors.
/// @param exact u*, with user_data passed to it.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for a built-in problem.
@c public func kfp_problem_set_exact(
    _ problem: OpaquePointer?, _ exact: kfp_point_function?, _ user_data: UnsafeMutableRawPointer?
) -> kfp_status {
    entryPoint("kfp_problem_set_exact") {
        let handle = try object(problem, ProblemHandle.self, "problem")
        handle.problem = try handle.problem.withExact(try pointFunction(exact, user_data, "exact"))
    }
}

/// Sets the default batch sizes of a problem of your own (kfp_train's and kfp_problem_sample's
/// defaults).
/// @param num_interior >= 1.
/// @param num_boundary >= 0.
/// @return KFP_OK; KFP_ERROR_INVALID_ARGUMENT.
@c public func kfp_problem_set_sizes(_ problem: OpaquePointer?, _ num_interior: Int64, _ num_boundary: Int64) -> kfp_status {
    entryPoint("kfp_problem_set_sizes") {
        let handle = try object(problem, ProblemHandle.self, "problem")
        handle.problem = try handle.problem.withSizes(interior: try countArgument(num_interior, "num_interior"),
                                                      boundary: try countArgument(num_boundary, "num_boundary", minimum: 0))
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

/// Fills `out_options` with the defaults of kfp_train (see kfp_train_options) and its `size`.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER.
@c public func kfp_train_default_options(_ out_options: UnsafeMutablePointer<kfp_train_options>?) -> kfp_status {
    entryPoint("kfp_train_default_options") {
        var o = kfp_train_options()
        o.size = Int64(MemoryLayout<kfp_train_options>.size)
        o.steps = 1000
        o.seconds = 0
        o.num_interior = 0
        o.num_boundary = -1
        o.resample_every = 0
        o.log_every = 100
        o.seed = 0
        o.checkpoint_every = 0
        o.resume = 0
        try required(out_options, "out_options").pointee = o
    }
}

/// Trains `net` with `optimizer` on `problem` as `options` says: batches drawn with seed,
/// seed + 1, ... (a new one every resample_every steps, or one fixed batch for 0); stops after
/// `steps` steps (in all, counting those of a resumed run) or `seconds` of training time,
/// whichever comes first, or when the callback returns nonzero. Evaluates the errors on
/// 10 N_interior fresh points after step 0, 1, every log_every steps and the last, and hands each
/// record (KFP_LOG_COUNT values indexed by KFP_LOG_*, then the values of the optimizer's
/// operator's trainable coefficients, see kfp_operator_coefficients) to the callback and the CSV
/// file (header: the KFP_LOG_* names in lower case, then coef_<name>). With checkpoint_path, the run (network, optimizer, step,
/// time, batch, log) is saved there every checkpoint_every steps and at the end; with resume = 1
/// an existing checkpoint is continued (its records are handed to the callback and the CSV file
/// first), giving bit for bit the run that was not interrupted. When a step (or its batch) fails, the last good
/// step is logged and checkpointed, and net and optimizer are as after it; after
/// KFP_ERROR_DIVERGED, as before the step it undid (see KFP_OPT_DIVERGENCE_FACTOR), and the
/// checkpoint holds the run before that step.
/// @param options filled by kfp_train_default_options, then changed field by field.
/// @param out_steps receives the steps taken (in all; on failure, those that stand) (may be NULL).
/// @return KFP_OK; the status of a failing step (KFP_ERROR_DIVERGED, KFP_ERROR_NUMERICAL, ...);
///         KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT (options->size, counts, sampler,
///         unwritable csv_path, net not the optimizer's, resume with data options other than the
///         checkpoint's); KFP_ERROR_DIMENSION_MISMATCH; KFP_ERROR_IO and KFP_ERROR_CORRUPT (checkpoint).
@c public func kfp_train(
    _ optimizer: OpaquePointer?, _ net: OpaquePointer?, _ problem: OpaquePointer?,
    _ options: UnsafePointer<kfp_train_options>?, _ out_steps: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_train") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        let mlp = try object(net, MLP.self, "net")
        let p = try object(problem, ProblemHandle.self, "problem").problem
        let o = try required(options, "options").pointee
        guard o.size == Int64(MemoryLayout<kfp_train_options>.size) else {
            throw KFPError.invalidArgument("options->size is \(o.size), this library's kfp_train_options has \(MemoryLayout<kfp_train_options>.size) bytes; fill the options with kfp_train_default_options")
        }
        guard mlp === opt.network else {
            throw KFPError.invalidArgument("net is not the network this optimizer was created for")
        }
        guard !o.seconds.isNaN else { throw KFPError.invalidArgument("seconds is NaN") }
        var settings = TrainingOptions()
        settings.steps = try countArgument(o.steps, "steps")
        settings.seconds = o.seconds > 0 && o.seconds.isFinite ? o.seconds : nil
        settings.interior = o.num_interior == 0 ? nil : try countArgument(o.num_interior, "num_interior")
        settings.boundary = o.num_boundary == -1 ? nil : try countArgument(o.num_boundary, "num_boundary", minimum: 0)
        settings.sampler = try samplerNamed(o.sampler)
        settings.resampleEvery = try countArgument(o.resample_every, "resample_every", minimum: 0)
        settings.logEvery = try countArgument(o.log_every, "log_every")
        settings.dataSeed = o.seed
        settings.csvPath = o.csv_path.map { String(cString: $0) }
        settings.checkpointPath = o.checkpoint_path.map { String(cString: $0) }
        settings.checkpointEvery = try countArgument(o.checkpoint_every, "checkpoint_every", minimum: 0)
        guard o.resume == 0 || o.resume == 1 else { throw KFPError.invalidArgument("resume must be 0 or 1, got \(o.resume)") }
        settings.resume = o.resume == 1
        let callback = o.callback, userData = o.user_data
        let progress = TrainingProgress()
        defer { out_steps?.pointee = Int64(progress.steps) }
        try train(opt, on: p, options: settings, progress: progress) { record in
            guard let callback else { return true }
            return (record.values + record.coefficients).withUnsafeBufferPointer { callback($0.baseAddress, Int64($0.count), userData) } == 0
        }
    }
}
