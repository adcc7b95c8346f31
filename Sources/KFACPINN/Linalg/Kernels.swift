import CKernels

/// The instruction set of the elementwise kernels (CKernels), the best this CPU supports.
let kernelISA: Int32 = kernels_best_isa()

/// The index of the first non-finite of `count` values, or nil (one vectorised sweep).
func firstNonFinite(_ p: UnsafePointer<Double>, _ count: Int) -> Int? {
    var index = -1
    kernels_first_nonfinite(kernelISA, count, p, &index)
    return index < 0 ? nil : index
}
