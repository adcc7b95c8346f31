/// Creates the Poisson operator -Laplace(u) = f in d dimensions (residual -Laplace(u) - f).
/// @param dim input dimension d >= 1.
/// @param out_op receives the new handle (NULL on failure). Free it with kfp_operator_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for dim < 1.
@c public func kfp_operator_create_poisson(_ dim: Int64, _ out_op: UnsafeMutablePointer<OpaquePointer?>?) -> kfp_status {
    entryPoint("kfp_operator_create_poisson") {
        let out = try required(out_op, "out_op")
        out.pointee = nil
        publish(OperatorHandle(try Operator.poisson(dimension: try countArgument(dim, "dim"))), to: out)
    }
}

/// Creates the heat operator d_t u - kappa Laplace_x(u) = f on inputs (t, x), time first;
/// the input dimension is space_dim + 1.
/// @param space_dim spatial dimension >= 1.
/// @param kappa diffusivity > 0.
/// @param out_op receives the new handle (NULL on failure).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT (space_dim < 1, kappa not positive and finite).
@c public func kfp_operator_create_heat(
    _ space_dim: Int64, _ kappa: Double, _ out_op: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    entryPoint("kfp_operator_create_heat") {
        let out = try required(out_op, "out_op")
        out.pointee = nil
        publish(OperatorHandle(try Operator.heat(spaceDimension: try countArgument(space_dim, "space_dim"), kappa: kappa)), to: out)
    }
}

/// Creates the log Fokker-Planck operator for q = log p of dX = -X/2 dt + sqrt(2) dW in space_dim
/// dimensions, inputs (t, x): r = d_t q - space_dim/2 - x.grad_x q / 2 - |grad_x q|^2 - Laplace_x q - f.
/// @param space_dim spatial dimension >= 1; the input dimension is space_dim + 1.
/// @param out_op receives the new handle (NULL on failure).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for space_dim < 1.
@c public func kfp_operator_create_log_fokker_planck(
    _ space_dim: Int64, _ out_op: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    entryPoint("kfp_operator_create_log_fokker_planck") {
        let out = try required(out_op, "out_op")
        out.pointee = nil
        publish(OperatorHandle(try Operator.logFokkerPlanck(spaceDimension: try countArgument(space_dim, "space_dim"))), to: out)
    }
}

/// Creates the general linear operator with residual
/// r = sum_ij C_ij d_i d_j u + beta(x).grad u + c(x) u - f,  beta(x) = beta + B x,  c(x) = c + c_x.x.
/// @param dim input dimension d >= 1.
/// @param C symmetric d x d, row-major (required).
/// @param beta d values, or NULL for 0.
/// @param B d x d row-major drift Jacobian, or NULL for a constant drift.
/// @param c reaction coefficient.
/// @param c_x d values, or NULL for a constant reaction coefficient.
/// @param out_op receives the new handle (NULL on failure).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER (C, out_op); KFP_ERROR_INVALID_ARGUMENT (dim, non-symmetric C); KFP_ERROR_NON_FINITE.
@c public func kfp_operator_create_linear(
    _ dim: Int64, _ C: UnsafePointer<Double>?, _ beta: UnsafePointer<Double>?,
    _ B: UnsafePointer<Double>?, _ c: Double, _ c_x: UnsafePointer<Double>?,
    _ out_op: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    entryPoint("kfp_operator_create_linear") {
        let out = try required(out_op, "out_op")
        out.pointee = nil
        let d = try countArgument(dim, "dim")
        let coeffs = try array(try required(C, "C"), d * d, "C")
        let op = try Operator(
            dimension: d, secondOrder: .matrix(coeffs),
            drift: try beta.map { try array($0, d, "beta") },
            driftJacobian: try B.map { try array($0, d * d, "B") },
            reaction: c, reactionGradient: try c_x.map { try array($0, d, "c_x") })
        publish(OperatorHandle(op), to: out)
    }
}

/// Frees an operator. NULL is a no-op.
@c public func kfp_operator_free(_ op: OpaquePointer?) {
    releaseHandle(op, OperatorHandle.self)
}

/// Input dimension of the operator.
/// @param out_dim receives d.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER or KFP_ERROR_WRONG_HANDLE.
@c public func kfp_operator_dim(_ op: OpaquePointer?, _ out_dim: UnsafeMutablePointer<Int64>?) -> kfp_status {
    entryPoint("kfp_operator_dim") {
        let o = try object(op, OperatorHandle.self, "op").op
        try required(out_dim, "out_dim").pointee = Int64(o.dimension)
    }
}

/// Flags of kfp_operator_set_trainable, combined with |.
@c public enum kfp_operator_coefficient_flag: Int32 {
    /// Train the coefficient through its logarithm: it stays positive (its start must be > 0).
    case KFP_COEF_POSITIVE = 1
    /// Hold the coefficient at its start: listed with the trainable ones, not trained.
    case KFP_COEF_FROZEN = 2
}

/// Marks a scalar coefficient of the operator trainable, starting from `initial`: optimizers
/// created afterwards on this operator (or on another handle to it, e.g. from kfp_problem_operator)
/// train it with the network, and kfp_operator_coefficients reads its value. The residual is
/// r = kappa D_C u + beta.grad u + c u + N(u, grad u) + constant - source_scale f; the names:
/// "kappa" (factor of the second-order term, e.g. the heat equation's diffusivity), "C_<i>_<j>"
/// (entry (i, j) = (j, i) of C, from 0; each costs one more Taylor pass per step), "c" (reaction
/// coefficient), "beta_<i>" (entry i of the drift, from 0), "constant", "source_scale".
/// Calling it again for a name replaces its start and flags.
/// @param name NUL-terminated coefficient name.
/// @param initial start value (finite; > 0 with KFP_COEF_POSITIVE).
/// @param flags 0 or KFP_COEF_POSITIVE | KFP_COEF_FROZEN.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE; KFP_ERROR_INVALID_ARGUMENT
///         (unknown name, listing the known ones; a coefficient the operator does not have;
///         unknown flags; a start <= 0 with KFP_COEF_POSITIVE; an optimizer already created on
///         the operator); KFP_ERROR_NON_FINITE (initial). On failure nothing changes.
@c public func kfp_operator_set_trainable(
    _ op: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ initial: Double, _ flags: Int64
) -> kfp_status {
    entryPoint("kfp_operator_set_trainable") {
        let o = try object(op, OperatorHandle.self, "op").op
        let coefficient = String(cString: try required(name, "name"))
        guard flags & ~3 == 0 else { throw KFPError.invalidArgument("unknown flags \(flags) (KFP_COEF_POSITIVE = 1, KFP_COEF_FROZEN = 2)") }
        try o.setTrainable(coefficient, initial: initial, positive: flags & 1 != 0, frozen: flags & 2 != 0)
    }
}

/// The current values of the operator's trainable coefficients, in the order they were marked.
/// @param values receives min(count, capacity) values (may be NULL when capacity is 0).
/// @param capacity size of `values`.
/// @param out_count receives the number of trainable coefficients.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE; KFP_ERROR_INVALID_ARGUMENT (capacity < 0).
@c public func kfp_operator_coefficients(
    _ op: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ capacity: Int64, _ out_count: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_operator_coefficients") {
        let o = try object(op, OperatorHandle.self, "op").op
        let out = try required(out_count, "out_count")
        let wanted = try countArgument(capacity, "capacity", minimum: 0)
        let current = o.trainable.values
        if wanted > 0 && !current.isEmpty {
            let v = try required(values, "values")
            for k in 0..<min(wanted, current.count) { v[k] = current[k] }
        }
        out.pointee = Int64(current.count)
    }
}

/// The name (static storage; never free it) and flags of trainable coefficient `index`.
/// @param index 0 <= index < the count of kfp_operator_coefficients.
/// @param out_name receives the name.
/// @param out_flags receives its KFP_COEF_* flags (may be NULL).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE; KFP_ERROR_INVALID_ARGUMENT (index).
@c public func kfp_operator_coefficient_info(
    _ op: OpaquePointer?, _ index: Int64, _ out_name: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
    _ out_flags: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_operator_coefficient_info") {
        let o = try object(op, OperatorHandle.self, "op").op
        let out = try required(out_name, "out_name")
        let entries = o.trainable.entries
        guard index >= 0, index < Int64(entries.count) else {
            throw KFPError.invalidArgument("index \(index) is outside the \(entries.count) trainable coefficients")
        }
        let entry = entries[Int(index)]
        out.pointee = internedCString(entry.name)
        out_flags?.pointee = (entry.positive ? 1 : 0) | (entry.frozen ? 2 : 0)
    }
}

/// How an operator computes its second-order term (kfp_operator_set_estimator).
@c public enum kfp_estimator: Int32 {
    /// The forward Laplacian: d derivative columns per point, exact (the default).
    case KFP_ESTIMATOR_EXACT = 0
    /// Randomized Taylor mode with Rademacher probes (entries +-1).
    case KFP_ESTIMATOR_RANDOMIZED = 1
    /// Randomized Taylor mode with Gaussian probes.
    case KFP_ESTIMATOR_RANDOMIZED_GAUSSIAN = 2
}

/// Chooses how the operator's second-order term kappa D_C u is computed in training. Randomized:
/// with C = sign L L^T (C positive or negative semi-definite), `probes` directions v = L xi per
/// point give the unbiased estimate sign/s sum_k v_k^T (Hessian u) v_k, carried through the
/// network in s + 2 Taylor columns instead of d + 2 (one summed second-order column). The terms
/// with grad u stay exact: a drift beta(x).grad u takes one more column (the derivative along
/// beta(x)), the nonlinearity or a trained drift entry all d. Probes are drawn per point and
/// fresh every optimizer step from `seed` and the step count (so a resumed run draws the same).
/// The squared residual of the estimate is biased upward by its variance (docs/math.md).
/// kfp_operator_residual stays exact. Set it before creating an optimizer on this handle.
/// @param estimator a kfp_estimator value.
/// @param probes s >= 1 (ignored for KFP_ESTIMATOR_EXACT).
/// @param seed seed of the probes.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE; KFP_ERROR_INVALID_ARGUMENT
///         (unknown estimator; probes < 1; C indefinite or zero; trained entries of C; an optimizer
///         already created on the operator). On failure nothing changes.
@c public func kfp_operator_set_estimator(_ op: OpaquePointer?, _ estimator: Int32, _ probes: Int64, _ seed: UInt64) -> kfp_status {
    entryPoint("kfp_operator_set_estimator") {
        let handle = try object(op, OperatorHandle.self, "op")
        guard let k = kfp_estimator(rawValue: estimator) else {
            throw KFPError.invalidArgument("unknown estimator \(estimator) (KFP_ESTIMATOR_EXACT = 0, KFP_ESTIMATOR_RANDOMIZED = 1, KFP_ESTIMATOR_RANDOMIZED_GAUSSIAN = 2)")
        }
        guard !handle.op.trainable.isBound else {
            throw KFPError.invalidArgument("the operator is in use by an optimizer or a loss: set its estimator before creating one")
        }
        switch k {
        case .KFP_ESTIMATOR_EXACT: handle.op = handle.op.exact()
        case .KFP_ESTIMATOR_RANDOMIZED, .KFP_ESTIMATOR_RANDOMIZED_GAUSSIAN:
            guard probes >= 1 && probes <= Int64(Int32.max) else { throw KFPError.invalidArgument("the number of probes must be at least 1, got \(probes)") }
            handle.op = try handle.op.randomized(probes: Int(probes), distribution: k == .KFP_ESTIMATOR_RANDOMIZED ? .rademacher : .gaussian,
                                                 seed: seed)
        }
    }
}

/// The operator's estimator as set by kfp_operator_set_estimator.
/// @param out_kind receives the kfp_estimator value.
/// @param out_probes receives s (0 for the exact one); may be NULL.
/// @param out_seed receives the seed (0 for the exact one); may be NULL.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE.
@c public func kfp_operator_estimator(
    _ op: OpaquePointer?, _ out_kind: UnsafeMutablePointer<Int32>?, _ out_probes: UnsafeMutablePointer<Int64>?,
    _ out_seed: UnsafeMutablePointer<UInt64>?
) -> kfp_status {
    entryPoint("kfp_operator_estimator") {
        let o = try object(op, OperatorHandle.self, "op").op, kind = try required(out_kind, "out_kind")
        switch o.estimator {
        case .exact:
            kind.pointee = kfp_estimator.KFP_ESTIMATOR_EXACT.rawValue
            out_probes?.pointee = 0
            out_seed?.pointee = 0
        case .randomized(let e):
            kind.pointee = (e.distribution == .rademacher ? kfp_estimator.KFP_ESTIMATOR_RANDOMIZED : .KFP_ESTIMATOR_RANDOMIZED_GAUSSIAN).rawValue
            out_probes?.pointee = Int64(e.probes)
            out_seed?.pointee = e.seed
        }
    }
}

/// Sets the values of the operator's trainable coefficients (e.g. to restart an inverse problem).
/// @param values `count` values, one per trainable coefficient in order (finite; > 0 for a positive one).
/// @param count the number of trainable coefficients.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE; KFP_ERROR_DIMENSION_MISMATCH (count);
///         KFP_ERROR_NON_FINITE; KFP_ERROR_INVALID_ARGUMENT (a positive coefficient <= 0). On failure nothing changes.
@c public func kfp_operator_set_coefficients(
    _ op: OpaquePointer?, _ values: UnsafePointer<Double>?, _ count: Int64
) -> kfp_status {
    entryPoint("kfp_operator_set_coefficients") {
        let o = try object(op, OperatorHandle.self, "op").op
        let n = try countArgument(count, "count", minimum: 0)
        try o.trainable.setValues(n == 0 ? [] : try array(try required(values, "values"), n, "values"))
    }
}

/// Interior residuals r_n = (L u)(x_n) - f(x_n) of the network.
/// @param x points, row-major num_points x dim; dim must equal the network's and operator's dimension.
/// @param f num_points source values.
/// @param residuals receives num_points values.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_DIMENSION_MISMATCH (dim vs network or operator); KFP_ERROR_NON_FINITE (x, f).
@c public func kfp_operator_residual(
    _ op: OpaquePointer?, _ net: OpaquePointer?, _ x: UnsafePointer<Double>?, _ num_points: Int64,
    _ dim: Int64, _ f: UnsafePointer<Double>?, _ residuals: UnsafeMutablePointer<Double>?
) -> kfp_status {
    entryPoint("kfp_operator_residual") {
        let o = try object(op, OperatorHandle.self, "op").op
        let mlp = try object(net, MLP.self, "net")
        let (values, n) = try points(x, num_points, dim, for: mlp)
        let source = try array(try required(f, "f"), n, "f")
        let out = try required(residuals, "residuals")
        let r = try o.residual(network: mlp, points: values, count: n, source: source)
        out.update(from: r, count: n)
    }
}

/// Creates a batch of training points (the data is copied).
/// @param x_interior interior points, row-major num_interior x dim.
/// @param f_interior num_interior source values f(x).
/// @param num_interior N >= 1.
/// @param x_boundary condition points, row-major num_boundary x dim (NULL if num_boundary is 0).
/// @param g_boundary num_boundary prescribed values g(x) (NULL if num_boundary is 0).
/// @param num_boundary >= 0.
/// @param dim point dimension >= 1.
/// @param out_batch receives the new handle (NULL on failure). Free it with kfp_batch_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER, KFP_ERROR_INVALID_ARGUMENT (sizes), KFP_ERROR_NON_FINITE (NaN or inf in any array).
@c public func kfp_batch_create(
    _ x_interior: UnsafePointer<Double>?, _ f_interior: UnsafePointer<Double>?, _ num_interior: Int64,
    _ x_boundary: UnsafePointer<Double>?, _ g_boundary: UnsafePointer<Double>?, _ num_boundary: Int64,
    _ dim: Int64, _ out_batch: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    entryPoint("kfp_batch_create") {
        let out = try required(out_batch, "out_batch")
        out.pointee = nil
        let n = try countArgument(num_interior, "num_interior")
        let m = try countArgument(num_boundary, "num_boundary", minimum: 0)
        let d = try countArgument(dim, "dim")
        let batch = try Batch(
            dimension: d,
            interiorPoints: try array(try required(x_interior, "x_interior"), try checkedProduct(n, d, "x_interior"), "x_interior"),
            source: try array(try required(f_interior, "f_interior"), n, "f_interior"),
            boundaryPoints: try array(x_boundary, try checkedProduct(m, d, "x_boundary"), "x_boundary"),
            boundaryValues: try array(g_boundary, m, "g_boundary"))
        publish(BatchHandle(batch), to: out)
    }
}

/// Kinds of loss terms (docs/math.md, section 9). Values are fixed; new kinds are only added.
@c public enum kfp_term_kind: Int32 {
    /// r = (operator applied to u) - f at the points; `values` are f.
    case KFP_TERM_INTERIOR = 0
    /// r = u - g: boundary and initial values; `values` are g.
    case KFP_TERM_DIRICHLET = 1
    /// r = u - y: measurements y of the solution; `values` are y.
    case KFP_TERM_OBSERVATION = 2
    /// r = n . grad u - g with a unit vector n per point (kfp_batch_add_neumann); `values` are g.
    case KFP_TERM_NEUMANN = 3
    /// r = a u + b n . grad u - g (kfp_batch_add_robin); `values` are g.
    case KFP_TERM_ROBIN = 4
}

extension LossTermKind {
    init(key: Int32) throws {
        switch kfp_term_kind(rawValue: key) {
        case .KFP_TERM_INTERIOR: self = .interior
        case .KFP_TERM_DIRICHLET: self = .dirichlet
        case .KFP_TERM_OBSERVATION: self = .observation
        case .KFP_TERM_NEUMANN: self = .neumann
        case .KFP_TERM_ROBIN: self = .robin
        case nil: throw KFPError.invalidArgument("unknown term kind \(key)")
        }
    }

    var cKind: Int32 {
        switch self {
        case .interior: return kfp_term_kind.KFP_TERM_INTERIOR.rawValue
        case .dirichlet: return kfp_term_kind.KFP_TERM_DIRICHLET.rawValue
        case .observation: return kfp_term_kind.KFP_TERM_OBSERVATION.rawValue
        case .neumann: return kfp_term_kind.KFP_TERM_NEUMANN.rawValue
        case .robin: return kfp_term_kind.KFP_TERM_ROBIN.rawValue
        }
    }
}

/// Creates a batch without terms, to be filled with kfp_batch_add_term. A loss, gradient or
/// optimizer step needs at least one interior point.
/// @param dim point dimension >= 1.
/// @param out_batch receives the new handle (NULL on failure). Free it with kfp_batch_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT (dim).
@c public func kfp_batch_create_empty(_ dim: Int64, _ out_batch: UnsafeMutablePointer<OpaquePointer?>?) -> kfp_status {
    entryPoint("kfp_batch_create_empty") {
        let out = try required(out_batch, "out_batch")
        out.pointee = nil
        publish(BatchHandle(try Batch(dimension: try countArgument(dim, "dim"))), to: out)
    }
}

/// Appends a loss term to a batch (the data is copied): its points, their values (f, g or y,
/// by `kind`) and its weight w; the term adds w/(2N) sum_n r_n^2 to the loss. On failure the
/// batch is unchanged.
/// @param kind KFP_TERM_INTERIOR, KFP_TERM_DIRICHLET or KFP_TERM_OBSERVATION (Neumann and Robin
/// terms: kfp_batch_add_neumann, kfp_batch_add_robin).
/// @param x points, row-major num_points x dim (dim of the batch); may be NULL when num_points is 0.
/// @param values num_points values.
/// @param num_points >= 0.
/// @param weight w >= 0 and finite.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT (kind, num_points, weight);
///         KFP_ERROR_NON_FINITE (NaN or inf in x or values; the message names the term).
@c public func kfp_batch_add_term(
    _ batch: OpaquePointer?, _ kind: Int32, _ x: UnsafePointer<Double>?, _ values: UnsafePointer<Double>?,
    _ num_points: Int64, _ weight: Double
) -> kfp_status {
    entryPoint("kfp_batch_add_term") {
        let termKind = try LossTermKind(key: kind)
        guard !termKind.hasNormals else {
            throw KFPError.invalidArgument("a \(termKind.rawValue) term needs normals: add it with kfp_batch_add_\(termKind.rawValue)")
        }
        try addTerm(batch, termKind, x, values, nil, nil, nil, num_points, weight)
    }
}

/// Appends a term built from C arrays to the batch behind `batch` (see kfp_batch_add_term).
private func addTerm(
    _ batch: OpaquePointer?, _ kind: LossTermKind, _ x: UnsafePointer<Double>?, _ values: UnsafePointer<Double>?,
    _ normals: UnsafePointer<Double>?, _ a: UnsafePointer<Double>?, _ b: UnsafePointer<Double>?, _ num_points: Int64,
    _ weight: Double
) throws {
    let handle = try object(batch, BatchHandle.self, "batch")
    let n = try countArgument(num_points, "num_points", minimum: 0), d = handle.batch.dimension
    let nd = try checkedProduct(n, d, "x")
    let term = LossTerm(kind: kind, points: try array(x, nd, "x"), targets: try array(values, n, "values"), weight: weight,
                        normals: kind.hasNormals ? try array(try required(normals, "normals"), nd, "normals") : [],
                        robinA: kind == .robin ? try array(try required(a, "a"), n, "a") : [],
                        robinB: kind == .robin ? try array(try required(b, "b"), n, "b") : [])
    handle.batch = try handle.batch.adding(term)
}

/// Appends a Neumann term r = n . grad u - g (the data is copied); with n = e_t on t = 0 it
/// prescribes an initial velocity. On failure the batch is unchanged.
/// @param x points, row-major num_points x dim.
/// @param g num_points values.
/// @param normals a unit vector per point (length 1 within 1e-8), row-major num_points x dim.
/// @param num_points >= 0.
/// @param weight w >= 0 and finite.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT (a normal not of unit length, the
///         weight); KFP_ERROR_NON_FINITE.
@c public func kfp_batch_add_neumann(
    _ batch: OpaquePointer?, _ x: UnsafePointer<Double>?, _ g: UnsafePointer<Double>?, _ normals: UnsafePointer<Double>?,
    _ num_points: Int64, _ weight: Double
) -> kfp_status {
    entryPoint("kfp_batch_add_neumann") { try addTerm(batch, .neumann, x, g, normals, nil, nil, num_points, weight) }
}

/// Appends a Robin term r = a u + b n . grad u - g (the data is copied). On failure the batch
/// is unchanged.
/// @param x points, row-major num_points x dim.
/// @param g num_points values.
/// @param normals a unit vector per point, row-major num_points x dim.
/// @param a num_points coefficients of u.
/// @param b num_points coefficients of the normal derivative; a and b are not both 0 at a point.
/// @param num_points >= 0.
/// @param weight w >= 0 and finite.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT (normals, a = b = 0, the weight);
///         KFP_ERROR_NON_FINITE.
@c public func kfp_batch_add_robin(
    _ batch: OpaquePointer?, _ x: UnsafePointer<Double>?, _ g: UnsafePointer<Double>?, _ normals: UnsafePointer<Double>?,
    _ a: UnsafePointer<Double>?, _ b: UnsafePointer<Double>?, _ num_points: Int64, _ weight: Double
) -> kfp_status {
    entryPoint("kfp_batch_add_robin") { try addTerm(batch, .robin, x, g, normals, a, b, num_points, weight) }
}

/// Number of terms of a batch (kfp_batch_create makes one interior term and, with condition
/// points, one Dirichlet term).
/// @param out_count receives the count.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE.
@c public func kfp_batch_num_terms(_ batch: OpaquePointer?, _ out_count: UnsafeMutablePointer<Int64>?) -> kfp_status {
    entryPoint("kfp_batch_num_terms") {
        let b = try object(batch, BatchHandle.self, "batch").batch
        try required(out_count, "out_count").pointee = Int64(b.terms.count)
    }
}

/// Copies the normals (N x dim) and, for a Robin term, a and b (N each) of term `index` out;
/// any output may be NULL. Terms without them leave the outputs untouched.
/// @return KFP_OK; KFP_ERROR_INVALID_ARGUMENT for an index out of range; KFP_ERROR_WRONG_HANDLE.
@c public func kfp_batch_term_normals(
    _ batch: OpaquePointer?, _ index: Int64, _ normals: UnsafeMutablePointer<Double>?,
    _ a: UnsafeMutablePointer<Double>?, _ b: UnsafeMutablePointer<Double>?
) -> kfp_status {
    entryPoint("kfp_batch_term_normals") {
        let term = try batchTerm(batch, index)
        for (source, destination) in [(term.normals, normals), (term.robinA, a), (term.robinB, b)] {
            guard let destination else { continue }
            source.withUnsafeBufferPointer { if let p = $0.baseAddress { destination.update(from: p, count: $0.count) } }
        }
    }
}

/// Term `index` of the batch behind `batch`.
private func batchTerm(_ batch: OpaquePointer?, _ index: Int64) throws -> LossTerm {
    let b = try object(batch, BatchHandle.self, "batch").batch
    guard index >= 0, index < Int64(b.terms.count) else {
        throw KFPError.invalidArgument("term index \(index) out of range [0, \(b.terms.count))")
    }
    return b.terms[Int(index)]
}

/// Describes term `index` of a batch and copies its arrays out; any output may be NULL.
/// @param out_kind receives its kfp_term_kind.
/// @param out_num_points receives N, its number of points.
/// @param out_weight receives its weight.
/// @param x receives N x dim values, row-major.
/// @param values receives N values.
/// @return KFP_OK; KFP_ERROR_INVALID_ARGUMENT for an index out of range; KFP_ERROR_WRONG_HANDLE.
@c public func kfp_batch_term(
    _ batch: OpaquePointer?, _ index: Int64, _ out_kind: UnsafeMutablePointer<Int32>?,
    _ out_num_points: UnsafeMutablePointer<Int64>?, _ out_weight: UnsafeMutablePointer<Double>?,
    _ x: UnsafeMutablePointer<Double>?, _ values: UnsafeMutablePointer<Double>?
) -> kfp_status {
    entryPoint("kfp_batch_term") {
        let term = try batchTerm(batch, index)
        out_kind?.pointee = term.kind.cKind
        out_num_points?.pointee = Int64(term.count)
        out_weight?.pointee = term.weight
        if let x { term.points.withUnsafeBufferPointer { if let p = $0.baseAddress { x.update(from: p, count: $0.count) } } }
        if let values { term.targets.withUnsafeBufferPointer { if let p = $0.baseAddress { values.update(from: p, count: $0.count) } } }
    }
}

/// Frees a batch. NULL is a no-op.
@c public func kfp_batch_free(_ batch: OpaquePointer?) {
    releaseHandle(batch, BatchHandle.self)
}

/// Sizes of a batch.
/// @param out_num_interior receives N_interior, the points of all interior terms (may be NULL).
/// @param out_num_boundary receives N_boundary, the points of all other terms (may be NULL).
/// @param out_dim receives the point dimension (may be NULL).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER or KFP_ERROR_WRONG_HANDLE for a bad handle.
@c public func kfp_batch_sizes(
    _ batch: OpaquePointer?, _ out_num_interior: UnsafeMutablePointer<Int64>?,
    _ out_num_boundary: UnsafeMutablePointer<Int64>?, _ out_dim: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_batch_sizes") {
        let b = try object(batch, BatchHandle.self, "batch").batch
        out_num_interior?.pointee = Int64(b.interiorCount)
        out_num_boundary?.pointee = Int64(b.boundaryCount)
        out_dim?.pointee = Int64(b.dimension)
    }
}

/// Copies a batch's arrays out (sizes from kfp_batch_sizes), terms in order; any destination may be NULL.
/// @param x_interior receives N_interior x dim values, row-major (the interior terms' points).
/// @param f_interior receives N_interior source values.
/// @param x_boundary receives N_boundary x dim values, row-major (the other terms' points).
/// @param g_boundary receives N_boundary values (g of Dirichlet terms, y of observation terms).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER or KFP_ERROR_WRONG_HANDLE for a bad handle.
@c public func kfp_batch_data(
    _ batch: OpaquePointer?, _ x_interior: UnsafeMutablePointer<Double>?, _ f_interior: UnsafeMutablePointer<Double>?,
    _ x_boundary: UnsafeMutablePointer<Double>?, _ g_boundary: UnsafeMutablePointer<Double>?
) -> kfp_status {
    entryPoint("kfp_batch_data") {
        let b = try object(batch, BatchHandle.self, "batch").batch
        for (source, destination) in [(b.interiorPoints, x_interior), (b.source, f_interior),
                                      (b.boundaryPoints, x_boundary), (b.boundaryValues, g_boundary)] {
            guard let destination else { continue }
            source.withUnsafeBufferPointer { if let base = $0.baseAddress { destination.update(from: base, count: $0.count) } }
        }
    }
}
