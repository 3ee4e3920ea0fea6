import Foundation
import MetaCommands
import MetaControl
import MetaDB
import MetaModel

/// Control requests, as the control socket reads them: the text up to the first newline. A
/// decoded request re-encodes to a line that decodes to the same request, canonically.
@Sendable public func fuzzControl(_ data: Data) throws(FuzzFailure) {
    let line = data.prefix { $0 != 0x0A }
    guard let request = try? ControlRequest.decode(line: line) else { return }
    let encoded: [UInt8]
    do { encoded = try request.encodedLine() } catch { throw FuzzFailure("a decoded request does not encode: \(error)") }
    try check(!encoded.contains(0x0A), "an encoded request contains a newline")
    guard let back = try? ControlRequest.decode(line: encoded) else {
        throw FuzzFailure("a decoded request re-encodes to a line that does not decode")
    }
    try check(back == request, "request round trip changed it: \(request) -> \(back)")
    _ = request.isMutating
}

/// Size arguments: the input as UTF-8 text. An accepted size is the number times its unit
/// (checked against an independent reading of the text), and every size the status output
/// prints as an argument parses back to itself.
@Sendable public func fuzzSize(_ data: Data) throws(FuzzFailure) {
    let text = String(decoding: data, as: UTF8.self)
    if let bytes = try? SizeParser.parse(text) {
        // Independent reading: ASCII spaces/tabs around ASCII digits and an optional unit.
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let scalars = Array(trimmed.unicodeScalars)
        var digits = scalars
        var unit: UInt64 = 1
        if let last = scalars.last, !("0"..."9").contains(last) {
            digits.removeLast()
            switch last {
            case "b", "B": unit = 512
            case "k", "K": unit = 1 << 10
            case "m", "M": unit = 1 << 20
            case "g", "G": unit = 1 << 30
            case "t", "T": unit = 1 << 40
            default: throw FuzzFailure("size '\(text)' accepted with unit '\(last)'")
            }
        }
        try check(!digits.isEmpty && digits.allSatisfy { ("0"..."9").contains($0) },
                  "size '\(text)' accepted but its number is not ASCII digits")
        guard let n = UInt64(String(String.UnicodeScalarView(digits))) else {
            throw FuzzFailure("size '\(text)' accepted but its number is out of range")
        }
        let (expected, overflow) = n.multipliedReportingOverflow(by: unit)
        try check(!overflow && expected == bytes, "size '\(text)' parsed as \(bytes), expected \(n) × \(unit)")
    }
    // Printed sizes parse back (the status output prints multiples of 512 bytes).
    var value: UInt64 = 0
    for b in data.prefix(8) { value = value << 8 | UInt64(b) }
    value = value / 512 * 512
    let printed = StatusFormatter.sizeArgument(value)
    guard let back = try? SizeParser.parse(printed) else { throw FuzzFailure("printed size '\(printed)' does not parse") }
    try check(back == value, "printed size '\(printed)' parses as \(back), not \(value)")
}

/// Names: the input as UTF-8 text, checked against the documented grammars, read byte by byte:
/// volumes `[a-z][a-z0-9_.-]{0,62}`, pools `hsp[0-9]{3}`, sets `[a-z0-9][a-z0-9_.-]{0,62}`.
@Sendable public func fuzzNames(_ data: Data) throws(FuzzFailure) {
    let text = String(decoding: data, as: UTF8.self)
    let b = Array(text.utf8)
    func lower(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7a }
    func digit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    func punct(_ c: UInt8) -> Bool { c == 0x5f || c == 0x2e || c == 0x2d }

    let volume = !b.isEmpty && b.count <= 63 && lower(b[0]) && b.allSatisfy { lower($0) || digit($0) || punct($0) }
    try check(VolumeRules.validName(text) == volume, "validName('\(text)') should be \(volume)")

    let pool = b.count == 6 && b.starts(with: Array("hsp".utf8)) && b[3...].allSatisfy(digit)
    try check(VolumeRules.validPoolName(text) == pool, "validPoolName('\(text)') should be \(pool)")

    let set = !b.isEmpty && b.count <= Label.maxSetNameBytes && (lower(b[0]) || digit(b[0]))
        && b.allSatisfy { lower($0) || digit($0) || punct($0) }
    let accepted = (try? SetDatabase.validateSetName(text)) != nil
    try check(accepted == set, "set name '\(text)' accepted: \(accepted), should be \(set)")
}
