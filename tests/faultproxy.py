#!/usr/bin/env python3
"""A test-only HTTP proxy that breaks a share of the requests it forwards.

usage: faultproxy.py --upstream HOST:PORT [--rate 0.1] [--stall 5]
                     [--kinds error,drop,stall,reset] [--expired-token]
                     [--seed N] [--stats FILE] [--delay MS] [--fail-parts]
                     [--list-fault no-next|no-name] [--lose-create-only]
                     [--log FILE]

Listens on 127.0.0.1 on a free port and prints the port.  For each request
it picks, with probability --rate, one fault:
  error  answer 500 or 503 SlowDown itself, without forwarding
  drop   forward, then cut the connection halfway through the response body
  stall  forward, send the response headers, then go silent for --stall s
  reset  close the connection without answering
Everything else is forwarded unchanged (Host included, so SigV4 still
verifies) with "Connection: close" towards the server.
--expired-token answers every request that carries x-amz-security-token
with AWS's 400 ExpiredToken error: the gateway's shortest STS session
lasts 15 minutes, too long for a test to wait for, so this stands in for
the moment a token expires.
--fail-parts answers every multipart part upload after the first (an S3
PUT with partNumber >= 2) with 500, so that an upload fails for good once
a part of it is stored: what the client then leaves behind can be listed.
--list-fault rewrites the server's real answers to object listings (S3
ListObjectsV2, Azure List Blobs) the way a broken or hostile server might:
  no-next  drop NextContinuationToken / NextMarker (S3 still says
           IsTruncated=true: "more pages, but no way to ask for them")
  no-name  drop the Key / Name of the second entry of each page
--lose-create-only plays a server with the bug MinIO and Ceph have both
shipped: a create-only PUT (If-None-Match: *) of a key it has already
seen stored is answered 200 without reaching the server (so the client
believes its object went in, and another writer's stays).
--log appends "METHOD PATH" of every request to FILE (what a command
costs, request by request).
Fault counts go to --stats at exit (SIGTERM).
"""
import argparse, random, re, signal, socket, socketserver, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("--upstream", required=True)
ap.add_argument("--rate", type=float, default=0.1)
ap.add_argument("--stall", type=float, default=5)
ap.add_argument("--kinds", default="error,drop,stall,reset")
ap.add_argument("--expired-token", action="store_true")
ap.add_argument("--seed", type=int, default=None)
ap.add_argument("--delay", type=float, default=0,
                help="milliseconds added to every request (WAN latency)")
ap.add_argument("--fail-parts", action="store_true")
ap.add_argument("--list-fault", choices=["no-next", "no-name"])
ap.add_argument("--lose-create-only", action="store_true")
ap.add_argument("--log")
ap.add_argument("--stats")
a = ap.parse_args()
uhost, uport = a.upstream.rsplit(":", 1)
kinds = a.kinds.split(",")
rng = random.Random(a.seed)
lock = threading.Lock()
counts = {k: 0 for k in kinds + ["ok", "expired", "part", "listing", "lost"]}
stored = set()  # --lose-create-only: paths PUT create-only
part_re = re.compile(rb"[?&]partNumber=(\d+)")
list_re = re.compile(rb"[?&](list-type=2|comp=list)(&|$)")
next_re = re.compile(rb"<(NextContinuationToken|NextMarker)>[^<]*</\1>")
name_re = re.compile(rb"<(Key|Name)>[^<]*</\1>")

def bump(k):
    with lock:
        counts[k] = counts.get(k, 0) + 1

def pick():
    with lock:
        if rng.random() < a.rate:
            return rng.choice(kinds)
    return None

def reply(conn, status, reason, body):
    conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (status, reason, len(body), body))

def dechunk(body):
    out, i = bytearray(), 0
    while True:
        j = body.index(b"\r\n", i)
        n = int(body[i:j].split(b";")[0], 16)
        if n == 0:
            return bytes(out)
        out += body[j + 2 : j + 2 + n]
        i = j + 2 + n + 2

def rewrite_listing(resp):
    """The response with its listing body damaged as --list-fault says."""
    head_end = resp.find(b"\r\n\r\n")
    head, body = bytes(resp[:head_end]), bytes(resp[head_end + 4 :])
    lines = head.split(b"\r\n")
    if b" 200 " not in lines[0] + b" ":
        return resp
    keep = []
    for h in lines[1:]:
        name = h.split(b":", 1)[0].strip().lower()
        if name == b"transfer-encoding" and b"chunked" in h.lower():
            body = dechunk(body)
        elif name != b"content-length":
            keep.append(h)
    if a.list_fault == "no-next":
        body = next_re.sub(b"", body)
    else:
        names = list(name_re.finditer(body))
        if len(names) >= 2:
            body = body[: names[1].start()] + body[names[1].end() :]
    bump("listing")
    keep.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join([lines[0]] + keep) + b"\r\n\r\n" + body

class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        f = conn.makefile("rb")
        line = f.readline()
        if not line:
            return
        headers, length, token, create_only = [], 0, False, False
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name = h.split(b":", 1)[0].strip().lower()
            if name == b"content-length":
                length = int(h.split(b":", 1)[1])
            if name == b"x-amz-security-token":
                token = True
            if name == b"if-none-match":
                create_only = True
            if name in (b"connection", b"keep-alive"):
                continue
            headers.append(h)
        body = f.read(length) if length else b""
        if a.log:
            with lock, open(a.log, "ab") as lf:
                lf.write(b" ".join(line.split(b" ")[:2]) + b"\n")
        if a.expired_token and token:
            bump("expired")
            reply(conn, 400, b"Bad Request",
                  b"<Error><Code>ExpiredToken</Code><Message>The provided "
                  b"token has expired.</Message></Error>")
            return
        m = part_re.search(line.split(b" ")[1]) if a.fail_parts else None
        if m and int(m.group(1)) >= 2:
            bump("part")
            reply(conn, 500, b"Internal Server Error",
                  b"<Error><Code>InternalError</Code><Message>part refused"
                  b"</Message></Error>")
            return
        path = line.split(b" ")[1].split(b"?")[0]
        if a.lose_create_only and create_only and line.startswith(b"PUT "):
            with lock:
                seen = path in stored
                stored.add(path)
            if seen:
                bump("lost")
                conn.sendall(b"HTTP/1.1 200 OK\r\nETag: \"0\"\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
        if a.delay:
            time.sleep(a.delay / 1000)
        fault = pick()
        if fault == "reset":
            bump(fault)
            conn.shutdown(socket.SHUT_RDWR)
            return
        if fault == "error":
            bump(fault)
            if rng.random() < 0.5:
                reply(conn, 503, b"Slow Down",
                      b"<Error><Code>SlowDown</Code><Message>Please reduce "
                      b"your request rate.</Message></Error>")
            else:
                reply(conn, 500, b"Internal Server Error",
                      b"<Error><Code>InternalError</Code><Message>injected"
                      b"</Message></Error>")
            return
        up = socket.create_connection((uhost, int(uport)))
        up.sendall(line + b"".join(headers) + b"Connection: close\r\n\r\n" + body)
        resp = bytearray()
        while True:
            chunk = up.recv(1 << 16)
            if not chunk:
                break
            resp += chunk
        up.close()
        if a.list_fault and list_re.search(line.split(b" ")[1]):
            resp = rewrite_listing(resp)
        head_end = resp.find(b"\r\n\r\n") + 4
        if fault == "drop" and len(resp) - head_end > 1:
            bump(fault)
            conn.sendall(resp[: head_end + (len(resp) - head_end) // 2])
            conn.shutdown(socket.SHUT_RDWR)
            return
        if fault == "stall":
            bump(fault)
            conn.sendall(resp[:head_end])
            time.sleep(a.stall)
            return
        bump("ok")
        conn.sendall(resp)

class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

srv = Server(("127.0.0.1", 0), Handler)

def stop(*_):
    if a.stats:
        with open(a.stats, "w") as out:
            for k, v in sorted(counts.items()):
                out.write("%s %d\n" % (k, v))
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
print(srv.server_address[1], flush=True)
srv.serve_forever()
