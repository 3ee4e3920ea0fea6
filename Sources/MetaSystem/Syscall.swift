#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Calls `call`, a system call that returns -1 and sets `errno` when it fails, again for as
/// long as it fails with `EINTR` (a signal interrupted it before it did anything): the one
/// retry loop for interrupted system calls. Returns the last result; after a failure `errno`
/// still holds its cause.
@inlinable @inline(__always)
public func retryingInterrupted<T: FixedWidthInteger & SignedInteger>(_ call: () -> T) -> T {
    while true {
        let result = call()
        if result != -1 || errno != EINTR { return result }
    }
}
