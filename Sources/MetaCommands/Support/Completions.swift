/// Shell commands the completion scripts run to offer the names of the set's volumes and hot
/// spare pools (from `metactl status -c`, whose first column is the name and second the
/// type, `h` for a pool). They honour `-s SET` only as the default set; errors are silent.
enum Completions {
    /// Volume names.
    static let volumes = "metactl status -c 2>/dev/null | awk '$2 != \"h\" {print $1}'"
    /// Hot spare pool names.
    static let pools = "metactl status -c 2>/dev/null | awk '$2 == \"h\" {print $1}'"
    /// Both.
    static let names = "metactl status -c 2>/dev/null | awk '{print $1}'"
}
