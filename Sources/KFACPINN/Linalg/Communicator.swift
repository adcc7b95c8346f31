/// The processes of a data-parallel run (docs/math.md §13): each holds its own points, and every
/// sum over points is completed by a sum over the processes, so that all of them take the
/// identical step.
///
/// A conforming type must give every rank the bitwise identical result of each call (a fixed
/// order of the additions), and every rank must make the same calls in the same order.
public protocol Communicator: AnyObject {
    /// This process, 0 ≤ rank < size.
    var rank: Int { get }
    /// The number of processes (≥ 1).
    var size: Int { get }
    /// buffer[0..<count] ← its sum over all ranks.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws
    /// receive[r·count ..< (r+1)·count] ← rank r's send[0..<count], on every rank.
    func allgather(_ send: UnsafePointer<Double>, count: Int, into receive: UnsafeMutablePointer<Double>) throws
}

/// The run's processes as the library uses them: sums over ranks that carry each rank's local
/// failure, so that a failure anywhere ends the same call on every rank with the same error
/// kind, and no rank waits for one that has given up.
///
/// `sum(_:count:after:)` runs the local work, then sums one flag per error kind over the ranks
/// (KFPError.kindCount values); only if no rank failed does it sum the values. A rank that
/// failed rethrows its own error, the others an error of the same kind naming the rank count.
/// Without a communicator (one process) it only runs the local work.
final class ProcessGroup {
    /// The processes' communicator (nil: one process).
    let channel: (any Communicator)?

    init(_ channel: (any Communicator)? = nil) { self.channel = channel }

    var rank: Int { channel?.rank ?? 0 }
    var size: Int { channel?.size ?? 1 }
    /// Whether sums go over more than one process.
    var isDistributed: Bool { size > 1 }

    /// Runs `local`, then (when distributed) sums `buffer[0..<count]` over the ranks; see above.
    /// The buffer must not be allocated inside `local` for the first time on some ranks only.
    func sum(_ buffer: UnsafeMutablePointer<Double>, count: Int, after local: () throws -> Void) throws {
        var failure: (any Error)? = nil
        do { try local() } catch { failure = error }
        guard let channel, channel.size > 1 else {
            if let failure { throw failure }
            return
        }
        try agree(channel, failure)
        if count > 0 { try call(channel, "a sum of \(count) values") { try $0.allreduceSum(buffer, count: count) } }
    }

    /// The sum over the ranks of the `count` values `local` returns (a few; zeros from a rank
    /// whose `local` failed).
    func sum(count: Int, _ local: () throws -> [Double]) throws -> [Double] {
        var values = [Double](repeating: 0, count: count)
        try values.withUnsafeMutableBufferPointer { v in
            try sum(v.baseAddress!, count: count) {
                let computed = try local()
                precondition(computed.count == count, "a sum over ranks of \(count) values got \(computed.count)")
                v.baseAddress!.update(from: computed, count: count)
            }
        }
        return values
    }

    /// Runs `local` and agrees on its failure with the other ranks, without sums.
    func agree(after local: () throws -> Void) throws {
        try withUnsafeTemporaryAllocation(of: Double.self, capacity: 1) { try sum($0.baseAddress!, count: 0, after: local) }
    }

    /// Every rank's `values` (the same count on each), rank after rank.
    func gather(_ values: [Double]) throws -> [Double] {
        guard let channel, channel.size > 1 else { return values }
        var all = [Double](repeating: 0, count: values.count * channel.size)
        try values.withUnsafeBufferPointer { send in
            try all.withUnsafeMutableBufferPointer { receive in
                try call(channel, "a gather of \(values.count) values per rank") {
                    try $0.allgather(send.baseAddress!, count: values.count, into: receive.baseAddress!)
                }
            }
        }
        return all
    }

    /// Sums the ranks' failure flags and throws the failure of the lowest kind that any rank had.
    private func agree(_ communicator: any Communicator, _ failure: (any Error)?) throws {
        // An error that is not a KFPError counts as numerical, as the C layer reports it.
        let local = failure.map { ($0 as? KFPError)?.kind ?? KFPError.numerical("").kind }
        var flags = [Double](repeating: 0, count: KFPError.kindCount)
        if let local { flags[local] = 1 }
        try flags.withUnsafeMutableBufferPointer { f in
            try call(communicator, "the agreement on failures") { try $0.allreduceSum(f.baseAddress!, count: f.count) }
        }
        guard let kind = flags.firstIndex(where: { $0 != 0 }) else { return }
        if let failure, local == kind { throw failure }
        let ranks = Int(flags[kind])
        throw KFPError.of(kind: kind, "\(ranks) of the run's \(communicator.size) processes failed with this kind of error (their message is on those ranks)\(failure.map { "; this rank failed too: \($0)" } ?? "")")
    }

    private func call(_ communicator: any Communicator, _ what: String, _ body: (any Communicator) throws -> Void) throws {
        do { try body(communicator) } catch let error as KFPError {
            throw error
        } catch {
            throw KFPError.communication("\(what) failed: \(error)")
        }
    }
}

/// Packs the upper triangles (j ≥ i) of n × n row-major matrices into consecutive values and back
/// (the symmetric matrices' sums over ranks send n(n+1)/2 values each).
enum UpperTriangle {
    static func count(_ n: Int) -> Int { n * (n + 1) / 2 }

    static func pack(_ m: UnsafePointer<Double>, _ n: Int, into out: UnsafeMutablePointer<Double>) {
        var k = 0
        for i in 0..<n {
            (out + k).update(from: m + i * n + i, count: n - i)
            k += n - i
        }
    }

    /// The full symmetric matrix from packed values.
    static func unpack(_ packed: UnsafePointer<Double>, _ n: Int, into m: UnsafeMutablePointer<Double>) {
        var k = 0
        for i in 0..<n {
            (m + i * n + i).update(from: packed + k, count: n - i)
            for j in (i + 1)..<max(n, i + 1) { m[j * n + i] = packed[k + j - i] }
            k += n - i
        }
    }
}
