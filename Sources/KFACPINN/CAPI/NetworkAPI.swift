/// Creates an MLP u: R^d -> R with layer widths [d, h_1, ..., 1] and float64 parameters
/// drawn deterministically from `seed`.
/// @param widths num_widths layer widths; the first is the input dimension d, the last must be 1; each >= 1.
/// @param num_widths number of widths, >= 2.
/// @param activation "tanh" (default when NULL), "sigmoid", "sin" or "softplus".
/// @param initialization "pytorch" (default when NULL: W, b uniform in +-1/sqrt(h_in)) or "xavier" (b = 0).
/// @param seed seed of the parameter generator; the same seed gives the same network on any machine.
/// @param out_net receives the new handle (NULL on failure). Free it with kfp_net_free.
/// @return KFP_OK, KFP_ERROR_NULL_POINTER, KFP_ERROR_INVALID_ARGUMENT.
@c public func kfp_net_create(
    _ widths: UnsafePointer<Int64>?, _ num_widths: Int64, _ activation: UnsafePointer<CChar>?,
    _ initialization: UnsafePointer<CChar>?, _ seed: UInt64,
    _ out_net: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    entryPoint("kfp_net_create") {
        let out = try required(out_net, "out_net")
        out.pointee = nil
        let n = try countArgument(num_widths, "num_widths", minimum: 2)
        let w = try required(widths, "widths")
        var sizes: [Int] = []
        for i in 0..<n {
            guard w[i] >= 1, w[i] <= Int64(Int32.max) else {
                throw KFPError.invalidArgument("width \(i) is \(w[i]); every width must be between 1 and \(Int32.max)")
            }
            sizes.append(Int(w[i]))
        }
        let act = try Activation(name: string(activation, default: "tanh"))
        let initKind = try Initialization(name: string(initialization, default: "pytorch"))
        let net = try MLP(widths: sizes, activation: act, initialization: initKind, seed: seed)
        publish(net, to: out)
    }
}

/// Frees a network. NULL is a no-op.
@c public func kfp_net_free(_ net: OpaquePointer?) {
    releaseHandle(net, MLP.self)
}

/// Number of parameters D of the network.
/// @param out_num_params receives D.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER or KFP_ERROR_WRONG_HANDLE.
@c public func kfp_net_num_params(_ net: OpaquePointer?, _ out_num_params: UnsafeMutablePointer<Int64>?) -> kfp_status {
    entryPoint("kfp_net_num_params") {
        let mlp = try object(net, MLP.self, "net")
        try required(out_num_params, "out_num_params").pointee = Int64(mlp.numParameters)
    }
}

/// Input dimension d of the network.
/// @param out_dim receives d.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER or KFP_ERROR_WRONG_HANDLE.
@c public func kfp_net_input_dim(_ net: OpaquePointer?, _ out_dim: UnsafeMutablePointer<Int64>?) -> kfp_status {
    entryPoint("kfp_net_input_dim") {
        let mlp = try object(net, MLP.self, "net")
        try required(out_dim, "out_dim").pointee = Int64(mlp.inputDimension)
    }
}

/// Layer widths of the network.
/// @param widths buffer of `capacity` entries; receives min(capacity, count) widths (may be NULL when capacity is 0).
/// @param capacity size of `widths`, >= 0.
/// @param out_count receives the number of widths (number of layers + 1).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER (also when capacity > 0 and widths is NULL); KFP_ERROR_INVALID_ARGUMENT for capacity < 0.
@c public func kfp_net_widths(
    _ net: OpaquePointer?, _ widths: UnsafeMutablePointer<Int64>?, _ capacity: Int64,
    _ out_count: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_net_widths") {
        let mlp = try object(net, MLP.self, "net")
        let cap = try countArgument(capacity, "capacity", minimum: 0)
        let outCount = try required(out_count, "out_count")
        let k = min(cap, mlp.widths.count)
        if k > 0 {
            let w = try required(widths, "widths")
            for i in 0..<k { w[i] = Int64(mlp.widths[i]) }
        }
        outCount.pointee = Int64(mlp.widths.count)
    }
}

/// Copies the parameter vector theta into `params`. Layout: layer by layer, W row-major
/// (h_out x h_in), then b (PyTorch parameters_to_vector order).
/// @param params buffer of num_params doubles.
/// @param num_params must equal the network's D.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_DIMENSION_MISMATCH if num_params is not D.
@c public func kfp_net_get_params(
    _ net: OpaquePointer?, _ params: UnsafeMutablePointer<Double>?, _ num_params: Int64
) -> kfp_status {
    entryPoint("kfp_net_get_params") {
        let mlp = try object(net, MLP.self, "net")
        let p = try required(params, "params")
        guard num_params == Int64(mlp.numParameters) else {
            throw KFPError.dimensionMismatch("num_params is \(num_params), the network has \(mlp.numParameters) parameters")
        }
        mlp.parameters.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: $0.count) }
    }
}

/// Replaces the parameter vector (layout as kfp_net_get_params). On failure the network is unchanged.
/// @param params num_params finite doubles.
/// @param num_params must equal the network's D.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_DIMENSION_MISMATCH if num_params is not D; KFP_ERROR_NON_FINITE.
@c public func kfp_net_set_params(
    _ net: OpaquePointer?, _ params: UnsafePointer<Double>?, _ num_params: Int64
) -> kfp_status {
    entryPoint("kfp_net_set_params") {
        let mlp = try object(net, MLP.self, "net")
        let p = try required(params, "params")
        guard num_params == Int64(mlp.numParameters) else {
            throw KFPError.dimensionMismatch("num_params is \(num_params), the network has \(mlp.numParameters) parameters")
        }
        try mlp.setParameters(Array(UnsafeBufferPointer(start: p, count: mlp.numParameters)))
    }
}

/// Points of a C call checked against the network: `dim` must be its input dimension.
func points(_ x: UnsafePointer<Double>?, _ num_points: Int64, _ dim: Int64, for mlp: MLP,
            _ name: String = "x") throws -> (values: [Double], count: Int) {
    let n = try countArgument(num_points, "num_points")
    let d = try countArgument(dim, "dim")
    guard d == mlp.inputDimension else {
        throw KFPError.dimensionMismatch("\(name) has \(d) columns, the network expects \(mlp.inputDimension)")
    }
    let values = try array(x, try checkedProduct(n, d, name), name)
    try requireFinite(values, name)
    return (values, n)
}

/// Evaluates u(x_n) for num_points points.
/// @param x points, row-major num_points x dim.
/// @param num_points N >= 1.
/// @param dim must equal the network's input dimension.
/// @param u receives N values.
/// @return KFP_OK, KFP_ERROR_NULL_POINTER, KFP_ERROR_INVALID_ARGUMENT, KFP_ERROR_DIMENSION_MISMATCH, KFP_ERROR_NON_FINITE.
@c public func kfp_net_eval(
    _ net: OpaquePointer?, _ x: UnsafePointer<Double>?, _ num_points: Int64, _ dim: Int64,
    _ u: UnsafeMutablePointer<Double>?
) -> kfp_status {
    entryPoint("kfp_net_eval") {
        let mlp = try object(net, MLP.self, "net")
        let (values, n) = try points(x, num_points, dim, for: mlp)
        let out = try required(u, "u")
        let result = try mlp.evaluate(values, count: n)
        result.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: n) }
    }
}

/// Taylor-mode derivatives in one batched pass: u, its gradient and the second-order term
/// sum_ij C_ij d_i d_j u (the Laplacian when `coefficients` is NULL).
/// @param x points, row-major num_points x dim.
/// @param num_points N >= 1.
/// @param dim must equal the network's input dimension d.
/// @param coefficients symmetric d x d matrix C, row-major, or NULL for C = I.
/// @param u receives N values (may be NULL if not wanted).
/// @param grad receives N x d values, row-major (may be NULL).
/// @param second receives N values of sum_ij C_ij d_i d_j u (may be NULL).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER, KFP_ERROR_INVALID_ARGUMENT (num_points, non-symmetric C), KFP_ERROR_DIMENSION_MISMATCH (dim), KFP_ERROR_NON_FINITE (x or C).
@c public func kfp_net_derivatives(
    _ net: OpaquePointer?, _ x: UnsafePointer<Double>?, _ num_points: Int64, _ dim: Int64,
    _ coefficients: UnsafePointer<Double>?, _ u: UnsafeMutablePointer<Double>?,
    _ grad: UnsafeMutablePointer<Double>?, _ second: UnsafeMutablePointer<Double>?
) -> kfp_status {
    entryPoint("kfp_net_derivatives") {
        let mlp = try object(net, MLP.self, "net")
        let (values, n) = try points(x, num_points, dim, for: mlp)
        let d = mlp.inputDimension
        let c: SecondOrderCoefficients = coefficients.map { .matrix(Array(UnsafeBufferPointer(start: $0, count: d * d))) } ?? .laplacian
        let result = try mlp.derivatives(values, count: n, coefficients: c)
        u?.update(from: result.value, count: n)
        grad?.update(from: result.gradient, count: n * d)
        second?.update(from: result.secondOrder, count: n)
    }
}
