import Testing
@testable import KFACPINN

/// θ and the optimizer's state as its checkpoint section STAT holds them.
private func state(_ o: any GuardedOptimizer) throws -> (theta: [UInt64], stat: [UInt8]) {
    var s = SectionWriter()
    try o.writeState(&s)
    return (o.network.parameters.map(\.bitPattern), s.bytes)
}

/// Each optimizer kind with default options (ENGD's Gramian kept as a moving average, so the
/// rollback has a Gramian to restore).
private func everyOptimizer(_ net: MLP, _ op: Operator) throws -> [any GuardedOptimizer] {
    let engd = try ENGD(network: net, operator: op)
    try engd.setOption(.ema, .double(0.5))
    let kfacStar = try KFAC(network: net, operator: op)
    try kfacStar.setOption(.stepRule, .string("auto"))
    return [try SGD(network: net, operator: op), try Adam(network: net, operator: op), try LBFGS(network: net, operator: op),
            try KFAC(network: net, operator: op), kfacStar, engd, try HessianFree(network: net, operator: op),
            try SPRING(network: net, operator: op)]
}

@Suite("divergence detection")
struct DivergenceTests {
    let op = try! Operator.poisson(dimension: 2)
    let batch = try! smallBatch(2, interior: 40, boundary: 12, seed: 5)

    @Test("a step starting above divergence_factor × the best loss puts every optimizer back before the previous step")
    func rollbackRestoresTheStateBeforeThePreviousStep() throws {
        for o in try everyOptimizer(try MLP(widths: [2, 6, 5, 1], seed: 2), op) {
            let name = type(of: o).checkpointName
            try o.setOption(.divergenceFactor, .double(100))
            for _ in 0..<2 { _ = try o.step(batch) }
            let before = try state(o)
            _ = try o.step(batch)
            // Parameters far from the last ones: the next step starts at a loss beyond the factor.
            o.network.assignParameters(o.network.parameters.map { $0 * 1e3 })
            do {
                _ = try o.step(batch)
                Issue.record("\(name): a loss beyond the factor was accepted")
            } catch let KFPError.diverged(message) {
                #expect(message.contains("divergence_factor") && message.contains("back before the previous step"), "\(name): \(message)")
            }
            let after = try state(o)
            #expect(after.theta == before.theta, "\(name): the parameters are not those before the previous step")
            #expect(after.stat == before.stat, "\(name): the optimizer's state is not that before the previous step")
            // Training goes on from there.
            #expect(try o.step(batch).loss.isFinite, "\(name)")
        }
    }

    @Test("KFAC with a fixed step of 10 and no damping reports divergence, not a loss of 1e171, and keeps finite parameters")
    func kfacWithAHugeStepDiverges() throws {
        let net = try MLP(widths: [2, 16, 16, 1], seed: 1)
        let kfac = try KFAC(network: net, operator: op)
        try kfac.setOption(.stepRule, .string("fixed"))
        try kfac.setOption(.learningRate, .double(10))
        try kfac.setOption(.damping, .double(1e-14))
        var losses: [Double] = []
        var diverged = false
        for _ in 0..<50 {
            do { losses.append(try kfac.step(batch).loss) } catch KFPError.diverged { diverged = true; break }
        }
        #expect(diverged, "losses: \(losses)")
        #expect(losses.allSatisfy { $0 <= 1e12 * losses.min()! }, "losses: \(losses)")
        #expect(net.parameters.allSatisfy { $0.isFinite })
        // Back before the last step taken, at the parameters where it started (losses[i] is the
        // loss at the start of step i).
        let loss = try PINNLoss(network: net, operator: op).loss(batch).total
        #expect(loss == losses.last!, "loss \(loss), losses \(losses)")
    }

    @Test("a non-finite loss is divergence: SGD with a learning rate of 1e308 is back at its start")
    func nonFiniteLossIsDivergence() throws {
        let net = try MLP(widths: [2, 5, 1], seed: 1)
        let sgd = try SGD(network: net, operator: op)
        let theta = net.parameters
        try sgd.setOption(.learningRate, .double(1e308))
        do {
            for _ in 0..<2 { _ = try sgd.step(batch) }
            Issue.record("a step from parameters of about 1e307 was accepted")
        } catch let KFPError.diverged(message) {
            #expect(message.contains("not finite") && message.contains("back before the previous step"), "\(message)")
        }
        #expect(net.parameters == theta && sgd.stepCount == 0)
    }

    @Test("a batch on which the parameters before the last step fail as well is the batch's fault, not divergence")
    func extremeBatchesAreNotDivergence() throws {
        let net = try MLP(widths: [2, 5, 1], seed: 1)
        let kfac = try KFAC(network: net, operator: op)
        for _ in 0..<2 { _ = try kfac.step(batch) }
        func scaled(_ v: Double) throws -> Batch {
            try Batch(dimension: 2, interiorPoints: randomPoints(40, 2, seed: 5), source: Array(repeating: v, count: 40),
                      boundaryPoints: randomPoints(12, 2, seed: 12), boundaryValues: Array(repeating: 0, count: 12))
        }
        // A loss that overflows at any parameters: .nonFinite (the input), nothing changed.
        let before = try state(kfac)
        do {
            _ = try kfac.step(try scaled(1e200))
            Issue.record("an overflowing loss was accepted")
        } catch let KFPError.nonFinite(message) {
            #expect(message.contains("the loss is not finite"), "\(message)")
        }
        let after = try state(kfac)
        #expect(after.theta == before.theta && after.stat == before.stat)
        // A finite loss far beyond the factor at the last parameters too: the step stands.
        let stats = try kfac.step(try scaled(1e10))
        #expect(stats.loss > 1e12 * kfac.divergence.bestLoss && kfac.stepCount == 3, "\(stats.loss)")
    }

    @Test("divergence_factor is an option of every optimizer: default 1e12, > 1, infinity allowed, saved in checkpoints")
    func divergenceFactorOption() throws {
        for o in try everyOptimizer(try MLP(widths: [2, 3, 1], seed: 2), op) {
            let name = type(of: o).checkpointName
            #expect(o.optionKeys.contains(.divergenceFactor), "\(name)")
            #expect(try o.option(.divergenceFactor) == .double(1e12) && o.defaultOption(.divergenceFactor) == .double(1e12), "\(name)")
            for bad in [1.0, 0.5, -1, .nan] {
                #expect(throws: KFPError.self, "\(name): \(bad)") { try o.setOption(.divergenceFactor, .double(bad)) }
            }
            #expect(try o.option(.divergenceFactor) == .double(1e12), "\(name): a refused value changed the option")
            try o.setOption(.divergenceFactor, .double(.infinity))
            let loaded = try loadOptimizer(checkpoint: try o.checkpoint(), network: o.network, operator: op)
            #expect(try loaded.option(.divergenceFactor) == .double(.infinity), "\(name)")
        }
    }

    @Test("the rollback state survives a checkpoint: a divergence right after loading undoes the same step")
    func rollbackAfterLoadingMatches() throws {
        for o in try everyOptimizer(try MLP(widths: [2, 6, 1], seed: 4), op) {
            let name = type(of: o).checkpointName
            try o.setOption(.divergenceFactor, .double(100))
            for _ in 0..<2 { _ = try o.step(batch) }
            let before = try state(o)
            _ = try o.step(batch)
            let net = try MLP.fromCheckpoint(try o.network.checkpoint())
            let loaded = try loadOptimizer(checkpoint: try o.checkpoint(), network: net, operator: op) as! any GuardedOptimizer
            for x in [o, loaded] {
                x.network.assignParameters(x.network.parameters.map { $0 * 1e3 })
                #expect(throws: KFPError.self, "\(name)") { _ = try x.step(batch) }
            }
            #expect(try state(loaded).theta == before.theta && state(loaded).stat == before.stat, "\(name): the loaded optimizer did not undo the same step")
            #expect(try state(o).stat == state(loaded).stat, "\(name)")
        }
    }

    @Test("a checkpoint whose kept rollback state does not fit the optimizer is corrupt and changes nothing")
    func hostileRollbackStateIsCorrupt() throws {
        let net = try MLP(widths: [2, 4, 1], seed: 1)
        let sgd = try SGD(network: net, operator: op)
        _ = try sgd.step(batch)
        let saved = try state(sgd)
        for kept in [[1.0], [Double](repeating: 0, count: net.numParameters)] {
            var archive = ArchiveWriter(kind: .optimizer)
            try writeOptimizer(sgd, into: &archive)
            var file = ArchiveWriter(kind: .optimizer)
            let reader = try ArchiveReader(try archive.bytes(), expecting: .optimizer)
            for tag in ["OPTM", "STAT"] { try file.section(tag) { try $0.append(contentsOf: try reader.section(tag).payload) } }
            // The kept state: parameters of a wrong count, or parameters without the SGD state.
            try file.section("DIVG") { s in
                s.double(1); s.bool(true)
                var block = SectionWriter()
                try block.doubles(kept)
                try s.block(block)
            }
            do {
                try restoreOptimizer(sgd, from: try ArchiveReader(try file.bytes(), expecting: .optimizer))
                Issue.record("a kept state of \(kept.count) values was accepted")
            } catch let KFPError.corrupt(message) {
                #expect(message.contains("DIVG"), "\(message)")
            }
            #expect(try state(sgd).stat == saved.stat && sgd.divergence.bestLoss.isFinite)
        }
    }
}
