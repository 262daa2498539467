#!/usr/bin/env python3
# A stack under test for kasim conform --stack: Python's socket module on this
# machine's kernel, told by its environment what to do. Run it with
#   sudo kasim conform --stack "python3 internal/conform/testdata/keepalive_client.py"
import errno, os, socket
host, port = os.environ["KASIM_CONNECT"].rsplit(":", 1)
s = socket.socket()
for name, level in [("TCP_KEEPIDLE", socket.IPPROTO_TCP), ("TCP_KEEPINTVL", socket.IPPROTO_TCP),
                    ("TCP_KEEPCNT", socket.IPPROTO_TCP), ("TCP_USER_TIMEOUT", socket.IPPROTO_TCP),
                    ("SO_KEEPALIVE", socket.SOL_SOCKET)]:
    if "KASIM_" + name in os.environ:
        s.setsockopt(level, getattr(socket, name), int(os.environ["KASIM_" + name]))
s.connect((host, int(port)))
try:
    while s.recv(65536):  # keep a read pending, as kasim's hosts do
        pass
except OSError as e:
    print("error recv", errno.errorcode[e.errno], flush=True)
