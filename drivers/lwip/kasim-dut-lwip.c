//go:build ignore

// (The line above keeps the go command, which refuses .c files in a
// package that does not use cgo, away from this file; lwip.go embeds it.)

/*
 * kasim-dut-lwip: kasim's DUT driver for lwIP (docs/dut-protocol.md).
 *
 * It puts lwIP (the system's liblwip, its unix port: tcpip thread, tapif)
 * on the TAP device kasim gives it, then turns each request line on stdin
 * into one lwip_* socket call and writes the reply on stdout. Calls that
 * block (connect's completion, accept, recv) run on a thread of their own
 * and are reported when they return.
 *
 * Every option and errno number here comes from the headers this file is
 * compiled against, the same ones liblwip was built with: Debian's build
 * uses glibc's <sys/socket.h>, <netinet/tcp.h> and <errno.h>, so kasim's
 * names are mapped with them and never with numbers of our own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lwip/opt.h"
#include "lwip/init.h"
#include "lwip/etharp.h"
#include "lwip/netif.h"
#include "lwip/sockets.h"
#include "lwip/tcpip.h"
#include "netif/tapif.h"

#define MAX_LINE (64 * 1024) /* the protocol's bound on a line */
#define MAX_IO (1 << 20)     /* largest send or recv we allocate for */

/* ---- output: one JSON object a line, whole lines only ---- */

static FILE *proto_out; /* the protocol's stdout: see main */
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A line being built; appends past the end are dropped, never overrun. */
struct jb {
  char b[2048];
  size_t n;
};

static void jb_raw(struct jb *j, const char *s) {
  while (*s && j->n < sizeof j->b - 1) j->b[j->n++] = *s++;
  j->b[j->n] = 0;
}

static void jb_fmt(struct jb *j, const char *fmt, long long v) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, fmt, v);
  jb_raw(j, tmp);
}

/* A JSON string. Bytes outside printable ASCII (they can only come from
 * echoing a bad request) become '?' so that the line stays valid JSON. */
static void jb_str(struct jb *j, const char *s) {
  jb_raw(j, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char e[8] = {(char)c, 0};
    if (c == '"' || c == '\\') snprintf(e, sizeof e, "\\%c", c);
    else if (c < 0x20 || c >= 0x7f) snprintf(e, sizeof e, "?");
    jb_raw(j, e);
  }
  jb_raw(j, "\"");
}

static void emit(struct jb *j) {
  pthread_mutex_lock(&out_mu);
  fputs(j->b, proto_out);
  fputc('\n', proto_out);
  if (fflush(proto_out) != 0) {
    /* kasim is gone: nobody is left to report to. */
    fprintf(stderr, "kasim-dut-lwip: writing stdout: %s\n", strerror(errno));
    _exit(1);
  }
  pthread_mutex_unlock(&out_mu);
}

/* The POSIX names kasim compares. Built from this build's own <errno.h>,
 * so number and name always agree with what lwIP sets. */
#define E(x) {x, #x}
static const struct { int num; const char *name; } errnames[] = {
    E(EPERM), E(ENOENT), E(EINTR), E(EIO), E(EBADF), E(EAGAIN), E(ENOMEM),
    E(EACCES), E(EFAULT), E(EBUSY), E(EEXIST), E(ENODEV), E(EINVAL), E(ENFILE),
    E(EMFILE), E(ENOSPC), E(EPIPE), E(ERANGE), E(ENOSYS), E(ENOTSOCK),
    E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE), E(ENOPROTOOPT),
    E(EPROTONOSUPPORT), E(EOPNOTSUPP), E(EAFNOSUPPORT), E(EADDRINUSE),
    E(EADDRNOTAVAIL), E(ENETDOWN), E(ENETUNREACH), E(ENETRESET),
    E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN),
    E(ESHUTDOWN), E(ETIMEDOUT), E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH),
    E(EALREADY), E(EINPROGRESS),
};

static const char *errno_name(int e) {
  for (size_t i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
    if (errnames[i].num == e) return errnames[i].name;
  return "EUNKNOWN";
}

/* A reply (event == NULL) or a report: ret, plus errno when err != 0. */
static void send_msg(long long id, const char *event, int fd, long long ret,
                     int err, const char *detail, int64_t t) {
  struct jb j = {.n = 0};
  jb_fmt(&j, "{\"id\":%lld", id);
  if (event) {
    jb_raw(&j, ",\"event\":");
    jb_str(&j, event);
    jb_fmt(&j, ",\"fd\":%lld", fd);
  }
  jb_fmt(&j, ",\"ret\":%lld", err ? -1 : ret);
  if (err) {
    jb_fmt(&j, ",\"errno\":%lld,\"errno_name\":", err);
    jb_str(&j, errno_name(err));
  }
  if (detail) {
    jb_raw(&j, ",\"detail\":");
    jb_str(&j, detail);
  }
  jb_fmt(&j, ",\"t\":%lld}", t);
  emit(&j);
}

static void reply(long long id, long long ret, int err, int64_t t) {
  send_msg(id, NULL, 0, ret, err, NULL, t);
}

static void fail(long long id, const char *why) {
  struct jb j = {.n = 0};
  jb_fmt(&j, "{\"id\":%lld,\"fail\":", id);
  jb_str(&j, why);
  jb_fmt(&j, ",\"t\":%lld}", now_ns());
  emit(&j);
}

/* ---- requests: flat JSON objects of strings and integers ---- */

struct req {
  long long id, fd, value, n;
  char op[32], level[32], opt[32], addr[64];
  bool has_id, has_fd, has_value, has_n, has_op, has_level, has_opt, has_addr;
};

struct parser {
  const char *start, *p, *end;
  char err[160];
};

static bool perr(struct parser *ps, const char *msg) {
  if (!ps->err[0]) snprintf(ps->err, sizeof ps->err, "%s at byte %ld", msg, (long)(ps->p - ps->start) + 1);
  return false;
}

static bool more(const struct parser *ps) { return ps->p < ps->end; }

static void skip_ws(struct parser *ps) {
  while (more(ps) && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n')) ps->p++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A string into out (cap bytes with the NUL), or skipped when out is NULL.
 * A string too long for out sets *toolong; that is not a JSON error, and
 * the caller refuses the request with a clearer message. */
static bool parse_string(struct parser *ps, char *out, size_t cap, bool *toolong) {
  size_t n = 0;
  if (!more(ps) || *ps->p != '"') return perr(ps, "want a string");
  ps->p++;
  for (;;) {
    if (!more(ps)) return perr(ps, "unterminated string");
    unsigned char c = (unsigned char)*ps->p++;
    char u = (char)c; /* bytes >= 0x80 (UTF-8) are kept as they are */
    if (c == '"') break;
    if (c < 0x20) return perr(ps, "control character in string");
    if (c == '\\') {
      if (!more(ps)) return perr(ps, "unterminated string");
      switch (*ps->p++) {
      case '"': u = '"'; break;
      case '\\': u = '\\'; break;
      case '/': u = '/'; break;
      case 'b': u = '\b'; break;
      case 'f': u = '\f'; break;
      case 'n': u = '\n'; break;
      case 'r': u = '\r'; break;
      case 't': u = '\t'; break;
      case 'u': {
        unsigned cp = 0;
        for (int i = 0; i < 4; i++) {
          int h = more(ps) ? hexval(*ps->p++) : -1;
          if (h < 0) return perr(ps, "bad \\u escape");
          cp = cp << 4 | (unsigned)h;
        }
        /* Every name we know is ASCII; NUL must stay out of C strings. */
        u = cp == 0 || cp >= 0x80 ? '?' : (char)cp;
        break;
      }
      default:
        return perr(ps, "bad escape in string");
      }
    }
    if (!out) continue;
    if (n + 1 >= cap) *toolong = true;
    else out[n++] = u;
  }
  if (out) out[n] = 0;
  return true;
}

static bool peek(const struct parser *ps, char c) { return more(ps) && *ps->p == c; }
static bool eat(struct parser *ps, char c) { return peek(ps, c) ? (ps->p++, true) : false; }
static bool digit(const struct parser *ps) { return more(ps) && *ps->p >= '0' && *ps->p <= '9'; }
static void digits(struct parser *ps) { while (digit(ps)) ps->p++; }

/* A JSON number; *integral says whether it is a whole number in int64. */
static bool parse_number(struct parser *ps, long long *v, bool *integral) {
  const char *s = ps->p;
  eat(ps, '-');
  if (!digit(ps)) return perr(ps, "bad number");
  if (eat(ps, '0') && digit(ps)) return perr(ps, "leading zero in number");
  digits(ps);
  *integral = true;
  if (eat(ps, '.')) {
    *integral = false;
    if (!digit(ps)) return perr(ps, "bad number");
    digits(ps);
  }
  if (eat(ps, 'e') || eat(ps, 'E')) {
    *integral = false;
    if (!eat(ps, '+')) eat(ps, '-');
    if (!digit(ps)) return perr(ps, "bad number");
    digits(ps);
  }
  if (*integral) {
    errno = 0;
    *v = strtoll(s, NULL, 10); /* stops where the grammar above stopped */
    if (errno == ERANGE) *integral = false;
  }
  return true;
}

static bool word(struct parser *ps, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(ps->end - ps->p) < n || strncmp(ps->p, w, n)) return false;
  ps->p += n;
  return true;
}

/* Any JSON value, thrown away: an unknown field may hold anything. */
static bool skip_value(struct parser *ps, int depth) {
  long long v;
  bool b;
  skip_ws(ps);
  if (depth > 32) return perr(ps, "nested too deeply");
  if (peek(ps, '"')) return parse_string(ps, NULL, 0, &b);
  if (peek(ps, '-') || digit(ps)) return parse_number(ps, &v, &b);
  if (word(ps, "true") || word(ps, "false") || word(ps, "null")) return true;
  bool object = peek(ps, '{');
  char close = object ? '}' : ']';
  if (!eat(ps, '{') && !eat(ps, '[')) return perr(ps, "want a value");
  skip_ws(ps);
  if (eat(ps, close)) return true;
  for (;;) {
    skip_ws(ps);
    if (object) {
      if (!parse_string(ps, NULL, 0, &b)) return false;
      skip_ws(ps);
      if (!eat(ps, ':')) return perr(ps, "want ':'");
    }
    if (!skip_value(ps, depth + 1)) return false;
    skip_ws(ps);
    if (eat(ps, close)) return true;
    if (!eat(ps, ',')) return perr(ps, object ? "want ',' or '}'" : "want ',' or ']'");
  }
}

/* Parses one request line. Returns false with ps->err set when the line
 * is not a JSON object. A known field of the wrong type (or too long) is
 * left unset and described in bad, the first such one only: the request
 * is then refused by its id. */
static bool parse_request(struct parser *ps, struct req *r, char *bad, size_t badcap) {
  static const struct { const char *name; size_t off, has; bool str; size_t cap; } fields[] = {
#define I(f) {#f, offsetof(struct req, f), offsetof(struct req, has_##f), false, 0}
#define S(f) {#f, offsetof(struct req, f), offsetof(struct req, has_##f), true, sizeof ((struct req *)0)->f}
      I(id), I(fd), I(value), I(n), S(op), S(level), S(opt), S(addr),
  };
  const size_t nf = sizeof fields / sizeof fields[0];
  memset(r, 0, sizeof *r);
  skip_ws(ps);
  if (!eat(ps, '{')) return perr(ps, "want a JSON object");
  skip_ws(ps);
  if (!eat(ps, '}')) for (;;) {
    char key[16];
    bool keylong = false, toolong = false, integral = false, ok = false;
    skip_ws(ps);
    if (!parse_string(ps, key, sizeof key, &keylong)) return false;
    skip_ws(ps);
    if (!eat(ps, ':')) return perr(ps, "want ':'");
    skip_ws(ps);
    size_t i = 0;
    while (i < nf && (keylong || strcmp(key, fields[i].name))) i++;
    if (i == nf) {
      if (!skip_value(ps, 1)) return false; /* unknown fields are ignored */
    } else {
      char *dst = (char *)r + fields[i].off;
      if (fields[i].str && peek(ps, '"')) {
        if (!parse_string(ps, dst, fields[i].cap, &toolong)) return false;
        ok = !toolong;
      } else if (!fields[i].str && (peek(ps, '-') || digit(ps))) {
        if (!parse_number(ps, (long long *)(void *)dst, &integral)) return false;
        ok = integral;
      } else if (!skip_value(ps, 1)) {
        return false;
      }
      *(bool *)((char *)r + fields[i].has) = ok;
      if (!ok && !bad[0])
        snprintf(bad, badcap, "field \"%s\": want %s", key,
                 !fields[i].str ? "an integer" : toolong ? "a shorter string" : "a string");
    }
    skip_ws(ps);
    if (eat(ps, '}')) break;
    if (!eat(ps, ',')) return perr(ps, "want ',' or '}'");
  }
  skip_ws(ps);
  if (more(ps)) return perr(ps, "text after the object");
  return true;
}

/* ---- the calls ---- */

/* kasim's level and option names, mapped with this build's own headers.
 * TCP_KEEPALIVE (lwIP's idle time in ms) is not glibc's: lwIP's
 * posix/sockets.h gives it a number of its own when the system has none. */
static const struct { const char *name; int num; } levels[] = {
    {"SOL_SOCKET", SOL_SOCKET}, {"IPPROTO_TCP", IPPROTO_TCP},
};
static const struct { const char *name; int level, num; } options[] = {
    {"SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE},
#ifdef TCP_KEEPALIVE
    {"TCP_KEEPALIVE", IPPROTO_TCP, TCP_KEEPALIVE},
#endif
    {"TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE},
    {"TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL},
    {"TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT},
#ifdef TCP_USER_TIMEOUT
    {"TCP_USER_TIMEOUT", IPPROTO_TCP, TCP_USER_TIMEOUT},
#endif
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* Level and option numbers for req's names, or false when this build has
 * no such name: then the reply is ENOPROTOOPT without a call. */
static bool lookup_opt(const struct req *r, int *level, int *opt) {
  size_t i, k, nl = sizeof levels / sizeof levels[0];
  for (i = 0; i < nl && strcmp(levels[i].name, r->level); i++) {}
  for (k = 0; k < NOPTIONS && strcmp(options[k].name, r->opt); k++) {}
  if (i == nl || k == NOPTIONS) return false;
  *level = levels[i].num;
  *opt = options[k].num;
  return true;
}

/* "a.b.c.d:port" */
static bool parse_sockaddr(const char *s, struct sockaddr_in *sa) {
  char ip[32];
  const char *colon = strrchr(s, ':');
  char *end;
  if (!colon || (size_t)(colon - s) >= sizeof ip || colon[1] < '0' || colon[1] > '9') return false;
  memcpy(ip, s, (size_t)(colon - s));
  ip[colon - s] = 0;
  long port = strtol(colon + 1, &end, 10);
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  return *end == 0 && port >= 0 && port <= 65535 && inet_pton(AF_INET, ip, &sa->sin_addr) == 1;
}

/* A blocking call on a thread of its own. Two semaphores order it with
 * the main thread: the call starts before the main thread reads the next
 * request (so that a close or a new socket cannot overtake it), and the
 * report goes after the request's reply.
 *
 * The thread waits in lwip_poll, never in a blocking lwip_recv or
 * lwip_accept: lwIP 2.1 (without LWIP_NETCONN_FULLDUPLEX) frees a socket's
 * mailbox on close under a thread blocked in it, and the close hangs. A
 * close wakes a poller instead, whose call then fails at once. */
enum jobkind { JOB_CONNECT, JOB_ACCEPT, JOB_RECV };
struct job {
  enum jobkind kind;
  long long id;
  int fd;
  size_t n;
  sem_t started, replied;
};

/* Jobs running per socket: close waits for them, because lwIP asserts that
 * no poller still counts on a socket when it reuses the slot. */
#define MAX_FD 1024
static int jobs[MAX_FD];
static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_done = PTHREAD_COND_INITIALIZER;

static void count_job(int fd, int delta) {
  if (fd >= MAX_FD) return;
  pthread_mutex_lock(&jobs_mu);
  jobs[fd] += delta;
  pthread_cond_broadcast(&jobs_done);
  pthread_mutex_unlock(&jobs_mu);
}

/* Waits up to 2 s for the jobs on fd to end. */
static void wait_jobs(int fd) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 2;
  pthread_mutex_lock(&jobs_mu);
  while (fd < MAX_FD && jobs[fd] > 0 && pthread_cond_timedwait(&jobs_done, &jobs_mu, &until) == 0) {}
  pthread_mutex_unlock(&jobs_mu);
}

/* Waits for events on fd; 0, or an errno. */
static int wait_for(int fd, short events) {
  struct pollfd p = {.fd = fd, .events = events};
  errno = 0;
  int r = lwip_poll(&p, 1, -1);
  if (p.revents & POLLNVAL) return EBADF; /* closed while we waited */
  return r < 0 ? (errno ? errno : EBADF) : 0;
}

static void *run_job(void *arg) {
  struct job *j = arg;
  long long ret = -1;
  int err = 0;
  const char *event = j->kind == JOB_CONNECT ? "connect" : j->kind == JOB_ACCEPT ? "accept" : "recv";
  char detail[32] = "";
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  char *buf = j->kind == JOB_RECV ? malloc(j->n ? j->n : 1) : NULL;

  lwip_socket_thread_init(); /* a no-op unless LWIP_NETCONN_SEM_PER_THREAD */
  memset(&sa, 0, sizeof sa);
  sem_post(&j->started);
  switch (j->kind) {
  case JOB_CONNECT:
    /* Started non-blocking: writable (or in error) when it has ended, and
     * SO_ERROR says how. Then blocking again, as the socket was. */
    len = sizeof err;
    if (!(err = wait_for(j->fd, POLLOUT)) && lwip_getsockopt(j->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    ret = err ? -1 : 0;
    break;
  case JOB_ACCEPT: /* a listener is non-blocking: see listen */
  case JOB_RECV:
    /* The call first, so that its own errors (not listening, not
     * connected) come at once; the poll only when it would block. */
    for (;;) {
      if (j->kind == JOB_ACCEPT) ret = lwip_accept(j->fd, (struct sockaddr *)&sa, &len);
      else ret = buf ? lwip_recv(j->fd, buf, j->n, MSG_DONTWAIT) : (errno = ENOMEM, -1);
      if (ret >= 0 || (err = errno) != EAGAIN || (err = wait_for(j->fd, POLLIN)) != 0) break;
    }
    break;
  }
  if (ret >= 0) err = 0;
  int64_t t = now_ns();

  if (j->kind == JOB_CONNECT) {
    int fl = lwip_fcntl(j->fd, F_GETFL, 0);
    if (fl >= 0) lwip_fcntl(j->fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  if (j->kind == JOB_ACCEPT && ret >= 0 && sa.sin_family == AF_INET) {
    inet_ntop(AF_INET, &sa.sin_addr, detail, sizeof detail);
    snprintf(detail + strlen(detail), sizeof detail - strlen(detail), ":%u", ntohs(sa.sin_port));
  }
  free(buf);
  while (sem_wait(&j->replied) < 0) {}
  send_msg(j->id, event, j->fd, ret, err, detail[0] ? detail : NULL, t);
  count_job(j->fd, -1);
  sem_destroy(&j->started);
  sem_destroy(&j->replied);
  free(j);
  return NULL;
}

/* Starts the call's thread, then replies (ret, err, t; t 0 for now). */
static void start_job(const struct req *r, enum jobkind kind, long long ret, int err, int64_t t) {
  struct job *j = malloc(sizeof *j);
  pthread_t th;
  pthread_attr_t at;
  if (!j) {
    fail(r->id, "out of memory");
    return;
  }
  *j = (struct job){.kind = kind, .id = r->id, .fd = (int)r->fd, .n = (size_t)r->n};
  sem_init(&j->started, 0, 0);
  sem_init(&j->replied, 0, 0);
  count_job(j->fd, 1);
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  int e = pthread_create(&th, &at, run_job, j);
  pthread_attr_destroy(&at);
  if (e != 0) {
    count_job(j->fd, -1);
    free(j);
    fail(r->id, "cannot start a thread");
    return;
  }
  while (sem_wait(&j->started) < 0) {}
  reply(r->id, ret, err, t ? t : now_ns());
  sem_post(&j->replied); /* j is the thread's from here on */
}

/* Why r cannot be carried out at all (written into why), or NULL. */
static const char *refusal(const struct req *r, char *why, size_t cap) {
  /* Each op's fields: f fd, l level, o opt, v value, a addr, n n. */
  static const struct { const char *op, *need; } ops[] = {
      {"socket", ""}, {"setsockopt", "flov"}, {"getsockopt", "flo"},
      {"bind", "fa"}, {"listen", "fn"}, {"connect", "fa"}, {"accept", "f"},
      {"send", "fn"}, {"recv", "fn"}, {"shutdown", "fn"}, {"close", "f"},
  };
  size_t k;
  for (k = 0; k < sizeof ops / sizeof ops[0] && strcmp(ops[k].op, r->op); k++) {}
  if (k == sizeof ops / sizeof ops[0]) {
    snprintf(why, cap, "unknown op \"%.40s\"", r->op);
    return why;
  }
  for (const char *c = ops[k].need; *c; c++) {
    bool has = *c == 'f' ? r->has_fd : *c == 'l' ? r->has_level : *c == 'o' ? r->has_opt
             : *c == 'v' ? r->has_value : *c == 'a' ? r->has_addr : r->has_n;
    if (!has) {
      snprintf(why, cap, "op %s needs field \"%s\"", r->op,
               *c == 'f' ? "fd" : *c == 'l' ? "level" : *c == 'o' ? "opt"
               : *c == 'v' ? "value" : *c == 'a' ? "addr" : "n");
      return why;
    }
  }
  if (r->has_fd && (r->fd < 0 || r->fd > INT_MAX)) return "fd out of range";
  if (r->has_value && (r->value < INT_MIN || r->value > INT_MAX)) return "value does not fit an int";
  if (r->has_n && (r->n < 0 || r->n > MAX_IO)) return "n out of range (0 to 1048576)";
  if (!strcmp(r->op, "shutdown") && r->n > 2) return "shutdown: n must be 0, 1 or 2";
  return NULL;
}

/* Carries out one request and writes its reply; for connect, accept and
 * recv it starts the thread that writes the report. */
static void do_request(const struct req *r) {
  char why[128];
  const char *op = r->op, *refused = refusal(r, why, sizeof why);
  int fd = (int)r->fd, level, opt, v = (int)r->value, err = 0;
  long long ret = 0;
  struct sockaddr_in sa;
  socklen_t len = sizeof v;

  if (!refused && (!strcmp(op, "bind") || !strcmp(op, "connect")) && !parse_sockaddr(r->addr, &sa)) {
    snprintf(why, sizeof why, "addr \"%.40s\": want \"ip:port\" (IPv4)", r->addr);
    refused = why;
  }
  if (refused) {
    fail(r->id, refused);
    return;
  }

  /* ret < 0 means failed, with errno, except for getsockopt, whose
   * value may be negative. */
  if (!strcmp(op, "socket")) {
    if ((ret = lwip_socket(AF_INET, SOCK_STREAM, 0)) < 0) err = errno;
  } else if (!strcmp(op, "setsockopt") || !strcmp(op, "getsockopt")) {
    if (!lookup_opt(r, &level, &opt)) err = ENOPROTOOPT; /* a name this build lacks: no call */
    else if (op[0] == 's' && lwip_setsockopt(fd, level, opt, &v, sizeof v) < 0) err = errno;
    else if (op[0] == 'g' && lwip_getsockopt(fd, level, opt, &v, &len) < 0) err = errno;
    else ret = op[0] == 's' ? 0 : v;
  } else if (!strcmp(op, "bind")) {
    if ((ret = lwip_bind(fd, (struct sockaddr *)&sa, sizeof sa)) < 0) err = errno;
  } else if (!strcmp(op, "listen")) {
    /* Non-blocking from now on, so that an accept after the poll can
     * never block (kasim never asks for the listener's flags). */
    int fl = lwip_fcntl(fd, F_GETFL, 0);
    if ((ret = lwip_listen(fd, (int)r->n)) < 0) err = errno;
    else if (fl >= 0) lwip_fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  } else if (!strcmp(op, "connect")) {
    /* Non-blocking, so that the reply goes at once; run_job waits for the end. */
    int fl = lwip_fcntl(fd, F_GETFL, 0);
    if (fl < 0 || lwip_fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
      err = errno;
    } else {
      if ((ret = lwip_connect(fd, (struct sockaddr *)&sa, sizeof sa)) < 0) err = errno;
      if (err == EINPROGRESS) {
        start_job(r, JOB_CONNECT, -1, err, now_ns());
        return;
      }
      lwip_fcntl(fd, F_SETFL, fl); /* done at once, or failed: blocking again */
    }
  } else if (!strcmp(op, "recv") || !strcmp(op, "accept")) {
    start_job(r, op[0] == 'r' ? JOB_RECV : JOB_ACCEPT, 0, 0, 0);
    return;
  } else if (!strcmp(op, "send")) {
    static const char zeros[MAX_IO];
    if ((ret = lwip_send(fd, zeros, (size_t)r->n, MSG_DONTWAIT)) < 0) err = errno;
  } else if (!strcmp(op, "shutdown")) {
    if ((ret = lwip_shutdown(fd, r->n == 0 ? SHUT_RD : r->n == 1 ? SHUT_WR : SHUT_RDWR)) < 0) err = errno;
  } else { /* close */
    if ((ret = lwip_close(fd)) < 0) err = errno;
    int64_t t = now_ns();
    wait_jobs(fd); /* their reports (the close woke them) come first */
    reply(r->id, ret, err, t);
    return;
  }
  reply(r->id, ret, err, now_ns());
}

/* ---- start-up ---- */

static void usage_exit(const char *var, const char *val, const char *want) {
  fprintf(stderr, "kasim-dut-lwip: %s=%s: want %s (this program is run by kasim conform --dut; see docs/dut-protocol.md)\n",
          var, val ? val : "(unset)", want);
  exit(2);
}

static const char *need_env(const char *var, const char *want) {
  const char *v = getenv(var);
  if (!v || !*v) usage_exit(var, v, want);
  return v;
}

static void parse_mac(const char *var, u8_t mac[6]) {
  const char *v = need_env(var, "a MAC address such as 02:00:0a:63:00:02");
  unsigned m[6];
  char extra;
  if (sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &extra) != 6 || strlen(v) != 17)
    usage_exit(var, v, "a MAC address such as 02:00:0a:63:00:02");
  for (int i = 0; i < 6; i++) mac[i] = (u8_t)m[i];
}

static void parse_ip4(const char *var, const char *v, ip4_addr_t *a) {
  struct in_addr in;
  if (inet_pton(AF_INET, v, &in) != 1) usage_exit(var, v, "an IPv4 address");
  ip4_addr_set_u32(a, in.s_addr);
}

static sem_t tcpip_ready;
static void on_tcpip_ready(void *arg) {
  (void)arg;
  sem_post(&tcpip_ready);
}

int main(void) {
  static struct netif nif;
  ip4_addr_t addr, mask, gw, tester;
  u8_t mac[6], tester_mac[6];
  char ipbuf[32], extra;
  int prefix;

  const char *proto = getenv("KASIM_DUT_PROTOCOL");
  if (proto && strcmp(proto, "1")) usage_exit("KASIM_DUT_PROTOCOL", proto, "1, the only protocol this driver speaks");
  const char *ifname = need_env("KASIM_DUT_IF", "the name of a TAP device");
  if (strlen(ifname) >= IFNAMSIZ) usage_exit("KASIM_DUT_IF", ifname, "a TAP device's name");
  /* TUNSETIFF would make a new, unconnected TAP device under a name that
   * does not exist yet: refuse instead. */
  if (if_nametoindex(ifname) == 0) usage_exit("KASIM_DUT_IF", ifname, "an existing TAP device in this network namespace");
  const char *a = need_env("KASIM_DUT_ADDR", "an IPv4 address and prefix such as 10.99.0.2/24");
  if (sscanf(a, "%31[0-9.]/%d%c", ipbuf, &prefix, &extra) != 2 || prefix < 1 || prefix > 30)
    usage_exit("KASIM_DUT_ADDR", a, "an IPv4 address and prefix such as 10.99.0.2/24");
  parse_ip4("KASIM_DUT_ADDR", ipbuf, &addr);
  ip4_addr_set_u32(&mask, htonl(0xffffffffu << (32 - prefix)));
  ip4_addr_set_zero(&gw); /* the tester is on the link: no router */
  parse_mac("KASIM_DUT_MAC", mac);
  parse_ip4("KASIM_TESTER_ADDR", need_env("KASIM_TESTER_ADDR", "an IPv4 address"), &tester);
  parse_mac("KASIM_TESTER_MAC", tester_mac);

  /* Our protocol gets a private copy of stdout; fd 1 becomes stderr, so a
   * printf inside liblwip (its assertions and diagnostics print to stdout)
   * lands in kasim's quoted stderr instead of corrupting the protocol. */
  int pfd = dup(STDOUT_FILENO);
  if (pfd < 0 || !(proto_out = fdopen(pfd, "w")) || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    perror("kasim-dut-lwip: stdout");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN); /* a closed pipe is an error from fflush, not a silent death */

  /* The unix port's tapif attaches to the device PRECONFIGURED_TAPIF names
   * and, only when it is unset, runs /sbin/ifconfig on tap0. */
  setenv("PRECONFIGURED_TAPIF", ifname, 1);
  sem_init(&tcpip_ready, 0, 0);
  tcpip_init(on_tcpip_ready, NULL);
  while (sem_wait(&tcpip_ready) < 0 && errno == EINTR) {}

  /* The build has LWIP_TCPIP_CORE_LOCKING and checks for the lock. */
  LOCK_TCPIP_CORE();
  /* tapif_init opens the device, sets a fixed MAC (02:12:34:56:78:ab),
   * sets the link up and starts its own reader thread. */
  if (!netif_add(&nif, &addr, &mask, &gw, NULL, tapif_init, tcpip_input)) {
    UNLOCK_TCPIP_CORE();
    fprintf(stderr, "kasim-dut-lwip: netif_add on %s failed\n", ifname);
    return 1;
  }
  /* The MAC kasim's tester expects, before netif_set_up sends its
   * gratuitous ARP with whatever hwaddr holds. */
  memcpy(nif.hwaddr, mac, 6);
  nif.hwaddr_len = 6;
  netif_set_default(&nif);
  netif_set_up(&nif);
  netif_set_link_up(&nif);
#if ETHARP_SUPPORT_STATIC_ENTRIES
  {
    struct eth_addr ea;
    memcpy(ea.addr, tester_mac, 6);
    etharp_add_static_entry(&tester, &ea);
  }
#else
  (void)tester; /* no static entries in this build: lwIP ARPs, the tester answers */
  (void)tester_mac;
#endif
  UNLOCK_TCPIP_CORE();

  /* The options this build accepts: those getsockopt knows on a TCP socket. */
  struct jb j = {.n = 0};
  jb_raw(&j, "{\"event\":\"hello\",\"protocol\":1,\"stack\":\"lwIP\",\"version\":");
#ifdef UNIX_LWIP_LWIPOPTS_H /* the guard of Debian's (GNU Hurd's) lwipopts.h */
  jb_str(&j, LWIP_VERSION_STRING " (Debian liblwip-dev, unix port, tapif)");
#else
  jb_str(&j, LWIP_VERSION_STRING " (system liblwip, unix port, tapif)");
#endif
  jb_raw(&j, ",\"api\":\"posix\",\"options\":[");
  int s = lwip_socket(AF_INET, SOCK_STREAM, 0), listed = 0;
  for (size_t k = 0; k < NOPTIONS; k++) {
    int v;
    socklen_t len = sizeof v;
    if (s >= 0 && lwip_getsockopt(s, options[k].level, options[k].num, &v, &len) == 0) {
      jb_raw(&j, listed++ ? "," : "");
      jb_str(&j, options[k].name);
    }
  }
  if (s >= 0) lwip_close(s);
  jb_fmt(&j, "],\"ret\":%lld", getpid());
  jb_fmt(&j, ",\"t\":%lld}", now_ns());
  emit(&j);

  /* Requests, one a line, until kasim closes stdin. */
  static char line[MAX_LINE + 1];
  long lineno = 0;
  for (;;) {
    size_t n = 0;
    bool toolong = false;
    int c;
    while ((c = getchar_unlocked()) != EOF && c != '\n') {
      if (n < MAX_LINE) line[n++] = (char)c;
      else toolong = true;
    }
    if (c == EOF && n == 0) break;
    lineno++;
    line[n] = 0;
    char why[256], bad[96] = "";
    if (toolong) {
      snprintf(why, sizeof why, "line %ld: longer than %d bytes", lineno, MAX_LINE);
      fail(0, why);
      continue;
    }
    if (strspn(line, " \t\r") == n) continue; /* blank */
    struct parser ps = {.start = line, .p = line, .end = line + n, .err = ""};
    struct req r;
    if (memchr(line, 0, n)) {
      snprintf(why, sizeof why, "line %ld: not JSON: NUL byte", lineno);
      fail(0, why);
    } else if (!parse_request(&ps, &r, bad, sizeof bad)) {
      snprintf(why, sizeof why, "line %ld: not JSON: %s", lineno, ps.err);
      fail(0, why);
    } else if (!r.has_id) {
      snprintf(why, sizeof why, "line %ld: %s", lineno, bad[0] ? bad : "no \"id\"");
      fail(0, why);
    } else if (bad[0] || !r.has_op) {
      fail(r.id, bad[0] ? bad : "no \"op\"");
    } else {
      do_request(&r);
    }
  }
  /* EOF: the scenario is over. Threads may still be blocked in lwIP; leave
   * without running exit handlers under them. */
  pthread_mutex_lock(&out_mu);
  fflush(proto_out);
  _exit(0);
}
