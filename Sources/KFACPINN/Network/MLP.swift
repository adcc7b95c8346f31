
/// How the parameters of a new network are drawn.
public enum Initialization: String, CaseIterable, Sendable {
    /// PyTorch `nn.Linear`: W and b uniform in ±1/√h_in.
    case pytorch
    /// Xavier (Glorot) uniform: W uniform in ±√(6/(h_in + h_out)), b = 0.
    case xavier

    public init(name: String) throws {
        guard let i = Initialization(rawValue: name) else {
            let known = Initialization.allCases.map(\.rawValue).joined(separator: ", ")
            throw KFPError.invalidArgument("unknown initialization '\(name)' (known: \(known))")
        }
        self = i
    }
}

/// A multilayer perceptron u_θ: R^d → R, float64.
///
/// Linear layers z' = W z + b (W is h_out × h_in) alternate with the
/// activation σ; the last layer is linear with one output. The parameter
/// vector is laid out layer by layer, W row-major then b — the order of
/// PyTorch's `parameters_to_vector` for an `nn.Sequential` of `nn.Linear`.
public final class MLP {
    /// Layer widths [d, h_1, …, h_{L−1}, 1].
    public let widths: [Int]
    public let activation: Activation
    /// The flat parameter vector θ.
    public private(set) var parameters: [Double]

    /// Largest parameter count accepted (keeps every BLAS size within 32 bits).
    public static let maxParameters = 1 << 31 - 1

    /// Creates a network with parameters drawn from `seed`.
    public init(widths: [Int], activation: Activation = .tanh,
                initialization: Initialization = .pytorch, seed: UInt64 = 0) throws {
        _ = BLAS.kernel   // every computation starts from a network: fix the BLAS kernels first
        guard widths.count >= 2 else {
            throw KFPError.invalidArgument("a network needs at least 2 widths (input and output), got \(widths.count)")
        }
        for (i, w) in widths.enumerated() where w < 1 {
            throw KFPError.invalidArgument("width \(i) is \(w); every width must be at least 1")
        }
        guard widths.last == 1 else {
            throw KFPError.invalidArgument("the last width must be 1 (scalar output), got \(widths.last!)")
        }
        var count = 0
        for l in 0..<(widths.count - 1) {
            let layer = try checkedProduct(widths[l] + 1, widths[l + 1], "layer \(l)")
            count += layer
            guard count <= MLP.maxParameters else {
                throw KFPError.invalidArgument("the network has more than \(MLP.maxParameters) parameters")
            }
        }
        self.widths = widths
        self.activation = activation
        self.parameters = try Memory.zeros(count, "a network of \(count) parameters")
        var rng = RandomSource(seed: seed)
        for l in 0..<numLayers {
            let (hin, hout) = (widths[l], widths[l + 1])
            let w = weightOffset(l), b = biasOffset(l)
            switch initialization {
            case .pytorch:
                let bound = 1 / Double(hin).squareRoot()
                for k in 0..<(hin * hout) { parameters[w + k] = rng.uniform(-bound, bound) }
                for k in 0..<hout { parameters[b + k] = rng.uniform(-bound, bound) }
            case .xavier:
                let bound = (6 / Double(hin + hout)).squareRoot()
                for k in 0..<(hin * hout) { parameters[w + k] = rng.uniform(-bound, bound) }
            }
        }
    }

    /// Input dimension d.
    public var inputDimension: Int { widths[0] }
    /// Number of linear layers L.
    public var numLayers: Int { widths.count - 1 }
    /// Number of parameters D.
    public var numParameters: Int { parameters.count }

    /// Offset of layer l's W (h_out × h_in, row-major) in θ.
    public func weightOffset(_ l: Int) -> Int {
        var o = 0
        for k in 0..<l { o += (widths[k] + 1) * widths[k + 1] }
        return o
    }

    /// Offset of layer l's b in θ.
    public func biasOffset(_ l: Int) -> Int { weightOffset(l) + widths[l] * widths[l + 1] }

    /// Replaces θ. Throws (and leaves θ unchanged) on a wrong length or a non-finite entry.
    public func setParameters(_ theta: [Double]) throws {
        guard theta.count == parameters.count else {
            throw KFPError.dimensionMismatch("parameter vector has \(theta.count) entries, the network has \(parameters.count)")
        }
        try requireFinite(theta, "parameter vector")
        parameters = theta
    }

    /// θ ← θ₀ + α v without checks (optimizers check finiteness themselves).
    func setParameters(_ theta0: UnsafePointer<Double>, plus alpha: Double, times v: UnsafePointer<Double>) {
        parameters.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = theta0[i] + alpha * v[i] }
        }
    }

    /// Runs `body` on the parameter array, in place and without checks (optimizers' updates).
    func withMutableParameters<R>(_ body: (UnsafeMutablePointer<Double>) throws -> R) rethrows -> R {
        try parameters.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }

    /// θ ← theta without checks (restoring a saved θ).
    func assignParameters(_ theta: [Double]) { parameters = theta }

    /// Checks that `x` holds `count` points of the network's input dimension, all finite.
    func validatePoints(_ x: [Double], count: Int, _ what: String = "points") throws {
        guard count >= 1 else { throw KFPError.invalidArgument("\(what): need at least one point, got \(count)") }
        let expected = try checkedProduct(count, inputDimension, what)
        guard x.count == expected else {
            throw KFPError.dimensionMismatch(
                "\(what): \(x.count) values for \(count) points, the network expects \(inputDimension) coordinates per point")
        }
        try requireFinite(x, what)
    }
}
