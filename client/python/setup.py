"""Build step of the quiver-client package: generates the gRPC stubs.

The modules quiver.v1.*_pb2 and *_pb2_grpc (with .pyi type stubs) are
generated at build time from the repository's proto/ directory, so the
package always matches the server it is built with and an RPC added to a
.proto is callable at once (Client.stub(...)). Needs protoc and
grpc_python_plugin (Debian: protobuf-compiler, protobuf-compiler-grpc).
QUIVER_PROTO_DIR overrides where proto/ is (default: ../../proto from this
file); PROTOC and GRPC_PYTHON_PLUGIN the tools.
"""
import glob
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _proto_dir():
    d = os.environ.get("QUIVER_PROTO_DIR") or os.path.join(HERE, "..", "..", "proto")
    if not os.path.isdir(os.path.join(d, "quiver", "v1")):
        raise SystemExit("quiver-client: no quiver/v1/*.proto under %s; set QUIVER_PROTO_DIR to the "
                         "repository's proto/ directory" % os.path.abspath(d))
    return d


def generate_stubs(out_dir):
    """Writes quiver/v1/*.py(i) under out_dir."""
    proto = _proto_dir()
    protoc = os.environ.get("PROTOC") or shutil.which("protoc") or "protoc"
    plugin = os.environ.get("GRPC_PYTHON_PLUGIN") or shutil.which("grpc_python_plugin") or \
        "/usr/bin/grpc_python_plugin"
    files = sorted(glob.glob(os.path.join(proto, "quiver", "v1", "*.proto")))
    cmd = [protoc, "-I" + proto, "--python_out=" + out_dir, "--pyi_out=" + out_dir,
           "--grpc_python_out=" + out_dir, "--plugin=protoc-gen-grpc_python=" + plugin] + files
    try:
        subprocess.run(cmd, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit("quiver-client: generating the gRPC stubs failed (%s); install "
                         "protobuf-compiler and protobuf-compiler-grpc" % e)
    pkg = os.path.join(out_dir, "quiver", "v1")
    with open(os.path.join(pkg, "__init__.py"), "w") as f:
        f.write('"""Generated from proto/quiver/v1 by setup.py; do not edit."""\n')


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        generate_stubs(self.build_lib)


setup(cmdclass={"build_py": BuildPyWithStubs})
