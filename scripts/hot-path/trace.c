// Records the functions a command and every process it forks run, in the order they
// first run, for scripts/hot-path.sh: a breakpoint (int3) at the entry of every
// function of each traced binary; a hit is written down and the byte put back.
//   trace OUT FUNCDIR MATCH CMD [ARG]...
// FUNCDIR/<name>.funcs lists "ADDR BYTE ..." (hex: a function's entry and its first
// byte; the rest of the line is not read) for each binary <name>, sorted by ADDR. A process that runs a binary whose path lacks MATCH, or
// that has no .funcs file, gets no breakpoints. Output lines:
//   X PID NAME    PID runs binary NAME (at the start, after an execve, at a fork)
//   ADDR PID      PID entered the function at ADDR
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXBIN 8
#define MAXPID 4194304

struct bin {
  char *name;
  unsigned long *addr;
  unsigned char *byte;
  size_t n;
};
static struct bin bins[MAXBIN];
static int nbins;
static signed char binof[MAXPID];  // pid -> index into bins, -1 untracked
// A new tracee may stop before its parent's fork event says what it runs: it waits
// (it has the parent's breakpoints, and a hit without a binary would kill it).
static unsigned char known[MAXPID], waiting[MAXPID];
static const char *funcdir;
static FILE *out;

static int load_bin(const char *name) {
  for (int i = 0; i < nbins; i++)
    if (!strcmp(bins[i].name, name)) return i;
  if (nbins == MAXBIN) return -1;
  char path[8192];
  snprintf(path, sizeof path, "%s/%s.funcs", funcdir, name);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  struct bin *b = &bins[nbins];
  size_t cap = 1024;
  b->addr = malloc(cap * sizeof *b->addr);
  b->byte = malloc(cap);
  unsigned long a;
  unsigned int v;
  char line[8192];
  while (fgets(line, sizeof line, f) && sscanf(line, "%lx %x", &a, &v) == 2) {
    if (b->n == cap) {
      cap *= 2;
      b->addr = realloc(b->addr, cap * sizeof *b->addr);
      b->byte = realloc(b->byte, cap);
    }
    b->addr[b->n] = a;
    b->byte[b->n++] = v;
  }
  fclose(f);
  b->name = strdup(name);
  return nbins++;
}

// The binary process p runs, by the file name of /proc/p/exe (a sealed copy shows as
// "memfd:NAME (deleted)"), or -1.
static int bin_of(pid_t p, const char *match) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/exe", p);
  ssize_t n = readlink(path, buf, sizeof buf - 1);
  if (n < 0) return -1;
  buf[n] = 0;
  if (!strstr(buf, match)) return -1;
  char *base = strrchr(buf, '/');
  base = base ? base + 1 : buf;
  if (!strncmp(base, "memfd:", 6)) base += 6;
  char *sp = strchr(base, ' ');
  if (sp) *sp = 0;
  return load_bin(base);
}

static int set_byte(pid_t p, unsigned long a, unsigned char v) {
  errno = 0;
  long w = ptrace(PTRACE_PEEKTEXT, p, a, 0);
  if (errno) return -1;
  w = (w & ~0xffL) | v;
  return ptrace(PTRACE_POKETEXT, p, a, w);
}

static void arm(pid_t p, int b) {
  for (size_t i = 0; i < bins[b].n; i++) set_byte(p, bins[b].addr[i], 0xcc);
}

static int find(int b, unsigned long a) {
  size_t lo = 0, hi = bins[b].n;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if (bins[b].addr[m] < a) lo = m + 1;
    else hi = m;
  }
  return lo < bins[b].n && bins[b].addr[lo] == a ? (int)lo : -1;
}

static void enter(pid_t p, int b) {
  binof[p] = b;
  known[p] = 1;
  if (b >= 0) fprintf(out, "X %d %s\n", p, bins[b].name);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: trace OUT FUNCDIR MATCH CMD [ARG]...\n");
    return 2;
  }
  out = fopen(argv[1], "w");
  if (!out) { perror(argv[1]); return 2; }
  funcdir = argv[2];
  const char *match = argv[3];
  memset(binof, -1, sizeof binof);
  pid_t c = fork();
  if (c == 0) {
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    execvp(argv[4], argv + 4);
    _exit(127);
  }
  int st;
  waitpid(c, &st, __WALL);
  long opts = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
              PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
  ptrace(PTRACE_SETOPTIONS, c, 0, opts);
  enter(c, bin_of(c, match));
  if (binof[c] >= 0) arm(c, binof[c]);
  ptrace(PTRACE_CONT, c, 0, 0);
  long hits = 0;
  int rc = 0;
  for (;;) {
    pid_t p = waitpid(-1, &st, __WALL);
    if (p < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      if (p == c) rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      if (p < MAXPID) binof[p] = -1, known[p] = 0;
      continue;
    }
    if (!WIFSTOPPED(st)) continue;
    int sig = WSTOPSIG(st), ev = st >> 16, deliver = 0;
    if (sig == SIGTRAP && ev == PTRACE_EVENT_EXEC) {
      // Another binary runs on without breakpoints, still followed: what it forks
      // and execs may be ours again (nsenter, sh -c).
      enter(p, bin_of(p, match));
      if (binof[p] >= 0) arm(p, binof[p]);
    } else if (sig == SIGTRAP && (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK ||
                                  ev == PTRACE_EVENT_CLONE)) {
      // The child has the parent's memory, breakpoints included.
      unsigned long child;
      if (ptrace(PTRACE_GETEVENTMSG, p, 0, &child) == 0 && child < MAXPID) {
        enter(child, binof[p]);
        if (waiting[child]) {
          waiting[child] = 0;
          ptrace(PTRACE_CONT, child, 0, 0);
        }
      }
    } else if (sig == SIGTRAP && ev == 0) {
      struct user_regs_struct r;
      int b = binof[p], i;
      if (b >= 0 && ptrace(PTRACE_GETREGS, p, 0, &r) == 0 &&
          (i = find(b, r.rip - 1)) >= 0) {
        hits++;
        fprintf(out, "%lx %d\n", bins[b].addr[i], p);
        set_byte(p, bins[b].addr[i], bins[b].byte[i]);
        r.rip -= 1;
        ptrace(PTRACE_SETREGS, p, 0, &r);
      } else {
        deliver = sig;
      }
    } else if (sig == SIGSTOP && ev == 0 && !known[p]) {
      waiting[p] = 1;
      continue;
    } else if (sig == SIGSTOP && ev == 0) {
      // A new tracee's first stop.
    } else if (ev != 0) {
      // Other ptrace events.
    } else {
      deliver = sig;
    }
    ptrace(PTRACE_CONT, p, 0, deliver);
  }
  fprintf(stderr, "trace: %ld function entries, exit %d\n", hits, rc);
  fclose(out);
  return rc;
}
