import Glibc

/// Adam (Kingma & Ba) with bias correction, at step t = 1, 2, …:
///   m ← β₁ m + (1 − β₁) ∇L,  v ← β₂ v + (1 − β₂) ∇L²,
///   θ ← θ − lr · m̂ / (√v̂ + ε),  m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ).
public final class Adam: Optimizer, OptionTable, GuardedOptimizer {
    static let displayName = "Adam"
    static let defaultOptions = Options()

    public struct Options: Sendable, Equatable {
        /// lr > 0.
        public var learningRate = 1e-3
        /// β₁, β₂ ∈ [0, 1).
        public var beta1 = 0.9
        public var beta2 = 0.999
        /// ε > 0.
        public var epsilon = 1e-8

        public init() {}

        func validate() throws {
            try requireLearningRate(learningRate)
            try requireUnitInterval(beta1, "beta1")
            try requireUnitInterval(beta2, "beta2")
            guard epsilon.isFinite, epsilon > 0 else { throw KFPError.invalidArgument("epsilon must be positive and finite, got \(epsilon)") }
        }
    }

    public let network: MLP
    public let loss: PINNLoss
    let divergence = DivergenceGuard()
    public private(set) var options: Options
    public private(set) var stepCount = 0
    private var gradient: [Double], first: [Double], second: [Double], newFirst: [Double], newSecond: [Double]

    public init(network: MLP, operator op: Operator, options: Options = Options()) throws {
        try options.validate()
        self.network = network
        loss = try PINNLoss(network: network, operator: op)
        self.options = options
        gradient = [Double](repeating: 0, count: loss.parameterCount)
        first = gradient
        second = gradient
        newFirst = gradient
        newSecond = gradient
    }

    static var optionFields: [OptimizerOption: OptionField<Options>] {
        [.learningRate: .double(\.learningRate), .beta1: .double(\.beta1), .beta2: .double(\.beta2),
         .epsilon: .double(\.epsilon)]
    }

    /// Replaces all options at once (validated; nothing changes on failure).
    public func setOptions(_ new: Options) throws {
        try new.validate()
        options = new
    }

    func unguardedStep(_ batch: Batch) throws -> StepStatistics {
        let value = try gradient.withUnsafeMutableBufferPointer { try loss.lossAndGradient(batch, into: $0.baseAddress!) }
        let D = loss.parameterCount, o = options, t = Double(stepCount + 1)
        let c1 = 1 - pow(o.beta1, t), c2 = 1 - pow(o.beta2, t)
        var newTheta = loss.parameters, squares = 0.0
        for i in 0..<D {
            let g = gradient[i]
            let m = o.beta1 * first[i] + (1 - o.beta1) * g, v = o.beta2 * second[i] + (1 - o.beta2) * g * g
            newFirst[i] = m
            newSecond[i] = v
            let delta = o.learningRate * (m / c1) / ((v / c2).squareRoot() + o.epsilon)
            newTheta[i] -= delta
            squares += delta * delta
        }
        try newTheta.withUnsafeBufferPointer { try requireFiniteUpdate($0.baseAddress!, D, "Adam") }
        loss.assignParameters(newTheta)
        swap(&first, &newFirst)
        swap(&second, &newSecond)
        stepCount += 1
        return StepStatistics(loss: value.total, lossInterior: value.interior, lossBoundary: value.boundary,
                              stepSize: o.learningRate, momentum: o.beta1, updateNorm: squares.squareRoot(), accepted: true)
    }
}

extension Adam {
    /// Steps taken and the two moment estimates.
    func writeState(_ s: inout SectionWriter) throws {
        s.int(stepCount)
        try s.doubles(first)
        try s.doubles(second)
    }

    func readState(_ s: inout SectionReader) throws {
        let steps = try s.int(in: 0...SectionReader.maxCount, "the step count")
        let m = try s.doubles(count: loss.parameterCount, "the first moments")
        let v = try s.doubles(count: loss.parameterCount, "the second moments")
        try s.finish()
        (stepCount, first, second) = (steps, m, v)
    }
}
