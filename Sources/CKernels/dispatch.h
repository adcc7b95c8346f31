/* Dispatch of the kernels: each kernel body is compiled three times (baseline x86-64,
 * AVX2+FMA, AVX-512) and kernels_<name>(isa, ...) calls the one for `isa`. Every kernel file
 * includes this header and defines its kernels with KERNEL(name, (parameters), (arguments)). */
#ifndef KERNELS_DISPATCH_H
#define KERNELS_DISPATCH_H

#include "kernels.h"

#if defined(__x86_64__)
#define KERNELS_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define KERNELS_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#else
#define KERNELS_TARGET_AVX2
#define KERNELS_TARGET_AVX512
#endif

/* One kernel body, compiled three times (baseline, AVX2+FMA, AVX-512) and dispatched by `isa`. */
#define KERNEL(name, params, args)                                               \
    static void name##_baseline params { name##_body args; }                     \
    KERNELS_TARGET_AVX2 static void name##_avx2 params { name##_body args; }     \
    KERNELS_TARGET_AVX512 static void name##_avx512 params { name##_body args; } \
    void kernels_##name(int isa, KERNEL_UNPAREN params) {                        \
        switch (isa) {                                                           \
        case KERNELS_ISA_AVX512: name##_avx512 args; break;                      \
        case KERNELS_ISA_AVX2: name##_avx2 args; break;                          \
        default: name##_baseline args; break;                                    \
        }                                                                        \
    }
#define KERNEL_UNPAREN(...) __VA_ARGS__
#define ALWAYS_INLINE static inline __attribute__((always_inline))

#endif
