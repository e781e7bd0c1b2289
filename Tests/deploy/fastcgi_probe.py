"""One FastCGI GET straight to an instance, the way nginx sends it (a responder request, params,
empty stdin), over TCP from whatever network namespace the calling thread is in.
"""
import socket
import struct

VERSION, RESPONDER = 1, 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 3, 4, 5, 6


def _record(kind, content, request_id=1):
    return struct.pack("!BBHHBx", VERSION, kind, request_id, len(content), 0) + content


def _pair(name, value):
    name, value = name.encode(), value.encode()
    def length(n):
        return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)
    return length(len(name)) + length(len(value)) + name + value


def get(host, port, path, timeout=5.0, extra_params=None):
    """Returns (status, body) for `GET path`, or None when the instance closed the connection
    without answering (a refused peer). `extra_params` are added to the FastCGI params."""
    params = {"REQUEST_METHOD": "GET", "DOCUMENT_URI": path, "REQUEST_URI": path, "SCRIPT_NAME": path,
              "SERVER_PROTOCOL": "HTTP/1.1", "QUERY_STRING": ""}
    params.update(extra_params or {})
    content = b"".join(_pair(k, v) for k, v in params.items())
    message = (_record(BEGIN_REQUEST, struct.pack("!HB5x", RESPONDER, 0)) + _record(PARAMS, content)
               + _record(PARAMS, b"") + _record(STDIN, b""))
    with socket.create_connection((host, port), timeout=timeout) as connection:
        try:
            connection.sendall(message)
            data = b""
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            return None
    output = b""
    ended = False
    offset = 0
    while offset + 8 <= len(data):
        _, kind, _, length, padding = struct.unpack_from("!BBHHB", data, offset)
        body = data[offset + 8: offset + 8 + length]
        offset += 8 + length + padding
        if kind == STDOUT:
            output += body
        elif kind == END_REQUEST:
            ended = True
    if not ended:
        return None
    head, _, body = output.partition(b"\r\n\r\n")
    status = 200
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"status:"):
            status = int(line.split()[1])
    return status, body.decode(errors="replace")
