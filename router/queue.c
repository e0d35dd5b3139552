/*
 * The durable async queue (contract in queue.h).
 *
 * Storage: one SQLite table, one row per entry, keyed by its id (INTEGER PRIMARY KEY,
 * the rowid). The queue reads and writes a row only by its id, so the table needs no
 * other index and a push costs one b-tree insert.
 *
 * Memory: at open, the index of every stored entry (id, function, attempts, enqueue and
 * due times; never the event bytes) is loaded and then kept in step with each change:
 *   - a hash table from id to entry (open addressing, backward-shift deletion);
 *   - per function (hash table by name): the depth counter; a min-heap of the entries
 *     waiting (committed, not leased) by (due_ms, id), which take() pops; and a min-heap
 *     of all its entries by (enqueued_ms, id), whose top gives oldest_ms.
 * So take(), depth, oldest and next_due never scan anything; take() reads one row by
 * primary key per entry it leases. Heap capacity is reserved when an entry is pushed or
 * loaded, so moving an entry between states never allocates and never fails. A
 * function's record (name, counters, heaps) stays until close once it has been seen.
 *
 * Transactions: the first staged write opens a transaction and td_queue_commit() ends
 * it, so a group of pushes costs one WAL append and, in FSYNC mode, one fsync. A failed
 * write rolls the transaction back and rebuilds the memory index from the database,
 * keeping the leases (whose rows, being committed, are still there): the memory view
 * never differs from what a restart would load, apart from the leases.
 *
 * Pushed entries wait in a staged list until their commit succeeds, so nothing is
 * invoked before it is durable and a rollback never takes back a leased entry.
 *
 * Locking: locking_mode=EXCLUSIVE is set before WAL is entered, so SQLite keeps the WAL
 * index in heap memory (no -shm file) and keeps the file locked while the queue is open:
 * a second triggerd on the same state directory is refused at open.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <triggerd/errors.h>
#include <triggerd/log.h>

#define SCHEMA_VERSION 1
#define NOPOS	       ((size_t)-1)
#define LOG_SCOPE      "queue"

static const char schema_sql[] = "CREATE TABLE entries ("
				 " id INTEGER PRIMARY KEY,"
				 " function TEXT NOT NULL,"
				 " trigger TEXT,"
				 " attempts INTEGER NOT NULL,"
				 " enqueued_ms INTEGER NOT NULL,"
				 " due_ms INTEGER NOT NULL,"
				 " last_error TEXT,"
				 " event BLOB NOT NULL);"
				 "PRAGMA user_version = 1;";

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT,
	ST_DELETE,
	ST_RETRY,
	ST_READ,
	ST_LOAD,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT] = ("INSERT INTO entries (id, function, trigger, attempts, enqueued_ms,"
		   " due_ms, last_error, event) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
    [ST_DELETE] = "DELETE FROM entries WHERE id = ?1",
    [ST_RETRY] = "UPDATE entries SET attempts = ?2, due_ms = ?3, last_error = ?4 WHERE id = ?1",
    [ST_READ] = "SELECT trigger, last_error, event FROM entries WHERE id = ?1",
    [ST_LOAD] = "SELECT id, function, attempts, enqueued_ms, due_ms FROM entries",
};

enum ent_state { ENT_STAGED, ENT_READY, ENT_LEASED };

/* What take() hands out: the entry and, in data[], the event bytes (+ NUL), trigger and
 * last error. One allocation, freed when the lease ends. */
struct lease {
	struct td_queue_entry pub;
	char data[];
};

struct qent {
	long long id;
	struct qfn *fn;
	long long enqueued_ms, due_ms;
	int attempts;
	enum ent_state state;
	size_t ready_pos, age_pos; /* index in fn's heaps, NOPOS when not in it */
	struct lease *lease;	   /* while ENT_LEASED */
};

struct heap {
	struct qent **v;
	size_t n, cap;
	bool by_age; /* ordered by (enqueued_ms, id), else by (due_ms, id) */
};

struct qfn {
	char *name;
	long long depth;
	struct heap ready; /* ENT_READY entries */
	struct heap age;   /* every entry */
};

/* A drained backlog of at least this many entries returns its memory (td_queue_commit). */
#define DRAINED_BACKLOG 1000

struct td_queue {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	char *path; /* for messages */
	enum td_queue_durability durability;
	bool in_tx;
	bool lost;   /* undo() ran since the last commit: the group failed */
	bool broken; /* the memory index could not be rebuilt */
	long long next_id, total;
	long long peak;	   /* most entries held since the queue last drained */
	struct qent **ids; /* open addressing by id, NULL = empty */
	size_t ids_cap, ids_n;
	struct qfn **fns;
	size_t nfns, fns_cap;
	uint32_t *fnidx; /* open addressing: index + 1 into fns, 0 = empty */
	size_t fnidx_cap;
	struct qent **staged; /* pushed since the last commit */
	size_t nstaged, staged_cap;
	long long uncommitted; /* changes staged since the last commit */
	struct td_log_ratelimit rl;
};

/* ---- small helpers ---- */

/* Makes room for need elements in *v (capacity *cap, elements of size sz). */
static int reserve(void **v, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need) {
		if (n > SIZE_MAX / 2 / sz)
			return -TD_ENOMEM;
		n *= 2;
	}
	void *p = realloc(*v, n * sz);
	if (!p)
		return -TD_ENOMEM;
	*v = p;
	*cap = n;
	return 0;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A person's words for a SQLite result code met while opening. */
static const char *open_problem(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
		return "not a SQLite database";
	case SQLITE_CORRUPT:
		return "corrupt database";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "in use by another process (or already open)";
	case SQLITE_CANTOPEN:
		return "cannot open";
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return "not writable";
	case SQLITE_FULL:
		return "disk full";
	case SQLITE_IOERR:
		return "I/O error";
	case SQLITE_NOMEM:
		return "out of memory";
	default:
		return "cannot use";
	}
}

/* "<path>: <problem>: <sqlite message> (<errno text>)" into err. */
static void db_error(const struct td_queue *q, int rc, char *err, size_t errlen)
{
	int sys = q->db ? sqlite3_system_errno(q->db) : 0;
	const char *msg = q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc);
	if (sys && (rc & 0xff) != SQLITE_NOTADB && (rc & 0xff) != SQLITE_CORRUPT)
		seterr(err, errlen, "%s: %s: %s (%s)", q->path, open_problem(rc), msg,
		       strerror(sys));
	else
		seterr(err, errlen, "%s: %s: %s", q->path, open_problem(rc), msg);
}

static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		td_logs_warn(LOG_SCOPE, "cannot fsync directory %s: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* mkdir -p; when sync, fsyncs the parent of every directory it creates. */
static int make_dirs(const char *dir, bool sync, char *err, size_t errlen)
{
	char *p = strdup(dir);
	if (!p) {
		seterr(err, errlen, "queue: out of memory");
		return -TD_ENOMEM;
	}
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0750) == 0) {
			if (sync) {
				char *slash = strrchr(p, '/');
				if (slash == p)
					sync_dir("/");
				else if (!slash)
					sync_dir(".");
				else {
					*slash = '\0';
					sync_dir(p);
					*slash = '/';
				}
			}
		} else if (errno != EEXIST) {
			seterr(err, errlen, "cannot create state directory %s: %s", p,
			       strerror(errno));
			free(p);
			return -TD_EIO;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		seterr(err, errlen, "state directory %s: %s", dir,
		       stat(dir, &st) < 0 ? strerror(errno) : "not a directory");
		return -TD_EIO;
	}
	return 0;
}

/*
 * SQLite reports the errno of its last attempt (often a read-only retry), so find the
 * real reason a file cannot be opened for writing. Returns false when none is found.
 */
static bool explain_cantopen(const char *path, const char *dir, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			seterr(err, errlen, "%s: cannot open: it is a directory", path);
			return true;
		}
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return false;
		}
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return true;
	}
	if (errno == ENOENT && dir && access(dir, W_OK | X_OK) < 0) {
		seterr(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		return true;
	}
	return false;
}

/* ---- heaps ---- */

static bool heap_less(const struct heap *h, const struct qent *a, const struct qent *b)
{
	long long ka = h->by_age ? a->enqueued_ms : a->due_ms;
	long long kb = h->by_age ? b->enqueued_ms : b->due_ms;
	return ka < kb || (ka == kb && a->id < b->id);
}

static void heap_set(struct heap *h, size_t i, struct qent *e)
{
	h->v[i] = e;
	if (h->by_age)
		e->age_pos = i;
	else
		e->ready_pos = i;
}

static void sift_up(struct heap *h, size_t i)
{
	struct qent *e = h->v[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!heap_less(h, e, h->v[parent]))
			break;
		heap_set(h, i, h->v[parent]);
		i = parent;
	}
	heap_set(h, i, e);
}

static void sift_down(struct heap *h, size_t i)
{
	struct qent *e = h->v[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && heap_less(h, h->v[c + 1], h->v[c]))
			c++;
		if (!heap_less(h, h->v[c], e))
			break;
		heap_set(h, i, h->v[c]);
		i = c;
	}
	heap_set(h, i, e);
}

/* Capacity was reserved (fn_reserve) when the entry was pushed or loaded. */
static void heap_push(struct heap *h, struct qent *e)
{
	h->v[h->n++] = e;
	sift_up(h, h->n - 1);
}

static void heap_remove(struct heap *h, struct qent *e)
{
	size_t i = h->by_age ? e->age_pos : e->ready_pos;
	if (h->by_age)
		e->age_pos = NOPOS;
	else
		e->ready_pos = NOPOS;
	struct qent *last = h->v[--h->n];
	if (i == h->n)
		return;
	heap_set(h, i, last);
	if (i > 0 && heap_less(h, last, h->v[(i - 1) / 2]))
		sift_up(h, i);
	else
		sift_down(h, i);
}

/* ---- entries by id ---- */

static size_t id_slot(long long id, size_t cap)
{
	uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;
	return (size_t)(x ^ (x >> 32)) & (cap - 1);
}

static struct qent *ids_find(const struct td_queue *q, long long id)
{
	if (!q->ids_cap)
		return NULL;
	for (size_t i = id_slot(id, q->ids_cap);; i = (i + 1) & (q->ids_cap - 1)) {
		struct qent *e = q->ids[i];
		if (!e || e->id == id)
			return e;
	}
}

static void ids_put(struct qent **v, size_t cap, struct qent *e)
{
	size_t i = id_slot(e->id, cap);
	while (v[i])
		i = (i + 1) & (cap - 1);
	v[i] = e;
}

/* Room for n entries at a load of at most one half. */
static int ids_reserve(struct td_queue *q, size_t n)
{
	if (n <= q->ids_cap / 2)
		return 0;
	size_t cap = q->ids_cap ? q->ids_cap * 2 : 64;
	while (n > cap / 2) {
		if (cap > SIZE_MAX / 2 / sizeof(struct qent *))
			return -TD_ENOMEM;
		cap *= 2;
	}
	struct qent **v = calloc(cap, sizeof *v);
	if (!v)
		return -TD_ENOMEM;
	for (size_t i = 0; i < q->ids_cap; i++)
		if (q->ids[i])
			ids_put(v, cap, q->ids[i]);
	free(q->ids);
	q->ids = v;
	q->ids_cap = cap;
	return 0;
}

static void ids_remove(struct td_queue *q, const struct qent *e)
{
	size_t mask = q->ids_cap - 1, i = id_slot(e->id, q->ids_cap);
	while (q->ids[i] != e)
		i = (i + 1) & mask;
	q->ids[i] = NULL;
	/* Shift back every later entry of the run that may no longer be reachable. */
	for (size_t j = (i + 1) & mask; q->ids[j]; j = (j + 1) & mask) {
		size_t home = id_slot(q->ids[j]->id, q->ids_cap);
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		q->ids[i] = q->ids[j];
		q->ids[j] = NULL;
		i = j;
	}
	q->ids_n--;
}

/* ---- functions by name ---- */

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static struct qfn *fn_find(const struct td_queue *q, const char *name)
{
	if (!q->fnidx_cap)
		return NULL;
	size_t mask = q->fnidx_cap - 1;
	for (size_t i = name_hash(name) & mask; q->fnidx[i]; i = (i + 1) & mask)
		if (strcmp(q->fns[q->fnidx[i] - 1]->name, name) == 0)
			return q->fns[q->fnidx[i] - 1];
	return NULL;
}

static void fnidx_put(uint32_t *v, size_t cap, const char *name, uint32_t k)
{
	size_t i = name_hash(name) & (cap - 1);
	while (v[i])
		i = (i + 1) & (cap - 1);
	v[i] = k;
}

/* The function's record, created on first use; NULL when out of memory. */
static struct qfn *fn_get(struct td_queue *q, const char *name)
{
	struct qfn *fn = fn_find(q, name);
	if (fn)
		return fn;
	if (q->nfns >= UINT32_MAX - 1 ||
	    reserve((void **)&q->fns, &q->fns_cap, q->nfns + 1, sizeof *q->fns) < 0)
		return NULL;
	if ((q->nfns + 1) * 2 > q->fnidx_cap) {
		size_t cap = q->fnidx_cap ? q->fnidx_cap * 2 : 16;
		uint32_t *v = calloc(cap, sizeof *v);
		if (!v)
			return NULL;
		for (size_t k = 0; k < q->nfns; k++)
			fnidx_put(v, cap, q->fns[k]->name, (uint32_t)k + 1);
		free(q->fnidx);
		q->fnidx = v;
		q->fnidx_cap = cap;
	}
	fn = calloc(1, sizeof *fn);
	if (!fn || !(fn->name = strdup(name))) {
		free(fn);
		return NULL;
	}
	fn->age.by_age = true;
	q->fns[q->nfns++] = fn;
	fnidx_put(q->fnidx, q->fnidx_cap, fn->name, (uint32_t)q->nfns);
	return fn;
}

/* Room in fn's heaps for one more entry. */
static int fn_reserve(struct qfn *fn)
{
	size_t need = (size_t)fn->depth + 1;
	if (reserve((void **)&fn->ready.v, &fn->ready.cap, need, sizeof *fn->ready.v) < 0 ||
	    reserve((void **)&fn->age.v, &fn->age.cap, need, sizeof *fn->age.v) < 0)
		return -TD_ENOMEM;
	return 0;
}

/* ---- durability names ---- */

static const char *const durability_names[] = {
    [TD_QUEUE_FSYNC] = "fsync",
    [TD_QUEUE_OS] = "os",
    [TD_QUEUE_MEMORY] = "memory",
};

int td_queue_durability_parse(const char *name)
{
	for (int i = 0; name && i < 3; i++)
		if (strcmp(name, durability_names[i]) == 0)
			return i;
	return -1;
}

const char *td_queue_durability_name(enum td_queue_durability d)
{
	return (unsigned)d < 3 ? durability_names[d] : "unknown";
}

/* ---- statements ---- */

/* Steps a prepared statement once and resets it; returns the SQLite result code. */
static int run(struct td_queue *q, int which)
{
	sqlite3_stmt *st = q->st[which];
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static void log_db_error(struct td_queue *q, const char *what)
{
	if (td_log_ratelimit(&q->rl, 10, 10000))
		td_logs_error(LOG_SCOPE, "%s: %s: %s", q->path, what, sqlite3_errmsg(q->db));
}

static void entry_free(struct qent *e)
{
	free(e->lease);
	free(e);
}

static int load(struct td_queue *q);

/*
 * After a failed write: roll back whatever SQLite has not rolled back itself, and
 * rebuild the memory index from the database, keeping the leased entries (and their
 * memory). When that fails too, the queue is broken.
 */
static void undo(struct td_queue *q)
{
	q->in_tx = false;
	q->lost = true;
	q->nstaged = 0;
	q->uncommitted = 0;
	if (!sqlite3_get_autocommit(q->db) && run(q, ST_ROLLBACK) != SQLITE_DONE) {
		log_db_error(q, "cannot roll back; the queue stops until it is opened again");
		q->broken = true;
		return;
	}
	for (size_t i = 0; i < q->ids_cap; i++) {
		struct qent *e = q->ids[i];
		if (!e)
			continue;
		if (e->state != ENT_LEASED) {
			entry_free(e);
			q->ids[i] = NULL;
			q->ids_n--;
		} else {
			e->ready_pos = e->age_pos = NOPOS;
		}
	}
	/* Re-place the kept entries: removing the others broke their probe runs. */
	size_t nleased = q->ids_n;
	struct qent **kept = malloc((nleased ? nleased : 1) * sizeof *kept);
	if (!kept) {
		q->broken = true;
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < q->ids_cap; i++)
		if (q->ids[i]) {
			kept[k++] = q->ids[i];
			q->ids[i] = NULL;
		}
	for (size_t i = 0; i < k; i++)
		ids_put(q->ids, q->ids_cap, kept[i]);
	free(kept);
	for (size_t i = 0; i < q->nfns; i++) {
		q->fns[i]->depth = 0;
		q->fns[i]->ready.n = q->fns[i]->age.n = 0;
	}
	q->total = 0;
	if (load(q) < 0) {
		log_db_error(q, "cannot read the queue back; it stops until it is opened again");
		q->broken = true;
		return;
	}
	/* Every leased entry was committed, so its row must have been found. */
	for (size_t i = 0; i < q->ids_cap; i++)
		if (q->ids[i] && q->ids[i]->age_pos == NOPOS) {
			td_logs_error(LOG_SCOPE,
				      "%s: entry %lld vanished from the database; the queue stops "
				      "until it is opened again",
				      q->path, q->ids[i]->id);
			q->broken = true;
			return;
		}
}

/* A write failed: log, undo everything staged, and answer -TD_EIO. */
static int write_failed(struct td_queue *q, const char *what)
{
	log_db_error(q, what);
	undo(q);
	return -TD_EIO;
}

static int begin(struct td_queue *q)
{
	if (q->in_tx)
		return 0;
	if (run(q, ST_BEGIN) != SQLITE_DONE)
		return write_failed(q, "cannot begin a transaction");
	q->in_tx = true;
	return 0;
}

/*
 * Adds every row to the memory index. A row whose id is already there is a leased
 * entry kept across undo(): it is refreshed and stays leased. Returns 0, or a negative
 * code with the SQLite error left in the connection (or -TD_EINVAL for a bad row,
 * logged).
 */
static int load(struct td_queue *q)
{
	sqlite3_stmt *st = q->st[ST_LOAD];
	int rc, ret = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		bool text = sqlite3_column_type(st, 1) == SQLITE_TEXT; /* before converting */
		long long id = sqlite3_column_int64(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		long long attempts = sqlite3_column_int64(st, 2);
		if (!text || !name || !*name || id <= 0 || id == LLONG_MAX || attempts < 0 ||
		    attempts > INT_MAX) {
			td_logs_error(LOG_SCOPE,
				      "%s: entry %lld is damaged (id, function or attempts)",
				      q->path, id);
			ret = -TD_EINVAL;
			break;
		}
		struct qfn *fn = fn_get(q, name);
		struct qent *e = ids_find(q, id);
		bool kept = e != NULL;
		if (!fn || fn_reserve(fn) < 0 || (!kept && ids_reserve(q, q->ids_n + 1) < 0) ||
		    (!kept && !(e = calloc(1, sizeof *e)))) {
			ret = -TD_ENOMEM;
			break;
		}
		if (kept && e->fn != fn) {
			td_logs_error(LOG_SCOPE, "%s: entry %lld changed function", q->path, id);
			ret = -TD_EINVAL;
			break;
		}
		e->id = id;
		e->fn = fn;
		e->attempts = (int)attempts;
		e->enqueued_ms = sqlite3_column_int64(st, 3);
		e->due_ms = sqlite3_column_int64(st, 4);
		e->ready_pos = e->age_pos = NOPOS;
		if (!kept) {
			e->state = ENT_READY;
			ids_put(q->ids, q->ids_cap, e);
			q->ids_n++;
			heap_push(&fn->ready, e);
		}
		heap_push(&fn->age, e);
		fn->depth++;
		q->total++;
		if (id >= q->next_id)
			q->next_id = id + 1;
	}
	sqlite3_reset(st);
	if (ret == 0 && rc != SQLITE_DONE)
		ret = -TD_EIO;
	return ret;
}

/* ---- open and close ---- */

/* Runs a PRAGMA (or any statement) and copies the first column of its first row. */
static int query_text(struct td_queue *q, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (out && outlen) {
		const unsigned char *t = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
		snprintf(out, outlen, "%s", t ? (const char *)t : "");
	}
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		rc = SQLITE_OK;
	sqlite3_finalize(st);
	return rc;
}

static int configure(struct td_queue *q, char *err, size_t errlen)
{
	static const char *const file_pragmas[] = {
	    "PRAGMA locking_mode = EXCLUSIVE", /* before WAL: no -shm, lock held */
	    "PRAGMA journal_size_limit = 67108864",
	    "PRAGMA cache_size = -2048", /* KB: room for the hot pages, small on a gateway */
	    "PRAGMA cell_size_check = ON",
	};
	static const char *const memory_pragmas[] = {
	    "PRAGMA journal_mode = MEMORY",
	    "PRAGMA synchronous = OFF",
	};
	bool mem = q->durability == TD_QUEUE_MEMORY;
	size_t n = mem ? 2 : 4;
	for (size_t i = 0; i < n; i++) {
		int rc = query_text(q, mem ? memory_pragmas[i] : file_pragmas[i], NULL, 0);
		if (rc != SQLITE_OK) {
			db_error(q, rc, err, errlen);
			return -TD_EIO;
		}
	}
	if (mem)
		return 0;
	char mode[32];
	int rc = query_text(q, "PRAGMA journal_mode = WAL", mode, sizeof mode);
	if (rc != SQLITE_OK) {
		db_error(q, rc, err, errlen);
		return -TD_EIO;
	}
	if (strcmp(mode, "wal") != 0) {
		seterr(err, errlen, "%s: cannot switch to WAL mode (journal mode is \"%s\")",
		       q->path, mode);
		return -TD_EIO;
	}
	rc = query_text(q,
			q->durability == TD_QUEUE_FSYNC ? "PRAGMA synchronous = FULL"
							: "PRAGMA synchronous = NORMAL",
			NULL, 0);
	if (rc != SQLITE_OK) {
		db_error(q, rc, err, errlen);
		return -TD_EIO;
	}
	if (sqlite3_db_readonly(q->db, "main") == 1) {
		int fd = open(q->path, O_RDWR | O_CLOEXEC);
		seterr(err, errlen, "%s: not writable: %s", q->path,
		       fd < 0 ? strerror(errno) : "opened read-only");
		if (fd >= 0)
			close(fd);
		return -TD_EIO;
	}
	return 0;
}

/* Creates the schema in a new file, or checks the version of an existing one. Takes
 * the write lock, which locking_mode=EXCLUSIVE then keeps. */
static int check_schema(struct td_queue *q, char *err, size_t errlen)
{
	char buf[32];
	int rc = query_text(q, "BEGIN IMMEDIATE", NULL, 0);
	if (rc == SQLITE_OK)
		rc = query_text(q, "PRAGMA user_version", buf, sizeof buf);
	if (rc != SQLITE_OK)
		goto fail;
	long long version = strtoll(buf, NULL, 10);
	if (version == 0) {
		rc = query_text(q, "SELECT count(*) FROM sqlite_schema", buf, sizeof buf);
		if (rc != SQLITE_OK)
			goto fail;
		if (strcmp(buf, "0") != 0) {
			seterr(err, errlen,
			       "%s: not a triggerd queue: it holds tables of another schema "
			       "(user_version 0)",
			       q->path);
			goto fail_rollback;
		}
		rc = sqlite3_exec(q->db, schema_sql, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto fail;
	} else if (version != SCHEMA_VERSION) {
		seterr(err, errlen,
		       "%s: queue schema version %lld is not the one this triggerd knows (%d)%s",
		       q->path, version, SCHEMA_VERSION,
		       version > SCHEMA_VERSION ? ": written by a newer triggerd" : "");
		goto fail_rollback;
	}
	rc = query_text(q, "COMMIT", NULL, 0);
	if (rc != SQLITE_OK)
		goto fail;
	return 0;
fail:
	db_error(q, rc, err, errlen);
fail_rollback:
	if (!sqlite3_get_autocommit(q->db))
		query_text(q, "ROLLBACK", NULL, 0);
	return -TD_EIO;
}

struct td_queue *td_queue_open(const char *dir, enum td_queue_durability d, char *err,
			       size_t errlen)
{
	struct td_queue *q = NULL;
	bool fresh = false;
	seterr(err, errlen, "%s", "");
	if ((unsigned)d > TD_QUEUE_MEMORY) {
		seterr(err, errlen, "queue: unknown durability %d", (int)d);
		goto fail;
	}
	q = calloc(1, sizeof *q);
	if (!q) {
		seterr(err, errlen, "queue: out of memory");
		goto fail;
	}
	q->durability = d;
	q->next_id = 1;
	if (d == TD_QUEUE_MEMORY) {
		q->path = strdup(":memory:");
	} else {
		if (!dir || !*dir) {
			seterr(err, errlen, "queue: no state directory given");
			goto fail;
		}
		if (make_dirs(dir, d == TD_QUEUE_FSYNC, err, errlen) < 0)
			goto fail;
		size_t len = strlen(dir) + sizeof "/queue.db";
		if ((q->path = malloc(len)))
			snprintf(q->path, len, "%s/queue.db", dir);
		struct stat st;
		fresh = q->path && stat(q->path, &st) < 0 && errno == ENOENT;
	}
	if (!q->path) {
		seterr(err, errlen, "queue: out of memory");
		goto fail;
	}
	int rc =
	    sqlite3_open_v2(q->path, &q->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		if (!explain_cantopen(q->path, dir, err, errlen))
			db_error(q, rc, err, errlen);
		goto fail;
	}
	sqlite3_extended_result_codes(q->db, 1);
	if (configure(q, err, errlen) < 0 || check_schema(q, err, errlen) < 0)
		goto fail;
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&q->st[i], NULL);
		if (rc != SQLITE_OK) {
			seterr(err, errlen, "%s: not a triggerd queue: %s", q->path,
			       sqlite3_errmsg(q->db));
			goto fail;
		}
	}
	rc = load(q);
	if (rc == -TD_EINVAL) {
		seterr(err, errlen,
		       "%s: corrupt database: an entry has a bad id, function name or "
		       "attempt count",
		       q->path);
		goto fail;
	}
	if (rc == -TD_ENOMEM) {
		seterr(err, errlen, "%s: out of memory loading the queue", q->path);
		goto fail;
	}
	if (rc < 0) {
		db_error(q, sqlite3_extended_errcode(q->db), err, errlen);
		goto fail;
	}
	if (fresh && d == TD_QUEUE_FSYNC)
		sync_dir(dir);
	return q;
fail:
	td_queue_close(q);
	return NULL;
}

void td_queue_close(struct td_queue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->ids_cap; i++)
		if (q->ids[i])
			entry_free(q->ids[i]);
	free(q->ids);
	for (size_t i = 0; i < q->nfns; i++) {
		free(q->fns[i]->name);
		free(q->fns[i]->ready.v);
		free(q->fns[i]->age.v);
		free(q->fns[i]);
	}
	free(q->fns);
	free(q->fnidx);
	free(q->staged);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	/* An open transaction is rolled back: uncommitted changes are discarded. */
	if (q->db && sqlite3_close(q->db) != SQLITE_OK)
		td_logs_error(LOG_SCOPE, "%s: close: %s", q->path, sqlite3_errmsg(q->db));
	free(q->path);
	free(q);
}

/* ---- writes ---- */

int td_queue_push(struct td_queue *q, const struct td_queue_entry *e, long long max_for_function,
		  long long *id)
{
	if (!q || !e || !e->function || !*e->function || (!e->event && e->event_len) ||
	    e->attempts < 0)
		return -TD_EINVAL;
	if (q->broken)
		return -TD_EIO;
	/* The whole row must fit SQLite's length limit; a bad input must not fail the
	 * transaction that the rest of the group shares. */
	size_t limit = (size_t)sqlite3_limit(q->db, SQLITE_LIMIT_LENGTH, -1);
	size_t strs = strlen(e->function) + (e->trigger ? strlen(e->trigger) : 0) +
		      (e->last_error ? strlen(e->last_error) : 0);
	if (e->event_len > limit || strs > limit || e->event_len + strs + 256 > limit) {
		td_logs_error(LOG_SCOPE, "%s: an event of %zu bytes for %s is too large", q->path,
			      e->event_len, e->function);
		return -TD_EINVAL;
	}
	struct qfn *fn = fn_get(q, e->function);
	if (!fn)
		return -TD_ENOMEM;
	if (max_for_function > 0 && fn->depth >= max_for_function)
		return -TD_EFULL;
	if (fn_reserve(fn) < 0 || ids_reserve(q, q->ids_n + 1) < 0 ||
	    reserve((void **)&q->staged, &q->staged_cap, q->nstaged + 1, sizeof *q->staged) < 0)
		return -TD_ENOMEM;
	struct qent *ent = calloc(1, sizeof *ent);
	if (!ent)
		return -TD_ENOMEM;
	int rc = begin(q);
	if (rc < 0) {
		free(ent);
		return rc;
	}
	sqlite3_stmt *st = q->st[ST_INSERT];
	sqlite3_bind_int64(st, 1, q->next_id);
	sqlite3_bind_text(st, 2, e->function, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->trigger, -1, SQLITE_STATIC); /* NULL binds NULL */
	sqlite3_bind_int(st, 4, e->attempts);
	sqlite3_bind_int64(st, 5, e->enqueued_ms);
	sqlite3_bind_int64(st, 6, e->due_ms);
	sqlite3_bind_text(st, 7, e->last_error, -1, SQLITE_STATIC);
	/* An empty event must be an empty blob, not NULL. */
	sqlite3_bind_blob(st, 8, e->event_len ? e->event : "", (int)e->event_len, SQLITE_STATIC);
	if (run(q, ST_INSERT) != SQLITE_DONE) {
		free(ent);
		return write_failed(q, "cannot store an entry");
	}
	ent->id = q->next_id++;
	ent->fn = fn;
	ent->attempts = e->attempts;
	ent->enqueued_ms = e->enqueued_ms;
	ent->due_ms = e->due_ms;
	ent->state = ENT_STAGED;
	ent->ready_pos = NOPOS;
	ids_put(q->ids, q->ids_cap, ent);
	q->ids_n++;
	heap_push(&fn->age, ent);
	fn->depth++;
	q->total++;
	q->staged[q->nstaged++] = ent;
	q->uncommitted++;
	if (id)
		*id = ent->id;
	return 0;
}

int td_queue_commit(struct td_queue *q)
{
	if (!q)
		return -TD_EINVAL;
	if (q->broken)
		return -TD_EIO;
	if (q->lost) {
		/* An earlier call of this group failed and undid it: whatever was staged
		 * after that goes too, so the group fails as a whole. */
		if (q->in_tx)
			undo(q);
		q->lost = false;
		return -TD_EIO;
	}
	if (!q->in_tx)
		return 0;
	if (run(q, ST_COMMIT) != SQLITE_DONE) {
		write_failed(q, "cannot commit");
		q->lost = false;
		return -TD_EIO;
	}
	q->in_tx = false;
	q->uncommitted = 0;
	for (size_t i = 0; i < q->nstaged; i++) {
		struct qent *e = q->staged[i];
		e->state = ENT_READY;
		heap_push(&e->fn->ready, e);
	}
	q->nstaged = 0;
	if (q->total > q->peak)
		q->peak = q->total;
	if (q->total == 0 && q->peak >= DRAINED_BACKLOG) {
		/* A backlog has drained: give its cache pages and freed heap back, so that the
		 * resident size returns to its resting level after a burst. */
		sqlite3_db_release_memory(q->db);
		malloc_trim(0);
		q->peak = 0;
	}
	return 0;
}

/* The leased entry id, or NULL with *rc set. */
static struct qent *leased(struct td_queue *q, long long id, int *rc)
{
	if (!q) {
		*rc = -TD_EINVAL;
		return NULL;
	}
	if (q->broken) {
		*rc = -TD_EIO;
		return NULL;
	}
	struct qent *e = ids_find(q, id);
	if (!e || e->state != ENT_LEASED) {
		*rc = e ? -TD_ESTATE : -TD_ENOTFOUND;
		return NULL;
	}
	return e;
}

/* The lease of e ends and e waits again for take(). */
static void make_ready(struct qent *e)
{
	free(e->lease);
	e->lease = NULL;
	e->state = ENT_READY;
	heap_push(&e->fn->ready, e);
}

int td_queue_complete(struct td_queue *q, long long id)
{
	int rc;
	struct qent *e = leased(q, id, &rc);
	if (!e)
		return rc;
	if ((rc = begin(q)) < 0)
		return rc;
	sqlite3_bind_int64(q->st[ST_DELETE], 1, id);
	if (run(q, ST_DELETE) != SQLITE_DONE)
		return write_failed(q, "cannot remove an entry");
	heap_remove(&e->fn->age, e);
	ids_remove(q, e);
	e->fn->depth--;
	q->total--;
	q->uncommitted++;
	entry_free(e);
	return 0;
}

int td_queue_retry(struct td_queue *q, long long id, long long due_ms, const char *error)
{
	int rc;
	struct qent *e = leased(q, id, &rc);
	if (!e)
		return rc;
	if (e->attempts == INT_MAX)
		return -TD_EINVAL;
	size_t limit = (size_t)sqlite3_limit(q->db, SQLITE_LIMIT_LENGTH, -1);
	if (error && strlen(error) + 256 > limit)
		return -TD_EINVAL;
	if ((rc = begin(q)) < 0)
		return rc;
	sqlite3_stmt *st = q->st[ST_RETRY];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, e->attempts + 1);
	sqlite3_bind_int64(st, 3, due_ms);
	sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
	if (run(q, ST_RETRY) != SQLITE_DONE)
		return write_failed(q, "cannot record a retry");
	e->attempts++;
	e->due_ms = due_ms;
	q->uncommitted++;
	make_ready(e);
	return 0;
}

int td_queue_release(struct td_queue *q, long long id)
{
	int rc;
	struct qent *e = leased(q, id, &rc);
	if (!e)
		return rc;
	make_ready(e);
	return 0;
}

/* ---- reads ---- */

/* Reads e's row and builds its lease. */
static int read_lease(struct td_queue *q, struct qent *e)
{
	sqlite3_stmt *st = q->st[ST_READ];
	sqlite3_bind_int64(st, 1, e->id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (rc == SQLITE_DONE) {
			td_logs_error(LOG_SCOPE, "%s: entry %lld is missing from the database",
				      q->path, e->id);
			return -TD_ENOTFOUND;
		}
		log_db_error(q, "cannot read an entry");
		/* A failed read inside a write transaction may have rolled it back. */
		if (q->in_tx && sqlite3_get_autocommit(q->db))
			undo(q);
		return -TD_EIO;
	}
	const char *trigger = (const char *)sqlite3_column_text(st, 0);
	size_t tlen = trigger ? (size_t)sqlite3_column_bytes(st, 0) : 0;
	const char *error = (const char *)sqlite3_column_text(st, 1);
	size_t elen = error ? (size_t)sqlite3_column_bytes(st, 1) : 0;
	const void *event = sqlite3_column_blob(st, 2);
	size_t vlen = (size_t)sqlite3_column_bytes(st, 2);
	struct lease *l = malloc(sizeof *l + vlen + 1 + tlen + 1 + elen + 1);
	if (!l) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return -TD_ENOMEM;
	}
	char *p = l->data;
	if (vlen)
		memcpy(p, event, vlen);
	p[vlen] = '\0';
	l->pub.event = p;
	l->pub.event_len = vlen;
	p += vlen + 1;
	l->pub.trigger = NULL;
	if (trigger) {
		memcpy(p, trigger, tlen + 1);
		l->pub.trigger = p;
		p += tlen + 1;
	}
	l->pub.last_error = NULL;
	if (error) {
		memcpy(p, error, elen + 1);
		l->pub.last_error = p;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	l->pub.id = e->id;
	l->pub.function = e->fn->name;
	l->pub.attempts = e->attempts;
	l->pub.enqueued_ms = e->enqueued_ms;
	l->pub.due_ms = e->due_ms;
	e->lease = l;
	return 0;
}

int td_queue_take(struct td_queue *q, const char *function, long long now_ms,
		  const struct td_queue_entry **out, int limit)
{
	if (!q || !function || (!out && limit > 0) || limit < 0)
		return -TD_EINVAL;
	if (q->broken)
		return -TD_EIO;
	struct qfn *fn = fn_find(q, function);
	int n = 0;
	while (fn && n < limit && fn->ready.n && fn->ready.v[0]->due_ms <= now_ms) {
		struct qent *e = fn->ready.v[0];
		int rc = read_lease(q, e);
		if (rc == -TD_ENOTFOUND) {
			/* Cannot happen while the file is locked; forget the entry. */
			heap_remove(&fn->ready, e);
			heap_remove(&fn->age, e);
			ids_remove(q, e);
			fn->depth--;
			q->total--;
			entry_free(e);
			continue;
		}
		if (rc < 0)
			return n ? n : rc;
		heap_remove(&fn->ready, e);
		e->state = ENT_LEASED;
		out[n++] = &e->lease->pub;
	}
	return n;
}

long long td_queue_uncommitted(const struct td_queue *q)
{
	return q ? q->uncommitted : 0;
}

long long td_queue_depth(const struct td_queue *q, const char *function)
{
	if (!q)
		return 0;
	if (!function)
		return q->total;
	const struct qfn *fn = fn_find(q, function);
	return fn ? fn->depth : 0;
}

long long td_queue_oldest_ms(const struct td_queue *q, const char *function)
{
	const struct qfn *fn = q && function ? fn_find(q, function) : NULL;
	return fn && fn->age.n ? fn->age.v[0]->enqueued_ms : 0;
}

long long td_queue_next_due_ms(const struct td_queue *q)
{
	long long best = -1;
	for (size_t i = 0; q && i < q->nfns; i++) {
		const struct heap *h = &q->fns[i]->ready;
		if (h->n && (best < 0 || h->v[0]->due_ms < best))
			best = h->v[0]->due_ms;
	}
	return best;
}
