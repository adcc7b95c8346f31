/// Evaluation of a network through a Taylor pass of its own.
extension MLP {
    /// u(x_n) for the `count` points in `x` (row-major count × d).
    public func evaluate(_ x: [Double], count: Int) throws -> [Double] {
        try validatePoints(x, count: count)
        let pass = TaylorPass(network: self)
        try pass.forward(x, count: count, mode: .value)
        return Array(UnsafeBufferPointer(start: pass.output, count: count))
    }

    /// Taylor-mode derivatives in one batched pass: u (N), ∇u (N × d, row-major)
    /// and Σ_ij C_ij ∂_i∂_j u (N) for the given coefficients (the Laplacian by default).
    public func derivatives(_ x: [Double], count: Int, coefficients: SecondOrderCoefficients = .laplacian)
        throws -> (value: [Double], gradient: [Double], secondOrder: [Double])
    {
        try validatePoints(x, count: count)
        let pass = TaylorPass(network: self)
        try pass.forward(x, count: count, mode: .taylor(try coefficients.resolved(dimension: inputDimension)))
        return pass.outputTriple()
    }
}
