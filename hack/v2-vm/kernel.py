#!/usr/bin/env python3
"""hack/v2-vm/kernel.py: the two things hack/v2-vm.sh needs from an unpacked Debian kernel.

  kernel.py vmlinux VMLINUZ OUT      uncompressed ELF kernel out of a bzImage (qemu boots it
                                      through its PVH note: no decompression under emulation)
  kernel.py modules MODDIR NAME...   the .ko files for NAME... and their dependencies, in load
                                      order (the package ships no modules.dep; each module's
                                      .modinfo section names what it depends on)
"""
import lzma
import gzip
import os
import sys
import zlib


def vmlinux(src, out):
    data = open(src, "rb").read()
    # Try every compressed stream the bzImage may carry; the right one inflates to an ELF.
    for magic, inflate in [
        (b"\xfd7zXZ\x00", lambda d: lzma.LZMADecompressor().decompress(d)),
        (b"\x1f\x8b\x08", lambda d: zlib.decompressobj(31).decompress(d)),
        (b"\x5d\x00\x00", lambda d: lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(d)),
    ]:
        at = data.find(magic)
        while at >= 0:
            try:
                elf = inflate(data[at:])
            except (lzma.LZMAError, zlib.error, EOFError, gzip.BadGzipFile):
                elf = b""
            if elf[:4] == b"\x7fELF":
                open(out, "wb").write(elf)
                return
            at = data.find(magic, at + 1)
    sys.exit(f"kernel.py: no ELF kernel found in {src} (zstd-compressed kernels are not handled)")


def modules(moddir, names):
    paths = {}
    for root, _, files in os.walk(moddir):
        for f in files:
            if f.endswith(".ko"):
                paths[f[:-3].replace("-", "_")] = os.path.join(root, f)

    def depends(name):
        blob = open(paths[name], "rb").read()
        at = blob.find(b"\x00depends=")
        if at < 0:
            return []
        end = blob.index(b"\x00", at + 1)
        value = blob[at + len(b"\x00depends="):end].decode()
        return [d.replace("-", "_") for d in value.split(",") if d]

    order, seen = [], set()

    def visit(name):
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in paths:
            return  # built into the kernel
        for d in depends(name):
            visit(d)
        order.append(paths[name])

    for n in names:
        visit(n)
    print("\n".join(order))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "vmlinux":
        vmlinux(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "modules":
        modules(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
