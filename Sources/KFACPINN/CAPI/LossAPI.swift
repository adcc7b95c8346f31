/// The PINN loss L = 1/(2N) sum_n r_n^2 + 1/(2M) sum_m (u(x_m) - g_m)^2 on a batch.
/// @param out_loss receives L (may be NULL).
/// @param out_loss_interior receives the interior term (may be NULL).
/// @param out_loss_boundary receives the boundary term (may be NULL).
/// @return KFP_OK; KFP_ERROR_DIMENSION_MISMATCH if network, operator and batch dimensions differ;
///         KFP_ERROR_NON_FINITE if the loss is not finite.
@c public func kfp_loss(
    _ net: OpaquePointer?, _ op: OpaquePointer?, _ batch: OpaquePointer?,
    _ out_loss: UnsafeMutablePointer<Double>?, _ out_loss_interior: UnsafeMutablePointer<Double>?,
    _ out_loss_boundary: UnsafeMutablePointer<Double>?
) -> kfp_status {
    entryPoint("kfp_loss") {
        let mlp = try object(net, MLP.self, "net")
        let o = try object(op, OperatorHandle.self, "op").op
        let b = try object(batch, BatchHandle.self, "batch").batch
        let value = try PINNLoss(network: mlp, operator: o).loss(b)
        out_loss?.pointee = value.total
        out_loss_interior?.pointee = value.interior
        out_loss_boundary?.pointee = value.boundary
    }
}

/// The PINN loss and its gradient with respect to all parameters (one Taylor-mode forward
/// and one backward pass). Layout of the gradient as kfp_net_get_params.
/// @param out_loss receives L (may be NULL).
/// @param grad receives num_params values.
/// @param num_params must equal the network's D.
/// @return as kfp_loss; on failure `grad` is left unchanged.
@c public func kfp_loss_and_gradient(
    _ net: OpaquePointer?, _ op: OpaquePointer?, _ batch: OpaquePointer?,
    _ out_loss: UnsafeMutablePointer<Double>?, _ grad: UnsafeMutablePointer<Double>?, _ num_params: Int64
) -> kfp_status {
    entryPoint("kfp_loss_and_gradient") {
        let mlp = try object(net, MLP.self, "net")
        let o = try object(op, OperatorHandle.self, "op").op
        let b = try object(batch, BatchHandle.self, "batch").batch
        let g = try required(grad, "grad")
        guard num_params == Int64(mlp.numParameters) else {
            throw KFPError.dimensionMismatch("num_params is \(num_params), the network has \(mlp.numParameters) parameters")
        }
        let (value, gradient) = try PINNLoss(network: mlp, operator: o).lossAndGradient(b)
        g.update(from: gradient, count: gradient.count)
        out_loss?.pointee = value.total
    }
}
