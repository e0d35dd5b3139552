/*
 * Internals of the EventBridge pattern engine, shared by the router/pattern_*.c files
 * and by nothing else (the public contract is include/triggerd/pattern.h).
 *
 * The engine in one paragraph. td_pattern_set_add() parses a pattern (pattern_json.c),
 * validates it and expands every "$or" into plain conjunctions, the "branches" of the
 * rule (pattern_compile.c). A branch is a list of conditions, one per named path; a
 * condition is the array of alternatives the pattern gave for that path (a "leaf").
 * Paths go into one trie of object keys, the field tree: a trie node that ends a path
 * is a "field". td_pattern_set_compile() turns the enumerable alternatives (exact
 * values, prefixes, suffixes, case-insensitive values, wildcards, numeric ranges,
 * CIDR blocks) into per-field indexes: one hash table over (field, kind, bytes) and an
 * interval index per field for numbers and IP addresses. Each (branch, enumerable
 * condition) pair is a "slot". Matching (pattern_match.c) scans the event once,
 * descending only into keys the field tree names and skipping every other subtree
 * with a SIMD bracket counter; each leaf value found at a field is looked up in that
 * field's indexes, which yields the slots it satisfies; a branch whose every
 * enumerable condition is satisfied becomes a candidate. Conditions that cannot be
 * enumerated (anything-but, exists) are checked only for candidates; branches made
 * only of such conditions are triggered by the presence of a field (or, for
 * exists:false alone, by every event). Candidates with several conditions inside
 * arrays are checked for array consistency last. The cost per event follows the
 * event's size and the number of satisfied conditions, not the number of rules.
 *
 * Threads: everything here follows pattern.h (a compiled set is immutable).
 */
#ifndef TRIGGERD_PATTERN_INTERNAL_H
#define TRIGGERD_PATTERN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Limits, each reported with a message when a pattern exceeds it. */
#define TD_PAT_MAX_DEPTH    64	 /* object nesting in a pattern */
#define TD_PAT_MAX_BRANCHES 1024 /* conjunctions one pattern expands to through $or */
#define TD_PAT_MAX_CONDS    64	 /* conditions in one conjunction */
#define TD_PAT_EVENT_DEPTH  1024 /* nesting along the paths an event scan descends */

typedef unsigned __int128 td_pat_u128;

/* ---- pattern JSON (pattern_json.c): a small DOM that keeps number text ---- */

enum td_pj_type {
	TD_PJ_NULL,
	TD_PJ_TRUE,
	TD_PJ_FALSE,
	TD_PJ_NUMBER,
	TD_PJ_STRING,
	TD_PJ_ARRAY,
	TD_PJ_OBJECT,
};

struct td_pj_member;

struct td_pj {
	enum td_pj_type type;
	int line, col;		      /* where the value starts, 1-based */
	size_t len;		      /* string/number: bytes; array/object: element count */
	char *str;		      /* string: decoded UTF-8, NUL-terminated; number: text */
	struct td_pj *items;	      /* array elements */
	struct td_pj_member *members; /* object members, in document order */
};

struct td_pj_member {
	char *key; /* decoded, NUL-terminated (may hold NUL bytes: use klen) */
	size_t klen;
	struct td_pj value;
};

/* Parses one JSON value filling the whole text; NULL and a message on error. */
struct td_pj *td_pj_parse(const char *text, size_t len, char *err, size_t errlen);
void td_pj_free(struct td_pj *v);
const char *td_pj_type_name(enum td_pj_type t);

/* ---- shared helpers (pattern_util.c) ---- */

static inline uint64_t td_pat_mum(uint64_t a, uint64_t b)
{
	td_pat_u128 r = (td_pat_u128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t td_pat_r8(const unsigned char *s)
{
	uint64_t v;
	memcpy(&v, s, 8);
	return v;
}

static inline uint64_t td_pat_r4(const unsigned char *s)
{
	uint32_t v;
	memcpy(&v, s, 4);
	return v;
}

/*
 * 64-bit hash of n bytes, inline because it runs for every value an event offers.
 * Short keys are read with overlapping loads (no byte loops, no partial copies that
 * would stall store forwarding) and mixed with 128-bit multiplies.
 */
static inline uint64_t td_pat_hash(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t a, b;
	seed ^= 0xa0761d6478bd642fULL;
	if (n <= 16) {
		if (n >= 8) {
			a = td_pat_r8(s);
			b = td_pat_r8(s + n - 8);
		} else if (n >= 4) {
			a = td_pat_r4(s);
			b = td_pat_r4(s + n - 4);
		} else if (n > 0) {
			a = (uint64_t)s[0] << 16 | (uint64_t)s[n >> 1] << 8 | s[n - 1];
			b = 0;
		} else {
			a = b = 0;
		}
	} else {
		size_t i = n;
		while (i > 16) {
			seed = td_pat_mum(td_pat_r8(s) ^ 0xe7037ed1a0b428dbULL,
					  td_pat_r8(s + 8) ^ seed);
			s += 16;
			i -= 16;
		}
		a = td_pat_r8(s + i - 16);
		b = td_pat_r8(s + i - 8);
	}
	return td_pat_mum(0xe7037ed1a0b428dbULL ^ n,
			  td_pat_mum(a ^ 0x8ebc6af09c88c6e3ULL, b ^ seed));
}

/* The hash of a number key through its 64-bit digest (see td_pat_num_key). */
static inline uint64_t td_pat_hash_u64(uint64_t v, uint64_t seed)
{
	return td_pat_mum(v ^ 0x8ebc6af09c88c6e3ULL, seed ^ 0xa0761d6478bd642fULL);
}

/* Equal byte strings? Short ones compare with word loads, no call. */
static inline int td_pat_eq(const char *a, const char *b, size_t n)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	if (n >= 8) {
		if (n <= 16)
			return td_pat_r8(x) == td_pat_r8(y) &&
			       td_pat_r8(x + n - 8) == td_pat_r8(y + n - 8);
		if (n <= 32)
			return td_pat_r8(x) == td_pat_r8(y) &&
			       td_pat_r8(x + 8) == td_pat_r8(y + 8) &&
			       td_pat_r8(x + n - 16) == td_pat_r8(y + n - 16) &&
			       td_pat_r8(x + n - 8) == td_pat_r8(y + n - 8);
		return memcmp(a, b, n) == 0;
	}
	if (n >= 4)
		return td_pat_r4(x) == td_pat_r4(y) && td_pat_r4(x + n - 4) == td_pat_r4(y + n - 4);
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

/* Order-preserving map of doubles (-0 folded into +0) onto unsigned integers. */
static inline uint64_t td_pat_double_key(double d)
{
	uint64_t b;
	if (d == 0)
		d = 0.0;
	memcpy(&b, &d, 8);
	return (b >> 63) ? ~b : (b | 0x8000000000000000ULL);
}

/*
 * A JSON number's exact decimal value as hashable bytes: equal values (3, 3.0, 30e-1,
 * -0 and 0) give equal keys. out needs TD_PAT_NUMKEY_MAX(len) bytes. The text must be
 * a valid JSON number.
 */
#define TD_PAT_NUMKEY_MAX(len) ((len) + 16)
size_t td_pat_num_key(const char *s, size_t n, unsigned char *out);
/* A JSON number's parts when it has at most 19 significant digits (ok = 1). */
struct td_pat_dec {
	uint64_t mant; /* significant digits, trailing zeros removed */
	long long exp; /* value = mant * 10^exp */
	unsigned nd;   /* digits in mant */
	int neg, ok;
};
size_t td_pat_num_key_dec(const struct td_pat_dec *d, unsigned char *out, uint64_t *digest);
/* The double of a number whose parts are known; s/n is its text for the slow cases. */
double td_pat_num_double_dec(const struct td_pat_dec *d, const char *s, size_t n);

/* A 64-bit digest of a number key, cheap to compute while making it: the hash tables
 * hash number keys through it (td_pat_hash_u64). */
uint64_t td_pat_num_digest(const unsigned char *key, size_t len);
/* td_pat_num_key() and td_pat_num_digest() in one pass. */
size_t td_pat_num_key_digest(const char *s, size_t n, unsigned char *out, uint64_t *digest);
/* The nearest double (overflow gives an infinity); the text must be a valid number. */
double td_pat_num_double(const char *s, size_t n);

/* Case folding per code point; returns the folded length or (size_t)-1 when out is
 * too small or s is not valid UTF-8. 2*n+4 bytes of out are always enough. */
size_t td_pat_fold(const char *s, size_t n, char *out, size_t cap);

/* Valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF)? */
int td_pat_utf8_valid(const char *s, size_t n);

/* Wildcard pattern (raw operand text: "*" any run, "\*" and "\\" literal) vs s. */
int td_pat_glob(const char *pat, size_t plen, const char *s, size_t n);

/* IP address text to a 128-bit number; returns 4 or 6 (the family) or 0. */
int td_pat_ip_parse(const char *s, size_t n, td_pat_u128 *out);

/* ---- compiled set ---- */

enum td_pat_op {
	TD_OP_EXACT_STR,
	TD_OP_EXACT_NUM, /* str holds the number key */
	TD_OP_EXACT_LIT, /* lit is 't', 'f' or 'n' */
	TD_OP_PREFIX,
	TD_OP_SUFFIX,
	TD_OP_EQ_IC, /* str holds the folded operand */
	TD_OP_PREFIX_IC,
	TD_OP_SUFFIX_IC,
	TD_OP_WILDCARD, /* str holds the raw wildcard text */
	TD_OP_NUMERIC,	/* closed interval [lo, hi] of td_pat_double_key() values */
	TD_OP_CIDR,	/* closed interval of addresses, family 4 or 6 */
	TD_OP_EXISTS_TRUE,
	TD_OP_EXISTS_FALSE,
	TD_OP_AB_STRS, /* anything-but: set holds sorted strings */
	TD_OP_AB_NUMS, /* anything-but: set holds sorted number keys */
	TD_OP_AB_PREFIX,
	TD_OP_AB_SUFFIX,
	TD_OP_AB_IC,	   /* set holds sorted folded strings */
	TD_OP_AB_WILDCARD, /* set holds wildcard texts */
};

struct td_pat_bytes {
	char *s;
	size_t n;
};

struct td_pat_alt {
	uint8_t op;
	uint8_t lit;
	uint8_t family;
	char *str;
	size_t len;
	struct td_pat_bytes *set;
	size_t nset;
	td_pat_u128 lo, hi;
};

/* A condition's alternatives (the array a pattern gives for one path). */
struct td_pat_leaf {
	struct td_pat_alt *alts;
	uint32_t nalt;
	uint8_t enumerable;  /* every alternative is indexable */
	uint8_t absent_ok;   /* an exists:false alternative: satisfied by absence */
	uint8_t any_present; /* an exists:true alternative: any value satisfies */
};

struct td_pat_cond {
	uint32_t field;
	uint32_t leaf;
	uint32_t slot;	/* TD_PAT_NONE for a checked (non-enumerable) condition */
	uint32_t check; /* checked condition: one id per distinct (field, leaf content), so
			   that an event evaluates each only once however many rules share it */
};

enum td_pat_trigger { TD_TRIG_COUNT, TD_TRIG_PRESENCE, TD_TRIG_ALWAYS };

struct td_pat_branch {
	uint32_t rule; /* caller id until compile, dense rule index after */
	uint32_t cond_off, ncond;
	uint32_t n_enum;	 /* enumerable conditions: the count that makes it a candidate */
	uint32_t presence_field; /* TD_TRIG_PRESENCE: the field whose value triggers it */
	uint8_t trigger;
	uint8_t nchecked; /* conditions to verify on candidates */
};

#define TD_PAT_NONE   UINT32_MAX
#define TD_PAT_RECORD 0x80000000u /* slot_info: keep the values (array consistency) */

/* The tag of a hash kept beside each table entry: a lookup that misses usually
 * touches only this small array. */
static inline uint16_t td_pat_tag(uint64_t h)
{
	return (uint16_t)((h >> 48) | 1);
}

/* Hash kinds: what the bytes of a hash entry mean. */
enum td_pat_kind {
	TD_K_STR,
	TD_K_NUM,
	TD_K_LIT,
	TD_K_PFX,
	TD_K_SFX,
	TD_K_IC,
	TD_K_PFX_IC,
	TD_K_SFX_IC,
	TD_K_WC,
	TD_K_COUNT
};

struct td_pat_hent {
	uint64_t h;
	uint32_t field;
	uint32_t kind;
	uint32_t key_off, key_len; /* into set->keys */
	uint32_t list_off;	   /* into set->lists */
	uint32_t list_n;	   /* | TD_PAT_RECORD when a slot in the list keeps its values */
};

/* Stabbing index over closed intervals: which intervals hold a point. */
/*
 * Stabbing index over closed intervals: which intervals hold a point. The distinct ends
 * cut the line into units (2i+1 is the point pts[i], 2i the gap below it, 2n above the
 * last). When the intervals cover few units in total each unit keeps its own list
 * (flat); otherwise a segment tree over the units keeps each interval in O(log n) nodes.
 */
struct td_pat_ivx {
	td_pat_u128 *pts; /* sorted distinct interval ends */
	uint64_t *pts64;  /* the same, when every end fits in 64 bits (numbers, IPv4) */
	uint32_t npts;
	uint32_t flat;
	uint32_t size;	    /* segment tree: leaves (a power of two) */
	uint32_t *node_off; /* flat: 2*npts+2 offsets per unit; tree: 2*size+1 per node */
	uint32_t *ids;	    /* slot ids */
	td_pat_u128 min, max;
};

/* Field flags: which lookups a value at the field needs. */
enum {
	TD_F_STR = 1u << 0,
	TD_F_NUM = 1u << 1,
	TD_F_LIT = 1u << 2,
	TD_F_PFX = 1u << 3,
	TD_F_SFX = 1u << 4,
	TD_F_IC = 1u << 5,
	TD_F_PFX_IC = 1u << 6,
	TD_F_SFX_IC = 1u << 7,
	TD_F_WC = 1u << 8,
	TD_F_RANGE = 1u << 9,
	TD_F_CIDR = 1u << 10,
	TD_F_FOLD = TD_F_IC | TD_F_PFX_IC | TD_F_SFX_IC,
};

struct td_pat_field {
	uint32_t flags;
	/* distinct operand lengths per prefix-like kind, ascending, into set->lens */
	uint32_t lens_off[TD_K_COUNT], nlens[TD_K_COUNT];
	struct td_pat_ivx *num, *cidr4, *cidr6;
	uint32_t presence_off, presence_n; /* branches triggered by this field's presence */
};

struct td_pat_child {
	uint64_t h;
	char *key;
	uint32_t klen;
	uint32_t node;
};

/* Small nodes are searched linearly, larger ones through tab (open addressing). */
#define TD_PAT_LINEAR_CHILDREN 6

struct td_pat_node {
	uint32_t field; /* TD_PAT_NONE when no pattern ends here */
	uint32_t nchild, cap;
	struct td_pat_child *child; /* compact list */
	uint32_t *tab;		    /* child index + 1, or 0; mask + 1 entries */
	uint32_t mask;
};

struct td_pat_wc {
	char *pat; /* raw operand text */
	size_t len;
	uint32_t slot;
};

struct td_pattern_set {
	int compiled;
	/* field tree; node 0 is the event's top-level object */
	struct td_pat_node *nodes;
	uint32_t nnodes, cap_nodes;
	struct td_pat_field *fields;
	uint32_t nfields, cap_fields;
	/* rules as given, and their conjunctions */
	struct td_pat_branch *branches;
	uint32_t nbranches, cap_branches;
	struct td_pat_cond *conds;
	uint32_t nconds, cap_conds;
	struct td_pat_leaf *leaves;
	uint32_t nleaves, cap_leaves;
	uint32_t nslots;
	uint32_t nchecks;
	/* after compile */
	uint32_t *slot_info;   /* branch | TD_PAT_RECORD when its values must be kept */
	uint32_t *branch_need; /* n_enum per branch, packed for the matcher */
	unsigned *rule_ids;    /* dense rule index -> caller id, ascending */
	uint32_t nrules;
	struct td_pat_hent *table;
	uint16_t *tags; /* per table entry: 0 when free, else a nonzero 16-bit hash tag */
	uint32_t table_mask;
	char *keys;
	uint32_t *lists;
	uint32_t *lens;
	struct td_pat_wc *wcs;
	uint32_t nwcs;
	uint32_t *presence;
	uint32_t *always;
	uint32_t nalways;
	int track_arrays; /* some branch has two or more conditions */
};

/* Direct test of one alternative against one leaf value (used for checked conditions). */
enum td_pat_vtype { TD_V_STRING, TD_V_NUMBER, TD_V_TRUE, TD_V_FALSE, TD_V_NULL };
int td_pat_alt_match(const struct td_pat_alt *a, int vtype, const char *s, size_t n, char *tmp,
		     size_t tmpcap);

/* Interval index (pattern_compile.c builds it, pattern_match.c queries it). */
struct td_pat_ivx_item {
	td_pat_u128 lo, hi;
	uint32_t id;
};
struct td_pat_ivx *td_pat_ivx_build(const struct td_pat_ivx_item *items, size_t n);
void td_pat_ivx_free(struct td_pat_ivx *x);

#endif
