/* The instruction set the kernels run with. */
#include "dispatch.h"

int kernels_best_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return KERNELS_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return KERNELS_ISA_AVX2;
#endif
    return KERNELS_ISA_BASELINE;
}
