import CLinux

/// Open file descriptors of this process (listener, FastCGI connections, Redis connections,
/// log): `nil` where `/proc` cannot be read. For the `process_open_fds` metric.
public func openDescriptorCount() -> Int? {
    let count = session_open_descriptor_count()
    return count >= 0 ? Int(count) : nil
}
