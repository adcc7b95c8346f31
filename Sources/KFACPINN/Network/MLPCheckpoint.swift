/// Network checkpoints (docs/checkpoint-format.md): section NETW holds the shape (widths,
/// activation) and θ.
extension MLP {
    /// The shape: widths and activation name.
    func writeShape(_ s: inout SectionWriter) {
        s.int(widths.count)
        for w in widths { s.int(w) }
        s.string(activation.rawValue)
    }

    /// Reads a shape written by `writeShape`; the widths are checked as a new network's are.
    static func readShape(_ s: inout SectionReader) throws -> (widths: [Int], activation: Activation) {
        let count = try s.int(in: 2...(1 << 16), "the number of widths")
        guard count <= s.remaining / 8 else { throw s.corrupt("\(count) widths claimed, the section has \(s.remaining) bytes left") }
        var widths: [Int] = []
        for i in 0..<count { widths.append(try s.int(in: 1...Int(Int32.max), "width \(i)")) }
        let name = try s.string(maxBytes: 64, "the activation")
        guard let activation = Activation(rawValue: name) else { throw s.corrupt("unknown activation '\(name)'") }
        return (widths, activation)
    }

    /// Throws `.corrupt` saying what differs unless the shape in `s` is this network's.
    func requireShape(_ s: inout SectionReader, _ what: String) throws {
        let (w, a) = try MLP.readShape(&s)
        guard w == widths else { throw KFPError.corrupt("\(what) is for a network of widths \(w), this network has widths \(widths)") }
        guard a == activation else {
            throw KFPError.corrupt("\(what) is for a network with activation \(a.rawValue), this network has \(activation.rawValue)")
        }
    }

    func writeNetwork(into archive: inout ArchiveWriter) throws {
        try archive.section("NETW") { s in
            writeShape(&s)
            try s.doubles(parameters)
        }
    }

    /// The network of an archive's NETW section. The parameter count implied by the widths is
    /// checked against the values the section holds before anything is allocated.
    static func readNetwork(_ archive: ArchiveReader) throws -> MLP {
        var s = try archive.section("NETW")
        let (widths, activation) = try readShape(&s)
        var count = 0
        for l in 0..<(widths.count - 1) {
            let (layer, overflow) = (widths[l] + 1).multipliedReportingOverflow(by: widths[l + 1])
            count += overflow ? Int.max / 2 : layer
            guard count <= s.remaining / 8 else { throw s.corrupt("widths \(widths) need more parameters than the section holds") }
        }
        guard widths.last == 1 else { throw s.corrupt("the last width is \(widths.last!), not 1") }
        let theta = try s.doubles(count: count, "the parameters")
        try s.finish()
        let net = try MLP(widths: widths, activation: activation)
        do { try net.setParameters(theta) } catch let error as KFPError { throw s.corrupt("\(error)") }
        return net
    }

    /// A checkpoint of the network (shape and parameters).
    public func checkpoint() throws -> [UInt8] {
        var archive = ArchiveWriter(kind: .network)
        try writeNetwork(into: &archive)
        return try archive.bytes()
    }

    public func save(to path: String) throws { try ArchiveFile.write(checkpoint(), to: path) }

    /// The network saved in `bytes` (`.corrupt` if they are not a valid network checkpoint).
    public static func fromCheckpoint(_ bytes: [UInt8]) throws -> MLP {
        try readNetwork(try ArchiveReader(bytes, expecting: .network))
    }

    public static func fromFile(_ path: String) throws -> MLP { try fromCheckpoint(try ArchiveFile.read(path)) }
}
