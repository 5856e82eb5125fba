"""pushwire over TLS against Python's own `ssl` (OpenSSL) and the
`websockets` client: HTTPS GET with ALPN, SSE over TLS, WSS echo and a
topic WebSocket over TLS, a TLS 1.2-only client, and a plaintext request
on the TLS port closed without harming a TLS client.

It makes its own test CA and an ECDSA P-256 certificate for localhost and
127.0.0.1 (openssl), starts its own pushwire with --tls-cert/--tls-key on
a free loopback port, and stops it by PID at the end.

    PUSHWIRE_BIN=target/release/pushwire python3 test_tls.py

Exits non-zero if any test fails, after a closing line "N passed, M failed".
"""

import asyncio
import http.client
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from websockets.asyncio.client import connect

import interop_runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PUSHWIRE_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "pushwire"
)
WAIT = 8.0
TESTS, test = interop_runner.collector()
PORT = 0
CA = ""



def make_certificate(d):
    """A CA and a leaf signed by it, both ECDSA P-256; returns (ca, cert, key)."""
    ca_key, ca, key, csr, cert, ext = (
        os.path.join(d, n) for n in ("ca.key", "ca.pem", "key.pem", "leaf.csr", "cert.pem", "leaf.ext")
    )
    with open(ext, "w") as f:
        f.write(
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        )
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ca_key)
    run("openssl", "req", "-x509", "-new", "-key", ca_key, "-sha256", "-days", "2",
        "-subj", "/CN=pushwire interop CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign", "-out", ca)
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    run("openssl", "req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-sha256", "-days", "2", "-extfile", ext, "-out", cert)
    return ca, cert, key


def context(maximum=None):
    ctx = ssl.create_default_context(cafile=CA)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def https(method, target, body=None, ctx=None):
    conn = http.client.HTTPSConnection("localhost", PORT, timeout=WAIT, context=ctx or context())
    try:
        conn.request(method, target, body=body)
        res = conn.getresponse()
        return res.status, res.read(), conn.sock
    finally:
        conn.close()


def topic(label):
    return interop_runner.topic("tls", label)


@test
async def https_get_speaks_http11_by_alpn():
    conn = http.client.HTTPSConnection("localhost", PORT, timeout=WAIT, context=context())
    conn.request("GET", "/healthz")
    res = conn.getresponse()
    assert res.status == 200 and res.read() == b"ok", res.status
    assert conn.sock.selected_alpn_protocol() == "http/1.1", conn.sock.selected_alpn_protocol()
    assert conn.sock.version() == "TLSv1.3", conn.sock.version()
    # Kept alive: a second request on the same TLS connection.
    conn.request("GET", "/healthz")
    assert conn.getresponse().read() == b"ok"
    conn.close()


@test
async def tls12_only_client_is_served():
    status, body, _ = await asyncio.to_thread(https, "GET", "/healthz", None, context(ssl.TLSVersion.TLSv1_2))
    assert (status, body) == (200, b"ok"), (status, body)


def read_sse(t, after_retry, n_events):
    """Opens an SSE stream over TLS, calls `after_retry()` once the stream
    is live, and returns the first `n_events` data lines."""
    conn = http.client.HTTPSConnection("localhost", PORT, timeout=WAIT, context=context())
    try:
        conn.request("GET", f"/topics/{t}/sse")
        res = conn.getresponse()
        assert res.status == 200, res.status
        assert res.getheader("Content-Type").startswith("text/event-stream")
        got = []
        while len(got) < n_events:
            line = res.fp.readline().decode()
            if not line:
                break
            if line.startswith("retry:"):
                after_retry()
            if line.startswith("data:"):
                got.append(line[5:].strip())
        return got
    finally:
        conn.close()


@test
async def sse_over_tls_receives_what_https_publishes():
    t = topic("sse")
    published = []

    def publish():
        # The chunk framing (RFC 9112 §7.1) is undone by http.client.
        status, body, _ = https("POST", f"/topics/{t}", "over tls".encode())
        assert status == 200, (status, body)
        published.append(json.loads(body)["id"])

    got = await asyncio.to_thread(read_sse, t, publish, 1)
    assert got == ["over tls"], got
    assert published, "the POST did not answer"


@test
async def wss_echo():
    async with connect(f"wss://localhost:{PORT}/echo", ssl=context(), max_size=2**20) as ws:
        for msg in ["hello over tls", "ü🚀" * 1000, secrets.token_bytes(200 * 1024)]:
            await ws.send(msg)
            assert await ws.recv() == msg
        await ws.close()
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000


@test
async def wss_topic_receives_a_published_message():
    t = topic("ws")
    async with connect(f"wss://localhost:{PORT}/topics/{t}/ws", ssl=context()) as ws:
        status, body, _ = await asyncio.to_thread(https, "POST", f"/topics/{t}", "wss".encode())
        assert status == 200, status
        got = json.loads(await ws.recv())
        assert got == {"id": json.loads(body)["id"], "event": "message", "data": "wss"}, got


@test
async def plaintext_on_the_tls_port_is_closed_alone():
    kept = http.client.HTTPSConnection("localhost", PORT, timeout=WAIT, context=context())
    kept.request("GET", "/healthz")
    assert kept.getresponse().read() == b"ok"

    def plaintext():
        with socket.create_connection(("127.0.0.1", PORT), timeout=WAIT) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            # No HTTP answer: at most a TLS alert record (type 21).
            assert not data.startswith(b"HTTP/"), data
            assert data == b"" or data[0] == 21, data

    await asyncio.to_thread(plaintext)
    kept.request("GET", "/healthz")
    assert kept.getresponse().read() == b"ok", "the TLS client was harmed"
    kept.close()


def main():
    global PORT, CA
    with tempfile.TemporaryDirectory(prefix="pushwire-tls-interop-") as d:
        CA, cert, key = make_certificate(d)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            PORT = s.getsockname()[1]
        log = open(os.path.join(d, "server.log"), "w+")
        server = subprocess.Popen(
            [BIN, "--listen", f"127.0.0.1:{PORT}", "--tls-cert", cert, "--tls-key", key],
            stdout=subprocess.DEVNULL, stderr=log,
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None:
                        break
                    time.sleep(0.1)
            code = interop_runner.run(TESTS, lambda fn: asyncio.run(asyncio.wait_for(fn(), WAIT)))
            if server.poll() is not None:
                print("pushwire died during the tests", file=sys.stderr)
                code = 1
        finally:
            server.terminate()
            server.wait(timeout=10)
            if code if "code" in locals() else True:
                log.seek(0)
                sys.stderr.write(log.read()[-4000:])
        return code


if __name__ == "__main__":
    sys.exit(main())
