/// How an option key reads and writes one field of an optimizer's `Options` value.
enum OptionField<Options> {
    case double(WritableKeyPath<Options, Double>)
    case int(WritableKeyPath<Options, Int>)
    /// An integer 0 or 1.
    case flag(WritableKeyPath<Options, Bool>)
    /// A choice by name.
    case choice(get: (Options) -> String, set: (inout Options, String) throws -> Void)

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
        })
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
    case .choice(_, let set): try set(&o, try value.string(option))
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
    case .choice(let get, _): return .string(get(options))
    }
}
