/// Keys of kfp_optimizer_set_* / kfp_optimizer_get_*. Values are fixed; new keys are only appended.
@c public enum kfp_option: Int32 {
    /// double > 0: damping lambda added to every Kronecker factor (KFAC default 1e-10).
    case KFP_OPT_DAMPING = 0
    /// double in [0, 1): exponential moving average of the factors (KFAC default 0.95).
    case KFP_OPT_EMA = 1
    /// double in [0, 1): heavy-ball momentum (KFAC line search and fixed steps; default 0).
    case KFP_OPT_MOMENTUM = 2
    /// double > 0: learning rate of the "fixed" step rule (default 1).
    case KFP_OPT_LEARNING_RATE = 3
    /// string: "line_search" (default), "auto" (KFAC*) or "fixed".
    case KFP_OPT_STEP_RULE = 4
    /// integer >= 1: update the Kronecker factors every this many steps (T_kfac, default 1).
    case KFP_OPT_FACTOR_PERIOD = 5
    /// integer >= 1: recompute the eigendecompositions every this many steps (T_inv, default 1).
    case KFP_OPT_INVERSE_PERIOD = 6
    /// string: "identity" (default) or "zero", the factors' initial value; before the first step only.
    case KFP_OPT_FACTOR_INIT = 7
    /// string: "expand" (default) or "reduce", the weight-sharing approximation of the factors.
    case KFP_OPT_APPROXIMATION = 8
    /// integer 0 or 1: Nesterov momentum (SGD; default 0).
    case KFP_OPT_NESTEROV = 9
    /// double in [0, 1): first-moment decay beta1 (Adam; default 0.9).
    case KFP_OPT_BETA1 = 10
    /// double in [0, 1): second-moment decay beta2 (Adam; default 0.999).
    case KFP_OPT_BETA2 = 11
    /// double > 0: epsilon of the Adam denominator (default 1e-8).
    case KFP_OPT_EPSILON = 12
    /// integer >= 1: number of stored (s, y) pairs (L-BFGS; default 10).
    case KFP_OPT_HISTORY = 13
    /// integer >= 1: CG iterations per step (Hessian-free; default 300) or evaluations per line search (L-BFGS; default 25).
    case KFP_OPT_MAX_ITERATIONS = 14
    /// string: "full" (default), "per_layer", "diagonal" or "woodbury", the ENGD Gramian.
    case KFP_OPT_VARIANT = 15
    /// integer >= 1: largest Gramian block ENGD forms (default 16384); larger networks are refused.
    case KFP_OPT_MAX_PARAMETERS = 16
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
    /// Number of statistics.
    case KFP_STAT_COUNT = 7
}

extension OptimizerOption {
    init(key: Int32) throws {
        guard let k = kfp_option(rawValue: key) else { throw KFPError.invalidArgument("unknown option key \(key)") }
        switch k {
        case .KFP_OPT_DAMPING: self = .damping
        case .KFP_OPT_EMA: self = .ema
        case .KFP_OPT_MOMENTUM: self = .momentum
        case .KFP_OPT_LEARNING_RATE: self = .learningRate
        case .KFP_OPT_STEP_RULE: self = .stepRule
        case .KFP_OPT_FACTOR_PERIOD: self = .factorPeriod
        case .KFP_OPT_INVERSE_PERIOD: self = .inversePeriod
        case .KFP_OPT_FACTOR_INIT: self = .factorInitialization
        case .KFP_OPT_APPROXIMATION: self = .approximation
        case .KFP_OPT_NESTEROV: self = .nesterov
        case .KFP_OPT_BETA1: self = .beta1
        case .KFP_OPT_BETA2: self = .beta2
        case .KFP_OPT_EPSILON: self = .epsilon
        case .KFP_OPT_HISTORY: self = .history
        case .KFP_OPT_MAX_ITERATIONS: self = .maxIterations
        case .KFP_OPT_VARIANT: self = .variant
        case .KFP_OPT_MAX_PARAMETERS: self = .maxParameters
        }
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

/// One optimizer step on `batch`, updating the parameters of `net` in place.
/// On failure the parameters and the optimizer state are unchanged.
/// @param net the network the optimizer was created for.
/// @param stats receives min(num_stats, KFP_STAT_COUNT) statistics indexed by KFP_STAT_* (may be NULL when num_stats is 0).
/// @param num_stats capacity of `stats`, >= 0.
/// @return KFP_OK; KFP_ERROR_INVALID_ARGUMENT if `net` is not the optimizer's network;
///         KFP_ERROR_INVALID_ARGUMENT for an ENGD Gramian above max_parameters or a batch too large
///         for memory; KFP_ERROR_DIMENSION_MISMATCH for a batch of another dimension; KFP_ERROR_NON_FINITE if
///         the loss, gradient or update is not finite; KFP_ERROR_NUMERICAL if an eigendecomposition or
///         Cholesky factorisation of the damped Kronecker factors fails.
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
        let values = [s.loss, s.lossInterior, s.lossBoundary, s.stepSize, s.momentum, s.updateNorm, s.accepted ? 1 : 0]
        for i in 0..<k { out![i] = values[i] }
    }
}
