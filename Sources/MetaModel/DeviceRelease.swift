import Foundation

extension SetConfig {
    /// Whether anything in the configuration refers to a device: a volume's component slot
    /// (its device or the hot spare standing in), a hot spare pool, an interrupted grow, or
    /// the target or source of background work.
    public func isReferenced(_ uuid: UUID) -> Bool {
        volumes.contains { v in
            v.allComponents.contains { $0.device == uuid || $0.hotSpare == uuid }
                || v.pendingGrow?.devices.contains(uuid) == true
                || v.resync?.target == uuid || v.resync?.source == uuid || v.writeLog?.device == uuid
        } || hotSparePools.contains { $0.spares.contains { $0.device == uuid } }
    }

    /// When a device that nothing refers to any more leaves the set.
    public enum ReleaseTiming: Sendable {
        /// Now: its record is dropped and its label is wiped once the commit lands
        /// (``Effect/releaseDevice(_:)``). For commands that have already closed or reloaded
        /// every engine that used the device.
        case now
        /// Once no engine uses it: its role becomes ``DeviceRole/unused`` and the
        /// coordinator's sweep (``SetEvent/unusedDevicesReleased``) releases it after the
        /// engines are reloaded. For changes made while an engine may still write to it.
        case whenIdle
    }

    /// The one rule for a device that a change stopped using. Nothing happens while anything
    /// still refers to it (``isReferenced(_:)``); a device holding state-database replicas
    /// stays as a replica holder; any other device is released (``ReleaseTiming``).
    /// Returns the effects to run after the commit.
    public mutating func retire(_ uuid: UUID, _ timing: ReleaseTiming) -> [Effect] {
        guard !isReferenced(uuid), let i = devices.firstIndex(where: { $0.uuid == uuid }) else { return [] }
        if devices[i].replicaCount > 0 {
            devices[i].role = .replica
            return []
        }
        switch timing {
        case .whenIdle:
            devices[i].role = .unused
            return []
        case .now:
            devices.remove(at: i)
            return [.releaseDevice(uuid)]
        }
    }

    /// Sets the state of a hot spare in every pool that holds it.
    public mutating func setSpareState(_ uuid: UUID, _ state: HotSpareState) {
        for p in hotSparePools.indices {
            for s in hotSparePools[p].spares.indices where hotSparePools[p].spares[s].device == uuid {
                hotSparePools[p].spares[s].state = state
            }
        }
    }
}
