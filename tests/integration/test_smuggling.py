"""Malformed and ambiguous requests: each is refused with the right status,
nothing reaches the backend, and the client connection is closed."""
import pytest

from conftest import RawClient, Closed

H = b"Host: weir.test\r\n"


@pytest.fixture
def pair(proxy):
    return proxy()


def assert_rejected(pair, data, statuses=(400,)):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status in statuses, (r.status, data)
        assert (r.header("Connection") or "").lower() == "close"
        assert c.is_closed(), "connection left open after %d" % r.status
    # the proxy still works, and only this request reached the backend
    with RawClient(w.port) as c:
        c.send(b"GET /after HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        assert c.read_response().status == 200
    reqs = b.wait_requests(1)
    assert [r.target for r in reqs] == ["/after"], reqs
    assert b.raw_received().count(b"HTTP/1.1\r\n") == 1
    return r


FRAMING = {
    "cl_and_te": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_and_cl": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "two_cl_same": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nabcde",
    "two_cl_different": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
    "cl_list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nabcde",
    "cl_plus": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nabcde",
    "cl_two_numbers": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5 5\r\n\r\nabcde",
    "cl_hex": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nabcde",
    "cl_negative": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
    "cl_empty": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n",
    "cl_suffix": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5a\r\n\r\nabcde",
    "cl_overflow": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999999\r\n\r\n",
    "te_chunked_gzip": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "te_chunked_chunked": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "te_two_fields": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_xchunked": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te_http10": b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_space_before_colon": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te_vtab_name": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding\x0b: chunked\r\n\r\n0\r\n\r\n",
    "te_leading_space_line": b"POST / HTTP/1.1\r\n" + H + b" Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(FRAMING))
def test_ambiguous_framing_rejected(pair, name):
    assert_rejected(pair, FRAMING[name])


def test_te_gzip_alone_rejected(pair):
    # final coding is not chunked: the length cannot be known (400), or an
    # unsupported coding (501): both refuse it
    assert_rejected(pair, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", (400, 501))


def test_te_gzip_chunked_not_implemented(pair):
    assert_rejected(pair, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", (501,))


SYNTAX = {
    "obs_fold": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n",
    "obs_fold_tab": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n\tb\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n",
    "host_space_before_colon": b"GET / HTTP/1.1\r\nHost : weir.test\r\n\r\n",
    "bare_cr_in_value": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n",
    "bare_cr_line_end": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\r\n\r\n",
    "bare_lf_everywhere": b"GET / HTTP/1.1\n" + b"Host: weir.test\n\n",
    "bare_lf_one_header": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\nX-B: b\r\n\r\n",
    "bare_lf_end_of_head": b"GET / HTTP/1.1\r\n" + H + b"\n",
    "nul_in_value": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n",
    "ctl_in_value": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n",
    "del_in_value": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n",
    "esc_in_value": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x1bb\r\n\r\n",
    "paren_in_name": b"GET / HTTP/1.1\r\n" + H + b"X(A): b\r\n\r\n",
    "space_in_name": b"GET / HTTP/1.1\r\n" + H + b"X A: b\r\n\r\n",
    "high_byte_in_name": b"GET / HTTP/1.1\r\n" + H + b"X\x80A: b\r\n\r\n",
    "empty_name": b"GET / HTTP/1.1\r\n" + H + b": b\r\n\r\n",
    "no_colon": b"GET / HTTP/1.1\r\n" + H + b"X-A b\r\n\r\n",
    "missing_host": b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
    "two_hosts_same": b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n",
    "host_with_space": b"GET / HTTP/1.1\r\nHost: a b.test\r\n\r\n",
    "host_with_slash": b"GET / HTTP/1.1\r\nHost: a.test/evil\r\n\r\n",
    "host_with_at": b"GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n",
    "two_spaces_in_request_line": b"GET  / HTTP/1.1\r\n" + H + b"\r\n",
    "trailing_space_request_line": b"GET / HTTP/1.1 \r\n" + H + b"\r\n",
    "tab_separator": b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n",
    "space_in_target": b"GET /a b HTTP/1.1\r\n" + H + b"\r\n",
    "ctl_in_target": b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n",
    "lowercase_version": b"GET / http/1.1\r\n" + H + b"\r\n",
    "bad_version": b"GET / HTTP/1.x\r\n" + H + b"\r\n",
    "no_version": b"GET /\r\n" + H + b"\r\n",
    "bad_method": b"G(T / HTTP/1.1\r\n" + H + b"\r\n",
    "star_with_get": b"GET * HTTP/1.1\r\n" + H + b"\r\n",
    "authority_form_with_get": b"GET weir.test:80 HTTP/1.1\r\n" + H + b"\r\n",
}


@pytest.mark.parametrize("name", sorted(SYNTAX))
def test_bad_syntax_rejected(pair, name):
    assert_rejected(pair, SYNTAX[name])


@pytest.mark.parametrize("bad, status", [
    (b"GET / HTTP/1.1\r\nHost : weir.test\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: weir.test\r\n\r\n", 505),
    (b"POST / HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
])
def test_bad_second_request_on_keep_alive_connection(pair, bad, status):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"GET /first HTTP/1.1\r\n" + H + b"\r\n")
        assert c.read_response().status == 200
        c.send(bad)
        r = c.read_response()
        assert r.status == status
        assert c.is_closed()
    assert [r.target for r in b.requests] == ["/first"]


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/3.0"])
def test_unsupported_version_505(pair, version):
    assert_rejected(pair, b"GET / " + version + b"\r\n" + H + b"\r\n", (505,))


def test_connect_not_implemented(pair):
    assert_rejected(pair, b"CONNECT weir.test:443 HTTP/1.1\r\nHost: weir.test:443\r\n\r\n", (501,))


def test_valid_edge_cases_accepted(proxy):
    """Things that look odd but are valid must still pass."""
    w, b = proxy()
    ok = [
        b"GET / HTTP/1.1\r\nHost: weir.test\r\nX-A:\tvalue with\ttabs \t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: weir.test\r\nX-Empty:\r\n\r\n",
        b"\r\nGET / HTTP/1.1\r\nHost: weir.test\r\n\r\n",  # a leading empty line is skipped
        b"POST / HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 005\r\n\r\nabcde",
        b"POST / HTTP/1.1\r\nHost: weir.test\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: weir.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        b"GET / HTTP/1.1\r\nhOsT: weir.test\r\n\r\n",
    ]
    for data in ok:
        with RawClient(w.port) as c:
            c.send(data)
            assert c.read_response().status == 200, data
    reqs = b.wait_requests(len(ok))
    assert reqs[0].header("X-A") == "value with\ttabs"
    assert reqs[3].body == b"abcde"
    assert reqs[4].body == b"abc"
    assert reqs[5].target == "*"


# ---- bodies that go wrong after the head was accepted ------------------------


def assert_no_smuggled(b, marker=b"/smuggled"):
    raw = b.raw_received()
    assert marker not in raw, raw
    assert all(r.target != "/smuggled" for r in b.requests)


def finish(c):
    """The client gets an error answer and/or the connection closes."""
    try:
        r = c.read_response()
    except Closed:
        return None
    assert r.status >= 400, r
    assert c.is_closed()
    return r


def test_oversized_chunk_size(pair):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
               b"fffffffffffffffffff\r\nabc\r\n0\r\n\r\n")
        r = finish(c)
        assert r is None or r.status == 400
    assert b.count == 0  # the backend never got a complete request


def test_chunk_size_not_hex(pair):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
               b"zz\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + H + b"\r\n")
        r = finish(c)
        assert r is None or r.status == 400
    assert b.count == 0
    assert_no_smuggled(b)


def test_chunk_data_longer_than_size(pair):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabcdef\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + H + b"\r\n")
        r = finish(c)
        assert r is None or r.status == 400
    assert b.count == 0
    assert_no_smuggled(b)


def test_chunk_line_bare_lf(pair):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
               b"3\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + H + b"\r\n")
        finish(c)
    assert b.count == 0
    assert_no_smuggled(b)


def test_cl_te_classic(pair):
    # front end uses Content-Length, back end uses chunked: "G" would prefix
    # the next request
    assert_rejected(pair, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")
    assert pair[1].raw_received().startswith(b"GET /after ")


def test_te_cl_classic(pair):
    smuggled = b"GET /smuggled HTTP/1.1\r\n" + H + b"Content-Length: 15\r\n\r\nx=1"
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    assert_rejected(pair, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert_no_smuggled(pair[1])


def test_get_with_body_is_one_request(pair):
    """A body on a GET is a body, never a second request."""
    w, b = pair
    inner = b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"
    with RawClient(w.port) as c:
        c.send(b"GET /outer HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(inner) + inner)
        r = c.read_response()
        assert r.status == 200
        c.send(b"GET /next HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        assert c.read_response().status == 200
    reqs = b.wait_requests(2)
    assert [r.target for r in reqs] == ["/outer", "/next"]
    assert reqs[0].body == inner
    assert all(r.target != "/smuggled" for r in b.requests)


def test_chunked_body_then_pipelined_request(pair):
    """A valid chunked body followed by a real request: both reach the backend,
    each with the right body."""
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"POST /one HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n"
               b"POST /two HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nConnection: close\r\n\r\nabc")
        assert c.read_response().status == 200
        assert c.read_response().status == 200
    reqs = b.wait_requests(2)
    assert [(r.target, r.body) for r in reqs] == [("/one", b"hello"), ("/two", b"abc")]
