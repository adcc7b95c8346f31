import Glibc

/// The sample-space (Woodbury) solve of Gauss–Newton methods (docs/math.md §7, §11): with the
/// scaled Jacobian J̃ (M × P, row-major) and λ > 0,
///
///     out += J̃ᵀ (J̃J̃ᵀ + λI)⁻¹ b,
///
/// the kernel J̃J̃ᵀ by one SYRK over the rows, one Cholesky (`dampedSymmetricSolve`), and one
/// GEMV; no P × P matrix. Buffers are kept across steps.
final class SampleSpaceSolver {
    private let kernel = Buffer(), solution = Buffer(), work = Buffer()

    func solve(_ J: UnsafePointer<Double>, rows: Int, columns: Int, _ b: UnsafePointer<Double>, damping lambda: Double,
               addingTo out: UnsafeMutablePointer<Double>, scale: Double = 1) throws {
        let K = try kernel.reserve(rows * rows), y = try solution.reserve(rows)
        BLAS.syrk(n: rows, k: columns, a: J, lda: columns, c: K, ldc: rows)
        try dampedSymmetricSolve(K, n: rows, damping: lambda, b, into: y, work: work)
        BLAS.gemv(trans: true, m: rows, n: columns, alpha: scale, a: J, lda: columns, x: y, beta: 1, y: out)
    }

    /// Refuses (`.outOfMemory`) work space of `counts` float64 values in all that would not fit:
    /// more than half the machine's memory, or more than can be allocated now.
    static func requireMemory(_ counts: [Int], what: String) throws {
        let bytes = try Memory.bytes(doubles: Memory.total(counts, what), what)
        let physical = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        guard Double(bytes) < physical / 2 else {
            throw KFPError.outOfMemory("\(what) needs \(bytes) bytes (\(Memory.formatted(bytes))), more than half the machine's memory")
        }
        try Memory.require(bytes: bytes, what)
    }

    /// `requireMemory` for a sample-space step: the Jacobian (M × P) and the kernel with its
    /// factorisation (2 M²).
    static func requireMemory(rows: Int, columns: Int, what: String) throws {
        let description = "\(what) on \(rows) residuals and \(columns) parameters"
        try requireMemory([try Memory.product(rows, columns, what: description), try Memory.product(2, rows, rows, what: description)],
                          what: description)
    }
}
