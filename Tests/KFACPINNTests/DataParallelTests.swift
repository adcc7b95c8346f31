import Testing
@testable import KFACPINN

// Data-parallel training (docs/math.md §13) without MPI: communicators that stand in for other
// processes. Two processes holding the same points ("mirrored": each sum doubles) take the steps
// of one process holding those points twice; a failure on another process ends the call with
// its kind. The two-process runs over MPI are in bindings/python/tests/mpi.

/// Two processes with identical values: a sum doubles each value (exactly), a gather repeats.
final class MirroredCommunicator: Communicator {
    var rank: Int { 0 }
    var size: Int { 2 }
    private(set) var sums = 0

    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {
        sums += 1
        for i in 0..<count { buffer[i] *= 2 }
    }

    func allgather(_ send: UnsafePointer<Double>, count: Int, into receive: UnsafeMutablePointer<Double>) throws {
        receive.update(from: send, count: count)
        (receive + count).update(from: send, count: count)
    }
}

/// A second process that fails with error kind `kind` in the first sum, or that gathers
/// `otherHash` instead of this process's values.
final class FailingPeerCommunicator: Communicator {
    let kind: Int?, otherHash: [Double]?
    private(set) var sums = 0
    init(kind: Int? = nil, otherHash: [Double]? = nil) { (self.kind, self.otherHash) = (kind, otherHash) }
    var rank: Int { 0 }
    var size: Int { 2 }

    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {
        sums += 1
        if sums == 1, let kind { buffer[kind] += 1 }
    }

    func allgather(_ send: UnsafePointer<Double>, count: Int, into receive: UnsafeMutablePointer<Double>) throws {
        receive.update(from: send, count: count)
        if let otherHash { for i in 0..<count { receive[count + i] = otherHash[i] } } else { (receive + count).update(from: send, count: count) }
    }
}

/// The batch with every term's points twice (the points of two mirrored processes in one).
func doubled(_ batch: Batch) throws -> Batch {
    try Batch(dimension: batch.dimension, terms: batch.terms.map {
        LossTerm(kind: $0.kind, points: $0.points + $0.points, targets: $0.targets + $0.targets, weight: $0.weight)
    })
}

struct DataParallelTests {
    @Test("upper triangles pack and unpack to the full symmetric matrix")
    func upperTriangleRoundTrip() {
        let n = 5
        var m = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { m[i * n + j] = Double(10 * i + j); m[j * n + i] = m[i * n + j] } }
        var packed = [Double](repeating: 0, count: UpperTriangle.count(n)), back = [Double](repeating: -1, count: n * n)
        UpperTriangle.pack(m, n, into: &packed)
        UpperTriangle.unpack(packed, n, into: &back)
        #expect(packed.count == 15 && packed[5] == 11 && back == m, "packed \(packed), back \(back)")
    }

    @Test("two mirrored processes take the steps of one process with the points twice, for every optimizer")
    func mirroredProcessesStepLikeOne() throws {
        let steps = 3
        let problem = try Problem(name: "heat1d")
        let batch = try problem.sample(interior: 40, boundary: 20, seed: 4)
        // The Gauss-Newton solves amplify the sums' rounding by the condition number of G + λI:
        // their damping keeps it moderate.
        let makers: [(String, (MLP, Operator) throws -> any Optimizer)] = [
            ("SGD", { var o = SGD.Options(); o.learningRate = 0.01; o.momentum = 0.9; return try SGD(network: $0, operator: $1, options: o) }),
            ("Adam", { var o = Adam.Options(); o.learningRate = 0.01; return try Adam(network: $0, operator: $1, options: o) }),
            ("L-BFGS", { try LBFGS(network: $0, operator: $1) }),
            ("KFAC", { var o = KFAC.Options(); o.damping = 1e-6; o.ema = 0.9; return try KFAC(network: $0, operator: $1, options: o) }),
            ("KFAC*", { var o = KFAC.Options(); o.damping = 1e-6; o.ema = 0.9; o.stepRule = .automatic
                return try KFAC(network: $0, operator: $1, options: o) }),
            ("ENGD", { var o = ENGD.Options(); o.damping = 0.1; return try ENGD(network: $0, operator: $1, options: o) }),
            ("ENGD per layer", { var o = ENGD.Options(); o.damping = 0.1; o.variant = .perLayer; o.ema = 0.5
                return try ENGD(network: $0, operator: $1, options: o) }),
            ("ENGD diagonal", { var o = ENGD.Options(); o.damping = 1e-3; o.variant = .diagonal; return try ENGD(network: $0, operator: $1, options: o) }),
            // Few CG iterations: Hessian-free picks among its CG iterates by their loss, and once CG
            // has converged, nearly equal ones are told apart by rounding.
            ("Hessian-free", { var o = HessianFree.Options(); o.damping = 100; o.maxCGIterations = 3
                return try HessianFree(network: $0, operator: $1, options: o) }),
        ]
        for (name, make) in makers {
            func run(_ communicator: (any Communicator)?, _ batch: Batch) throws -> [Double] {
                let net = try MLP(widths: [2, 12, 12, 1], activation: .tanh, seed: 7)
                let optimizer = try make(net, problem.op)
                try optimizer.setCommunicator(communicator)
                for _ in 0..<steps { _ = try optimizer.step(batch) }
                return net.parameters
            }
            let mirrored = MirroredCommunicator()
            let theta = try run(mirrored, batch), reference = try run(nil, try doubled(batch))
            let scale = reference.map(abs).max()!, difference = zip(theta, reference).map { abs($0 - $1) }.max()! / scale
            #expect(difference <= 1e-12 && mirrored.sums > 0, "\(name): max |θ_2 − θ_1| / max |θ_1| = \(difference), \(mirrored.sums) sums")
        }
    }

    @Test("a failure of another process ends the sum with its kind before the values are summed")
    func failuresAreAgreed() throws {
        let peer = FailingPeerCommunicator(kind: KFPError.outOfMemory("").kind)
        var kind = -1
        do { _ = try ProcessGroup(peer).sum(count: 2) { [1, 2] } } catch let error as KFPError { kind = error.kind }
        #expect(kind == KFPError.outOfMemory("").kind && peer.sums == 1, "kind \(kind), \(peer.sums) sums")
        // This process's own failure is rethrown as it was, and the values are not summed.
        let mirrored = MirroredCommunicator()
        #expect(throws: KFPError.nonFinite("mine")) { _ = try ProcessGroup(mirrored).sum(count: 1) { throw KFPError.nonFinite("mine") } }
        #expect(mirrored.sums == 1, "\(mirrored.sums) sums: the values were summed after a failure")
    }

    @Test("setCommunicator refuses other setups on other processes and the sample-space methods")
    func setupChecks() throws {
        let net = try MLP(widths: [2, 8, 1], activation: .tanh, seed: 1), op = try Operator(name: "poisson", dimension: 2, secondOrder: .laplacian)
        let kfac = try KFAC(network: net, operator: op)
        #expect(throws: KFPError.self) { try kfac.setCommunicator(FailingPeerCommunicator(otherHash: [1, 2])) }
        #expect(kfac.communicator == nil)
        try kfac.setCommunicator(FailingPeerCommunicator())
        #expect(kfac.communicator?.size == 2)
        for optimizer in [try SPRING(network: net, operator: op) as any Optimizer,
                          try ENGD(network: net, operator: op, options: { var o = ENGD.Options(); o.variant = .woodbury; return o }())] {
            do {
                try optimizer.setCommunicator(MirroredCommunicator())
                Issue.record("\(type(of: optimizer)) accepted a data-parallel run")
            } catch KFPError.invalidArgument(let message) {
                #expect(message.contains("kernel"), "\(message)")
            }
        }
    }
}
