import Testing

@Test func placeholder_MetaDBTests() { #expect(Bool(true)) }
