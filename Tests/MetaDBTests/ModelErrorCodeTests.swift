import Foundation
import MetaDB
import MetaDevices
import MetaModel
import Testing

/// A transition the model refuses keeps its kind through a store commit and becomes an
/// error code (and so `metactl`'s exit status), and the store is unchanged.
@Suite struct ModelErrorCodeTests {
    @Test func refusedEventsKeepTheirCode() {
        let store = InMemoryConfigStore(SetConfig(setName: "s", hotSparePools: [HotSparePoolRecord(name: "hsp001")]))
        let cases: [(SetEvent, ErrorCode)] = [
            (.cleared(volume: "d9"), .notFound),
            (.growCancelled(volume: "d9"), .notFound),
            (.sparesRemoved(pool: "hsp002", devices: [], deletePool: true), .notFound),
        ]
        for (event, code) in cases {
            do {
                try store.apply(event)
                Issue.record("\(event) was accepted")
            } catch {
                #expect(ErrorCode.of(error) == code, "\(event): \(error)")
            }
        }
        #expect(store.commitCount == 0)
    }
}
