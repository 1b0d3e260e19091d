/* reap: the CPU time of a command and of every process it starts, also
 * of those that outlive their parent (a daemon, a shell's tally-log
 * logger): `times` and wait4(2) count only the children a shell waits for.
 *
 * Usage: reap FILE COMMAND [ARG...]
 * Runs COMMAND as a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER: the
 * orphans of its tree are re-parented here), waits until no process of
 * the tree is left, then writes "USER_US SYS_US\n" (the user and system
 * CPU time of them all, in microseconds) to FILE. Exit status: COMMAND's
 * (128+signal when a signal ended it), 111 when reap itself failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct rusage ru;
	pid_t pid, w;
	int st, status = 111;
	FILE *f;

	if (argc < 3) {
		fputs("usage: reap FILE COMMAND [ARG...]\n", stderr);
		return 100;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		perror("reap: prctl");
		return 111;
	}
	pid = fork();
	if (pid < 0) {
		perror("reap: fork");
		return 111;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror("reap: exec");
		_exit(127);
	}
	while ((w = wait(&st)) != -1 || errno == EINTR)
		if (w == pid)
			status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (getrusage(RUSAGE_CHILDREN, &ru) < 0 || !(f = fopen(argv[1], "w"))) {
		perror("reap");
		return 111;
	}
	fprintf(f, "%lld %lld\n",
		(long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
		(long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
	return fclose(f) == 0 ? status : 111;
}
