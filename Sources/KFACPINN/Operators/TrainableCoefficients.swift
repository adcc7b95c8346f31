import Glibc

/// A scalar coefficient of an operator that can be trained next to θ (docs/math.md §10). The
/// interior residual is linear in each of them:
///
///     r = κ 𝒟_C u + βᵀ∇u + c u + N(u, ∇u) + κ₀ − s f
///
/// so ∂r/∂κ = 𝒟_C u, ∂r/∂β_i = ∂_i u, ∂r/∂c = u, ∂r/∂κ₀ = 1 and ∂r/∂s = −f, read off the Taylor
/// pass's output columns, and ∂r/∂C_ij = κ 𝒟_{E_ij} u (E_ij = e_i e_jᵀ + e_j e_iᵀ, or e_i e_iᵀ),
/// from a Taylor pass of its own per entry. Condition and observation residuals do not depend on
/// them.
public enum CoefficientSlot: Hashable, Sendable {
    /// κ, the factor of the second-order term ("kappa": the heat equation's diffusivity, the
    /// factor of −κΔu).
    case secondOrderScale
    /// c₀ of the reaction coefficient c(x) = c₀ + c₁ᵀx ("c").
    case reaction
    /// Entry i of β₀ in the drift β(x) = β₀ + Bx ("beta_i", i from 0).
    case drift(Int)
    /// κ₀, the constant added to the residual ("constant").
    case constant
    /// s, the factor of the source f ("source_scale").
    case sourceScale
    /// C_ij = C_ji, i ≤ j, an entry of the symmetric C ("C_i_j", indices from 0).
    case secondOrderEntry(Int, Int)

    public var name: String {
        switch self {
        case .secondOrderScale: return "kappa"
        case .reaction: return "c"
        case .drift(let i): return "beta_\(i)"
        case .constant: return "constant"
        case .sourceScale: return "source_scale"
        case .secondOrderEntry(let i, let j): return "C_\(i)_\(j)"
        }
    }

    /// The names an operator of dimension `d` knows, for messages.
    static func knownNames(dimension d: Int) -> String {
        let drift = d == 1 ? "beta_0" : d == 2 ? "beta_0, beta_1" : "beta_0 … beta_\(d - 1)"
        return "kappa, c, \(drift), constant, source_scale, C_i_j (0 ≤ i, j < \(d))"
    }

    /// The slot named `name` in an operator of dimension `d`, or `.invalidArgument` listing the
    /// known names.
    static func named(_ name: String, dimension d: Int) throws -> CoefficientSlot {
        switch name {
        case "kappa": return .secondOrderScale
        case "c": return .reaction
        case "constant": return .constant
        case "source_scale": return .sourceScale
        default:
            if name.hasPrefix("beta_"), let i = Int(name.dropFirst(5)), String(i) == name.dropFirst(5), i >= 0 {
                guard i < d else {
                    throw KFPError.invalidArgument("the operator has no coefficient '\(name)': its dimension is \(d), its drift entries are beta_0 to beta_\(d - 1)")
                }
                return .drift(i)
            }
            let parts = name.split(separator: "_", omittingEmptySubsequences: false)
            if parts.count == 3, parts[0] == "C", let i = Int(parts[1]), let j = Int(parts[2]),
               String(i) == parts[1], String(j) == parts[2], i >= 0, j >= 0 {
                guard i < d, j < d else {
                    throw KFPError.invalidArgument("the operator has no coefficient '\(name)': its dimension is \(d), its second-order entries are C_0_0 to C_\(d - 1)_\(d - 1)")
                }
                return .secondOrderEntry(min(i, j), max(i, j))
            }
            throw KFPError.invalidArgument("unknown coefficient '\(name)'; the coefficients are \(knownNames(dimension: d))")
        }
    }
}

/// The trainable coefficients of an operator and their current values. Copies of an operator
/// share them, and the optimizers bound to the operator train them in place (as they train the
/// network's parameters), so the caller's operator holds the trained values.
public final class TrainableCoefficients: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let slot: CoefficientSlot
        /// Trained through its logarithm: the value stays positive.
        public let positive: Bool
        /// Held at its value: not among the trained variables (the residual reads it as a trained
        /// one's, and it is reported with them).
        public let frozen: Bool
        public var name: String { slot.name }
    }

    public private(set) var entries: [Entry] = []
    /// The trained variables κ̂_k: the value κ_k, or log κ_k for a positive coefficient.
    var raw: [Double] = []
    /// Losses built on these coefficients: while there are any, the set is fixed.
    private var bindings = 0
    private let lock = Lock()

    init() {}

    public var count: Int { entries.count }

    /// The indices of the entries that are trained (not frozen), in order.
    public var trainedIndices: [Int] { entries.indices.filter { !entries[$0].frozen } }

    /// κ_k from its trained variable.
    static func value(_ raw: Double, positive: Bool) -> Double { positive ? exp(raw) : raw }

    /// The current value of each trainable coefficient, in order.
    public var values: [Double] { zip(entries, raw).map { TrainableCoefficients.value($1, positive: $0.positive) } }

    func index(of slot: CoefficientSlot) -> Int? { entries.firstIndex { $0.slot == slot } }

    /// Adds `slot` (or replaces its start) with value `initial`; refused while a loss is bound.
    func set(_ slot: CoefficientSlot, initial: Double, positive: Bool, frozen: Bool) throws {
        let raw = positive ? log(initial) : initial
        try lock.withLock {
            guard bindings == 0 else {
                throw KFPError.invalidArgument("the operator's trainable coefficients are in use by an optimizer or a loss: mark coefficients trainable before creating one")
            }
            if let k = entries.firstIndex(where: { $0.slot == slot }) {
                entries[k] = Entry(slot: slot, positive: positive, frozen: frozen)
                self.raw[k] = raw
            } else {
                entries.append(Entry(slot: slot, positive: positive, frozen: frozen))
                self.raw.append(raw)
            }
        }
    }

    /// Sets the values (`values`: one per entry, each finite and positive where required).
    public func setValues(_ values: [Double]) throws {
        guard values.count == entries.count else {
            throw KFPError.dimensionMismatch("\(values.count) coefficient values for \(entries.count) trainable coefficients")
        }
        for (entry, v) in zip(entries, values) {
            guard v.isFinite else { throw KFPError.nonFinite("coefficient \(entry.name) is \(v)") }
            guard !entry.positive || v > 0 else {
                throw KFPError.invalidArgument("coefficient \(entry.name) is trained as positive, got \(v)")
            }
        }
        raw = zip(entries, values).map { $0.positive ? log($1) : $1 }
    }

    /// Whether a loss (of an optimizer) is built on these coefficients.
    var isBound: Bool { lock.withLock { bindings > 0 } }

    func bind() { lock.withLock { bindings += 1 } }
    func unbind() { lock.withLock { bindings -= 1 } }
}

/// The coefficient values one residual evaluation uses: the operator's own, with the trainable
/// ones at their trained variables κ̂.
struct ResolvedCoefficients {
    /// C of the Taylor pass: κ̄ C with κ̄ = κ, or 1 when κ = 0 (so T_pass/κ̄ = 𝒟_C u always).
    let pass: Coefficients
    let passScale: Double
    /// ∂r/∂T_pass = κ/κ̄ (1, or 0 when κ = 0).
    let secondOrderSeed: Double
    /// κ (∂r/∂C_ij = κ 𝒟_{E_ij} u).
    let kappa: Double
    let reaction: Double, constant: Double, sourceScale: Double
    let drift: [Double]
    /// Per trained coefficient, dκ_k/dκ̂_k: κ_k for a positive (log) coefficient, else 1.
    let chain: [Double]
}

extension Operator {
    /// Marks coefficient `name` trainable with value `initial` (`positive`: trained through its
    /// logarithm; `frozen`: held at `initial`). Throws for an unknown name (listing the known
    /// ones), a coefficient this operator does not have, a non-finite start, `positive` with a
    /// start ≤ 0, or while an optimizer is bound to the operator; then nothing changes.
    public func setTrainable(_ name: String, initial: Double, positive: Bool = false, frozen: Bool = false) throws {
        let slot = try CoefficientSlot.named(name, dimension: dimension)
        if slot == .secondOrderScale && coefficients.dense.allSatisfy({ $0 == 0 }) {
            throw KFPError.invalidArgument("the operator '\(self.name)' has no second-order term, so no coefficient kappa")
        }
        if case .secondOrderEntry = slot, case .randomized = estimator {
            throw KFPError.invalidArgument("coefficient \(name): trained entries of C need the exact second-order term, and this operator is randomized")
        }
        guard initial.isFinite else { throw KFPError.nonFinite("the initial value of coefficient \(name) is \(initial)") }
        guard !positive || initial > 0 else {
            throw KFPError.invalidArgument("coefficient \(name) is trained as positive, its initial value must be > 0, got \(initial)")
        }
        try trainable.set(slot, initial: initial, positive: positive, frozen: frozen)
    }

    /// The values at trained variables `raw` (one per trained, not frozen, coefficient), or at
    /// the current ones.
    func coefficientValues(raw: UnsafePointer<Double>? = nil) -> ResolvedCoefficients {
        var kappa = secondOrderScale, c = reaction, k0 = constant, s = 1.0, beta = drift
        var chain: [Double] = [], j = 0, entries: [(Int, Int, Double)] = []
        for (k, entry) in trainable.entries.enumerated() {
            var r = trainable.raw[k]
            if !entry.frozen {
                if let raw { r = raw[j] }
                j += 1
            }
            let v = TrainableCoefficients.value(r, positive: entry.positive)
            if !entry.frozen { chain.append(entry.positive ? v : 1) }
            switch entry.slot {
            case .secondOrderScale: kappa = v
            case .reaction: c = v
            case .drift(let i): beta[i] = v
            case .constant: k0 = v
            case .sourceScale: s = v
            case .secondOrderEntry(let a, let b): entries.append((a, b, v))
            }
        }
        let passScale = kappa != 0 ? kappa : 1
        var pass = coefficients
        if !entries.isEmpty {
            pass = baseCoefficients.replacing(entries).scaled(passScale)
        } else if trainable.index(of: .secondOrderScale) != nil {
            pass = baseCoefficients.scaled(passScale)
        }
        return ResolvedCoefficients(pass: pass, passScale: passScale, secondOrderSeed: kappa / passScale, kappa: kappa,
                                    reaction: c, constant: k0, sourceScale: s, drift: beta, chain: chain)
    }

    /// The trained C entries' E_ij, in the order of the trained coefficients.
    var trainedSecondOrderEntries: [Coefficients] {
        trainable.entries.compactMap { entry -> Coefficients? in
            guard !entry.frozen, case .secondOrderEntry(let i, let j) = entry.slot else { return nil }
            var e = [Double](repeating: 0, count: dimension * dimension)
            e[i * dimension + j] = 1
            e[j * dimension + i] = 1
            return i == j ? Coefficients(diagonal: (0..<dimension).map { $0 == i ? 1 : 0 }) : Coefficients(dense: e, dimension: dimension)
        }
    }

    /// ∂r_n/∂κ̂_k of interior residuals (p × N, row k for trained coefficient k) from the output
    /// columns of a Taylor pass (S·N in column blocks), the points' sources f, the resolved values
    /// and, for the trained C entries in order, 𝒟_{E_ij} u (N values each, `entryTerms`).
    func coefficientJacobian(output out: UnsafePointer<Double>, source f: UnsafePointer<Double>, count n: Int,
                             secondOrderBlock: Int, values: ResolvedCoefficients, entryTerms: UnsafePointer<Double>?,
                             into rows: UnsafeMutablePointer<Double>) {
        var entryIndex = 0
        for (k, entry) in trainable.entries.filter({ !$0.frozen }).enumerated() {
            let row = rows + k * n, chain = values.chain[k]
            switch entry.slot {
            case .secondOrderScale:
                let t = out + secondOrderBlock * n, scale = chain / values.passScale
                for i in 0..<n { row[i] = scale * t[i] }
            case .reaction: for i in 0..<n { row[i] = chain * out[i] }
            case .drift(let j):
                let g = out + (1 + j) * n
                for i in 0..<n { row[i] = chain * g[i] }
            case .constant: for i in 0..<n { row[i] = chain }
            case .sourceScale: for i in 0..<n { row[i] = -chain * f[i] }
            case .secondOrderEntry:
                let t = entryTerms! + entryIndex * n, scale = chain * values.kappa
                for i in 0..<n { row[i] = scale * t[i] }
                entryIndex += 1
            }
        }
    }
}
