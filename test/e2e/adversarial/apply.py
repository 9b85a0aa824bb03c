#!/usr/bin/env python3
"""Applies a JSON list of file operations with exact 64-bit sizes and offsets below ROOT and
prints one JSON result per operation: {"ok": value} or {"err": "ERRNO"}. Python, because its
integers carry offsets near 2**63 that a JavaScript number would round.
usage: apply.py ROOT < ops.json"""
import errno, hashlib, json, os, sys

root = sys.argv[1]
ops = json.load(sys.stdin)

def pattern(seed, length):
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (length // len(block) + 1))[:length]

def digest(data):
    return "%d:%s" % (len(data), hashlib.sha256(data).hexdigest()[:16])

def run(op):
    path = os.path.join(root, op["path"])
    kind = op["op"]
    if kind == "truncate":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, int(op["size"]))
        finally:
            os.close(fd)
        return os.stat(path).st_size
    if kind == "pwrite":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            return os.pwrite(fd, pattern(op["seed"], op["length"]), int(op["offset"]))
        finally:
            os.close(fd)
    if kind == "fallocate":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.posix_fallocate(fd, int(op["offset"]), int(op["length"]))
        finally:
            os.close(fd)
        return os.stat(path).st_size
    if kind == "pread":
        fd = os.open(path, os.O_RDONLY)
        try:
            return digest(os.pread(fd, op["length"], int(op["offset"])))
        finally:
            os.close(fd)
    if kind == "stat":
        return str(os.stat(path).st_size)
    if kind == "unlink":
        os.unlink(path)
        return None
    if kind == "rename":
        os.rename(path, os.path.join(root, op["to"]))
        return None
    if kind == "unlinked-io":
        # An open file unlinked, then written, grown, read and stat'ed through its descriptor.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.unlink(path)
            wrote = os.pwrite(fd, pattern(op["seed"], op["length"]), int(op["offset"]))
            size = os.fstat(fd).st_size
            back = digest(os.pread(fd, op["length"], int(op["offset"])))
            return [wrote, str(size), back]
        finally:
            os.close(fd)
    raise ValueError("unknown op " + kind)

out = []
for op in ops:
    try:
        value = run(op)
        out.append({"ok": str(value) if isinstance(value, int) and not isinstance(value, bool) else value})
    except OSError as e:
        out.append({"err": errno.errorcode.get(e.errno, str(e.errno))})
print(json.dumps(out))
