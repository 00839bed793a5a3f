"""The test CA of the TLS tests (test_tls.py, test_http2.py, test_tcp_tls.py):
certificates made with the openssl CLI in one directory."""
import os
import subprocess

from conftest import IO_TIMEOUT


def sh(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=IO_TIMEOUT, **kw)


class Pki:
    """A CA and the certificates the tests use, in one directory."""

    def __init__(self, d):
        self.d = d
        self.ca = self._ca("ca", "weir test CA")
        self.rogue = self._ca("rogue", "rogue CA")

    def path(self, name):
        return os.path.join(self.d, name)

    def _key(self, name, kind):
        if kind == "rsa":
            sh("openssl", "genrsa", "-out", self.path(name + ".key"), "2048")
        else:
            sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-out", self.path(name + ".key"))

    def _ca(self, name, cn):
        self._key(name, "ec")
        r = sh("openssl", "req", "-x509", "-new", "-key", self.path(name + ".key"), "-days", "2",
               "-subj", "/CN=" + cn, "-out", self.path(name + ".pem"))
        assert r.returncode == 0, r.stderr
        return self.path(name + ".pem")

    def issue(self, name, cn, sans=None, kind="ec", ca="ca", client=False):
        """Makes NAME.pem / NAME.key signed by `ca`; returns (cert, key)."""
        self._key(name, kind)
        csr = self.path(name + ".csr")
        r = sh("openssl", "req", "-new", "-key", self.path(name + ".key"), "-subj", "/CN=" + cn,
               "-out", csr)
        assert r.returncode == 0, r.stderr
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            if sans:
                f.write("subjectAltName=%s\n" % ",".join("DNS:" + s for s in sans))
            f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
        r = sh("openssl", "x509", "-req", "-in", csr, "-CA", self.path(ca + ".pem"), "-CAkey",
               self.path(ca + ".key"), "-CAcreateserial", "-days", "2", "-extfile", ext,
               "-out", self.path(name + ".pem"))
        assert r.returncode == 0, r.stderr
        return self.path(name + ".pem"), self.path(name + ".key")

    def ocsp(self, name):
        """A signed OCSP response saying NAME.pem is good: NAME.ocsp (DER)."""
        cert = self.path(name + ".pem")
        serial = sh("openssl", "x509", "-in", cert, "-noout", "-serial").stdout.strip().split("=")[1]
        subject = sh("openssl", "x509", "-in", cert, "-noout", "-subject", "-nameopt",
                     "compat").stdout.strip().split("=", 1)[1]
        index = self.path("index.txt")
        with open(index, "w") as f:
            f.write("V\t301231235959Z\t\t%s\tunknown\t%s\n" % (serial, subject))
        req = self.path(name + ".ocspreq")
        r = sh("openssl", "ocsp", "-issuer", self.ca, "-cert", cert, "-reqout", req, "-no_nonce")
        assert r.returncode == 0, r.stderr
        r = sh("openssl", "ocsp", "-index", index, "-rsigner", self.ca, "-rkey", self.path("ca.key"),
               "-CA", self.ca, "-reqin", req, "-respout", self.path(name + ".ocsp"), "-ndays", "1")
        assert r.returncode == 0, r.stderr
        return self.path(name + ".ocsp")
