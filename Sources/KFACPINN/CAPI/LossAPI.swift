/// The PINN loss L = 1/(2N) sum_n r_n^2 + 1/(2M) sum_m (u(x_m) - g_m)^2 on a batch. With a
/// randomized operator (kfp_operator_set_estimator) r_n is the estimate from the probes of an
/// optimizer's first step (draw 0).
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
/// and one backward pass). Layout of the gradient as kfp_net_get_params, followed, when
/// num_params asks for them, by the derivatives in the operator's trained (not frozen)
/// coefficients: in kappa, or in log kappa for a KFP_COEF_POSITIVE one.
/// @param out_loss receives L (may be NULL).
/// @param grad receives num_params values.
/// @param num_params the network's D, or D plus the number of trained coefficients.
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
        let loss = try PINNLoss(network: mlp, operator: o)
        guard num_params == Int64(mlp.numParameters) || num_params == Int64(loss.parameterCount) else {
            throw KFPError.dimensionMismatch("num_params is \(num_params), the network has \(mlp.numParameters) parameters and the operator \(loss.coefficientCount) trained coefficients")
        }
        let (value, gradient) = try loss.lossAndGradient(b)
        g.update(from: gradient, count: Int(num_params))
        out_loss?.pointee = value.total
    }
}
