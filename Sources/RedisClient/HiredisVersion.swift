import CHiredis

/// The hiredis this build was compiled against, as `major.minor.patch` (for `--version` and
/// the `session_build_info` metric; Debian 12's libhiredis-dev is 0.14).
public let hiredisVersion = "\(HIREDIS_MAJOR).\(HIREDIS_MINOR).\(HIREDIS_PATCH)"
