#!/usr/bin/env python3
"""Record the transcripts tests/unit/test_rsm.c replays: the real renderer
renders each case below through the real browser, with tools/cdp-record.py's
recording proxy between them, and every render's CDP frames go to
OUT/<case>.jsonl: a first line saying what was asked and how it ended, then
one frame a line, {"t": seconds from the render's first frame, "d": "out"
(the renderer sent it) or "in", "f": the frame}.

Usage: tools/cdp-transcripts.py BUILD_DIR [--out tests/fixtures/transcripts] [CASE ...]

The cases are pages of tests/integration/pages (the Grafana stand-in of
tests/integration/test_readiness.py) and a few of its own. Screenshots and
PDFs are cropped (only their shape matters to the machine). Run it again
after a change to the machine or the probe that changes what is sent.
"""
import argparse
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
spec = importlib.util.spec_from_file_location("cdp_record", os.path.join(HERE, "cdp-record.py"))
cdp_record = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cdp_record)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import grafana_site  # noqa: E402
from harness import free_port  # noqa: E402

PAGES_DIR = os.path.join(ROOT, "tests", "integration", "pages")
BROWSER = ["/usr/lib/chromium/chromium-headless-shell", "--no-sandbox", "--disable-gpu",
           "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run", "--disable-quic", "--no-default-browser-check",
           "--mute-audio", "--hide-scrollbars", "--remote-debugging-address=127.0.0.1"]
TOKEN = "transcripts"

OWN_PAGES = {
    # No signal at all: drawn after a request, then still.
    "/own/plain.html": b"""<!doctype html><html><body style="margin:0;background:#fff">
<div id=p style="width:100px;height:100px"></div><script>
fetch('/own/data?delay=120').then(function(r){return r.text();}).then(function(){
  document.getElementById('p').style.background='rgb(255,0,0)';});
</script></body></html>""",
    # Old Grafana's solo panel: panelsRendered after the panel draws.
    "/own/panels.html": b"""<!doctype html><html><body style="margin:0;background:#fff">
<div class="panel-solo" id=p style="width:100px;height:100px"></div><script>
setTimeout(function(){document.getElementById('p').style.background='rgb(255,0,0)';
requestAnimationFrame(function(){window.panelsRendered=1;});},150);
</script></body></html>""",
    # A tall page for a full-page png and a pdf.
    "/own/tall.html": b"""<!doctype html><html><body style="margin:0;background:#fff">
<div style="height:1400px;background:rgb(0,255,0)"></div></body></html>""",
    # Grafana's csv export: a download.
    "/own/csv.html": b"""<!doctype html><html><body><script>
window.addEventListener('load', function(){ setTimeout(function(){
  var a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob(['time,value\\n1,2\\n'], {type: 'text/csv'}));
  a.download = 'data.csv'; document.body.appendChild(a); a.click(); }, 50); });
</script></body></html>""",
    # Never ready: a scene whose count stays up (a 408).
    "/own/stuck.html": b"""<!doctype html><html><body><script>
window.__grafanaSceneContext = {}; window.__grafanaRunningQueryCount = 1;
</script></body></html>""",
}

# name -> (page path and query, /render parameters)
GRAFANA = "/d/fx-{name}/fixture?orgId=1&from=now-6h&to=now&kiosk&{query}&render=1"
CASES = {
    "plain": ("/own/plain.html", {}),
    "panels": ("/own/panels.html", {}),
    "full_page": ("/own/tall.html", {"height": "-1"}),
    "pdf": ("/own/tall.html", {"encoding": "pdf", "deviceScaleFactor": "2.000000"}),
    "csv": ("/own/csv.html", {"route": "/render/csv"}),
    "timeout": ("/own/stuck.html", {"timeout": "2"}),
    "navigate_error": ("http://127.0.0.1:9/", {}),
    # The Grafana stand-in of test_readiness.py (tests/integration/pages/
    # grafana): the early-picture cases of issue 11 and the rest of its corpus.
    "grafana_gap_150": (GRAFANA.format(name="gap", query="vars=1&ds=150"), {}),
    "grafana_boot_200_chunks": (GRAFANA.format(name="boot", query="boot=200&chunks=1"), {}),
    "grafana_boot_200_transform": (GRAFANA.format(name="boot", query="boot=200&cpu_at=transform"), {}),
    "grafana_count0_150": (GRAFANA.format(name="count0", query="pre=1&ds=150"), {}),
    "grafana_noquery": (GRAFANA.format(name="noquery", query="text=1"), {}),
    "grafana_legacy_rerender": (GRAFANA.format(name="legacy", query="mode=legacy&n=3&q2=800&rerender=1"), {}),
    "grafana_error": (GRAFANA.format(name="error", query="err=1"), {}),
    "grafana_stream_fetch": (GRAFANA.format(name="stream", query="stream=1&stream_kind=fetch"), {}),
    "grafana_lazy_pdf": (GRAFANA.format(name="lazy", query="lazy=1&n=4&below=2"), {"encoding": "pdf"}),
    "grafana_lazy_full_page": (GRAFANA.format(name="lazy", query="lazy=1&n=4&below=2"), {"height": "-1"}),
    "grafana_binding": (GRAFANA.format(name="binding", query="binding=1&hold=1"), {}),
    "grafana_plain_timer": ("/plain.html?wait=150&delay=100", {}),
}


class Pages(grafana_site.Site):
    """The Grafana stand-in's server, with this tool's own pages."""

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/own/data":
            time.sleep(int(q.get("delay", ["0"])[0]) / 1000)
            return self.send(200, "text/plain", b"ok")
        if u.path in OWN_PAGES:
            return self.send(200, "text/html", OWN_PAGES[u.path])
        return super().do_GET()


def crop(frame):
    """A capture's data cut to a valid base64 prefix that keeps the header;
    the scripts the renderer sends (the probe, the observer) cut to their
    first 60 characters: the replay does not compare them."""
    r = frame.get("result")
    if isinstance(r, dict) and isinstance(r.get("data"), str) and len(r["data"]) > 64:
        r["data"] = r["data"][:64]
    p = frame.get("params")
    for key in ("expression", "source"):
        if isinstance(p, dict) and isinstance(p.get(key), str) and len(p[key]) > 60:
            p[key] = p[key][:60] + "..."
    return frame


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "transcripts"))
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()
    names = args.cases or list(CASES)
    os.makedirs(args.out, exist_ok=True)

    server = grafana_site.SiteServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_address[1]}"

    tmp = tempfile.mkdtemp(prefix="rv-transcripts")
    bport, pport, rport = free_port(), free_port(), free_port()
    browser = subprocess.Popen(BROWSER + [f"--remote-debugging-port={bport}", f"--user-data-dir={tmp}/profile",
                                          "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{bport}/json/version", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    proxy = cdp_record.RecordProxy(pport, bport)
    config = os.path.join(tmp, "rendervisor.ini")
    os.mkdir(os.path.join(tmp, "run"), 0o700)
    with open(config, "w") as f:
        f.write(f"[supervisor]\nruntime_dir = {tmp}/run\nlog_level = info\n"
                f"[exporter]\ncommand = true\n"
                f"[renderer]\ncommand = true\nlisten = 127.0.0.1:{rport}\nauth_token = {TOKEN}\n"
                f"concurrency = 1\nrender_memory = 0\n"
                f"[browsers]\ncommand = true\ncount = 1\nport_base = {pport}\n")
    log = open(os.path.join(tmp, "renderer.log"), "w+")
    renderer = subprocess.Popen([os.path.join(args.build, "renderer", "rendervisor-renderer"), "--config", config],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    results = {}
    try:
        for _ in range(100):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{rport}/healthz", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            log.seek(0)
            sys.exit("the renderer did not start:\n" + log.read())
        time.sleep(0.5)  # the spare page is made
        for name in names:
            page, params = CASES[name]
            params = dict(params)
            route = params.pop("route", "/render")
            url = page if page.startswith("http") else site + page
            if not page.startswith("http"):
                url += ("&" if "?" in url else "?") + "case=" + name  # one url, one render
            q = dict({"url": url, "width": "800", "height": "600", "timeout": "10"}, **params)
            if route == "/render/csv":
                q.pop("width"), q.pop("height")
            req = urllib.request.Request(f"http://127.0.0.1:{rport}{route}?" + urllib.parse.urlencode(q),
                                         headers={"X-Auth-Token": TOKEN})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            results[name] = (url, q, status)
            print(f"{name}: {status}", file=sys.stderr)
            time.sleep(0.3)  # the render is disposed and the next spare made
    finally:
        renderer.send_signal(signal.SIGTERM)
        renderer.wait(10)
        os.killpg(browser.pid, signal.SIGTERM)
        browser.wait(10)
        proxy.close()
        grafana_site.Site.stopping.set()
        server.shutdown()

    log.seek(0)
    lines = [ln for ln in log.read().splitlines() if 'msg="render request"' in ln]
    contexts = cdp_record.render_transcripts(proxy.frames)
    by_url = {}
    for ctx, frames in contexts.items():
        for t, d, f in frames:
            if d == "out" and f.get("method") == "Page.navigate":
                by_url.setdefault(f["params"]["url"], []).append(frames)
                break
    for name, (url, q, status) in results.items():
        found = by_url.get(url, [])
        if len(found) != 1:
            print(f"{name}: {len(found)} renders of {url}, skipped", file=sys.stderr)
            continue
        frames = found[0]
        t0 = frames[0][0]
        # one render request line per case, in the order they were asked for
        line = lines[list(results).index(name)] if len(lines) == len(results) else ""
        steps = re.findall(r"step_(\w+)_ms=", line)
        head = {"case": name, "query": q, "status": status, "steps": steps}
        with open(os.path.join(args.out, name + ".jsonl"), "w") as out:
            out.write(json.dumps(head, separators=(",", ":")) + "\n")
            for t, d, f in frames:
                out.write(json.dumps({"t": round(t - t0, 6), "d": d, "f": crop(f)},
                                     separators=(",", ":")) + "\n")
        print(f"{name}: {len(frames)} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
