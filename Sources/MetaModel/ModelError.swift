/// Why a transition was refused. A refused transition leaves the configuration unchanged.
public struct ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of refusal this is.
    public enum Kind: String, Sendable, Codable {
        /// The volume, column, pool or device named does not exist.
        case notFound
        /// The thing is in use (a hot spare standing in, a grow pending).
        case inUse
        /// The transition does not apply to the current state.
        case invalidState
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}
