/// Sobol' points in the open unit cube (0, 1)^d.
///
/// Construction: coordinate 1 is the van der Corput sequence; coordinate j ≥ 2 uses the
/// (j − 1)-th primitive polynomial over GF(2) in order of increasing degree (enumerated by
/// testing that x has order 2^s − 1 modulo the polynomial), with initial direction numbers
/// m_1 = … = m_s = 1 and the recurrence
///     m_k = 2a_1 m_{k−1} ⊕ 4a_2 m_{k−2} ⊕ … ⊕ 2^{s−1}a_{s−1} m_{k−s+1} ⊕ 2^s m_{k−s} ⊕ m_{k−s}.
/// Point i (i = 0, 1, …) is the XOR of the direction numbers selected by the Gray code of i, XORed
/// with a random digital shift drawn from the seed (which keeps the net structure: every block
/// of 2^k points starting at a multiple of 2^k is stratified), and mapped to (v + ½)/2^52, so no
/// coordinate is 0 or 1 (point 0 is not the corner).
struct SobolSequence {
    static let bits = 52
    /// Direction numbers V_k (k = 1 … bits) per coordinate, as integers scaled by 2^bits.
    let directions: [[UInt64]]
    let shift: [UInt64]

    init(dimension d: Int, seed: UInt64) {
        let polynomials = SobolSequence.primitivePolynomials(count: max(d - 1, 0))
        var directions: [[UInt64]] = [(1...SobolSequence.bits).map { UInt64(1) << UInt64(SobolSequence.bits - $0) }]
        for p in polynomials {
            let s = 63 - p.leadingZeroBitCount   // degree
            var m = [UInt64](repeating: 1, count: SobolSequence.bits + 1)   // m[1 … s] = 1
            if s < SobolSequence.bits {
                for k in (s + 1)...SobolSequence.bits {
                    var value = m[k - s] ^ (m[k - s] << UInt64(s))
                    for i in 1..<s where (p >> UInt64(s - i)) & 1 == 1 {
                        value ^= m[k - i] << UInt64(i)
                    }
                    m[k] = value
                }
            }
            directions.append((1...SobolSequence.bits).map { m[$0] << UInt64(SobolSequence.bits - $0) })
        }
        self.directions = Array(directions.prefix(d))
        var rng = RandomSource(seed: seed)
        shift = (0..<d).map { _ in rng.next() >> UInt64(64 - SobolSequence.bits) }
    }

    /// Point i ≥ 0 into `out` (d values in (0, 1)).
    func point(_ i: Int, into out: inout [Double]) {
        let gray = UInt64(i) ^ (UInt64(i) >> 1)
        for (j, v) in directions.enumerated() {
            var x = shift[j], g = gray, k = 0
            while g != 0 {
                if g & 1 == 1 { x ^= v[k] }
                g >>= 1
                k += 1
            }
            out[j] = (Double(x) + 0.5) * 0x1.0p-52
        }
    }

    /// The first `count` primitive polynomials over GF(2) of degree ≥ 1 in order of degree (bit
    /// s = x^s), each with its constant term.
    static func primitivePolynomials(count: Int) -> [UInt64] {
        var found: [UInt64] = []
        var degree = 1
        while found.count < count {
            let order = (UInt64(1) << UInt64(degree)) - 1
            let primes = primeFactors(order)
            var p = (UInt64(1) << UInt64(degree)) | 1
            while p < UInt64(1) << UInt64(degree + 1) && found.count < count {
                // x has order exactly 2^s − 1 modulo p ⇔ p is primitive.
                if powerOfX(order, modulo: p, degree: degree) == 1
                    && primes.allSatisfy({ powerOfX(order / $0, modulo: p, degree: degree) != 1 }) {
                    found.append(p)
                }
                p += 2
            }
            degree += 1
        }
        return found
    }

    /// x^e mod p in GF(2)[x] (p of degree `degree`).
    static func powerOfX(_ e: UInt64, modulo p: UInt64, degree: Int) -> UInt64 {
        func multiply(_ a: UInt64, _ b: UInt64) -> UInt64 {
            var result: UInt64 = 0, a = a, b = b
            while b != 0 {
                if b & 1 == 1 { result ^= a }
                b >>= 1
                a <<= 1
                if (a >> UInt64(degree)) & 1 == 1 { a ^= p }
            }
            return result
        }
        var result: UInt64 = 1, base: UInt64 = degree == 1 ? (2 ^ p) & 1 : 2, e = e
        while e != 0 {
            if e & 1 == 1 { result = multiply(result, base) }
            base = multiply(base, base)
            e >>= 1
        }
        return result
    }

    static func primeFactors(_ n: UInt64) -> [UInt64] {
        var factors: [UInt64] = [], n = n, q: UInt64 = 2
        while q * q <= n {
            if n % q == 0 {
                factors.append(q)
                while n % q == 0 { n /= q }
            }
            q += 1
        }
        if n > 1 { factors.append(n) }
        return factors
    }
}
