/* Test-only helper for tests/difftest.rs: compiles a profile with libseccomp and
 * exports the BPF, or resolves syscall names. Built by the test with gcc -lseccomp.
 *
 *   helper bpf IN OUT   IN: "default ACT" / "arch TOKEN" / "optimize N" /
 *                       "rule ACT NAME N [ARG OP A B]..." lines; OUT gets the raw BPF.
 *                       Exit 3 when libseccomp refuses a rule (line printed on stderr).
 *   helper resolve TOKEN  names on stdin, "name number" on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char name[128];
	if (argc == 3 && strcmp(argv[1], "resolve") == 0) {
		uint32_t arch = strtoul(argv[2], NULL, 0);
		while (scanf("%127s", name) == 1)
			printf("%s %d\n", name, seccomp_syscall_resolve_name_arch(arch, name));
		return 0;
	}
	if (argc != 4 || strcmp(argv[1], "bpf") != 0)
		return 64;
	FILE *in = fopen(argv[2], "r");
	if (in == NULL)
		return 65;
	char kw[32];
	scmp_filter_ctx ctx = NULL;
	while (fscanf(in, "%31s", kw) == 1) {
		if (strcmp(kw, "default") == 0) {
			unsigned long act;
			if (fscanf(in, "%lu", &act) != 1)
				return 66;
			ctx = seccomp_init((uint32_t)act);
			if (ctx == NULL) {
				fprintf(stderr, "init %lu refused\n", act);
				return 3;
			}
		} else if (strcmp(kw, "arch") == 0) {
			unsigned long tok;
			if (fscanf(in, "%lu", &tok) != 1)
				return 66;
			int rc = seccomp_arch_add(ctx, (uint32_t)tok);
			if (rc != 0 && rc != -EEXIST) {
				fprintf(stderr, "arch_add %lu: %d\n", tok, rc);
				return 3;
			}
		} else if (strcmp(kw, "optimize") == 0) {
			unsigned long lvl;
			if (fscanf(in, "%lu", &lvl) != 1)
				return 66;
			seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, lvl);
		} else if (strcmp(kw, "rule") == 0) {
			unsigned long act;
			unsigned int n;
			struct scmp_arg_cmp args[6];
			if (fscanf(in, "%lu %127s %u", &act, name, &n) != 3 || n > 6)
				return 66;
			for (unsigned int i = 0; i < n; i++) {
				unsigned int arg, op;
				unsigned long long a, b;
				if (fscanf(in, "%u %u %llu %llu", &arg, &op, &a, &b) != 4)
					return 66;
				args[i].arg = arg;
				args[i].op = op;
				args[i].datum_a = a;
				args[i].datum_b = b;
			}
			/* runc: GetSyscallFromName (native), unknown names are skipped. */
			int nr = seccomp_syscall_resolve_name(name);
			if (nr == __NR_SCMP_ERROR)
				continue;
			int rc = seccomp_rule_add_array(ctx, (uint32_t)act, nr, n, args);
			if (rc != 0) {
				fprintf(stderr, "rule_add %s: %d\n", name, rc);
				return 3;
			}
		} else {
			return 68;
		}
	}
	int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 69;
	int rc = seccomp_export_bpf(ctx, fd);
	if (rc != 0) {
		fprintf(stderr, "export: %d\n", rc);
		return 4;
	}
	close(fd);
	seccomp_release(ctx);
	return 0;
}
