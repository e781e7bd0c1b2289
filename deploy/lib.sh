# Shared helpers for deploy/local, deploy/test and bench/. Source it; it defines functions only.

# Debian packages the project needs at run time and for its tests (iproute2: ip netns, veth and
# tc for the several-hosts test).
SESSION_STORE_PACKAGES=(libfcgi-dev libfcgi-bin libhiredis-dev libssl-dev redis-server redis-sentinel redis-tools nginx-light spawn-fcgi curl wrk python3 openssl iproute2)

log() { printf '%s\n' "$*" >&2; }

# Installs whichever of the named Debian packages are missing (apt-get update only if needed).
ensure_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    log "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# True when process $1 runs. A process that has exited but that its parent has not reaped yet
# (a zombie: a daemon killed with SIGKILL, until init collects it) does not count.
process_running() {
    local pid=$1 state
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

# True when the pid in file $1 names a running process.
pid_alive() {
    local file=$1
    [ -s "$file" ] || return 1
    process_running "$(cat "$file")"
}

# Sends signal $2 (default TERM) to the pid in file $1 and waits up to 10 s for it to exit,
# then KILLs it. Removes the pid file.
stop_pid_file() {
    local file=$1 signal=${2:-TERM} pid
    if pid_alive "$file"; then
        pid=$(cat "$file")
        kill "-$signal" "$pid" 2>/dev/null || true
        for _ in $(seq 100); do process_running "$pid" || break; sleep 0.1; done
        if process_running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$file"
}

# Waits up to $2 seconds (default 20) until URL $1 answers 200.
wait_http_ok() {
    local url=$1 seconds=${2:-20}
    for _ in $(seq $((seconds * 10))); do
        [ "$(curl -sk -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# True when something already accepts connections on TCP port $1 of 127.0.0.1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits up to $2 seconds until TCP port $1 on 127.0.0.1 accepts connections.
wait_port() {
    local port=$1 seconds=${2:-10}
    for _ in $(seq $((seconds * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Waits up to $2 seconds until the Unix socket at path $1 exists (spawn-fcgi creates it
# listening, before it starts the application).
wait_socket() {
    local path=$1 seconds=${2:-10}
    for _ in $(seq $((seconds * 10))); do
        [ -S "$path" ] && return 0
        sleep 0.1
    done
    return 1
}

# Swift lives in /opt/swift on these machines; make sure it is on PATH.
ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        [ -x /opt/swift/usr/bin/swift ] && export PATH="$PATH:/opt/swift/usr/bin"
    fi
    command -v swift >/dev/null 2>&1 || { log "swift is not installed (expected on PATH or in /opt/swift)"; return 1; }
}
