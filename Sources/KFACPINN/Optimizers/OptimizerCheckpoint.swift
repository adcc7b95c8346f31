/// Optimizer checkpoints (docs/checkpoint-format.md): section OPTM names the optimizer, the
/// network's shape and the operator it was bound to and holds its options; section STAT holds the
/// optimizer's own state (`CheckpointableOptimizer`), section DIVG its divergence guard's. Loading binds the state to a network and an
/// operator given by the caller after checking that they are the ones it was saved with. Section
/// COEF holds the trained variables of the operator's trainable coefficients.

/// The state an optimizer needs, besides its options and the network's parameters, so that the
/// steps after a load equal, bit for bit, the steps it would have taken without the save.
protocol CheckpointableOptimizer: Optimizer {
    /// Name in checkpoints (and of its kfp_optimizer_create_* function).
    static var checkpointName: String { get }
    var loss: PINNLoss { get }
    func writeState(_ section: inout SectionWriter) throws
    /// Replaces the state by the one in `section`; on a throw nothing has changed.
    func readState(_ section: inout SectionReader) throws
}

extension SGD: CheckpointableOptimizer { static let checkpointName = "sgd" }
extension Adam: CheckpointableOptimizer { static let checkpointName = "adam" }
extension LBFGS: CheckpointableOptimizer { static let checkpointName = "lbfgs" }
extension KFAC: CheckpointableOptimizer { static let checkpointName = "kfac" }
extension ENGD: CheckpointableOptimizer { static let checkpointName = "engd" }
extension HessianFree: CheckpointableOptimizer { static let checkpointName = "hessian_free" }
extension SPRING: CheckpointableOptimizer { static let checkpointName = "spring" }

/// A new optimizer with default options, by checkpoint name.
private let optimizerMakers: [String: @Sendable (MLP, Operator) throws -> any GuardedOptimizer] = [
    SGD.checkpointName: { try SGD(network: $0, operator: $1) }, Adam.checkpointName: { try Adam(network: $0, operator: $1) },
    LBFGS.checkpointName: { try LBFGS(network: $0, operator: $1) }, KFAC.checkpointName: { try KFAC(network: $0, operator: $1) },
    ENGD.checkpointName: { try ENGD(network: $0, operator: $1) }, HessianFree.checkpointName: { try HessianFree(network: $0, operator: $1) },
    SPRING.checkpointName: { try SPRING(network: $0, operator: $1) },
]

extension OptionValue {
    func encode(_ s: inout SectionWriter) {
        switch self {
        case .double(let v): s.int(0); s.double(v)
        case .int(let v): s.int(1); s.int(v)
        case .string(let v): s.int(2); s.string(v)
        }
    }

    static func decode(_ s: inout SectionReader, _ what: String) throws -> OptionValue {
        switch try s.int(in: 0...2, "the type of \(what)") {
        case 0: return .double(try s.double())
        case 1: return .int(try s.int())
        default: return .string(try s.string(maxBytes: 64, what))
        }
    }
}

/// Writes an optimizer's OPTM, STAT and DIVG sections.
func writeOptimizer(_ optimizer: any Optimizer, into archive: inout ArchiveWriter) throws {
    guard let o = optimizer as? any GuardedOptimizer else {
        throw KFPError.invalidArgument("\(type(of: optimizer)) cannot be saved")
    }
    let keys = o.optionKeys
    let values = try keys.map { try o.option($0) }
    try archive.section("OPTM") { s in
        s.string(type(of: o).checkpointName)
        o.network.writeShape(&s)
        try o.loss.op.writeDescription(&s)
        s.int(keys.count)
        for (key, value) in zip(keys, values) {
            s.string(key.rawValue)
            value.encode(&s)
        }
    }
    try archive.section("STAT") { try o.writeState(&$0) }
    try archive.section("DIVG") { try o.divergence.writeCheckpoint(&$0) }
    try archive.section("COEF") { try $0.doubles(o.loss.op.trainable.raw) }
}

/// The optimizer of an archive's OPTM and STAT sections, bound to `network` and `op` (which must
/// have the shape and the operator it was saved with).
func readOptimizer(_ archive: ArchiveReader, network: MLP, operator op: Operator) throws -> any Optimizer {
    var s = try archive.section("OPTM")
    let name = try s.string(maxBytes: 64, "the optimizer's name")
    guard let make = optimizerMakers[name] else { throw KFPError.corrupt("the checkpoint names an unknown optimizer '\(name)'") }
    let optimizer = try make(network, op)
    try restoreOptimizer(optimizer, from: archive)
    return optimizer
}

/// Replaces `optimizer`'s options and state by those of an archive's OPTM, STAT and DIVG sections,
/// which must name the same optimizer, network shape and operator. On a throw nothing has changed.
func restoreOptimizer(_ optimizer: any Optimizer, from archive: ArchiveReader) throws {
    guard let o = optimizer as? any GuardedOptimizer else {
        throw KFPError.invalidArgument("\(type(of: optimizer)) cannot be restored from a checkpoint")
    }
    var s = try archive.section("OPTM")
    let name = try s.string(maxBytes: 64, "the optimizer's name")
    let expected = type(of: o).checkpointName
    guard name == expected else { throw KFPError.corrupt("the checkpoint holds optimizer '\(name)', not '\(expected)'") }
    try o.network.requireShape(&s, "the optimizer's checkpoint")
    try o.loss.op.requireDescription(&s)
    let count = try s.int(in: 0...OptimizerOption.allCases.count, "the number of options")
    var saved: [(OptimizerOption, OptionValue)] = []
    for _ in 0..<count {
        let key = try s.string(maxBytes: 64, "an option's name")
        guard let option = OptimizerOption(rawValue: key), o.optionKeys.contains(option) else {
            throw KFPError.corrupt("the checkpoint has an option '\(key)' that \(name) does not have")
        }
        saved.append((option, try OptionValue.decode(&s, "option \(key)")))
    }
    try s.finish()
    func setSaved(_ target: any Optimizer) throws {
        for (option, value) in saved {
            do { try target.setOption(option, value) } catch let error as KFPError {
                throw KFPError.corrupt("option \(option.rawValue) of the checkpoint: \(error)")
            }
        }
    }
    // The guard's kept state is checked on a new optimizer with the saved options.
    guard let make = optimizerMakers[name] else { throw KFPError.corrupt("the checkpoint names an unknown optimizer '\(name)'") }
    let scratch = try make(o.network, o.loss.op)
    try setSaved(scratch)
    var guardSection = try archive.section("DIVG")
    try scratch.divergence.readCheckpoint(&guardSection, checkingWith: scratch)
    // The trained variables κ̂ of the operator's trainable coefficients (none in older checkpoints).
    var coefficientValues: [Double] = []
    if archive.contains("COEF") || o.loss.op.trainable.count > 0 {
        var c = try archive.section("COEF")
        coefficientValues = try c.doubles(count: o.loss.op.trainable.count, "the trainable coefficients")
        try requireFinite(coefficientValues, "the checkpoint's trainable coefficients")
        try c.finish()
    }
    let current = try o.optionKeys.map { ($0, try o.option($0)) }
    do {
        try setSaved(o)
        var state = try archive.section("STAT")
        try o.readState(&state)
        o.divergence.adoptState(of: scratch.divergence)
        o.loss.op.trainable.raw = coefficientValues
    } catch {
        for (option, value) in current { try? o.setOption(option, value) }
        throw error
    }
}

extension Optimizer {
    /// A checkpoint of the optimizer's options and state (not the network's parameters; see
    /// `MLP.checkpoint`).
    public func checkpoint() throws -> [UInt8] {
        var archive = ArchiveWriter(kind: .optimizer)
        try writeOptimizer(self, into: &archive)
        return try archive.bytes()
    }

    public func save(to path: String) throws {
        try ArchiveFile.write(try checkpoint(), to: path)
    }
}

/// The optimizer saved in `bytes`, bound to `network` and `op`; `.corrupt` names what differs when
/// they are not the ones it was saved with.
public func loadOptimizer(checkpoint bytes: [UInt8], network: MLP, operator op: Operator) throws -> any Optimizer {
    try readOptimizer(try ArchiveReader(bytes, expecting: .optimizer), network: network, operator: op)
}

public func loadOptimizer(path: String, network: MLP, operator op: Operator) throws -> any Optimizer {
    try loadOptimizer(checkpoint: try ArchiveFile.read(path), network: network, operator: op)
}
