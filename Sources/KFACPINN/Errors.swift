import Glibc

/// Errors of the Swift API. The C layer maps each case to a `kfp_status`
/// and keeps the message as `kfp_last_error()`.
public enum KFPError: Error, Equatable, CustomStringConvertible {
    /// A required pointer or handle was NULL.
    case nullPointer(String)
    /// A value is out of its allowed range (sizes, names, options).
    case invalidArgument(String)
    /// Shapes that must agree do not (points vs. network, batch vs. operator).
    case dimensionMismatch(String)
    /// An input or a computed quantity is NaN or infinite.
    case nonFinite(String)
    /// A handle of one kind was passed where another was expected.
    case wrongHandle(String)
    /// A numerical routine failed (e.g. LAPACK reported an error).
    case numerical(String)
    /// Memory for a computation sized by the input could not be allocated.
    case outOfMemory(String)
    /// A checkpoint is truncated, damaged or not what was asked for.
    case corrupt(String)
    /// Training diverged: the loss became non-finite or grew beyond the allowed factor.
    case diverged(String)
    /// A file could not be opened, read or written.
    case io(String)
    /// The processes of a data-parallel run could not exchange their sums, or disagree on their
    /// setup (the communicator's function failed, or another rank's network, operator or options
    /// differ).
    case communication(String)

    public var description: String {
        switch self {
        case .nullPointer(let m), .invalidArgument(let m), .dimensionMismatch(let m),
             .nonFinite(let m), .wrongHandle(let m), .numerical(let m), .outOfMemory(let m),
             .corrupt(let m), .diverged(let m), .io(let m), .communication(let m):
            return m
        }
    }

    /// The cases in order (the C status of case k is k + 1), for agreeing on a failure across
    /// processes (`ProcessGroup`).
    static let kindCount = 11

    /// The index of this case in that order.
    var kind: Int {
        switch self {
        case .nullPointer: return 0
        case .invalidArgument: return 1
        case .dimensionMismatch: return 2
        case .nonFinite: return 3
        case .wrongHandle: return 4
        case .numerical: return 5
        case .outOfMemory: return 6
        case .corrupt: return 7
        case .diverged: return 8
        case .io: return 9
        case .communication: return 10
        }
    }

    /// The case of index `kind` with `message`.
    static func of(kind: Int, _ message: String) -> KFPError {
        switch kind {
        case 0: return .nullPointer(message)
        case 1: return .invalidArgument(message)
        case 2: return .dimensionMismatch(message)
        case 3: return .nonFinite(message)
        case 4: return .wrongHandle(message)
        case 5: return .numerical(message)
        case 6: return .outOfMemory(message)
        case 7: return .corrupt(message)
        case 8: return .diverged(message)
        case 9: return .io(message)
        default: return .communication(message)
        }
    }
}

/// Throws `.nonFinite` naming `what` if any entry of `values` is NaN or ±∞.
@inlinable
func requireFinite(_ values: UnsafeBufferPointer<Double>, _ what: @autoclosure () -> String) throws {
    for (i, v) in values.enumerated() where !v.isFinite {
        throw KFPError.nonFinite("\(what()) has a non-finite value (\(v)) at index \(i)")
    }
}

func requireFinite(_ values: [Double], _ what: @autoclosure () -> String) throws {
    try values.withUnsafeBufferPointer { try requireFinite($0, what()) }
}

/// Memory checks: every allocation sized by user input asks first whether its bytes can be had,
/// so a request too large for the machine (or for `ulimit -v`) is an error, not an abort.
enum Memory {
    /// Bytes of `count` float64 values, or `.outOfMemory` if the count overflows.
    static func bytes(doubles count: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (b, overflow) = count.multipliedReportingOverflow(by: 8)
        guard !overflow, count >= 0 else { throw KFPError.outOfMemory("\(what()) needs \(count) values, more than memory can address") }
        return b
    }

    /// Throws `.outOfMemory` naming `what` and the bytes unless `bytes` can be allocated now:
    /// a trial mapping of that size (as malloc makes for large blocks; subject to the address
    /// space limit and the kernel's overcommit check), unmapped at once. An mmap, unlike a
    /// malloc/free pair, cannot be optimised away.
    static func require(bytes: Int, _ what: @autoclosure () -> String) throws {
        guard bytes > 1 << 20 else { return }   // small requests are not worth a trial
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else {
            throw KFPError.outOfMemory("\(what()) needs about \(bytes) bytes (\(formatted(bytes))), which could not be allocated")
        }
        munmap(p, bytes)
    }

    /// `require` for `count` float64 values.
    static func require(doubles count: Int, _ what: @autoclosure () -> String) throws {
        try require(bytes: bytes(doubles: count, what()), what())
    }

    /// Product of counts, or `.outOfMemory` on overflow.
    static func product(_ factors: Int..., what: @autoclosure () -> String) throws -> Int {
        var p = 1
        for f in factors {
            let (q, overflow) = p.multipliedReportingOverflow(by: f)
            guard !overflow, f >= 0 else { throw KFPError.outOfMemory("\(what()) needs more memory than can be addressed") }
            p = q
        }
        return p
    }

    /// Sum of counts, or `.outOfMemory` on overflow.
    static func total(_ counts: [Int], _ what: @autoclosure () -> String) throws -> Int {
        var sum = 0
        for c in counts {
            let (s, overflow) = sum.addingReportingOverflow(c)
            guard !overflow, c >= 0 else { throw KFPError.outOfMemory("\(what()) needs more memory than can be addressed") }
            sum = s
        }
        return sum
    }

    /// `count` zeros, after `require`.
    static func zeros(_ count: Int, _ what: @autoclosure () -> String) throws -> [Double] {
        try require(doubles: count, what())
        return [Double](repeating: 0, count: count)
    }

    /// "1.5 GiB" style size.
    static func formatted(_ bytes: Int) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var v = Double(bytes), u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(bytes) bytes" : "\((v * 10).rounded() / 10) \(units[u])"
    }
}

/// a·b, or `.invalidArgument` if the product overflows.
func checkedProduct(_ a: Int, _ b: Int, _ what: String) throws -> Int {
    let (p, overflow) = a.multipliedReportingOverflow(by: b)
    if overflow || a < 0 || b < 0 { throw KFPError.invalidArgument("\(what) is too large (\(a) × \(b))") }
    return p
}
