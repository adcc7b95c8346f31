/// A dense curvature block over a contiguous range of the parameters (p of them): the Gramian
/// G = J̃ᵀJ̃ of the scaled Jacobian's columns in the range (upper triangle, p × p), optionally as a
/// moving average G ← β G + (1 − β) G_batch, and the damped solve x = (G + λI)⁺ g. It serves
/// parameter groups small enough for p² memory: ENGD's full and per-layer Gramians.
///
/// A step works on a candidate Gramian (`update`, `multiplyInverse`) that `commit` makes
/// current; a step that fails before `commit` leaves the block as it was.
final class DenseBlock {
    let range: Range<Int>
    private var gramian = Buffer(), candidate = Buffer()
    private var hasGramian = false
    private let solution = Buffer(), work = Buffer()
    /// The batch Gramian's upper triangle, for its sum over processes.
    private let packed = Buffer()

    init(range: Range<Int>) { self.range = range }

    /// Candidate G = β G_current + (1 − β) J̃[:, range]ᵀ J̃[:, range] for `rows` Jacobian rows
    /// (row-major, leading dimension `ld`); β = 0 before the first commit. In a data-parallel run
    /// (`group` over several processes) J̃ᵀJ̃ is summed over the processes' rows (upper triangles).
    func update(jacobian J: UnsafePointer<Double>, rows: Int, ld: Int, ema: Double, group: ProcessGroup) throws {
        let p = range.count, beta = hasGramian ? ema : 0
        guard group.isDistributed else {
            let G = try candidate.reserve(p * p)
            if beta > 0 { G.update(from: gramian.pointer, count: p * p) }
            BLAS.syrk(trans: true, n: p, k: rows, alpha: 1 - beta, a: J + range.lowerBound, lda: ld, beta: beta, c: G, ldc: p)
            return
        }
        // Work space that any process may fail to get: agreed on before the sum.
        var G = candidate.pointer, sums = packed.pointer
        try group.agree {
            G = try candidate.reserve(p * p)
            sums = try packed.reserve(UpperTriangle.count(p))
        }
        try group.sum(sums, count: UpperTriangle.count(p)) {
            if rows == 0 { G.update(repeating: 0, count: p * p) }
            BLAS.syrk(trans: true, n: p, k: rows, a: J + range.lowerBound, lda: ld, c: G, ldc: p)
            UpperTriangle.pack(G, p, into: sums)
        }
        UpperTriangle.unpack(sums, p, into: G)
        if beta > 0 { for i in 0..<(p * p) { G[i] = beta * gramian.pointer[i] + (1 - beta) * G[i] } }
    }

    /// direction[range] = scale · (G + λI)⁺ gradient[range] with the candidate Gramian (both
    /// vectors in θ's layout).
    func multiplyInverse(_ gradient: UnsafePointer<Double>, into direction: UnsafeMutablePointer<Double>,
                         damping: Double, scale: Double) throws {
        let p = range.count, x = try solution.reserve(p)
        try dampedSymmetricSolve(candidate.pointer, n: p, damping: damping, gradient + range.lowerBound, into: x, work: work)
        for i in 0..<p { direction[range.lowerBound + i] = scale * x[i] }
    }

    /// Makes the candidate Gramian current; it is kept as the moving average (and is state) only
    /// when `keep` (ema > 0).
    func commit(keep: Bool) {
        swap(&gramian, &candidate)
        hasGramian = keep
    }

    /// Forgets the moving average (the next update starts afresh).
    func reset() { hasGramian = false }
}

extension DenseBlock {
    /// Whether a moving average exists, and the Gramian (p × p) if so.
    func writeState(_ s: inout SectionWriter) throws {
        let p = range.count
        s.bool(hasGramian)
        try s.doubles(UnsafeBufferPointer(start: gramian.pointer, count: hasGramian ? p * p : 0))
    }

    /// A state read from `s`, for `restore`.
    func readState(_ s: inout SectionReader) throws -> (has: Bool, gramian: Buffer) {
        let p = range.count
        let has = try s.bool("the Gramian flag")
        let values = try s.doubles(count: has ? p * p : 0, "the Gramian of parameters \(range)")
        let buffer = try Buffer(values.count)
        if has { values.withUnsafeBufferPointer { buffer.pointer.update(from: $0.baseAddress!, count: values.count) } }
        return (has, buffer)
    }

    func restore(_ read: (has: Bool, gramian: Buffer)) {
        (hasGramian, gramian) = (read.has, read.gramian)
    }
}
