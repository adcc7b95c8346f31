import Testing
@testable import KFACPINN

struct OptionTests {
    static func optimizers() throws -> [any Optimizer] {
        let net = try MLP(widths: [2, 4, 1], seed: 1), op = try Operator.poisson(dimension: 2)
        return [try SGD(network: net, operator: op), try Adam(network: net, operator: op), try LBFGS(network: net, operator: op),
                try ENGD(network: net, operator: op), try HessianFree(network: net, operator: op), try KFAC(network: net, operator: op)]
    }

    @Test("every option's described range is what the optimizers accept: its ends (closed ends accepted, open ones refused) and values beyond them")
    func rangesMatchValidation() throws {
        for opt in try Self.optimizers() {
            for option in opt.optionKeys {
                let range = option.range, original = try opt.option(option)
                func accepts(_ v: Double) -> Bool {
                    let value: OptionValue = if case .int = original { .int(Int(v)) } else { .double(v) }
                    defer { try? opt.setOption(option, original) }
                    return (try? opt.setOption(option, value)) != nil
                }
                switch original {
                case .string(let value):
                    #expect(try opt.optionChoices(option).contains(value), "\(type(of: opt)) \(option.rawValue) = \(value)")
                    #expect(throws: KFPError.self) { try opt.setOption(option, .string("no such choice")) }
                case .double, .int:
                    let below = range.minimum - 1, above = range.maximum.isFinite && range.maximum < 1e15 ? range.maximum + 1 : nil
                    #expect(accepts(range.minimum) == !range.minimumOpen, "\(type(of: opt)) \(option.rawValue) at its minimum")
                    #expect(!accepts(below), "\(type(of: opt)) \(option.rawValue) below its range")
                    if let above {
                        #expect(accepts(range.maximum) == !range.maximumOpen, "\(type(of: opt)) \(option.rawValue) at its maximum")
                        #expect(!accepts(above), "\(type(of: opt)) \(option.rawValue) above its range")
                    }
                    if case .double = original { #expect(!accepts(.nan), "\(type(of: opt)) \(option.rawValue) accepts NaN") }
                    if case .double(let d) = try opt.defaultOption(option) { #expect(range.contains(d)) }
                    if case .int(let i) = try opt.defaultOption(option) { #expect(range.contains(Double(i))) }
                }
            }
        }
    }
}
