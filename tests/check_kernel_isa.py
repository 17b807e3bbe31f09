#!/usr/bin/env python3
"""Fails when a binary has AVX instructions outside the AVX2 kernels.

quiverd is built for baseline x86-64 and runs on any x86-64 CPU; only the
kernels in namespace quiver::index::avx2 (index/kernels.cc compiled with
-mavx2 -mfma, chosen at run time by index/kernels.h) may use AVX. This
disassembles the binary (objdump -d -C) and lists every function outside
that namespace (or base/simd.h's AVX2 helpers) with a VEX/EVEX-encoded vector instruction: any ymm or zmm
register, or a v-prefixed mnemonic on xmm registers (the AVX forms of SSE
instructions, which also fault without AVX). Such a function would kill
the server with SIGILL on a CPU without AVX, e.g. an inline function of a
shared header emitted from the AVX2 kernel file and kept by the linker.

It also checks that the AVX2 kernels are there, so it cannot pass by
disassembling nothing.

Usage: tests/check_kernel_isa.py <binary>   (ctest runs it as KernelIsa)
"""
import re
import subprocess
import sys

# base/simd.h's AVX helpers are defined only in code compiled for AVX2
# (the kernels); without inlining (-O0) they are functions of their own.
ALLOWED = ("quiver::index::avx2::", "quiver::simd::Horizontal")
FUNCTION = re.compile(r"^[0-9a-f]+ <(.*)>:$")
VECTOR = re.compile(r"%[yz]mm\d|^v\S*\s.*%xmm\d")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", sys.argv[1]],
                         check=True, capture_output=True, text=True).stdout
    offenders = {}
    kernels = 0
    function = None
    for line in out.splitlines():
        m = FUNCTION.match(line)
        if m:
            function = m.group(1)
            continue
        parts = line.split("\t", 1)
        if function is None or len(parts) != 2 or not VECTOR.search(parts[1].strip()):
            continue
        # The name up to its template arguments or parameters (a
        # demangled template function starts with its return type).
        name = re.split(r"[<(]", function, maxsplit=1)[0]
        if any(a in name for a in ALLOWED):
            kernels += 1
        else:
            offenders.setdefault(function, parts[1].strip())
    if kernels == 0:
        print(f"no AVX instruction in {ALLOWED[0]}*: is this a build with the kernels?")
        return 1
    for function, insn in sorted(offenders.items()):
        print(f"AVX outside the kernels: {function}: {insn}")
    if offenders:
        print(f"{len(offenders)} function(s) outside {ALLOWED[0]}* use AVX: the binary would "
              "fault on a CPU without AVX")
        return 1
    print(f"ok: {kernels} AVX instructions, all in {ALLOWED[0]}*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
