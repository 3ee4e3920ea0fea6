// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "metactl",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "metactl", targets: ["metactl"]),
        .library(name: "MetaCommands", targets: ["MetaCommands"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        // C: what Swift cannot import directly (O_DIRECT, block ioctls, aligned allocation).
        .target(name: "CMetaShim"),
        .systemLibrary(name: "CBlkid", pkgConfig: "blkid",
                       providers: [.apt(["libblkid-dev"])]),
        .systemLibrary(name: "CUdev", pkgConfig: "libudev",
                       providers: [.apt(["libudev-dev"])]),
        .systemLibrary(name: "CISAL", pkgConfig: "libisal",
                       providers: [.apt(["libisal-dev"])]),

        .target(name: "MetaLayout", swiftSettings: strict),
        // The set's state machine: configuration records and every transition, pure.
        .target(name: "MetaModel", dependencies: ["MetaLayout"], swiftSettings: strict),
        .target(name: "MetaDevices",
                dependencies: ["CMetaShim", "CBlkid", "CUdev", "CISAL"],
                swiftSettings: strict),
        .target(name: "MetaDB",
                dependencies: ["MetaDevices", "MetaLayout", "MetaModel", "CISAL"],
                swiftSettings: strict),
        .target(name: "MetaEngine",
                dependencies: ["MetaDevices", "MetaLayout", "MetaModel", "MetaDB", "CISAL",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .target(name: "MetaNBD",
                dependencies: ["CMetaShim",.product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .target(name: "MetaControl",
                dependencies: ["MetaModel", "MetaDB", "MetaEngine",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .target(name: "MetaCommands",
                dependencies: ["MetaDevices", "MetaLayout", "MetaModel", "MetaDB", "MetaEngine",
                               "MetaNBD", "MetaControl",
                               .product(name: "ArgumentParser", package: "swift-argument-parser"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .target(name: "MetaTestSupport", swiftSettings: strict),
        // The deterministic crash-and-fault simulator (docs/RELIABILITY.md).
        .target(name: "MetaSim",
                dependencies: ["MetaEngine", "MetaModel", "MetaDB", "MetaDevices", "MetaLayout", "MetaControl", "MetaTestSupport",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .executableTarget(name: "metactl-torture", dependencies: ["MetaSim"], swiftSettings: strict),
        .executableTarget(name: "metactl", dependencies: ["MetaCommands"], swiftSettings: strict),
        // Writes man/ from the metactl binary's dump-help (scripts/gen-docs).
        .executableTarget(name: "metactl-man", dependencies: ["MetaCommands"], swiftSettings: strict),
        .executableTarget(name: "metactl-bench", dependencies: ["MetaEngine", "MetaModel", "MetaDB", "MetaDevices", "MetaLayout"], swiftSettings: strict),

        .testTarget(name: "MetaLayoutTests", dependencies: ["MetaTestSupport", "MetaLayout"], swiftSettings: strict),
        .testTarget(name: "MetaModelTests", dependencies: ["MetaTestSupport", "MetaModel", "MetaLayout"], swiftSettings: strict),
        .testTarget(name: "MetaDevicesTests", dependencies: ["MetaTestSupport", "MetaDevices"], swiftSettings: strict),
        .testTarget(name: "MetaDBTests", dependencies: ["MetaTestSupport", "MetaModel", "MetaDB", "MetaDevices"], swiftSettings: strict),
        .testTarget(name: "MetaEngineTests",
                    dependencies: ["MetaTestSupport", "MetaEngine", "MetaModel", "MetaDB", "MetaDevices", "MetaLayout"],
                    swiftSettings: strict),
        .testTarget(name: "MetaSimTests", dependencies: ["MetaTestSupport", "MetaSim", "MetaEngine", "MetaModel", "MetaDB", "MetaControl"],
                    swiftSettings: strict),
        .testTarget(name: "MetaNBDTests",
                    dependencies: ["MetaTestSupport", "MetaNBD", .product(name: "NIOCore", package: "swift-nio"),
                                   .product(name: "NIOPosix", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(name: "MetaCommandsTests",
                    dependencies: ["MetaTestSupport", "MetaCommands", "MetaModel", "MetaDB", "MetaDevices", "MetaEngine"],
                    swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
