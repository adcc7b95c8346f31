/* OpenBLAS (CBLAS + thread control) and LAPACKE, as one system module. */
#include <cblas.h>
#include <lapacke.h>
#include <cpuid.h>

/* OpenBLAS's dynamic-architecture start-up (exported by libopenblas, not declared in cblas.h):
 * it picks the kernel table from OPENBLAS_CORETYPE, else from the CPU model. */
extern void *gotoblas;
void gotoblas_dynamic_init(void);

/* Runs OpenBLAS's kernel choice again (reads OPENBLAS_CORETYPE). Call only while no BLAS call runs. */
static inline void kfp_openblas_choose_kernel_again(void) {
    gotoblas = 0;
    gotoblas_dynamic_init();
}

/* The OS saves the register state whose XCR0 bits are all in `mask` (requires OSXSAVE). */
static inline int kfp_os_saves(unsigned mask) {
    unsigned a, b, c, d, lo, hi;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & mask) == mask;
}

/* AVX-512 F, DQ, CD, BW and VL, usable (the instruction set of OpenBLAS's SkylakeX kernels). */
static inline int kfp_cpu_has_avx512(void) {
    unsigned a, b, c, d;
    const unsigned need = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);
    if (!kfp_os_saves(0xE6) || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & need) == need;
}

/* AVX2 and FMA, usable (the instruction set of OpenBLAS's Haswell kernels). */
static inline int kfp_cpu_has_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!kfp_os_saves(0x6) || !__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 12)) || !(c & (1u << 28))) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & (1u << 5)) != 0;
}
