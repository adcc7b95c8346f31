/// How an option key reads and writes one field of an optimizer's `Options` value.
enum OptionField<Options> {
    case double(WritableKeyPath<Options, Double>)
    case int(WritableKeyPath<Options, Int>)
    /// An integer 0 or 1.
    case flag(WritableKeyPath<Options, Bool>)
    /// A choice by name among `names`.
    case choice(get: (Options) -> String, set: (inout Options, String) throws -> Void, names: [String])

    /// A choice among the cases of a string enum; `what` names it in the error for an unknown name.
    static func choice<E: RawRepresentable & CaseIterable>(_ key: WritableKeyPath<Options, E>, _ what: String) -> OptionField
        where E.RawValue == String
    {
        .choice(get: { $0[keyPath: key].rawValue }, set: { options, name in
            guard let value = E(rawValue: name) else {
                let known = E.allCases.map(\.rawValue).joined(separator: ", ")
                throw KFPError.invalidArgument("unknown \(what) '\(name)' (known: \(known))")
            }
            options[keyPath: key] = value
        }, names: E.allCases.map(\.rawValue))
    }
}

/// `options` with `option` set to `value` (not yet validated); throws for a key the optimizer
/// named `optimizer` does not have or a value of the wrong type.
func updatedOptions<Options>(_ options: Options, _ option: OptimizerOption, _ value: OptionValue,
                             _ fields: [OptimizerOption: OptionField<Options>], optimizer: String) throws -> Options {
    guard let field = fields[option] else { throw option.notApplicable(to: optimizer) }
    var o = options
    switch field {
    case .double(let key): o[keyPath: key] = try value.double(option)
    case .int(let key): o[keyPath: key] = try value.int(option)
    case .flag(let key): o[keyPath: key] = try value.bool(option)
    case .choice(_, let set, _): try set(&o, try value.string(option))
    }
    return o
}

/// The value of `option` in `options`.
func optionValue<Options>(_ options: Options, _ option: OptimizerOption,
                          _ fields: [OptimizerOption: OptionField<Options>], optimizer: String) throws -> OptionValue {
    guard let field = fields[option] else { throw option.notApplicable(to: optimizer) }
    switch field {
    case .double(let key): return .double(options[keyPath: key])
    case .int(let key): return .int(options[keyPath: key])
    case .flag(let key): return .int(options[keyPath: key] ? 1 : 0)
    case .choice(let get, _, _): return .string(get(options))
    }
}

/// An optimizer whose options are one `Options` value with a table of keyed fields: setting,
/// reading and describing options by key work the same way for all of them.
protocol OptionTable: Optimizer {
    associatedtype Options
    /// The name in error messages ("KFAC", "L-BFGS").
    static var displayName: String { get }
    static var optionFields: [OptimizerOption: OptionField<Options>] { get }
    /// The defaults.
    static var defaultOptions: Options { get }
    var options: Options { get }
    /// Replaces all options at once (validated; nothing changes on failure).
    func setOptions(_ new: Options) throws
    /// Holds the option every optimizer has, divergence_factor.
    var divergence: DivergenceGuard { get }
}

extension OptionTable {
    public func setOption(_ option: OptimizerOption, _ value: OptionValue) throws {
        if option == .divergenceFactor { return try divergence.setFactor(try value.double(option)) }
        try setOptions(try updatedOptions(options, option, value, Self.optionFields, optimizer: Self.displayName))
    }

    public func option(_ option: OptimizerOption) throws -> OptionValue {
        if option == .divergenceFactor { return .double(divergence.factor) }
        return try optionValue(options, option, Self.optionFields, optimizer: Self.displayName)
    }

    public var optionKeys: [OptimizerOption] {
        OptimizerOption.allCases.filter { $0 == .divergenceFactor || Self.optionFields[$0] != nil }
    }

    public func defaultOption(_ option: OptimizerOption) throws -> OptionValue {
        if option == .divergenceFactor { return .double(DivergenceGuard.defaultFactor) }
        return try optionValue(Self.defaultOptions, option, Self.optionFields, optimizer: Self.displayName)
    }

    public func optionChoices(_ option: OptimizerOption) throws -> [String] {
        if option == .divergenceFactor { return [] }
        guard let field = Self.optionFields[option] else { throw option.notApplicable(to: Self.displayName) }
        if case .choice(_, _, let names) = field { return names }
        return []
    }
}
