import Glibc

/// A growable contiguous Double buffer that is reused across calls:
/// `reserve` only allocates when a larger size is asked for, and reports a failed
/// allocation as `.outOfMemory` (the buffer keeps its old storage then).
final class Buffer {
    private(set) var pointer: UnsafeMutablePointer<Double>
    private(set) var capacity: Int

    init() {
        capacity = 1
        pointer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64).bindMemory(to: Double.self, capacity: 8)
        pointer.initialize(repeating: 0, count: capacity)
    }

    /// A buffer of `count` zeros.
    convenience init(_ count: Int) throws {
        self.init()
        try reserve(count)
    }

    deinit { free(pointer) }

    /// Makes room for `count` values; the contents are undefined after growing.
    @discardableResult
    func reserve(_ count: Int) throws -> UnsafeMutablePointer<Double> {
        if count > capacity {
            let bytes = try Memory.bytes(doubles: count, "a work buffer")
            var raw: UnsafeMutableRawPointer? = nil
            // Storage aligned to 64 bytes (a cache line, one AVX-512 vector).
            guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
                throw KFPError.outOfMemory("a work buffer of \(bytes) bytes (\(Memory.formatted(bytes))) could not be allocated")
            }
            free(pointer)
            capacity = count
            pointer = raw.bindMemory(to: Double.self, capacity: count)
            pointer.initialize(repeating: 0, count: count)
        }
        return pointer
    }
}

/// dst ← src, in dst's own storage when the counts agree and dst is uniquely referenced.
func copyValues(_ src: [Double], into dst: inout [Double]) {
    guard src.count == dst.count, !src.isEmpty else { return dst = src }
    dst.withUnsafeMutableBufferPointer { d in
        src.withUnsafeBufferPointer { d.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
    }
}
