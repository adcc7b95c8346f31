import Synchronization

/// The PINN loss of one network and operator, with reusable buffers:
///
///     L(θ) = 1/(2N_Ω) Σ_n r_n² + 1/(2N_∂) Σ_m (u(x_m^b) − g_m)²
///
/// One Taylor-mode forward pass over the interior points, one plain pass over
/// the condition points; the gradient comes from one backward pass each.
public final class PINNLoss {
    public struct Value: Sendable, Equatable {
        public var total: Double
        public var interior: Double
        public var boundary: Double
    }

    public let network: MLP
    public let op: Operator
    let interiorPass: TaylorPass
    let boundaryPass: TaylorPass
    /// Interior residuals r_n and their Jacobian seeds ∂r_n/∂(u, ∇u, T) (N·S).
    let interiorResiduals = Buffer(), interiorSeeds = Buffer()
    /// Condition residuals u − g and their seeds (1 per point).
    let boundaryResiduals = Buffer(), boundarySeeds = Buffer()
    let scaledSeeds = Buffer()
    /// Jacobian-vector products J_n v of the interior and condition residuals, per tangent space.
    let interiorJv = [Buffer(), Buffer()], boundaryJv = [Buffer(), Buffer()]
    /// A second loss of the same network and operator with its own passes: the line search's
    /// second thread evaluates its trials on it (created on first use).
    var lineSearchTwin: PINNLoss?
    /// Trial parameters of the line search, one vector per thread.
    let trialParameters = [Buffer(), Buffer()]
    /// The trial losses of the last line search (one per grid step size).
    let lineSearchTrials = Buffer()
    /// The last batch of a line search and its chunks for the trials (a fixed batch is sliced once).
    var trialChunks: (batch: Batch, chunks: [Batch])?
    /// The running line search's lowest loss (bits of a Double), the number of trials taken by
    /// its threads, and the chunk passes it evaluated.
    let lineSearchBest = Atomic<UInt64>(0), nextTrial = Atomic<Int>(0), chunkEvaluations = Atomic<Int>(0)

    public init(network: MLP, operator op: Operator) throws {
        try op.requireCompatible(with: network)
        self.network = network
        self.op = op
        interiorPass = TaylorPass(network: network)
        boundaryPass = TaylorPass(network: network)
        interiorPass.outputGradientUsed = op.readsGradient
    }

    func requireCompatible(_ batch: Batch) throws {
        guard batch.dimension == network.inputDimension else {
            throw KFPError.dimensionMismatch("the batch has \(batch.dimension)-dimensional points, the network expects \(network.inputDimension)")
        }
    }

    /// Forward passes and residuals for `batch`; returns the loss. At `theta` (D values) instead
    /// of the network's parameters only the returned value may be used (see TaylorPass.forward).
    @discardableResult
    func forward(_ batch: Batch, at theta: UnsafePointer<Double>? = nil) throws -> Value {
        try requireCompatible(batch)
        let n = batch.interiorCount, m = batch.boundaryCount, s = network.inputDimension + 2
        try interiorPass.forward(batch.interiorPoints, count: n, mode: .taylor(op.coefficients), parameters: theta)
        let r = interiorResiduals.reserve(n), seeds = interiorSeeds.reserve(n * s)
        batch.interiorPoints.withUnsafeBufferPointer { x in
            batch.source.withUnsafeBufferPointer { f in
                op.residuals(output: interiorPass.output, points: x.baseAddress!, source: f.baseAddress!,
                             count: n, residuals: r, seeds: seeds)
            }
        }
        var value = Value(total: 0, interior: 0.5 * sumOfSquares(n, r) / Double(n), boundary: 0)
        if m > 0 {
            try boundaryPass.forward(batch.boundaryPoints, count: m, mode: .value, parameters: theta)
            let rb = boundaryResiduals.reserve(m), sb = boundarySeeds.reserve(m)
            for k in 0..<m {
                rb[k] = boundaryPass.output[k] - batch.boundaryValues[k]
                sb[k] = 1
            }
            value.boundary = 0.5 * sumOfSquares(m, rb) / Double(m)
        }
        value.total = value.interior + value.boundary
        guard value.total.isFinite else {
            throw KFPError.nonFinite("the loss is not finite (interior \(value.interior), boundary \(value.boundary))")
        }
        return value
    }

    /// L(θ) on `batch`.
    public func loss(_ batch: Batch) throws -> Value { try forward(batch) }

    /// L(θ) and ∇L(θ) on `batch` (gradient in the layout of `MLP.parameters`).
    public func lossAndGradient(_ batch: Batch) throws -> (loss: Value, gradient: [Double]) {
        var gradient = [Double](repeating: 0, count: network.numParameters)
        let value = try gradient.withUnsafeMutableBufferPointer { try lossAndGradient(batch, into: $0.baseAddress!) }
        return (value, gradient)
    }

    /// As `lossAndGradient(_:)`, writing ∇L into `grad` (D values, overwritten).
    func lossAndGradient(_ batch: Batch, into grad: UnsafeMutablePointer<Double>) throws -> Value {
        let value = try forward(batch)
        grad.update(repeating: 0, count: network.numParameters)
        // ∇L_Ω = 1/N Σ_n r_n ∂r_n/∂θ: seed the backward pass with r_n/N · ∂r_n/∂(u, ∇u, T).
        let n = batch.interiorCount, s = network.inputDimension + 2
        let seeds = scaledSeeds.reserve(n * s)
        let r = interiorResiduals.pointer, js = interiorSeeds.pointer
        for k in 0..<n {
            let w = r[k] / Double(n)
            for c in 0..<s { seeds[c * n + k] = w * js[c * n + k] }
        }
        interiorPass.backward(seeds: seeds)
        interiorPass.accumulateGradient(into: grad, weights: nil)
        let m = batch.boundaryCount
        if m > 0 {
            let sb = scaledSeeds.reserve(m), rb = boundaryResiduals.pointer
            for k in 0..<m { sb[k] = rb[k] / Double(m) }
            boundaryPass.backward(seeds: sb)
            boundaryPass.accumulateGradient(into: grad, weights: nil)
        }
        if let i = firstNonFinite(grad, network.numParameters) {
            throw KFPError.nonFinite("the gradient has a non-finite entry at index \(i)")
        }
        return value
    }
}

/// Σ_k r_k² on the calling thread (the loss of every line-search trial).
func sumOfSquares(_ n: Int, _ r: UnsafePointer<Double>) -> Double {
    var sum = 0.0
    for k in 0..<n { sum += r[k] * r[k] }
    return sum
}
