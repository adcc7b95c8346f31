import KFPTypes

/// A path argument.
private func pathArgument(_ path: UnsafePointer<CChar>?) throws -> String {
    let p = String(cString: try required(path, "path"))
    guard !p.isEmpty else { throw KFPError.invalidArgument("path is empty") }
    return p
}

/// The bytes of a caller's buffer.
private func bytesArgument(_ data: UnsafeRawPointer?, _ size: Int64) throws -> [UInt8] {
    guard size >= 0 else { throw KFPError.invalidArgument("size must be at least 0, got \(size)") }
    if size == 0 { return [] }
    guard let data else { throw KFPError.nullPointer("data is NULL") }
    return Array(UnsafeRawBufferPointer(start: data, count: Int(size)))
}

/// Copies `bytes` to the caller's buffer: `*out_size` is always set to their count; with a NULL
/// buffer only the size is asked for; a buffer smaller than that is an error.
private func deliver(_ bytes: [UInt8], _ buffer: UnsafeMutableRawPointer?, _ capacity: Int64,
                     _ out_size: UnsafeMutablePointer<Int64>?) throws {
    let size = try required(out_size, "out_size")
    size.pointee = Int64(bytes.count)
    guard let buffer else { return }
    guard capacity >= Int64(bytes.count) else {
        throw KFPError.invalidArgument("the checkpoint has \(bytes.count) bytes, the buffer's capacity is \(capacity)")
    }
    bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
}

/// Writes a checkpoint of `net` (widths, activation, parameters; docs/checkpoint-format.md) to
/// `path`, through a temporary file renamed over it: an interrupted write keeps the old file.
/// @param path the file to write.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_IO if the file cannot be written.
@c public func kfp_net_save(_ net: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> kfp_status {
    entryPoint("kfp_net_save") {
        let mlp = try object(net, MLP.self, "net")
        try mlp.save(to: try pathArgument(path))
    }
}

/// Reads a network checkpoint written by kfp_net_save.
/// @param path the file to read.
/// @param out_net receives the new handle (NULL on failure). Free it with kfp_net_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_IO (cannot read); KFP_ERROR_CORRUPT (truncated,
///         damaged or not a network checkpoint; the message says what); KFP_ERROR_OUT_OF_MEMORY.
@c public func kfp_net_load(_ path: UnsafePointer<CChar>?, _ out_net: UnsafeMutablePointer<OpaquePointer?>?) -> kfp_status {
    entryPoint("kfp_net_load") {
        let out = try required(out_net, "out_net")
        out.pointee = nil
        publish(try MLP.fromFile(try pathArgument(path)), to: out)
    }
}

/// Writes a checkpoint of `net` to a caller's buffer. Pass buffer NULL to ask for the size.
/// @param buffer receives the checkpoint's bytes, or NULL.
/// @param capacity the buffer's size in bytes.
/// @param out_size receives the checkpoint's size in bytes (also when the buffer is too small).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT if capacity < *out_size.
@c public func kfp_net_save_memory(
    _ net: OpaquePointer?, _ buffer: UnsafeMutableRawPointer?, _ capacity: Int64, _ out_size: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_net_save_memory") {
        try deliver(try object(net, MLP.self, "net").checkpoint(), buffer, capacity, out_size)
    }
}

/// Reads a network checkpoint from memory (as kfp_net_load does from a file).
/// @param data size bytes of a checkpoint written by kfp_net_save or kfp_net_save_memory.
/// @param out_net receives the new handle (NULL on failure). Free it with kfp_net_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT (size < 0); KFP_ERROR_CORRUPT.
@c public func kfp_net_load_memory(
    _ data: UnsafeRawPointer?, _ size: Int64, _ out_net: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    entryPoint("kfp_net_load_memory") {
        let out = try required(out_net, "out_net")
        out.pointee = nil
        publish(try MLP.fromCheckpoint(try bytesArgument(data, size)), to: out)
    }
}

/// Writes a checkpoint of the optimizer's options and full state (moving averages, momentum,
/// step counters, history; not the network's parameters: save those with kfp_net_save) to
/// `path`. With the network's parameters it determines every later step bit for bit.
/// @param path the file to write.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_IO if the file cannot be written.
@c public func kfp_optimizer_save(_ optimizer: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> kfp_status {
    entryPoint("kfp_optimizer_save") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        try opt.save(to: try pathArgument(path))
    }
}

/// Reads an optimizer checkpoint and binds it to `net` and `op`, which must have the network
/// shape and the operator it was saved with (else KFP_ERROR_CORRUPT naming what differs).
/// @param path the file to read.
/// @param out_optimizer receives the new handle (NULL on failure). Free it with kfp_optimizer_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_IO; KFP_ERROR_CORRUPT; KFP_ERROR_OUT_OF_MEMORY.
@c public func kfp_optimizer_load(
    _ path: UnsafePointer<CChar>?, _ net: OpaquePointer?, _ op: OpaquePointer?,
    _ out_optimizer: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    entryPoint("kfp_optimizer_load") {
        let out = try required(out_optimizer, "out_optimizer")
        out.pointee = nil
        let mlp = try object(net, MLP.self, "net"), o = try object(op, OperatorHandle.self, "op").op
        publish(OptimizerHandle(try loadOptimizer(path: try pathArgument(path), network: mlp, operator: o)), to: out)
    }
}

/// Writes an optimizer checkpoint to a caller's buffer (see kfp_optimizer_save). Pass buffer NULL
/// to ask for the size.
/// @param buffer receives the checkpoint's bytes, or NULL.
/// @param capacity the buffer's size in bytes.
/// @param out_size receives the checkpoint's size in bytes (also when the buffer is too small).
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT if capacity < *out_size.
@c public func kfp_optimizer_save_memory(
    _ optimizer: OpaquePointer?, _ buffer: UnsafeMutableRawPointer?, _ capacity: Int64, _ out_size: UnsafeMutablePointer<Int64>?
) -> kfp_status {
    entryPoint("kfp_optimizer_save_memory") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        try deliver(try opt.checkpoint(), buffer, capacity, out_size)
    }
}

/// Reads an optimizer checkpoint from memory (as kfp_optimizer_load does from a file).
/// @param data size bytes of a checkpoint written by kfp_optimizer_save or kfp_optimizer_save_memory.
/// @param out_optimizer receives the new handle (NULL on failure). Free it with kfp_optimizer_free.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER; KFP_ERROR_INVALID_ARGUMENT (size < 0); KFP_ERROR_CORRUPT.
@c public func kfp_optimizer_load_memory(
    _ data: UnsafeRawPointer?, _ size: Int64, _ net: OpaquePointer?, _ op: OpaquePointer?,
    _ out_optimizer: UnsafeMutablePointer<OpaquePointer?>?
) -> kfp_status {
    entryPoint("kfp_optimizer_load_memory") {
        let out = try required(out_optimizer, "out_optimizer")
        out.pointee = nil
        let mlp = try object(net, MLP.self, "net"), o = try object(op, OperatorHandle.self, "op").op
        publish(OptimizerHandle(try loadOptimizer(checkpoint: try bytesArgument(data, size), network: mlp, operator: o)), to: out)
    }
}

/// The network's activation: "tanh", "sigmoid", "sin" or "softplus" (static storage; never free it).
/// @param out_name receives the name.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER or KFP_ERROR_WRONG_HANDLE.
@c public func kfp_net_activation(_ net: OpaquePointer?, _ out_name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> kfp_status {
    entryPoint("kfp_net_activation") {
        let mlp = try object(net, MLP.self, "net")
        let name: StaticString
        switch mlp.activation {
        case .tanh: name = "tanh"
        case .sigmoid: name = "sigmoid"
        case .sin: name = "sin"
        case .softplus: name = "softplus"
        }
        try required(out_name, "out_name").pointee = cString(name)
    }
}

/// The optimizer's kind, as its kfp_optimizer_create_* function names it: "kfac", "sgd", "adam",
/// "lbfgs", "engd", "hessian_free" or "spring" (static storage; never free it).
/// @param out_name receives the name.
/// @return KFP_OK; KFP_ERROR_NULL_POINTER or KFP_ERROR_WRONG_HANDLE.
@c public func kfp_optimizer_kind(_ optimizer: OpaquePointer?, _ out_name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> kfp_status {
    entryPoint("kfp_optimizer_kind") {
        let opt = try object(optimizer, OptimizerHandle.self, "optimizer").optimizer
        let name: StaticString
        switch opt {
        case is KFAC: name = "kfac"
        case is SGD: name = "sgd"
        case is Adam: name = "adam"
        case is LBFGS: name = "lbfgs"
        case is ENGD: name = "engd"
        case is HessianFree: name = "hessian_free"
        case is SPRING: name = "spring"
        default: throw KFPError.wrongHandle("optimizer has no C name")
        }
        try required(out_name, "out_name").pointee = cString(name)
    }
}
