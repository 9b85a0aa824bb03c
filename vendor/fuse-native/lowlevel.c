// Low-level libfuse3 binding: see README.md ("Low-level binding") for the JS API and the rules.
//
// Threads. One loop thread per session reads /dev/fuse and runs libfuse's dispatcher. Each
// request callback copies its arguments into a struct ll_req, files it in the session's list of
// outstanding requests and queues it to JS through a threadsafe function; it never waits for JS.
// JS answers later, on Node's thread, through the reply functions below.
//
// Request lifetime. The JS side holds a request as a napi external wrapping its ll_req. The
// state moves PENDING -> REPLIED (a reply function) or PENDING -> DROPPED (the session ended
// first: close_requests answers EIO for it). Only Node's thread changes the state, so a reply
// checks it without racing. The ll_req is freed by the external's finalizer; a request that is
// garbage collected while still PENDING is answered EIO there, so the kernel never waits forever.
//
// Locking. `lock` guards every session's list of outstanding requests and the interrupted
// flags; the loop thread and Node's thread both take it, never while calling into JS.
#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <node_api.h>

enum {
  OP_INIT, OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR,
  OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE, OP_FLUSH,
  OP_RELEASE, OP_FSYNC, OP_OPENDIR, OP_READDIR, OP_RELEASEDIR, OP_FSYNCDIR, OP_STATFS,
  OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_ACCESS, OP_CREATE, OP_GETLK,
  OP_SETLK, OP_FLOCK, OP_FALLOCATE, OP_READDIRPLUS, OP_COPY_FILE_RANGE, OP_LSEEK,
  OP_COUNT,
  // Messages that are not requests.
  MSG_INTERRUPT = 100, MSG_ENDED
};

// DROPPED: answered EIO when the session ended; LATE: JS replied to it after that (ignored).
enum { PENDING, REPLIED, DROPPED, LATE };

struct ll_session;

struct ll_req {
  int op;
  int state;
  int interrupted;
  fuse_req_t req;
  struct ll_session *s;
  struct ll_req *prev, *next;
  uint64_t id;
  struct fuse_ctx ctx;
  uint64_t ino, ino2, fh, fh2, owner, size;
  int64_t off, off2;
  int has_fh, has_fh2;
  uint32_t mode, flags;
  int32_t arg;  // mask, whence, datasync, sleep, fallocate mode, flock op, setattr to_set
  struct stat attr;
  struct flock lk;
  char *data;  // write / setxattr payload, forget list; handed over to JS
  char *base;  // when data points into a receive buffer taken from libfuse: that buffer
  size_t datalen;
  const char *name, *name2;
  char strings[];
};

struct ll_session {
  struct fuse_session *se;
  pthread_t thread;
  int thread_started;
  int wake_fd;
  napi_threadsafe_function tsfn;
  struct ll_req outstanding;  // list head
  uint64_t next_id;
  uint64_t enabled;           // bit per OP_* the JS side implements
  unsigned max_write, max_readahead, want_set, want_clear;
  struct fuse_conn_info conn;  // as negotiated, for JS
  struct fuse_buf *cur;        // the receive buffer being dispatched (loop thread only)
  int ended_reason;            // 0: stopped by unmount(), ENODEV: unmounted from outside
  int leaked_warned;
  int no_file_caps;            // answer getxattr("security.capability") ENODATA here
  uint64_t received[OP_COUNT]; // requests per OP_* the kernel sent us (loop thread adds, atomically)
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)
#define THROW(msg) do { napi_throw_error(env, NULL, msg); return NULL; } while (0)
#define THROW_TYPE(msg) do { napi_throw_type_error(env, NULL, msg); return NULL; } while (0)

// ---------------------------------------------------------------- loop thread: requests in

static void free_payload(struct ll_req *r) {
  free(r->base ? r->base : r->data);
  r->base = r->data = NULL;
}

// Writes at least this large take libfuse's whole receive buffer instead of a copy of their
// data (libfuse allocates a fresh one for the next request). Smaller ones are copied, so that
// a small Buffer kept by JS never pins a 1 MiB block.
#define TAKE_BUFFER_MIN (256 * 1024)

// Counts a request the kernel sent, whether JS or the binding answers it.
static void count_request(struct ll_session *s, int op) {
  __atomic_fetch_add(&s->received[op], 1, __ATOMIC_RELAXED);
}

static struct ll_req *new_req(fuse_req_t req, int op, const char *name, const char *name2) {
  size_t n1 = name ? strlen(name) + 1 : 0, n2 = name2 ? strlen(name2) + 1 : 0;
  struct ll_req *r = calloc(1, sizeof(*r) + n1 + n2);
  if (r == NULL) return NULL;
  r->op = op;
  r->req = req;
  r->s = req ? fuse_req_userdata(req) : NULL;
  if (req) {
    r->ctx = *fuse_req_ctx(req);
    count_request(r->s, op);
  }
  if (name) r->name = memcpy(r->strings, name, n1);
  if (name2) r->name2 = memcpy(r->strings + n1, name2, n2);
  return r;
}

static void on_interrupt(fuse_req_t req, void *data) {
  struct ll_session *s = data;
  uint64_t id = 0;
  pthread_mutex_lock(&lock);
  for (struct ll_req *r = s->outstanding.next; r != &s->outstanding; r = r->next) {
    if (r->req == req) {
      r->interrupted = 1;
      id = r->id;
      break;
    }
  }
  pthread_mutex_unlock(&lock);
  if (id == 0) return;
  struct ll_req *m = new_req(NULL, MSG_INTERRUPT, NULL, NULL);
  if (m == NULL) return;
  m->id = id;
  m->s = s;
  if (napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_nonblocking) != napi_ok) free(m);
}

// Files the request as outstanding and queues it for JS. Returns at once.
static void queue(struct ll_req *r) {
  struct ll_session *s = r->s;
  pthread_mutex_lock(&lock);
  r->id = ++s->next_id;
  r->next = &s->outstanding;
  r->prev = s->outstanding.prev;
  r->prev->next = r;
  s->outstanding.prev = r;
  pthread_mutex_unlock(&lock);
  // After filing: an interrupt that already arrived calls on_interrupt right here.
  fuse_req_interrupt_func(r->req, on_interrupt, s);
  if (napi_call_threadsafe_function(s->tsfn, r, napi_tsfn_nonblocking) != napi_ok) {
    // Only when the session is closing: close_requests answers it.
  }
}

#define NEW(op, n1, n2) \
  struct ll_req *r = new_req(req, op, n1, n2); \
  if (r == NULL) { fuse_reply_err(req, ENOMEM); return; }

static void take_fi(struct ll_req *r, struct fuse_file_info *fi) {
  if (fi == NULL) return;
  r->has_fh = 1;
  r->fh = fi->fh;
  r->flags = fi->flags;
  r->owner = fi->lock_owner;
}

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  struct ll_session *s = userdata;
  conn->want |= s->want_set & conn->capable;
  conn->want &= ~s->want_clear;
  conn->max_write = s->max_write;
  if (s->max_readahead) conn->max_readahead = s->max_readahead;
  s->conn = *conn;
  struct ll_req *m = new_req(NULL, OP_INIT, NULL, NULL);
  if (m == NULL) return;
  m->s = s;
  if (napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_nonblocking) != napi_ok) free(m);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  NEW(OP_LOOKUP, name, NULL);
  r->ino = parent;
  queue(r);
}

// Forgets need no answer: they are answered here and passed on as a list of (ino, nlookup).
static void forget_list(fuse_req_t req, size_t count, struct fuse_forget_data *list) {
  struct ll_session *s = fuse_req_userdata(req);
  count_request(s, OP_FORGET);
  fuse_reply_none(req);
  struct ll_req *m = new_req(NULL, OP_FORGET, NULL, NULL);
  if (m == NULL) return;
  m->s = s;
  m->data = malloc(count * sizeof(*list));
  if (m->data == NULL) { free(m); return; }
  memcpy(m->data, list, count * sizeof(*list));
  m->datalen = count;
  if (napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_nonblocking) != napi_ok) {
    free(m->data);
    free(m);
  }
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  struct fuse_forget_data one = { .ino = ino, .nlookup = nlookup };
  forget_list(req, 1, &one);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  forget_list(req, count, forgets);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  NEW(OP_GETATTR, NULL, NULL);
  r->ino = ino;
  take_fi(r, fi);
  queue(r);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi) {
  NEW(OP_SETATTR, NULL, NULL);
  r->ino = ino;
  r->attr = *attr;
  r->arg = to_set;
  take_fi(r, fi);
  queue(r);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  NEW(OP_READLINK, NULL, NULL);
  r->ino = ino;
  queue(r);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  NEW(OP_MKNOD, name, NULL);
  r->ino = parent;
  r->mode = mode;
  r->size = rdev;
  queue(r);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  NEW(OP_MKDIR, name, NULL);
  r->ino = parent;
  r->mode = mode;
  queue(r);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  NEW(OP_UNLINK, name, NULL);
  r->ino = parent;
  queue(r);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  NEW(OP_RMDIR, name, NULL);
  r->ino = parent;
  queue(r);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  NEW(OP_SYMLINK, link, name);
  r->ino = parent;
  queue(r);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags) {
  NEW(OP_RENAME, name, newname);
  r->ino = parent;
  r->ino2 = newparent;
  r->flags = flags;
  queue(r);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  NEW(OP_LINK, newname, NULL);
  r->ino = ino;
  r->ino2 = newparent;
  queue(r);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  NEW(OP_OPEN, NULL, NULL);
  r->ino = ino;
  take_fi(r, fi);
  queue(r);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  NEW(OP_READ, NULL, NULL);
  r->ino = ino;
  r->size = size;
  r->off = off;
  take_fi(r, fi);
  queue(r);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
  NEW(OP_WRITE, NULL, NULL);
  // The buffer belongs to libfuse and is reused for the next request: take it, or copy.
  struct fuse_buf *fb = r->s->cur;
  if (fb && fb->mem && size >= TAKE_BUFFER_MIN && buf >= (char *)fb->mem &&
      buf + size <= (char *)fb->mem + fb->size) {
    r->base = fb->mem;
    r->data = (char *)buf;
    fb->mem = NULL;
  } else {
    r->data = malloc(size ? size : 1);
    if (r->data == NULL) { free(r); fuse_reply_err(req, ENOMEM); return; }
    memcpy(r->data, buf, size);
  }
  r->datalen = size;
  r->ino = ino;
  r->off = off;
  take_fi(r, fi);
  queue(r);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  NEW(OP_FLUSH, NULL, NULL);
  r->ino = ino;
  take_fi(r, fi);
  queue(r);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  NEW(OP_RELEASE, NULL, NULL);
  r->ino = ino;
  take_fi(r, fi);
  r->arg = fi->flock_release;
  queue(r);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  NEW(OP_FSYNC, NULL, NULL);
  r->ino = ino;
  r->arg = datasync;
  take_fi(r, fi);
  queue(r);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  NEW(OP_OPENDIR, NULL, NULL);
  r->ino = ino;
  take_fi(r, fi);
  queue(r);
}

static void readdir_common(int op, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi) {
  NEW(op, NULL, NULL);
  r->ino = ino;
  r->size = size;
  r->off = off;
  take_fi(r, fi);
  queue(r);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  readdir_common(OP_READDIR, req, ino, size, off, fi);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi) {
  readdir_common(OP_READDIRPLUS, req, ino, size, off, fi);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  NEW(OP_RELEASEDIR, NULL, NULL);
  r->ino = ino;
  take_fi(r, fi);
  queue(r);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  NEW(OP_FSYNCDIR, NULL, NULL);
  r->ino = ino;
  r->arg = datasync;
  take_fi(r, fi);
  queue(r);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  NEW(OP_STATFS, NULL, NULL);
  r->ino = ino;
  queue(r);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags) {
  NEW(OP_SETXATTR, name, NULL);
  r->data = malloc(size ? size : 1);
  if (r->data == NULL) { free(r); fuse_reply_err(req, ENOMEM); return; }
  memcpy(r->data, value, size);
  r->datalen = size;
  r->ino = ino;
  r->flags = flags;
  queue(r);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  struct ll_session *s = fuse_req_userdata(req);
  // The kernel asks this before every write when the filesystem has xattrs; answering here
  // saves a round trip through JS per write.
  if (s->no_file_caps && strcmp(name, "security.capability") == 0) {
    count_request(s, OP_GETXATTR);
    fuse_reply_err(req, ENODATA);
    return;
  }
  NEW(OP_GETXATTR, name, NULL);
  r->ino = ino;
  r->size = size;
  queue(r);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  NEW(OP_LISTXATTR, NULL, NULL);
  r->ino = ino;
  r->size = size;
  queue(r);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  NEW(OP_REMOVEXATTR, name, NULL);
  r->ino = ino;
  queue(r);
}

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  NEW(OP_ACCESS, NULL, NULL);
  r->ino = ino;
  r->arg = mask;
  queue(r);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi) {
  NEW(OP_CREATE, name, NULL);
  r->ino = parent;
  r->mode = mode;
  take_fi(r, fi);
  queue(r);
}

static void ll_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lk) {
  NEW(OP_GETLK, NULL, NULL);
  r->ino = ino;
  r->lk = *lk;
  take_fi(r, fi);
  queue(r);
}

static void ll_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lk,
                     int sleep) {
  NEW(OP_SETLK, NULL, NULL);
  r->ino = ino;
  r->lk = *lk;
  r->arg = sleep;
  take_fi(r, fi);
  queue(r);
}

static void ll_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op) {
  NEW(OP_FLOCK, NULL, NULL);
  r->ino = ino;
  r->arg = op;
  take_fi(r, fi);
  queue(r);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi) {
  NEW(OP_FALLOCATE, NULL, NULL);
  r->ino = ino;
  r->arg = mode;
  r->off = offset;
  r->off2 = length;
  take_fi(r, fi);
  queue(r);
}

static void ll_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len, int flags) {
  NEW(OP_COPY_FILE_RANGE, NULL, NULL);
  r->ino = ino_in;
  r->off = off_in;
  r->fh = fi_in->fh;
  r->ino2 = ino_out;
  r->off2 = off_out;
  r->fh2 = fi_out->fh;
  r->size = len;
  r->flags = flags;
  queue(r);
}

static void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) {
  NEW(OP_LSEEK, NULL, NULL);
  r->ino = ino;
  r->off = off;
  r->arg = whence;
  take_fi(r, fi);
  queue(r);
}

// Our own loop rather than fuse_session_loop: it also watches wake_fd, so that unmount() can
// stop it without closing the device under a thread that is reading it.
static void *loop_thread(void *data) {
  struct ll_session *s = data;
  struct fuse_buf buf = { .mem = NULL };
  int fd = fuse_session_fd(s->se);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  struct pollfd fds[2] = { { .fd = fd, .events = POLLIN }, { .fd = s->wake_fd, .events = POLLIN } };
  int reason = 0;
  while (!fuse_session_exited(s->se)) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      reason = errno;
      break;
    }
    if (fds[1].revents) break;
    if (fds[0].revents & (POLLERR | POLLHUP)) { reason = ENODEV; break; }
    int res = fuse_session_receive_buf(s->se, &buf);
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res <= 0) { reason = res == 0 ? ENODEV : -res; break; }
    s->cur = &buf;
    fuse_session_process_buf(s->se, &buf);
    s->cur = NULL;
  }
  free(buf.mem);
  s->ended_reason = reason;
  struct ll_req *m = new_req(NULL, MSG_ENDED, NULL, NULL);
  if (m) {
    m->s = s;
    m->arg = reason;
    if (napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_blocking) != napi_ok) free(m);
  }
  return NULL;
}

// ---------------------------------------------------------------- Node's thread: values

static napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// A 64-bit unsigned value as a number when exact, else as a bigint.
static napi_value u64(napi_env env, uint64_t v) {
  napi_value out;
  if (v <= 9007199254740991ULL) napi_create_double(env, (double)v, &out);
  else napi_create_bigint_uint64(env, v, &out);
  return out;
}

// A 64-bit signed value (an offset, a size) as a number when exact, else as a bigint.
static napi_value i64(napi_env env, int64_t v) {
  napi_value out;
  if (v <= 9007199254740991LL && v >= -9007199254740991LL) napi_create_double(env, (double)v, &out);
  else napi_create_bigint_int64(env, v, &out);
  return out;
}

static napi_value str(napi_env env, const char *s) {
  napi_value out;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &out);
  return out;
}

static napi_value timespec_obj(napi_env env, struct timespec ts) {
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "sec", num(env, (double)ts.tv_sec));
  napi_set_named_property(env, o, "nsec", num(env, (double)ts.tv_nsec));
  return o;
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) != napi_ok || t == napi_undefined || t == napi_null;
}

// Reads a number or bigint as uint64; throws a TypeError naming `what` otherwise.
static int get_u64(napi_env env, napi_value v, uint64_t *out, const char *what) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    bool lossless;
    napi_get_value_bigint_uint64(env, v, out, &lossless);
    if (lossless) return 1;
  } else if (t == napi_number) {
    double d;
    napi_get_value_double(env, v, &d);
    if (d >= 0 && d < 18446744073709551616.0 && d == (double)(uint64_t)d) { *out = (uint64_t)d; return 1; }
  }
  char msg[160];
  snprintf(msg, sizeof(msg), "fuse-native/lowlevel: %s must be a non-negative integer (number or bigint)", what);
  napi_throw_type_error(env, NULL, msg);
  return 0;
}

static int get_i64(napi_env env, napi_value v, int64_t *out, const char *what) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    bool lossless;
    napi_get_value_bigint_int64(env, v, out, &lossless);
    if (lossless) return 1;
  } else if (t == napi_number) {
    double d;
    napi_get_value_double(env, v, &d);
    if (d == (double)(int64_t)d) { *out = (int64_t)d; return 1; }
  }
  char msg[160];
  snprintf(msg, sizeof(msg), "fuse-native/lowlevel: %s must be an integer (number or bigint)", what);
  napi_throw_type_error(env, NULL, msg);
  return 0;
}

// Optional property: absent/undefined/null leaves *out alone.
static int prop_u64(napi_env env, napi_value obj, const char *name, uint64_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return 0;
  if (is_nullish(env, v)) return 1;
  return get_u64(env, v, out, name);
}

static int prop_bool(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return 0;
  if (napi_coerce_to_bool(env, v, &v) == napi_ok) napi_get_value_bool(env, v, &b);
  return b;
}

// A time as { sec, nsec }, a Date, a bigint of nanoseconds or a number of milliseconds.
static int get_time(napi_env env, napi_value v, struct timespec *ts, const char *what) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  bool is_date = false;
  napi_is_date(env, v, &is_date);
  if (t == napi_number || is_date) {
    double ms;
    if (is_date) napi_get_date_value(env, v, &ms);
    else napi_get_value_double(env, v, &ms);
    int64_t ns = (int64_t)(ms * 1e6);
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
    if (ts->tv_nsec < 0) { ts->tv_nsec += 1000000000; ts->tv_sec--; }
    return 1;
  }
  if (t == napi_bigint) {
    int64_t ns;
    bool lossless;
    napi_get_value_bigint_int64(env, v, &ns, &lossless);
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
    if (ts->tv_nsec < 0) { ts->tv_nsec += 1000000000; ts->tv_sec--; }
    return 1;
  }
  if (t == napi_object) {
    napi_value sec, nsec;
    int64_t s = 0, n = 0;
    napi_get_named_property(env, v, "sec", &sec);
    napi_get_named_property(env, v, "nsec", &nsec);
    if (!get_i64(env, sec, &s, what)) return 0;
    if (!is_nullish(env, nsec) && !get_i64(env, nsec, &n, what)) return 0;
    ts->tv_sec = s;
    ts->tv_nsec = n;
    return 1;
  }
  if (t == napi_undefined || t == napi_null) return 1;
  char msg[160];
  snprintf(msg, sizeof(msg), "fuse-native/lowlevel: %s must be { sec, nsec }, a Date, a bigint or a number", what);
  napi_throw_type_error(env, NULL, msg);
  return 0;
}

static int prop_time(napi_env env, napi_value obj, const char *name, struct timespec *ts) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return 0;
  return get_time(env, v, ts, name);
}

static int js_to_stat(napi_env env, napi_value o, struct stat *st) {
  uint64_t ino = 0, mode = 0, nlink = 1, uid = 0, gid = 0, rdev = 0, size = 0, blksize = 4096, blocks = 0;
  napi_valuetype t;
  napi_typeof(env, o, &t);
  if (t != napi_object) {
    napi_throw_type_error(env, NULL, "fuse-native/lowlevel: attr must be a stat object");
    return 0;
  }
  if (!prop_u64(env, o, "ino", &ino) || !prop_u64(env, o, "mode", &mode) ||
      !prop_u64(env, o, "nlink", &nlink) || !prop_u64(env, o, "uid", &uid) ||
      !prop_u64(env, o, "gid", &gid) || !prop_u64(env, o, "rdev", &rdev) ||
      !prop_u64(env, o, "size", &size) || !prop_u64(env, o, "blksize", &blksize)) return 0;
  blocks = (size + 511) / 512;
  if (!prop_u64(env, o, "blocks", &blocks)) return 0;
  memset(st, 0, sizeof(*st));
  st->st_ino = ino;
  st->st_mode = mode;
  st->st_nlink = nlink;
  st->st_uid = uid;
  st->st_gid = gid;
  st->st_rdev = rdev;
  st->st_size = size;
  st->st_blksize = blksize;
  st->st_blocks = blocks;
  return prop_time(env, o, "atime", &st->st_atim) && prop_time(env, o, "mtime", &st->st_mtim) &&
         prop_time(env, o, "ctime", &st->st_ctim);
}

static int prop_double(napi_env env, napi_value o, const char *name, double *out) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, o, name, &v) != napi_ok) return 0;
  napi_typeof(env, v, &t);
  if (t == napi_undefined || t == napi_null) return 1;
  if (t != napi_number) {
    char msg[128];
    snprintf(msg, sizeof(msg), "fuse-native/lowlevel: %s must be a number of seconds", name);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  napi_get_value_double(env, v, out);
  return 1;
}

// { ino, generation, attr, attrTimeout, entryTimeout }; attr.ino defaults to ino.
static int js_to_entry(napi_env env, napi_value o, struct fuse_entry_param *e, const double *timeouts) {
  napi_value attr;
  memset(e, 0, sizeof(*e));
  e->entry_timeout = timeouts[0];
  e->attr_timeout = timeouts[1];
  if (napi_get_named_property(env, o, "attr", &attr) != napi_ok) return 0;
  if (!prop_u64(env, o, "ino", &e->ino) || !prop_u64(env, o, "generation", &e->generation)) return 0;
  if (is_nullish(env, attr)) {
    if (e->ino != 0) {
      napi_throw_type_error(env, NULL, "fuse-native/lowlevel: an entry needs attr");
      return 0;
    }
  } else if (!js_to_stat(env, attr, &e->attr)) return 0;
  if (e->attr.st_ino == 0) e->attr.st_ino = e->ino;
  return prop_double(env, o, "attrTimeout", &e->attr_timeout) &&
         prop_double(env, o, "entryTimeout", &e->entry_timeout);
}

// { fh, directIo, keepCache, nonseekable, cacheReaddir, noflush }
static int js_to_fi(napi_env env, napi_value o, struct fuse_file_info *fi) {
  memset(fi, 0, sizeof(*fi));
  if (is_nullish(env, o)) return 1;
  if (!prop_u64(env, o, "fh", &fi->fh)) return 0;
  fi->direct_io = prop_bool(env, o, "directIo");
  fi->keep_cache = prop_bool(env, o, "keepCache");
  fi->nonseekable = prop_bool(env, o, "nonseekable");
  fi->cache_readdir = prop_bool(env, o, "cacheReaddir");
  fi->noflush = prop_bool(env, o, "noflush");
  return 1;
}

static napi_value lock_obj(napi_env env, const struct flock *lk) {
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "type", num(env, lk->l_type));
  napi_set_named_property(env, o, "whence", num(env, lk->l_whence));
  napi_set_named_property(env, o, "start", num(env, (double)lk->l_start));
  napi_set_named_property(env, o, "len", num(env, (double)lk->l_len));
  napi_set_named_property(env, o, "pid", num(env, lk->l_pid));
  return o;
}

static napi_value setattr_obj(napi_env env, const struct stat *a, int to_set) {
  napi_value o;
  napi_create_object(env, &o);
  if (to_set & FUSE_SET_ATTR_MODE) napi_set_named_property(env, o, "mode", num(env, a->st_mode));
  if (to_set & FUSE_SET_ATTR_UID) napi_set_named_property(env, o, "uid", num(env, a->st_uid));
  if (to_set & FUSE_SET_ATTR_GID) napi_set_named_property(env, o, "gid", num(env, a->st_gid));
  if (to_set & FUSE_SET_ATTR_SIZE) napi_set_named_property(env, o, "size", i64(env, a->st_size));
  if (to_set & FUSE_SET_ATTR_ATIME) napi_set_named_property(env, o, "atime", timespec_obj(env, a->st_atim));
  if (to_set & FUSE_SET_ATTR_MTIME) napi_set_named_property(env, o, "mtime", timespec_obj(env, a->st_mtim));
  if (to_set & FUSE_SET_ATTR_CTIME) napi_set_named_property(env, o, "ctime", timespec_obj(env, a->st_ctim));
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    napi_value t;
    napi_get_boolean(env, true, &t);
    napi_set_named_property(env, o, "atimeNow", t);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    napi_value t;
    napi_get_boolean(env, true, &t);
    napi_set_named_property(env, o, "mtimeNow", t);
  }
  return o;
}

static void free_data(napi_env env, void *data, void *hint) {
  (void)env;
  free(hint ? hint : data);
}

// Hands r->data over to a Buffer (no second copy).
static napi_value take_buffer(napi_env env, struct ll_req *r) {
  napi_value out;
  if (r->datalen == 0) {
    napi_create_buffer(env, 0, NULL, &out);
    return out;
  }
  if (napi_create_external_buffer(env, r->datalen, r->data, free_data, r->base, &out) != napi_ok) {
    napi_create_buffer_copy(env, r->datalen, r->data, NULL, &out);
    free_payload(r);
  }
  r->data = r->base = NULL;
  return out;
}

static napi_value fh_or_null(napi_env env, struct ll_req *r) {
  if (r->has_fh) return num(env, (double)r->fh);
  napi_value n;
  napi_get_null(env, &n);
  return n;
}

static void remove_outstanding(struct ll_req *r) {
  pthread_mutex_lock(&lock);
  r->prev->next = r->next;
  r->next->prev = r->prev;
  r->prev = r->next = r;
  pthread_mutex_unlock(&lock);
}

// Finalizer of a request handle: the safety net for requests JS forgot to answer.
static void finalize_req(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct ll_req *r = data;
  if (r->state == PENDING) {
    remove_outstanding(r);
    r->state = DROPPED;
    if (!r->s->leaked_warned) {
      r->s->leaked_warned = 1;
      fprintf(stderr, "fuse-native/lowlevel: a request (op %d) was garbage collected without a reply; answered EIO\n", r->op);
    }
    fuse_reply_err(r->req, EIO);
  }
  free_payload(r);
  free(r);
}

static napi_value conn_obj(napi_env env, const struct fuse_conn_info *c) {
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "protoMajor", num(env, c->proto_major));
  napi_set_named_property(env, o, "protoMinor", num(env, c->proto_minor));
  napi_set_named_property(env, o, "capable", num(env, c->capable));
  napi_set_named_property(env, o, "want", num(env, c->want));
  napi_set_named_property(env, o, "maxWrite", num(env, c->max_write));
  napi_set_named_property(env, o, "maxRead", num(env, c->max_read));
  napi_set_named_property(env, o, "maxReadahead", num(env, c->max_readahead));
  napi_set_named_property(env, o, "maxBackground", num(env, c->max_background));
  napi_set_named_property(env, o, "congestionThreshold", num(env, c->congestion_threshold));
  napi_set_named_property(env, o, "timeGran", num(env, c->time_gran));
  return o;
}

// Calls the JS dispatcher as dispatch(op, handle, ...args) for a request, or
// dispatch(op, null, ...) for the other messages.
static void call_js(napi_env env, napi_value dispatch, void *context, void *data) {
  (void)context;
  struct ll_req *r = data;
  if (env == NULL) {  // the session's threadsafe function is being torn down
    // A request still PENDING belongs to close_requests; anything else is ours to free.
    if (r->op >= OP_COUNT || r->op == OP_INIT || r->op == OP_FORGET || r->state != PENDING) {
      free_payload(r);
      free(r);
    }
    return;
  }
  napi_value argv[10], undef;
  size_t argc = 2;
  napi_get_undefined(env, &undef);
  argv[0] = num(env, r->op);
  argv[1] = undef;

  if (r->op >= OP_COUNT || r->op == OP_INIT || r->op == OP_FORGET) {
    if (r->op == MSG_INTERRUPT) {
      argv[argc++] = num(env, (double)r->id);
    } else if (r->op == MSG_ENDED) {
      argv[argc++] = num(env, r->arg);
    } else if (r->op == OP_INIT) {
      argv[argc++] = conn_obj(env, &r->s->conn);
    } else {  // forgets: a flat array [ino, nlookup, ino, nlookup, ...]
      struct fuse_forget_data *list = (struct fuse_forget_data *)r->data;
      napi_value arr;
      napi_create_array_with_length(env, r->datalen * 2, &arr);
      for (size_t i = 0; i < r->datalen; i++) {
        napi_set_element(env, arr, i * 2, u64(env, list[i].ino));
        napi_set_element(env, arr, i * 2 + 1, u64(env, list[i].nlookup));
      }
      argv[argc++] = arr;
    }
    free_payload(r);
    free(r);
  } else {
    if (r->state != PENDING) {  // the session closed before JS saw it
      free_payload(r);
      free(r);
      return;
    }
    napi_create_external(env, r, finalize_req, NULL, &argv[1]);
    switch (r->op) {
      case OP_LOOKUP: case OP_UNLINK: case OP_RMDIR: case OP_REMOVEXATTR:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = str(env, r->name);
        break;
      case OP_GETATTR:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = fh_or_null(env, r);
        break;
      case OP_SETATTR:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = setattr_obj(env, &r->attr, r->arg);
        argv[argc++] = num(env, r->arg);
        argv[argc++] = fh_or_null(env, r);
        break;
      case OP_READLINK: case OP_STATFS:
        argv[argc++] = u64(env, r->ino);
        break;
      case OP_MKNOD:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = str(env, r->name);
        argv[argc++] = num(env, r->mode);
        argv[argc++] = num(env, (double)r->size);
        break;
      case OP_MKDIR:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = str(env, r->name);
        argv[argc++] = num(env, r->mode);
        break;
      case OP_SYMLINK:  // (target, parent, name)
        argv[argc++] = str(env, r->name);
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = str(env, r->name2);
        break;
      case OP_RENAME:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = str(env, r->name);
        argv[argc++] = u64(env, r->ino2);
        argv[argc++] = str(env, r->name2);
        argv[argc++] = num(env, r->flags);
        break;
      case OP_LINK:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = u64(env, r->ino2);
        argv[argc++] = str(env, r->name);
        break;
      case OP_OPEN: case OP_OPENDIR:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = num(env, r->flags);
        break;
      case OP_READ: case OP_READDIR: case OP_READDIRPLUS:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = num(env, (double)r->size);
        argv[argc++] = i64(env, r->off);
        argv[argc++] = fh_or_null(env, r);
        break;
      case OP_WRITE:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = take_buffer(env, r);
        argv[argc++] = i64(env, r->off);
        argv[argc++] = fh_or_null(env, r);
        argv[argc++] = num(env, r->flags);
        break;
      case OP_FLUSH:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = fh_or_null(env, r);
        napi_create_bigint_uint64(env, r->owner, &argv[argc++]);
        break;
      case OP_RELEASE:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = fh_or_null(env, r);
        argv[argc++] = num(env, r->flags);
        napi_create_bigint_uint64(env, r->owner, &argv[argc++]);
        napi_get_boolean(env, r->arg != 0, &argv[argc++]);
        break;
      case OP_RELEASEDIR:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = fh_or_null(env, r);
        break;
      case OP_FSYNC: case OP_FSYNCDIR:
        argv[argc++] = u64(env, r->ino);
        napi_get_boolean(env, r->arg != 0, &argv[argc++]);
        argv[argc++] = fh_or_null(env, r);
        break;
      case OP_SETXATTR:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = str(env, r->name);
        argv[argc++] = take_buffer(env, r);
        argv[argc++] = num(env, r->flags);
        break;
      case OP_GETXATTR:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = str(env, r->name);
        argv[argc++] = num(env, (double)r->size);
        break;
      case OP_LISTXATTR:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = num(env, (double)r->size);
        break;
      case OP_ACCESS:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = num(env, r->arg);
        break;
      case OP_CREATE:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = str(env, r->name);
        argv[argc++] = num(env, r->mode);
        argv[argc++] = num(env, r->flags);
        break;
      case OP_GETLK: case OP_SETLK:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = fh_or_null(env, r);
        argv[argc++] = lock_obj(env, &r->lk);
        napi_create_bigint_uint64(env, r->owner, &argv[argc++]);
        if (r->op == OP_SETLK) napi_get_boolean(env, r->arg != 0, &argv[argc++]);
        break;
      case OP_FLOCK:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = fh_or_null(env, r);
        argv[argc++] = num(env, r->arg);
        napi_create_bigint_uint64(env, r->owner, &argv[argc++]);
        break;
      case OP_FALLOCATE:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = num(env, r->arg);
        argv[argc++] = i64(env, r->off);
        argv[argc++] = i64(env, r->off2);
        argv[argc++] = fh_or_null(env, r);
        break;
      case OP_LSEEK:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = i64(env, r->off);
        argv[argc++] = num(env, r->arg);
        argv[argc++] = fh_or_null(env, r);
        break;
      case OP_COPY_FILE_RANGE:
        argv[argc++] = u64(env, r->ino);
        argv[argc++] = i64(env, r->off);
        argv[argc++] = num(env, (double)r->fh);
        argv[argc++] = u64(env, r->ino2);
        argv[argc++] = i64(env, r->off2);
        argv[argc++] = num(env, (double)r->fh2);
        argv[argc++] = u64(env, r->size);
        argv[argc++] = num(env, r->flags);
        break;
    }
  }
  if (napi_call_function(env, undef, dispatch, argc, argv, NULL) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

// ---------------------------------------------------------------- Node's thread: API

static struct ll_session *get_session(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "fuse-native/lowlevel: not a session handle");
    return NULL;
  }
  return p;
}

// mount(dispatch, mountpoint, args[], enabledOps (bigint bitmask), config) -> session handle
// config: { maxWrite, maxReadahead, wantSet, wantClear, noFileCapabilities }
static napi_value ll_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) THROW_TYPE("fuse-native/lowlevel: mount needs 5 arguments");

  char mnt[4096];
  size_t len;
  if (napi_get_value_string_utf8(env, argv[1], mnt, sizeof(mnt), &len) != napi_ok) THROW_TYPE("mountpoint must be a string");

  uint32_t nargs;
  CHECK(napi_get_array_length(env, argv[2], &nargs));
  char **args = calloc(nargs + 2, sizeof(char *));
  args[0] = strdup("fuse-native-lowlevel");
  for (uint32_t i = 0; i < nargs; i++) {
    napi_value a;
    napi_get_element(env, argv[2], i, &a);
    napi_get_value_string_utf8(env, a, NULL, 0, &len);
    args[i + 1] = malloc(len + 1);
    napi_get_value_string_utf8(env, a, args[i + 1], len + 1, &len);
  }

  uint64_t enabled;
  bool lossless;
  napi_get_value_bigint_uint64(env, argv[3], &enabled, &lossless);

  struct ll_session *s = calloc(1, sizeof(*s));
  s->outstanding.next = s->outstanding.prev = &s->outstanding;
  s->enabled = enabled;
  s->wake_fd = -1;
  uint64_t v = 0;
  if (prop_u64(env, argv[4], "maxWrite", &v)) s->max_write = v;
  v = 0;
  if (prop_u64(env, argv[4], "maxReadahead", &v)) s->max_readahead = v;
  v = 0;
  if (prop_u64(env, argv[4], "wantSet", &v)) s->want_set = v;
  v = 0;
  if (prop_u64(env, argv[4], "wantClear", &v)) s->want_clear = v;
  s->no_file_caps = prop_bool(env, argv[4], "noFileCapabilities");

  struct fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof(ops));
  ops.init = ll_init;
#define OPT(OPN, field, fn) if (enabled & (1ULL << OPN)) ops.field = fn
  OPT(OP_LOOKUP, lookup, ll_lookup);
  OPT(OP_FORGET, forget, ll_forget);
  OPT(OP_FORGET, forget_multi, ll_forget_multi);
  OPT(OP_GETATTR, getattr, ll_getattr);
  OPT(OP_SETATTR, setattr, ll_setattr);
  OPT(OP_READLINK, readlink, ll_readlink);
  OPT(OP_MKNOD, mknod, ll_mknod);
  OPT(OP_MKDIR, mkdir, ll_mkdir);
  OPT(OP_UNLINK, unlink, ll_unlink);
  OPT(OP_RMDIR, rmdir, ll_rmdir);
  OPT(OP_SYMLINK, symlink, ll_symlink);
  OPT(OP_RENAME, rename, ll_rename);
  OPT(OP_LINK, link, ll_link);
  OPT(OP_OPEN, open, ll_open);
  OPT(OP_READ, read, ll_read);
  OPT(OP_WRITE, write, ll_write);
  OPT(OP_FLUSH, flush, ll_flush);
  OPT(OP_RELEASE, release, ll_release);
  OPT(OP_FSYNC, fsync, ll_fsync);
  OPT(OP_OPENDIR, opendir, ll_opendir);
  OPT(OP_READDIR, readdir, ll_readdir);
  OPT(OP_RELEASEDIR, releasedir, ll_releasedir);
  OPT(OP_FSYNCDIR, fsyncdir, ll_fsyncdir);
  OPT(OP_STATFS, statfs, ll_statfs);
  OPT(OP_SETXATTR, setxattr, ll_setxattr);
  OPT(OP_GETXATTR, getxattr, ll_getxattr);
  OPT(OP_LISTXATTR, listxattr, ll_listxattr);
  OPT(OP_REMOVEXATTR, removexattr, ll_removexattr);
  OPT(OP_ACCESS, access, ll_access);
  OPT(OP_CREATE, create, ll_create);
  OPT(OP_GETLK, getlk, ll_getlk);
  OPT(OP_SETLK, setlk, ll_setlk);
  OPT(OP_FLOCK, flock, ll_flock);
  OPT(OP_FALLOCATE, fallocate, ll_fallocate);
  OPT(OP_READDIRPLUS, readdirplus, ll_readdirplus);
  OPT(OP_COPY_FILE_RANGE, copy_file_range, ll_copy_file_range);
  OPT(OP_LSEEK, lseek, ll_lseek);
#undef OPT

  struct fuse_args fargs = FUSE_ARGS_INIT((int)nargs + 1, args);
  const char *fail = NULL;
  s->se = fuse_session_new(&fargs, &ops, sizeof(ops), s);
  if (s->se == NULL) fail = "fuse_session_new failed (bad option? libfuse printed the reason on stderr)";
  else if (fuse_session_mount(s->se, mnt) != 0) fail = "fuse_session_mount failed (libfuse printed the reason on stderr)";
  for (uint32_t i = 0; i <= nargs; i++) free(args[i]);
  free(args);
  if (fail) {
    if (s->se) fuse_session_destroy(s->se);
    free(s);
    THROW(fail);
  }

  napi_value name;
  napi_create_string_utf8(env, "fuse-native-lowlevel", NAPI_AUTO_LENGTH, &name);
  s->wake_fd = eventfd(0, EFD_CLOEXEC);
  if (s->wake_fd < 0 ||
      napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &s->tsfn) != napi_ok) {
    if (s->wake_fd >= 0) close(s->wake_fd);
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    free(s);
    THROW("fuse-native/lowlevel: cannot create the request queue");
  }
  // The loop thread takes no signals: they are Node's to handle.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int started = pthread_create(&s->thread, NULL, loop_thread, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (started != 0) {
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    close(s->wake_fd);
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    free(s);
    THROW("fuse-native/lowlevel: cannot start the session thread");
  }
  s->thread_started = 1;

  napi_value out;
  CHECK(napi_create_external(env, s, NULL, NULL, &out));
  return out;
}

// stop(session): asks the loop thread to end; it then sends the ended message.
static napi_value ll_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct ll_session *s = get_session(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->se) {
    fuse_session_exit(s->se);
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof(one)) < 0) { /* the counter cannot overflow here */ }
  }
  return NULL;
}

// closeRequests(session): after the ended message. Joins the loop thread and answers EIO to
// every request JS still holds (later replies to them are ignored). Returns how many.
static napi_value ll_close_requests(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct ll_session *s = get_session(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->thread_started) {
    pthread_join(s->thread, NULL);
    s->thread_started = 0;
  }
  int n = 0;
  pthread_mutex_lock(&lock);
  while (s->outstanding.next != &s->outstanding) {
    struct ll_req *r = s->outstanding.next;
    r->prev->next = r->next;
    r->next->prev = r->prev;
    r->prev = r->next = r;
    r->state = DROPPED;
    fuse_reply_err(r->req, EIO);
    n++;
  }
  pthread_mutex_unlock(&lock);
  return num(env, n);
}

// destroy(session): unmounts (if still mounted) and frees the session. After closeRequests.
static napi_value ll_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct ll_session *s = get_session(env, argv[0]);
  if (s == NULL || s->se == NULL) return NULL;
  if (s->thread_started || s->outstanding.next != &s->outstanding) THROW("fuse-native/lowlevel: destroy before closeRequests");
  // Closes the device first (the connection is aborted: nothing can wait on us), then lazily
  // detaches the mount unless the kernel already did.
  fuse_session_unmount(s->se);
  fuse_session_destroy(s->se);
  s->se = NULL;
  close(s->wake_fd);
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  // The session struct stays allocated: request handles still alive in JS point at it.
  return NULL;
}

// ---------------------------------------------------------------- replies

// Finds the request of a handle. Returns 1 if it may be answered, 0 if its session is gone
// (the reply is to be ignored), -1 with an exception if it was already answered.
static int get_req(napi_env env, napi_value handle, struct ll_req **out) {
  void *p = NULL;
  if (napi_get_value_external(env, handle, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "fuse-native/lowlevel: not a request handle");
    return -1;
  }
  struct ll_req *r = p;
  *out = r;
  if (r->state == PENDING) return 1;
  if (r->state == DROPPED) {  // the first late reply is ignored; a second one is still a bug
    r->state = LATE;
    return 0;
  }
  napi_throw_error(env, "ERR_FUSE_ALREADY_REPLIED", "fuse-native/lowlevel: this request was already answered");
  return -1;
}

// Marks the request answered; the caller then calls exactly one fuse_reply_*.
static fuse_req_t take(struct ll_req *r) {
  remove_outstanding(r);
  r->state = REPLIED;
  return r->req;
}

static napi_value result(napi_env env, int sent, int res) {
  napi_value out;
  (void)res;  // a failed write to /dev/fuse means the caller went away (e.g. interrupted)
  napi_get_boolean(env, sent, &out);
  return out;
}

#define REPLY_PROLOGUE(n) \
  size_t argc = n; \
  napi_value argv[n]; \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
  if (argc < n) THROW_TYPE("fuse-native/lowlevel: missing reply argument"); \
  struct ll_req *r; \
  int ok = get_req(env, argv[0], &r); \
  if (ok < 0) return NULL;

static napi_value reply_err(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  int32_t err;
  if (napi_get_value_int32(env, argv[1], &err) != napi_ok) THROW_TYPE("fuse-native/lowlevel: errno must be a number");
  if (err < 0) err = -err;
  if (!ok) return result(env, 0, 0);
  if (r->op == OP_FORGET) return result(env, 0, 0);
  return result(env, 1, fuse_reply_err(take(r), err));
}

static napi_value reply_none(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(1);
  if (!ok) return result(env, 0, 0);
  fuse_reply_none(take(r));
  return result(env, 1, 0);
}

static napi_value reply_entry(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(4);
  double def[2];
  napi_get_value_double(env, argv[2], &def[0]);
  napi_get_value_double(env, argv[3], &def[1]);
  struct fuse_entry_param e;
  if (!js_to_entry(env, argv[1], &e, def)) return NULL;
  if (!ok) return result(env, 0, 0);
  return result(env, 1, fuse_reply_entry(take(r), &e));
}

static napi_value reply_create(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(5);
  double def[2];
  napi_get_value_double(env, argv[3], &def[0]);
  napi_get_value_double(env, argv[4], &def[1]);
  struct fuse_entry_param e;
  struct fuse_file_info fi;
  if (!js_to_entry(env, argv[1], &e, def) || !js_to_fi(env, argv[2], &fi)) return NULL;
  if (!ok) return result(env, 0, 0);
  fi.flags = r->flags;
  return result(env, 1, fuse_reply_create(take(r), &e, &fi));
}

static napi_value reply_attr(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  struct stat st;
  double timeout;
  if (!js_to_stat(env, argv[1], &st)) return NULL;
  if (napi_get_value_double(env, argv[2], &timeout) != napi_ok) THROW_TYPE("fuse-native/lowlevel: attr timeout must be a number");
  if (!ok) return result(env, 0, 0);
  return result(env, 1, fuse_reply_attr(take(r), &st, timeout));
}

static napi_value reply_readlink(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  char buf[PATH_MAX + 1];
  size_t len;
  if (napi_get_value_string_utf8(env, argv[1], buf, sizeof(buf), &len) != napi_ok) THROW_TYPE("fuse-native/lowlevel: link target must be a string");
  if (!ok) return result(env, 0, 0);
  if (len >= PATH_MAX) return result(env, 1, fuse_reply_err(take(r), ENAMETOOLONG));
  return result(env, 1, fuse_reply_readlink(take(r), buf));
}

static napi_value reply_open(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  struct fuse_file_info fi;
  if (!js_to_fi(env, argv[1], &fi)) return NULL;
  if (!ok) return result(env, 0, 0);
  fi.flags = r->flags;
  return result(env, 1, fuse_reply_open(take(r), &fi));
}

static napi_value reply_write(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  uint64_t n;
  if (!get_u64(env, argv[1], &n, "written count")) return NULL;
  if (!ok) return result(env, 0, 0);
  return result(env, 1, fuse_reply_write(take(r), n));
}

static napi_value reply_xattr(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  uint64_t n;
  if (!get_u64(env, argv[1], &n, "xattr size")) return NULL;
  if (!ok) return result(env, 0, 0);
  return result(env, 1, fuse_reply_xattr(take(r), n));
}

static napi_value reply_lseek(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  int64_t off;
  if (!get_i64(env, argv[1], &off, "offset")) return NULL;
  if (!ok) return result(env, 0, 0);
  return result(env, 1, fuse_reply_lseek(take(r), off));
}

// replyBuf(handle, buffer): a Buffer/TypedArray, or undefined/null for an empty answer.
static napi_value reply_buf(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  void *data = NULL;
  size_t len = 0;
  if (!is_nullish(env, argv[1])) {
    bool is_buf = false, is_ta = false;
    napi_is_buffer(env, argv[1], &is_buf);
    if (is_buf) {
      napi_get_buffer_info(env, argv[1], &data, &len);
    } else if (napi_is_typedarray(env, argv[1], &is_ta) == napi_ok && is_ta) {
      napi_typedarray_type t;
      size_t n, off;
      napi_value ab;
      napi_get_typedarray_info(env, argv[1], &t, &n, &data, &ab, &off);
      len = n * (t == napi_uint8_array || t == napi_int8_array || t == napi_uint8_clamped_array ? 1 : 0);
      if (len == 0 && n > 0) THROW_TYPE("fuse-native/lowlevel: replyBuf needs a Buffer or Uint8Array");
    } else {
      THROW_TYPE("fuse-native/lowlevel: replyBuf needs a Buffer or Uint8Array");
    }
  }
  if (!ok) return result(env, 0, 0);
  return result(env, 1, fuse_reply_buf(take(r), data, len));
}

static napi_value reply_statfs(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  struct statvfs st;
  memset(&st, 0, sizeof(st));
  uint64_t bsize = 4096, frsize = 0, blocks = 0, bfree = 0, bavail = 0, files = 0, ffree = 0, favail = 0, namemax = 255;
  napi_value o = argv[1];
  if (!prop_u64(env, o, "bsize", &bsize) || !prop_u64(env, o, "frsize", &frsize) ||
      !prop_u64(env, o, "blocks", &blocks) || !prop_u64(env, o, "bfree", &bfree) ||
      !prop_u64(env, o, "bavail", &bavail) || !prop_u64(env, o, "files", &files) ||
      !prop_u64(env, o, "ffree", &ffree) || !prop_u64(env, o, "favail", &favail) ||
      !prop_u64(env, o, "namemax", &namemax)) return NULL;
  st.f_bsize = bsize;
  st.f_frsize = frsize ? frsize : bsize;
  st.f_blocks = blocks;
  st.f_bfree = bfree;
  st.f_bavail = bavail;
  st.f_files = files;
  st.f_ffree = ffree;
  st.f_favail = favail;
  st.f_namemax = namemax;
  if (!ok) return result(env, 0, 0);
  return result(env, 1, fuse_reply_statfs(take(r), &st));
}

static napi_value reply_lock(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  struct flock lk;
  memset(&lk, 0, sizeof(lk));
  uint64_t type = F_UNLCK, whence = SEEK_SET, pid = 0;
  int64_t start = 0, llen = 0;
  napi_value v;
  if (!prop_u64(env, argv[1], "type", &type) || !prop_u64(env, argv[1], "whence", &whence) ||
      !prop_u64(env, argv[1], "pid", &pid)) return NULL;
  napi_get_named_property(env, argv[1], "start", &v);
  if (!is_nullish(env, v) && !get_i64(env, v, &start, "lock start")) return NULL;
  napi_get_named_property(env, argv[1], "len", &v);
  if (!is_nullish(env, v) && !get_i64(env, v, &llen, "lock len")) return NULL;
  lk.l_type = type;
  lk.l_whence = whence;
  lk.l_start = start;
  lk.l_len = llen;
  lk.l_pid = pid;
  if (!ok) return result(env, 0, 0);
  return result(env, 1, fuse_reply_lock(take(r), &lk));
}

// replyDir(handle, entries, entryTimeout, attrTimeout): packs entries into one reply of at most the
// requested size and returns how many fitted (the kernel asks again from the last `off`).
// readdir entries: { name, ino, mode, off }; readdirplus entries: { name, off, entry } where
// entry is an entry reply object (or null: no attributes, no lookup counted).
static napi_value reply_dir(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(4);
  double def[2];
  napi_get_value_double(env, argv[2], &def[0]);
  napi_get_value_double(env, argv[3], &def[1]);
  int plus = r->op == OP_READDIRPLUS;
  if (r->op != OP_READDIR && r->op != OP_READDIRPLUS) THROW_TYPE("fuse-native/lowlevel: replyDir answers readdir and readdirplus only");
  uint32_t n;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok) THROW_TYPE("fuse-native/lowlevel: entries must be an array");
  size_t cap = r->size, used = 0;
  char *buf = malloc(cap ? cap : 1);
  if (buf == NULL) THROW("fuse-native/lowlevel: out of memory");
  uint32_t i;
  char name[1024];
  for (i = 0; i < n; i++) {
    napi_value ent, v;
    size_t len;
    int64_t off = 0;
    napi_get_element(env, argv[1], i, &ent);
    if (napi_get_named_property(env, ent, "name", &v) != napi_ok ||
        napi_get_value_string_utf8(env, v, name, sizeof(name), &len) != napi_ok) {
      free(buf);
      THROW_TYPE("fuse-native/lowlevel: a directory entry needs a name");
    }
    napi_get_named_property(env, ent, "off", &v);
    if (!get_i64(env, v, &off, "entry off")) { free(buf); return NULL; }
    size_t need;
    if (plus) {
      struct fuse_entry_param e;
      memset(&e, 0, sizeof(e));
      napi_get_named_property(env, ent, "entry", &v);
      if (!is_nullish(env, v)) {
        if (!js_to_entry(env, v, &e, def)) { free(buf); return NULL; }
      } else {
        uint64_t ino = 0, mode = 0;
        if (!prop_u64(env, ent, "ino", &ino) || !prop_u64(env, ent, "mode", &mode)) { free(buf); return NULL; }
        e.attr.st_ino = ino;
        e.attr.st_mode = mode;
      }
      need = fuse_add_direntry_plus(r->req, buf + used, cap - used, name, &e, off);
    } else {
      struct stat st;
      uint64_t ino = 0, mode = 0;
      if (!prop_u64(env, ent, "ino", &ino) || !prop_u64(env, ent, "mode", &mode)) { free(buf); return NULL; }
      memset(&st, 0, sizeof(st));
      st.st_ino = ino;
      st.st_mode = mode;
      need = fuse_add_direntry(r->req, buf + used, cap - used, name, &st, off);
    }
    if (need > cap - used) break;
    used += need;
  }
  if (ok) fuse_reply_buf(take(r), buf, used);
  free(buf);
  return num(env, ok ? i : 0);
}

// ---------------------------------------------------------------- request info

static napi_value req_context(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o;
  void *p;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (napi_get_value_external(env, argv[0], &p) != napi_ok) THROW_TYPE("not a request handle");
  struct ll_req *r = p;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "uid", num(env, r->ctx.uid));
  napi_set_named_property(env, o, "gid", num(env, r->ctx.gid));
  napi_set_named_property(env, o, "pid", num(env, r->ctx.pid));
  napi_set_named_property(env, o, "umask", num(env, r->ctx.umask));
  return o;
}

// [id, interrupted, state]
static napi_value req_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o;
  void *p;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (napi_get_value_external(env, argv[0], &p) != napi_ok) THROW_TYPE("not a request handle");
  struct ll_req *r = p;
  pthread_mutex_lock(&lock);
  int interrupted = r->interrupted;
  pthread_mutex_unlock(&lock);
  napi_create_array_with_length(env, 3, &o);
  napi_set_element(env, o, 0, num(env, (double)r->id));
  napi_set_element(env, o, 1, num(env, interrupted));
  napi_set_element(env, o, 2, num(env, r->state));
  return o;
}

// requestCounts(session) -> [count per OP_*]: requests received since the mount.
static napi_value request_counts(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct ll_session *s = get_session(env, argv[0]);
  if (s == NULL) return NULL;
  napi_create_array_with_length(env, OP_COUNT, &out);
  for (int op = 0; op < OP_COUNT; op++) {
    napi_set_element(env, out, op, num(env, (double)__atomic_load_n(&s->received[op], __ATOMIC_RELAXED)));
  }
  return out;
}

static napi_value outstanding_count(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct ll_session *s = get_session(env, argv[0]);
  if (s == NULL) return NULL;
  int n = 0;
  pthread_mutex_lock(&lock);
  for (struct ll_req *r = s->outstanding.next; r != &s->outstanding; r = r->next) n++;
  pthread_mutex_unlock(&lock);
  return num(env, n);
}

// ---------------------------------------------------------------- notifications
// They run on libuv's thread pool: the kernel may hold an inode lock while it waits for a
// request that only Node's thread can answer, so a notification must never block that thread.

struct notify_work {
  napi_async_work work;
  napi_deferred deferred;
  struct ll_session *s;
  int kind;  // 0 inval_inode, 1 inval_entry, 2 delete
  uint64_t ino, child;
  int64_t off, len;
  char *name;
  int res;
};

static void notify_execute(napi_env env, void *data) {
  (void)env;
  struct notify_work *w = data;
  struct fuse_session *se = w->s->se;
  if (se == NULL) { w->res = -ENOTCONN; return; }
  if (w->kind == 0) w->res = fuse_lowlevel_notify_inval_inode(se, w->ino, w->off, w->len);
  else if (w->kind == 1) w->res = fuse_lowlevel_notify_inval_entry(se, w->ino, w->name, strlen(w->name));
  else w->res = fuse_lowlevel_notify_delete(se, w->ino, w->child, w->name, strlen(w->name));
}

static void notify_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  struct notify_work *w = data;
  napi_value v;
  if (w->res == 0 || w->res == -ENOENT) {  // ENOENT: the kernel had nothing cached
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, w->deferred, v);
  } else {
    char msg[128];
    napi_value m, code;
    snprintf(msg, sizeof(msg), "fuse-native/lowlevel: notification failed: %s", strerror(-w->res));
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
    napi_create_error(env, NULL, m, &v);
    napi_create_int32(env, -w->res, &code);
    napi_set_named_property(env, v, "errno", code);
    napi_reject_deferred(env, w->deferred, v);
  }
  napi_delete_async_work(env, w->work);
  free(w->name);
  free(w);
}

// notify(session, kind, ino, a, b, name) -> Promise
static napi_value ll_notify(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], promise, rname;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct ll_session *s = get_session(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->se == NULL) THROW("fuse-native/lowlevel: the session is not mounted");
  struct notify_work *w = calloc(1, sizeof(*w));
  int32_t kind;
  napi_get_value_int32(env, argv[1], &kind);
  w->s = s;
  w->kind = kind;
  if (!get_u64(env, argv[2], &w->ino, "ino")) { free(w); return NULL; }
  if (kind == 0) {
    if (!get_i64(env, argv[3], &w->off, "off") || !get_i64(env, argv[4], &w->len, "len")) { free(w); return NULL; }
  } else {
    size_t len;
    if (kind == 2 && !get_u64(env, argv[3], &w->child, "child")) { free(w); return NULL; }
    if (napi_get_value_string_utf8(env, argv[5], NULL, 0, &len) != napi_ok) { free(w); THROW_TYPE("name must be a string"); }
    w->name = malloc(len + 1);
    napi_get_value_string_utf8(env, argv[5], w->name, len + 1, &len);
  }
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, "fuse-native-lowlevel-notify", NAPI_AUTO_LENGTH, &rname);
  napi_create_async_work(env, NULL, rname, notify_execute, notify_complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

// ---------------------------------------------------------------- module

static napi_value init_module(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
#define FN(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_default, NULL }
    FN("mount", ll_mount),
    FN("stop", ll_stop),
    FN("closeRequests", ll_close_requests),
    FN("destroy", ll_destroy),
    FN("notify", ll_notify),
    FN("outstanding", outstanding_count),
    FN("requestCounts", request_counts),
    FN("context", req_context),
    FN("info", req_info),
    FN("replyErr", reply_err),
    FN("replyNone", reply_none),
    FN("replyEntry", reply_entry),
    FN("replyCreate", reply_create),
    FN("replyAttr", reply_attr),
    FN("replyReadlink", reply_readlink),
    FN("replyOpen", reply_open),
    FN("replyWrite", reply_write),
    FN("replyBuf", reply_buf),
    FN("replyStatfs", reply_statfs),
    FN("replyXattr", reply_xattr),
    FN("replyLock", reply_lock),
    FN("replyLseek", reply_lseek),
    FN("replyDir", reply_dir),
#undef FN
  };
  napi_define_properties(env, exports, sizeof(fns) / sizeof(fns[0]), fns);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)
