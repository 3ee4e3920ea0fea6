import Foundation
import MetaCommands
import MetaControl
import MetaFuzz
import Testing

/// Replays the checked-in corpus (`Tests/Corpus/<target>/`: seeds, inputs the fuzzer found
/// interesting, and every crash input ever found) through the fuzz targets, so CI keeps them
/// fixed without running libFuzzer.
@Suite struct CorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Corpus")

    static func inputs(_ target: String) -> [URL] {
        let dir = corpus.appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTarget.all.map(\.name))
    func replay(_ name: String) throws {
        let target = try #require(FuzzTarget.named(name))
        let files = Self.inputs(name)
        #expect(files.contains { $0.lastPathComponent.hasPrefix("seed-") }, "no seeds for \(name)")
        for file in files {
            let data = try Data(contentsOf: file)
            do { try target.run(data) } catch {
                Issue.record("\(name)/\(file.lastPathComponent): \(error)")
            }
        }
    }

    /// The seed generator still makes inputs the targets accept (and that are in the corpus).
    @Test func seedsPass() throws {
        for (name, seeds) in try FuzzSeeds.all() {
            let target = try #require(FuzzTarget.named(name))
            #expect(!seeds.isEmpty)
            for seed in seeds {
                do { try target.run(Data(seed.bytes)) } catch { Issue.record("seed \(name)/\(seed.name): \(error)") }
            }
        }
        #expect(Set(try FuzzSeeds.all().keys) == Set(FuzzTarget.all.map(\.name)))
    }
}

/// Inputs the fuzz targets found that once failed, each with what it showed (the files are
/// also in the corpus; these name the finding).
@Suite struct FuzzFindingTests {
    func input(_ target: String, _ file: String) throws -> Data {
        try Data(contentsOf: CorpusReplayTests.corpus.appendingPathComponent(target).appendingPathComponent(file))
    }

    /// A protocol error (bad request magic) right after a pipelined handshake: the server closed
    /// at once and threw away the unflushed replies to NBD_OPT_STRUCTURED_REPLY and NBD_OPT_GO.
    @Test func protocolErrorFlushesEarlierReplies() throws {
        try fuzzNBDTransmission(try input("nbd-transmission", "seed-bad-magic"))
        // The same with every handshake message in its own piece.
        var d = try input("nbd-transmission", "seed-bad-magic")
        d[1] = 1
        try fuzzNBDTransmission(d)
    }
}

extension FuzzFindingTests {
    /// `hsp١٢٣` (Arabic-Indic digits) was accepted as a hot spare pool name: the check used
    /// `Character.isNumber`, which is true for every script's digits.
    @Test func poolNamesTakeASCIIDigitsOnly() throws {
        #expect(!VolumeRules.validPoolName("hsp\u{661}\u{662}\u{663}"))
        #expect(!VolumeRules.validPoolName("hsp\u{FF11}23"))
        #expect(VolumeRules.validPoolName("hsp123"))
        try fuzzNames(try input("names", "crash-arabic-indic-digits-pool"))
    }
}

extension FuzzFindingTests {
    /// `5K` with U+212A KELVIN SIGN was read as 5 KiB: the unit was looked up after
    /// `lowercased()`, which maps the Kelvin sign to `k`.
    @Test func sizeUnitsAreASCII() throws {
        #expect(throws: UserError.self) { try SizeParser.parse("5\u{212A}") }
        #expect(throws: UserError.self) { try SizeParser.parse("\u{661}k") }
        #expect(try SizeParser.parse(" 5K ") == 5 << 10)
        try fuzzSize(try input("size", "crash-kelvin-sign-unit"))
    }
}
