import Foundation
import MetaDB
import MetaModel
import MetaDevices

/// Which `metactl replace` of a RAID-5 column is accepted, decided from the configuration:
/// the one source for ``SetManager``'s replace (which runs these checks before any device
/// check) and for the `Invoke:` line of `status` (built by trying the same checks), so an
/// Invoke line only ever names commands that `replace` accepts, in an order it accepts them.
public enum ReplaceRules {
    /// Refused before anything else: while a Last Erred column exists, other columns are
    /// replaced only after it (or with --force).
    static func lastErredFirst(_ vol: VolumeRecord, column c: Int, force: Bool) -> OperationError? {
        let col = vol.columns[c]
        if vol.derivedState == .lastErred && vol.columns.contains(where: { $0.state == .lastErred }) && !force
            && col.state != .lastErred {
            return OperationError("\(vol.name): is Last Erred (data may be lost); re-enable the Last Erred column first (replace \(vol.name) --enable DEV --force), or use --force", code: .dataLost)
        }
        return nil
    }

    /// Refused by the states of the column and the others: `enable` is `replace --enable`,
    /// otherwise a replace with a new device; `oldReadable` says whether the old device
    /// can be copied from (Okay and present).
    static func stateRefusal(_ vol: VolumeRecord, column c: Int, oldName: String, enable: Bool, force: Bool,
                             oldReadable: Bool) -> OperationError? {
        let col = vol.columns[c]
        // Without the other columns that are not Okay, is there still a way to every block?
        // (RAID-5: only if none; RAID-6: if at most one.)
        let othersErred = vol.columns.indices.filter { $0 != c && vol.columns[$0].state != .okay }.count >= vol.type.parityCount
        if enable {
            switch col.state {
            case .okay, .initializing, .resyncing:
                return OperationError("\(oldName): is \(col.state.rawValue) in \(vol.name); nothing to enable", code: .invalidArgument)
            case .lastErred:
                if othersErred && !force {
                    return OperationError("\(vol.name): \(oldName) is Last Erred while another column is erred: its data is the best left; use --force to trust it", code: .dataLost)
                }
            case .maintenance, .unavailable:
                if othersErred {
                    return OperationError("\(vol.name): \(otherColumns(vol)) not Okay; regenerating \(oldName) needs \(needs(vol))", code: .dataLost)
                }
            }
            return nil
        }
        if !oldReadable && othersErred {
            return OperationError("\(vol.name): \(otherColumns(vol)) not Okay; regenerating \(oldName) needs \(needs(vol))", code: .dataLost)
        }
        return nil
    }

    private static func otherColumns(_ vol: VolumeRecord) -> String {
        vol.type.parityCount > 1 ? "\(vol.type.parityCount) other columns are" : "another column is"
    }

    private static func needs(_ vol: VolumeRecord) -> String {
        vol.type.parityCount > 1 ? "all but one of the other columns" : "every other column"
    }

    /// The `Invoke:` line of a RAID-5 volume: the commands, in order, that bring it back to
    /// Okay, each one accepted by ``lastErredFirst(_:column:force:)`` and
    /// ``stateRefusal(_:column:oldName:enable:force:oldReadable:)`` in the state the previous
    /// ones leave (nil when nothing is to be done). A column whose failed device a hot spare
    /// stands in for is named too: replacing it copies the data from the spare and returns
    /// the spare to its pool.
    public static func invoke(_ volume: VolumeRecord, setName: String, path: (UUID) -> String,
                              present: (UUID) -> Bool) -> String? {
        guard volume.type.hasColumns else { return nil }
        let replace = setName == "local" ? "metactl replace" : "metactl replace -s \(setName)"
        var vol = volume
        var steps: [String] = []
        while steps.count <= vol.columns.count {
            let bad = vol.columns.indices.filter { vol.columns[$0].state.isErred }
            if bad.isEmpty { break }
            // Candidates in the order an administrator would want them.
            var candidates: [(column: Int, enable: Bool, force: Bool, text: String)] = []
            for c in bad where vol.columns[c].state == .unavailable && present(vol.columns[c].activeDevice) {
                candidates.append((c, true, false, "\(replace) \(vol.name) --enable \(path(vol.columns[c].device))"))
            }
            for c in bad where vol.columns[c].state != .lastErred {
                candidates.append((c, false, false, "\(replace) \(vol.name) \(path(vol.columns[c].device)) <new device>"))
            }
            for c in bad where vol.columns[c].state == .lastErred {
                candidates.append((c, true, false, "\(replace) \(vol.name) --enable \(path(vol.columns[c].device))"))
            }
            for c in bad where vol.columns[c].state == .lastErred {
                candidates.append((c, true, true, "\(replace) \(vol.name) --enable \(path(vol.columns[c].device)) --force"))
            }
            guard let step = candidates.first(where: { cand in
                lastErredFirst(vol, column: cand.column, force: cand.force) == nil
                    && stateRefusal(vol, column: cand.column, oldName: path(vol.columns[cand.column].device),
                                    enable: cand.enable, force: cand.force, oldReadable: false) == nil
            }) else { break }
            steps.append(step.text)
            vol.columns[step.column].state = .okay
            vol.resync = nil
        }
        if steps.isEmpty && vol.resync == nil,
           let c = vol.columns.firstIndex(where: { $0.state == .okay && $0.hotSpare != nil }) {
            steps.append("\(replace) \(vol.name) \(path(vol.columns[c].device)) <new device>")
        }
        return steps.isEmpty ? nil : steps.joined(separator: "; then ")
    }
}
