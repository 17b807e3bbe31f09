#!/usr/bin/python3
"""API keys from Python: the bearer key travels as gRPC metadata, with stubs
generated from proto/ alone (no Quiver client library).

Starts quiverd with --api-keys-file on a free loopback port and checks that
a call without a key is UNAUTHENTICATED (health stays open), that a read key
can search but not upsert (PERMISSION_DENIED), and that an admin key can do
both. Reuses the stub generation and server launcher of quiver_e2e_test.py.

Usage:
  /usr/bin/python3 tests/python/quiver_auth_test.py \
      --quiverd build/quiverd --proto proto [unittest args...]
"""

import hashlib
import os
import sys
import tempfile
import shutil
import unittest

import grpc

import quiver_e2e_test as e2e

ADMIN_KEY = "qk_python-admin-key-0123456789"
READ_KEY = "qk_python-read-key-0123456789"


def setUpModule():
    e2e.setUpModule()


def bearer(key):
    return (("authorization", "Bearer " + key),)


class ApiKeyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="quiver_py_auth_")
        keys = os.path.join(cls.tmp, "api-keys")
        with open(keys, "w") as f:
            f.write("# made by quiver_auth_test.py\n")
            f.write("%s admin\n" % hashlib.sha256(ADMIN_KEY.encode()).hexdigest())
            f.write("%s read\n" % hashlib.sha256(READ_KEY.encode()).hexdigest())
        cls.server = e2e.Server(os.path.join(cls.tmp, "data"), ["--api-keys-file", keys])
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assertCode(self, code, fn, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, timeout=e2e.RPC_TIMEOUT, **kwargs)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception

    def test_keys_and_roles(self):
        s = self.server
        # The launcher waited on the health service, which needs no key.
        schema = e2e.pb.CollectionSchema()
        schema.vectors.add(name="v", dim=3, metric=e2e.pb.L2)
        create = e2e.coll_pb.CreateCollectionRequest(name="py", schema=schema)
        err = self.assertCode(grpc.StatusCode.UNAUTHENTICATED, s.collections.CreateCollection,
                              create)
        self.assertIn("API key", err.details())
        err = self.assertCode(grpc.StatusCode.UNAUTHENTICATED, s.collections.CreateCollection,
                              create, metadata=bearer("qk_wrong"))
        self.assertNotIn("qk_wrong", err.details())
        self.assertCode(grpc.StatusCode.PERMISSION_DENIED, s.collections.CreateCollection,
                        create, metadata=bearer(READ_KEY))
        s.collections.CreateCollection(create, timeout=e2e.RPC_TIMEOUT,
                                       metadata=bearer(ADMIN_KEY))

        up = e2e.pts_pb.UpsertPointsRequest(collection="py")
        for i in range(10):
            up.points.append(e2e.make_point("p%d" % i, {"v": [i, i + 1, i + 2]}, {}))
        err = self.assertCode(grpc.StatusCode.PERMISSION_DENIED, s.points.UpsertPoints, up,
                              metadata=bearer(READ_KEY))
        self.assertNotIn(READ_KEY, err.details())
        s.points.UpsertPoints(up, timeout=e2e.RPC_TIMEOUT, metadata=bearer(ADMIN_KEY))

        req = e2e.srch_pb.SearchRequest(collection="py", k=3)
        req.vectors.add(values=[0, 1, 2])
        self.assertCode(grpc.StatusCode.UNAUTHENTICATED, s.search.Search, req)
        hits = s.search.Search(req, timeout=e2e.RPC_TIMEOUT, metadata=bearer(READ_KEY))
        self.assertEqual([h.id for h in hits.results[0].hits][0], "p0")
        count = s.points.CountPoints(e2e.pts_pb.CountPointsRequest(collection="py"),
                                     timeout=e2e.RPC_TIMEOUT, metadata=bearer(READ_KEY))
        self.assertEqual(count.count, 10)


if __name__ == "__main__":
    argv = e2e._parse_own_args(sys.argv)
    unittest.main(argv=argv, verbosity=2)
