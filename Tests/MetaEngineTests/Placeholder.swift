import Testing

@Test func placeholder_MetaEngineTests() { #expect(Bool(true)) }
