import Testing

@Test func placeholder_MetaNBDTests() { #expect(Bool(true)) }
