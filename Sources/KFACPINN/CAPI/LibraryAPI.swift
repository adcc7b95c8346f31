/// Version string "MAJOR.MINOR.PATCH" (static storage; never free it).
@c public func kfp_version_string() -> UnsafePointer<CChar> {
    cString(Version.string)
}

/// Version as MAJOR*10000 + MINOR*100 + PATCH.
@c public func kfp_version_number() -> Int32 {
    Int32(Version.number)
}

/// Static text describing `status` (never NULL, never free it); unknown values give "unknown status".
/// @param status a value returned by a kfp_* function.
@c public func kfp_status_string(_ status: Int32) -> UnsafePointer<CChar> {
    guard let s = kfp_status(rawValue: status) else { return cString("unknown status") }
    return cString(s.text)
}

/// Detail of the calling thread's most recent kfp_* call: the error message if it failed,
/// "" if it succeeded. Valid until the next kfp_* call on the same thread; never free it.
@c public func kfp_last_error() -> UnsafePointer<CChar> {
    lastError()
}

/// Sets the number of threads (process-wide; affects every handle): the library's own parallel
/// work, and OpenBLAS's thread count outside the library's computations (inside them OpenBLAS
/// runs on the calling thread and the library splits the work itself). The library's T - 1
/// worker threads start on first use and, after a job, wait (spinning) up to 1 ms for the next
/// one before they sleep; workers beyond the number of processors sleep at once.
/// @param num_threads 1 to 1024.
/// @return KFP_OK, or KFP_ERROR_INVALID_ARGUMENT if num_threads is outside 1..1024.
@c public func kfp_set_num_threads(_ num_threads: Int32) -> kfp_status {
    entryPoint("kfp_set_num_threads") {
        guard num_threads >= 1, num_threads <= 1024 else {
            throw KFPError.invalidArgument("num_threads must be between 1 and 1024, got \(num_threads)")
        }
        BLAS.numThreads = Int(num_threads)
    }
}

/// Number of threads set by kfp_set_num_threads (process-wide; at first OpenBLAS's own count).
@c public func kfp_get_num_threads() -> Int32 {
    Int32(BLAS.numThreads)
}
