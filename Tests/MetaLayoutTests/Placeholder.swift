import Testing

@Test func placeholder_MetaLayoutTests() { #expect(Bool(true)) }
