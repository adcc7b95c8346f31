import CKernels
import Glibc

/// Elementwise activation σ with the derivatives Taylor mode needs.
public enum Activation: String, CaseIterable, Sendable {
    case tanh, sigmoid, sin, softplus

    /// Parses a name ("tanh", "sigmoid", "sin", "softplus").
    public init(name: String) throws {
        guard let a = Activation(rawValue: name) else {
            let known = Activation.allCases.map(\.rawValue).joined(separator: ", ")
            throw KFPError.invalidArgument("unknown activation '\(name)' (known: \(known))")
        }
        self = a
    }

    /// (σ, σ', σ'', σ''') at v.
    @inline(__always)
    func derivatives(_ v: Double) -> (Double, Double, Double, Double) {
        switch self {
        case .tanh:
            // t = tanh v, σ' = 1 − t², σ'' = −2tσ', σ''' = −2σ'(1 − 3t²)
            let t = Glibc.tanh(v)
            let d1 = 1 - t * t
            return (t, d1, -2 * t * d1, -2 * d1 * (1 - 3 * t * t))
        case .sigmoid:
            // s = 1/(1+e^−v), σ' = s(1−s), σ'' = σ'(1−2s), σ''' = σ'(1 − 6s + 6s²)
            let s = 1 / (1 + Glibc.exp(-v))
            let d1 = s * (1 - s)
            return (s, d1, d1 * (1 - 2 * s), d1 * (1 - 6 * s + 6 * s * s))
        case .sin:
            let s = Glibc.sin(v), c = Glibc.cos(v)
            return (s, c, -s, -c)
        case .softplus:
            // softplus v = log(1 + e^v), σ' = sigmoid v, σ'' = s(1−s), σ''' = s(1−s)(1−2s)
            let s = 1 / (1 + Glibc.exp(-v))
            let value = v > 30 ? v : Glibc.log1p(Glibc.exp(v))
            let d2 = s * (1 - s)
            return (value, s, d2, d2 * (1 - 2 * s))
        }
    }
}

extension Activation {
    /// σ and its first three derivatives on n values v: σ into `value`, σ', σ'', σ''' into d1, d2, d3.
    /// tanh by the vectorised kernel of CKernels; the others by `derivatives` in a contiguous loop.
    func evaluate(_ n: Int, _ v: UnsafePointer<Double>, value: UnsafeMutablePointer<Double>,
                  d1: UnsafeMutablePointer<Double>, d2: UnsafeMutablePointer<Double>, d3: UnsafeMutablePointer<Double>) {
        switch self {
        case .tanh:
            kernels_tanh_rules(kernelISA, n, v, value, d1, d2, d3)
        default:
            for k in 0..<n {
                let (s0, s1, s2, s3) = derivatives(v[k])
                value[k] = s0
                d1[k] = s1
                d2[k] = s2
                d3[k] = s3
            }
        }
    }
}
