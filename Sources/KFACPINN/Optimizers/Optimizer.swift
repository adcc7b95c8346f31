import CKernels
import Glibc

/// What one optimizer step did.
public struct StepStatistics: Sendable, Equatable {
    /// L(θ) before the step, and its interior and condition terms.
    public var loss: Double
    public var lossInterior: Double
    public var lossBoundary: Double
    /// Step size α of the update (the learning rate for fixed steps).
    public var stepSize: Double
    /// Momentum μ applied to the previous update.
    public var momentum: Double
    /// ‖θ_new − θ‖.
    public var updateNorm: Double
    /// Whether the parameters moved (false when no grid step lowered the loss).
    public var accepted: Bool
    /// Damping λ the step used: the option's value, or larger when a factorisation failed or a
    /// direction came out non-finite and the step was retried with λ raised tenfold (0 for the
    /// optimizers without damping).
    public var damping = 0.0
}

/// Runs `attempt` with damping λ = `damping`; while it fails in a way more damping can cure (a
/// failed factorisation, a non-finite direction: `.numerical`, `.nonFinite`), again with λ raised
/// tenfold, and at least to `retryFloor()`, at most four times, then reports the last failure as
/// `.numerical`. Returns the λ that succeeded; `attempt` gets λ and whether it is a retry.
///
/// `retryFloor` is a damping relative to the curvature's scale: an absolute λ far below the
/// rounding level of large factors (KFAC*'s adaptive λ may fall to 1e-14) cannot cure their
/// rounding-level indefiniteness in four tenfold steps.
func withDampingRetries(_ damping: Double, retryFloor: () -> Double = { 0 },
                        _ attempt: (_ lambda: Double, _ retry: Bool) throws -> Void) throws -> Double {
    var lambda = damping
    for retry in 0...4 {
        do {
            try attempt(lambda, retry > 0)
            return lambda
        } catch let error as KFPError {
            switch error {
            case .numerical, .nonFinite:
                guard retry < 4 else { throw KFPError.numerical("\(error) (also with the damping raised to \(lambda))") }
                lambda = max(lambda * 10, retryFloor())
            default: throw error
            }
        }
    }
    return lambda
}

/// Options addressable by key (the C ABI's `kfp_option`); a key means one concept wherever it
/// applies, and each optimizer accepts its own set. The raw value is the key's name in C
/// (`KFP_OPT_` + upper case) and Python.
public enum OptimizerOption: String, CaseIterable, Sendable {
    // Step and update.
    case learningRate = "learning_rate", momentum, nesterov, stepRule = "step_rule"
    // Curvature.
    case damping, ema, factorPeriod = "factor_period", inversePeriod = "inverse_period"
    case factorInitialization = "factor_init", approximation, variant, maxParameters = "max_parameters", rank
    case dampingRule = "damping_rule", normConstraint = "norm_constraint", minDamping = "min_damping"
    // Adaptive moments.
    case beta1, beta2, epsilon
    // Iteration limits.
    case history, maxEvaluations = "max_evaluations", maxCGIterations = "max_cg_iterations"
    // Safety (every optimizer).
    case divergenceFactor = "divergence_factor"

    /// The range of a numeric option's values: [minimum, maximum], each end open when marked.
    public struct Range: Sendable, Equatable {
        public var minimum: Double, maximum: Double, minimumOpen: Bool, maximumOpen: Bool

        static let positive = Range(minimum: 0, maximum: .infinity, minimumOpen: true, maximumOpen: true)
        static let unitInterval = Range(minimum: 0, maximum: 1, minimumOpen: false, maximumOpen: true)
        static let atLeastOne = Range(minimum: 1, maximum: Double(Int64.max), minimumOpen: false, maximumOpen: false)
        static let flag = Range(minimum: 0, maximum: 1, minimumOpen: false, maximumOpen: false)
        static let none = Range(minimum: 0, maximum: 0, minimumOpen: false, maximumOpen: false)

        /// Whether `v` lies in the range.
        func contains(_ v: Double) -> Bool {
            (minimumOpen ? v > minimum : v >= minimum) && (maximumOpen ? v < maximum : v <= maximum)
        }
    }

    /// The values every optimizer accepts for this option (string options: `.none`).
    public var range: Range {
        switch self {
        case .learningRate, .damping, .epsilon, .normConstraint, .minDamping: return .positive
        case .momentum, .ema, .beta1, .beta2: return .unitInterval
        case .nesterov: return .flag
        case .factorPeriod, .inversePeriod, .maxParameters, .history, .maxEvaluations, .maxCGIterations, .rank: return .atLeastOne
        case .stepRule, .factorInitialization, .approximation, .variant, .dampingRule: return .none
        case .divergenceFactor: return Range(minimum: 1, maximum: .infinity, minimumOpen: true, maximumOpen: false)
        }
    }

    /// One line: what the option means (its optimizers and defaults come from each optimizer).
    public var summary: String {
        switch self {
        case .learningRate: return "learning rate of fixed steps (first trial step of L-BFGS)"
        case .momentum: return "heavy-ball momentum of the update"
        case .nesterov: return "1 for Nesterov momentum"
        case .stepRule: return "how the step is scaled: line_search, auto (KFAC*) or fixed"
        case .damping: return "damping lambda added to the curvature"
        case .ema: return "exponential moving average of the curvature"
        case .factorPeriod: return "update the Kronecker factors every this many steps (T_kfac)"
        case .inversePeriod: return "refactorise the damped Kronecker sums every this many steps (T_inv)"
        case .factorInitialization: return "initial value of the Kronecker factors (before the first step only)"
        case .approximation: return "weight-sharing approximation of the Kronecker factors"
        case .variant: return "ENGD's Gramian: full, per_layer, diagonal, woodbury or nystrom; SPRING's kernel: exact or nystrom"
        case .rank: return "rank k of the Nystrom sketch of the sample-space kernel (nystrom variants)"
        case .maxParameters: return "largest Gramian block ENGD forms; larger networks are refused"
        case .dampingRule: return "fixed, or adaptive: KFAC* adapts the damping from each step's reduction ratio (Levenberg-Marquardt)"
        case .minDamping: return "lower bound of the adaptive damping rule (KFAC*)"
        case .beta1: return "Adam's first-moment decay"
        case .beta2: return "Adam's second-moment decay"
        case .epsilon: return "Adam's denominator offset"
        case .history: return "L-BFGS's stored (s, y) pairs"
        case .maxEvaluations: return "L-BFGS's loss-and-gradient evaluations per line search"
        case .maxCGIterations: return "Hessian-free's CG iterations per step"
        case .normConstraint: return "SPRING's fixed steps: the update's norm is at most the square root of this"
        case .divergenceFactor: return "a step whose starting loss exceeds this factor times the best so far (or meets a non-finite value) undoes the previous step and fails as diverged"
        }
    }

    /// The error for an option the optimizer named `optimizer` does not have.
    func notApplicable(to optimizer: String) -> KFPError {
        .invalidArgument("option \(rawValue) does not apply to \(optimizer)")
    }
}

/// A value set through `Optimizer.setOption`.
public enum OptionValue: Sendable, Equatable {
    case double(Double)
    case int(Int)
    case string(String)

    func double(_ option: OptimizerOption) throws -> Double {
        guard case .double(let v) = self else { throw KFPError.invalidArgument("option \(option.rawValue) takes a double") }
        return v
    }

    func int(_ option: OptimizerOption) throws -> Int {
        guard case .int(let v) = self else { throw KFPError.invalidArgument("option \(option.rawValue) takes an integer") }
        return v
    }

    func bool(_ option: OptimizerOption) throws -> Bool {
        guard case .int(let v) = self, v == 0 || v == 1 else {
            throw KFPError.invalidArgument("option \(option.rawValue) takes 0 or 1")
        }
        return v == 1
    }

    func string(_ option: OptimizerOption) throws -> String {
        guard case .string(let v) = self else { throw KFPError.invalidArgument("option \(option.rawValue) takes a string") }
        return v
    }
}

/// An optimizer of a PINN loss bound to one network and operator.
public protocol Optimizer: AnyObject {
    var network: MLP { get }
    /// One step on `batch`. On a thrown error the parameters and the optimizer state are unchanged.
    func step(_ batch: Batch) throws -> StepStatistics
    /// Sets an option by key; unknown keys and out-of-range values throw and change nothing.
    func setOption(_ option: OptimizerOption, _ value: OptionValue) throws
    /// The current value of an option.
    func option(_ option: OptimizerOption) throws -> OptionValue
    /// The options this optimizer accepts, in key order.
    var optionKeys: [OptimizerOption] { get }
    /// The default value of one of its options.
    func defaultOption(_ option: OptimizerOption) throws -> OptionValue
    /// The allowed values of one of its string options.
    func optionChoices(_ option: OptimizerOption) throws -> [String]
}

/// θ_new finite, or `.nonFinite` naming the optimizer.
func requireFiniteUpdate(_ p: UnsafePointer<Double>, _ count: Int, _ name: String) throws {
    if let error = nonFiniteUpdate(p, count, name) { throw error }
}

extension PINNLoss {
    /// [θ; κ̂] ← v₀ + α w (P values each) if that is finite; otherwise v₀ and `.nonFinite`
    /// naming `optimizer`.
    func moveParameters(from v0: [Double], by alpha: Double, along w: [Double], optimizer: String) throws {
        v0.withUnsafeBufferPointer { t in w.withUnsafeBufferPointer { setParameters(t.baseAddress!, plus: alpha, times: $0.baseAddress!) } }
        try parameters.withUnsafeBufferPointer { p in
            do { try requireFiniteUpdate(p.baseAddress!, p.count, optimizer) } catch {
                assignParameters(v0)
                throw error
            }
        }
    }
}

/// `.nonFinite` naming the optimizer and the first non-finite entry of θ_new, or nil.
func nonFiniteUpdate(_ p: UnsafePointer<Double>, _ count: Int, _ name: String) -> KFPError? {
    firstNonFinite(p, count).map {
        .nonFinite("\(name): the update has a non-finite entry at index \($0); the step was rejected and nothing changed")
    }
}

/// Wall time spent in each phase of the steps taken so far, in seconds.
public struct StepProfile: Sendable, Equatable {
    /// Taylor-mode forward passes and residuals at the current parameters.
    public var forward = 0.0
    /// Backward passes and the gradient.
    public var backward = 0.0
    /// Kronecker factors and their moving averages.
    public var factors = 0.0
    /// Factorisations of the inverses (eigendecompositions of the factors) and, in steps that
    /// recompute them, the Kronecker-sum solves (each layer's right after its factorisation).
    public var inverse = 0.0
    /// Preconditioning the gradient in steps that keep their inverses (T_inv > 1), and the
    /// direction's finiteness check.
    public var solve = 0.0
    /// Choosing the step: line-search loss evaluations, or the quadratic model's Jacobian-vector
    /// products and the update.
    public var stepSize = 0.0
    public var steps = 0

    public var total: Double { forward + backward + factors + inverse + solve + stepSize }

    mutating func add(_ other: StepProfile) {
        forward += other.forward; backward += other.backward; factors += other.factors
        inverse += other.inverse; solve += other.solve; stepSize += other.stepSize; steps += other.steps
    }
}

/// Seconds on a monotonic clock.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// lr > 0 and finite.
func requireLearningRate(_ lr: Double) throws {
    guard lr.isFinite, lr > 0 else { throw KFPError.invalidArgument("learning rate must be positive and finite, got \(lr)") }
}

/// v ∈ [0, 1).
func requireUnitInterval(_ v: Double, _ name: String) throws {
    guard v.isFinite, v >= 0, v < 1 else { throw KFPError.invalidArgument("\(name) must be in [0, 1), got \(v)") }
}

/// λ > 0 and finite.
func requireDamping(_ lambda: Double) throws {
    guard lambda.isFinite, lambda > 0 else { throw KFPError.invalidArgument("damping must be positive and finite, got \(lambda)") }
}
