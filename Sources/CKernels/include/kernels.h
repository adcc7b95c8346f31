/* Elementwise kernels compiled for several x86-64 instruction sets and chosen at run time.
 * The Swift code of the library is compiled for baseline x86-64 (2-wide SSE2, no FMA);
 * the activation rules of the Taylor pass are its hottest loops and gain most from AVX2+FMA
 * and AVX-512.
 *
 * The kernels are in files by the pass they serve: taylor_rules.c (activation, forward Laplacian,
 * its reverse and tangent rules, linear-layer helpers), fused_tanh.c (one-pass tanh kernels),
 * adjoint_products.c (sums over kept adjoints), vector_sweeps.c (parameter-vector sweeps);
 * dispatch.h compiles each for every instruction set, shared.h holds their common helpers. */
#ifndef KERNELS_H
#define KERNELS_H

/* Instruction sets of the kernels. */
enum kernels_isa { KERNELS_ISA_BASELINE = 0, KERNELS_ISA_AVX2 = 1, KERNELS_ISA_AVX512 = 2 };

/* The best instruction set this CPU and OS support (AVX2 counts with FMA only). */
int kernels_best_isa(void);

/* A pause in a spin-wait loop (x86 PAUSE: yields the core's pipeline to its sibling, saves power). */
static inline void kernels_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Every kernel takes the instruction set first: `isa` must be supported (kernels_best_isa() ≥ isa);
 * arrays passed to one call must not overlap. */

/* tanh and its first three derivatives on n values v[k]:
 *   t = tanh v → value[k],  σ' = 1 − t² → d1[k],  σ'' = −2tσ' → d2[k],  σ''' = −2σ'(1 − 3t²) → d3[k].
 * tanh v = e/(e + 2), e = expm1(2v), with v clamped to [−20, 20] (tanh is ±1 there to double
 * precision) and expm1(y) = 2^k (p + 1) − 1, k = round(y/ln 2), r = y − k ln 2, p = expm1(r)
 * by its Taylor polynomial of degree 13; relative error below 1e-15, NaN stays NaN. */
void kernels_tanh_rules(int isa, long n, const double *v, double *value, double *d1, double *d2, double *d3);

/* out[c] = Σ_j w[j] rows[j·ld + c] for c < n, j < h (one output unit of a linear layer over n columns). */
void kernels_row_combination(int isa, long h, long n, const double *w, const double *rows, long ld, double *out);

/* out[j] = Σ_k rows[j·ld + k] over k < n, for j < h (eight partial sums, for SIMD). */
void kernels_row_sums(int isa, long h, long n, const double *rows, long ld, double *out);

/* The first layer's values of h units over n points: out[j·n + k] = b_j + Σ_i w[j·d + i] x[i·n + k]
 * (x: the points as d rows of n coordinates), summed in this order (as in the fused kernels). */
void kernels_first_layer_values(int isa, long h, long n, long d, const double *w, const double *b, const double *x,
                                double *out);

/* The forward-Laplacian rule of one hidden unit over n samples, after its activation:
 *   J'_i = σ' J_i (i = 1…d),  T' = σ' T + σ'' Q,  Q = Σ_im C_im J_i J_m.
 * z: the pre-activation blocks [v | J_1 … J_d | T] of n values each; out: the same blocks of the
 * post-activation (block 0, σ(v), is not touched); s1, s2: σ', σ'' (n values); c: C's diagonal
 * (d values) when `diagonal`, else C (d × d, row-major); q: work space of n values (Q on return). */
void kernels_taylor_rule(int isa, long n, long d, const double *z, const double *c, int diagonal, const double *s1,
                         const double *s2, double *out, double *q);

/* The same rule for a unit of the first layer, whose input columns are x, e_i and 0: J_i = w_i
 * (constant over the samples), T = 0, Q = q:  J'_i = σ' w_i,  T' = σ'' q. */
void kernels_taylor_first_rule(int isa, long n, long d, const double *w, double q, const double *s1, const double *s2,
                               double *out);

/* The reverse of kernels_taylor_rule: from the adjoints u of the post-activation blocks
 * [v̄' | J̄'_1 … J̄'_d | T̄'] (n values each), the adjoints o of the pre-activation blocks
 *   T̄ = σ' T̄',  J̄_i = σ' J̄'_i + 2σ'' T̄' (CJ)_i,  v̄ = σ' v̄' + σ'' Σ_i J_i J̄'_i + (σ'' T + σ''' Q) T̄',
 * (CJ)_i = Σ_m C_im J_m, all times `scale` (the adjoints are linear in u: scale · u may be given as
 * u and scale, as for the one-row output layer, whose Wᵀ G is an outer product). z, c, diagonal as in
 * kernels_taylor_rule; s3 = σ'''; work: (d + 2)·n values. */
void kernels_taylor_rule_adjoint(int isa, long n, long d, const double *z, const double *c, int diagonal,
                                 const double *s1, const double *s2, const double *s3, const double *u, double scale,
                                 double *o, double *work);

/* The same for a unit of the first layer (J_i = w_i, T = 0, Q = q, (CJ)_i = cw_i); jj: n values of work. */
void kernels_taylor_first_rule_adjoint(int isa, long n, long d, const double *w, const double *cw, double q,
                                       const double *s1, const double *s2, const double *s3, const double *u,
                                       double scale, double *o, double *jj);

/* The forward tangent of the activation and kernels_taylor_rule: from the tangents t of the
 * pre-activation blocks, those of the post-activation blocks
 *   v̇' = σ' v̇,  J̇'_i = σ'' v̇ J_i + σ' J̇_i,  Ṫ' = σ'' v̇ T + σ' Ṫ + σ''' v̇ Q + σ'' Q̇,  Q̇ = 2 Σ_i (CJ)_i J̇_i.
 * work: (d + 2)·n values. */
void kernels_taylor_rule_tangent(int isa, long n, long d, const double *z, const double *c, int diagonal,
                                 const double *s1, const double *s2, const double *s3, const double *t, double *o,
                                 double *work);

/* The same for a unit of the first layer: weights w, their tangents dw, Q = q, Q̇ = qdot, value tangents
 * vdot; writes the J and T blocks of o (its value block σ' vdot is left to the caller). */
void kernels_taylor_first_rule_tangent(int isa, long n, long d, const double *w, const double *dw, double q,
                                       double qdot, const double *s1, const double *s2, const double *s3,
                                       const double *vdot, double *o);

/* J v from the adjoints kept by a reverse pass seeded with the Jacobian seeds (out[k] += for
 * sample k < n; a layer's columns [value | J_1 … J_d | T] of n samples each, ld = s·n):
 * kernels_adjoint_products, for a layer with output change P = Ẇ Z over its input columns Z and
 * bias change ḃ on the value block: out[k] += Σ_j Σ_c g[j·ld + c·n + k] (P + ḃ_j [c = 0])[j·ld + c·n + k];
 * kernels_first_adjoint_products, for the first layer (input columns x_k, e_i, 0; x: d rows of n):
 * out[k] += Σ_j g[j·ld + k] (ḃ_j + Σ_i ẇ_ji x_ik) + Σ_j Σ_i g[j·ld + (1 + i)·n + k] ẇ_ji (the second
 * sum when s > 1), with ẇ = w (h × d) and ḃ = b. */
void kernels_adjoint_products(int isa, long h, long n, long s, const double *g, const double *p, const double *bias,
                              double *out);
void kernels_first_adjoint_products(int isa, long h, long n, long d, long s, const double *g, const double *w,
                                    const double *b, const double *x, double *out);

/* tanh and kernels_taylor_rule in one pass: out's value block is tanh(v + b) for z's value block v
 * (z is not changed); with taylor = 0 only that block exists. z, c, diagonal, out as in
 * kernels_taylor_rule. With `slopes` (else NULL), σ', σ'' and σ''' at v + b are written to
 * slopes[k], slopes[slope_stride + k] and slopes[2 slope_stride + k] for the reverse and tangent
 * passes; a pass that needs only its output keeps none. */
void kernels_tanh_taylor_rule(int isa, long n, long d, const double *z, double b, const double *c, int diagonal,
                              int taylor, double *out, double *slopes, long slope_stride);

/* The same for a unit of the first layer: with v = b + w·x_k (x: d rows of n coordinates) and q,
 * out = [tanh(v) | σ' w_1 … σ' w_d | σ'' q], or [tanh(v)] alone when taylor = 0; slopes as above. */
void kernels_tanh_first_rule(int isa, long n, long d, const double *x, double b, const double *w, double q, int taylor,
                             double *out, double *slopes, long slope_stride);

/* The last hidden layer (tanh) fused with a linear layer of one output, for a pass that needs
 * only its output: per sample, u = Σ_j a_j t_j, ∂_i u = Σ_j a_j σ'_j J_ij, 𝒟_C u = Σ_j a_j (σ'_j T_j
 * + σ''_j Q_j), with t_j = tanh(z_j + b_j) and Q_j = Σ_il C_il J_ij J_lj; the output layer's bias
 * is left to the caller. Over m samples whose blocks (value, J_1 … J_d, T) lie `stride` apart,
 * in `out` (the same blocks, overwritten) and in the input. With gradient = 0 the ∂_i u blocks are
 * left zero (for operators that do not read ∇u).
 *
 * First hidden layer: z_j = W₀[j] x (x: d rows of coordinates, `stride` apart), J_ij = w[j·d + i],
 * T_j = 0, Q_j = q[j]. With taylor = 0 only u is computed (q is not read). */
void kernels_tanh_first_output(int isa, long h, long m, long d, const double *x, long stride, const double *b,
                               const double *w, const double *q, const double *a, int taylor, int gradient,
                               double *out);

/* Any other hidden layer: unit j's blocks (pre-activation without bias) start at z + j·ld; c and
 * diagonal as in kernels_taylor_rule. With taylor = 0 only the value block exists and u is computed
 * (for a value pass also after the first hidden layer). */
void kernels_tanh_output(int isa, long h, long m, long d, const double *z, long stride, long ld, const double *b,
                         const double *c, int diagonal, int taylor, int gradient, const double *a, double *out);

/* Parameter-vector passes of the optimizers (D values), each one sweep with eight partial sums.
 *
 * *index = the index of the first non-finite x[k], or −1: blocks of 256 are summed as x − x (0 for
 * finite values, NaN for ±inf and NaN), and only a block whose sum is NaN is searched. */
void kernels_first_nonfinite(int isa, long n, const double *x, long *index);

/* The inner products of the quadratic model over a, b, g: out = [a·a, g·a, a·b, b·b, g·b]. */
void kernels_model_products(int isa, long n, const double *g, const double *a, const double *b, double *out);

/* Applies an update: c = α a + μ b, theta0 = θ, θ ← θ + c. out = [Σ c², Σ (θ − θ) over the new θ]:
 * the second is 0 exactly when every new θ is finite (NaN otherwise). */
void kernels_apply_update(int isa, long n, double alpha, const double *a, double mu, const double *b, double *theta,
                          double *theta0, double *c, double *out);

#endif
