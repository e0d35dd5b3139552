/*
 * pattern_bench: matching throughput of the pattern engine on citylots-shaped events.
 *
 *   pattern_bench [--mix NAME] [--repeat N] [--k 1,10,100] [--expected FILE] RULES EVENTS
 *
 * RULES holds `name<TAB>pattern` lines (bench data from gen_rules.py), EVENTS one JSON
 * event a line (gen_citylots.py). All events are read into memory first. For each K the
 * first K rules are compiled into one set and all events are matched on one thread,
 * REPEAT times; the median rate is reported with the total matches, the events with at
 * least one match and the digest defined in expected_matches.tsv, which are checked
 * against that file (exit status 1 on any difference). jansson's parse-only rate over
 * the same events (json_loadb + json_decref) is printed as a yardstick of machine speed.
 */
#include <triggerd/pattern.h>

#include <jansson.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct line {
	char *s;
	size_t n;
};

struct rule {
	char *name;
	char *pattern;
	size_t plen;
	uint64_t fnv;
};

struct expect {
	char mix[32];
	unsigned k;
	uint64_t matches, matched, digest;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t fnv1a64(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "pattern_bench: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (cap - n < 1 << 20) {
			cap = cap ? cap * 2 : 1 << 22;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = 0;
	*len = n;
	return buf;
}

/* Splits text into lines in place (NUL-terminated, empty lines dropped). */
static struct line *split_lines(char *text, size_t len, size_t *count)
{
	size_t cap = 1024, n = 0;
	struct line *v = malloc(cap * sizeof(*v));
	char *p = text, *end = text + len;
	while (v && p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *e = nl ? nl : end;
		if (e > p) {
			if (n == cap) {
				cap *= 2;
				struct line *nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(v);
					return NULL;
				}
				v = nv;
			}
			*e = 0;
			v[n].s = p;
			v[n].n = (size_t)(e - p);
			n++;
		}
		p = e + 1;
	}
	*count = n;
	return v;
}

static int dbl_order(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), dbl_order);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int load_expected(const char *path, struct expect **out, size_t *count)
{
	size_t len;
	char *text = slurp(path, &len);
	if (!text)
		return -1;
	size_t n;
	struct line *lines = split_lines(text, len, &n);
	struct expect *e = calloc(n ? n : 1, sizeof(*e));
	size_t k = 0;
	for (size_t i = 0; lines && e && i < n; i++) {
		char mix[32];
		unsigned kk;
		uint64_t a, b, d;
		if (lines[i].s[0] == '#')
			continue;
		if (sscanf(lines[i].s, "%31s %u %" SCNu64 " %" SCNu64 " %" SCNx64, mix, &kk, &a, &b,
			   &d) == 5) {
			snprintf(e[k].mix, sizeof(e[k].mix), "%s", mix);
			e[k].k = kk;
			e[k].matches = a;
			e[k].matched = b;
			e[k].digest = d;
			k++;
		}
	}
	free(lines);
	free(text);
	*out = e;
	*count = k;
	return e ? 0 : -1;
}

static const char *guess_mix(const char *path)
{
	if (strstr(path, "portable"))
		return "portable";
	if (strstr(path, "full"))
		return "full";
	return "?";
}

int main(int argc, char **argv)
{
	const char *mix = NULL, *expected = "../shared/bench/expected_matches.tsv";
	const char *klist = "1,10,100,1000,10000";
	int repeat = 5;
	int argi = 1;
	for (; argi < argc && argv[argi][0] == '-' && argv[argi][1] == '-'; argi += 2) {
		if (argi + 1 >= argc)
			goto usage;
		if (strcmp(argv[argi], "--mix") == 0)
			mix = argv[argi + 1];
		else if (strcmp(argv[argi], "--repeat") == 0)
			repeat = atoi(argv[argi + 1]);
		else if (strcmp(argv[argi], "--k") == 0)
			klist = argv[argi + 1];
		else if (strcmp(argv[argi], "--expected") == 0)
			expected = argv[argi + 1];
		else
			goto usage;
	}
	if (argc - argi != 2 || repeat < 1 || repeat > 1000)
		goto usage;
	const char *rules_path = argv[argi], *events_path = argv[argi + 1];
	if (!mix)
		mix = guess_mix(rules_path);

	size_t rlen, elen, nrl, nev;
	char *rtext = slurp(rules_path, &rlen);
	char *etext = slurp(events_path, &elen);
	if (!rtext || !etext)
		return 2;
	struct line *rl = split_lines(rtext, rlen, &nrl);
	struct line *ev = split_lines(etext, elen, &nev);
	struct rule *rules = calloc(nrl ? nrl : 1, sizeof(*rules));
	if (!rl || !ev || !rules)
		return 2;
	for (size_t i = 0; i < nrl; i++) {
		char *tab = strchr(rl[i].s, '\t');
		if (!tab) {
			fprintf(stderr, "pattern_bench: %s:%zu: no tab\n", rules_path, i + 1);
			return 2;
		}
		*tab = 0;
		rules[i].name = rl[i].s;
		rules[i].pattern = tab + 1;
		rules[i].plen = strlen(tab + 1);
		rules[i].fnv = fnv1a64(rules[i].name);
	}
	struct expect *exp = NULL;
	size_t nexp = 0;
	if (load_expected(expected, &exp, &nexp) < 0)
		fprintf(stderr, "pattern_bench: no expected counts from %s\n", expected);

	size_t bytes = 0;
	for (size_t i = 0; i < nev; i++)
		bytes += ev[i].n;
	printf("# %zu events (%.0f bytes on average), %zu rules, mix %s, median of %d runs\n", nev,
	       nev ? (double)bytes / (double)nev : 0.0, nrl, mix, repeat);

	/* yardstick: jansson parse-only */
	double *rates = calloc((size_t)repeat, sizeof(double));
	if (!rates)
		return 2;
	for (int r = 0; r < repeat; r++) {
		double t0 = now();
		for (size_t i = 0; i < nev; i++) {
			json_error_t jerr;
			json_t *j = json_loadb(ev[i].s, ev[i].n, 0, &jerr);
			if (!j) {
				fprintf(stderr, "pattern_bench: event %zu: %s\n", i + 1, jerr.text);
				return 2;
			}
			json_decref(j);
		}
		rates[r] = (double)nev / (now() - t0);
	}
	double yard = median(rates, repeat);
	printf("jansson json_loadb+json_decref: %.0f events/s\n", yard);
	printf("%-8s %6s %12s %9s %10s %8s %10s %16s  %s\n", "mix", "K", "events/s", "xjansson",
	       "matches", "matched", "compile_ms", "digest", "expected");

	int bad = 0;
	for (const char *kp = klist; *kp;) {
		unsigned long k = strtoul(kp, (char **)&kp, 10);
		if (*kp == ',')
			kp++;
		if (k == 0 || k > nrl) {
			fprintf(stderr, "pattern_bench: K=%lu: only %zu rules\n", k, nrl);
			bad = 1;
			continue;
		}
		double t0 = now();
		struct td_pattern_set *set = td_pattern_set_create();
		char err[256];
		for (size_t i = 0; set && i < k; i++) {
			if (td_pattern_set_add(set, (unsigned)i, rules[i].pattern, rules[i].plen,
					       err, sizeof(err)) < 0) {
				fprintf(stderr, "pattern_bench: rule %s: %s\n", rules[i].name, err);
				return 2;
			}
		}
		if (!set || td_pattern_set_compile(set) < 0)
			return 2;
		double compile_ms = (now() - t0) * 1e3;
		struct td_matcher *m = td_matcher_create(set);
		if (!m)
			return 2;
		uint64_t matches = 0, matched = 0, digest = 0;
		for (int r = 0; r < repeat; r++) {
			uint64_t mm = 0, me = 0, dg = 0;
			t0 = now();
			for (size_t i = 0; i < nev; i++) {
				const unsigned *ids;
				int n =
				    td_matcher_match(m, ev[i].s, ev[i].n, &ids, err, sizeof(err));
				if (n < 0) {
					fprintf(stderr, "pattern_bench: event %zu: %s\n", i + 1,
						err);
					return 2;
				}
				mm += (uint64_t)n;
				me += n > 0;
				for (int j = 0; j < n; j++)
					dg += rules[ids[j]].fnv * (uint64_t)(i + 1);
			}
			rates[r] = (double)nev / (now() - t0);
			if (r > 0 && (mm != matches || me != matched || dg != digest)) {
				fprintf(stderr, "pattern_bench: K=%lu: runs disagree\n", k);
				bad = 1;
			}
			matches = mm;
			matched = me;
			digest = dg;
		}
		const char *verdict = "no expectation";
		for (size_t i = 0; i < nexp; i++) {
			if (exp[i].k != k || strcmp(exp[i].mix, mix) != 0)
				continue;
			int ok = exp[i].matches == matches && exp[i].matched == matched &&
				 exp[i].digest == digest;
			verdict = ok ? "agree" : "DIFFER";
			if (!ok) {
				bad = 1;
				fprintf(stderr,
					"pattern_bench: %s K=%lu expected %" PRIu64 " %" PRIu64
					" %016" PRIx64 "\n",
					mix, k, exp[i].matches, exp[i].matched, exp[i].digest);
			}
		}
		double rate = median(rates, repeat);
		printf("%-8s %6lu %12.0f %9.1f %10" PRIu64 " %8" PRIu64 " %10.1f %016" PRIx64
		       "  %s\n",
		       mix, k, rate, rate / yard, matches, matched, compile_ms, digest, verdict);
		fflush(stdout);
		td_matcher_destroy(m);
		td_pattern_set_destroy(set);
	}
	free(rates);
	free(exp);
	free(rules);
	free(rl);
	free(ev);
	free(rtext);
	free(etext);
	return bad;
usage:
	fprintf(stderr, "usage: pattern_bench [--mix NAME] [--repeat N] [--k 1,10,...] "
			"[--expected FILE] RULES EVENTS\n");
	return 2;
}
