// swift-tools-version: 6.1
import PackageDescription
import Foundation

/// Absolute path of this package, for the linker version script.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

/// The library's major version (Sources/KFACPINN/Version.swift): the SONAME is libkfacpinn.so.<major>.
let majorVersion: String = {
    let text = (try? String(contentsOfFile: packageRoot + "/Sources/KFACPINN/Version.swift", encoding: .utf8)) ?? ""
    guard let range = text.range(of: #"static let major = \d+"#, options: .regularExpression) else { return "1" }
    return String(text[range].split(separator: " ").last!)
}()

let package = Package(
    name: "kfacpinn",
    products: [
        // libkfacpinn.so: the C ABI of include/kfacpinn.h, exporting kfp_* only, SONAME
        // libkfacpinn.so.<major>.
        .library(name: "kfacpinn", type: .dynamic, targets: ["KFACPINN", "KFACPINNExports"]),
        // The Swift API for other packages (`import KFACPINN`).
        .library(name: "KFACPINNSwift", targets: ["KFACPINN"]),
        .executable(name: "kfacpinn-bench", targets: ["Benchmarks"]),
    ],
    targets: [
        // OpenBLAS (CBLAS) and LAPACKE; every call into them is in Sources/KFACPINN/Linalg.
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: nil,
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        // Elementwise kernels built for several x86-64 instruction sets, chosen at run time.
        .target(name: "CKernels"),
        // The structs of the C interface (kfp_train_options, kfp_option_info, kfp_communicator).
        .target(name: "KFPTypes"),
        .target(name: "KFACPINN", dependencies: ["CBLAS", "CKernels", "KFPTypes"]),
        // The link settings of libkfacpinn.so only (not of the Swift API's users).
        .target(
            name: "KFACPINNExports",
            exclude: ["exports.map"],
            linkerSettings: [
                .unsafeFlags([
                    "-Xlinker", "--version-script=\(packageRoot)/Sources/KFACPINNExports/exports.map",
                    "-Xlinker", "-soname=libkfacpinn.so.\(majorVersion)",
                ]),
            ]
        ),
        // The benchmark calls DGEMM directly to measure the machine's rate.
        .executableTarget(name: "Benchmarks", dependencies: ["KFACPINN", "CBLAS"]),
        .testTarget(name: "KFACPINNTests", dependencies: ["KFACPINN", "CKernels"]),
    ]
)
