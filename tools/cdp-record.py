#!/usr/bin/env python3
"""Record real Chrome DevTools Protocol traffic for the unit tests, so they
run on what Chromium really sends.

Frames, for tests/unit/test_cdp.c (the parser): start a headless chromium
with --remote-debugging-port=PORT, then
    tools/cdp-record.py --port PORT --out tests/fixtures/cdp
Each fixture is one frame exactly as received (base64 data is cropped where
only its shape matters).

Transcripts, for tests/unit/test_rsm.c (the render state machine and its
readiness rules): tools/cdp-transcripts.py runs the real renderer against the
real browser through record_proxy() below, which relays and records every
frame of the connection with its time; render_transcripts() then cuts one
transcript per render out of it (docs/renderer.md, "Testing readiness").

Python has no websocket module here, so this carries a minimal RFC 6455
client and server: masked text frames from a client, unmasked from a server.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.request


class WebSocket:
    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise RuntimeError("handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"handshake refused: {head!r}")

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise RuntimeError("connection closed")
            data += chunk
        return data

    def send_text(self, text):
        payload = text.encode()
        head = bytes([0x81])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        body = ws_mask(payload, mask)
        self.sock.sendall(head + mask + body)

    def recv_text(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            opcode = b0 & 0x0F
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = ws_mask(payload, mask)
            if opcode == 0x8:
                raise RuntimeError("server closed the connection")
            if opcode in (0x9, 0xA):
                continue  # ping/pong: Chrome does not send them, ignore anyway
            message += payload
            if b0 & 0x80:
                return message.decode()


class Cdp:
    def __init__(self, url):
        self.ws = WebSocket(url)
        self.next_id = 0
        self.events = []  # (raw text, parsed) in arrival order

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        if session:
            msg["sessionId"] = session
        self.ws.send_text(json.dumps(msg))
        return self.next_id

    def call(self, method, params=None, session=None):
        """Send a command and return (raw reply, parsed reply); events seen
        meanwhile are kept."""
        want = self.send(method, params, session)
        while True:
            raw = self.ws.recv_text()
            msg = json.loads(raw)
            if msg.get("id") == want:
                return raw, msg
            self.events.append((raw, msg))

    def wait_event(self, method, timeout=10, pred=lambda m: True):
        """Return the first event named method (already seen or coming)."""
        for i, (raw, msg) in enumerate(self.events):
            if msg.get("method") == method and pred(msg):
                del self.events[i]
                return raw, msg
        deadline = time.time() + timeout
        self.ws.sock.settimeout(timeout)
        while time.time() < deadline:
            raw = self.ws.recv_text()
            msg = json.loads(raw)
            if msg.get("method") == method and pred(msg):
                return raw, msg
            self.events.append((raw, msg))
        raise RuntimeError(f"no {method} within {timeout}s")


def ws_send(sock, text, mask):
    """One text frame, masked when sent by a client."""
    payload = text.encode() if isinstance(text, str) else text
    head = bytes([0x81])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if mask:
        key = os.urandom(4)
        payload = ws_mask(payload, key)
        head += key
    sock.sendall(head + payload)


def ws_mask(payload, key):
    """XOR with the repeated key, as one big integer: fast enough that a
    relay masking a long command does not hold up the other direction."""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def ws_recv(sock):
    """One whole message (text), or None when the peer closed."""
    def read(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data
    message = b""
    try:
        while True:
            b0, b1 = read(2)
            opcode = b0 & 0x0F
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", read(8))[0]
            key = read(4) if b1 & 0x80 else None
            payload = read(n)
            if key:
                payload = ws_mask(payload, key)
            if opcode == 0x8:
                return None
            if opcode in (0x9, 0xA):
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()
    except (EOFError, OSError):
        return None


class RecordProxy:
    """A DevTools endpoint on 127.0.0.1:listen that relays one browser
    (127.0.0.1:browser_port): /json/version names the proxy's own websocket,
    and every frame of every connection is kept as (seconds, "out"|"in",
    parsed frame), "out" being what the client sent."""

    def __init__(self, listen, browser_port):
        self.browser_port = browser_port
        self.frames = []
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", listen))
        self.srv.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _keep(self, direction, text, at):
        with self.lock:
            self.frames.append([at - self.start, direction, json.loads(text)])

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(4096)
            if not chunk:
                c.close()
                return
            head += chunk
        line = head.split(b"\r\n")[0].decode()
        path = line.split(" ")[1]
        if path.startswith("/json"):
            with urllib.request.urlopen(f"http://127.0.0.1:{self.browser_port}{path}") as r:
                info = json.load(r)
            port = self.srv.getsockname()[1]
            if isinstance(info, dict) and "webSocketDebuggerUrl" in info:
                info["webSocketDebuggerUrl"] = info["webSocketDebuggerUrl"].replace(
                    f":{self.browser_port}/", f":{port}/")
            body = json.dumps(info).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                      + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            c.close()
            return
        key = [h.split(b":", 1)[1].strip() for h in head.split(b"\r\n")
               if h.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        up = WebSocket(f"ws://127.0.0.1:{self.browser_port}{path}")
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")

        def down():
            while True:
                text = ws_recv(up.sock)
                if text is None:
                    c.close()
                    return
                # kept in order before the client can answer it, stamped
                # when the client has it, as near as the relay can tell
                with self.lock:
                    entry = [None, "in", json.loads(text)]
                    self.frames.append(entry)
                ws_send(c, text, mask=False)
                entry[0] = time.monotonic() - self.start
        threading.Thread(target=down, daemon=True).start()
        while True:
            text = ws_recv(c)
            if text is None:
                up.sock.close()
                return
            self._keep("out", text, time.monotonic())
            ws_send(up.sock, text, mask=True)

    def close(self):
        self.srv.close()


def render_transcripts(frames):
    """Cut the frames of one connection into one list per browser context:
    the command that made it and its reply, everything sent to or from its
    page's session, the commands naming it and their replies, in order."""
    sent = {}  # id -> frame
    contexts = {}  # context id -> list of (t, dir, frame)
    of_target, of_session = {}, {}
    owner = {}  # command id -> context
    for t, d, f in frames:
        if d == "out":
            sent[f["id"]] = f
            p = f.get("params") or {}
            ctx = p.get("browserContextId") or of_target.get(p.get("targetId")) or of_session.get(f.get("sessionId"))
            if f["method"] == "Target.createBrowserContext":
                ctx = ("pending", f["id"])
                contexts[ctx] = []
            if ctx is None:
                continue
            owner[f["id"]] = ctx
            contexts.setdefault(ctx, []).append((t, d, f))
            continue
        if "id" in f:
            ctx = owner.get(f["id"])
            if ctx is None:
                continue
            cmd = sent[f["id"]]
            r = f.get("result") or {}
            if cmd["method"] == "Target.createBrowserContext" and "browserContextId" in r:
                real = r["browserContextId"]
                contexts[real] = contexts.pop(ctx) + contexts.get(real, [])
                for k, v in list(owner.items()):
                    if v == ctx:
                        owner[k] = real
                ctx = real
            elif cmd["method"] == "Target.createTarget" and "targetId" in r:
                of_target[r["targetId"]] = ctx
            elif cmd["method"] == "Target.attachToTarget" and "sessionId" in r:
                of_session[r["sessionId"]] = ctx
            contexts[ctx].append((t, d, f))
        elif f.get("sessionId") in of_session:
            contexts[of_session[f["sessionId"]]].append((t, d, f))
    return contexts


PAGES = {
    "/plain": b"""<!doctype html><html><head><style>
html,body{margin:0;background:#ff0000}</style></head><body>
<img src="/pixel.png" width=1 height=1></body></html>""",
    "/tall": b"""<!doctype html><html><body style="margin:0">
<div style="width:300px;height:2000px;background:#00ff00"></div></body></html>""",
    "/panels": b"""<!doctype html><html><body>
<div class="panel-solo"></div>
<script>setTimeout(function(){window.panelsRendered=1;},200);</script>
</body></html>""",
    "/panels-container": b"""<!doctype html><html><body>
<div class="react-grid-item panel-container"></div>
<div class="css-1x panel-container"></div>
<script>window.panelsRendered=1;</script>
</body></html>""",
    "/scenes": b"""<!doctype html><html><body>
<script>window.__grafanaSceneContext={};window.__grafanaRunningQueryCount=1;
setTimeout(function(){window.__grafanaRunningQueryCount=0;},200);</script>
</body></html>""",
    "/csv": b"""<!doctype html><html><body>
<a id="dl" href="/data.csv" download="data.csv">csv</a></body></html>""",
}
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        if path in PAGES:
            body, ctype = PAGES[path], "text/html"
        elif path == "/pixel.png":
            body, ctype = PIXEL, "image/png"
        elif path == "/data.csv":
            body, ctype = b"time,value\n1,2\n", "text/csv"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def crop_data(raw, keep=64):
    """Crop result.data to a valid base64 prefix: the parser and the decoder
    still see real structure, the fixture stays small."""
    msg = json.loads(raw)
    data = msg["result"]["data"]
    msg["result"]["data"] = data[:keep - keep % 4]
    return json.dumps(msg, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--readiness", help="file with the readiness expression (no wait)")
    ap.add_argument("--readiness-wait", help="file with the readiness expression that waits")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def save(name, raw):
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            f.write(raw.rstrip("\n") + "\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/json/version") as r:
        ws_url = json.load(r)["webSocketDebuggerUrl"]
    cdp = Cdp(ws_url)

    raw, _ = cdp.call("Browser.getVersion")
    save("get_version", raw)
    raw, msg = cdp.call("Target.createBrowserContext", {"disposeOnDetach": True})
    save("create_browser_context", raw)
    ctx = msg["result"]["browserContextId"]
    raw, msg = cdp.call("Target.createTarget", {"url": "about:blank", "browserContextId": ctx})
    save("create_target", raw)
    target = msg["result"]["targetId"]
    raw, msg = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})
    save("attach_to_target", raw)
    sess = msg["result"]["sessionId"]
    raw, _ = cdp.wait_event("Target.attachedToTarget")
    save("event_attached_to_target", raw)

    raw, _ = cdp.call("Page.enable", None, sess)
    save("page_enable", raw)
    cdp.call("Page.setLifecycleEventsEnabled", {"enabled": True}, sess)
    cdp.call("Network.enable", None, sess)
    cdp.call("Emulation.setDeviceMetricsOverride",
             {"width": 8, "height": 8, "deviceScaleFactor": 1, "mobile": False}, sess)
    raw, _ = cdp.call("Network.setCookie", {"name": "renderKey", "value": "abc",
                                            "domain": "127.0.0.1", "path": "/"}, sess)
    save("set_cookie", raw)

    cdp.events.clear()
    raw, msg = cdp.call("Page.navigate", {"url": base + "/plain"}, sess)
    save("navigate", raw)
    raw, _ = cdp.wait_event("Page.loadEventFired")
    save("event_load_event_fired", raw)
    raw, _ = cdp.wait_event("Page.lifecycleEvent", pred=lambda m: m["params"]["name"] == "load")
    save("event_lifecycle_load", raw)
    raw, _ = cdp.wait_event("Page.lifecycleEvent",
                            pred=lambda m: m["params"]["name"] == "networkAlmostIdle")
    save("event_lifecycle_network_almost_idle", raw)
    raw, _ = cdp.wait_event("Network.requestWillBeSent",
                            pred=lambda m: m["params"]["request"]["url"].endswith("/pixel.png"))
    save("event_request_will_be_sent", raw)
    raw, _ = cdp.wait_event("Network.loadingFinished")
    save("event_loading_finished", raw)

    raw, _ = cdp.call("Page.getLayoutMetrics", None, sess)
    save("layout_metrics", raw)
    raw, _ = cdp.call("Page.captureScreenshot", {"format": "png"}, sess)
    save("screenshot", raw)  # 8x8 red: small enough to keep whole
    raw, _ = cdp.call("Page.printToPDF", {"paperWidth": 2, "paperHeight": 2}, sess)
    save("print_to_pdf", crop_data(raw))

    # A request that fails: a port nobody listens on.
    cdp.events.clear()
    cdp.call("Runtime.evaluate", {"expression": "fetch('http://127.0.0.1:9/x').catch(()=>0)"}, sess)
    raw, _ = cdp.wait_event("Network.loadingFailed")
    save("event_loading_failed", raw)

    # Navigation that fails answers with errorText, not with an error.
    raw, _ = cdp.call("Page.navigate", {"url": "http://127.0.0.1:9/"}, sess)
    save("navigate_error", raw)

    # Full page: a tall page's metrics.
    cdp.call("Page.navigate", {"url": base + "/tall"}, sess)
    cdp.wait_event("Page.loadEventFired")
    raw, _ = cdp.call("Page.getLayoutMetrics", None, sess)
    save("layout_metrics_tall", raw)
    # Full page at deviceScaleFactor 2: the clip is in CSS pixels, the image
    # comes out scaled. 44 base64 characters keep the PNG header (IHDR).
    cdp.call("Emulation.setDeviceMetricsOverride",
             {"width": 100, "height": 100, "deviceScaleFactor": 2, "mobile": False}, sess)
    raw, _ = cdp.call("Page.captureScreenshot",
                      {"format": "png", "captureBeyondViewport": True,
                       "clip": {"x": 0, "y": 0, "width": 300, "height": 2000, "scale": 1}}, sess)
    png = base64.b64decode(json.loads(raw)["result"]["data"])
    print("full page png: %dx%d" % struct.unpack(">II", png[16:24]), file=sys.stderr)
    save("screenshot_full_page", crop_data(raw, 44))
    cdp.call("Emulation.setDeviceMetricsOverride",
             {"width": 8, "height": 8, "deviceScaleFactor": 1, "mobile": False}, sess)

    # Runtime.evaluate, by value.
    ev = {"returnByValue": True, "awaitPromise": True}
    for name, expr in (("evaluate_bool", "1 < 2"), ("evaluate_number", "6 * 7"),
                       ("evaluate_string", "'he' + 'llo'"), ("evaluate_undefined", "undefined"),
                       ("evaluate_object", "({ready: true, kind: 'none'})"),
                       ("evaluate_exception", "null.x"),
                       ("evaluate_rejected", "Promise.reject(new Error('nope'))")):
        raw, _ = cdp.call("Runtime.evaluate", dict(ev, expression=expr), sess)
        save(name, raw)

    if args.readiness:
        with open(args.readiness) as f:
            expr = f.read()
        for page in ("plain", "panels", "panels-container", "scenes"):
            cdp.call("Page.navigate", {"url": f"{base}/{page}"}, sess)
            cdp.wait_event("Page.loadEventFired")
            raw, _ = cdp.call("Runtime.evaluate", dict(ev, expression=expr), sess)
            save(f"readiness_{page.replace('-', '_')}_now", raw)
            time.sleep(0.4)
            raw, _ = cdp.call("Runtime.evaluate", dict(ev, expression=expr), sess)
            save(f"readiness_{page.replace('-', '_')}_later", raw)
    if args.readiness_wait:
        with open(args.readiness_wait) as f:
            expr = f.read()
        for page in ("panels", "scenes", "plain"):
            cdp.call("Page.navigate", {"url": f"{base}/{page}"}, sess)
            cdp.wait_event("Page.loadEventFired")
            t0 = time.time()
            raw, _ = cdp.call("Runtime.evaluate", dict(ev, expression=expr), sess)
            print(f"readiness wait on {page}: {time.time() - t0:.3f}s {raw[:120]}",
                  file=sys.stderr)
            save(f"readiness_{page}_wait", raw)

    # Errors: an unknown method, bad params, a session that does not exist.
    raw, _ = cdp.call("Nope.nothing", None, sess)
    save("error_method", raw)
    raw, _ = cdp.call("Page.navigate", {"url": 42}, sess)
    save("error_params", raw)
    raw, _ = cdp.call("Page.enable", None, "0123456789ABCDEF0123456789ABCDEF")
    save("error_session", raw)

    raw, _ = cdp.call("Emulation.setTimezoneOverride", {"timezoneId": "Mars/Olympus"}, sess)
    save("error_timezone", raw)

    # A dialog blocks the page until it is handled.
    cdp.call("Runtime.evaluate", {"expression": "setTimeout(function(){alert('hi')},0)"}, sess)
    raw, _ = cdp.wait_event("Page.javascriptDialogOpening")
    save("event_dialog_opening", raw)
    raw, _ = cdp.call("Page.handleJavaScriptDialog", {"accept": True}, sess)
    save("handle_dialog", raw)

    # Download into a folder: CSV export goes this way.
    dl = os.path.join(args.out, ".download")
    os.makedirs(dl, exist_ok=True)
    raw, _ = cdp.call("Browser.setDownloadBehavior",
                      {"behavior": "allowAndName", "browserContextId": ctx,
                       "downloadPath": dl, "eventsEnabled": True})
    save("set_download_behavior", raw)
    cdp.call("Page.navigate", {"url": base + "/csv"}, sess)
    cdp.wait_event("Page.loadEventFired")
    cdp.call("Runtime.evaluate", {"expression": "document.getElementById('dl').click()"}, sess)
    raw, _ = cdp.wait_event("Browser.downloadWillBegin")
    save("event_download_will_begin", raw)
    raw, _ = cdp.wait_event("Browser.downloadProgress",
                            pred=lambda m: m["params"]["state"] == "completed")
    save("event_download_completed", raw)
    for f in os.listdir(dl):
        os.unlink(os.path.join(dl, f))
    os.rmdir(dl)

    # A crash, then the target goes away.
    cdp.events.clear()
    cdp.send("Page.crash", None, sess)
    raw, _ = cdp.wait_event("Inspector.targetCrashed")
    save("event_target_crashed", raw)
    raw, _ = cdp.call("Target.closeTarget", {"targetId": target})
    save("close_target", raw)
    raw, _ = cdp.wait_event("Target.detachedFromTarget")
    save("event_detached_from_target", raw)
    raw, _ = cdp.call("Target.disposeBrowserContext", {"browserContextId": ctx})
    save("dispose_browser_context", raw)

    # Inspector.detached arrives when a page is closed under an attached session.
    raw, msg = cdp.call("Target.createTarget", {"url": "about:blank"})
    t2 = msg["result"]["targetId"]
    _, msg = cdp.call("Target.attachToTarget", {"targetId": t2, "flatten": True})
    s2 = msg["result"]["sessionId"]
    cdp.call("Inspector.enable", None, s2)
    cdp.call("Target.closeTarget", {"targetId": t2})
    try:
        raw, _ = cdp.wait_event("Inspector.detached", timeout=3)
        save("event_inspector_detached", raw)
    except (RuntimeError, socket.timeout):
        print("no Inspector.detached seen", file=sys.stderr)

    for raw, msg in cdp.events:
        print("unrecorded:", raw[:200], file=sys.stderr)
    server.shutdown()


if __name__ == "__main__":
    main()
