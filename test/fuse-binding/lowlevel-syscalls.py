#!/usr/bin/env python3
# Syscalls that neither node nor coreutils expose with the flags the low-level binding's tests
# need. Prints {"ok": true, "value": N} or {"ok": false, "errno": "ENAME"}.
#   renameat2 OLD NEW FLAGS | fallocate PATH MODE OFF LEN | seek PATH data|hole OFF
#   flock PATH | lockw PATH START LEN | getlk PATH START LEN
#   lockw-alarm PATH SECONDS (F_SETLKW of the whole file, interrupted by SIGALRM after SECONDS)
import ctypes, errno, fcntl, json, os, signal, struct, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
AT_FDCWD = -100


def fail(err):
    print(json.dumps({"ok": False, "errno": errno.errorcode.get(err, str(err))}))
    sys.exit(0)


def check(r):
    if r < 0:
        fail(ctypes.get_errno())
    return r


op, args = sys.argv[1], sys.argv[2:]
try:
    if op == "renameat2":
        value = check(libc.renameat2(AT_FDCWD, args[0].encode(), AT_FDCWD, args[1].encode(), int(args[2])))
    elif op == "fallocate":
        fd = os.open(args[0], os.O_RDWR)
        value = check(libc.fallocate(fd, int(args[1]), int(args[2]), int(args[3])))
        os.close(fd)
    elif op == "seek":
        fd = os.open(args[0], os.O_RDONLY)
        value = os.lseek(fd, int(args[2]), os.SEEK_DATA if args[1] == "data" else os.SEEK_HOLE)
        os.close(fd)
    elif op == "flock":
        fd = os.open(args[0], os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        value = 0
    elif op == "lockw-alarm":
        fd = os.open(args[0], os.O_RDWR)
        def interrupted(*_):
            # Python would retry the call after a handler that returns.
            raise OSError(errno.EINTR, "interrupted")
        signal.signal(signal.SIGALRM, interrupted)
        signal.setitimer(signal.ITIMER_REAL, float(args[1]))
        fcntl.lockf(fd, fcntl.LOCK_EX)
        value = 0
    elif op in ("lockw", "getlk"):
        fd = os.open(args[0], os.O_RDWR)
        start, length = int(args[1]), int(args[2])
        if op == "lockw":
            fcntl.lockf(fd, fcntl.LOCK_EX, length, start)  # F_SETLKW: blocking
            fcntl.lockf(fd, fcntl.LOCK_UN, length, start)
            value = 0
        else:
            lk = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
            res = fcntl.fcntl(fd, fcntl.F_GETLK, lk)
            value = struct.unpack("hhqqi", res)[0]  # the l_type the filesystem answered
        os.close(fd)
    else:
        raise SystemExit("unknown op " + op)
except OSError as e:
    fail(e.errno)
print(json.dumps({"ok": True, "value": value}))
