import Testing

@Test func placeholder_MetaCommandsTests() { #expect(Bool(true)) }
