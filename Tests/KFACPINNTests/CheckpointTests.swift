import Testing
@testable import KFACPINN

/// Whether `body` throws `.corrupt`.
private func isCorrupt(_ body: () throws -> Void) -> Bool {
    do { try body() } catch KFPError.corrupt { return true } catch { return false }
    return false
}

/// A network checkpoint whose NETW payload is `payload` (valid header and checksums: a hostile file).
private func networkFile(_ payload: (inout SectionWriter) throws -> Void) throws -> [UInt8] {
    var archive = ArchiveWriter(kind: .network)
    try archive.section("NETW", payload)
    return try archive.bytes()
}

@Test func crc32MatchesTheStandardCheckValue() {
    #expect(crc32(Array("123456789".utf8)) == 0xCBF4_3926)
    #expect(crc32([UInt8]()) == 0)
}

@Test func networkRoundTripIsExact() throws {
    let net = try MLP(widths: [3, 5, 1], activation: .sin, seed: 4)
    let loaded = try MLP.fromCheckpoint(net.checkpoint())
    #expect(loaded.widths == net.widths && loaded.activation == .sin)
    #expect(loaded.parameters.map(\.bitPattern) == net.parameters.map(\.bitPattern))
}

@Test func hostileNetworkCheckpointsAreCorruptNotCrashes() {
    // An empty section (found by the fuzzer: it trapped on an empty range).
    #expect(isCorrupt { _ = try MLP.fromCheckpoint(networkFile { _ in }) })
    // Widths that claim 2^31 parameters in a section of a few bytes: refused before allocating.
    #expect(isCorrupt {
        _ = try MLP.fromCheckpoint(networkFile { s in
            s.int(3); s.int(2); s.int(Int(Int32.max)); s.int(1); s.string("tanh"); s.int(3 * Int(Int32.max))
        })
    })
    // A width count of 2^60.
    #expect(isCorrupt { _ = try MLP.fromCheckpoint(networkFile { s in s.int(1 << 60) }) })
    // A negative vector count, an unknown activation, a non-finite parameter, trailing bytes.
    #expect(isCorrupt { _ = try MLP.fromCheckpoint(networkFile { s in s.int(2); s.int(1); s.int(1); s.string("tanh"); s.int(-1) }) })
    #expect(isCorrupt { _ = try MLP.fromCheckpoint(networkFile { s in s.int(2); s.int(1); s.int(1); s.string("relu") }) })
    #expect(isCorrupt {
        _ = try MLP.fromCheckpoint(networkFile { s in s.int(2); s.int(1); s.int(1); s.string("tanh"); try s.doubles([.nan, 0]) })
    })
    #expect(isCorrupt {
        _ = try MLP.fromCheckpoint(networkFile { s in s.int(2); s.int(1); s.int(1); s.string("tanh"); try s.doubles([1, 0]); s.int(0) })
    })
}

@Test func sectionLengthsBeyondTheFileAreCorrupt() throws {
    var bytes = try MLP(widths: [2, 3, 1]).checkpoint()
    // The NETW section's length field (after the 40-byte header, its tag and CRC) claims 1 TB.
    let terabyte = UInt64(1) << 40
    for k in 0..<8 { bytes[48 + k] = UInt8((terabyte >> (8 * UInt64(k))) & 0xFF) }
    #expect(isCorrupt { _ = try MLP.fromCheckpoint(bytes) })
}

@Test func optimizerStateOfAnotherShapeIsCorruptAndChangesNothing() throws {
    let net = try MLP(widths: [2, 4, 1], seed: 1), op = try Operator.poisson(dimension: 2)
    // More (s, y) pairs than the default history (10) holds.
    var hostile = ArchiveWriter(kind: .optimizer)
    try hostile.section("OPTM") { s in
        s.string("lbfgs")
        net.writeShape(&s)
        try op.writeDescription(&s)
        s.int(0)
    }
    hostile.section("STAT") { s in s.int(0); s.int(11) }
    hostile.section("DIVG") { s in s.double(.infinity); s.bool(false); s.int(0) }
    do {
        _ = try loadOptimizer(checkpoint: try hostile.bytes(), network: net, operator: op)
        Issue.record("11 pairs for a history of 10 were accepted")
    } catch let KFPError.corrupt(message) {
        #expect(message.contains("section STAT"), "\(message)")
    }
}
