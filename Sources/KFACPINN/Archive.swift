import Glibc

/// Checkpoint files (docs/checkpoint-format.md): a fixed header and tagged sections, each with its
/// length and CRC-32, every number little-endian. `ArchiveWriter` builds one in memory,
/// `ArchiveReader` checks one completely before anything is decoded; a reader never allocates more
/// than the bytes it was given and reports every defect as `.corrupt`.

/// What a checkpoint holds.
public enum ArchiveKind: UInt32, Sendable {
    case network = 1, optimizer = 2, training = 3

    var name: String {
        switch self {
        case .network: return "a network"
        case .optimizer: return "an optimizer"
        case .training: return "a training run"
        }
    }
}

enum ArchiveLayout {
    static let magic: [UInt8] = Array("KFPCKPT".utf8) + [0]
    static let formatVersion: UInt32 = 1
    /// magic (8), format version, kind, section count (4 each), library version (16, NUL-padded).
    static let versionBytes = 16
    static let headerBytes = 8 + 12 + versionBytes
    /// Header plus its CRC-32.
    static let prologueBytes = headerBytes + 4
    /// A section's tag (4 ASCII bytes), CRC-32 of the payload (4), payload length (8).
    static let sectionHeaderBytes = 16
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) of `bytes`.
func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes { crc = CRCTable.values[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
    return ~crc
}

private enum CRCTable {
    static let values: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
}

/// The payload of one section being written. Bulk values grow the buffer through the failing
/// allocator (`Memory.require`), so a state too large to copy is `.outOfMemory`, not an abort;
/// a writer that is `reset` and refilled keeps its capacity.
struct SectionWriter {
    fileprivate(set) var bytes: [UInt8] = []

    mutating func uint64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func int(_ v: Int) { uint64(UInt64(bitPattern: Int64(v))) }
    mutating func double(_ v: Double) { uint64(v.bitPattern) }
    mutating func bool(_ v: Bool) { uint64(v ? 1 : 0) }

    /// Empties the payload, keeping its capacity.
    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    /// Capacity for `count` more bytes (at least doubling), asked of the failing allocator first.
    private mutating func reserve(_ count: Int) throws {
        let needed = bytes.count + count
        guard needed > bytes.capacity else { return }
        let target = max(needed, 2 * bytes.capacity)
        try Memory.require(bytes: target, "a checkpoint or a copy of the optimizer's state")
        bytes.reserveCapacity(target)
    }

    /// A count, then the values.
    mutating func doubles(_ values: UnsafeBufferPointer<Double>) throws {
        try reserve(8 + 8 * values.count)
        int(values.count)
        #if _endian(little)
        bytes.append(contentsOf: UnsafeRawBufferPointer(values))
        #else
        for v in values { uint64(v.bitPattern) }
        #endif
    }

    mutating func doubles(_ values: [Double]) throws { try values.withUnsafeBufferPointer { try doubles($0) } }

    /// A byte count, then another writer's payload (read back by `SectionReader.block`).
    mutating func block(_ other: SectionWriter) throws {
        try reserve(8 + other.bytes.count)
        int(other.bytes.count)
        bytes.append(contentsOf: other.bytes)
    }

    /// Bytes as they are, without a count.
    mutating func append(contentsOf payload: ArraySlice<UInt8>) throws {
        try reserve(payload.count)
        bytes.append(contentsOf: payload)
    }

    /// A byte count, then UTF-8.
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        int(utf8.count)
        bytes.append(contentsOf: utf8)
    }
}

/// Builds a checkpoint in memory.
struct ArchiveWriter {
    private var sections: [(tag: String, payload: [UInt8])] = []
    let kind: ArchiveKind

    init(kind: ArchiveKind) { self.kind = kind }

    /// Appends a section with tag `tag` (4 ASCII characters) written by `body`.
    mutating func section(_ tag: String, _ body: (inout SectionWriter) throws -> Void) rethrows {
        precondition(tag.utf8.count == 4, "section tags have 4 characters")
        var writer = SectionWriter()
        try body(&writer)
        sections.append((tag, writer.bytes))
    }

    /// The file's bytes (`.outOfMemory` if they cannot be allocated).
    func bytes() throws -> [UInt8] {
        let total = ArchiveLayout.prologueBytes + sections.reduce(0) { $0 + ArchiveLayout.sectionHeaderBytes + $1.payload.count }
        try Memory.require(bytes: total, "a checkpoint")
        var out = ArchiveLayout.magic
        out.reserveCapacity(total)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        u32(ArchiveLayout.formatVersion)
        u32(kind.rawValue)
        u32(UInt32(sections.count))
        var version = Array(String(describing: Version.string).utf8.prefix(ArchiveLayout.versionBytes))
        version += [UInt8](repeating: 0, count: ArchiveLayout.versionBytes - version.count)
        out += version
        u32(crc32(out))
        for (tag, payload) in sections {
            out += Array(tag.utf8)
            u32(crc32(payload))
            withUnsafeBytes(of: UInt64(payload.count).littleEndian) { out.append(contentsOf: $0) }
            out += payload
        }
        return out
    }
}

/// Reads the values of one section in order; every read checks the bytes left.
struct SectionReader {
    let tag: String
    private let bytes: ArraySlice<UInt8>
    private var offset: Int

    init(tag: String, bytes: ArraySlice<UInt8>) {
        self.tag = tag
        self.bytes = bytes
        offset = bytes.startIndex
    }

    var remaining: Int { bytes.endIndex - offset }
    /// All bytes of the section, read or not.
    var payload: ArraySlice<UInt8> { bytes }

    /// Largest step or point count a checkpoint may hold (far from overflow when counted on).
    static let maxCount = 1 << 52

    func corrupt(_ what: String) -> KFPError { .corrupt("checkpoint section \(tag): \(what)") }

    mutating func uint64() throws -> UInt64 {
        guard remaining >= 8 else { throw corrupt("ends early") }
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(bytes[offset + k]) << (8 * UInt64(k)) }
        offset += 8
        return v
    }

    mutating func int() throws -> Int { Int(Int64(bitPattern: try uint64())) }
    mutating func double() throws -> Double { Double(bitPattern: try uint64()) }

    /// An integer in `range`, named `what` in the error.
    mutating func int(in range: ClosedRange<Int>, _ what: String) throws -> Int {
        let v = try int()
        guard range.contains(v) else { throw corrupt("\(what) is \(v), outside \(range.lowerBound)...\(range.upperBound)") }
        return v
    }

    mutating func bool(_ what: String) throws -> Bool { try int(in: 0...1, what) == 1 }

    /// A finite double, named `what` in the error.
    mutating func finiteDouble(_ what: String) throws -> Double {
        let v = try double()
        guard v.isFinite else { throw corrupt("\(what) is \(v)") }
        return v
    }

    /// A count-prefixed vector; its count must equal `count` when given, and the values must be
    /// in the section (so no allocation exceeds the file).
    mutating func doubles(count expected: Int? = nil, _ what: String) throws -> [Double] {
        let n = try int()
        guard n >= 0, n <= remaining / 8 else { throw corrupt("\(what) claims \(n) values, the section has \(remaining) bytes left") }
        if let expected, n != expected { throw corrupt("\(what) has \(n) values, expected \(expected)") }
        var values = [Double](repeating: 0, count: n)
        for i in 0..<n { values[i] = try double() }
        return values
    }

    /// A length-prefixed UTF-8 string of at most `maxBytes` bytes.
    mutating func string(maxBytes: Int = 4096, _ what: String) throws -> String {
        let n = try int()
        guard n >= 0, n <= min(maxBytes, remaining) else { throw corrupt("\(what) claims \(n) bytes") }
        let s = bytes[offset..<(offset + n)]
        offset += n
        guard let text = String(validating: s, as: UTF8.self) else { throw corrupt("\(what) is not UTF-8") }
        return text
    }

    /// A byte-count-prefixed payload written by `SectionWriter.block`, as a reader named `tag`.
    mutating func block(_ tag: String) throws -> SectionReader {
        let n = try int()
        guard n >= 0, n <= remaining else { throw corrupt("\(tag) claims \(n) bytes, the section has \(remaining) left") }
        let payload = bytes[offset..<(offset + n)]
        offset += n
        return SectionReader(tag: "\(self.tag)/\(tag)", bytes: payload)
    }

    /// Throws unless every byte has been read.
    func finish() throws {
        guard remaining == 0 else { throw corrupt("\(remaining) bytes left over") }
    }
}

/// A checkpoint whose header, section table and checksums have been verified.
struct ArchiveReader {
    let kind: ArchiveKind
    let libraryVersion: String
    private let bytes: [UInt8]
    private var sections: [String: Range<Int>] = [:]

    /// Verifies `bytes` as a checkpoint of kind `expected`.
    init(_ bytes: [UInt8], expecting expected: ArchiveKind) throws {
        self.bytes = bytes
        func fail(_ what: String) -> KFPError { .corrupt("not a valid kfacpinn checkpoint: \(what)") }
        guard bytes.count >= ArchiveLayout.prologueBytes else { throw fail("\(bytes.count) bytes, shorter than the header") }
        guard Array(bytes[0..<8]) == ArchiveLayout.magic else { throw fail("it does not start with the magic bytes KFPCKPT") }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        let header = ArchiveLayout.headerBytes
        guard crc32(bytes[0..<header]) == u32(header) else { throw fail("the header's checksum does not match") }
        let format = u32(8)
        guard format == ArchiveLayout.formatVersion else {
            throw KFPError.corrupt("checkpoint format version \(format) is not supported (this library reads version \(ArchiveLayout.formatVersion))")
        }
        let versionBytes = bytes[20..<(20 + ArchiveLayout.versionBytes)].prefix { $0 != 0 }
        libraryVersion = String(decoding: versionBytes, as: UTF8.self)
        guard let kind = ArchiveKind(rawValue: u32(12)) else { throw fail("unknown object kind \(u32(12))") }
        guard kind == expected else {
            throw KFPError.corrupt("the checkpoint holds \(kind.name) (written by kfacpinn \(libraryVersion)), not \(expected.name)")
        }
        self.kind = kind
        let count = Int(u32(16))
        var offset = ArchiveLayout.prologueBytes
        for index in 0..<count {
            guard bytes.count - offset >= ArchiveLayout.sectionHeaderBytes else { throw fail("section \(index) of \(count) is missing (the file is truncated)") }
            let tagBytes = bytes[offset..<(offset + 4)]
            guard tagBytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { throw fail("section \(index) has no valid tag") }
            let tag = String(decoding: tagBytes, as: UTF8.self)
            let crc = u32(offset + 4)
            var length: UInt64 = 0
            for k in 0..<8 { length |= UInt64(bytes[offset + 8 + k]) << (8 * UInt64(k)) }
            offset += ArchiveLayout.sectionHeaderBytes
            guard length <= UInt64(bytes.count - offset) else {
                throw fail("section \(tag) claims \(length) bytes, the file has \(bytes.count - offset) left (truncated?)")
            }
            let range = offset..<(offset + Int(length))
            guard crc32(bytes[range]) == crc else { throw fail("section \(tag)'s checksum does not match (the file is damaged)") }
            guard sections[tag] == nil else { throw fail("section \(tag) appears twice") }
            sections[tag] = range
            offset = range.upperBound
        }
        guard offset == bytes.count else { throw fail("\(bytes.count - offset) bytes after the last section") }
    }

    /// Whether a section tagged `tag` is present.
    func contains(_ tag: String) -> Bool { sections[tag] != nil }

    /// The section tagged `tag`.
    func section(_ tag: String) throws -> SectionReader {
        guard let range = sections[tag] else { throw KFPError.corrupt("the checkpoint has no section \(tag)") }
        return SectionReader(tag: tag, bytes: bytes[range])
    }
}

/// File input and output of checkpoints (`.io` on failure; a write goes to a temporary file
/// renamed over `path`, so an interrupted write leaves the previous file intact).
enum ArchiveFile {
    static func write(_ bytes: [UInt8], to path: String) throws {
        let temporary = path + ".partial"
        guard let f = fopen(temporary, "wb") else { throw KFPError.io("cannot write '\(temporary)': \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        let flushed = fflush(f) == 0 && fsync(fileno(f)) == 0
        let closed = fclose(f) == 0
        guard written == bytes.count, flushed, closed else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw KFPError.io("cannot write '\(path)': \(reason)")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw KFPError.io("cannot rename '\(temporary)' to '\(path)': \(reason)")
        }
    }

    static func read(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw KFPError.io("cannot open '\(path)': \(String(cString: strerror(errno)))") }
        defer { fclose(f) }
        var st = stat()
        guard fstat(fileno(f), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw KFPError.io("'\(path)' is not a regular file") }
        let size = Int(st.st_size)
        try Memory.require(bytes: size, "reading '\(path)'")
        var bytes = [UInt8](repeating: 0, count: size)
        let read = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, f) }
        guard read == size else { throw KFPError.io("cannot read '\(path)': \(ferror(f) != 0 ? String(cString: strerror(errno)) : "it ended early")") }
        return bytes
    }
}
