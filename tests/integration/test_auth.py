"""The auth step: API keys (header, query, file), HTTP Basic, JWT bearer
tokens; 401/403 answers and the identity forwarded to the backend."""
import os

import pytest

from conftest import WEIR_BIN, config, free_port, request
import subprocess


def get(w, target="/", headers=""):
    return request(w.port, ("GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                            % (target, headers)).encode())


def check_config(tmp_path, routes, name="bad.yaml"):
    """Runs `weir -t` on a config with these routes; returns (exit code, stderr)."""
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write(config(free_port(), ["127.0.0.1:1"], routes=routes))
    p = subprocess.run([WEIR_BIN, "check", "-c", path], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


# ---- api_key ------------------------------------------------------------------

KEY_ROUTES = """
- auth:
    api_key:
      keys: [{ name: alice, key: "k-alice-1" }, { name: bob, key: "k-bob-2" }]
  cluster: app
"""


def test_api_key_header_good_key_forwards_identity(proxy):
    w, b = proxy(routes=KEY_ROUTES)
    r = get(w, headers="X-Api-Key: k-bob-2\r\nX-Auth-Identity: forged\r\nX-Auth-Identity: again\r\n")
    assert r.status == 200
    req = b.requests[-1]
    assert req.header_all("X-Auth-Identity") == ["bob"]


def test_api_key_missing_and_bad_answer_401(proxy):
    w, b = proxy(routes=KEY_ROUTES)
    r = get(w)
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'ApiKey realm="weir", header="X-Api-Key"'
    assert r.body == b"unauthorized\n"
    for bad in ("k-alice-", "k-alice-12", "K-ALICE-1", "x"):
        r = get(w, headers="X-Api-Key: %s\r\n" % bad)
        assert r.status == 401, bad
    assert b.requests == []


def test_api_key_query_and_custom_identity_header(proxy):
    routes = """
- auth:
    api_key: { query: api_key, keys: [{ name: carol, key: "a+b/c=" }] }
    identity_header: X-User
    realm: "my api"
  cluster: app
"""
    w, b = proxy(routes=routes)
    r = get(w, "/p?x=1&api_key=a%2Bb%2Fc%3D&y=2", headers="X-User: mallory\r\n")
    assert r.status == 200
    assert b.requests[-1].header_all("X-User") == ["carol"]
    assert b.requests[-1].header("X-Auth-Identity") is None
    r = get(w, "/p?api_key=a+b/c=")
    assert r.status == 200
    r = get(w, "/p?apikey=a%2Bb%2Fc%3D", headers="X-Api-Key: a+b/c=\r\n")
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'ApiKey realm="my api", query="api_key"'
    r = get(w, "/p?api_key=a%2")
    assert r.status == 401
    assert len(b.requests) == 2


def test_api_key_file_read_again_on_reload(proxy, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# team keys\n\nalice: k1 \ndave:k4\r\n")
    routes = """
- auth: { api_key: { file: keys.txt, keys: [{ name: ci, key: kci }] } }
  cluster: app
"""
    w, b = proxy(routes=routes)
    assert get(w, headers="X-Api-Key: k1\r\n").status == 200
    assert get(w, headers="X-Api-Key: k4\r\n").status == 200
    assert get(w, headers="X-Api-Key: kci\r\n").status == 200
    assert [r.header("X-Auth-Identity") for r in b.requests] == ["alice", "dave", "ci"]
    keys.write_text("erin:k5\n")
    with open(w.config_path) as f:
        text = f.read()
    w.reload(text)
    assert get(w, headers="X-Api-Key: k1\r\n").status == 401
    assert get(w, headers="X-Api-Key: k5\r\n").status == 200
    assert b.requests[-1].header("X-Auth-Identity") == "erin"


def test_api_key_only_on_its_route(proxy):
    routes = """
- match: { path_prefix: /private/ }
  auth: { api_key: { keys: [{ name: a, key: k }] } }
  cluster: app
- cluster: app
"""
    w, b = proxy(routes=routes)
    assert get(w, "/private/x").status == 401
    r = get(w, "/public", headers="X-Auth-Identity: forged\r\n")
    assert r.status == 200
    assert b.requests[-1].header("X-Auth-Identity") == "forged"  # no auth step here


@pytest.mark.parametrize("routes,message", [
    ("- auth: {}\n  cluster: app", "auth needs a method"),
    ("- auth: { api_key: { header: X-K } }\n  cluster: app", "api_key needs 'keys' or 'file'"),
    ("- auth: { api_key: { header: X-K, query: k, keys: [{name: a, key: b}] } }\n  cluster: app",
     "one place"),
    ("- auth: { api_key: { keys: [{name: a, key: b}, {name: c, key: b}] } }\n  cluster: app",
     "the same key is given twice"),
    ("- auth: { api_key: { keys: [{name: a, key: 'has space'}] } }\n  cluster: app",
     "a key must be"),
    ("- auth: { api_key: { file: nope.txt } }\n  cluster: app", "cannot open"),
    ("- auth: { api_key: { keys: [{name: a, key: b}] }, identity_header: Host }\n  cluster: app",
     "cannot carry the identity"),
    ("- auth: { api_key: { keys: [{name: a, key: b}] }, realm: 'a\"b' }\n  cluster: app",
     "'realm' must be"),
])
def test_auth_config_errors(tmp_path, routes, message):
    rc, err = check_config(tmp_path, routes)
    assert rc == 2
    assert message in err, err


def test_api_key_file_error_names_line(tmp_path):
    (tmp_path / "k.txt").write_text("a:1\nbroken line\n")
    rc, err = check_config(tmp_path, "- auth: { api_key: { file: k.txt } }\n  cluster: app")
    assert rc == 2
    assert "'k.txt' line 2: expected name:key" in err, err


# ---- basic ----------------------------------------------------------------------


def htpasswd_line(user, password, kind):
    """user:hash with a hash of `kind`: sha256, sha512 (crypt), bcrypt-2b, bcrypt-2y."""
    if kind.startswith("bcrypt"):
        import bcrypt
        h = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        if kind == "bcrypt-2y":
            h = "$2y$" + h[4:]
        return "%s:%s" % (user, h)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    method = crypt.METHOD_SHA256 if kind == "sha256" else crypt.METHOD_SHA512
    return "%s:%s" % (user, crypt.crypt(password, crypt.mksalt(method)))


def basic(user, password):
    import base64
    return "Authorization: Basic %s\r\n" % base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


USERS = [("ann", "pw-ann", "sha256"), ("ben", "pw ben:colon", "sha512"),
         ("cat", "pw-cat", "bcrypt-2b"), ("dan", "pw-dan", "bcrypt-2y")]


@pytest.fixture
def basic_weir(proxy, tmp_path):
    (tmp_path / "users.htpasswd").write_text(
        "# users\n" + "\n".join(htpasswd_line(u, p, k) for u, p, k in USERS) + "\n")
    return proxy(routes="- auth: { basic: { file: users.htpasswd } }\n  cluster: app")


def test_basic_every_hash_kind(basic_weir):
    w, b = basic_weir
    for user, password, kind in USERS:
        r = get(w, headers=basic(user, password) + "X-Auth-Identity: forged\r\n")
        assert r.status == 200, kind
        assert b.requests[-1].header_all("X-Auth-Identity") == [user]
        # the same credentials again (from the worker's cache when it kept them)
        assert get(w, headers=basic(user, password)).status == 200
    assert len(b.requests) == 8


def test_basic_missing_wrong_unknown_malformed(basic_weir):
    w, b = basic_weir
    r = get(w)
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Basic realm="weir", charset="UTF-8"'
    for headers in (basic("ann", "pw-ben"), basic("ann", "pw-ann "), basic("cat", "pw-cat2"),
                    basic("zed", "pw-ann"), basic("", "pw-ann"), basic("ann", ""),
                    "Authorization: Basic YW5uOnB3LWFubg\r\n",   # unpadded
                    "Authorization: Basic !!!!\r\n", "Authorization: Basic \r\n",
                    "Authorization: Basic YW5u\r\n"):            # "ann", no colon
        r = get(w, headers=headers)
        assert r.status == 401, headers
    r = get(w, headers="Authorization: Bearer abc\r\n")
    assert r.status == 401
    assert b.requests == []
    r = get(w, headers=basic("ann", "pw-ann").replace("Basic", "bAsIc"))
    assert r.status == 200


def test_basic_password_change_on_reload_beats_the_cache(proxy, tmp_path):
    f = tmp_path / "users.htpasswd"
    f.write_text(htpasswd_line("ann", "old", "bcrypt-2b") + "\n")
    w, b = proxy(routes="- auth: { basic: { file: users.htpasswd } }\n  cluster: app")
    assert get(w, headers=basic("ann", "old")).status == 200
    assert get(w, headers=basic("ann", "old")).status == 200
    f.write_text(htpasswd_line("ann", "new", "bcrypt-2b") + "\n")
    with open(w.config_path) as fh:
        w.reload(fh.read())
    assert get(w, headers=basic("ann", "old")).status == 401
    assert get(w, headers=basic("ann", "new")).status == 200


@pytest.mark.parametrize("content,message", [
    ("ann:$apr1$abc$0123456789012345678901\n", "line 1: unsupported hash"),
    ("ann:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "line 1: unsupported hash"),
    ("ann:plain\n", "line 1: unsupported hash"),
    ("# nobody\n", "has no users"),
    ("ann\n", "line 1: expected user:hash"),
])
def test_basic_file_errors(tmp_path, content, message):
    (tmp_path / "u.htpasswd").write_text(content)
    rc, err = check_config(tmp_path, "- auth: { basic: { file: u.htpasswd } }\n  cluster: app")
    assert rc == 2
    assert message in err, err


def test_basic_duplicate_user(tmp_path):
    (tmp_path / "u.htpasswd").write_text(htpasswd_line("ann", "a", "sha256") + "\n" +
                                         htpasswd_line("ann", "b", "sha512") + "\n")
    rc, err = check_config(tmp_path, "- auth: { basic: { file: u.htpasswd } }\n  cluster: app")
    assert rc == 2
    assert "lists user ann twice" in err, err


def test_auth_two_methods_refused(tmp_path):
    (tmp_path / "u.htpasswd").write_text(htpasswd_line("ann", "a", "sha256") + "\n")
    rc, err = check_config(tmp_path, "- auth: { api_key: { keys: [{name: a, key: b}] }, "
                                     "basic: { file: u.htpasswd } }\n  cluster: app")
    assert rc == 2
    assert "auth has two methods" in err, err


# ---- jwt ------------------------------------------------------------------------

import base64 as _b64
import hashlib
import hmac
import json
import time

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def b64u(data):
    return _b64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def jwk_of(key, kid):
    """The public JWK of a private key (PyJWT's algorithms do the encoding)."""
    if isinstance(key, rsa.RSAPrivateKey):
        d = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        d = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    else:
        d = json.loads(pyjwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    d["kid"] = kid
    return d


def claims(**kw):
    now = int(time.time())
    c = {"sub": "user-1", "iat": now, "exp": now + 300}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def bearer(token):
    return "Authorization: Bearer %s\r\n" % token


def hand_token(header, payload, key=b""):
    """A token built by hand (for what PyJWT refuses to make): HMAC-SHA256 with key."""
    signing = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(payload).encode())
    sig = hmac.new(key, signing.encode(), hashlib.sha256).digest() if key else b""
    return signing + "." + b64u(sig)


@pytest.fixture(scope="module")
def keys():
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
    }


def test_jwt_hmac_algorithms_identity_and_claims(proxy):
    routes = """
- auth:
    jwt:
      secret: "%s"
      claims_to_headers: { email: X-Email, level: X-Level }
  cluster: app
""" % SECRET
    w, b = proxy(routes=routes)
    for alg in ("HS256", "HS384", "HS512"):
        tok = pyjwt.encode(claims(sub="ann-" + alg, email="ann@example.com", level=3), SECRET,
                           algorithm=alg)
        r = get(w, headers=bearer(tok) + "X-Email: forged\r\nX-Level: 9\r\nX-Auth-Identity: x\r\n")
        assert r.status == 200, alg
        req = b.requests[-1]
        assert req.header_all("X-Auth-Identity") == ["ann-" + alg]
        assert req.header_all("X-Email") == ["ann@example.com"]
        assert req.header_all("X-Level") == ["3"]
    # a claim the token lacks: the client's copy is still removed
    tok = pyjwt.encode(claims(), SECRET, algorithm="HS256")
    assert get(w, headers=bearer(tok) + "X-Email: forged\r\n").status == 200
    assert not b.requests[-1].has("X-Email")


def test_jwt_missing_bad_expired_not_yet_valid(proxy):
    routes = "- auth: { jwt: { secret: \"%s\", clock_skew: 10s } }\n  cluster: app" % SECRET
    w, b = proxy(routes=routes)
    r = get(w)
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Bearer realm="weir"'
    now = int(time.time())
    bad = [
        pyjwt.encode(claims(exp=now - 60), SECRET, algorithm="HS256"),             # expired
        pyjwt.encode(claims(nbf=now + 60), SECRET, algorithm="HS256"),             # not yet valid
        pyjwt.encode(claims(), SECRET[:-1] + "X", algorithm="HS256"),              # wrong secret
        pyjwt.encode(claims(exp="soon"), SECRET, algorithm="HS256"),               # exp not a number
        pyjwt.encode(claims(sub=None), SECRET, algorithm="HS256"),                 # no identity
        pyjwt.encode(claims(sub="a\u0001b"), SECRET, algorithm="HS256"),           # unsendable identity
        hand_token({"alg": "none", "typ": "JWT"}, claims()) + "AA",                # alg none
        hand_token({"alg": "HS256", "crit": ["x"], "x": 1}, claims(), SECRET.encode()),
        "a.b", "not a token",
    ]
    for tok in bad:
        r = get(w, headers=bearer(tok))
        assert r.status == 401, tok
        assert r.header("WWW-Authenticate") == 'Bearer realm="weir", error="invalid_token"', tok
    # tampered payload, original signature
    good = pyjwt.encode(claims(), SECRET, algorithm="HS256")
    h, p, s = good.split(".")
    forged = h + "." + b64u(json.dumps(claims(sub="admin")).encode()) + "." + s
    assert get(w, headers=bearer(forged)).status == 401
    assert b.requests == []
    # within the clock skew
    assert get(w, headers=bearer(pyjwt.encode(claims(exp=now - 2), SECRET, algorithm="HS256"))).status == 200
    assert get(w, headers=bearer(pyjwt.encode(claims(nbf=now + 2), SECRET, algorithm="HS256"))).status == 200
    assert get(w, headers=bearer(good).replace("Bearer", "bearer")).status == 200


def test_jwt_rsa_pem_and_algorithm_confusion(proxy, tmp_path, keys):
    (tmp_path / "pub.pem").write_bytes(pem_public(keys["rsa"]))
    w, b = proxy(routes="- auth: { jwt: { key_file: pub.pem } }\n  cluster: app")
    for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
        tok = pyjwt.encode(claims(sub=alg), keys["rsa"], algorithm=alg)
        assert get(w, headers=bearer(tok)).status == 200, alg
        assert b.requests[-1].header("X-Auth-Identity") == alg
    # signed by another RSA key
    assert get(w, headers=bearer(pyjwt.encode(claims(), keys["rsa2"], algorithm="RS256"))).status == 401
    # HS256 "signed" with the public key's PEM as the HMAC secret
    confused = hand_token({"alg": "HS256", "typ": "JWT"}, claims(), pem_public(keys["rsa"]))
    assert get(w, headers=bearer(confused)).status == 401
    # an ES256 token against an RSA-only route
    assert get(w, headers=bearer(pyjwt.encode(claims(), keys["p256"], algorithm="ES256"))).status == 401
    assert len(b.requests) == 6


def test_jwt_jwks_by_kid_ec_eddsa_and_rotation(proxy, tmp_path, keys):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk_of(keys["p256"], "k256"), jwk_of(keys["p384"], "k384"),
                                         jwk_of(keys["ed"], "ked"), jwk_of(keys["rsa"], "krsa")]}))
    w, b = proxy(routes="- auth: { jwt: { jwks: jwks.json, algorithms: [ES256, ES384, EdDSA, RS256] } }\n"
                        "  cluster: app")
    cases = [("p256", "ES256", "k256"), ("p384", "ES384", "k384"), ("ed", "EdDSA", "ked"),
             ("rsa", "RS256", "krsa")]
    for name, alg, kid in cases:
        tok = pyjwt.encode(claims(sub=name), keys[name], algorithm=alg, headers={"kid": kid})
        assert get(w, headers=bearer(tok)).status == 200, alg
        assert b.requests[-1].header("X-Auth-Identity") == name
    # without kid: every key of the right kind is tried
    assert get(w, headers=bearer(pyjwt.encode(claims(), keys["p256"], algorithm="ES256"))).status == 200
    # a kid that names another key, an unknown kid
    tok = pyjwt.encode(claims(), keys["p256"], algorithm="ES256", headers={"kid": "k384"})
    assert get(w, headers=bearer(tok)).status == 401
    tok = pyjwt.encode(claims(), keys["p256"], algorithm="ES256", headers={"kid": "gone"})
    assert get(w, headers=bearer(tok)).status == 401
    # an allowed kind but an algorithm not in the list
    assert get(w, headers=bearer(pyjwt.encode(claims(), keys["rsa"], algorithm="PS256",
                                              headers={"kid": "krsa"}))).status == 401
    # rotation: k256 replaced by a new key on reload
    new = ec.generate_private_key(ec.SECP256R1())
    jwks.write_text(json.dumps({"keys": [jwk_of(new, "k256-2")]}))
    with open(w.config_path) as f:
        w.reload(f.read())
    old = pyjwt.encode(claims(), keys["p256"], algorithm="ES256", headers={"kid": "k256"})
    assert get(w, headers=bearer(old)).status == 401
    tok = pyjwt.encode(claims(sub="new"), new, algorithm="ES256", headers={"kid": "k256-2"})
    assert get(w, headers=bearer(tok)).status == 200
    assert b.requests[-1].header("X-Auth-Identity") == "new"


def test_jwt_issuer_audience_and_require(proxy):
    routes = """
- auth:
    jwt:
      secret: "%s"
      issuer: https://id.example.com
      audience: [orders, billing]
      require: { scope: "orders:write", role: admin }
  cluster: app
""" % SECRET
    w, b = proxy(routes=routes)
    ok = dict(iss="https://id.example.com", aud="orders", scope="orders:read orders:write",
              role=["user", "admin"])

    def status(**kw):
        c = dict(ok)
        c.update(kw)
        return get(w, headers=bearer(pyjwt.encode(claims(**c), SECRET, algorithm="HS256"))).status

    assert status() == 200
    assert status(aud=["x", "billing"]) == 200
    assert status(role="admin") == 200
    assert status(iss="https://evil.example.com") == 401
    assert status(iss=None) == 401
    assert status(aud="other") == 401
    assert status(aud=None) == 401
    r = get(w, headers=bearer(pyjwt.encode(claims(**dict(ok, scope="orders:read")), SECRET,
                                           algorithm="HS256")))
    assert r.status == 403
    assert r.body == b"forbidden\n"
    assert status(scope="orders:writer") == 403
    assert status(role=["user"]) == 403
    assert status(role=None) == 403
    assert len(b.requests) == 3


@pytest.mark.parametrize("jwt_yaml,message", [
    ("{ issuer: x }", "jwt needs keys"),
    ("{ secret: short }", "at least 32 bytes"),
    ("{ secret: \"%s\", algorithms: [RS256] }" % SECRET, "no key fits any of 'algorithms'"),
    ("{ secret: \"%s\", algorithms: [none] }" % SECRET, "unknown algorithm 'none'"),
    ("{ secret: \"%s\", claims_to_headers: { sub: Content-Length } }" % SECRET, "cannot carry a claim"),
    ("{ key_file: missing.pem }", "cannot open"),
])
def test_jwt_config_errors(tmp_path, jwt_yaml, message):
    rc, err = check_config(tmp_path, "- auth: { jwt: %s }\n  cluster: app" % jwt_yaml)
    assert rc == 2
    assert message in err, err


def test_jwt_weak_rsa_and_bad_jwks_refused(tmp_path):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "small.pem").write_bytes(pem_public(small))
    rc, err = check_config(tmp_path, "- auth: { jwt: { key_file: small.pem } }\n  cluster: app")
    assert rc == 2 and "shorter than 2048 bits" in err, err
    (tmp_path / "j.json").write_text('{"keys": [{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}]}')
    rc, err = check_config(tmp_path, "- auth: { jwt: { jwks: j.json } }\n  cluster: app")
    assert rc == 2 and "jwks key 0: unsupported or invalid EC key" in err, err
    (tmp_path / "j.json").write_text('{"keys": []}')
    rc, err = check_config(tmp_path, "- auth: { jwt: { jwks: j.json } }\n  cluster: app")
    assert rc == 2 and "no \"keys\" array" in err, err


def test_api_key_empty_file_refused(tmp_path):
    (tmp_path / "k.txt").write_text("# nobody yet\n")
    rc, err = check_config(tmp_path, "- auth: { api_key: { file: k.txt } }\n  cluster: app")
    assert rc == 2
    assert "api_key has no keys" in err, err
