"""Grafana's own parameter forms on GET /render, through the real stack
(supervisor, exporter, renderer, Chromium), each request formatted as
Grafana's pkg/services/rendering/http_mode.go formats it: every parameter
it sends, encoded as Go's url.Values.Encode does (keys sorted,
QueryEscape). The page tells what it received by painting it: its time
zone offset as a colour, whether the renderKey cookie reached it, whether
its Intl zone is the one expected; the PNG's own size tells the viewport
and scale. The page is served from 127.0.0.1 and from [::1], for the IPv6
callback URLs Grafana sends with a bare IPv6 domain.

The browsers run with TZ=Asia/Kathmandu (+05:45, no DST), so "the
browser's own zone" is one no parameter here asks for; a second stack sets
[renderer] timezone = Pacific/Chatham (+13:45 in January) for browser,
default and no timezone at all."""
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SUPERVISOR, Rendervisor, free_port, free_port_range, http_get, wait_until  # noqa: E402
from test_renderer import PagesServer, default_browser_command, png_size, read_png  # noqa: E402

EXPORTER = os.environ.get('RV_EXPORTER', 'build/exporter/rendervisor-exporter')
RENDERER = os.environ.get('RV_RENDERER', 'build/renderer/rendervisor-renderer')
TOKEN = 'params-token'
BROWSER_TZ = 'Asia/Kathmandu'  # the browsers' own zone: +05:45 all year
BROWSER_OFFSET = -345          # getTimezoneOffset() there (minutes west of UTC)
CONFIG_TZ = 'Pacific/Chatham'  # [renderer] timezone of the second stack
CONFIG_OFFSET = -825           # +13:45 on 15 January (summer time there)

# Three 100x100 squares, left to right: the page's time zone offset on
# 15 January 2024 12:00 UTC (getTimezoneOffset() + 2048 as red * 256 + green,
# blue 200 as a marker), the renderKey cookie (green: document.cookie has
# renderKey=?key, red: not), the Intl zone name (green: ?zone, red: another,
# blue: no ?zone to compare with).
PARAMS_PAGE = b"""<!doctype html><html><head><style>
html,body{margin:0;background:#fff}
div{position:absolute;top:0;width:100px;height:100px}
</style></head><body><div id="o" style="left:0"></div><div id="c" style="left:100px"></div>
<div id="z" style="left:200px"></div><script>
var q = new URLSearchParams(location.search);
var v = new Date(Date.UTC(2024, 0, 15, 12)).getTimezoneOffset() + 2048;
document.getElementById('o').style.background = 'rgb(' + (v >> 8) + ',' + (v & 255) + ',200)';
var has = document.cookie.split('; ').indexOf('renderKey=' + q.get('key')) >= 0;
document.getElementById('c').style.background = has ? 'rgb(0,255,0)' : 'rgb(255,0,0)';
var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
document.getElementById('z').style.background =
  !q.get('zone') ? 'rgb(0,0,255)' : zone === q.get('zone') ? 'rgb(0,255,0)' : 'rgb(255,0,0)';
</script></body></html>"""

# Grafana's CSV export, late: the file says what the page received.
CSV_PAGE = b"""<!doctype html><html><body><script>
window.addEventListener('load', function(){ setTimeout(function(){
  var q = new URLSearchParams(location.search);
  var key = document.cookie.split('; ').indexOf('renderKey=' + q.get('key')) >= 0 ? 'yes' : 'no';
  var off = new Date(Date.UTC(2024, 0, 15, 12)).getTimezoneOffset();
  var blob = new Blob(['cookie,offset\\n' + key + ',' + off + '\\n'], {type: 'text/csv'});
  var a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'params.csv';
  document.body.appendChild(a);
  a.click();
}, 100); });
</script></body></html>"""

# A block of a known size, for the PDF's scale.
BOX_PAGE = b"""<!doctype html><html><head><style>
html,body{margin:0;background:#fff}
#b{position:absolute;left:0;top:0;width:480px;height:96px;background:rgb(0,255,0)}
</style></head><body><div id="b"></div></body></html>"""

GREEN, RED, BLUE = (0, 255, 0), (255, 0, 0), (0, 0, 255)


class Pages(http.server.BaseHTTPRequestHandler):
    cookies = {}  # ?tag= of a request -> the Cookie header it came with
    lock = threading.Lock()

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        tag = urllib.parse.parse_qs(u.query).get('tag', [''])[0]
        with self.lock:
            self.cookies[tag] = self.headers.get('Cookie')
        body = {'/params.html': PARAMS_PAGE, '/csv.html': CSV_PAGE, '/box.html': BOX_PAGE}.get(u.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'text/html; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class PagesServer6(PagesServer):
    address_family = socket.AF_INET6


def go_query(params):
    """Go's url.Values.Encode: keys sorted, keys and values QueryEscape'd
    (everything but letters, digits and -_.~ as %XX, a space as +)."""
    return '&'.join('%s=%s' % (urllib.parse.quote_plus(k, safe=''), urllib.parse.quote_plus(v, safe=''))
                    for k, v in sorted(params.items()))


def offset_of(rows):
    """The page's getTimezoneOffset(), read back from its first square."""
    r, g, b = rows[50][50]
    assert b == 200, 'the offset square was not painted: %r' % ((r, g, b),)
    return r * 256 + g - 2048


class Stack:
    """A stack under test and its page servers: one browser with
    TZ=Asia/Kathmandu, and extra [renderer] settings."""

    def __init__(self, renderer_extra=None):
        self.web4 = PagesServer(('127.0.0.1', 0), Pages)
        self.web6 = PagesServer6(('::1', 0), Pages)
        for w in (self.web4, self.web6):
            threading.Thread(target=w.serve_forever, daemon=True).start()
        self.site4 = 'http://127.0.0.1:%d' % self.web4.server_address[1]
        self.site6 = 'http://[::1]:%d' % self.web6.server_address[1]
        self.port = free_port()
        renderer = {'listen': '127.0.0.1:%d' % self.port, 'auth_token': TOKEN}
        renderer.update(renderer_extra or {})
        self.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                              renderer=os.path.abspath(RENDERER), browser_count=1, sample_interval='500ms',
                              stop_timeout='3s', collect=False,
                              extra={'renderer': renderer, 'browsers': {'port_base': str(free_port_range(1))}})
        self.rv.start(env={'TZ': BROWSER_TZ})
        try:
            wait_until(lambda: http_get(self.port, '/healthz')[0] == 200, 60, interval=0.1,
                       what='the renderer connected to a browser')
        except Exception:
            print(self.rv.log_text())
            self.stop()
            raise

    def stop(self):
        self.rv.stop()
        for w in (self.web4, self.web6):
            w.shutdown()
            w.server_close()

    def grafana(self, site=None, page='/params.html', route='/render', key='k3y_' + 'a' * 28, domain='127.0.0.1',
                timezone='', width='300', height='100', scale='1.000000', timeout='30', zone=None, **override):
        """What Grafana sends for a panel PNG (or, on /render/csv, a CSV):
        url (its callback URL, the path, then &render=1), renderKey, domain,
        timezone, encoding, timeout, and for a PNG width, height and
        deviceScaleFactor (%f). Returns (status, headers, body, tag)."""
        tag = uuid.uuid4().hex
        path = '%s?orgId=1&key=%s&tag=%s' % (page, key, tag)
        if zone:
            path += '&zone=' + urllib.parse.quote(zone, safe='')
        params = {'url': (site or self.site4) + path + '&render=1', 'renderKey': key, 'domain': domain,
                  'timezone': timezone, 'timeout': timeout}
        if route == '/render/csv':
            params['encoding'] = 'csv'
        else:
            params.update(encoding='png', width=width, height=height, deviceScaleFactor=scale)
        params.update(override)
        params = {k: v for k, v in params.items() if v is not None}
        headers = {'X-Auth-Token': TOKEN, 'User-Agent': 'Grafana/11.6.0', 'Accept-Encoding': 'gzip'}
        status, h, body = http_get(self.port, route + '?' + go_query(params), headers, 90)
        return status, h, body, tag

    def png(self, **kw):
        status, headers, body, tag = self.grafana(**kw)
        if status != 200:
            print(self.rv.log_text()[-3000:])
        assert status == 200, (status, body[:300], kw)
        assert headers['Content-Type'] == 'image/png', headers
        return body, tag

    def rows(self, **kw):
        body, tag = self.png(**kw)
        w, h, rows = read_png(body)
        return rows, tag


class GrafanaParamsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Stack()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    # ---- time zones ------------------------------------------------------------
    def test_offsets_render_in_that_offset(self):
        # (timezone as Grafana sends it, the page's getTimezoneOffset(), its Intl zone)
        cases = [
            ('UTC-05:00', -300, 'Etc/GMT-5'),   # the user chose UTC+05:00: 5 hours ahead
            ('UTC+03:00', 180, 'Etc/GMT+3'),    # the user chose UTC-03:00
            ('UTC-05:30', -330, '+05:30'),      # India, without an IANA name
            ('UTC-05:45', -345, '+05:45'),
            ('UTC+09:30', 570, '-09:30'),
            ('UTC-14:00', -840, 'Etc/GMT-14'),
            ('UTC+00:00', 0, 'UTC'),
            ('UTC-5', -300, 'Etc/GMT-5'),
            ('UTC', 0, 'UTC'),                  # Grafana's utc dashboards
            ('utc', 0, 'UTC'),
            ('GMT+05:30', -330, '+05:30'),      # GMT and bare offsets: ISO sign, as ICU reads them
            ('+05:30', -330, '+05:30'),
            ('-03:00', 180, 'Etc/GMT+3'),
            ('Europe/Paris', -60, 'Europe/Paris'),
            ('Etc/GMT+5', 300, 'Etc/GMT+5'),    # IANA's own POSIX-signed names, as written
        ]
        for tz, offset, zone in cases:
            with self.subTest(timezone=tz):
                rows, _ = self.s.rows(timezone=tz, zone=zone)
                self.assertEqual(offset_of(rows), offset)
                self.assertEqual(rows[50][250], GREEN, 'the page saw another Intl zone than %s' % zone)

    def test_browser_default_and_none_keep_the_browsers_own_zone(self):
        # without [renderer] timezone: no override, the browser's TZ
        for tz in ('browser', 'default', 'BROWSER', 'Default', '', None):
            with self.subTest(timezone=tz):
                rows, _ = self.s.rows(timezone=tz)
                self.assertEqual(offset_of(rows), BROWSER_OFFSET)

    def test_the_zone_check_is_not_vacuous(self):
        # a zone the page does not run in paints red
        rows, _ = self.s.rows(timezone='UTC-05:00', zone='Europe/Paris')
        self.assertEqual(rows[50][250], RED)
        self.assertEqual(offset_of(rows), -300)

    def test_bad_timezone_is_400_naming_it(self):
        for tz in ('UTC+24:00', 'UTC+5:3', 'Europe Stockholm', 'UTC%2B05%3A00'):
            with self.subTest(timezone=tz):
                status, _, body, _ = self.s.grafana(timezone=tz)
                self.assertEqual(status, 400, body[:300])
                self.assertTrue(json.loads(body)['error'].startswith('timezone: expected an IANA name'), body)
        # a name Chromium does not know: a 400 from the render
        status, _, body, _ = self.s.grafana(timezone='Mars/Olympus_Mons')
        self.assertEqual(status, 400, body[:300])
        self.assertEqual(json.loads(body)['error'], 'timezone: the browser does not know "Mars/Olympus_Mons"')

    # ---- the renderKey cookie ---------------------------------------------------
    def test_cookie_for_an_ipv6_host(self):
        # Grafana's domain for http://[::1]:port/ is ::1, without brackets
        for domain in ('::1', '[::1]', '0:0::1'):
            with self.subTest(domain=domain):
                rows, tag = self.s.rows(site=self.s.site6, domain=domain, timezone='UTC-05:00')
                self.assertEqual(rows[50][150], GREEN, 'the renderKey cookie did not reach the page')
                self.assertEqual(Pages.cookies[tag], 'renderKey=k3y_' + 'a' * 28)
                self.assertEqual(offset_of(rows), -300)

    def test_cookie_for_a_name_and_an_ipv4_host(self):
        rows, tag = self.s.rows(domain='127.0.0.1')
        self.assertEqual(rows[50][150], GREEN)
        self.assertEqual(Pages.cookies[tag], 'renderKey=k3y_' + 'a' * 28)

    def test_a_cookie_for_another_host_does_not_reach_the_page(self):
        # the checks above are not vacuous: another address, or none at all
        for domain in ('2001:db8::5', '127.0.0.1'):
            with self.subTest(domain=domain):
                rows, tag = self.s.rows(site=self.s.site6, domain=domain)
                self.assertEqual(rows[50][150], RED)
                self.assertIsNone(Pages.cookies[tag])
        rows, tag = self.s.rows(site=self.s.site6, domain='::1', renderKey=None)
        self.assertEqual(rows[50][150], RED)
        self.assertIsNone(Pages.cookies[tag])

    def test_bad_domain_is_400_naming_it(self):
        for domain in ('2001:db8::g', '[::1', '[::1]:3000', 'fe80::1%eth0', 'a/b'):
            with self.subTest(domain=domain):
                status, _, body, _ = self.s.grafana(domain=domain)
                self.assertEqual(status, 400, body[:300])
                self.assertTrue(json.loads(body)['error'].startswith('domain: '), body)

    def test_csv_with_an_ipv6_domain_and_an_offset(self):
        status, headers, body, tag = self.s.grafana(site=self.s.site6, page='/csv.html', route='/render/csv',
                                                    domain='::1', timezone='UTC-05:30')
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers['Content-Type'], 'text/csv')
        self.assertEqual(body, b'cookie,offset\nyes,-330\n')

    # ---- sizes, scale, timeout ---------------------------------------------------
    def test_sizes_out_of_range_are_clamped(self):
        # (width, height, deviceScaleFactor as Grafana sends them) -> the PNG's size
        cases = [
            ('5', '5', '5.000000', (4000, 2000)),       # 1000x500, at 4
            ('5', '300', '1.000000', (1000, 300)),      # each dimension on its own
            ('300', '0', '1.000000', (300, 500)),
            ('-7', '-5', '1.000000', (1000, 500)),
            ('9', '10', '1.000000', (1000, 10)),
            ('10', '9', '1.000000', (10, 500)),
            ('20000', '100', '1.000000', (10000, 100)),
            ('300', '99999999999', '1.000000', (300, 10000)),
            ('300', '100', '0.000000', (300, 100)),     # 0: the default scale, 1
            ('300', '100', '0.050000', (30, 10)),       # below 0.1: 0.1
            ('300', '100', '4.500000', (1200, 400)),    # above 4: 4
            ('300', '100', '2.000000', (600, 200)),
        ]
        for width, height, scale, size in cases:
            with self.subTest(width=width, height=height, deviceScaleFactor=scale):
                body, _ = self.s.png(width=width, height=height, scale=scale)
                self.assertEqual(png_size(body), size)

    def test_clamped_render_still_paints_what_the_page_received(self):
        rows, _ = self.s.rows(width='5', height='5', scale='0.000000', site=self.s.site6, domain='::1',
                              timezone='UTC+03:00')
        self.assertEqual((len(rows[0]), len(rows)), (1000, 500))
        self.assertEqual(offset_of(rows), 180)
        self.assertEqual(rows[50][150], GREEN)

    def test_pdf_is_printed_at_one_over_the_scale_factor(self):
        # As both references print it: deviceScaleFactor 2 puts the page on
        # the paper at half size (more of a dashboard fits). A 480 CSS px
        # block is 5 in wide at scale 1: 360 px at 72 dpi; 180 px at 2.
        widths = {}
        for scale in ('1.000000', '2.000000', '8.000000'):
            status, headers, body, _ = self.s.grafana(page='/box.html', encoding='pdf', scale=scale,
                                                      width=None, height=None)
            self.assertEqual(status, 200, body[:300])
            self.assertEqual(headers['Content-Type'], 'application/pdf')
            with tempfile.TemporaryDirectory(prefix='rvpdf') as tmp:
                src = os.path.join(tmp, 'in.pdf')
                with open(src, 'wb') as f:
                    f.write(body)
                subprocess.run(['pdftoppm', '-png', '-r', '72', '-f', '1', '-l', '1', src,
                                os.path.join(tmp, 'page')], check=True)
                name = [n for n in os.listdir(tmp) if n.endswith('.png')][0]
                with open(os.path.join(tmp, name), 'rb') as f:
                    _, _, rows = read_png(f.read())
            widths[scale] = max(sum(1 for px in row if px[1] > 200 and px[0] < 60 and px[2] < 60) for row in rows)
        self.assertTrue(abs(widths['1.000000'] - 360) <= 3, widths)
        self.assertTrue(abs(widths['2.000000'] - 180) <= 3, widths)
        # 8 is taken as 4 (the cap), so a quarter
        self.assertTrue(abs(widths['8.000000'] - 90) <= 3, widths)

    def test_timeouts_out_of_range_render(self):
        for timeout in ('0', '301', '99999999999'):
            with self.subTest(timeout=timeout):
                body, _ = self.s.png(timeout=timeout)
                self.assertEqual(png_size(body), (300, 100))

    def test_garbage_numbers_stay_400_naming_the_parameter(self):
        for name, kw in (('width', {'width': 'abc'}), ('height', {'height': '1.5'}),
                         ('deviceScaleFactor', {'scale': '-1.000000'}), ('deviceScaleFactor', {'scale': 'NaN'}),
                         ('timeout', {'timeout': '-1'}), ('timeout', {'timeout': '30 s'})):
            with self.subTest(**kw):
                status, _, body, _ = self.s.grafana(**kw)
                self.assertEqual(status, 400, body[:300])
                self.assertTrue(json.loads(body)['error'].startswith(name + ': '), body)


class ConfiguredZoneTest(unittest.TestCase):
    """[renderer] timezone set: browser, default and none mean it."""

    @classmethod
    def setUpClass(cls):
        cls.s = Stack({'timezone': CONFIG_TZ})

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_browser_default_and_none_are_the_configured_zone(self):
        for tz in ('browser', 'default', 'Browser', '', None):
            with self.subTest(timezone=tz):
                rows, _ = self.s.rows(timezone=tz, zone=CONFIG_TZ)
                self.assertEqual(offset_of(rows), CONFIG_OFFSET)
                self.assertEqual(rows[50][250], GREEN)

    def test_a_zone_in_the_request_wins(self):
        rows, _ = self.s.rows(timezone='UTC-05:00')
        self.assertEqual(offset_of(rows), -300)


class ConfigCheckTest(unittest.TestCase):
    def test_check_config_refuses_a_bad_timezone(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'rendervisor.ini')
            with open(path, 'w') as f:
                f.write('[exporter]\ncommand = e\n[renderer]\ncommand = r\ntimezone = UTC+24:00\n'
                        '[browsers]\ncommand = b\n')
            out = subprocess.run([SUPERVISOR, '--check-config', path], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            self.assertEqual(out.returncode, 1, out.stdout)
            self.assertIn('line=5 key=renderer.timezone: invalid value "UTC+24:00": expected an IANA name',
                          out.stdout)
            with open(path, 'w') as f:
                f.write('[exporter]\ncommand = e\n[renderer]\ncommand = r\ntimezone = UTC-05:30\n'
                        '[browsers]\ncommand = b\n')
            out = subprocess.run([SUPERVISOR, '--check-config', path], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            self.assertEqual(out.returncode, 0, out.stdout)


if __name__ == '__main__':
    unittest.main()
