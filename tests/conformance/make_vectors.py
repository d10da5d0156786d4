#!/usr/bin/env python3
"""Writes http1_requests.json, the HTTP/1.1 request conformance table.

Each vector: name, class, request (bytes as a latin-1 string), expect (the client's status:
a number; 0 = the connection closes without an answer) and origin (what the origin receives:
"same" = the request byte for byte, null = nothing, or the exact bytes). sniff = true marks
vectors that reach the HTTP parser only with the sniff rule that sends any token method,
leading empty lines and tabs to it.
Run: tests/conformance/make_vectors.py (rewrites the JSON next to it).
"""
import json, os

V = []
def v(cls, name, req, expect, origin, sniff=False):
    V.append({"name": name, "class": cls, "request": req, "expect": expect, "origin": origin,
              **({"sniff": True} if sniff else {})})

H = "Host: svc\r\n"
P = "POST / HTTP/1.1\r\n" + H
G = "GET / HTTP/1.1\r\n" + H
TE = "Transfer-Encoding: chunked\r\n"
body = "5\r\nhello\r\n0\r\n\r\n"
rej = lambda cls, name, req, code=400, sniff=False: v(cls, name, req, code, None, sniff)
fwd = lambda cls, name, req, origin="same", sniff=False: v(cls, name, req, 200, origin, sniff)

c = "smuggling"
rej(c, "CL.TE", P + "Content-Length: 6\r\n" + TE + "\r\n0\r\n\r\nX")
rej(c, "TE.CL", P + TE + "Content-Length: 3\r\n\r\n1\r\nZ\r\n0\r\n\r\n")
rej(c, "TE.CL CL 0", P + TE + "Content-Length: 0\r\n\r\n" + body)
rej(c, "TE xchunked", P + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n")
rej(c, "TE space before colon", P + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n")
rej(c, "TE tab value with CL", P + "Content-Length: 4\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n")
rej(c, "TE chunked then identity", P + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n")
rej(c, "TE two lines", P + TE + TE + "\r\n" + body)
rej(c, "TE chunked twice in list", P + "Transfer-Encoding: chunked, chunked\r\n\r\n" + body)
rej(c, "TE gzip only", P + "Transfer-Encoding: gzip\r\n\r\n" + body)
rej(c, "TE vertical tab", P + "Transfer-Encoding: chunked\x0b\r\n\r\n" + body)
rej(c, "TE identity with CL", P + "Content-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello")
rej(c, "TE on HTTP/1.0", "POST / HTTP/1.0\r\n" + H + TE + "\r\n" + body)
rej(c, "TE folded onto first line", "POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" + H + "\r\n" + body)
rej(c, "TE in disguise with CL", P + "Content-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\nhello")
rej(c, "CL in disguise with TE", P + "Content_Length: 5\r\n" + TE + "\r\n" + body)
rej(c, "TE quoted", P + 'Transfer-Encoding: "chunked"\r\n\r\n' + body)
rej(c, "TE with NUL", P + "Transfer-Encoding: chunked\x00\r\n\r\n" + body)
# An origin reads "chunked" followed by a tab (optional whitespace) as chunked; a parser that
# does not, and sees an upgrade, frames no body at all.
rej(c, "TE chunked-tab with Upgrade", P + "Transfer-Encoding: chunked\t\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade, e\r\n\r\n" + body)
rej(c, "TE chunked-tab with Upgrade and CL", P + "Content-Length: 3\r\nTransfer-Encoding: chunked\t\r\n"
    "Upgrade: h2c\r\nConnection: Upgrade\r\n\r\n" + body)
fwd(c, "TE uppercase CHUNKED", P + "Transfer-Encoding: CHUNKED\r\n\r\n" + body)
fwd(c, "TE gzip, chunked", P + "Transfer-Encoding: gzip, chunked\r\n\r\n" + body)

c = "content-length"
rej(c, "CL differing", P + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab")
rej(c, "CL identical twice", P + "Content-Length: 1\r\nContent-Length: 1\r\n\r\na")
rej(c, "CL list", P + "Content-Length: 1, 1\r\n\r\na")
rej(c, "CL negative", P + "Content-Length: -1\r\n\r\n")
rej(c, "CL plus sign", P + "Content-Length: +1\r\n\r\na")
rej(c, "CL hex", P + "Content-Length: 0x10\r\n\r\n")
rej(c, "CL inner space", P + "Content-Length: 1 0\r\n\r\n0123456789")
rej(c, "CL over 64 bits", P + "Content-Length: 99999999999999999999\r\n\r\n")
rej(c, "CL 2^63", P + "Content-Length: 9223372036854775808\r\n\r\n")
rej(c, "CL empty", P + "Content-Length:\r\n\r\n")
rej(c, "CL with trailing garbage", P + "Content-Length: 5x\r\n\r\nhello")
fwd(c, "CL leading zeros", P + "Content-Length: 005\r\n\r\nhello")
fwd(c, "CL with OWS", P + "Content-Length:  5 \r\n\r\nhello")
fwd(c, "GET with CL 0", G + "Content-Length: 0\r\n\r\n")

c = "chunk-size"
rej(c, "not hex", P + TE + "\r\nzz\r\nhello\r\n0\r\n\r\n")
rej(c, "0x prefix", P + TE + "\r\n0x5\r\nhello\r\n0\r\n\r\n")
rej(c, "negative", P + TE + "\r\n-5\r\nhello\r\n0\r\n\r\n")
rej(c, "over 64 bits", P + TE + "\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n")
rej(c, "64th bit set", P + TE + "\r\n8000000000000000\r\nhello\r\n0\r\n\r\n")
rej(c, "17 digits with leading zeros", P + TE + "\r\n00000000000000005\r\nhello\r\n0\r\n\r\n")
rej(c, "overlong second chunk", P + TE + "\r\n1\r\na\r\n000000000000000000001\r\nb\r\n0\r\n\r\n")
rej(c, "data overrun", P + TE + "\r\n2\r\nabc\r\n0\r\n\r\n")
rej(c, "data without CRLF", P + TE + "\r\n5\r\nhelloX\r\n0\r\n\r\n")
rej(c, "size with trailing space", P + TE + "\r\n5 \r\nhello\r\n0\r\n\r\n")
rej(c, "size line bare LF", P + TE + "\r\n5\nhello\r\n0\r\n\r\n")
rej(c, "extension over 256 bytes", P + TE + "\r\n5;a=" + "x" * 300 + "\r\nhello\r\n0\r\n\r\n")
rej(c, "last-chunk extension over 256 bytes", P + TE + "\r\n5\r\nhello\r\n0;a=" + "x" * 300 + "\r\n\r\n")
rej(c, "extension with bare CR", P + TE + "\r\n5;a\rb\r\nhello\r\n0\r\n\r\n")
fwd(c, "16 digits", P + TE + "\r\n0000000000000005\r\nhello\r\n0\r\n\r\n")
fwd(c, "short extension", P + TE + "\r\n5;name=value\r\nhello\r\n0\r\n\r\n")
fwd(c, "uppercase hex", P + TE + "\r\nA\r\n0123456789\r\n0\r\n\r\n")
fwd(c, "two chunks", P + TE + "\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n")

c = "obs-fold"
rej(c, "folded value", G + "X-A: one\r\n two\r\n\r\n")
rej(c, "tab folded value", G + "X-A: one\r\n\ttwo\r\n\r\n")
rej(c, "folded TE", P + "Transfer-Encoding: identity\r\n chunked\r\n\r\n" + body)
rej(c, "folded Host", "GET / HTTP/1.1\r\nHost: a\r\n .b\r\n\r\n")
rej(c, "folded CL", P + "Content-Length:\r\n 5\r\n\r\nhello")

c = "bare-cr-lf-ctl"
rej(c, "bare CR in value", G + "X-A: a\rb\r\n\r\n")
rej(c, "bare CR in request line", "GET /\r HTTP/1.1\r\n" + H + "\r\n")
rej(c, "CR CR LF", G + "X-A: a\r\r\n\r\n")
rej(c, "bare LF line end", G + "X-A: a\nX-B: b\r\n\r\n")
rej(c, "bare LF head end", "GET / HTTP/1.1\nHost: svc\n\n")
rej(c, "bare LF request line", "GET / HTTP/1.1\n" + H + "\r\n")
rej(c, "NUL in value", G + "X-A: a\x00b\r\n\r\n")
rej(c, "NUL in name", G + "X\x00A: b\r\n\r\n")
rej(c, "control char in value", G + "X-A: a\x01b\r\n\r\n")
rej(c, "DEL in value", G + "X-A: a\x7fb\r\n\r\n")
rej(c, "empty header name", G + ": x\r\n\r\n")
rej(c, "space in header name", G + "X A: b\r\n\r\n")
rej(c, "header without colon", G + "X-A\r\n\r\n")
fwd(c, "obs-text in value", G + "X-A: caf\xe9\r\n\r\n")
fwd(c, "tab inside value", G + "X-A: a\tb\r\n\r\n")

c = "host"
rej(c, "missing Host", "GET / HTTP/1.1\r\nX-A: a\r\n\r\n")
rej(c, "two Hosts", G + "Host: other\r\n\r\n")
rej(c, "two identical Hosts", G + H + "\r\n")
rej(c, "Host list", "GET / HTTP/1.1\r\nHost: svc, other\r\n\r\n")
rej(c, "Host list without space", "GET / HTTP/1.1\r\nHost: svc,other\r\n\r\n")
rej(c, "Host userinfo", "GET / HTTP/1.1\r\nHost: user@svc\r\n\r\n")
rej(c, "Host with path", "GET / HTTP/1.1\r\nHost: svc/x\r\n\r\n")
rej(c, "Host port not digits", "GET / HTTP/1.1\r\nHost: svc:8x\r\n\r\n")
rej(c, "Host port over 65535", "GET / HTTP/1.1\r\nHost: svc:65536\r\n\r\n")
rej(c, "Host empty port", "GET / HTTP/1.1\r\nHost: svc:\r\n\r\n")
rej(c, "Host bad IPv6 literal", "GET / HTTP/1.1\r\nHost: [zz::1]\r\n\r\n")
rej(c, "Host inner space", "GET / HTTP/1.1\r\nHost: svc other\r\n\r\n")
rej(c, "Host bad percent-encoding", "GET / HTTP/1.1\r\nHost: sv%zz\r\n\r\n")
rej(c, "Host space before colon", "GET / HTTP/1.1\r\nHost : svc\r\n\r\n")
rej(c, "two Hosts on HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n")
fwd(c, "empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n")
fwd(c, "HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n")
fwd(c, "IPv6 literal", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")
fwd(c, "trailing dot", "GET / HTTP/1.1\r\nHost: svc.ns.svc.cluster.local.\r\n\r\n")
fwd(c, "mixed case with port", "GET / HTTP/1.1\r\nHost: SvC:80\r\n\r\n")

c = "absolute-form"
fwd(c, "authority differs from Host", "GET http://other:81/x HTTP/1.1\r\nHost: svc\r\n\r\n",
    "GET http://other:81/x HTTP/1.1\r\nHost: other:81\r\n\r\n")
fwd(c, "IP literal target, service in Host", "GET http://10.1.2.3/x HTTP/1.1\r\nHost: svc\r\n\r\n",
    "GET http://10.1.2.3/x HTTP/1.1\r\nHost: 10.1.2.3\r\n\r\n")
fwd(c, "authority equals Host", "GET http://svc/x?y HTTP/1.1\r\nHost: svc\r\n\r\n")
fwd(c, "HTTP/1.0 without Host", "GET http://svc/x HTTP/1.0\r\n\r\n",
    "GET http://svc/x HTTP/1.0\r\nHost: svc\r\n\r\n")
fwd(c, "empty Host filled in", "GET http://svc/ HTTP/1.1\r\nHost:\r\n\r\n",
    "GET http://svc/ HTTP/1.1\r\nHost:svc\r\n\r\n")
rej(c, "userinfo", "GET http://svc@10.1.2.3/ HTTP/1.1\r\nHost: svc\r\n\r\n")
rej(c, "other scheme", "GET ftp://svc/ HTTP/1.1\r\nHost: svc\r\n\r\n")
rej(c, "empty authority", "GET http:///x HTTP/1.1\r\nHost: svc\r\n\r\n")
rej(c, "authority list", "GET http://a,b/ HTTP/1.1\r\nHost: svc\r\n\r\n")
rej(c, "missing Host on HTTP/1.1", "GET http://svc/ HTTP/1.1\r\n\r\n")

c = "request-line"
rej(c, "double space after method", "GET  / HTTP/1.1\r\n" + H + "\r\n")
rej(c, "double space before version", "GET /  HTTP/1.1\r\n" + H + "\r\n")
rej(c, "trailing space after version", "GET / HTTP/1.1 \r\n" + H + "\r\n")
rej(c, "space in target", "GET /a b HTTP/1.1\r\n" + H + "\r\n")
rej(c, "no target", "GET HTTP/1.1\r\n" + H + "\r\n")
rej(c, "fragment in target", "GET /a#b HTTP/1.1\r\n" + H + "\r\n")
rej(c, "non-ASCII in target", "GET /caf\xe9 HTTP/1.1\r\n" + H + "\r\n")
rej(c, "asterisk on GET", "GET * HTTP/1.1\r\n" + H + "\r\n")
rej(c, "CONNECT origin-form", "CONNECT /x HTTP/1.1\r\n" + H + "\r\n")
rej(c, "unknown uppercase method", "FOO / HTTP/1.1\r\n" + H + "\r\n")
rej(c, "HTTP/0.9 request line", "GET /\r\n")
rej(c, "HTTP/0.9 line then headers", "GET /\r\n" + H + "\r\n")
fwd(c, "OPTIONS asterisk", "OPTIONS * HTTP/1.1\r\n" + H + "\r\n")
fwd(c, "query string", "GET /a/b?c=d&e=%20 HTTP/1.1\r\n" + H + "\r\n")
rej(c, "tab after method", "GET\t/ HTTP/1.1\r\n" + H + "\r\n", sniff=True)
rej(c, "tab before version", "GET /\tHTTP/1.1\r\n" + H + "\r\n")
rej(c, "separator in method", "G(T / HTTP/1.1\r\n" + H + "\r\n", sniff=True)
rej(c, "lowercase method", "get / HTTP/1.1\r\n" + H + "\r\n", sniff=True)
rej(c, "lowercase CL.TE smuggle", "post / HTTP/1.1\r\n" + H + "Content-Length: 6\r\n" + TE + "\r\n0\r\n\r\nX", sniff=True)
rej(c, "dash method (RFC 3253)", "VERSION-CONTROL / HTTP/1.1\r\n" + H + "\r\n", sniff=True)
rej(c, "leading empty line then CL.TE", "\r\n" + P + "Content-Length: 6\r\n" + TE + "\r\n0\r\n\r\nX", sniff=True)
fwd(c, "leading empty line", "\r\n" + G + "\r\n", G + "\r\n", sniff=True)
fwd(c, "two leading empty lines", "\r\n\r\n" + G + "\r\n", G + "\r\n", sniff=True)
rej(c, "leading bare LF", "\n" + G + "\r\n", sniff=True)

c = "version"
fwd(c, "HTTP/1.2 as 1.1", "GET / HTTP/1.2\r\n" + H + "\r\n", G + "\r\n")
fwd(c, "HTTP/1.9 as 1.1", "GET / HTTP/1.9\r\n" + H + "\r\n", G + "\r\n")
rej(c, "HTTP/2.0 in HTTP/1 syntax", "GET / HTTP/2.0\r\n" + H + "\r\n", 505)
rej(c, "HTTP/0.9 version", "GET / HTTP/0.9\r\n" + H + "\r\n", 505)
rej(c, "HTTP/3.0", "GET / HTTP/3.0\r\n" + H + "\r\n", 505)
rej(c, "HTTP/1.10", "GET / HTTP/1.10\r\n" + H + "\r\n")
rej(c, "lowercase http", "GET / http/1.1\r\n" + H + "\r\n")
rej(c, "HTTP/1", "GET / HTTP/1\r\n" + H + "\r\n")
rej(c, "HTTP/1.1x", "GET / HTTP/1.1x\r\n" + H + "\r\n")
rej(c, "HTTPS/1.1", "GET / HTTPS/1.1\r\n" + H + "\r\n")

c = "hop-by-hop"
fwd(c, "fields named in Connection", G + "Connection: close, X-A\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
    G + "Connection: close\r\nX-B: 2\r\n\r\n")
fwd(c, "Keep-Alive field", G + "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
    G + "Connection: keep-alive\r\n\r\n")
fwd(c, "Proxy-Connection", G + "Proxy-Connection: keep-alive\r\n\r\n", G + "\r\n")
fwd(c, "TE gzip", G + "TE: gzip\r\n\r\n", G + "\r\n")
fwd(c, "TE trailers kept", G + "TE: trailers, deflate\r\n\r\n", G + "TE: trailers\r\nConnection: te\r\n\r\n")
fwd(c, "Upgrade without Connection option", G + "Upgrade: websocket\r\n\r\n", G + "\r\n")
fwd(c, "h2c upgrade offer", G + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    G + "\r\n")
fwd(c, "HTTP2-Settings alone", G + "HTTP2-Settings: AAMAAABk\r\n\r\n", G + "\r\n")
fwd(c, "two Connection lines", "GET / HTTP/1.1\r\nConnection: X-A\r\n" + H + "Connection: close\r\nX-A: 1\r\n\r\n",
    "GET / HTTP/1.1\r\nConnection: close\r\n" + H + "\r\n")
fwd(c, "Connection names the route header", G + "Connection: azds-route-as\r\nazds-route-as: s1\r\n\r\n",
    G + "azds-route-as: s1\r\n\r\n")
rej(c, "Connection names Host", G + "Connection: Host\r\n\r\n")
rej(c, "Connection names Content-Length", P + "Connection: content-length\r\nContent-Length: 5\r\n\r\nhello")
rej(c, "Connection names Transfer-Encoding", P + "Connection: Transfer-Encoding\r\n" + TE + "\r\n" + body)

c = "trailers"
fwd(c, "allowed trailer", P + TE + "\r\n5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n")
rej(c, "Content-Length trailer", P + TE + "\r\n5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n")
rej(c, "Transfer-Encoding trailer", P + TE + "\r\n5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n")
rej(c, "Host trailer", P + TE + "\r\n5\r\nhello\r\n0\r\nHost: other\r\n\r\n")
rej(c, "Authorization trailer", P + TE + "\r\n5\r\nhello\r\n0\r\nAuthorization: x\r\n\r\n")
rej(c, "route-critical Connection trailer", P + TE + "\r\n5\r\nhello\r\n0\r\nConnection: close\r\n\r\n")
rej(c, "empty trailer name", P + TE + "\r\n5\r\nhello\r\n0\r\n: x\r\n\r\n")
rej(c, "folded trailer", P + TE + "\r\n5\r\nhello\r\n0\r\nX-A: a\r\n b\r\n\r\n")
rej(c, "trailer bare LF", P + TE + "\r\n5\r\nhello\r\n0\r\nX-A: a\n\r\n")

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "http1_requests.json"), "w", encoding="utf-8") as f:
    json.dump({"vectors": V}, f, indent=1, ensure_ascii=True)
    f.write("\n")
print(len(V), "vectors")
