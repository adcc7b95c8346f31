/// A growable contiguous Double buffer that is reused across calls:
/// `reserve` only allocates when a larger size is asked for.
final class Buffer {
    private(set) var pointer: UnsafeMutablePointer<Double>
    private(set) var capacity: Int

    init(_ count: Int = 0) {
        capacity = max(count, 1)
        pointer = Buffer.allocate(capacity)
        pointer.initialize(repeating: 0, count: capacity)
    }

    /// Storage aligned to 64 bytes (a cache line, one AVX-512 vector).
    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Double> {
        UnsafeMutableRawPointer.allocate(byteCount: count * 8, alignment: 64).bindMemory(to: Double.self, capacity: count)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    /// Makes room for `count` values; the contents are undefined after growing.
    @discardableResult
    func reserve(_ count: Int) -> UnsafeMutablePointer<Double> {
        if count > capacity {
            UnsafeMutableRawPointer(pointer).deallocate()
            capacity = count
            pointer = Buffer.allocate(count)
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
