#!/usr/bin/python3
"""Health per service name and server reflection v1 and v1alpha, from Python
through the standard grpc.health.v1 and grpc.reflection protos.

Usage:
  /usr/bin/python3 tests/python/health_reflection_test.py \
      --quiverd build/quiverd --proto proto [unittest args...]
"""

import importlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import unittest

import grpc
from google.protobuf import descriptor_pb2

import quiver_e2e_test as e2e

SERVICES = ["quiver.v1.CollectionService", "quiver.v1.PointService", "quiver.v1.SearchService",
            "quiver.v1.SnapshotService"]
refl = {}  # "v1" / "v1alpha" -> (messages module, stubs module)

HERE = os.path.dirname(os.path.abspath(__file__))


def setUpModule():
    e2e.setUpModule()
    # The reflection protos' packages (grpc.reflection.*) collide with the
    # installed grpc package's module path, so they are compiled under
    # another one, as quiver_e2e_test.py does for health.proto.
    root = os.path.join(e2e._stub_dir, "_reflection_proto")
    sources = {"v1": os.path.join(e2e.PROTO_DIR, "grpc", "reflection", "v1", "reflection.proto"),
               "v1alpha": os.path.join(HERE, "..", "e2e", "reflection.proto")}
    for version, src in sources.items():
        d = os.path.join(root, "quiver_test_reflection_" + version)
        os.makedirs(d)
        shutil.copy(src, os.path.join(d, "reflection.proto"))
        e2e._protoc(root, [os.path.join(d, "reflection.proto")])
        pb = importlib.import_module("quiver_test_reflection_%s.reflection_pb2" % version)
        stubs = importlib.import_module("quiver_test_reflection_%s.reflection_pb2_grpc" % version)
        refl[version] = (pb, stubs)


class HealthAndReflectionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="quiver_py_health_")
        cls.server = e2e.Server(os.path.join(cls.tmp, "data"), ["--reflection"])
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def health(self, service):
        stub = e2e.health_grpc.HealthStub(self.server.channel)
        return stub.Check(e2e.health_pb.HealthCheckRequest(service=service),
                          timeout=e2e.RPC_TIMEOUT).status

    def test_health_answers_for_each_service_name(self):
        serving = e2e.health_pb.HealthCheckResponse.SERVING
        for name in [""] + SERVICES:
            self.assertEqual(self.health(name), serving, name)
        with self.assertRaises(grpc.RpcError) as cm:
            self.health("quiver.v1.NoSuchService")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def reflect(self, version, requests):
        pb, stubs = refl[version]
        stub = stubs.ServerReflectionStub(self.server.channel)
        return list(stub.ServerReflectionInfo(iter(requests), timeout=e2e.RPC_TIMEOUT))

    def test_reflection_v1_and_v1alpha_agree(self):
        answers = {}
        for version in ("v1", "v1alpha"):
            pb = refl[version][0]
            resps = self.reflect(version, [
                pb.ServerReflectionRequest(list_services=""),
                pb.ServerReflectionRequest(file_containing_symbol="quiver.v1.SearchService"),
                pb.ServerReflectionRequest(file_containing_symbol="quiver.v1.PointService.GetPoints"),
                pb.ServerReflectionRequest(file_by_filename="quiver/v1/types.proto"),
                pb.ServerReflectionRequest(file_containing_symbol="quiver.v1.NoSuchThing"),
            ])
            self.assertEqual(len(resps), 5, version)
            names = sorted(s.name for s in resps[0].list_services_response.service)
            for s in SERVICES + ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                                 "grpc.reflection.v1alpha.ServerReflection"]:
                self.assertIn(s, names, version)
            files = []
            for r in resps[1:4]:
                fds = [descriptor_pb2.FileDescriptorProto.FromString(b)
                       for b in r.file_descriptor_response.file_descriptor_proto]
                files.append(sorted(f.name for f in fds))
                self.assertTrue(fds, version)
            self.assertIn("quiver/v1/search.proto", files[0])
            self.assertIn("quiver/v1/types.proto", files[0])  # its import comes along
            self.assertIn("quiver/v1/points.proto", files[1])
            self.assertIn("quiver/v1/types.proto", files[2])
            self.assertEqual(resps[4].error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0])
            answers[version] = names
        # The same services; the files are not compared whole: gRPC 1.51's
        # v1alpha reuses one response message on a stream, so each file
        # answer also repeats the files of the answers before it.
        self.assertEqual(answers["v1"], answers["v1alpha"])
        v1 = refl["v1"][0]
        only = self.reflect("v1", [v1.ServerReflectionRequest(file_by_filename="quiver/v1/types.proto")])
        self.assertEqual(len(only[0].file_descriptor_response.file_descriptor_proto), 1)

    def test_health_turns_not_serving_at_shutdown(self):
        # A separate server: this one is stopped.
        server = e2e.Server(os.path.join(self.tmp, "shutdown"), ["--shutdown-grace-seconds", "2"])
        server.start()
        stub = e2e.health_grpc.HealthStub(server.channel)
        updates = []
        watch = stub.Watch(e2e.health_pb.HealthCheckRequest(service="quiver.v1.SearchService"),
                           timeout=30)
        first = next(watch)
        self.assertEqual(first.status, e2e.health_pb.HealthCheckResponse.SERVING)

        def drain():
            try:
                for msg in watch:
                    updates.append(msg.status)
            except grpc.RpcError:
                pass
        t = threading.Thread(target=drain)
        t.start()
        server.proc.send_signal(signal.SIGTERM)
        t.join(30)
        server.stop()
        self.assertIn(e2e.health_pb.HealthCheckResponse.NOT_SERVING, updates)


class ReflectionOffTest(unittest.TestCase):
    def test_v1_needs_the_flag(self):
        tmp = tempfile.mkdtemp(prefix="quiver_py_norefl_")
        self.addCleanup(shutil.rmtree, tmp, True)
        server = e2e.Server(os.path.join(tmp, "data"))
        server.start()
        self.addCleanup(server.stop)
        pb, stubs = refl["v1"]
        stub = stubs.ServerReflectionStub(server.channel)
        with self.assertRaises(grpc.RpcError) as cm:
            list(stub.ServerReflectionInfo(iter([pb.ServerReflectionRequest(list_services="")]),
                                           timeout=e2e.RPC_TIMEOUT))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


if __name__ == "__main__":
    unittest.main(argv=e2e._parse_own_args(sys.argv), verbosity=2)
