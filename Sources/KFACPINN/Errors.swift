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

    public var description: String {
        switch self {
        case .nullPointer(let m), .invalidArgument(let m), .dimensionMismatch(let m),
             .nonFinite(let m), .wrongHandle(let m), .numerical(let m):
            return m
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

/// a·b, or `.invalidArgument` if the product overflows.
func checkedProduct(_ a: Int, _ b: Int, _ what: String) throws -> Int {
    let (p, overflow) = a.multipliedReportingOverflow(by: b)
    if overflow || a < 0 || b < 0 { throw KFPError.invalidArgument("\(what) is too large (\(a) × \(b))") }
    return p
}
