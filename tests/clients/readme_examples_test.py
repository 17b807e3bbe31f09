#!/usr/bin/python3
"""Runs the README's client examples against a real quiverd, so the README
cannot drift from the clients.

An example is the fenced code block right after a marker line
    <!-- example: KIND expect: TEXT -->
KIND is python (run with --python, the venv the package is installed in),
node (run as an ES module that imports quiver-client from --node-dir) or
http (a shell script, run with QUIVER_HTTP set to the HTTP/JSON endpoint).
Each example gets a fresh quiverd (QUIVER_ADDR) and must exit 0 and print
TEXT.

Usage:
  readme_examples_test.py --readme README.md --quiverd build/quiverd --kind python \
      [--python VENV/bin/python] [--node-dir client/node]
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

MARKER = re.compile(r"^<!-- example: (\w+) expect: (.*?) -->$")


def examples(readme, kind):
    lines = open(readme, encoding="utf-8").read().splitlines()
    out = []
    for i, line in enumerate(lines):
        m = MARKER.match(line.strip())
        if not m or m.group(1) != kind:
            continue
        j = i + 1
        if j >= len(lines) or not lines[j].startswith("```"):
            sys.exit("README line %d: the example marker must be followed by a ``` block" % (i + 1))
        k = j + 1
        while k < len(lines) and not lines[k].startswith("```"):
            k += 1
        out.append((i + 1, m.group(2), "\n".join(lines[j + 1:k]) + "\n"))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_quiverd(quiverd, tmp):
    port, http_port = free_port(), free_port()
    log = open(os.path.join(tmp, "quiverd.log"), "wb")
    proc = subprocess.Popen([quiverd, "--listen", "127.0.0.1:%d" % port, "--http-listen",
                             "127.0.0.1:%d" % http_port, "--data-dir", os.path.join(tmp, "data"),
                             "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 20
    for p in (port, http_port):
        while True:
            try:
                socket.create_connection(("127.0.0.1", p), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    sys.exit("quiverd did not start:\n" + open(os.path.join(tmp, "quiverd.log")).read())
                time.sleep(0.05)
    return proc, "127.0.0.1:%d" % port, "127.0.0.1:%d" % http_port


def command(kind, code, tmp, args):
    if kind == "python":
        path = os.path.join(tmp, "example.py")
        open(path, "w").write(code)
        return [os.path.abspath(args.python), path]
    if kind == "node":
        # `import ... from 'quiver-client'` resolves through node_modules.
        os.makedirs(os.path.join(tmp, "node_modules"))
        os.symlink(os.path.abspath(args.node_dir), os.path.join(tmp, "node_modules", "quiver-client"))
        path = os.path.join(tmp, "example.mjs")
        open(path, "w").write(code)
        return ["node", path]
    path = os.path.join(tmp, "example.sh")
    open(path, "w").write("set -e\n" + code)
    return ["bash", path]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--readme", required=True)
    ap.add_argument("--quiverd", required=True)
    ap.add_argument("--kind", required=True, choices=["python", "node", "http"])
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--node-dir", default="")
    args = ap.parse_args()
    found = examples(args.readme, args.kind)
    if not found:
        sys.exit("no '<!-- example: %s expect: ... -->' block in %s" % (args.kind, args.readme))
    failed = 0
    for line, expect, code in found:
        tmp = tempfile.mkdtemp(prefix="quiver_readme_")
        proc, addr, http = start_quiverd(args.quiverd, tmp)
        try:
            env = dict(os.environ, QUIVER_ADDR=addr, QUIVER_HTTP=http)
            env.pop("QUIVER_API_KEY", None)
            r = subprocess.run(command(args.kind, code, tmp, args), env=env, cwd=tmp,
                               capture_output=True, text=True, timeout=120)
            ok = r.returncode == 0 and expect in r.stdout
            print("%s: README line %d: %s example (expects %r)" % (
                "PASS" if ok else "FAIL", line, args.kind, expect))
            if not ok:
                failed += 1
                print("--- code\n%s--- exit %d\n--- stdout\n%s--- stderr\n%s" % (
                    code, r.returncode, r.stdout, r.stderr))
        finally:
            proc.terminate()
            proc.wait(30)
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (len(found) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
