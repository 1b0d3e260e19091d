#!/usr/bin/env python3
"""loadgen.py: holds many TCP connections open to a server on 127.0.0.1, for
tests/faults/load.bats.

Usage: loadgen.py --port PORT --conns N [--mode idle|slow|mixed]
                  [--seconds S] [--max-opens M] [--reopen-rate R]
                  [--byte-every S] [--ready FILE] [--stop FILE]

Opens N connections at once and keeps N open: one the server closes (or
resets) is opened again, at most R a second, up to M openings in all. "idle"
connections send nothing; "slow" ones (slowloris) send a request head that
never ends, one byte every --byte-every seconds; "mixed" makes every other
one slow. Writes FILE --ready once each of the N has been established.
Stops after S seconds or once FILE --stop exists, closes everything, and
prints one JSON object:

  {"conns": N, "open_max": ..., "opens": ..., "closed_by_server": ...,
   "connect_errors": ..., "bytes_sent": ..., "status": {"408": n, ...},
   "seconds": ...}

open_max is the most connections established at once and not yet seen
closed by the server; status counts the status codes of the responses
received (a slow client is answered 408 at the server's head timeout; a
refused one 503).
Exit status: 0, or 2 when it cannot get N descriptors.
"""
import argparse
import collections
import errno
import json
import os
import resource
import selectors
import socket
import sys
import time

HEAD = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n"
FIELD = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
TICK = 0.02  # seconds between rounds of slow bytes


class Conn:
    """One client connection: its socket and what it has sent and got."""

    __slots__ = ("sock", "slow", "connected", "sent", "next_at", "got")

    def __init__(self, sock, slow, start):
        self.sock = sock
        self.slow = slow
        self.connected = False
        self.sent = 0
        self.next_at = start
        self.got = b""


def head_byte(k):
    """The k-th byte of the endless slow request head."""
    if k < len(HEAD):
        return HEAD[k:k + 1]
    k = (k - len(HEAD)) % len(FIELD)
    return FIELD[k:k + 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, required=True)
    ap.add_argument("--mode", choices=("idle", "slow", "mixed"), default="idle")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--max-opens", type=int, default=10000)
    ap.add_argument("--reopen-rate", type=float, default=500.0)
    ap.add_argument("--byte-every", type=float, default=0.5)
    ap.add_argument("--ready")
    ap.add_argument("--stop")
    a = ap.parse_args()

    need = a.conns + 32
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.stderr.write("loadgen: %d descriptors needed, the hard limit is %d\n" % (need, hard))
            return 2
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    sel = selectors.DefaultSelector()
    st = {"conns": a.conns, "open_max": 0, "opens": 0, "closed_by_server": 0,
          "connect_errors": 0, "bytes_sent": 0, "status": {}}
    conns = set()
    start = time.monotonic()
    deadline = start + a.seconds
    ready = False
    n_open = [0]  # connections established and not yet seen closed
    once = set()  # the slots (0..N-1) established at least once
    reopen = collections.deque()  # slots to open again
    budget = [0.0, start]  # reopenings allowed now, and when it was computed

    def open_one(i):
        if st["opens"] >= a.max_opens:
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        st["opens"] += 1
        rc = s.connect_ex(("127.0.0.1", a.port))
        if rc not in (0, errno.EINPROGRESS):
            st["connect_errors"] += 1
            s.close()
            return
        slow = a.mode == "slow" or (a.mode == "mixed" and i % 2 == 1)
        # slow ones start at spread-out times, so that bytes trickle evenly
        c = Conn(s, slow, time.monotonic() + (i % 50) * a.byte_every / 50)
        conns.add(c)
        sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ, (c, i))

    def drop(c, by_server):
        if c.connected:
            n_open[0] -= 1
        if by_server:
            st["closed_by_server"] += 1
            if c.got.startswith(b"HTTP/1.1 "):
                code = c.got[9:12].decode("ascii", "replace")
                st["status"][code] = st["status"].get(code, 0) + 1
        sel.unregister(c.sock)
        c.sock.close()
        conns.discard(c)

    for i in range(a.conns):
        open_one(i)

    while True:
        now = time.monotonic()
        if now >= deadline or (a.stop and os.path.exists(a.stop)):
            break
        for key, ev in sel.select(TICK):
            c, i = key.data
            if c not in conns:
                continue
            if not c.connected and ev & selectors.EVENT_WRITE:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    st["connect_errors"] += 1
                    drop(c, False)
                    reopen.append(i)
                    continue
                c.connected = True
                n_open[0] += 1
                once.add(i)
                st["open_max"] = max(st["open_max"], n_open[0])
                sel.modify(c.sock, selectors.EVENT_READ, (c, i))
            if ev & selectors.EVENT_READ:
                try:
                    data = c.sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    if len(c.got) < 64:
                        c.got += data[:64]
                    continue
                drop(c, True)
                reopen.append(i)
        now = time.monotonic()
        budget[0] = min(budget[0] + (now - budget[1]) * a.reopen_rate, a.reopen_rate)
        budget[1] = now
        while reopen and budget[0] >= 1:
            budget[0] -= 1
            open_one(reopen.popleft())
        if not ready and len(once) == a.conns and a.ready:
            with open(a.ready + ".tmp", "w") as f:
                f.write("%d\n" % len(once))
            os.rename(a.ready + ".tmp", a.ready)
            ready = True
        now = time.monotonic()
        for c in list(conns):
            if not (c.slow and c.connected and now >= c.next_at):
                continue
            try:
                st["bytes_sent"] += c.sock.send(head_byte(c.sent))
                c.sent += 1
            except BlockingIOError:
                pass
            except OSError:
                pass  # the server closed it: the read side will tell
            c.next_at = now + a.byte_every

    for c in list(conns):
        sel.unregister(c.sock)
        c.sock.close()
    st["seconds"] = round(time.monotonic() - start, 2)
    print(json.dumps(st, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
