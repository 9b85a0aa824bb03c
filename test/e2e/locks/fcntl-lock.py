# fcntl record locks for the two-mount lock test. Usage:
#   fcntl-lock.py hold PATH START LEN [ofd]   take a write lock, print "locked", sleep until killed
#   fcntl-lock.py try PATH START LEN [ofd]    F_SETLK: prints "got" or "refused <errno name>"
#   fcntl-lock.py wait PATH START LEN ALARM   F_SETLKW with an alarm after ALARM s: "got" or "refused EINTR"
#   fcntl-lock.py getlk PATH START LEN        F_GETLK: "unlocked" or "<type> <start> <len> <pid>"
import errno, fcntl, os, signal, struct, sys, time

F_OFD_GETLK, F_OFD_SETLK = 36, 37
op, path, start, length = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
extra = sys.argv[5] if len(sys.argv) > 5 else ''
fd = os.open(path, os.O_RDWR)

def flock_struct(kind):
    return struct.pack('hhqqi', kind, os.SEEK_SET, start, length, 0)

def setlk(cmd):
    fcntl.fcntl(fd, cmd, flock_struct(fcntl.F_WRLCK))

try:
    if op == 'hold':
        setlk(F_OFD_SETLK if extra == 'ofd' else fcntl.F_SETLK)
        print('locked', flush=True)
        while True:
            time.sleep(60)
    elif op == 'try':
        setlk(F_OFD_SETLK if extra == 'ofd' else fcntl.F_SETLK)
        print('got')
    elif op == 'wait':
        # Python retries a call interrupted by a handler that returns: this one raises EINTR.
        def interrupted(*_):
            raise OSError(errno.EINTR, 'interrupted')
        signal.signal(signal.SIGALRM, interrupted)
        signal.setitimer(signal.ITIMER_REAL, float(extra))
        setlk(fcntl.F_SETLKW)
        print('got')
    elif op == 'getlk':
        kind, _, s, l, pid = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, flock_struct(fcntl.F_WRLCK)))
        print('unlocked' if kind == fcntl.F_UNLCK else f"{'write' if kind == fcntl.F_WRLCK else 'read'} {s} {l} {pid}")
except OSError as e:
    print('refused', errno.errorcode[e.errno])
