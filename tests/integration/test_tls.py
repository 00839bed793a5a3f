"""TLS on listeners and to upstreams, with real clients: a test CA made here
with the openssl CLI; curl and `openssl s_client` for SNI choices (exact,
wildcard, default), RSA beside ECDSA, ALPN, versions, resumption, client
certificates, reloads; a Python ssl backend for TLS to upstreams (verify
failure -> 502, sessions resumed, health checks over TLS); the counters."""
import http.server
import os
import re
import socket
import ssl
import subprocess
import threading

import pytest
import requests

from conftest import IO_TIMEOUT, free_port, wait_port, wait_until
from tls_helpers import Pki, sh

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "openssl"], capture_output=True).returncode != 0
    or subprocess.run(["which", "curl"], capture_output=True).returncode != 0,
    reason="needs the openssl and curl commands")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(str(tmp_path_factory.mktemp("pki")))
    p.issue("default", "default-cert", ["default.test"])
    p.issue("a_ec", "a-ecdsa", ["a.test"])
    p.issue("a_rsa", "a-rsa", ["a.test"], kind="rsa")
    p.issue("wild", "wild-cert", ["*.w.test"])
    p.issue("next", "next-cert", ["default.test"])
    p.issue("client", "alice", client=True)
    p.issue("mallory", "mallory", ca="rogue", client=True)
    p.issue("backend", "backend-cert", ["backend.test"])
    p.ocsp("a_ec")
    return p


def tls_listener(pki, extra=""):
    text = ("tls:\n  certificates:\n"
            "    - { cert: %s, key: %s }\n" % (pki.path("default.pem"), pki.path("default.key")) +
            "    - { cert: %s, key: %s }\n" % (pki.path("a_ec.pem"), pki.path("a_ec.key")) +
            "    - { cert: %s, key: %s }\n" % (pki.path("a_rsa.pem"), pki.path("a_rsa.key")) +
            "    - { cert: %s, key: %s }\n" % (pki.path("wild.pem"), pki.path("wild.key")))
    return text + extra


def weir_yaml(port, listener, endpoints, cluster_extra="", top_extra="", workers=1, routes=None,
              clusters=None):
    from conftest import config
    return config(port, endpoints, listener_extra=listener, cluster_extra=cluster_extra,
                  top_extra=top_extra, workers=workers, routes=routes, clusters=clusters)


CLOSE_REQUEST = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"


def s_client(port, *args, stdin=CLOSE_REQUEST):
    """openssl s_client's report of one connection. It sends a request that
    makes weir close, and waits for that (-ign_eof): s_client prints the
    session (and saves a TLS 1.3 ticket, which comes after the handshake)
    only if it does not quit first."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-ign_eof"] +
                       list(args), input=stdin, capture_output=True, timeout=IO_TIMEOUT)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def curl(port, path="/", host="a.test", *args):
    r = sh("curl", "-sS", "-o", "-", "-D", "-", "--max-time", "10", "--resolve",
           "%s:%d:127.0.0.1" % (host, port), *args, "https://%s:%d%s" % (host, port, path))
    return r


def subject_cn(out):
    m = re.search(r"^subject=.*CN\s*=\s*([^,\n/]+)", out, re.M)
    return m.group(1).strip() if m else None


@pytest.fixture
def tls_weir(weir_factory, demo_backend, pki):
    def make(extra="", workers=1, top_extra=""):
        b = demo_backend("b1")
        port = free_port()
        w = weir_factory(weir_yaml(port, tls_listener(pki, extra), ["127.0.0.1:%d" % b.port],
                                   workers=workers, top_extra=top_extra), port=port)
        return w, port
    return make


def test_sni_exact_wildcard_and_default(tls_weir, pki):
    w, port = tls_weir()
    ca = pki.ca
    assert subject_cn(s_client(port, "-servername", "a.test", "-CAfile", ca)) in ("a-ecdsa", "a-rsa")
    assert subject_cn(s_client(port, "-servername", "x.w.test", "-CAfile", ca)) == "wild-cert"
    # a wildcard stands for one label only
    assert subject_cn(s_client(port, "-servername", "y.x.w.test")) == "default-cert"
    assert subject_cn(s_client(port, "-servername", "unknown.test")) == "default-cert"
    assert subject_cn(s_client(port, "-noservername")) == "default-cert"
    r = curl(port, "/", "x.w.test", "--cacert", ca)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("HTTP/1.1 200")


def test_rsa_and_ecdsa_side_by_side(tls_weir, pki):
    w, port = tls_weir()
    out = s_client(port, "-servername", "a.test", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert subject_cn(out) == "a-rsa", out
    assert "Server public key is 2048 bit" in out
    out = s_client(port, "-servername", "a.test", "-sigalgs", "ECDSA+SHA256")
    assert subject_cn(out) == "a-ecdsa", out
    assert "Server public key is 256 bit" in out


def test_ocsp_stapled_for_its_certificate(weir_factory, demo_backend, pki):
    b = demo_backend("b1")
    port = free_port()
    listener = ("tls:\n  certificates:\n"
                "    - { cert: %s, key: %s, ocsp: %s }\n" % (pki.path("a_ec.pem"), pki.path("a_ec.key"),
                                                          pki.path("a_ec.ocsp")) +
                "    - { cert: %s, key: %s }\n" % (pki.path("a_rsa.pem"), pki.path("a_rsa.key")))
    weir_factory(weir_yaml(port, listener, ["127.0.0.1:%d" % b.port]), port=port)
    out = s_client(port, "-servername", "a.test", "-status", "-sigalgs", "ECDSA+SHA256")
    assert "OCSP Response Status: successful" in out, out
    assert "Cert Status: good" in out
    # the RSA certificate of the same names has no response: none is sent
    out = s_client(port, "-servername", "a.test", "-status", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert subject_cn(out) == "a-rsa"
    assert "OCSP response: no response sent" in out, out


def test_alpn_http11_only_and_hsts(tls_weir, pki):
    w, port = tls_weir("hsts: { max_age: 600, include_subdomains: true }\n")
    out = s_client(port, "-servername", "a.test", "-alpn", "h2,http/1.1")
    assert "ALPN protocol: http/1.1" in out
    out = s_client(port, "-servername", "a.test", "-alpn", "h2")
    assert "No ALPN negotiated" in out  # h2 is offered only on a listener with http2
    r = curl(port, "/", "a.test", "--cacert", pki.ca, "-v")
    assert r.returncode == 0, r.stderr
    assert "ALPN: server accepted http/1.1" in r.stderr or "ALPN, server accepted to use http/1.1" in r.stderr
    assert re.search(r"(?i)^strict-transport-security: max-age=600; includeSubDomains\r?$", r.stdout, re.M)


def test_versions_below_tls12_refused(tls_weir, pki):
    w, port = tls_weir()
    out = s_client(port, "-servername", "a.test", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "Cipher is (NONE)" in out or "no protocols available" in out, out
    assert "BEGIN CERTIFICATE" not in out
    w2_out = s_client(port, "-servername", "a.test", "-tls1_2")
    assert "Protocol  : TLSv1.2" in w2_out
    # a 1.3-only listener refuses 1.2
    w3, port3 = tls_weir("  min_version: tls1.3\n")
    out = s_client(port3, "-servername", "a.test", "-tls1_2")
    assert "Cipher is (NONE)" in out, out
    assert "Protocol  : TLSv1.3" in s_client(port3, "-servername", "a.test")


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_resumption_with_tickets_across_workers(tls_weir, pki, tmp_path, version):
    w, port = tls_weir(workers=2)
    sess = str(tmp_path / "sess")
    out = s_client(port, "-servername", "a.test", version, "-sess_out", sess)
    assert "\nNew, " in out, out
    # several connections: the kernel spreads them over both workers
    for _ in range(6):
        out = s_client(port, "-servername", "a.test", version, "-sess_in", sess)
        assert "\nReused, " in out, out


def test_ticket_key_file_shared_by_two_instances(weir_factory, demo_backend, pki, tmp_path):
    keys = tmp_path / "tickets.keys"
    k1 = sh("openssl", "rand", "-base64", "80").stdout.replace("\n", "")
    k2 = sh("openssl", "rand", "-base64", "80").stdout.replace("\n", "")
    keys.write_text("# first key encrypts\n%s\n%s\n" % (k1, k2))
    b = demo_backend("b1")
    top = "tls: { ticket_key_file: %s }\n" % keys
    ports = [free_port(), free_port()]
    for p in ports:
        weir_factory(weir_yaml(p, tls_listener(pki), ["127.0.0.1:%d" % b.port], top_extra=top), port=p)
    sess = str(tmp_path / "sess")
    out = s_client(ports[0], "-servername", "a.test", "-sess_out", sess)
    assert "\nNew, " in out
    out = s_client(ports[1], "-servername", "a.test", "-sess_in", sess)
    assert "\nReused, " in out, out
    # a bad key file fails the check with the line at fault
    keys.write_text("%s\nnot-a-key\n" % k1)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(weir_yaml(ports[0], tls_listener(pki), ["127.0.0.1:%d" % b.port], top_extra=top))
    r = sh(os.environ["WEIR_BIN"], "check", "-c", str(cfg))
    assert r.returncode == 2
    assert "ticket key file: line 2" in r.stderr + r.stdout


def test_client_certificates_required(tls_weir, pki):
    w, port = tls_weir("  client_ca: %s\n  client_verify: required\n" % pki.ca)
    ok = curl(port, "/", "a.test", "--cacert", pki.ca, "--cert", pki.path("client.pem"),
              "--key", pki.path("client.key"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("HTTP/1.1 200")
    none = curl(port, "/", "a.test", "--cacert", pki.ca)
    assert none.returncode != 0
    rogue = curl(port, "/", "a.test", "--cacert", pki.ca, "--cert", pki.path("mallory.pem"),
                 "--key", pki.path("mallory.key"))
    assert rogue.returncode != 0


def test_client_certificate_subject_is_the_rate_limit_identity(weir_factory, demo_backend, pki):
    b = demo_backend("b1")
    port = free_port()
    routes = ("- cluster: app\n  rate_limit:\n    - { algorithm: fixed_window, rate: 2/m, "
              "key: identity, on_missing: allow }\n")
    w = weir_factory(weir_yaml(port, tls_listener(pki, "  client_ca: %s\n  client_verify: optional\n"
                                                  % pki.ca), ["127.0.0.1:%d" % b.port],
                               routes=routes), port=port)
    alice = ["--cacert", pki.ca, "--cert", pki.path("client.pem"), "--key", pki.path("client.key")]
    codes = [curl(port, "/", "a.test", *alice).stdout.split(" ")[1] for _ in range(3)]
    assert codes == ["200", "200", "429"]
    # without a certificate there is no identity: on_missing (allow) lets it through
    for _ in range(3):
        anon = curl(port, "/", "a.test", "--cacert", pki.ca)
        assert anon.returncode == 0, anon.stderr
        assert anon.stdout.split(" ")[1] == "200"


def test_reload_with_good_then_bad_certificate(weir_factory, demo_backend, pki, tmp_path):
    b = demo_backend("b1")
    port = free_port()
    cert, key = tmp_path / "site.pem", tmp_path / "site.key"

    def put(name):
        cert.write_bytes(open(pki.path(name + ".pem"), "rb").read())
        key.write_bytes(open(pki.path(name + ".key"), "rb").read())

    put("default")
    listener = "tls:\n  certificates:\n    - { cert: %s, key: %s }\n" % (cert, key)
    text = weir_yaml(port, listener, ["127.0.0.1:%d" % b.port])
    w = weir_factory(text, port=port)
    assert subject_cn(s_client(port, "-servername", "default.test")) == "default-cert"
    put("next")
    w.reload(text)
    assert subject_cn(s_client(port, "-servername", "default.test")) == "next-cert"
    # a key that does not match the certificate: the reload fails, the old one serves
    cert.write_bytes(open(pki.path("default.pem"), "rb").read())
    key.write_bytes(open(pki.path("wild.key"), "rb").read())
    w.reload(text, expect_ok=False)
    assert "does not match the certificate" in w.errlog()
    assert subject_cn(s_client(port, "-servername", "default.test")) == "next-cert"
    cert.write_text("garbage\n")
    w.reload(text, expect_ok=False)
    assert "no PEM certificate" in w.errlog()
    assert subject_cn(s_client(port, "-servername", "default.test")) == "next-cert"


def test_plain_listener_redirects_to_https(weir_factory, demo_backend):
    from conftest import get
    b = demo_backend("b1")
    port = free_port()
    w = weir_factory(weir_yaml(port, "redirect_https: 8443\n", ["127.0.0.1:%d" % b.port]), port=port)
    r = get(port, "/a/b?x=1", host="example.test:%d" % port)
    assert r.status == 301
    assert r.header("location") == "https://example.test:8443/a/b?x=1"
    port2 = free_port()
    weir_factory(weir_yaml(port2, "redirect_https: true\n", ["127.0.0.1:%d" % b.port]), port=port2)
    assert get(port2, "/p", host="example.test").header("location") == "https://example.test/p"


# ---- TLS to upstreams ------------------------------------------------------------


class TlsBackend:
    """An HTTPS server (Python ssl) that answers 200 "tls-ok" and closes each
    connection (HTTP/1.0), so each request is a new handshake; counts the
    handshakes that resumed a session."""

    def __init__(self, cert, key, client_ca=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if client_ca:
            ctx.load_verify_locations(client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        owner = self
        self.resumed = 0
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                owner.requests += 1
                if self.connection.session_reused:
                    owner.resumed += 1
                body = b"tls-ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_backend():
    started = []

    def start(*a, **kw):
        b = TlsBackend(*a, **kw)
        started.append(b)
        return b
    yield start
    for b in started:
        b.stop()


def metric(aport, name, **labels):
    wait_port(aport, what="the admin listener")
    text = requests.get("http://127.0.0.1:%d/metrics" % aport, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all('%s="%s"' % kv in line for kv in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_upstream_tls_verify_sni_and_session_reuse(weir_factory, tls_backend, pki):
    be = tls_backend(pki.path("backend.pem"), pki.path("backend.key"))
    port, aport = free_port(), free_port()
    from conftest import cluster_yaml
    clusters = [
        cluster_yaml("good", ["127.0.0.1:%d" % be.port],
                     extra="tls: { ca: %s, sni: backend.test }\n" % pki.ca),
        cluster_yaml("wrongca", ["127.0.0.1:%d" % be.port],
                     extra="tls: { ca: %s, sni: backend.test }\n" % pki.rogue),
        cluster_yaml("wrongname", ["127.0.0.1:%d" % be.port],
                     extra="tls: { ca: %s, sni: other.test }\n" % pki.ca),
    ]
    routes = ("- match: { path_prefix: /bad }\n  cluster: wrongca\n"
              "- match: { path_prefix: /name }\n  cluster: wrongname\n"
              "- cluster: good\n")
    w = weir_factory(weir_yaml(port, "", None, clusters=clusters, routes=routes,
                               top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport), port=port)
    from conftest import get
    for _ in range(3):
        r = get(port, "/ok")
        assert r.status == 200 and r.body == b"tls-ok"
    assert get(port, "/bad").status == 502
    assert get(port, "/name").status == 502
    w.wait_log("certificate verify failed")
    # each request was a new connection (HTTP/1.0 backend): the later ones resumed
    assert be.resumed >= 2, (be.resumed, be.requests)
    assert metric(aport, "weir_tls_handshakes_total", side="client", result="success") >= 3
    assert metric(aport, "weir_tls_handshakes_total", side="client", result="failure") >= 2
    assert metric(aport, "weir_tls_resumptions_total", side="client") >= 2


class KeepAliveTlsBackend(TlsBackend):
    """The same over HTTP/1.1 keep-alive: counts TLS connections accepted."""

    def __init__(self, cert, key):
        super().__init__(cert, key)
        self.server.RequestHandlerClass.protocol_version = "HTTP/1.1"
        self.connections = 0
        owner, handle = self, self.server.RequestHandlerClass.setup

        def setup(h):
            owner.connections += 1
            handle(h)
        self.server.RequestHandlerClass.setup = setup


def test_upstream_tls_connections_are_pooled(weir_factory, pki):
    be = KeepAliveTlsBackend(pki.path("backend.pem"), pki.path("backend.key"))
    try:
        port, aport = free_port(), free_port()
        from conftest import cluster_yaml, get
        clusters = [cluster_yaml("good", ["127.0.0.1:%d" % be.port],
                                 extra="tls: { ca: %s, sni: backend.test }\n" % pki.ca)]
        text = weir_yaml(port, "", None, clusters=clusters, routes="- cluster: good\n",
                         top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport)
        w = weir_factory(text, port=port)
        for _ in range(5):
            r = get(port, "/")
            assert r.status == 200 and r.body == b"tls-ok"
        assert be.requests == 5
        assert be.connections == 1
        assert metric(aport, "weir_pool_reuses_total", cluster="good") == 4
        assert metric(aport, "weir_tls_handshakes_total", side="client", result="success") == 1
        # a reload makes a new context: its requests never take the old one's
        # connections (closed when idle), and resume the session on a new one
        w.reload(text)
        for _ in range(2):
            assert get(port, "/").status == 200
        assert be.connections == 2
        assert metric(aport, "weir_tls_handshakes_total", side="client", result="success") == 2
    finally:
        be.stop()


def test_upstream_client_certificate(weir_factory, tls_backend, pki):
    be = tls_backend(pki.path("backend.pem"), pki.path("backend.key"), client_ca=pki.ca)
    port = free_port()
    from conftest import cluster_yaml, get
    clusters = [
        cluster_yaml("with", ["127.0.0.1:%d" % be.port],
                     extra="tls: { ca: %s, sni: backend.test, cert: %s, key: %s }\n"
                     % (pki.ca, pki.path("client.pem"), pki.path("client.key"))),
        cluster_yaml("without", ["127.0.0.1:%d" % be.port],
                     extra="tls: { ca: %s, sni: backend.test }\n" % pki.ca),
    ]
    routes = "- match: { path_prefix: /without }\n  cluster: without\n- cluster: with\n"
    weir_factory(weir_yaml(port, "", None, clusters=clusters, routes=routes), port=port)
    assert get(port, "/").status == 200
    assert get(port, "/without").status == 502


def test_health_checks_over_tls(weir_factory, tls_backend, pki):
    be = tls_backend(pki.path("backend.pem"), pki.path("backend.key"))
    port, aport = free_port(), free_port()
    from conftest import cluster_yaml, get
    hc = "health_check: { type: http, path: /, interval: 200ms, timeout: 200ms, rise: 1, fall: 1 }\n"
    clusters = [
        cluster_yaml("good", ["127.0.0.1:%d" % be.port],
                     extra="tls: { ca: %s, sni: backend.test }\n" % pki.ca + hc),
        cluster_yaml("bad", ["127.0.0.1:%d" % be.port],
                     extra="tls: { ca: %s, sni: backend.test }\n" % pki.rogue + hc),
    ]
    routes = "- match: { path_prefix: /bad }\n  cluster: bad\n- cluster: good\n"
    w = weir_factory(weir_yaml(port, "", None, clusters=clusters, routes=routes,
                               top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport), port=port)
    wait_until(lambda: metric(aport, "weir_endpoint_up", cluster="bad") == 0,
               what="the bad cluster's endpoint marked down")
    wait_until(lambda: metric(aport, "weir_health_checks_total", cluster="good", result="success") >= 2,
               what="TLS health checks passing")
    assert metric(aport, "weir_endpoint_up", cluster="good") == 1
    assert get(port, "/").status == 200
    assert get(port, "/bad").status == 503


def test_listener_tls_metrics(weir_factory, demo_backend, pki):
    b = demo_backend("b1")
    port, aport = free_port(), free_port()
    weir_factory(weir_yaml(port, tls_listener(pki), ["127.0.0.1:%d" % b.port],
                           top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport), port=port)
    s_client(port, "-servername", "a.test", "-tls1_2")
    s_client(port, "-servername", "a.test", "-tls1_3")
    s_client(port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    wait_until(lambda: metric(aport, "weir_tls_handshakes_total", side="server", result="failure") >= 1,
               what="a failed handshake counted")
    assert metric(aport, "weir_tls_handshakes_total", side="server", result="success") >= 2
    assert metric(aport, "weir_tls_versions_total", side="server", version="TLSv1.2") >= 1
    assert metric(aport, "weir_tls_versions_total", side="server", version="TLSv1.3") >= 1


def test_config_errors_point_at_the_value(tmp_path, pki):
    port = free_port()
    cases = [
        ("tls:\n  certificates:\n    - { cert: %s, key: %s }\n" % (pki.path("a_ec.pem"), pki.path("a_rsa.key")),
         "does not match the certificate"),
        ("tls:\n  certificates:\n    - { cert: /nonexistent.pem, key: %s }\n" % pki.path("a_ec.key"),
         "cannot open"),
        ("tls:\n  certificates: []\n", "at least one certificate"),
        ("hsts: { max_age: 10 }\n", "only on a listener with tls"),
        ("tls:\n  certificates:\n    - { cert: %s, key: %s, ocsp: %s }\n"
         % (pki.path("a_ec.pem"), pki.path("a_ec.key"), pki.path("a_ec.pem")), "not a DER OCSP response"),
    ]
    for i, (listener, want) in enumerate(cases):
        f = tmp_path / ("c%d.yaml" % i)
        f.write_text(weir_yaml(port, listener, ["127.0.0.1:1"]))
        r = sh(os.environ["WEIR_BIN"], "check", "-c", str(f))
        assert r.returncode == 2, (listener, r.stdout, r.stderr)
        assert want in r.stderr + r.stdout, (want, r.stderr)
        assert re.search(r"c%d\.yaml:\d+:\d+: " % i, r.stderr + r.stdout)
