/// Divergence detection and rollback, the same for every optimizer.
///
/// Step k starts at θ_k and evaluates L(θ_k) on its batch. The step before (k − 1, which produced
/// θ_k) led the run astray when L(θ_k) is not finite or exceeds `factor` times the best loss
/// min_{j<k} L(θ_j) of the earlier steps' starts, while the parameters θ_{k−1} before it do not
/// (on the same batch: a batch on which θ_{k−1} fails as well is at fault itself). Then the network
/// and the optimizer are put back as they were before step k − 1 and step k throws `.diverged`.
/// A step that meets a non-finite gradient, direction or update from a finite L(θ_k) throws
/// `.diverged` too, with everything as before it. To undo a step, the guard keeps θ and the
/// optimizer's state (as its checkpoint section STAT holds it) from before the last two steps, in
/// two buffers reused across steps: the state is copied once per step, and held twice more.
final class DivergenceGuard {
    static let defaultFactor = 1e12

    /// Losses above `factor` × the best loss so far count as divergence (> 1; ∞: only non-finite
    /// losses do).
    private(set) var factor = defaultFactor
    /// min_j L(θ_j) over the starts of the steps taken (∞ before the first).
    private(set) var bestLoss = Double.infinity
    /// θ and the optimizer's state before the last step taken (valid when `canUndo`), and before
    /// the step being taken.
    private var beforeLast = SectionWriter(), beforeCurrent = SectionWriter()
    private var canUndo = false
    /// Steps taken before the last `.diverged` that it undid (0 or 1).
    private(set) var stepsUndone = 0
    /// Steps completed: the draw of a randomized operator's probes (`PINNLoss.probeDraw`), so
    /// that each step sees fresh probes and a resumed run the same ones.
    private(set) var draws: UInt64 = 0

    func setFactor(_ value: Double) throws {
        guard value > 1 else { throw KFPError.invalidArgument("divergence_factor must be greater than 1, got \(value)") }
        factor = value
    }

    /// Whether `loss` is within the factor of the best loss so far (false when not finite).
    private func acceptable(_ loss: Double) -> Bool { loss.isFinite && loss <= factor * bestLoss }

    /// One step of `optimizer` on `batch`, checked as above.
    func step(_ optimizer: some GuardedOptimizer, _ batch: Batch) throws -> StepStatistics {
        stepsUndone = 0
        optimizer.loss.probeDraw = draws
        beforeCurrent.reset()
        try snapshot(optimizer, into: &beforeCurrent)
        let stats: StepStatistics
        do {
            stats = try optimizer.unguardedStep(batch)
        } catch KFPError.nonFinite(let message) {
            // The state is as before this step (the step's contract).
            if let start = try? optimizer.loss.loss(batch).total, start.isFinite {
                throw KFPError.diverged("\(message): training diverged; \(Self.asBefore)")
            }
            guard lastStepStartFits(optimizer, batch) else { throw KFPError.nonFinite(message) }
            try undoLastStep(optimizer)
            throw KFPError.diverged("\(message): training diverged; \(Self.backBefore)")
        }
        if !acceptable(stats.loss) {
            let what = "the loss \(stats.loss) at the start of the step exceeds \(factor) (divergence_factor) times the best loss so far, \(bestLoss)"
            if lastStepStartFits(optimizer, batch) {
                try undoLastStep(optimizer)
                throw KFPError.diverged("\(what); \(Self.backBefore)")
            }
            if !canUndo {
                try restore(optimizer, from: beforeCurrent)
                throw KFPError.diverged("\(what); \(Self.asBefore)")
            }
            // The parameters before the last step do no better on this batch: the batch, not
            // the run, is extreme, and the step stands.
        } else {
            bestLoss = min(bestLoss, stats.loss)
        }
        swap(&beforeLast, &beforeCurrent)
        canUndo = true
        draws &+= 1
        return stats
    }

    private static let asBefore = "the network and the optimizer are as before this step"
    private static let backBefore = "the network and the optimizer are back before the previous step"

    /// Whether the parameters before the last step taken (if kept) have an acceptable loss on
    /// `batch` (evaluated without changing the network).
    private func lastStepStartFits(_ optimizer: some GuardedOptimizer, _ batch: Batch) -> Bool {
        guard canUndo else { return false }
        var s = SectionReader(tag: "rollback", bytes: beforeLast.bytes[...])
        guard let theta = try? s.doubles(count: optimizer.loss.parameterCount, "the parameters"),
              let loss = try? theta.withUnsafeBufferPointer({ try optimizer.loss.forward(batch, at: $0.baseAddress!) })
        else { return false }
        return acceptable(loss.total)
    }

    /// Puts the network and the optimizer back before the last step taken (kept: `canUndo`).
    private func undoLastStep(_ optimizer: some GuardedOptimizer) throws {
        try restore(optimizer, from: beforeLast)
        canUndo = false
        stepsUndone = 1
    }

    private func snapshot(_ optimizer: some GuardedOptimizer, into s: inout SectionWriter) throws {
        try optimizer.loss.parameters.withUnsafeBufferPointer { try s.doubles($0) }
        try optimizer.writeState(&s)
    }

    /// Reads a snapshot into `optimizer` and returns its θ (on a throw the optimizer is unchanged).
    private static func readSnapshot(_ optimizer: some GuardedOptimizer, _ s: inout SectionReader) throws -> [Double] {
        let theta = try s.doubles(count: optimizer.loss.parameterCount, "the parameters")
        try optimizer.readState(&s)
        return theta
    }

    private func restore(_ optimizer: some GuardedOptimizer, from snapshot: SectionWriter) throws {
        var s = SectionReader(tag: "rollback", bytes: snapshot.bytes[...])
        optimizer.loss.assignParameters(try DivergenceGuard.readSnapshot(optimizer, &s))
    }
}

extension DivergenceGuard {
    /// The best loss, the state before the last step and the probe draws (section DIVG of
    /// optimizer checkpoints).
    func writeCheckpoint(_ s: inout SectionWriter) throws {
        s.double(bestLoss)
        s.bool(canUndo)
        try s.block(canUndo ? beforeLast : SectionWriter())
        s.uint64(draws)
    }

    /// Replaces the guard's state by the one in `s`; the kept state is checked by reading it into
    /// `scratch`, a new optimizer of the same kind bound to the same network. On a throw nothing
    /// has changed.
    func readCheckpoint(_ s: inout SectionReader, checkingWith scratch: some GuardedOptimizer) throws {
        let best = try s.double()
        guard best >= 0 else { throw s.corrupt("the best loss is \(best)") }
        let undo = try s.bool("the rollback flag")
        var kept = try s.block("rollback state")
        // A section without the draw count reads as 0 draws.
        let drawn = s.remaining > 0 ? try s.uint64() : 0
        try s.finish()
        var copy = SectionWriter()
        if undo {
            _ = try DivergenceGuard.readSnapshot(scratch, &kept)
            try copy.append(contentsOf: kept.payload)
        } else {
            try kept.finish()
        }
        (bestLoss, canUndo, beforeLast, draws) = (best, undo, copy, drawn)
    }

    /// Takes over another guard's best loss, kept state and draws (not its factor, an option).
    func adoptState(of other: DivergenceGuard) {
        (bestLoss, canUndo, beforeLast, draws) = (other.bestLoss, other.canUndo, other.beforeLast, other.draws)
    }
}

/// An optimizer whose `step` is its `unguardedStep` checked for divergence by `divergence`.
protocol GuardedOptimizer: CheckpointableOptimizer {
    var divergence: DivergenceGuard { get }
    /// One step; on a thrown error the parameters and the optimizer state are unchanged.
    func unguardedStep(_ batch: Batch) throws -> StepStatistics
}

extension GuardedOptimizer {
    /// One step on `batch`; on divergence (see `DivergenceGuard`) the network and the optimizer
    /// are put back before the previous step and the step throws `.diverged`. On any other
    /// error they are unchanged.
    public func step(_ batch: Batch) throws -> StepStatistics { try divergence.step(self, batch) }
}
