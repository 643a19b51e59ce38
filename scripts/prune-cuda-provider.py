"""Shrinks ONNX Runtime's CUDA provider for carrying to a machine with one known GPU kind.

libonnxruntime_providers_cuda.so (230 MB) is mostly GPU machine code for six architectures
(sm_75 ... sm_120) in its .nv_fatbin section. This zeroes the code of every architecture but
the one kept, leaving every header, offset and size as it was: the CUDA runtime picks the
image that matches the GPU (exact sm_XX first), so on that GPU the pruned library behaves as
the original, and the zeros compress to nothing (xz: 180 MB -> ~37 MB for sm_90). On any other
GPU it fails to find kernels; never ship a pruned library, only carry one to a test machine.

usage: prune-cuda-provider.py SRC.so DST.so [ARCH=90]
Python 3 standard library only (no binutils needed).
"""
import struct
import sys

FATBIN_MAGIC = 0xBA55ED50
ELF_ENTRY = 2  # fatbin entry kind: 1 = PTX, 2 = ELF (SASS)


def section(data: bytes, wanted: str) -> tuple[int, int]:
    """File offset and size of an ELF64 little-endian section, by name."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SystemExit("not a little-endian ELF64 file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    str_off = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)[0]
    for i in range(shnum):
        base = shoff + i * shentsize
        name_at = struct.unpack_from("<I", data, base)[0]
        end = data.index(b"\0", str_off + name_at)
        if data[str_off + name_at : end].decode() == wanted:
            offset, size = struct.unpack_from("<QQ", data, base + 0x18)
            return offset, size
    raise SystemExit(f"no {wanted} section: not a CUDA library")


def prune(data: bytearray, keep_arch: int) -> dict[str, int]:
    offset, size = section(data, ".nv_fatbin")
    stats = {"kept": 0, "zeroed": 0, "kept_entries": 0, "zeroed_entries": 0}
    pos, end_section = offset, offset + size
    while pos + 16 <= end_section:
        magic, _version, header_size, body_size = struct.unpack_from("<IHHQ", data, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # fatbins are 8-byte aligned; padding sits between them
            continue
        entry, end = pos + header_size, pos + header_size + body_size
        while entry < end:
            kind, _flags, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
            arch = struct.unpack_from("<I", data, entry + 28)[0]
            start = entry + entry_header
            if kind == ELF_ENTRY and arch != keep_arch:
                data[start : start + payload] = bytes(payload)
                stats["zeroed"] += payload
                stats["zeroed_entries"] += 1
            else:
                stats["kept"] += payload
                stats["kept_entries"] += 1
            entry = start + payload
        pos = end
    return stats


def main() -> None:
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    keep = int(sys.argv[3]) if len(sys.argv) == 4 else 90
    data = bytearray(open(src, "rb").read())
    stats = prune(data, keep)
    if stats["kept_entries"] == 0:
        raise SystemExit(f"the library holds no code for sm_{keep}: pruning would leave nothing to run")
    with open(dst, "wb") as out:
        out.write(data)
    mib = 1 << 20
    print(
        f"kept sm_{keep}: {stats['kept_entries']} images, {stats['kept'] // mib} MiB; "
        f"zeroed {stats['zeroed_entries']} images of other architectures, {stats['zeroed'] // mib} MiB"
    )


if __name__ == "__main__":
    main()
