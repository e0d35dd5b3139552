/*
 * Queue throughput: how many async events per second the durable queue accepts, i.e.
 * td_queue_push() of each event and one td_queue_commit() per group, for every
 * durability mode and group sizes 1, 10, 100 and 1000. A group is what the engine
 * gathers in one loop iteration; FSYNC pays one fsync per group, so throughput grows
 * with the group until the inserts themselves dominate.
 *
 * Each figure is the median of 5 runs; a run starts from an empty queue.db in the state
 * directory (argv[1], on the disk under test) and pushes 1 KiB events for about
 * RUN_SECONDS (and at least 3 groups). A second table measures the whole life of an
 * event as the engine drives it: push, commit, take, complete, commit, per group.
 *
 * Usage: queue_bench <state dir> (bench/queue/run.sh passes one under the build folder).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <triggerd/errors.h>

#include "../../router/queue.h"

#define RUNS	    5
#define RUN_SECONDS 0.4
#define EVENT_BYTES 1024
#define MIN_GROUPS  3

static const int groups[] = {1, 10, 100, 1000};
static const enum td_queue_durability modes[] = {TD_QUEUE_FSYNC, TD_QUEUE_OS, TD_QUEUE_MEMORY};

static char event[EVENT_BYTES];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void remove_files(const char *dir)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char path[4096];
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		snprintf(path, sizeof path, "%s/queue.db%s", dir, suffixes[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			fprintf(stderr, "queue_bench: unlink %s: %s\n", path, strerror(errno));
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One run: entries per second, or a negative number on failure. With cycle, every
 * group is also taken, completed and committed again. */
static double run_once(const char *dir, enum td_queue_durability d, int group, int cycle)
{
	char err[512];
	remove_files(dir);
	struct td_queue *q = td_queue_open(dir, d, err, sizeof err);
	if (!q) {
		fprintf(stderr, "queue_bench: %s\n", err);
		return -1;
	}
	const struct td_queue_entry **out = calloc((size_t)group, sizeof *out);
	if (!out) {
		td_queue_close(q);
		return -1;
	}
	struct td_queue_entry e = {
	    .function = "bench-function",
	    .trigger = "bench-trigger",
	    .event = event,
	    .event_len = sizeof event,
	};
	long long done = 0;
	double start = now_s(), elapsed = 0;
	while (elapsed < RUN_SECONDS || done < (long long)MIN_GROUPS * group) {
		for (int i = 0; i < group; i++) {
			e.enqueued_ms = e.due_ms = done + i;
			if (td_queue_push(q, &e, 0, NULL) != 0)
				goto fail;
		}
		if (td_queue_commit(q) != 0)
			goto fail;
		if (cycle) {
			int n = td_queue_take(q, e.function, done + group, out, group);
			if (n != group)
				goto fail;
			for (int i = 0; i < n; i++)
				if (td_queue_complete(q, out[i]->id) != 0)
					goto fail;
			if (td_queue_commit(q) != 0)
				goto fail;
		}
		done += group;
		elapsed = now_s() - start;
	}
	free(out);
	td_queue_close(q);
	remove_files(dir);
	return (double)done / elapsed;
fail:
	fprintf(stderr, "queue_bench: a queue call failed (%s, group %d)\n",
		td_queue_durability_name(d), group);
	free(out);
	td_queue_close(q);
	return -1;
}

static double median_rate(const char *dir, enum td_queue_durability d, int group, int cycle)
{
	double r[RUNS];
	for (int i = 0; i < RUNS; i++)
		if ((r[i] = run_once(dir, d, group, cycle)) < 0)
			return -1;
	qsort(r, RUNS, sizeof r[0], cmp_double);
	return r[RUNS / 2];
}

static int print_table(const char *dir, const char *title, int cycle)
{
	printf("%s\n%-8s", title, "mode");
	for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
		char label[32];
		snprintf(label, sizeof label, "group %d", groups[g]);
		printf(" %12s", label);
	}
	printf("\n");
	for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		printf("%-8s", td_queue_durability_name(modes[m]));
		fflush(stdout);
		for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
			double rate = median_rate(dir, modes[m], groups[g], cycle);
			if (rate < 0)
				return 1;
			printf(" %12.0f", rate);
			fflush(stdout);
		}
		printf("\n");
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <state dir>\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		fprintf(stderr, "queue_bench: mkdir %s: %s\n", dir, strerror(errno));
		return 1;
	}
	/* A JSON-looking envelope, the size of a small webhook event. */
	memset(event, 'x', sizeof event);
	memcpy(event, "{\"specversion\":\"1.0\",\"data\":\"", 29);
	memcpy(event + sizeof event - 2, "\"}", 2);

	printf("queue: %d-byte events, entries/s, median of %d runs of ~%.1f s, state dir %s\n\n",
	       EVENT_BYTES, RUNS, RUN_SECONDS, dir);
	if (print_table(dir, "push + commit (one commit per group)", 0))
		return 1;
	printf("\n");
	if (print_table(dir, "full cycle: push, commit, take, complete, commit", 1))
		return 1;
	return 0;
}
