import Testing
import KFACPINN
import Glibc

/// A plain forward pass written from the documented layout (per layer: W row-major, then b).
func referenceForward(widths: [Int], theta: [Double], x: [Double], activation: (Double) -> Double) -> Double {
    var z = x, offset = 0
    for l in 0..<(widths.count - 1) {
        let (hin, hout) = (widths[l], widths[l + 1])
        var next = [Double](repeating: 0, count: hout)
        for j in 0..<hout {
            var s = theta[offset + hin * hout + j]
            for i in 0..<hin { s += theta[offset + j * hin + i] * z[i] }
            next[j] = l < widths.count - 2 ? activation(s) : s
        }
        offset += (hin + 1) * hout
        z = next
    }
    return z[0]
}

struct NetworkTests {
    @Test("parameter counts of the paper's networks")
    func parameterCounts() throws {
        #expect(try MLP(widths: [2, 64, 1]).numParameters == 257)
        #expect(try MLP(widths: [2, 64, 64, 48, 48, 1]).numParameters == 9873)
        #expect(try MLP(widths: [2, 256, 256, 128, 128, 1]).numParameters == 116_097)
        #expect(try MLP(widths: [5, 256, 256, 128, 128, 1]).numParameters == 116_865)
    }

    @Test("evaluation follows the documented parameter layout")
    func layout() throws {
        let widths = [3, 5, 4, 1]
        let net = try MLP(widths: widths, seed: 12)
        let x = randomPoints(4, 3, seed: 1)
        let u = try net.evaluate(x, count: 4)
        for k in 0..<4 {
            let expected = referenceForward(widths: widths, theta: net.parameters,
                                            x: Array(x[(k * 3)..<(k * 3 + 3)]), activation: tanh)
            #expect(abs(u[k] - expected) < 1e-14, "u = \(u[k]), reference \(expected)")
        }
    }

    @Test("set/get round trip, and the same seed gives the same network")
    func roundTripAndSeeds() throws {
        let a = try MLP(widths: [2, 8, 1], seed: 5), b = try MLP(widths: [2, 8, 1], seed: 5)
        let c = try MLP(widths: [2, 8, 1], seed: 6)
        #expect(a.parameters == b.parameters)
        #expect(a.parameters != c.parameters)
        try c.setParameters(a.parameters)
        #expect(c.parameters == a.parameters)
        #expect(try c.evaluate([0.3, 0.4], count: 1) == a.evaluate([0.3, 0.4], count: 1))
    }

    @Test("PyTorch-style initialisation: W and b within ±1/√h_in; Xavier: b = 0, W within √(6/(h_in+h_out))")
    func initialisation() throws {
        let net = try MLP(widths: [4, 9, 1], seed: 2)
        for l in 0..<2 {
            let bound = 1 / Double(net.widths[l]).squareRoot()
            let range = net.weightOffset(l)..<(net.biasOffset(l) + net.widths[l + 1])
            #expect(net.parameters[range].allSatisfy { abs($0) <= bound })
        }
        let xavier = try MLP(widths: [4, 9, 1], initialization: .xavier, seed: 2)
        #expect(xavier.parameters[xavier.biasOffset(0)..<(xavier.biasOffset(0) + 9)].allSatisfy { $0 == 0 })
        #expect(xavier.parameters[0..<36].allSatisfy { abs($0) <= (6.0 / 13).squareRoot() })
        #expect(xavier.parameters[0..<36].contains { $0 != 0 })
    }

    @Test("bad input is rejected with a clear error and leaves the network unchanged")
    func badInput() throws {
        #expect(throws: KFPError.self) { try MLP(widths: [2]) }
        #expect(throws: KFPError.self) { try MLP(widths: [2, 0, 1]) }
        #expect(throws: KFPError.self) { try MLP(widths: [2, 4, 2]) }
        #expect(throws: KFPError.invalidArgument("unknown activation 'relu' (known: tanh, sigmoid, sin, softplus)")) {
            try Activation(name: "relu")
        }
        let net = try MLP(widths: [2, 4, 1], seed: 1)
        let before = net.parameters
        #expect(throws: KFPError.self) { try net.setParameters([1, 2]) }
        var bad = before
        bad[3] = .nan
        #expect(throws: KFPError.self) { try net.setParameters(bad) }
        #expect(net.parameters == before)
        #expect(throws: KFPError.self) { try net.evaluate([0.1, 0.2, 0.3], count: 1) }
        #expect(throws: KFPError.self) { try net.evaluate([], count: 0) }
        #expect(throws: KFPError.self) { try net.evaluate([0.1, .nan], count: 1) }
        #expect(throws: KFPError.self) { try net.derivatives([0.1, 0.2], count: 1, coefficients: .matrix([1, 2, 3, 1])) }
        // A batch whose Taylor pass cannot fit in memory is refused, not attempted.
        let wide = try MLP(widths: [2, 50_000, 1], seed: 1)
        let n = 5_000_000
        #expect(throws: KFPError.self) { try wide.derivatives([Double](repeating: 0.5, count: 2 * n), count: n) }
    }
}
