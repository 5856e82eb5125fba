"""What the Python interop suites share: the list of tests, topic names,
and the runner.

Each test runs once, through the suite's `call` (which runs it to its end
or raises); each prints "ok - NAME (N ms)", or "not ok - NAME" and its
traceback; the last line is "N passed, M failed".
"""

import secrets
import time
import traceback


def collector():
    """A list of tests, and the decorator that adds a function to it."""
    tests = []

    def test(fn):
        tests.append(fn)
        return fn

    return tests, test


def topic(suite, label):
    """A topic name no other run shares."""
    return f"interop.{suite}-{label}.{int(time.time())}-{secrets.token_hex(4)}"


def run(tests, call):
    """Runs every test in `tests` with `call(test)`; the exit code: 0 when
    all passed, else 1."""
    passed = failed = 0
    for fn in tests:
        started = time.monotonic()
        try:
            call(fn)
        except Exception:  # noqa: BLE001 - every failure is reported the same way
            failed += 1
            print(f"not ok - {fn.__name__}")
            traceback.print_exc()
        else:
            passed += 1
            print(f"ok - {fn.__name__} ({(time.monotonic() - started) * 1000:.0f} ms)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
