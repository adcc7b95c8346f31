import Glibc

/// Status codes of every fallible C entry point. Values are fixed; new codes are only appended.
@c public enum kfp_status: Int32 {
    case KFP_OK = 0
    /// A required pointer or handle argument was NULL.
    case KFP_ERROR_NULL_POINTER = 1
    /// A size, name or option value is out of range.
    case KFP_ERROR_INVALID_ARGUMENT = 2
    /// Shapes that must agree do not.
    case KFP_ERROR_DIMENSION_MISMATCH = 3
    /// An input or computed value is NaN or infinite.
    case KFP_ERROR_NON_FINITE = 4
    /// A handle of the wrong kind was passed.
    case KFP_ERROR_WRONG_HANDLE = 5
    /// A numerical routine failed.
    case KFP_ERROR_NUMERICAL = 6
    /// Memory sized by the input could not be allocated; the message names the bytes.
    case KFP_ERROR_OUT_OF_MEMORY = 7
    /// A checkpoint is truncated, damaged, of another kind or of an incompatible shape.
    case KFP_ERROR_CORRUPT = 8
    /// Training diverged (non-finite loss or growth beyond the allowed factor); the step was undone.
    case KFP_ERROR_DIVERGED = 9
    /// A file could not be opened, read or written.
    case KFP_ERROR_IO = 10
    /// The processes of a data-parallel run could not exchange their sums or disagree on their setup.
    case KFP_ERROR_COMMUNICATION = 11
}

extension kfp_status {
    init(_ error: KFPError) {
        switch error {
        case .nullPointer: self = .KFP_ERROR_NULL_POINTER
        case .invalidArgument: self = .KFP_ERROR_INVALID_ARGUMENT
        case .dimensionMismatch: self = .KFP_ERROR_DIMENSION_MISMATCH
        case .nonFinite: self = .KFP_ERROR_NON_FINITE
        case .wrongHandle: self = .KFP_ERROR_WRONG_HANDLE
        case .numerical: self = .KFP_ERROR_NUMERICAL
        case .outOfMemory: self = .KFP_ERROR_OUT_OF_MEMORY
        case .corrupt: self = .KFP_ERROR_CORRUPT
        case .diverged: self = .KFP_ERROR_DIVERGED
        case .io: self = .KFP_ERROR_IO
        case .communication: self = .KFP_ERROR_COMMUNICATION
        }
    }

    /// Static description of the status.
    var text: StaticString {
        switch self {
        case .KFP_OK: return "ok"
        case .KFP_ERROR_NULL_POINTER: return "null pointer"
        case .KFP_ERROR_INVALID_ARGUMENT: return "invalid argument"
        case .KFP_ERROR_DIMENSION_MISMATCH: return "dimension mismatch"
        case .KFP_ERROR_NON_FINITE: return "non-finite value"
        case .KFP_ERROR_WRONG_HANDLE: return "wrong handle type"
        case .KFP_ERROR_NUMERICAL: return "numerical failure"
        case .KFP_ERROR_OUT_OF_MEMORY: return "out of memory"
        case .KFP_ERROR_CORRUPT: return "corrupt or incompatible checkpoint"
        case .KFP_ERROR_DIVERGED: return "training diverged"
        case .KFP_ERROR_IO: return "file input/output failed"
        case .KFP_ERROR_COMMUNICATION: return "communication between processes failed"
        }
    }
}

/// Pointer to the NUL-terminated bytes of a string literal (static storage).
func cString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// A NUL-terminated copy of `s` that lives as long as the process (one per distinct string; for
/// the few names the library hands out).
func internedCString(_ s: String) -> UnsafePointer<CChar> {
    internedLock.withLock {
        if let p = internedStrings[s] { return p }
        let p = UnsafePointer(strdup(s)!)
        internedStrings[s] = p
        return p
    }
}

nonisolated(unsafe) private var internedStrings: [String: UnsafePointer<CChar>] = [:]
private let internedLock = Lock()

// MARK: - Thread-local last error

/// Key of the calling thread's last error message (a malloc'ed C string, freed with the thread).
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

/// Replaces the calling thread's last error message (nil clears it).
func setLastError(_ message: String?) {
    let old = pthread_getspecific(lastErrorKey)
    if old == nil && message == nil { return }
    free(old)
    pthread_setspecific(lastErrorKey, message.map { UnsafeMutableRawPointer(strdup($0)) } ?? nil)
}

/// The calling thread's last error message, or "".
func lastError() -> UnsafePointer<CChar> {
    if let p = pthread_getspecific(lastErrorKey) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
    return cString("")
}

/// Runs one C entry point: clears the last error, maps a thrown `KFPError` to its status
/// and message. The body does its work only after every check has passed, so a failure
/// leaves the objects as they were.
func entryPoint(_ function: StaticString, _ body: () throws -> Void) -> kfp_status {
    setLastError(nil)
    do {
        try body()
        return .KFP_OK
    } catch let error as KFPError {
        setLastError("\(function): \(error.description)")
        return kfp_status(error)
    } catch {
        setLastError("\(function): \(error)")
        return .KFP_ERROR_NUMERICAL
    }
}

// MARK: - Argument checks

/// The pointee of a required pointer argument.
func required<T>(_ p: UnsafePointer<T>?, _ name: String) throws -> UnsafePointer<T> {
    guard let p else { throw KFPError.nullPointer("\(name) is NULL") }
    return p
}

func required<T>(_ p: UnsafeMutablePointer<T>?, _ name: String) throws -> UnsafeMutablePointer<T> {
    guard let p else { throw KFPError.nullPointer("\(name) is NULL") }
    return p
}

/// A count argument as Int, at least `minimum`.
func countArgument(_ value: Int64, _ name: String, minimum: Int64 = 1) throws -> Int {
    guard value >= minimum else {
        throw KFPError.invalidArgument("\(name) must be at least \(minimum), got \(value)")
    }
    guard value <= Int64(Int32.max) else {
        throw KFPError.invalidArgument("\(name) = \(value) is too large (at most \(Int32.max))")
    }
    return Int(value)
}

/// Copies `count` doubles from a caller array (NULL is allowed only when count is 0).
func array(_ p: UnsafePointer<Double>?, _ count: Int, _ name: String) throws -> [Double] {
    if count == 0 { return [] }
    let p = try required(p, name)
    return Array(UnsafeBufferPointer(start: p, count: count))
}

/// A C string argument, or `fallback` when it is NULL.
func string(_ p: UnsafePointer<CChar>?, default fallback: String) -> String {
    p.map { String(cString: $0) } ?? fallback
}

// MARK: - Handles

/// Handles are retained Swift objects passed as opaque pointers; the dynamic type is
/// checked on every use, so a handle of the wrong kind is an error, not a crash.
func makeHandle(_ object: AnyObject) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

func object<T: AnyObject>(_ handle: OpaquePointer?, _ type: T.Type, _ name: String) throws -> T {
    guard let handle else { throw KFPError.nullPointer("\(name) is NULL") }
    let any = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    guard let typed = any as? T else {
        throw KFPError.wrongHandle("\(name) is not a \(handleName(T.self)) handle")
    }
    return typed
}

func releaseHandle<T: AnyObject>(_ handle: OpaquePointer?, _ type: T.Type) {
    guard let handle else { return }
    let unmanaged = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(handle))
    if unmanaged.takeUnretainedValue() is T { unmanaged.release() }
}

func handleName(_ type: Any.Type) -> String {
    switch type {
    case is MLP.Type: return "kfp_net"
    case is OperatorHandle.Type: return "kfp_operator"
    case is BatchHandle.Type: return "kfp_batch"
    case is OptimizerHandle.Type: return "kfp_optimizer"
    default: return "\(type)"
    }
}

/// Box of an `Operator` value behind a `kfp_operator` handle.
final class OperatorHandle {
    /// Replaced by kfp_operator_set_estimator (only while no optimizer is bound to it).
    var op: Operator
    init(_ op: Operator) { self.op = op }
}

/// Box of a `Batch` value behind a `kfp_batch` handle.
final class BatchHandle {
    var batch: Batch
    init(_ batch: Batch) { self.batch = batch }
}

/// Writes `*out = handle` after a successful construction.
func publish(_ object: AnyObject, to out: UnsafeMutablePointer<OpaquePointer?>) {
    out.pointee = makeHandle(object)
}
