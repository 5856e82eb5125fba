"""pushwire's /socket.io/ against the Python `python-socketio` client.

A second independent Socket.IO client (after the official `socket.io-client`
in the node tests), with its own Engine.IO (`python-engineio`, polling over
`requests`, WebSocket over `websocket-client`): on polling only, WebSocket
only and the polling→WebSocket upgrade, `subscribe` / `publish` with acks
and messages as `(data, meta)` in order; a JSON message published over HTTP
arrives as that value; a binary attachment comes back as bytes to another
Python client while a short poll sees the documented base64 object; the
refusals are acks with a status; an unknown namespace is refused at connect;
a 64-bit integer keeps its digits.

    PUSHWIRE_URL=http://127.0.0.1:PORT python3 test_python_socketio.py

Exits non-zero if any test fails, after a closing line "N passed, M failed".
"""

import base64
import json
import os
import queue
import sys
import time
import urllib.request

import socketio

import interop_runner

BASE = os.environ.get("PUSHWIRE_URL", "").rstrip("/")
WAIT = 8.0  # seconds any single wait may take

TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}

TESTS, test = interop_runner.collector()


def topic(label):
    return interop_runner.topic("pysio", label)


class Client:
    """A python-socketio client whose named events land in a queue."""

    def __init__(self, transports, events=("message",)):
        self.sio = socketio.Client(reconnection=False)
        self.got = queue.Queue()
        for name in events:
            self.sio.on(name, self._recorder(name))
        self.sio.connect(BASE, transports=transports, wait_timeout=WAIT)

    def _recorder(self, name):
        # With --sio-recovery an event carries its offset as one more
        # argument, which python-socketio passes on.
        def record(data, meta, *offset):
            self.got.put((name, data, meta))

        return record

    def call(self, *args):
        return self.sio.call(args[0], args[1:], timeout=WAIT)

    def next(self):
        return self.got.get(timeout=WAIT)

    def close(self):
        self.sio.disconnect()


def http_publish(t, body, content_type):
    req = urllib.request.Request(
        f"{BASE}/topics/{t}", data=body, method="POST", headers={"Content-Type": content_type}
    )
    with urllib.request.urlopen(req, timeout=WAIT) as res:
        return json.loads(res.read())["id"]


def short_poll(t):
    with urllib.request.urlopen(f"{BASE}/topics/{t}/messages?after=earliest", timeout=WAIT) as res:
        return json.loads(res.read())["messages"]


def publish_and_receive(kind):
    # Each transport: the subscribe ack, three publishes acked with their
    # ids, and the three messages back (the sender is a subscriber too),
    # in order, each with {topic, id} as its second argument.
    t = topic(kind)
    c = Client(TRANSPORTS[kind])
    try:
        if kind == "upgrade":
            deadline = time.monotonic() + WAIT
            while c.sio.transport() != "websocket":
                assert time.monotonic() < deadline, "never upgraded"
                time.sleep(0.02)
        assert c.sio.transport() == TRANSPORTS[kind][-1], c.sio.transport()
        ack = c.call("subscribe", t)
        assert ack["gap"] is False and ack["last_id"].endswith("-0"), ack
        ids = []
        for n in range(3):
            ack = c.call("publish", t, {"n": n, "text": "héllo ✓"})
            ids.append(ack["id"])
        for n in range(3):
            name, data, meta = c.next()
            assert (name, data) == ("message", {"n": n, "text": "héllo ✓"}), (name, data)
            assert meta == {"topic": t, "id": ids[n]}, meta
    finally:
        c.close()


@test
def polling_only_subscribe_publish_ack():
    publish_and_receive("polling")


@test
def websocket_only_subscribe_publish_ack():
    publish_and_receive("websocket")


@test
def upgrade_subscribe_publish_ack():
    publish_and_receive("upgrade")


@test
def named_event_and_http_json_reach_the_client():
    # A publish with {event} arrives under that event name; a JSON POST
    # over HTTP arrives as the JSON value, not as a string.
    t = topic("http")
    c = Client(["websocket"], events=("message", "price"))
    try:
        c.call("subscribe", t)
        ack = c.call("publish", t, "1.25", {"event": "price"})
        assert c.next() == ("price", "1.25", {"topic": t, "id": ack["id"]})
        id_ = http_publish(t, b'{"a":[1,2,{"b":null}]}', "application/json")
        assert c.next() == ("message", {"a": [1, 2, {"b": None}]}, {"topic": t, "id": id_})
        id_ = http_publish(t, "plain text ✓".encode(), "text/plain")
        assert c.next() == ("message", "plain text ✓", {"topic": t, "id": id_})
    finally:
        c.close()


@test
def a_64_bit_id_keeps_its_digits():
    # Python writes integers exactly; JavaScript could not have sent this
    # one. Another Python client and the short poll get the same digits.
    t = topic("bigint")
    big = 12345678901234567890
    sender = Client(["websocket"])
    receiver = Client(["polling"])
    try:
        receiver.call("subscribe", t)
        sender.call("publish", t, {"id": big, "ns": 1733312345123456789})
        name, data, _ = receiver.next()
        assert data == {"id": big, "ns": 1733312345123456789}, data
        [kept] = short_poll(t)
        assert kept["data"]["id"] == big, kept
    finally:
        sender.close()
        receiver.close()


@test
def binary_reaches_another_client_as_bytes():
    # One client publishes bytes (a BINARY_EVENT with one attachment);
    # another, on polling (where attachments travel as "b" + base64),
    # receives bytes; the short poll shows the documented base64 object.
    t = topic("binary")
    blob = bytes(range(256)) * 3
    sender = Client(["websocket"])
    receiver = Client(["polling"])
    try:
        receiver.call("subscribe", t)
        ack = sender.call("publish", t, blob)
        name, data, meta = receiver.next()
        assert name == "message" and data == blob and meta == {"topic": t, "id": ack["id"]}, (
            name,
            type(data),
            meta,
        )
        [kept] = short_poll(t)
        assert kept["data"] == {"encoding": "base64", "data": base64.b64encode(blob).decode()}, kept
    finally:
        sender.close()
        receiver.close()


@test
def refusals_are_acks_with_a_status():
    c = Client(["websocket"])
    try:
        bad_topic = c.call("subscribe", "no spaces allowed")
        assert bad_topic["error"]["status"] == 400, bad_topic
        bad_cursor = c.call("subscribe", topic("cursor"), {"after": "not-a-cursor"})
        assert bad_cursor["error"]["status"] == 400, bad_cursor
        unknown = c.call("no-such-event", "x")
        assert unknown["error"]["status"] == 404, unknown
        # The socket is still usable after the refusals.
        assert "id" in c.call("publish", topic("after"), "still here")
    finally:
        c.close()


@test
def unknown_namespace_is_refused_at_connect():
    # CONNECT to a namespace nobody registered: CONNECT_ERROR with the
    # reference server's message, and no connection.
    sio = socketio.Client(reconnection=False)
    refused = []
    sio.on("connect_error", refused.append, namespace="/nope")
    try:
        sio.connect(BASE, namespaces=["/nope"], transports=["websocket"], wait_timeout=WAIT)
    except socketio.exceptions.ConnectionError:
        pass
    else:
        sio.disconnect()
        raise AssertionError("connected to an unknown namespace")
    assert refused == [{"message": "Invalid namespace"}], refused


def main():
    if not BASE:
        print("PUSHWIRE_URL is not set (e.g. http://127.0.0.1:8080)", file=sys.stderr)
        return 2
    return interop_runner.run(TESTS, lambda fn: fn())


if __name__ == "__main__":
    sys.exit(main())
