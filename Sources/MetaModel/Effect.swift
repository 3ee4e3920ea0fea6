import Foundation

/// Work that a transition asks for once its commit has landed. Transitions are pure; the
/// coordinator that committed them runs their effects.
public enum Effect: Sendable, Hashable {
    /// The device's record left the configuration: wipe its label and forget it.
    case releaseDevice(UUID)
}
