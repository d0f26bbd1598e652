/* Process lookup by title: the pure matcher, a scan of a fake proc tree, and one scan of the
 * real /proc for a child we start ourselves. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "okg-proc.h"
#include "okg-test.h"

#define M(literal, name) proc_cmdline_matches(literal, sizeof(literal) - 1, name)

static void test_matches(void) {
        const char *master = "nginx: master process nginx";

        /* setproctitle()-style titles: one string, NUL padded. */
        ASSERT_TRUE(M("nginx: master process nginx -g daemon off;\0", master));
        ASSERT_TRUE(M("nginx: master process nginx -g daemon off;\0\0\0\0", master));
        ASSERT_TRUE(M("nginx: master process nginx\0", master));
        ASSERT_TRUE(M("nginx: master process nginx", master));
        ASSERT_TRUE(!M("nginx: master process nginxx\0", master));
        ASSERT_TRUE(!M("nginx: master process nginxx -g daemon off;\0", master));
        ASSERT_TRUE(!M("nginx: worker process\0", master));
        ASSERT_TRUE(!M("nginx: master process ngin\0", master));
        ASSERT_TRUE(!M("xnginx: master process nginx\0", master));

        /* argv-style cmdlines: the NUL separators read as spaces. */
        ASSERT_TRUE(M("/bin/sleep\0001234.5\0", "/bin/sleep 1234.5"));
        ASSERT_TRUE(M("/bin/sleep\0001234.5\0", "/bin/sleep"));
        ASSERT_TRUE(M("nginx\0-g\0daemon off;\0", "nginx -g"));
        ASSERT_TRUE(!M("/bin/sleep\0001234.5\0", "/bin/sleep 1234"));
        ASSERT_TRUE(!M("/bin/sleeper\0", "/bin/sleep"));

        /* Trailing NULs are not spaces: "a" is not "a ". */
        ASSERT_TRUE(!M("a\0\0\0", "a "));
        ASSERT_TRUE(M("a\0\0b\0", "a "));
        ASSERT_TRUE(!M("a\0b\0", "a "));

        /* Kernel threads and zombies have an empty cmdline; nothing matches it. */
        ASSERT_TRUE(!proc_cmdline_matches("", 0, master));
        ASSERT_TRUE(!M("\0\0\0", master));
        ASSERT_TRUE(!proc_cmdline_matches("", 0, ""));
        ASSERT_TRUE(!M("anything\0", ""));
        ASSERT_TRUE(!proc_cmdline_matches(NULL, 0, master));
}

static void write_file(const char *root, const char *dir, const char *file, const void *data,
                       size_t len) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", root, dir);
        ASSERT_TRUE(mkdir(path, 0755) == 0 || errno == EEXIST);
        snprintf(path, sizeof path, "%s/%s/%s", root, dir, file);
        f = fopen(path, "we");
        ASSERT_TRUE(f);
        if (len > 0)
                ASSERT_EQ(fwrite(data, 1, len, f), len);
        ASSERT_EQ(fclose(f), 0);
}

static void fake_process(const char *root, const char *pid, const void *cmdline, size_t len,
                         int ppid) {
        char status[256];

        write_file(root, pid, "cmdline", cmdline, len);
        if (ppid >= 0) {
                int n = snprintf(status, sizeof status,
                                 "Name:\tfake\nState:\tS (sleeping)\nTgid:\t%s\nPid:\t%s\n"
                                 "PPid:\t%d\nTracerPid:\t0\n",
                                 pid, pid, ppid);
                write_file(root, pid, "status", status, (size_t) n);
        }
}

#define FAKE(root, pid, literal, ppid) fake_process(root, pid, literal, sizeof(literal) - 1, ppid)

static void assert_pids(pid_t *pids, int n, const pid_t *expected, int n_expected) {
        ASSERT_EQ(n, n_expected);
        for (int i = 0; i < n; i++)
                ASSERT_EQ(pids[i], expected[i]);
}

static void rm_rf(const char *path) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", path);
        ASSERT_EQ(system(cmd), 0);
}

static void test_fake_tree(void) {
        const char *master = "nginx: master process nginx";
        char root[] = "/tmp/okg-test-proc-XXXXXX";
        pid_t *pids = NULL;
        char *big;
        size_t big_len;
        int n;

        ASSERT_TRUE(mkdtemp(root));

        FAKE(root, "100", "nginx: master process nginx -g daemon off;\0\0\0", 1);
        FAKE(root, "101", "nginx: worker process\0", 100);
        FAKE(root, "200", "okg-sidecard\0--config\0/etc/okg.yaml\0", 1);
        FAKE(root, "201", "sh\0-c\0nginx\0", 200);
        FAKE(root, "202", "nginx: master process nginx\0", 201); /* inside the excluded tree */
        FAKE(root, "300", "", 2);                                 /* kernel thread */
        FAKE(root, "302", "nginx: master process nginxx\0", 1);
        FAKE(root, "500", "nginx: master process nginx\0", 499); /* parent is gone */
        FAKE(root, "600", "nginx: master process nginx\0", 601); /* PPid loop */
        FAKE(root, "601", "loop\0", 600);
        FAKE(root, "self", "nginx: master process nginx\0", 1);  /* not a PID */
        FAKE(root, "0042", "nginx: master process nginx\0", 1);  /* not a canonical PID */
        write_file(root, "400", "status", "PPid:\t1\n", 8);      /* vanished: no cmdline */

        /* More than a page: the match is decided at the start, the reader must still cope. */
        big_len = 3 * 4096 + 123;
        big = calloc(1, big_len);
        ASSERT_TRUE(big);
        memcpy(big, "nginx: master process nginx\0-g\0", 31);
        memset(big + 31, 'x', big_len - 32);
        fake_process(root, "301", big, big_len, 1);

        /* Exact title with a long tail of NUL padding, as setproctitle() leaves it. */
        memset(big, 0, big_len);
        memcpy(big, master, strlen(master));
        fake_process(root, "303", big, big_len, 1);

        /* Titles longer than a page that differ only after it. */
        memset(big, 'y', 5000);
        big[5000] = 0;
        fake_process(root, "304", big, 5001, 1);
        big[4500] = 'z';
        fake_process(root, "305", big, 5001, 1);
        big[4500] = 'y';
        ASSERT_EQ(proc_find_by_title(root, big, 0, &pids), 1);
        ASSERT_EQ(pids[0], 304);
        free(pids);
        free(big);

        n = proc_find_by_title(root, master, 0, &pids);
        assert_pids(pids, n, (const pid_t[]) { 100, 202, 301, 303, 500, 600 }, 6);
        free(pids);

        n = proc_find_by_title(root, master, 200, &pids);
        assert_pids(pids, n, (const pid_t[]) { 100, 301, 303, 500, 600 }, 5);
        free(pids);

        /* The excluded root itself is excluded too. */
        n = proc_find_by_title(root, master, 100, &pids);
        assert_pids(pids, n, (const pid_t[]) { 202, 301, 303, 500, 600 }, 5);
        free(pids);

        ASSERT_EQ(proc_find_by_title(root, master, 201, NULL), 5);
        ASSERT_EQ(proc_find_by_title(root, "nginx: worker process", 0, NULL), 1);
        ASSERT_EQ(proc_find_by_title(root, "nginx: master process nginxx", 0, NULL), 1);
        ASSERT_EQ(proc_find_by_title(root, "okg-sidecard --config", 0, NULL), 1);
        ASSERT_EQ(proc_find_by_title(root, "okg-sidecard --config", 200, NULL), 0);

        pids = (pid_t *) 0x1;
        n = proc_find_by_title(root, "no such process", 0, &pids);
        ASSERT_EQ(n, 0);
        free(pids);

        ASSERT_EQ(proc_find_by_title(root, "", 0, NULL), -EINVAL);
        ASSERT_EQ(proc_find_by_title("/nonexistent/okg-proc-root", master, 0, NULL), -ENOENT);

        rm_rf(root);
}

/* Reads /proc/self/cmdline as a title, for the "never ourselves" check. */
static char *own_title(void) {
        static char buf[8192];
        ssize_t k;
        int fd;

        fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        k = read(fd, buf, sizeof buf - 1);
        ASSERT_TRUE(k > 0);
        close(fd);
        while (k > 0 && buf[k - 1] == 0)
                k--;
        for (ssize_t i = 0; i < k; i++)
                if (buf[i] == 0)
                        buf[i] = ' ';
        buf[k] = 0;
        return buf;
}

static void test_real_proc(void) {
        const char *title = "/bin/sleep 1234.5";
        pid_t child, *pids = NULL;
        int n = 0, status;

        if (access("/bin/sleep", X_OK) < 0) {
                printf("SKIP real /proc check: /bin/sleep missing\n");
                return;
        }

        child = fork();
        ASSERT_TRUE(child >= 0);
        if (child == 0) {
                execl("/bin/sleep", "/bin/sleep", "1234.5", (char *) NULL);
                _exit(127);
        }

        /* Until the child has exec'd it carries our title; wait (bounded) for the new one. */
        for (int i = 0; i < 1000; i++) {
                n = proc_find_by_title("/proc", title, 0, &pids);
                ASSERT_TRUE(n >= 0);
                bool found = false;
                for (int j = 0; j < n; j++)
                        if (pids[j] == child)
                                found = true;
                free(pids);
                pids = NULL;
                if (found)
                        break;
                n = -1;
                nanosleep(&(struct timespec) { .tv_nsec = 10 * 1000 * 1000 }, NULL);
        }
        ASSERT_TRUE(n >= 1);

        /* Our child is in our tree: excluding ourselves hides it. */
        n = proc_find_by_title("/proc", title, getpid(), &pids);
        ASSERT_TRUE(n >= 0);
        for (int j = 0; j < n; j++)
                ASSERT_TRUE(pids[j] != child);
        free(pids);

        /* We never find ourselves, even by our own title. */
        n = proc_find_by_title("/proc", own_title(), 0, &pids);
        ASSERT_TRUE(n >= 0);
        for (int j = 0; j < n; j++)
                ASSERT_TRUE(pids[j] != getpid());
        free(pids);

        ASSERT_EQ(kill(child, SIGKILL), 0);
        ASSERT_EQ(waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFSIGNALED(status));

        /* Gone now (a reaped child has no /proc entry). */
        n = proc_find_by_title("/proc", title, 0, &pids);
        ASSERT_TRUE(n >= 0);
        for (int j = 0; j < n; j++)
                ASSERT_TRUE(pids[j] != child);
        free(pids);
}

int main(void) {
        test_matches();
        test_fake_tree();
        test_real_proc();
        printf("OK\n");
        return 0;
}
