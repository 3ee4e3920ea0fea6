import Synchronization

/// An error an export returns from an I/O call; the server sends ``code`` to the client as the NBD error value.
///
/// The codes are the NBD protocol's portable error values (proto.md "Error values"), which match Linux errno.
public struct NBDIOError: Error, Sendable, CustomStringConvertible, Equatable {
    /// NBD error values (the wire value is ``rawValue``).
    public enum Code: UInt32, Sendable, CustomStringConvertible {
        /// `NBD_EPERM`: operation not permitted (e.g. a write to a read-only export).
        case perm = 1
        /// `NBD_EIO`: input/output error.
        case io = 5
        /// `NBD_ENOMEM`: cannot allocate memory.
        case noMemory = 12
        /// `NBD_EINVAL`: invalid argument (bad offset, length, flag or command).
        case invalid = 22
        /// `NBD_ENOSPC`: no space left (a write beyond the end of the export).
        case noSpace = 28
        /// `NBD_EOVERFLOW`: value too large.
        case overflow = 75
        /// `NBD_ENOTSUP`: operation not supported.
        case notSupported = 95
        /// `NBD_ESHUTDOWN`: the server is shutting down.
        case shutdown = 108

        public var description: String {
            switch self {
            case .perm: "EPERM"
            case .io: "EIO"
            case .noMemory: "ENOMEM"
            case .invalid: "EINVAL"
            case .noSpace: "ENOSPC"
            case .overflow: "EOVERFLOW"
            case .notSupported: "ENOTSUP"
            case .shutdown: "ESHUTDOWN"
            }
        }
    }

    /// The NBD error value sent to the client.
    public var code: Code
    /// A human-readable explanation: logged by the server, and sent to clients that negotiated
    /// structured replies (in the error chunk; simple replies carry only ``code``).
    public var message: String

    public init(_ code: Code, _ message: String = "") {
        self.code = code
        self.message = message
    }

    public static func io(_ message: String = "") -> NBDIOError { NBDIOError(.io, message) }
    public static func invalid(_ message: String = "") -> NBDIOError { NBDIOError(.invalid, message) }
    public static func noSpace(_ message: String = "") -> NBDIOError { NBDIOError(.noSpace, message) }
    public static func perm(_ message: String = "") -> NBDIOError { NBDIOError(.perm, message) }
    public static func notSupported(_ message: String = "") -> NBDIOError { NBDIOError(.notSupported, message) }

    public var description: String { message.isEmpty ? code.description : "\(code): \(message)" }
}

/// A block device the NBD server exports under ``name``.
///
/// The server calls the I/O methods from a thread pool (never from an event loop), possibly many at the
/// same time for one export and from several connections, so implementations must be thread-safe and may
/// block. The server has already checked every request against ``sizeBytes`` (as read at the
/// connection's handshake), ``minimumBlockSize`` alignment, ``maximumRequestSize`` and ``readOnly``
/// before calling, so an export only reports its own failures.
///
/// A completed ``write(offset:from:fua:)`` with `fua == false` may sit in a volatile cache; the data
/// must be durable once a later ``flush()`` returns, or as soon as a write with `fua == true` returns.
public protocol NBDExport: AnyObject, Sendable {
    /// The export name clients ask for (`NBD_OPT_GO`, `NBD_OPT_EXPORT_NAME`).
    var name: String { get }
    /// A human-readable description (`NBD_INFO_DESCRIPTION`, `NBD_OPT_LIST`); may be empty.
    var exportDescription: String { get }
    /// The size in bytes; read at each handshake (an export can grow between connections).
    var sizeBytes: UInt64 { get }
    /// Whether writes, trims and write-zeroes are refused (`EPERM`).
    var readOnly: Bool { get }
    /// Smallest addressable unit: requests must be aligned to it (a power of two, 1…65536, e.g. 512).
    var minimumBlockSize: UInt32 { get }
    /// The size at which I/O is efficient (a power of two ≥ max(512, minimum), e.g. 4096 or the interlace).
    var preferredBlockSize: UInt32 { get }
    /// The largest READ/WRITE payload accepted (≥ preferred, e.g. 32 MiB).
    var maximumRequestSize: UInt32 { get }
    /// Whether ``trim(offset:length:fua:)`` is supported (advertised as `NBD_FLAG_SEND_TRIM`).
    var canTrim: Bool { get }
    /// Whether ``writeZeroes(offset:length:fua:noHole:)`` is supported (`NBD_FLAG_SEND_WRITE_ZEROES`).
    var canWriteZeroes: Bool { get }
    /// Whether a flush on one connection covers writes completed on every other connection
    /// (advertised as `NBD_FLAG_CAN_MULTI_CONN`).
    var canMultiConn: Bool { get }

    /// Reads `buffer.count` bytes at `offset` into `buffer`.
    func read(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(NBDIOError)
    /// Writes `buffer` at `offset`; when `fua` is set the data is durable when this returns.
    func write(offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool) throws(NBDIOError)
    /// Makes every completed write durable.
    func flush() throws(NBDIOError)
    /// Discards (`length` bytes at `offset`); later reads return unspecified data (usually zeroes).
    func trim(offset: UInt64, length: UInt64, fua: Bool) throws(NBDIOError)
    /// Writes zeroes; `noHole` asks that the range stays allocated (no hole punched).
    func writeZeroes(offset: UInt64, length: UInt64, fua: Bool, noHole: Bool) throws(NBDIOError)
}

/// The exports a server offers; safe to change while the server runs.
///
/// Either a mutable table (``init()``, ``add(_:)``, ``remove(named:)``) or a view over someone else's
/// table (``init(lookup:list:)``). An empty export name selects the only export when there is exactly one.
public final class NBDExportRegistry: Sendable {
    private enum Source: Sendable {
        case table
        case closures(lookup: @Sendable (String) -> (any NBDExport)?, list: @Sendable () -> [any NBDExport])
    }
    private let source: Source
    private let table = Mutex<[String: any NBDExport]>([:])

    /// An empty, mutable registry.
    public init() { source = .table }

    /// A registry backed by the caller's lookups (``add(_:)``/``remove(named:)`` then have no effect on them).
    public init(lookup: @escaping @Sendable (String) -> (any NBDExport)?,
                list: @escaping @Sendable () -> [any NBDExport]) {
        source = .closures(lookup: lookup, list: list)
    }

    /// A mutable registry holding `exports`.
    public convenience init(_ exports: [any NBDExport]) {
        self.init()
        for e in exports { add(e) }
    }

    /// Adds (or replaces) the export with `export.name`. New connections see it immediately.
    public func add(_ export: any NBDExport) {
        table.withLock { $0[export.name] = export }
    }

    /// Removes the export called `name` (connections already using it keep it). Returns whether it was there.
    @discardableResult
    public func remove(named name: String) -> Bool {
        table.withLock { $0.removeValue(forKey: name) != nil }
    }

    /// Every export, sorted by name.
    public func list() -> [any NBDExport] {
        switch source {
        case .table:
            return table.withLock { Array($0.values) }.sorted { $0.name < $1.name }
        case .closures(_, let list):
            return list()
        }
    }

    /// The export called `name`; the empty name selects the only export when there is exactly one.
    public func lookup(_ name: String) -> (any NBDExport)? {
        let found: (any NBDExport)?
        switch source {
        case .table: found = table.withLock { $0[name] }
        case .closures(let lookup, _): found = lookup(name)
        }
        if let found { return found }
        if name.isEmpty {
            let all = list()
            if all.count == 1 { return all[0] }
        }
        return nil
    }
}
