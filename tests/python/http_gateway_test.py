#!/usr/bin/python3
"""The HTTP/JSON endpoint (quiverd --http-listen) from Python's urllib.

Drives the REST routes and the generic POST /v1/<Service>/<Method> form
against a real quiverd, checks that HTTP and gRPC answer the same search the
same way, that errors carry the mapped HTTP status and a JSON body (bad JSON
400 with the parser's message and nothing changed, 404, 405, 409, 413, 429,
501; a write refused for backpressure 503 with Retry-After), that API keys
apply (401, 403) and that with TLS the endpoint is HTTPS, following SIGHUP
reloads.

Usage:
  /usr/bin/python3 tests/python/http_gateway_test.py \
      --quiverd build/quiverd --proto proto [unittest args...]
"""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import quiver_e2e_test as e2e

ADMIN_KEY = "qk_http-admin-key-0123456789"
READ_KEY = "qk_http-read-key-0123456789"


def setUpModule():
    e2e.setUpModule()


def request(base, method, path, body=None, headers=None, raw=None, context=None):
    """(HTTP status, parsed JSON body, headers)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.headers
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, json.loads(text) if text else None, e.headers


def start_server(tmp, name, extra=()):
    port = e2e._free_port()
    server = e2e.Server(os.path.join(tmp, name),
                        ["--http-listen", "127.0.0.1:%d" % port] + list(extra))
    server.start()
    return server, "http://127.0.0.1:%d" % port


def point(pid, vec, **attrs):
    p = {"id": pid, "vectors": {"v": {"values": vec}}, "attributes": {}}
    for k, v in attrs.items():
        if isinstance(v, bool):
            p["attributes"][k] = {"bool_value": v}
        elif isinstance(v, int):
            p["attributes"][k] = {"int_value": str(v)}
        else:
            p["attributes"][k] = {"string_value": v}
    return p


class HttpGatewayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="quiver_http_")
        cls.server, cls.base = start_server(cls.tmp, "data", ["--max-message-bytes", "262144"])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def call(self, method, path, body=None, **kw):
        return request(self.base, method, path, body, **kw)

    def assertError(self, http_status, grpc_status, result, pattern=None):
        status, body, _ = result
        self.assertEqual(status, http_status, body)
        self.assertEqual(body["status"], grpc_status, body)
        self.assertIsInstance(body["code"], int)
        if pattern is not None:
            self.assertRegex(body["message"], pattern)

    def create_shop(self, name):
        status, body, _ = self.call("PUT", "/v1/collections/" + name, {"schema": {
            "vectors": [{"name": "v", "dim": 3, "metric": "L2"}],
            "attributes": [{"name": "n", "type": "INT64"}, {"name": "tag", "type": "STRING"}]}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["collection"]["name"], name)
        points = [point("a", [1, 0, 0], n=1, tag="x"), point("b", [0, 1, 0], n=2, tag="y"),
                  point("c", [0, 0, 1], n=3)]
        status, body, _ = self.call("PUT", "/v1/collections/%s/points" % name, {"points": points})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["upserted_count"], 3)

    def test_rest_routes_round_trip(self):
        self.create_shop("shop")
        status, body, _ = self.call("GET", "/v1/collections")
        self.assertEqual(status, 200)
        self.assertIn("shop", [c["name"] for c in body["collections"]])
        status, body, _ = self.call("GET", "/v1/collections/shop")
        self.assertEqual(body["collection"]["stats"]["point_count"], "3")  # uint64: a string
        status, body, _ = self.call("POST", "/v1/collections/shop/search", {
            "vectors": [{"values": [0.9, 0.1, 0]}], "k": 2, "filter": "n <= 2",
            "output_attributes": ["*"]})
        self.assertEqual(status, 200, body)
        hits = body["results"][0]["hits"]
        self.assertEqual([h["id"] for h in hits], ["a", "b"])
        self.assertEqual(hits[0]["attributes"]["n"], {"int_value": "1"})
        self.assertAlmostEqual(hits[0]["score"], 0.02, places=5)
        status, body, _ = self.call("POST", "/v1/collections/shop/points/get",
                                    {"ids": ["b", "zz"], "with_vectors": True})
        self.assertEqual(status, 200, body)
        self.assertEqual([p["id"] for p in body["points"]], ["b"])
        self.assertEqual(body["points"][0]["vectors"]["v"]["values"], [0, 1, 0])
        status, body, _ = self.call("POST", "/v1/collections/shop/points/count", {"filter": "n > 1"})
        self.assertEqual((status, body), (200, {"count": "2"}))
        # lowerCamelCase names are accepted too (protobuf's JSON mapping).
        status, body, _ = self.call("POST", "/v1/collections/shop/points/delete", {"ids": ["c"]})
        self.assertEqual(body["deleted_count"], "1")
        status, body, _ = self.call("POST", "/v1/collections/shop/points/count")
        self.assertEqual(body, {"count": "2"})
        status, body, _ = self.call("POST", "/v1/collections/shop/verify", {"indexSamples": 4})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["defects_total"], "0")

    def test_alias_routes(self):
        self.create_shop("al_one")
        status, body, _ = self.call("PUT", "/v1/collections/al_two", {"schema": {
            "vectors": [{"name": "v", "dim": 3, "metric": "L2"}]}})
        self.assertEqual(status, 200, body)
        status, body, _ = self.call("PUT", "/v1/aliases/al", {"collection": "al_one"})
        self.assertEqual(status, 200, body)
        created = int(body["sequence"])
        status, body, _ = self.call("POST", "/v1/collections/al/points/count")
        self.assertEqual((status, body), (200, {"count": "3"}))
        status, body, _ = self.call("GET", "/v1/collections/al")
        self.assertEqual(body["collection"]["name"], "al_one")
        status, body, _ = self.call("PATCH", "/v1/aliases/al", {"collection": "al_two"})
        self.assertEqual(status, 200, body)
        self.assertGreater(int(body["sequence"]), created)
        status, body, _ = self.call("POST", "/v1/collections/al/points/count")
        self.assertEqual(body, {"count": "0"})
        status, body, _ = self.call("POST", "/v1/CollectionService/ListAliases",
                                    {"collection": "al_two"})
        self.assertEqual(body, {"aliases": [{"alias": "al", "collection": "al_two"}]})
        # Errors: mapped, and nothing changed.
        self.assertError(409, "ALREADY_EXISTS",
                         self.call("PUT", "/v1/aliases/al_one", {"collection": "al_two"}),
                         "share one namespace")
        self.assertError(404, "NOT_FOUND",
                         self.call("PATCH", "/v1/aliases/nope", {"collection": "al_two"}))
        self.assertError(400, "INVALID_ARGUMENT",
                         self.call("PUT", "/v1/aliases/al2", {"collection": "al"}),
                         "itself an alias")
        self.assertError(400, "FAILED_PRECONDITION",
                         self.call("DELETE", "/v1/collections/al_two"), r"aliases \(al\)")
        self.assertError(400, "FAILED_PRECONDITION",
                         self.call("DELETE", "/v1/collections/al"), "is an alias of")
        self.assertError(400, "INVALID_ARGUMENT",
                         self.call("PUT", "/v1/aliases/al3", {"alias": "other",
                                                              "collection": "al_two"}),
                         'the path names "al3"')
        status, body, _ = self.call("GET", "/v1/aliases")
        self.assertIn({"alias": "al", "collection": "al_two"}, body["aliases"])
        status, body, _ = self.call("DELETE", "/v1/aliases/al")
        self.assertEqual(status, 200, body)
        self.assertError(404, "NOT_FOUND", self.call("POST", "/v1/collections/al/points/count"))
        status, body, _ = self.call("DELETE", "/v1/collections/al_two")
        self.assertEqual(status, 200, body)

    def test_generic_route_matches_grpc(self):
        self.create_shop("generic")
        req = {"collection": "generic", "vectors": [{"values": [0.2, 0.3, 0.9]}], "k": 3}
        status, body, _ = self.call("POST", "/v1/SearchService/Search", req)
        self.assertEqual(status, 200, body)
        status2, body2, _ = self.call("POST", "/v1/quiver.v1.SearchService/Search", req)
        self.assertEqual(body2, body)
        grpc_req = e2e.srch_pb.SearchRequest(collection="generic", k=3)
        grpc_req.vectors.add(values=[0.2, 0.3, 0.9])
        grpc_hits = self.server.search.Search(grpc_req, timeout=e2e.RPC_TIMEOUT).results[0].hits
        # JSON prints a float with as many digits as a float needs.
        self.assertEqual([(h["id"], e2e.f32(h["score"])) for h in body["results"][0]["hits"]],
                         [(h.id, h.score) for h in grpc_hits])
        status, body, _ = self.call("POST", "/v1/PointService/CountPoints", {"collection": "generic"})
        self.assertEqual(body, {"count": "3"})
        status, body, _ = self.call("GET", "/healthz")
        self.assertEqual((status, body), (200, {"status": "SERVING"}))

    def test_errors(self):
        self.create_shop("err")
        count = lambda: self.call("POST", "/v1/collections/err/points/count")[1]["count"]
        # Bad JSON: 400 with the parser's message, and nothing written.
        bad = b'{"points": [{"id": "d", "vectors": {"v": {"values": [1, 2, 3]}}}'
        self.assertError(400, "INVALID_ARGUMENT",
                         self.call("PUT", "/v1/collections/err/points", raw=bad),
                         "request body is not JSON of a quiver.v1.UpsertPointsRequest: .+")
        self.assertEqual(count(), "3")
        self.assertError(400, "INVALID_ARGUMENT",
                         self.call("POST", "/v1/collections/err/search", {"k": 1, "kk": 2}),
                         "kk")
        self.assertError(400, "INVALID_ARGUMENT",
                         self.call("POST", "/v1/collections/err/search",
                                   {"collection": "other", "k": 1}),
                         'the path names "err" but the body\'s "collection" is "other"')
        # The server's own checks, mapped.
        self.assertError(400, "INVALID_ARGUMENT",
                         self.call("POST", "/v1/collections/err/search",
                                   {"vectors": [{"values": [1, 2, 3]}], "k": 1, "filter": "n >"}),
                         "filter")
        self.assertError(404, "NOT_FOUND", self.call("POST", "/v1/collections/nope/points/count"),
                         "nope")
        self.assertError(409, "ALREADY_EXISTS", self.call("PUT", "/v1/collections/err", {
            "schema": {"vectors": [{"name": "v", "dim": 3, "metric": "L2"}]}}))
        # Routes.
        self.assertError(404, "NOT_FOUND", self.call("GET", "/v2/whatever"), "no route")
        self.assertError(404, "NOT_FOUND", self.call("POST", "/v1/SearchService/Nope"))
        self.assertError(405, "UNIMPLEMENTED", self.call("DELETE", "/v1/collections/err/search"),
                         "takes POST")
        self.assertError(501, "UNIMPLEMENTED",
                         self.call("POST", "/v1/SnapshotService/DownloadSnapshot", {"name": "s"}),
                         "gRPC")
        # Limits: a body over --max-message-bytes, a response over it.
        self.assertError(413, "RESOURCE_EXHAUSTED",
                         self.call("POST", "/v1/collections/err/search",
                                   raw=b'{"k": 1, "filter": "' + b"x" * 300000 + b'"}'),
                         "max-message-bytes")
        self.assertEqual(count(), "3")
        dim = 8192
        status, body, _ = self.call("PUT", "/v1/collections/wide", {"schema": {
            "vectors": [{"name": "v", "dim": dim, "metric": "L2"}]}})
        self.assertEqual(status, 200, body)
        for batch in range(2):  # each under the body limit
            points = [{"id": "p%d" % i, "vectors": {"v": {"values": [float(i)] * dim}}}
                      for i in range(4 * batch, 4 * batch + 4)]
            status, body, _ = self.call("PUT", "/v1/collections/wide/points", {"points": points})
            self.assertEqual(status, 200, body)
        self.assertError(429, "RESOURCE_EXHAUSTED",
                         self.call("POST", "/v1/collections/wide/search", {
                             "vectors": [{"values": [0.0] * dim}], "k": 8, "with_vectors": True}),
                         "max-message-bytes")

    def test_shutdown_with_an_idle_kept_alive_connection(self):
        server, base = start_server(self.tmp, "shutdown")
        conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=30)
        conn.request("GET", "/healthz")
        self.assertEqual(conn.getresponse().read(), b'{"status":"SERVING"}\n')
        t0 = time.monotonic()
        rc = server.stop(grace=20)
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 8)
        conn.close()

    def test_busy_ports_stop_quiverd_before_it_serves(self):
        # Both listeners are taken before either serves: a busy HTTP port
        # stops quiverd before gRPC listens, a busy gRPC port after the HTTP
        # port is bound (that socket is closed again on the way out).
        for busy in ("http", "grpc"):
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen(1)
                busy_port = taken.getsockname()[1]
                free_port = e2e._free_port()
                grpc_port, http_port = ((free_port, busy_port) if busy == "http"
                                        else (busy_port, free_port))
                proc = subprocess.run(
                    [e2e.QUIVERD, "--data-dir", os.path.join(self.tmp, "busy_" + busy),
                     "--listen", "127.0.0.1:%d" % grpc_port,
                     "--http-listen", "127.0.0.1:%d" % http_port],
                    capture_output=True, text=True, timeout=60)
                self.assertNotEqual(proc.returncode, 0, busy)
                out = proc.stdout + proc.stderr
                if busy == "http":
                    self.assertIn("cannot listen on --http-listen 127.0.0.1:%d" % http_port, out)
                    self.assertNotIn("quiverd serving", out)
                else:
                    self.assertIn("cannot listen on 127.0.0.1:%d" % grpc_port, out)
                    self.assertNotIn("HTTP/JSON on", out)

    def test_refuses_public_address_without_protection(self):
        proc = subprocess.run([e2e.QUIVERD, "--data-dir", os.path.join(self.tmp, "refused"),
                               "--listen", "127.0.0.1:0", "--http-listen", "0.0.0.0:0"],
                              capture_output=True, text=True, timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("refusing to serve 0.0.0.0:0 without authentication", proc.stdout + proc.stderr)


class HttpBackpressureTest(unittest.TestCase):
    def test_refused_write_carries_retry_after(self):
        # As WriteLimitsE2eTest.WriteBackpressureSlowsThenRefusesThenRecovers:
        # slow HNSW builds behind a fast importer, until upserts are refused.
        # Slow whatever the machine: ef_construction past the segment's rows
        # makes a build cost rows^2 (20,000-row segments: tens of seconds on
        # one thread), while importing a segment takes seconds, so a second
        # sealed segment always finds the first one still building.
        tmp = tempfile.mkdtemp(prefix="quiver_http_bp_")
        self.addCleanup(shutil.rmtree, tmp, True)
        server, base = start_server(tmp, "data", [
            "--segment-max-rows", "20000", "--max-unindexed-rows", "20000",
            "--max-write-delay-ms", "100", "--index-build-workers", "1",
            "--index-build-threads", "1"])
        self.addCleanup(server.stop)
        dim = 256
        status, body, _ = request(base, "PUT", "/v1/collections/c", {"schema": {"vectors": [{
            "name": "v", "dim": dim, "metric": "L2",
            "index": {"type": "HNSW", "params": {"M": "100", "ef_construction": "4096"}}}]}})
        self.assertEqual(status, 200, body)
        rng = e2e.random.Random(5)
        vectors = [[rng.random() for _ in range(dim)] for _ in range(250)]
        for batch in range(200):
            points = [{"id": "p%d" % (batch * 250 + i), "vectors": {"v": {"values": v}}}
                      for i, v in enumerate(vectors)]
            status, body, headers = request(base, "PUT", "/v1/collections/c/points",
                                            {"points": points})
            if status != 200:
                break
        self.assertEqual((status, body["status"]), (503, "UNAVAILABLE"), body)
        self.assertIn("--max-unindexed-rows=20000", body["message"])
        self.assertGreaterEqual(int(headers["retry-after-ms"]), 100)
        self.assertEqual(int(headers["Retry-After"]), (int(headers["retry-after-ms"]) + 999) // 1000)


class HttpAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="quiver_http_auth_")
        keys = os.path.join(cls.tmp, "api-keys")
        with open(keys, "w") as f:
            f.write("%s admin\n" % hashlib.sha256(ADMIN_KEY.encode()).hexdigest())
            f.write("%s read\n" % hashlib.sha256(READ_KEY.encode()).hexdigest())
        cls.server, cls.base = start_server(cls.tmp, "data", ["--api-keys-file", keys])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_keys_and_roles(self):
        admin = {"Authorization": "Bearer " + ADMIN_KEY}
        reader = {"Authorization": "Bearer " + READ_KEY}
        schema = {"schema": {"vectors": [{"name": "v", "dim": 2, "metric": "IP"}]}}
        status, body, _ = request(self.base, "PUT", "/v1/collections/k", schema)
        self.assertEqual((status, body["status"]), (401, "UNAUTHENTICATED"), body)
        status, body, _ = request(self.base, "PUT", "/v1/collections/k", schema,
                                  headers={"Authorization": "Bearer qk_wrong"})
        self.assertEqual(status, 401, body)
        status, body, _ = request(self.base, "PUT", "/v1/collections/k", schema, headers=reader)
        self.assertEqual((status, body["status"]), (403, "PERMISSION_DENIED"), body)
        status, body, _ = request(self.base, "PUT", "/v1/collections/k", schema, headers=admin)
        self.assertEqual(status, 200, body)
        status, body, _ = request(self.base, "GET", "/v1/collections", headers=reader)
        self.assertEqual([c["name"] for c in body["collections"]], ["k"])
        # Health needs no key, over HTTP as over gRPC.
        status, body, _ = request(self.base, "GET", "/healthz")
        self.assertEqual(status, 200, body)


def make_cert(cert, key):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)


def served_cert(port):
    """The certificate the server presents to a new connection (DER)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


class HttpsTest(unittest.TestCase):
    def test_https_with_the_grpc_certificate(self):
        tmp = tempfile.mkdtemp(prefix="quiver_https_")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        make_cert(cert, key)
        port, http_port = e2e._free_port(), e2e._free_port()
        log = open(os.path.join(tmp, "quiverd.log"), "wb")
        proc = subprocess.Popen([e2e.QUIVERD, "--listen", "127.0.0.1:%d" % port,
                                 "--http-listen", "127.0.0.1:%d" % http_port,
                                 "--data-dir", os.path.join(tmp, "data"), "--tls-cert", cert,
                                 "--tls-key", key], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            ctx = ssl.create_default_context(cafile=cert)
            base = "https://localhost:%d" % http_port
            deadline = time.monotonic() + 20
            while True:
                try:
                    status, body, _ = request(base, "GET", "/healthz", context=ctx)
                    break
                except (urllib.error.URLError, ConnectionError):
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.05)
            self.assertEqual((status, body), (200, {"status": "SERVING"}))
            status, body, _ = request(base, "GET", "/v1/collections", context=ctx)
            self.assertEqual((status, body), (200, {"collections": []}))
            # Plain HTTP to the HTTPS port gets no answer.
            with self.assertRaises((urllib.error.URLError, OSError, http.client.HTTPException)):
                request("http://127.0.0.1:%d" % http_port, "GET", "/healthz")
            # SIGHUP reloads the files for HTTPS too: new connections get the
            # new certificate.
            with open(cert, "rb") as f:
                old = ssl.PEM_cert_to_DER_cert(f.read().decode())
            self.assertEqual(served_cert(http_port), old)
            make_cert(cert, key)
            with open(cert, "rb") as f:
                new = ssl.PEM_cert_to_DER_cert(f.read().decode())
            self.assertNotEqual(new, old)
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 20
            while served_cert(http_port) != new:
                self.assertLess(time.monotonic(), deadline, "HTTPS kept the old certificate")
                time.sleep(0.1)
            ctx2 = ssl.create_default_context(cafile=cert)
            status, body, _ = request(base, "GET", "/healthz", context=ctx2)
            self.assertEqual(status, 200, body)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    unittest.main(argv=e2e._parse_own_args(sys.argv))
