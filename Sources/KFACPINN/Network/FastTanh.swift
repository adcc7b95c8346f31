/// tanh without a libm call, branch-free so that loops over arrays vectorise:
///
///     tanh x = e / (e + 2),   e = expm1(2x),
///
/// with x clamped to [−20, 20] (where tanh is ±1 to double precision) and
/// expm1(y) = 2^k (p + 1) − 1, k = round(y / ln 2), r = y − k ln 2 (|r| ≤ ln2/2),
/// p = expm1(r) by its Taylor polynomial to degree 13 (truncation < 1e-17 |r|).
/// For k = 0 this is p itself, so small arguments keep full relative accuracy.
/// NaN stays NaN.
@inline(__always)
func fastTanh(_ x: Double) -> Double {
    let y = 2 * (x > 20 ? 20 : (x < -20 ? -20 : x))
    // k = round(y / ln 2) by the 1.5·2^52 shift: t's low mantissa bits then hold k.
    let shift = 0x1.8p52
    let t = y * 1.4426950408889634 + shift
    let k = t - shift
    // r = y − k ln 2 with ln 2 split in a high part (exact products) and a low part.
    let r = (y - k * 0.6931471803691238) - k * 1.9082149292705877e-10
    let scale = Double(bitPattern: (t.bitPattern &- shift.bitPattern &+ 1023) &<< 52)   // 2^k
    // expm1(r) = r + r²/2! + … + r¹³/13!, Horner form.
    var p = 1.0 / 6227020800
    p = p * r + 1.0 / 479001600
    p = p * r + 1.0 / 39916800
    p = p * r + 1.0 / 3628800
    p = p * r + 1.0 / 362880
    p = p * r + 1.0 / 40320
    p = p * r + 1.0 / 5040
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p *= r
    let e = scale * p + (scale - 1)
    let result = e / (e + 2)
    return x.isNaN ? x : result
}
