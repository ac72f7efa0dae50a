#!/usr/bin/env bash
# Print a currently free TCP port on 127.0.0.1 (the OS picks it; another process may
# still grab it before you bind, so callers should tolerate a failed start).
set -euo pipefail
exec python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
