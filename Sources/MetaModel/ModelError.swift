/// Why a transition was refused. A refused transition leaves the configuration unchanged.
public struct ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of refusal this is.
    public enum Code: String, Sendable, Codable {
        /// The volume, column, pool or device named does not exist.
        case notFound
        /// The transition does not apply to the current state.
        case invalidState
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { message }
}
