/* Elementwise kernels compiled for several x86-64 instruction sets and chosen at run time.
 * The Swift code of the library is compiled for baseline x86-64 (2-wide SSE2, no FMA);
 * the activation rules of the Taylor pass are its hottest loops and run about 3× (AVX2+FMA)
 * to 5× (AVX-512) faster when built for those. */
#ifndef KERNELS_H
#define KERNELS_H

/* Instruction sets of the kernels. */
enum kernels_isa { KERNELS_ISA_BASELINE = 0, KERNELS_ISA_AVX2 = 1, KERNELS_ISA_AVX512 = 2 };

/* The best instruction set this CPU and OS support (AVX2 counts with FMA only). */
int kernels_best_isa(void);

/* tanh and its first three derivatives on n values v[k]:
 *   t = tanh v → value[k],  σ' = 1 − t² → d1[k],  σ'' = −2tσ' → d2[k],  σ''' = −2σ'(1 − 3t²) → d3[k].
 * tanh v = e/(e + 2), e = expm1(2v), with v clamped to [−20, 20] (tanh is ±1 there to double
 * precision) and expm1(y) = 2^k (p + 1) − 1, k = round(y/ln 2), r = y − k ln 2, p = expm1(r)
 * by its Taylor polynomial of degree 13; relative error below 1e-15, NaN stays NaN.
 * `isa` must be supported (kernels_best_isa() ≥ isa); the arrays must not overlap. */
void kernels_tanh_rules(int isa, long n, const double *v, double *value, double *d1, double *d2, double *d3);

#endif
