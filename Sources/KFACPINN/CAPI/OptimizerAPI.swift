import Glibc
import KFPTypes
import Synchronization

/// Keys of kfp_optimizer_set_* / kfp_optimizer_get_*, numbered in ranges per family: 1xx step
/// and update, 2xx curvature, 3xx adaptive moments, 4xx iteration limits. A key means one concept
/// wherever it applies; kfp_optimizer_option_info tells which keys an optimizer has, with their
/// type, range and default. Values are fixed; new keys are only added.
@c public enum kfp_option: Int32 {
    /// double > 0: learning rate of the "fixed" step rule (SGD, Adam: their step; L-BFGS: the first trial step).
    case KFP_OPT_LEARNING_RATE = 100
    /// double in [0, 1): heavy-ball momentum (KFAC line search and fixed steps, SGD).
    case KFP_OPT_MOMENTUM = 101
    /// integer 0 or 1: Nesterov momentum (SGD).
    case KFP_OPT_NESTEROV = 102
    /// string: "line_search", "auto" (KFAC*) or "fixed" (KFAC; ENGD without "auto").
    case KFP_OPT_STEP_RULE = 103
    /// double > 0: damping lambda of the curvature (KFAC: added to every Kronecker factor; ENGD; Hessian-free: initial).
    case KFP_OPT_DAMPING = 200
    /// double in [0, 1): exponential moving average of the curvature (KFAC factors, ENGD Gramian).
    case KFP_OPT_EMA = 201
    /// integer >= 1: update the Kronecker factors every this many steps (T_kfac).
    case KFP_OPT_FACTOR_PERIOD = 202
    /// integer >= 1: refactorise the damped Kronecker sums every this many steps (T_inv).
    case KFP_OPT_INVERSE_PERIOD = 203
    /// string: "identity" or "zero", the Kronecker factors' initial value; before the first step only.
    case KFP_OPT_FACTOR_INIT = 204
    /// string: "expand" or "reduce", the weight-sharing approximation of the Kronecker factors.
    case KFP_OPT_APPROXIMATION = 205
    /// string: ENGD's Gramian "full", "per_layer", "diagonal", "woodbury" or "nystrom" (the
    /// sample-space kernel by a rank-k sketch); SPRING's kernel "exact" or "nystrom".
    case KFP_OPT_VARIANT = 206
    /// integer >= 1: largest Gramian block ENGD forms; larger networks are refused.
    case KFP_OPT_MAX_PARAMETERS = 207
    /// string: "fixed" or "adaptive" (KFAC*: Levenberg-Marquardt adaptation of the damping from
    /// each step's reduction ratio; a step that does not lower its batch's loss is not taken).
    case KFP_OPT_DAMPING_RULE = 208
    /// double > 0: SPRING's norm constraint C; a fixed step has norm at most sqrt(C).
    case KFP_OPT_NORM_CONSTRAINT = 209
    /// int >= 1: rank k of the Nystrom sketch (ENGD and SPRING variant "nystrom"; k <= the batch's residuals).
    case KFP_OPT_RANK = 210
    /// double > 0, default 1e-14: lower bound of the adaptive damping rule (KFAC*). The rule
    /// measures each step's reduction ratio on the step's own batch; with a batch much smaller
    /// than the network (or a randomized operator) the damping falls to this bound.
    case KFP_OPT_MIN_DAMPING = 211
    /// double in [0, 1): first-moment decay beta1 (Adam).
    case KFP_OPT_BETA1 = 300
    /// double in [0, 1): second-moment decay beta2 (Adam).
    case KFP_OPT_BETA2 = 301
    /// double > 0: epsilon of the Adam denominator.
    case KFP_OPT_EPSILON = 302
    /// integer >= 1: number of stored (s, y) pairs (L-BFGS).
    case KFP_OPT_HISTORY = 400
    /// integer >= 1: loss-and-gradient evaluations per line search (L-BFGS).
    case KFP_OPT_MAX_EVALUATIONS = 401
    /// integer >= 1: CG iterations per step (Hessian-free).
    case KFP_OPT_MAX_CG_ITERATIONS = 402
    /// double > 1, default 1e12, infinity allowed (every optimizer): a step whose loss at its start
    /// is not finite or exceeds this factor times the best loss so far, while the parameters
    /// before the previous step do well on its batch, puts the network and the optimizer back
    /// before the previous step and returns KFP_ERROR_DIVERGED.
    case KFP_OPT_DIVERGENCE_FACTOR = 500
}

/// Indices of the statistics kfp_optimizer_step writes. Values are fixed; new ones are only appended.
@c public enum kfp_stat: Int32 {
    /// Loss before the step.
    case KFP_STAT_LOSS = 0
    /// Interior term of the loss before the step.
    case KFP_STAT_LOSS_INTERIOR = 1
    /// Boundary (condition) term of the loss before the step.
    case KFP_STAT_LOSS_BOUNDARY = 2
    /// Step size alpha (0 when the step was not accepted).
    case KFP_STAT_STEP_SIZE = 3
    /// Momentum mu applied to the previous update.
    case KFP_STAT_MOMENTUM = 4
    /// Norm of the parameter update.
    case KFP_STAT_UPDATE_NORM = 5
    /// 1 if the parameters moved, 0 if no line-search step lowered the loss.
    case KFP_STAT_ACCEPTED = 6
    /// Damping the step used (raised tenfold per retry after a failed factorisation; 0 without damping).
    case KFP_STAT_DAMPING = 7
    /// Number of statistics.
    case KFP_STAT_COUNT = 8
}

extension OptimizerOption {
    /// The C key: KFP_OPT_<NAME> for the option named <name> (a test checks the names).
    var cKey: kfp_option {
        switch self {
        case .learningRate: return .KFP_OPT_LEARNING_RATE
        case .momentum: return .KFP_OPT_MOMENTUM
        case .nesterov: return .KFP_OPT_NESTEROV
        case .stepRule: return .KFP_OPT_STEP_RULE
        case .damping: return .KFP_OPT_DAMPING
        case .ema: return .KFP_OPT_EMA
        case .factorPeriod: return .KFP_OPT_FACTOR_PERIOD
        case .inversePeriod: return .KFP_OPT_INVERSE_PERIOD
        case .factorInitialization: return .KFP_OPT_FACTOR_INIT
        case .approximation: return .KFP_OPT_APPROXIMATION
        case .variant: return .KFP_OPT_VARIANT
        case .maxParameters: return .KFP_OPT_MAX_PARAMETERS
        case .dampingRule: return .KFP_OPT_DAMPING_RULE
        case .normConstraint: return .KFP_OPT_NORM_CONSTRAINT
        case .rank: return .KFP_OPT_RANK
        case .minDamping: return .KFP_OPT_MIN_DAMPING
        case .beta1: return .KFP_OPT_BETA1
        case .beta2: return .KFP_OPT_BETA2
        case .epsilon: return .KFP_OPT_EPSILON
        case .history: return .KFP_OPT_HISTORY
        case .maxEvaluations: return .KFP_OPT_MAX_EVALUATIONS
        case .maxCGIterations: return .KFP_OPT_MAX_CG_ITERATIONS
        case .divergenceFactor: return .KFP_OPT_DIVERGENCE_FACTOR
        }
    }

    /// The option of a C key.
    init(key: Int32) throws {
        guard let option = OptimizerOption.allCases.first(where: { $0.cKey.rawValue == key }) else {
            throw KFPError.invalidArgument("unknown option key \(key)")
        }
        self = option
    }
}

/// NUL-terminated copies of strings handed to C callers, kept for the life of the process (the
/// option names, descriptions, defaults and choices: a small fixed set).
private let staticStrings = Mutex<[String: UnsafeMutablePointer<CChar>]>([:])

/// A static C string with the text of `s`.
private func staticCString(_ s: String) -> UnsafePointer<CChar> {
    staticStrings.withLock { table in
        if let p = table[s] { return UnsafePointer(p) }
        let p = strdup(s)!
        table[s] = p
        return UnsafePointer(p)
    }
}

/// Box of an optimizer behind a `kfp_optimizer` handle.
final class OptimizerHandle {
    let optimizer: any Optimizer
    init(_ optimizer: any Optimizer) { self.optimizer = optimizer }
}

/// Creates an optimizer of `make`'s kind for `net` and `op` behind `out_optimizer`.
private func createOptimizer(
    _ name: StaticString, _ net: OpaquePointer?, _ op: OpaquePointer?, _ out_optimizer: UnsafeMutablePointer<OpaquePointer?>?,
    _ make: (MLP, Operator) throws -> any Optimizer
) -> kfp_status {
    entryPoint(name) {
        let out = try required(out_optimizer, "out_optimizer")
        out.pointee = nil
        let mlp = try object(net, MLP.self, "net")
        let o = try object(op, OperatorHandle.self, "op").op
        publish(OptimizerHandle(try make(mlp, o)), to: out)
    }
}

/// Creates a KFAC optimizer for the loss of `op` on `net` with default options (line search,
/// damping 1e-10, ema 0.95, momentum 0, factors initialised to the identity, expand).
/// The optimizer keeps `net` and `op` alive and changes the network's parameters in each step.
/// @param out_optimizer receives the new handle (NULL on failure). Free it with kfp_optimizer_free.
/// @return KFP_OK; KFP_ERROR_DIMENSION_MISMATCH if the operator's and network's dimensions differ.
@c public func kfp_optimizer_create_kfac(
    _ net: OpaquePointer?, _ op: OpaquePointer?, _ out_optimizer: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    createOptimizer("kfp_optimizer_create_kfac", net, op, out_optimizer) { try KFAC(network: $0, operator: $1) }
}

/// Creates an SGD optimizer (learning rate 1e-3, momentum 0, no Nesterov); see kfp_optimizer_create_kfac.
/// @param out_optimizer receives the new handle (NULL on failure). Free it with kfp_optimizer_free.
/// @return KFP_OK; KFP_ERROR_DIMENSION_MISMATCH if the operator's and network's dimensions differ.
@c public func kfp_optimizer_create_sgd(
    _ net: OpaquePointer?, _ op: OpaquePointer?, _ out_optimizer: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    createOptimizer("kfp_optimizer_create_sgd", net, op, out_optimizer) { try SGD(network: $0, operator: $1) }
}

/// Creates an Adam optimizer (learning rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-8).
/// @param out_optimizer receives the new handle (NULL on failure). Free it with kfp_optimizer_free.
/// @return KFP_OK; KFP_ERROR_DIMENSION_MISMATCH if the operator's and network's dimensions differ.
@c public func kfp_optimizer_create_adam(
    _ net: OpaquePointer?, _ op: OpaquePointer?, _ out_optimizer: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    createOptimizer("kfp_optimizer_create_adam", net, op, out_optimizer) { try Adam(network: $0, operator: $1) }
}

/// Creates an L-BFGS optimizer with a strong-Wolfe line search (learning rate 1, history 10,
/// 25 evaluations per line search); one iteration per step.
/// @param out_optimizer receives the new handle (NULL on failure). Free it with kfp_optimizer_free.
/// @return KFP_OK; KFP_ERROR_DIMENSION_MISMATCH if the operator's and network's dimensions differ.
@c public func kfp_optimizer_create_lbfgs(
    _ net: OpaquePointer?, _ op: OpaquePointer?, _ out_optimizer: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    createOptimizer("kfp_optimizer_create_lbfgs", net, op, out_optimizer) { try LBFGS(network: $0, operator: $1) }
}

/// Creates an ENGD (dense Gauss-Newton) optimizer (variant "full", damping 1e-10, ema 0, line
/// search, max_parameters 16384). A step refuses (KFP_ERROR_INVALID_ARGUMENT) to form a Gramian
/// block larger than max_parameters.
/// @param out_optimizer receives the new handle (NULL on failure). Free it with kfp_optimizer_free.
/// @return KFP_OK; KFP_ERROR_DIMENSION_MISMATCH if the operator's and network's dimensions differ.
@c public func kfp_optimizer_create_engd(
    _ net: OpaquePointer?, _ op: OpaquePointer?, _ out_optimizer: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    createOptimizer("kfp_optimizer_create_engd", net, op, out_optimizer) { try ENGD(network: $0, operator: $1) }
}

/// Creates a SPRING optimizer (sample-space Gauss-Newton with momentum, docs/math.md section 11):
/// damping 1e-3, momentum 0.99, grid line search (step_rule "line_search"; "fixed" takes
/// learning_rate capped by the norm constraint norm_constraint = 1e-3), variant "exact" (or
/// "nystrom": the kernel from a rank-`rank` sketch, default 100). A step needs the scaled
/// Jacobian (M x P values for M residuals) and an M x M kernel; a batch for which they do not fit
/// in half the machine's memory fails with KFP_ERROR_OUT_OF_MEMORY.
/// @param out_optimizer receives the new handle (NULL on failure). Free it with kfp_optimizer_free.
/// @return KFP_OK; KFP_ERROR_DIMENSION_MISMATCH if the operator's and network's dimensions differ.
@c public func kfp_optimizer_create_spring(
    _ net: OpaquePointer?, _ op: OpaquePointer?, _ out_optimizer: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    createOptimizer("kfp_optimizer_create_spring", net, op, out_optimizer) { try SPRING(network: $0, operator: $1) }
}

/// Creates a Hessian-free optimizer (initial damping 1, at most 300 CG iterations per step).
/// @param out_optimizer receives the new handle (NULL on failure). Free it with kfp_optimizer_free.
/// @return KFP_OK; KFP_ERROR_DIMENSION_MISMATCH if the operator's and network's dimensions differ.
@c public func kfp_optimizer_create_hessian_free(
    _ net: OpaquePointer?, _ op: OpaquePointer?, _ out_optimizer: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    createOptimizer("kfp_optimizer_create_hessian_free", net, op, out_optimizer) { try HessianFree(network: $0, operator: $1) }
}

/// Frees an optimizer. NULL is a no-op.
@c public func kfp_optimizer_free(_ optimizer: OpaquePointer?) {
    releaseHandle(optimizer, OptimizerHandle.self)
}

/// Sets a real-valued option. On failure the options are unchanged.
/// @param key a KFP_OPT_* value taking a double.
/// @return KFP_OK; KFP_ERROR_INVALID_ARGUMENT for an unknown key, a key of another type or a value out of range.
@c public func kfp_optimizer_set_double(_ optimizer: OpaquePointer?, _ key: Int32, _ value: Double) -> kfp_status {
    entryPoint("kfp_optimizer_set_double") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        try opt.setOption(try OptimizerOption(key: key), .double(value))
    }
}

/// Sets an integer option. On failure the options are unchanged.
/// @param key a KFP_OPT_* value taking an integer.
/// @return KFP_OK; KFP_ERROR_INVALID_ARGUMENT for an unknown key, a key of another type or a value out of range.
@c public func kfp_optimizer_set_int(_ optimizer: OpaquePointer?, _ key: Int32, _ value: Int64) -> kfp_status {
    entryPoint("kfp_optimizer_set_int") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        guard let v = Int(exactly: value) else { throw KFPError.invalidArgument("value \(value) out of range") }
        try opt.setOption(try OptimizerOption(key: key), .int(v))
    }
}

/// Sets a string option (a choice by name). On failure the options are unchanged.
/// @param key a KFP_OPT_* value taking a string.
/// @param value NUL-terminated name.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for an unknown key, a key of another type or an unknown name.
@c public func kfp_optimizer_set_string(
    _ optimizer: OpaquePointer?, _ key: Int32, _ value: UnsafePointer<CChar>?
) -> kfp_status {
    entryPoint("kfp_optimizer_set_string") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        let text = String(cString: try required(value, "value"))
        try opt.setOption(try OptimizerOption(key: key), .string(text))
    }
}

/// Reads a real-valued option.
/// @param out_value receives the value.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for an unknown key or a key that is not a double.
@c public func kfp_optimizer_get_double(
    _ optimizer: OpaquePointer?, _ key: Int32, _ out_value: UnsafeMutablePointer<Double>?
) -> kfp_status {
    entryPoint("kfp_optimizer_get_double") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        let option = try OptimizerOption(key: key)
        let out = try required(out_value, "out_value")
        out.pointee = try opt.option(option).double(option)
    }
}

/// Reads an integer option.
/// @param out_value receives the value.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for an unknown key or a key that is not an integer.
@c public func kfp_optimizer_get_int(
    _ optimizer: OpaquePointer?, _ key: Int32, _ out_value: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_optimizer_get_int") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        let option = try OptimizerOption(key: key)
        let out = try required(out_value, "out_value")
        out.pointee = Int64(try opt.option(option).int(option))
    }
}

/// Reads a string option into a caller buffer (NUL-terminated, truncated to fit).
/// @param buffer receives the value; may be NULL when capacity is 0.
/// @param capacity bytes available in `buffer`, >= 0.
/// @param out_length receives the value's length in bytes without the NUL (may be NULL); a
/// length >= capacity means the value was truncated.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for an unknown key or a key that is not a string.
@c public func kfp_optimizer_get_string(
    _ optimizer: OpaquePointer?, _ key: Int32, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
    _ out_length: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_optimizer_get_string") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        let option = try OptimizerOption(key: key)
        let cap = try countArgument(capacity, "capacity", minimum: 0)
        let out = cap > 0 ? try required(buffer, "buffer") : nil
        let bytes = Array(try opt.option(option).string(option).utf8)
        if let out {
            let k = min(bytes.count, cap - 1)
            for i in 0..<k { out[i] = CChar(bitPattern: bytes[i]) }
            out[k] = 0
        }
        out_length?.pointee = Int64(bytes.count)
    }
}

/// Number of options the optimizer accepts (the indices of kfp_optimizer_option_info).
/// @param out_count receives the count.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_WRONG_HANDLE.
@c public func kfp_optimizer_option_count(_ optimizer: OpaquePointer?, _ out_count: UnsafeMutablePointer<Int64>?) -> kfp_status {
    entryPoint("kfp_optimizer_option_count") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        try required(out_count, "out_count").pointee = Int64(opt.optionKeys.count)
    }
}

/// Describes option `index` (0 <= index < kfp_optimizer_option_count) of the optimizer: its key,
/// name, type, range, default and choices, so that a binding can list and check options.
/// @param info receives the description; the caller sets info->size = sizeof(kfp_option_info)
/// first. The strings it points to are static.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT for an index out of range or a size
/// smaller than this version's struct.
@c public func kfp_optimizer_option_info(
    _ optimizer: OpaquePointer?, _ index: Int64, _ info: UnsafeMutablePointer<kfp_option_info>?
) -> kfp_status {
    entryPoint("kfp_optimizer_option_info") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        let out = try required(info, "info")
        guard out.pointee.size >= Int64(MemoryLayout<kfp_option_info>.size) else {
            throw KFPError.invalidArgument("info->size is \(out.pointee.size), this library's kfp_option_info has \(MemoryLayout<kfp_option_info>.size) bytes; set it to sizeof(kfp_option_info)")
        }
        let keys = opt.optionKeys
        guard index >= 0, index < Int64(keys.count) else {
            throw KFPError.invalidArgument("option index \(index) out of range [0, \(keys.count))")
        }
        let option = keys[Int(index)], range = option.range, value = try opt.defaultOption(option)
        var d = kfp_option_info()
        d.size = Int64(MemoryLayout<kfp_option_info>.size)
        d.key = option.cKey.rawValue
        d.name = staticCString(option.rawValue)
        d.description = staticCString(option.summary)
        d.minimum = range.minimum
        d.maximum = range.maximum
        d.minimum_exclusive = range.minimumOpen ? 1 : 0
        d.maximum_exclusive = range.maximumOpen ? 1 : 0
        d.default_string = staticCString("")
        d.choices = staticCString(try opt.optionChoices(option).joined(separator: ","))
        switch value {
        case .double(let v): d.type = Int32(KFP_OPTION_DOUBLE.rawValue); d.default_double = v
        case .int(let v): d.type = Int32(KFP_OPTION_INT.rawValue); d.default_int = Int64(v)
        case .string(let v): d.type = Int32(KFP_OPTION_STRING.rawValue); d.default_string = staticCString(v)
        }
        out.pointee = d
    }
}

/// One optimizer step on `batch`, updating the parameters of `net` in place.
/// On failure the parameters and the optimizer state are unchanged, except after
/// KFP_ERROR_DIVERGED, which may put them back before the previous step.
/// @param net the network the optimizer was created for.
/// @param stats receives min(num_stats, KFP_STAT_COUNT) statistics indexed by KFP_STAT_* (may be NULL when num_stats is 0).
/// @param num_stats capacity of `stats`, >= 0.
/// @return KFP_OK; KFP_ERROR_INVALID_ARGUMENT if `net` is not the optimizer's network or for an ENGD
///         Gramian above max_parameters; KFP_ERROR_OUT_OF_MEMORY for a batch too large for memory;
///         KFP_ERROR_DIMENSION_MISMATCH for a batch of another dimension; KFP_ERROR_NON_FINITE if the
///         loss is not finite on this batch also at the parameters before the previous step (the
///         batch is at fault); KFP_ERROR_DIVERGED if the loss at the step's start is not finite or
///         exceeds divergence_factor times the best so far while the parameters before the previous
///         step do well on the batch (they are restored, with the optimizer's state), or if the step
///         met a non-finite gradient, direction or update (nothing changed); KFP_ERROR_NUMERICAL if
///         a factorisation fails or the direction is not finite also after KFAC, ENGD or Hessian-free
///         retried with the damping raised tenfold four times (KFP_STAT_DAMPING: the damping used).
@c public func kfp_optimizer_step(
    _ optimizer: OpaquePointer?, _ net: OpaquePointer?, _ batch: OpaquePointer?,
    _ stats: UnsafeMutablePointer<Double>?, _ num_stats: Int64
) -> kfp_status {
    entryPoint("kfp_optimizer_step") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        let mlp = try object(net, MLP.self, "net")
        let b = try object(batch, BatchHandle.self, "batch").batch
        guard mlp === opt.network else {
            throw KFPError.invalidArgument("net is not the network this optimizer was created for")
        }
        let k = min(try countArgument(num_stats, "num_stats", minimum: 0), Int(kfp_stat.KFP_STAT_COUNT.rawValue))
        let out = k > 0 ? try required(stats, "stats") : nil
        let s = try opt.step(b)
        let values = [s.loss, s.lossInterior, s.lossBoundary, s.stepSize, s.momentum, s.updateNorm, s.accepted ? 1 : 0, s.damping]
        for i in 0..<k { out![i] = values[i] }
    }
}

// MARK: - Data-parallel training

/// A `kfp_communicator` as a Swift `Communicator` (a copy of the struct).
final class CCommunicator: Communicator {
    private let c: kfp_communicator

    init(_ c: kfp_communicator) throws {
        guard c.size == Int64(MemoryLayout<kfp_communicator>.size) else {
            throw KFPError.invalidArgument("comm->size is \(c.size), this library's kfp_communicator has \(MemoryLayout<kfp_communicator>.size) bytes")
        }
        guard c.num_ranks >= 1, c.rank >= 0, c.rank < c.num_ranks else {
            throw KFPError.invalidArgument("comm has rank \(c.rank) of \(c.num_ranks) processes; need 0 <= rank < num_ranks")
        }
        guard c.num_ranks == 1 || (c.allreduce_sum != nil && c.allgather != nil) else {
            throw KFPError.nullPointer("comm->allreduce_sum and comm->allgather must be set for more than one process")
        }
        self.c = c
    }

    var rank: Int { Int(c.rank) }
    var size: Int { Int(c.num_ranks) }

    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {
        let status = c.allreduce_sum!(c.context, buffer, Int64(count))
        guard status == 0 else { throw KFPError.communication("the communicator's allreduce_sum of \(count) values returned \(status)") }
    }

    func allgather(_ send: UnsafePointer<Double>, count: Int, into receive: UnsafeMutablePointer<Double>) throws {
        let status = c.allgather!(c.context, send, Int64(count), receive)
        guard status == 0 else { throw KFPError.communication("the communicator's allgather of \(count) values per rank returned \(status)") }
    }
}

/// Makes the optimizer one process of a data-parallel run (docs/parallel.md): from now on its
/// steps, and kfp_train with it, sum every quantity over the processes of `comm`, each process
/// holding its own points, so that all take the identical step. Every process calls this
/// collectively, with an optimizer of the same kind, options and state on a network of the same
/// shape and parameters and the same operator; a hash of these is compared across the processes.
/// A failure in a later step on any process (non-finite values, out of memory) ends that call on
/// every process with the same status.
/// @param comm the communicator (copied; its context must outlive the optimizer's use of it), or
///        NULL to make the optimizer a single process again. kfacpinn_mpi.h makes one from MPI.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT (comm->size, rank out of
///         range; SPRING and the woodbury and nystrom ENGD variants, whose kernel couples every
///         pair of points); KFP_ERROR_COMMUNICATION (a communicator function failed, or the
///         processes' setups differ: on every process); KFP_ERROR_OUT_OF_MEMORY. On failure the
///         optimizer is unchanged.
@c public func kfp_optimizer_set_communicator(_ optimizer: OpaquePointer?, _ comm: UnsafePointer<kfp_communicator>?) -> kfp_status {
    entryPoint("kfp_optimizer_set_communicator") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        try opt.setCommunicator(try comm.map { try CCommunicator($0.pointee) })
    }
}

/// The optimizer's place in its data-parallel run: its rank and the number of processes (0 and 1
/// without a communicator).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER.
@c public func kfp_optimizer_rank(
    _ optimizer: OpaquePointer?, _ out_rank: UnsafeMutablePointer<Int32>?, _ out_num_ranks: UnsafeMutablePointer<Int32>?
) -> kfp_status {
    entryPoint("kfp_optimizer_rank") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        let rank = try required(out_rank, "out_rank"), ranks = try required(out_num_ranks, "out_num_ranks")
        rank.pointee = Int32(opt.communicator?.rank ?? 0)
        ranks.pointee = Int32(opt.communicator?.size ?? 1)
    }
}
