/// Data-parallel training (docs/math.md §13): the optimizer of each process works on its own
/// points, and every sum over points it uses — loss terms, gradient, Kronecker factors before the
/// moving average (upper triangles), line-search trial losses, KFAC*'s quadratic-model entries,
/// ENGD's Gramians, Hessian-free's GGN-vector products — is summed over the processes, so that
/// all of them take the identical step.

/// What an optimizer needs before its first data-parallel step.
protocol DataParallelOptimizer: GuardedOptimizer {
    /// Throws if the optimizer cannot take data-parallel steps in its present configuration;
    /// else reserves the work space of its sums over processes.
    func prepareForProcesses() throws
}

extension SGD: DataParallelOptimizer { func prepareForProcesses() throws {} }
extension Adam: DataParallelOptimizer { func prepareForProcesses() throws {} }
extension LBFGS: DataParallelOptimizer { func prepareForProcesses() throws {} }
extension HessianFree: DataParallelOptimizer { func prepareForProcesses() throws {} }

extension KFAC: DataParallelOptimizer {
    func prepareForProcesses() throws { try factorSums.reserve(packedFactorCount) }
}

extension ENGD: DataParallelOptimizer {
    func prepareForProcesses() throws {
        if options.variant.isSampleSpace { throw ENGD.sampleSpaceNotDistributed("ENGD (\(options.variant.rawValue))") }
    }
}

extension SPRING: DataParallelOptimizer {
    func prepareForProcesses() throws { throw ENGD.sampleSpaceNotDistributed("SPRING") }
}

extension Optimizer {
    /// Makes this optimizer one process of a data-parallel run over `communicator`'s processes
    /// (nil, or a communicator of one process: on its own again). Every process must call this
    /// with optimizers of the same kind, options and state, on networks of the same shape and
    /// parameters and the same operator: the call compares a hash of all of them across the
    /// processes and throws `.communication` on every process if any differs, and throws on
    /// every process if one of them cannot prepare (memory). SPRING and the sample-space ENGD
    /// variants refuse (their kernel couples all points pairwise). On a throw nothing changes.
    public func setCommunicator(_ communicator: (any Communicator)?) throws {
        guard let optimizer = self as? any DataParallelOptimizer else {
            throw KFPError.invalidArgument("\(type(of: self)) cannot train data-parallel")
        }
        let group = ProcessGroup(communicator)
        if group.isDistributed {
            var hash: UInt64 = 0
            try group.agree {
                try optimizer.prepareForProcesses()
                hash = try optimizer.setupHash()
            }
            try requireSame(hash, on: group, "networks (shape, activation, parameters), operators or optimizers (kind, options, state)")
        }
        optimizer.loss.group = group
    }

    /// The communicator set by `setCommunicator` (nil: a single process).
    public var communicator: (any Communicator)? { (self as? any CheckpointableOptimizer)?.loss.group.channel }
}

extension DataParallelOptimizer {
    /// FNV-1a hash of the optimizer's checkpoint (kind, options, operator, state) and network
    /// (shape and parameters).
    func setupHash() throws -> UInt64 {
        var archive = ArchiveWriter(kind: .training)
        try network.writeNetwork(into: &archive)
        try writeOptimizer(self, into: &archive)
        return fnv1a(try archive.bytes())
    }
}

/// FNV-1a, 64 bits.
func fnv1a<S: Sequence>(_ bytes: S, _ start: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 where S.Element == UInt8 {
    var h = start
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

/// Throws `.communication` on every process of `group` unless all hold the same `hash` of
/// `what`.
func requireSame(_ hash: UInt64, on group: ProcessGroup, _ what: String) throws {
    // 32-bit halves: exact in doubles.
    let all = try group.gather([Double(hash >> 32), Double(hash & 0xFFFF_FFFF)])
    let differing = (0..<group.size).filter { all[2 * $0] != all[0] || all[2 * $0 + 1] != all[1] }
    guard differing.isEmpty else {
        throw KFPError.communication("the processes' \(what) differ: rank(s) \(differing.map(String.init).joined(separator: ", ")) from rank 0")
    }
}
