/// Stochastic gradient descent with heavy-ball or Nesterov momentum (PyTorch's convention):
///   b ← μ b + ∇L (b = ∇L on the first step),  d = ∇L + μ b (Nesterov) or b,  θ ← θ − lr d.
public final class SGD: Optimizer, OptionTable, GuardedOptimizer {
    static let displayName = "SGD"
    static let defaultOptions = Options()

    public struct Options: Sendable, Equatable {
        /// lr > 0.
        public var learningRate = 1e-3
        /// μ ∈ [0, 1).
        public var momentum = 0.0
        public var nesterov = false

        public init() {}

        func validate() throws {
            try requireLearningRate(learningRate)
            try requireUnitInterval(momentum, "momentum")
        }
    }

    public let network: MLP
    public let loss: PINNLoss
    let divergence = DivergenceGuard()
    public private(set) var options: Options
    public private(set) var stepCount = 0
    private var gradient: [Double], buffer: [Double], newBuffer: [Double]

    public init(network: MLP, operator op: Operator, options: Options = Options()) throws {
        try options.validate()
        self.network = network
        loss = try PINNLoss(network: network, operator: op)
        self.options = options
        gradient = [Double](repeating: 0, count: loss.parameterCount)
        buffer = gradient
        newBuffer = gradient
    }

    static var optionFields: [OptimizerOption: OptionField<Options>] {
        [.learningRate: .double(\.learningRate), .momentum: .double(\.momentum), .nesterov: .flag(\.nesterov)]
    }

    /// Replaces all options at once (validated; nothing changes on failure).
    public func setOptions(_ new: Options) throws {
        try new.validate()
        options = new
    }

    func unguardedStep(_ batch: Batch) throws -> StepStatistics {
        let value = try gradient.withUnsafeMutableBufferPointer { try loss.lossAndGradient(batch, into: $0.baseAddress!) }
        let D = loss.parameterCount, mu = options.momentum, lr = options.learningRate
        var newTheta = loss.parameters, squares = 0.0
        for i in 0..<D {
            let b = stepCount == 0 ? gradient[i] : mu * buffer[i] + gradient[i]
            newBuffer[i] = b
            let d = options.nesterov ? gradient[i] + mu * b : b
            newTheta[i] -= lr * d
            squares += d * d
        }
        try newTheta.withUnsafeBufferPointer { try requireFiniteUpdate($0.baseAddress!, D, "SGD") }
        loss.assignParameters(newTheta)
        swap(&buffer, &newBuffer)
        stepCount += 1
        return StepStatistics(loss: value.total, lossInterior: value.interior, lossBoundary: value.boundary,
                              stepSize: lr, momentum: mu, updateNorm: lr * squares.squareRoot(), accepted: true)
    }
}

extension SGD {
    /// Steps taken and the momentum buffer.
    func writeState(_ s: inout SectionWriter) throws {
        s.int(stepCount)
        try s.doubles(buffer)
    }

    func readState(_ s: inout SectionReader) throws {
        let steps = try s.int(in: 0...SectionReader.maxCount, "the step count")
        let b = try s.doubles(count: loss.parameterCount, "the momentum buffer")
        try s.finish()
        (stepCount, buffer) = (steps, b)
    }
}
