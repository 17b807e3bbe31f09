#!/usr/bin/env python3
"""Fails when a source file includes a layer it must not depend on.

The layers, each allowed to include itself and the ones listed after it:

    server -> query -> index -> storage -> base
    client -> base

plus the generated API messages ("quiver/...", "grpc/health/...",
"grpc/reflection/...") where a
layer needs the wire types: query, server and client. Storage keeps its own
messages (storage/*.proto, which may not import the API's either), so the
API can change without touching what is on disk; index and base use none. bench/ and tests/ may
include anything; nothing else may include them. Third-party headers
("absl/...", "rocksdb/...", <...>) are not checked.

Usage: deploy/check-includes.py [repo root]   (ctest runs it as IncludeDirections)
"""
import pathlib
import re
import sys

PROTO = "proto"
ALLOWED = {
    "base": {"base"},
    "storage": {"storage", "base"},
    "index": {"index", "storage", "base"},
    "query": {"query", "index", "storage", "base", PROTO},
    "server": {"server", "query", "base", PROTO},
    "client": {"client", "base", PROTO},
}
PROJECT = set(ALLOWED) | {"bench", "tests"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
IMPORT = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"')


def layer_of_include(path: str):
    if path.startswith(("quiver/", "grpc/health/", "grpc/reflection/")):
        return PROTO
    if path.startswith("storage/") and path.endswith(".pb.h"):
        return "storage"  # storage/records.proto, generated
    top = path.split("/", 1)[0]
    return top if top in PROJECT and "/" in path else None


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
    bad = []
    for layer, allowed in ALLOWED.items():
        for f in sorted((root / layer).rglob("*")):
            if f.suffix not in (".h", ".cc", ".cpp", ".hpp", ".proto") or not f.is_file():
                continue
            pattern = IMPORT if f.suffix == ".proto" else INCLUDE
            for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                m = pattern.match(line)
                if not m:
                    continue
                target = layer_of_include(m.group(1))
                if target is not None and target not in allowed:
                    bad.append(f"{f.relative_to(root)}:{n}: {layer}/ may not include "
                               f"{m.group(1)} ({target}); allowed: {', '.join(sorted(allowed))}")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} include(s) break the layering (see deploy/check-includes.py)")
        return 1
    print("include directions OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
