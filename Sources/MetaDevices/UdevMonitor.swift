#if canImport(Glibc)
import Glibc
#endif
import CUdev
import Foundation
import MetaSystem

/// One block-device uevent.
public struct BlockDeviceEvent: Sendable, Equatable {
    /// `add`, `remove`, `change`, …
    public var action: String
    /// The device node, e.g. `/dev/loop3` (from the event's DEVNAME).
    public var devnode: String?
    public var major: UInt32
    public var minor: UInt32

    public init(action: String, devnode: String?, major: UInt32, minor: UInt32) {
        self.action = action; self.devnode = devnode; self.major = major; self.minor = minor
    }

    /// Whether `path` is this event's device: a block device node with its major:minor.
    public func concerns(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFBLK else { return false }
        return gnu_dev_major(st.st_rdev) == major && gnu_dev_minor(st.st_rdev) == minor
    }
}

/// Receives the kernel's block-device uevents (libudev's monitor on the `kernel` source:
/// the netlink messages the kernel itself sends, so it works without a udev daemon) on a
/// thread of its own and hands each to a handler.
public final class UdevMonitor: @unchecked Sendable {
    private let udev: OpaquePointer
    private let monitor: OpaquePointer
    private let stopPipe: [Int32]
    private var thread: Thread?
    private let ended = DispatchSemaphore(value: 0)

    /// Opens the monitor; nil when the kernel's uevent socket cannot be opened (no
    /// permission, no netlink in this environment).
    public init?() {
        guard let u = udev_new() else { return nil }
        guard let m = udev_monitor_new_from_netlink(u, "kernel") else { udev_unref(u); return nil }
        guard udev_monitor_filter_add_match_subsystem_devtype(m, "block", nil) >= 0,
              udev_monitor_enable_receiving(m) >= 0 else {
            udev_monitor_unref(m); udev_unref(u); return nil
        }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { udev_monitor_unref(m); udev_unref(u); return nil }
        for f in fds { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
        udev = u
        monitor = m
        stopPipe = fds
    }

    /// Starts delivering events to `handler` (on the monitor's thread, in order).
    public func start(_ handler: @escaping @Sendable (BlockDeviceEvent) -> Void) {
        let fd = udev_monitor_get_fd(monitor)
        let stopFD = stopPipe[0]
        let t = Thread { [self] in
            defer { ended.signal() }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
            while true {
                let n = retryingInterrupted { poll(&fds, 2, -1) }
                if n < 0 { return }
                if fds[1].revents != 0 { return }
                guard fds[0].revents != 0, let dev = udev_monitor_receive_device(monitor) else { continue }
                defer { udev_device_unref(dev) }
                let action = udev_device_get_action(dev).map { String(cString: $0) } ?? ""
                let node = udev_device_get_devnode(dev).map { String(cString: $0) }
                let num = udev_device_get_devnum(dev)
                handler(BlockDeviceEvent(action: action, devnode: node, major: gnu_dev_major(num), minor: gnu_dev_minor(num)))
            }
        }
        t.name = "metactl-udev"
        thread = t
        t.start()
    }

    /// Stops the thread and waits (up to 10 s) until the event in hand, if any, is handled.
    public func stop() {
        var b: UInt8 = 1
        _ = write(stopPipe[1], &b, 1)
        if thread != nil { _ = ended.wait(timeout: .now() + 10) }
    }

    deinit {
        close(stopPipe[0]); close(stopPipe[1])
        udev_monitor_unref(monitor)
        udev_unref(udev)
    }
}

/// Whether two descriptors are on the same device.
public enum DeviceIdentity {
    /// Same block device (`st_rdev`), or for regular files the same file (`st_dev`/`st_ino`).
    public static func sameNode(_ a: Int32, _ b: Int32) -> Bool {
        var sa = stat(), sb = stat()
        guard fstat(a, &sa) == 0, fstat(b, &sb) == 0 else { return false }
        let type = sa.st_mode & S_IFMT
        guard type == sb.st_mode & S_IFMT else { return false }
        return type == S_IFBLK ? sa.st_rdev == sb.st_rdev : (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
    }
}
