// swift-tools-version: 6.1
import PackageDescription
import Foundation

/// Absolute path of this package, for the linker version script.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

let package = Package(
    name: "kfacpinn",
    products: [
        // libkfacpinn.so: the C ABI of include/kfacpinn.h.
        .library(name: "kfacpinn", type: .dynamic, targets: ["KFACPINN"]),
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
        // The structs of the C interface (kfp_train_options, kfp_option_info).
        .target(name: "KFPTypes"),
        .target(
            name: "KFACPINN",
            dependencies: ["CBLAS", "CKernels", "KFPTypes"],
            exclude: ["CAPI/exports.map"],
            linkerSettings: [
                // Export only the kfp_* C ABI, and name the library by its file name.
                .unsafeFlags([
                    "-Xlinker", "--version-script=\(packageRoot)/Sources/KFACPINN/CAPI/exports.map",
                    "-Xlinker", "-soname=libkfacpinn.so",
                ]),
            ]
        ),
        // The benchmark calls DGEMM directly to measure the machine's rate.
        .executableTarget(name: "Benchmarks", dependencies: ["KFACPINN", "CBLAS"]),
        .testTarget(name: "KFACPINNTests", dependencies: ["KFACPINN", "CKernels"]),
    ]
)
