/*
 * The MQTT source's spool: rows survive a close and come back in order with their reply
 * topic and correlation data; claimed rows are not recovered twice, unclaimed ones are;
 * removals are written with the next append or flush and are never recovered; one open
 * spool per path is shared; a row survives a SIGKILL right after its append returned
 * (forked child); segments roll over and go once empty; a torn tail is cut off with a
 * warning; a spool in use by another process and a file in the directory's place are
 * errors naming the path; memory mode; the record parser on damaged input.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <triggerd/errors.h>

#include "../../connectors/mqtt_spool.h"

static char sdir[64];
static char spath[128];

static void spool_setup(void)
{
	snprintf(sdir, sizeof sdir, "/tmp/td-spool-test-XXXXXX");
	cr_assert_not_null(mkdtemp(sdir));
	snprintf(spath, sizeof spath, "%s/s.spool", sdir);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void spool_teardown(void)
{
	nftw(sdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(mqtt_spool, .init = spool_setup, .fini = spool_teardown);

static struct td_mqtt_spool *acquire_ok(enum td_queue_durability d)
{
	char err[512];
	struct td_mqtt_spool *s = td_mqtt_spool_acquire(spath, d, err, sizeof err);
	cr_assert_not_null(s, "acquire: %s", err);
	return s;
}

static long long append_ok(struct td_mqtt_spool *s, const char *event, const char *reply,
			   const char *corr)
{
	char err[512];
	long long id = 0;
	struct td_mqtt_spooled m = {.event = event,
				    .event_len = strlen(event),
				    .reply_topic = reply,
				    .correlation = corr,
				    .correlation_len = corr ? strlen(corr) : 0};
	cr_assert_eq(td_mqtt_spool_append(s, &m, &id, err, sizeof err), 0, "append: %s", err);
	cr_assert_gt(id, 0);
	return id;
}

/* What recover() handed out, as "event|reply|correlation" lines. */
struct seen {
	char text[2048];
	long long ids[64];
	int n;
	int stop_after; /* 0: never */
};

static int collect(void *arg, const struct td_mqtt_spooled *m)
{
	struct seen *s = arg;
	if (s->stop_after && s->n == s->stop_after)
		return 1;
	size_t len = strlen(s->text);
	snprintf(s->text + len, sizeof s->text - len, "%.*s|%s|%.*s\n", (int)m->event_len,
		 (const char *)m->event, m->reply_topic ? m->reply_topic : "-",
		 (int)m->correlation_len, m->correlation ? (const char *)m->correlation : "");
	s->ids[s->n++] = m->id;
	return 0;
}

static int recover_ok(struct td_mqtt_spool *s, struct seen *out)
{
	char err[512];
	int n = td_mqtt_spool_recover(s, collect, out, err, sizeof err);
	cr_assert_geq(n, 0, "recover: %s", err);
	return n;
}

Test(mqtt_spool, rows_survive_a_close_in_order_with_their_reply_data)
{
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_FSYNC);
	long long a = append_ok(s, "one", NULL, NULL);
	long long b = append_ok(s, "two", "replies/x", "c-2");
	long long c = append_ok(s, "three", NULL, NULL);
	cr_assert(a < b && b < c);
	td_mqtt_spool_remove(s, b);
	td_mqtt_spool_release(s);

	s = acquire_ok(TD_QUEUE_FSYNC);
	struct seen got = {0};
	cr_assert_eq(recover_ok(s, &got), 2);
	cr_assert_str_eq(got.text, "one|-|\nthree|-|\n");
	cr_assert_eq(got.ids[0], a);
	cr_assert_eq(got.ids[1], c);
	td_mqtt_spool_release(s);

	s = acquire_ok(TD_QUEUE_OS);
	struct seen again = {0};
	cr_assert_eq(recover_ok(s, &again), 2, "a new process claims them again");
	td_mqtt_spool_release(s);
}

Test(mqtt_spool, reply_topic_and_correlation_come_back)
{
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_OS);
	append_ok(s, "ev", "replies/a", "corr");
	td_mqtt_spool_release(s);
	s = acquire_ok(TD_QUEUE_OS);
	struct seen got = {0};
	recover_ok(s, &got);
	cr_assert_str_eq(got.text, "ev|replies/a|corr\n");
	td_mqtt_spool_release(s);
}

Test(mqtt_spool, claimed_rows_are_not_recovered_unclaimed_ones_are)
{
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_OS);
	long long a = append_ok(s, "a", NULL, NULL);
	long long b = append_ok(s, "b", NULL, NULL);
	struct seen none = {0};
	cr_assert_eq(recover_ok(s, &none), 0, "the appender holds both");
	td_mqtt_spool_unclaim(s, b);
	struct seen got = {0};
	cr_assert_eq(recover_ok(s, &got), 1);
	cr_assert_eq(got.ids[0], b);
	struct seen twice = {0};
	cr_assert_eq(recover_ok(s, &twice), 0, "recovered rows are claimed");
	(void)a;
	td_mqtt_spool_release(s);
}

Test(mqtt_spool, removed_rows_are_never_recovered_even_before_they_are_written)
{
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_OS);
	long long a = append_ok(s, "a", NULL, NULL);
	td_mqtt_spool_remove(s, a);
	cr_assert_eq(td_mqtt_spool_pending(s), 1);
	struct seen got = {0};
	cr_assert_eq(recover_ok(s, &got), 0);
	append_ok(s, "b", NULL, NULL);
	cr_assert_eq(td_mqtt_spool_pending(s), 0, "written with the next append");
	long long b2 = append_ok(s, "c", NULL, NULL);
	td_mqtt_spool_remove(s, b2);
	char err[256];
	cr_assert_eq(td_mqtt_spool_flush(s, err, sizeof err), 0, "%s", err);
	cr_assert_eq(td_mqtt_spool_pending(s), 0);
	td_mqtt_spool_release(s);
	s = acquire_ok(TD_QUEUE_OS);
	struct seen left = {0};
	cr_assert_eq(recover_ok(s, &left), 1);
	cr_assert_str_eq(left.text, "b|-|\n");
	td_mqtt_spool_release(s);
}

Test(mqtt_spool, a_callback_that_refuses_leaves_the_rest_unclaimed)
{
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_OS);
	for (int i = 0; i < 4; i++) {
		char ev[16];
		snprintf(ev, sizeof ev, "e%d", i);
		long long id = append_ok(s, ev, NULL, NULL);
		td_mqtt_spool_unclaim(s, id);
	}
	struct seen first = {.stop_after = 2};
	cr_assert_eq(recover_ok(s, &first), 2);
	struct seen rest = {0};
	cr_assert_eq(recover_ok(s, &rest), 2);
	cr_assert_str_eq(rest.text, "e2|-|\ne3|-|\n");
	td_mqtt_spool_release(s);
}

Test(mqtt_spool, one_open_spool_per_path_is_shared)
{
	struct td_mqtt_spool *s1 = acquire_ok(TD_QUEUE_OS);
	struct td_mqtt_spool *s2 = acquire_ok(TD_QUEUE_OS);
	cr_assert_eq(s1, s2);
	long long id = append_ok(s1, "old", NULL, NULL);
	td_mqtt_spool_unclaim(s1, id); /* the retiring instance gives it back */
	td_mqtt_spool_release(s1);
	struct seen got = {0};
	cr_assert_eq(recover_ok(s2, &got), 1, "the new instance takes it over");
	td_mqtt_spool_release(s2);
}

Test(mqtt_spool, a_row_survives_sigkill_right_after_its_append)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char err[256];
		long long id;
		struct td_mqtt_spool *s =
		    td_mqtt_spool_acquire(spath, TD_QUEUE_OS, err, sizeof err);
		struct td_mqtt_spooled m = {.event = "kept", .event_len = 4};
		if (!s || td_mqtt_spool_append(s, &m, &id, err, sizeof err) < 0)
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_OS);
	struct seen got = {0};
	cr_assert_eq(recover_ok(s, &got), 1);
	cr_assert_str_eq(got.text, "kept|-|\n");
	td_mqtt_spool_release(s);
}

Test(mqtt_spool, a_memory_spool_with_rows_outlives_its_last_release)
{
	/* A reload releases the retiring instance's reference before the new instance
	 * acquires: rows given back meanwhile must still be there. */
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_MEMORY);
	long long id = append_ok(s, "held", NULL, NULL);
	td_mqtt_spool_unclaim(s, id);
	cr_assert_eq(td_mqtt_spool_unclaimed(s), 1);
	td_mqtt_spool_release(s);
	s = acquire_ok(TD_QUEUE_MEMORY);
	struct seen got = {0};
	cr_assert_eq(recover_ok(s, &got), 1);
	cr_assert_str_eq(got.text, "held|-|\n");
	cr_assert_eq(td_mqtt_spool_unclaimed(s), 0);
	td_mqtt_spool_remove(s, id);
	td_mqtt_spool_release(s); /* empty now: closed */
	s = acquire_ok(TD_QUEUE_MEMORY);
	struct seen none = {0};
	cr_assert_eq(recover_ok(s, &none), 0);
	td_mqtt_spool_release(s);
}

Test(mqtt_spool, memory_mode_keeps_nothing_on_disk)
{
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_MEMORY);
	long long id = append_ok(s, "m", NULL, NULL);
	td_mqtt_spool_unclaim(s, id);
	struct seen got = {0};
	cr_assert_eq(recover_ok(s, &got), 1);
	td_mqtt_spool_release(s);
	cr_assert_neq(access(spath, F_OK), 0, "no file in memory mode");
}

static int count_segments(void)
{
	DIR *d = opendir(spath);
	cr_assert_not_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

/* The newest segment file's path. */
static void last_segment(char *out, size_t cap)
{
	DIR *d = opendir(spath);
	cr_assert_not_null(d);
	char best[256] = "";
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".seg") && strcmp(e->d_name, best) > 0)
			snprintf(best, sizeof best, "%s", e->d_name);
	closedir(d);
	cr_assert(best[0]);
	snprintf(out, cap, "%s/%s", spath, best);
}

Test(mqtt_spool, segments_roll_over_and_go_once_empty)
{
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_OS);
	static char big[64 * 1024];
	memset(big, 'x', sizeof big - 1);
	long long ids[40];
	for (int i = 0; i < 40; i++) /* 2.5 MB: three segments */
		ids[i] = append_ok(s, big, NULL, NULL);
	cr_assert_geq(count_segments(), 3);
	for (int i = 0; i < 39; i++)
		td_mqtt_spool_remove(s, ids[i]);
	cr_assert_eq(td_mqtt_spool_flush(s, NULL, 0), 0);
	cr_assert_eq(count_segments(), 1, "only the segment of the last row is left");
	td_mqtt_spool_release(s);
	s = acquire_ok(TD_QUEUE_OS);
	struct seen got = {.stop_after = 0};
	cr_assert_eq(td_mqtt_spool_recover(s, collect, &got, NULL, 0), 1);
	cr_assert_eq(got.ids[0], ids[39]);
	long long next = append_ok(s, "after", NULL, NULL);
	cr_assert_gt(next, ids[39], "ids are never reused");
	td_mqtt_spool_release(s);
}

Test(mqtt_spool, a_torn_tail_is_cut_off_with_a_warning)
{
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_OS);
	append_ok(s, "whole", NULL, NULL);
	td_mqtt_spool_release(s);
	char seg[512];
	last_segment(seg, sizeof seg);
	int fd = open(seg, O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "\x40\0\0\0\1\2", 6), 6); /* a header cut short */
	close(fd);
	char err[512] = "";
	s = td_mqtt_spool_acquire(spath, TD_QUEUE_OS, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	cr_assert(strstr(err, "at byte") && strstr(err, ".cut"), "warning: %s", err);
	char cut[600];
	snprintf(cut, sizeof cut, "%s.cut", seg);
	struct stat st;
	cr_assert_eq(stat(cut, &st), 0, "the cut-off bytes are kept in %s", cut);
	cr_assert_eq(st.st_size, 6);
	struct seen got = {0};
	cr_assert_eq(recover_ok(s, &got), 1);
	cr_assert_str_eq(got.text, "whole|-|\n");
	append_ok(s, "next", NULL, NULL);
	td_mqtt_spool_release(s);
	s = acquire_ok(TD_QUEUE_OS);
	struct seen both = {0};
	cr_assert_eq(recover_ok(s, &both), 2, "appends after the cut are readable");
	td_mqtt_spool_release(s);
}

Test(mqtt_spool, a_spool_in_use_by_another_process_is_refused)
{
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char err[256];
		struct td_mqtt_spool *s =
		    td_mqtt_spool_acquire(spath, TD_QUEUE_OS, err, sizeof err);
		if (write(ready[1], s ? "y" : "n", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]); /* a child that dies gives end of file, not a wait */
	char c = 0;
	ssize_t got = read(ready[0], &c, 1);
	close(ready[0]);
	if (got != 1 || c != 'y') {
		int status = 0;
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		cr_assert_fail("the child could not take the spool (status %d)", status);
	}
	char err[512] = "";
	struct td_mqtt_spool *s = td_mqtt_spool_acquire(spath, TD_QUEUE_OS, err, sizeof err);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_null(s);
	cr_assert(strstr(err, spath) && strstr(err, "in use"), "error: %s", err);
	s = acquire_ok(TD_QUEUE_OS); /* the lock went with the process */
	td_mqtt_spool_release(s);
}

static int count_row(void *arg, const struct td_mqtt_spooled *m, size_t offset, size_t len)
{
	(void)m;
	(void)offset;
	(void)len;
	(*(int *)arg)++;
	return 0;
}

Test(mqtt_spool, the_parser_reports_damage_with_its_offset)
{
	struct td_mqtt_spool *s = acquire_ok(TD_QUEUE_OS);
	append_ok(s, "one", "r", NULL);
	append_ok(s, "two", NULL, "c");
	td_mqtt_spool_release(s);
	char seg[512];
	last_segment(seg, sizeof seg);
	unsigned char buf[4096];
	int fd = open(seg, O_RDONLY);
	cr_assert_geq(fd, 0);
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	cr_assert_gt(n, 34);
	int rows = 0;
	size_t valid;
	char err[256];
	cr_assert_eq(
	    td_mqtt_spool_parse(buf, (size_t)n, count_row, NULL, &rows, &valid, err, sizeof err), 0,
	    "%s", err);
	cr_assert_eq(rows, 2);
	cr_assert_eq(valid, (size_t)n);
	/* A flipped byte in the second record's body fails its check. */
	size_t first = 17 + (buf[0] | buf[1] << 8);
	buf[first + 20] ^= 1;
	rows = 0;
	cr_assert_eq(
	    td_mqtt_spool_parse(buf, (size_t)n, count_row, NULL, &rows, &valid, err, sizeof err),
	    -TD_EINVAL);
	cr_assert_eq(rows, 1);
	cr_assert_eq(valid, first);
	char want[64];
	snprintf(want, sizeof want, "at byte %zu", first);
	cr_assert(strstr(err, "check") && strstr(err, want), "%s", err);
	/* Every cut of a valid file is either whole records or reported. */
	buf[first + 20] ^= 1;
	for (size_t cut = 0; cut <= (size_t)n; cut++) {
		int r = td_mqtt_spool_parse(buf, cut, NULL, NULL, NULL, &valid, err, sizeof err);
		cr_assert(r == 0 ? valid == cut : valid < cut, "cut %zu", cut);
	}
}

Test(mqtt_spool, a_file_in_place_of_the_directory_is_an_error_naming_it)
{
	FILE *f = fopen(spath, "w");
	cr_assert_not_null(f);
	fputs("a file where the spool's directory should be\n", f);
	fclose(f);
	char err[512] = "";
	struct td_mqtt_spool *s = td_mqtt_spool_acquire(spath, TD_QUEUE_OS, err, sizeof err);
	cr_assert_null(s);
	cr_assert(strstr(err, spath) != NULL, "error names the file: %s", err);
}
