"""TLS on the renderer's listener and the exporter's TCP listener
([renderer] and [exporter] tls_cert, tls_key): a CA and server certificates
made here with the openssl CLI; a render over HTTPS verified against the CA
(hostname checked) answers a PNG; plain HTTP to the TLS port fails without
harming the listener; a real Prometheus scrapes the exporter with
tls_config ca_file; a replaced certificate + SIGHUP is what new
connections see, with the renderer and exporter not restarted and an open
connection kept; a bad pair on reload is refused and the old one served;
--check-config and a start refuse a bad pair, naming the key."""
import grp
import hashlib
import http.client
import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SUPERVISOR, RedPage, Rendervisor, alive, free_port, free_port_range,  # noqa: E402
                     prom_api, wait_until)

EXPORTER = os.path.abspath(os.environ.get('RV_EXPORTER', 'build/exporter/rendervisor-exporter'))
RENDERER = os.path.abspath(os.environ.get('RV_RENDERER', 'build/renderer/rendervisor-renderer'))
SHELL = '/usr/lib/chromium/chromium-headless-shell'
BROWSER = SHELL + ' --no-sandbox --disable-gpu --disable-dev-shm-usage'
TOKEN = 'tls-test-token'


def openssl(*args, cwd):
    subprocess.run(['openssl'] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class Pki:
    """A CA in dir, and server certificates it signs for localhost and
    127.0.0.1, each with its own key and serial."""

    def __init__(self, dir, name='rvtest CA'):
        self.dir = dir
        openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=' + name,
                '-addext', 'basicConstraints=critical,CA:TRUE',
                '-addext', 'keyUsage=critical,keyCertSign,cRLSign', cwd=dir)
        self.ca = os.path.join(dir, 'ca.pem')
        with open(os.path.join(dir, 'server.ext'), 'w') as f:
            f.write('basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n'
                    'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n')

    def issue(self, name, serial):
        """name.pem (the certificate) and name.key (its key, 0640): their
        paths, and the certificate's SHA-256 fingerprint."""
        openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                '-keyout', name + '.key', '-out', name + '.csr', '-subj', '/CN=localhost', cwd=self.dir)
        openssl('x509', '-req', '-in', name + '.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
                '-set_serial', str(serial), '-days', '2', '-extfile', 'server.ext', '-out', name + '.pem',
                cwd=self.dir)
        cert, key = os.path.join(self.dir, name + '.pem'), os.path.join(self.dir, name + '.key')
        os.chmod(key, 0o640)
        return cert, key, fingerprint_of(cert)


def fingerprint_of(cert_path):
    with open(cert_path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def install(src_cert, src_key, cert, key):
    """Replace the files the config names, as a certificate manager does:
    a new file renamed over the old one."""
    for src, dst in ((src_cert, cert), (src_key, key)):
        tmp = dst + '.new'
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o640 if dst == key else 0o644)
        os.rename(tmp, dst)


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(SHELL):
            raise unittest.SkipTest('needs %s' % SHELL)
        cls.tmp = tempfile.mkdtemp(prefix='rvtls')
        cls.pki = Pki(cls.tmp)
        c1, k1, cls.fpr1 = cls.pki.issue('first', 1001)
        cls.cert, cls.key = os.path.join(cls.tmp, 'server.pem'), os.path.join(cls.tmp, 'server.key')
        install(c1, k1, cls.cert, cls.key)
        cls.web = http.server.ThreadingHTTPServer(('127.0.0.1', 0), RedPage)
        threading.Thread(target=cls.web.serve_forever, daemon=True).start()
        cls.port, cls.mport = free_port(), free_port()
        tls = {'tls_cert': cls.cert, 'tls_key': cls.key}
        cls.rv = Rendervisor(exporter=EXPORTER, renderer=RENDERER, browsers=BROWSER, collect=False,
                             extra={'exporter': dict(listen='127.0.0.1:%d' % cls.mport, **tls),
                                    'renderer': dict(listen='127.0.0.1:%d' % cls.port, auth_token=TOKEN, **tls),
                                    'browsers': {'port_base': str(free_port_range(1))}})
        cls.rv.start()
        try:
            wait_until(lambda: cls.https('/healthz', timeout=2)[0] == 200, 60, interval=0.2,
                       what='the renderer up over HTTPS with its browser')
        except Exception:
            print(cls.rv.log_text()[-4000:])
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.rv.stop()
        cls.web.shutdown()
        cls.web.server_close()
        shutil.rmtree(cls.tmp, True)

    # ---- clients -------------------------------------------------------------
    @classmethod
    def context(cls, cafile=None):
        ctx = ssl.create_default_context(cafile=cafile or cls.pki.ca)
        ctx.check_hostname = True  # the default; said so, since it is what is tested
        return ctx

    @classmethod
    def connection(cls, port=None, timeout=60, cafile=None):
        """A verified HTTPS connection, the certificate checked for the name
        localhost (the listeners are on 127.0.0.1)."""
        return http.client.HTTPSConnection('localhost', port or cls.port, timeout=timeout,
                                           context=cls.context(cafile))

    @classmethod
    def https(cls, path, headers=None, port=None, timeout=60):
        """(status, headers, body, the server certificate's SHA-256), or
        (0, {}, b'', None) when the connection or the handshake fails."""
        c = cls.connection(port, timeout)
        try:
            c.request('GET', path, headers=headers or {})
            r = c.getresponse()
            body = r.read()
            der = c.sock.getpeercert(binary_form=True)
            return r.status, dict(r.getheaders()), body, hashlib.sha256(der).hexdigest()
        except (OSError, http.client.HTTPException):
            return 0, {}, b'', None
        finally:
            c.close()

    def served_fingerprint(self, port=None):
        """The certificate a new connection gets."""
        with socket.create_connection(('127.0.0.1', port or self.port), timeout=10) as raw:
            with self.context().wrap_socket(raw, server_hostname='localhost') as s:
                return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()

    def render_path(self):
        q = urllib.parse.urlencode(dict(url='http://127.0.0.1:%d/' % self.web.server_address[1],
                                        width=64, height=48))
        return '/render?' + q

    def renderer_records(self, msg):
        return self.rv.child_records('renderer', msg)

    # ---- serving -----------------------------------------------------------------
    def test_render_over_https_verified(self):
        status, headers, body, _ = self.https(self.render_path(), {'X-Auth-Token': TOKEN})
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers['Content-Type'], 'image/png')
        self.assertEqual(body[:8], b'\x89PNG\r\n\x1a\n')
        # the token is still asked for over TLS
        self.assertEqual(self.https(self.render_path())[0], 401)
        # the same listener with a CA that did not sign it: the client refuses
        other = tempfile.mkdtemp(prefix='rvtls-other', dir=self.tmp)
        stranger = Pki(other, name='another CA')
        with self.assertRaises(ssl.SSLCertVerificationError):
            c = self.connection(cafile=stranger.ca)
            try:
                c.request('GET', '/healthz')
            finally:
                c.close()
        with open(self.rv.config) as f:
            self.assertIn('tls_cert = %s' % self.cert, f.read())
        self.assertTrue(self.renderer_records('renderer tls'))
        ready = self.renderer_records('renderer ready')
        self.assertEqual(ready[-1][1]['tls'], 'on')

    def test_plain_http_to_the_tls_port_fails_cleanly(self):
        pid = self.rv.pid('renderer')
        for _ in range(3):
            with socket.create_connection(('127.0.0.1', self.port), timeout=10) as s:
                s.sendall(b'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
                data = b''
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except ConnectionResetError:
                    pass
            # no HTTP answer in clear text; the connection ends
            self.assertNotIn(b'HTTP/1.', data)
            self.assertNotIn(b'ok:', data)
        # the listener is unharmed, the renderer the same process
        self.assertEqual(self.https('/healthz')[0], 200)
        self.assertEqual(self.rv.pid('renderer'), pid)
        self.assertTrue(alive(pid))
        # counted, not a line each: one warning per 10 s at most
        warned = wait_until(lambda: self.rv.child_records('renderer', 'tls handshakes failed, since the last warning'),
                            10, what='the failed handshakes in the log')
        self.assertEqual(len(warned), 1)
        self.assertEqual(warned[0][1]['listener'], 'renderer')
        self.assertGreaterEqual(int(warned[0][1]['count']), 1)
        self.assertEqual(self.rv.child_records('renderer', 'libmicrohttpd'), [])

    def test_prometheus_scrapes_the_exporter_over_tls(self):
        if not shutil.which('prometheus'):
            self.skipTest('needs prometheus')
        tmp = tempfile.mkdtemp(prefix='rvprom', dir=self.tmp)
        web = free_port()
        with open(os.path.join(tmp, 'prometheus.yml'), 'w') as f:
            f.write('global:\n  scrape_interval: 1s\n'
                    'scrape_configs:\n'
                    '  - job_name: rendervisor\n    scheme: https\n'
                    '    tls_config:\n      ca_file: %s\n      server_name: localhost\n'
                    '    static_configs:\n      - targets: ["127.0.0.1:%d"]\n' % (self.pki.ca, self.mport))
        prom = subprocess.Popen(['prometheus', '--config.file=%s/prometheus.yml' % tmp,
                                 '--storage.tsdb.path=%s/data' % tmp,
                                 '--web.listen-address=127.0.0.1:%d' % web],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (prom.kill(), prom.wait()))

        def renderer_up():
            r = prom_api(web, '/api/v1/query', query='rendervisor_child_up{child="renderer"}')
            res = r.get('data', {}).get('result', [])
            return res and res[0]['value'][1] == '1'
        wait_until(renderer_up, 60, interval=0.5, what='Prometheus scraping the exporter over HTTPS')
        r = prom_api(web, '/api/v1/query', query='up{job="rendervisor"}')
        self.assertEqual(r['data']['result'][0]['value'][1], '1')
        # the exporter's TCP listener speaks TLS only; its Unix socket stays plain
        self.assertEqual(self.served_fingerprint(self.mport), fingerprint_of(self.cert))

    # ---- reloading -----------------------------------------------------------------
    def sighup(self, child):
        os.kill(self.rv.pid(child), signal.SIGHUP)

    def test_reload_serves_the_new_certificate_without_a_restart(self):
        rpid, epid = self.rv.pid('renderer'), self.rv.pid('exporter')
        old = fingerprint_of(self.cert)
        self.assertEqual(self.served_fingerprint(), old)
        # a kept-alive connection opened before the swap
        kept = self.connection()
        self.addCleanup(kept.close)
        kept.request('GET', '/healthz')
        r = kept.getresponse()
        self.assertEqual(r.status, 200)
        r.read()

        c2, k2, new = self.pki.issue('second-%d' % os.getpid(), 2002 + len(self.renderer_records(
            'renderer tls reloaded')))
        self.assertNotEqual(new, old)
        install(c2, k2, self.cert, self.key)
        reloaded = len(self.renderer_records('renderer tls reloaded'))
        passed = len(self.rv.records('reload passed on'))
        # the operator's reload: SIGHUP to the supervisor, which checks the
        # files and passes it on to the children it keeps
        self.rv.signal(signal.SIGHUP)
        wait_until(lambda: len(self.renderer_records('renderer tls reloaded')) > reloaded, 10,
                   what='the renderer reloaded its certificate')
        self.assertEqual(sorted(f['child'] for _, f in self.rv.records('reload passed on')[passed:]),
                         ['exporter', 'renderer'])
        self.assertEqual(self.served_fingerprint(), new)
        wait_until(lambda: self.served_fingerprint(self.mport) == new, 10,
                   what='the exporter serving the new certificate')
        # the log line names it as openssl does (serial in hex, SHA-256)
        f = self.renderer_records('renderer tls reloaded')[-1][1]
        self.assertEqual(f['sha256'].replace(':', '').lower(), new)
        # not restarted, the old connection kept and still answered
        self.assertEqual((self.rv.pid('renderer'), self.rv.pid('exporter')), (rpid, epid))
        self.assertEqual(len(self.rv.starts('renderer')), 1)
        kept.request('GET', '/healthz')
        r = kept.getresponse()
        self.assertEqual(r.status, 200)
        r.read()
        status, _, body, fpr = self.https(self.render_path(), {'X-Auth-Token': TOKEN})
        self.assertEqual((status, fpr), (200, new), body[:300])

    def test_bad_pair_on_reload_keeps_the_old_one(self):
        rpid = self.rv.pid('renderer')
        served = self.served_fingerprint()
        with open(self.cert) as f:
            good_cert = f.read()
        with open(self.key) as f:
            good_key = f.read()
        other_cert, other_key, _ = self.pki.issue('other-%d' % os.getpid(), 3003)
        cases = [
            # a key that is not the certificate's
            ('renderer.tls_key', 'is not the key of the certificate', None, other_key, 0o640),
            # a key others may read
            ('renderer.tls_key', 'others may read it (mode 0644)', None, None, 0o644),
            # not a certificate
            ('renderer.tls_cert', 'not a PEM certificate', 'garbage\n', None, 0o640),
        ]
        for key, what, cert_text, key_src, key_mode in cases:
            with self.subTest(what=what):
                if cert_text is not None:
                    with open(self.cert, 'w') as f:
                        f.write(cert_text)
                if key_src is not None:
                    shutil.copyfile(key_src, self.key)
                os.chmod(self.key, key_mode)
                n = len(self.renderer_records('renderer tls reload refused, keeping the running certificate'))
                self.sighup('renderer')
                wait_until(lambda: len(self.renderer_records(
                    'renderer tls reload refused, keeping the running certificate')) > n, 10,
                    what='the reload refused')
                reason = self.renderer_records('renderer tls reload refused, keeping the running certificate')[-1][1]
                self.assertIn('key=%s: ' % key, reason['reason'])
                self.assertIn(what, reason['reason'])
                # still served: the pair of before, to new connections
                self.assertEqual(self.served_fingerprint(), served)
                self.assertEqual(self.https('/healthz')[0], 200)
                self.assertEqual(self.rv.pid('renderer'), rpid)
                # put the good pair back
                with open(self.cert, 'w') as f:
                    f.write(good_cert)
                with open(self.key, 'w') as f:
                    f.write(good_key)
                os.chmod(self.key, 0o640)
        # the exporter refuses the same way
        shutil.copyfile(other_key, self.key)
        n = len(self.rv.child_records('exporter', 'exporter tls reload refused, keeping the running certificate'))
        self.sighup('exporter')
        wait_until(lambda: len(self.rv.child_records(
            'exporter', 'exporter tls reload refused, keeping the running certificate')) > n, 10,
            what='the exporter refusing the reload')
        self.assertEqual(self.served_fingerprint(self.mport), served)
        with open(self.key, 'w') as f:
            f.write(good_key)


    def test_supervisor_refuses_a_reload_with_a_bad_pair(self):
        rpid, epid = self.rv.pid('renderer'), self.rv.pid('exporter')
        os.chmod(self.key, 0o644)
        try:
            n = len(self.rv.records('config reload refused, keeping the running config'))
            self.rv.signal(signal.SIGHUP)
            refused = wait_until(lambda: self.rv.records('config reload refused, keeping the running config')[n:],
                                 10, what='the reload refused')
        finally:
            os.chmod(self.key, 0o640)
        reasons = ' '.join(f['reason'] for _, f in refused)
        self.assertIn('file=%s key=renderer.tls_key: %s: others may read it (mode 0644)' % (self.rv.config, self.key),
                      reasons)
        self.assertIn('key=exporter.tls_key: %s: others may read it' % self.key, reasons)
        self.assertEqual((self.rv.pid('renderer'), self.rv.pid('exporter')), (rpid, epid))
        self.assertEqual(self.https('/healthz')[0], 200)


class TlsChainTest(unittest.TestCase):
    """A certificate signed by an intermediate CA: the file holds the leaf
    and the intermediate, the client trusts only the root, and verifies."""

    def test_the_chain_is_served(self):
        tmp = tempfile.mkdtemp(prefix='rvtlschain')
        self.addCleanup(shutil.rmtree, tmp, True)
        root = Pki(tmp, name='rvtest root')
        with open(os.path.join(tmp, 'inter.ext'), 'w') as f:
            f.write('basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n')
        openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                '-keyout', 'inter.key', '-out', 'inter.csr', '-subj', '/CN=rvtest intermediate', cwd=tmp)
        openssl('x509', '-req', '-in', 'inter.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '50',
                '-days', '2', '-extfile', 'inter.ext', '-out', 'inter.pem', cwd=tmp)
        openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=localhost', cwd=tmp)
        openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'inter.pem', '-CAkey', 'inter.key', '-set_serial', '51',
                '-days', '2', '-extfile', 'server.ext', '-out', 'leaf.pem', cwd=tmp)
        chain = os.path.join(tmp, 'chain.pem')
        with open(chain, 'w') as out:
            for name in ('leaf.pem', 'inter.pem'):
                with open(os.path.join(tmp, name)) as f:
                    out.write(f.read())
        key = os.path.join(tmp, 'leaf.key')
        os.chmod(key, 0o600)
        port = free_port()
        # the exporter alone: its TCP listener is the one under test
        rv = Rendervisor(exporter=EXPORTER, collect=False,
                         extra={'exporter': {'listen': '127.0.0.1:%d' % port, 'tls_cert': chain, 'tls_key': key}})
        self.addCleanup(rv.stop)
        rv.start()
        ctx = ssl.create_default_context(cafile=root.ca)

        def scrape():
            c = http.client.HTTPSConnection('localhost', port, timeout=5, context=ctx)
            try:
                c.request('GET', '/metrics')
                r = c.getresponse()
                return r.status == 200 and b'rendervisor_child_up' in r.read()
            except ConnectionRefusedError:
                return False
            finally:
                c.close()
        wait_until(scrape, 30, interval=0.2, what='a verified scrape through the intermediate')
        self.assertEqual(rv.child_records('exporter', 'exporter tls')[-1][1]['chain'], '2')
        # the leaf alone does not verify against the root: the test would see it
        bare = os.path.join(tmp, 'leaf-only.pem')
        shutil.copyfile(os.path.join(tmp, 'leaf.pem'), bare)
        rv.settings['exporter']['tls_cert'] = bare
        rv.write_config()
        os.kill(rv.pid('exporter'), signal.SIGHUP)
        wait_until(lambda: rv.child_records('exporter', 'exporter tls reloaded'), 10, what='the reload')
        with self.assertRaises(ssl.SSLCertVerificationError):
            with socket.create_connection(('127.0.0.1', port), timeout=5) as raw:
                ctx.wrap_socket(raw, server_hostname='localhost').close()


class TlsConfigTest(unittest.TestCase):
    """--check-config and a start: the pair is read and checked before
    anything runs, and what is wrong is named."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='rvtlscfg')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.pki = Pki(self.tmp)
        self.cert, self.key, _ = self.pki.issue('s', 7)

    def check(self, renderer=None, exporter=None, user=None):
        path = os.path.join(self.tmp, 'rv.ini')
        with open(path, 'w') as f:
            f.write('[supervisor]\nruntime_dir = %s\n' % self.tmp)
            if user:
                f.write('user = %s\n' % user)
            f.write('[exporter]\nlisten = 127.0.0.1:%d\n' % free_port())
            f.write(''.join('%s = %s\n' % kv for kv in (exporter or {}).items()))
            f.write('[renderer]\nlisten = 127.0.0.1:%d\n' % free_port())
            f.write(''.join('%s = %s\n' % kv for kv in (renderer or {}).items()))
        p = subprocess.run([SUPERVISOR, '--check-config', path], capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout + p.stderr, path

    def test_a_good_pair_is_valid(self):
        rc, out, path = self.check(renderer={'tls_cert': self.cert, 'tls_key': self.key},
                                   exporter={'tls_cert': self.cert, 'tls_key': self.key})
        self.assertEqual(rc, 0, out)
        self.assertIn('%s: valid' % path, out)

    def test_bad_pairs_are_refused_naming_the_key(self):
        os.chmod(self.key, 0o604)
        _, other_key, _ = self.pki.issue('o', 8)
        rc, out, path = self.check(renderer={'tls_cert': self.cert, 'tls_key': self.key},
                                   exporter={'tls_cert': self.cert, 'tls_key': other_key})
        self.assertEqual(rc, 1, out)
        self.assertIn('file=%s key=renderer.tls_key: %s: others may read it (mode 0604)' % (path, self.key), out)
        self.assertIn('file=%s key=exporter.tls_key: %s is not the key of the certificate in %s'
                      % (path, other_key, self.cert), out)
        os.chmod(self.key, 0o600)
        rc, out, _ = self.check(renderer={'tls_cert': self.key, 'tls_key': self.key})
        self.assertEqual(rc, 1, out)
        self.assertIn('key=renderer.tls_cert: %s: not a PEM certificate' % self.key, out)
        rc, out, _ = self.check(renderer={'tls_cert': self.cert, 'tls_key': self.tmp + '/missing.key'})
        self.assertEqual(rc, 1, out)
        self.assertIn('key=renderer.tls_key: %s/missing.key: cannot open: No such file or directory' % self.tmp,
                      out)
        # an encrypted key: refused, it says what it must be
        openssl('pkey', '-in', self.key, '-out', 'enc.key', '-aes256', '-passout', 'pass:x', cwd=self.tmp)
        enc = os.path.join(self.tmp, 'enc.key')
        os.chmod(enc, 0o600)
        rc, out, _ = self.check(renderer={'tls_cert': self.cert, 'tls_key': enc})
        self.assertEqual(rc, 1, out)
        self.assertIn('key=renderer.tls_key: %s: not a PEM private key (an unencrypted PKCS#8, RSA or EC key)' % enc,
                      out)
        rc, out, _ = self.check(renderer={'tls_cert': self.cert})
        self.assertEqual(rc, 1, out)
        self.assertIn('key=renderer.tls_cert: renderer.tls_cert is set but renderer.tls_key is not', out)

    def test_the_childrens_user_must_read_the_files(self):
        """A root supervisor reads the files as root; its children, as
        [supervisor] user, must be able to as well."""
        if os.geteuid() != 0 or not shutil.which('useradd'):
            self.skipTest('needs root and useradd')
        user = 'rvtls%s' % uuid.uuid4().hex[:8]
        subprocess.run(['useradd', '--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent',
                        '--shell', '/usr/sbin/nologin', user], check=True, capture_output=True)
        self.addCleanup(subprocess.run, ['groupdel', user], capture_output=True)
        self.addCleanup(subprocess.run, ['userdel', '-f', user], capture_output=True)
        os.chmod(self.tmp, 0o755)
        os.chmod(self.key, 0o600)  # root's alone
        rc, out, path = self.check(renderer={'tls_cert': self.cert, 'tls_key': self.key}, user=user)
        self.assertEqual(rc, 1, out)
        self.assertIn('file=%s key=renderer.tls_key: %s: the children\'s user %s cannot read it (Permission denied)'
                      % (path, self.key, user), out)
        os.chown(self.key, 0, grp.getgrnam(user).gr_gid)
        os.chmod(self.key, 0o640)  # the operator's fix: the user's group
        rc, out, path = self.check(renderer={'tls_cert': self.cert, 'tls_key': self.key}, user=user)
        self.assertEqual(rc, 0, out)
        # a directory the user cannot pass
        os.chmod(self.tmp, 0o700)
        rc, out, path = self.check(renderer={'tls_cert': self.cert, 'tls_key': self.key}, user=user)
        self.assertEqual(rc, 1, out)
        self.assertIn("key=renderer.tls_cert: %s: the children's user %s cannot read it" % (self.cert, user), out)
        # the token file is held to the same check: root's alone is refused
        os.chmod(self.tmp, 0o755)
        tokens = os.path.join(self.tmp, 'tokens')
        with open(tokens, 'w') as f:
            f.write('a-token\n')
        os.chmod(tokens, 0o600)
        rc, out, path = self.check(renderer={'auth_token_file': tokens}, user=user)
        self.assertEqual(rc, 1, out)
        self.assertIn("file=%s key=renderer.auth_token_file: %s: the children's user %s cannot read it "
                      "(Permission denied)" % (path, tokens, user), out)
        os.chown(tokens, 0, grp.getgrnam(user).gr_gid)
        os.chmod(tokens, 0o640)
        rc, out, path = self.check(renderer={'auth_token_file': tokens}, user=user)
        self.assertEqual(rc, 0, out)

    def test_a_start_with_a_bad_pair_is_refused(self):
        os.chmod(self.key, 0o644)
        rc, out, path = self.check(renderer={'tls_cert': self.cert, 'tls_key': self.key})
        self.assertEqual(rc, 1, out)
        p = subprocess.run([SUPERVISOR, '--config', path], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('key=renderer.tls_key: %s: others may read it (mode 0644)' % self.key, p.stderr)


if __name__ == '__main__':
    unittest.main()
