/// SVM's rules for a RAID-5 column that fails, as pure functions of what the caller knows.
///
/// "Others erred" means: another column of the volume is `Maintenance`, `Last Erred`,
/// `Unavailable`, or is being rebuilt (`Resyncing`): the volume has no redundancy left
/// without this column.
public enum ColumnHealth {
    /// The state a column takes when an I/O to it fails, or nil when its state does not
    /// change (it is already out of use, or it is Last Erred and still the only source).
    ///
    /// - A healthy column fails into `Maintenance`: its data is derived from the others.
    /// - With redundancy already gone it becomes `Last Erred`: it is still read where it is
    ///   the only source, and writes that would need it fail.
    /// - A column being rebuilt is never Last Erred (its data is not there yet): `Maintenance`.
    /// - A Last Erred column whose partners are healthy again is an ordinary column, so it
    ///   fails into `Maintenance` (one failure, not a lost volume).
    public static func stateAfterFailure(current: ComponentState, othersErred: Bool) -> ComponentState? {
        switch current {
        case .maintenance, .unavailable: return nil
        case .lastErred: return othersErred ? nil : .maintenance
        case .resyncing: return .maintenance
        case .okay, .initializing: return othersErred ? .lastErred : .maintenance
        }
    }

    /// Whether a `Last Erred` column is used like an ordinary (`Okay`) column: once every other
    /// column is healthy again, it is.
    public static func lastErredIsOrdinary(othersErred: Bool) -> Bool { !othersErred }
}
