"""A read-ahead listing finalized on its own reader thread must not spin forever.

When the generator is dropped without being closed and sits in a reference cycle, the cyclic GC closes it on
whichever thread triggers the collection, and the reader thread is the one that allocates the most (it parses
every page). The read-ahead generator's ``finally`` used to wait there for the reader to end, i.e. for its own
thread: the reader spun forever, and because the collection never returned, CPython's cyclic GC stayed
"collecting" for the rest of the process (every later ``gc.collect()`` returned 0). Now the finalizer
(``connector.api.prefetch.Prefetch.close``) does not wait on the reader thread, and the reader ends by itself once
it sees the listing closed.

The scenario runs in a subprocess so that, should the bug come back, the spinning thread and the stuck GC do not
leak into the rest of the test session.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

_SCENARIO = textwrap.dedent(
    """
    import gc, json, threading, time, weakref

    import httpx

    from connector.api.auth import MimecastAuth
    from connector.api.client import Listing, MimecastClient
    from connector.secret import Secret

    BASE = "https://api.services.mimecast.com"
    dropped = threading.Event()
    collected = threading.Event()

    def handler(request):
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 1800})
        token = json.loads(request.content)["meta"]["pagination"].get("pageToken")
        n = 1 if token is None else int(token[1:])
        if n == 3:  # the reader fetches page 3 while the caller holds page 1: the GC happens to run here
            dropped.wait(5)
            gc.collect()
            collected.set()
        pagination = {"pageSize": 1, "next": f"p{n + 1}"} if n < 10 else {"pageSize": 1}
        return httpx.Response(200, json={"meta": {"status": 200, "pagination": pagination}, "data": [{"id": n}]})

    auth = MimecastAuth(f"{BASE}/oauth/token", "key", Secret("secret"))
    client = MimecastClient(BASE, auth, page_size=1, transport=httpx.MockTransport(handler), read_ahead=True)
    pages = client.pages([Listing("/api/audit/get-audit-events", [{}])])
    next(pages)
    holder = [pages]
    holder.append(holder)  # the dropped generator is cyclic garbage, e.g. held by a frame/traceback cycle
    del pages, holder
    dropped.set()
    collected.wait(3)
    time.sleep(0.5)

    class Cycle:
        pass

    cycle = Cycle()
    cycle.self = cycle
    ref = weakref.ref(cycle)
    del cycle
    gc.collect()
    print(json.dumps({"gc_on_reader_returned": collected.is_set(), "gc_works": ref() is None}))
    """
)


def test_a_read_ahead_listing_finalized_on_its_reader_thread_does_not_hang_it() -> None:
    done = subprocess.run([sys.executable, "-c", _SCENARIO], capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # the collection that closed the listing returned, and the process can still collect cycles afterwards
    assert result == {"gc_on_reader_returned": True, "gc_works": True}
