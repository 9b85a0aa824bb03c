# lseek and copy_file_range for the data-operations test; prints the result or the errno name.
#   data-ops.py seek PATH data|hole OFFSET
#   data-ops.py copy SRC DST OFF_IN OFF_OUT LEN [SRC_MODE DST_MODE]   modes r, w, rw (default r, rw)
import errno, os, sys

MODES = {'r': os.O_RDONLY, 'w': os.O_WRONLY, 'rw': os.O_RDWR}
op = sys.argv[1]
try:
    if op == 'seek':
        fd = os.open(sys.argv[2], os.O_RDONLY)
        print(os.lseek(fd, int(sys.argv[4]), os.SEEK_DATA if sys.argv[3] == 'data' else os.SEEK_HOLE))
    elif op == 'copy':
        src, dst, off_in, off_out, n = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        src_mode = MODES[sys.argv[7]] if len(sys.argv) > 7 else os.O_RDONLY
        dst_mode = MODES[sys.argv[8]] if len(sys.argv) > 8 else os.O_RDWR
        fi = os.open(src, src_mode)
        fo = os.open(dst, dst_mode | (os.O_CREAT if dst_mode != os.O_RDONLY else 0), 0o644)
        total = 0
        while total < n:
            k = os.copy_file_range(fi, fo, n - total, off_in + total, off_out + total)
            if k == 0:
                break
            total += k
        print(total)
    else:
        raise SystemExit('unknown op ' + op)
except OSError as e:
    print(errno.errorcode[e.errno])
