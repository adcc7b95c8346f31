/// The input directions of a `.probes` Taylor pass (docs/math.md §12): per point n, m directions
/// v_{n,1..m} (row-major N × m × d). The pass carries the derivative J_c = ∂_{v_{n,c}} v along each
/// and one collapsed second-order column T = Σ_c w_c ∂²_{v_{n,c}} v; a direction of weight 0
/// contributes its first derivative only.
struct ProbeColumns {
    /// w_c (m values).
    let weights: [Double]
    let directions: [Double]

    var count: Int { weights.count }
}
