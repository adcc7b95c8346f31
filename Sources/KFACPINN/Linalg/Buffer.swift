/// A growable contiguous Double buffer that is reused across calls:
/// `reserve` only allocates when a larger size is asked for.
final class Buffer {
    private(set) var pointer: UnsafeMutablePointer<Double>
    private(set) var capacity: Int

    init(_ count: Int = 0) {
        capacity = max(count, 1)
        pointer = .allocate(capacity: capacity)
        pointer.initialize(repeating: 0, count: capacity)
    }

    deinit { pointer.deallocate() }

    /// Makes room for `count` values; the contents are undefined after growing.
    @discardableResult
    func reserve(_ count: Int) -> UnsafeMutablePointer<Double> {
        if count > capacity {
            pointer.deallocate()
            capacity = count
            pointer = .allocate(capacity: count)
            pointer.initialize(repeating: 0, count: count)
        }
        return pointer
    }
}
