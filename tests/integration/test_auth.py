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
