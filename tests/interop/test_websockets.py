"""pushwire's WebSocket endpoints against the Python `websockets` client.

A second independent client implementation (after `ws` in the node
tests): /echo with text, binary, a fragmented message, ping/pong and a
clean close; a topic socket that receives a message published by POST;
permessage-deflate (RFC 7692), which `websockets` offers by default:
compressed echoes arrive intact, and a compressed publish is inflated.

    PUSHWIRE_URL=http://127.0.0.1:PORT python3 test_websockets.py

Exits non-zero if any test fails, after a closing line "N passed, M failed".
"""

import asyncio
import json
import os
import secrets
import sys
import time
import http.client
import urllib.parse
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)

import interop_runner

BASE = os.environ.get("PUSHWIRE_URL", "").rstrip("/")
WS_BASE = "ws" + BASE[len("http") :] if BASE.startswith("http") else ""
WAIT = 8.0  # seconds any single test may take

TESTS, test = interop_runner.collector()


def topic(label):
    return interop_runner.topic("py", label)


def publish(t, data, event=None):
    """POSTs a message over a keep-alive connection (http.client) and
    returns its id. Blocking: run it in a thread."""
    target = f"/topics/{t}" + (f"?event={event}" if event else "")
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(BASE).netloc, timeout=WAIT)
    try:
        conn.request("POST", target, body=data.encode("utf-8"))
        res = conn.getresponse()
        body = res.read()
        assert res.status == 200, (res.status, body)
        return json.loads(body)["id"]
    finally:
        conn.close()


def publish_urllib(t, data):
    """POSTs with urllib, which sends `Connection: close`."""
    req = urllib.request.Request(f"{BASE}/topics/{t}", data=data.encode("utf-8"), method="POST")
    with urllib.request.urlopen(req, timeout=WAIT) as res:
        assert res.status == 200, res.status
        return json.loads(res.read())["id"]


async def close_cleanly(ws):
    await ws.close(code=1000, reason="bye")
    # The server's own close frame, not one the library made up.
    rcvd = ws.protocol.close_rcvd
    assert rcvd is not None, "no close frame came back from the server"
    assert rcvd.code == 1000, f"server answered close {rcvd.code}"
    assert ws.protocol.close_rcvd_then_sent is False, "we closed first"


@test
async def echo_text_and_utf8():
    async with connect(f"{WS_BASE}/echo") as ws:
        for text in ["hello", "héllo wörld — ü", "日本語", "emoji 🚀 and 𝄞", ""]:
            await ws.send(text)
            got = await ws.recv()
            assert isinstance(got, str), f"text came back as {type(got).__name__}"
            assert got == text, (got, text)
        await close_cleanly(ws)


@test
async def echo_binary():
    async with connect(f"{WS_BASE}/echo", max_size=2**20) as ws:
        for payload in [b"\x00\xff\x80 binary", secrets.token_bytes(64 * 1024)]:
            await ws.send(payload)
            got = await ws.recv()
            assert isinstance(got, bytes), f"binary came back as {type(got).__name__}"
            assert got == payload, "binary payload differs"
        await close_cleanly(ws)


@test
async def echo_fragmented_and_ping():
    async with connect(f"{WS_BASE}/echo") as ws:
        # An iterable is sent as one fragmented message.
        await ws.send(["frag", "mented ", "ü🚀", ""])
        assert await ws.recv() == "fragmented ü🚀"
        await ws.send([b"\x01\x02", b"\x03"])
        assert await ws.recv() == b"\x01\x02\x03"
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, WAIT)
        await close_cleanly(ws)


@test
async def close_is_clean():
    async with connect(f"{WS_BASE}/echo") as ws:
        await ws.send("last words")
        assert await ws.recv() == "last words"
        started = time.monotonic()
        await close_cleanly(ws)
        await ws.wait_closed()
        took = time.monotonic() - started
        assert took < 2.0, f"the server took {took:.2f} s to end the connection"
        assert ws.close_code == 1000, ws.close_code
    try:
        await ws.send("after close")
    except ConnectionClosed:
        pass
    else:
        raise AssertionError("send after close did not fail")


@test
async def topic_receives_published_message():
    t = topic("recv")
    async with connect(f"{WS_BASE}/topics/{t}/ws") as ws:
        mid = await asyncio.to_thread(publish, t, "from python\nline two", "note")
        got = json.loads(await ws.recv())
        assert got == {"id": mid, "event": "note", "data": "from python\nline two"}, got

        # And a text frame from this client is published back to it.
        await ws.send("said on the socket")
        got = json.loads(await ws.recv())
        assert got["event"] == "message" and got["data"] == "said on the socket", got
        assert got["id"] != mid
        await close_cleanly(ws)

    # ?after= replays both to a later client.
    async with connect(f"{WS_BASE}/topics/{t}/ws?after=earliest") as ws:
        got = [json.loads(await ws.recv()) for _ in range(2)]
        assert [m["data"] for m in got] == ["from python\nline two", "said on the socket"], got
        await close_cleanly(ws)


@test
async def topic_receives_message_published_by_urllib():
    # urllib closes its connection with the answer; the fan-out must not
    # wait for another connection to come along.
    t = topic("urllib")
    async with connect(f"{WS_BASE}/topics/{t}/ws") as ws:
        mid = await asyncio.to_thread(publish_urllib, t, "published by urllib")
        try:
            got = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
        except asyncio.TimeoutError:
            raise AssertionError(
                f"{mid} was published with Connection: close and not delivered within 2 s"
            ) from None
        assert got == {"id": mid, "event": "message", "data": "published by urllib"}, got
        await close_cleanly(ws)


class Recording(PerMessageDeflate):
    """The library's permessage-deflate, noting each compressed frame's
    size on the wire before it inflates it."""

    def decode(self, frame, *, max_size=None):
        if frame.rsv1:
            COMPRESSED.append(len(frame.data))
        return super().decode(frame, max_size=max_size)


class RecordingFactory(ClientPerMessageDeflateFactory):
    def process_response_params(self, params, accepted_extensions):
        ext = super().process_response_params(params, accepted_extensions)
        ext.__class__ = Recording
        return ext


COMPRESSED = []


def deflate_connect(path, **kw):
    return connect(
        f"{WS_BASE}{path}",
        compression=None,
        extensions=[RecordingFactory(client_max_window_bits=True)],
        **kw,
    )


@test
async def echo_compressed():
    COMPRESSED.clear()
    async with deflate_connect("/echo", max_size=2**22) as ws:
        answer = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert answer.startswith("permessage-deflate"), answer
        assert "server_no_context_takeover" in answer, answer
        text = "".join(f"line {i}: the quick brown fox jumps over the lazy dog ✓\n" for i in range(5000))
        binary = bytes(range(256)) * 1024
        for message in [text, binary, "tiny", text]:
            await ws.send(message)
            got = await ws.recv()
            assert type(got) is type(message), type(got)
            assert got == message, f"{len(got)} vs {len(message)}"
        # Three messages over the threshold came back compressed, the big
        # text to well under a tenth of its size; "tiny" was sent as it is.
        assert len(COMPRESSED) == 3, COMPRESSED
        assert COMPRESSED[0] < len(text.encode()) // 10, COMPRESSED
        await close_cleanly(ws)


@test
async def default_client_negotiates_deflate():
    # The library's own default offer (client_max_window_bits, no
    # parameters otherwise) is accepted as it is.
    async with connect(f"{WS_BASE}/echo") as ws:
        assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
        await ws.send("x" * 10000)
        assert await ws.recv() == "x" * 10000
        await close_cleanly(ws)


@test
async def topic_publish_compressed_and_received():
    # The client's compressed text frame is inflated and published; the
    # message reaches a second subscriber that also negotiated deflate.
    t = topic("deflate")
    data = "compressible " * 2000
    async with deflate_connect(f"/topics/{t}/ws") as a, deflate_connect(f"/topics/{t}/ws") as b:
        await a.send(data)
        for ws in (a, b):
            got = json.loads(await ws.recv())
            assert got["data"] == data and got["event"] == "message", got
        await close_cleanly(a)
        await close_cleanly(b)


def main():
    if not BASE:
        print("PUSHWIRE_URL is not set (e.g. http://127.0.0.1:8080)", file=sys.stderr)
        return 2
    return interop_runner.run(TESTS, lambda fn: asyncio.run(asyncio.wait_for(fn(), WAIT)))


if __name__ == "__main__":
    sys.exit(main())
