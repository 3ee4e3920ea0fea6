import Testing

@Test func placeholder_MetaDevicesTests() { #expect(Bool(true)) }
