/*
 * libFuzzer target: the input is a pattern text. td_pattern_validate() and
 * td_pattern_set_add() must agree, reject bad input with a message (never crash, never
 * read outside the text), and a pattern they accept must compile and match a few
 * events, among them the input itself read as an event.
 */
#include <triggerd/errors.h>
#include <triggerd/pattern.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const events[] = {
    "{}",
    "{\"a\":\"x\",\"b\":1,\"c\":{\"d\":[true,null,\"10.0.0.1\",{\"e\":-2.5e3}]}}",
    "{\"detail\":{\"size\":5,\"state\":\"running\",\"ip\":\"2001:db8::1\"},\"a\":[]}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so that any read past the end is caught by ASan */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	char err1[256], err2[256];
	memset(err1, 0x55, sizeof(err1));
	int v = td_pattern_validate(text, size, err1, sizeof(err1));
	struct td_pattern_set *set = td_pattern_set_create();
	if (!set)
		goto out;
	int a = td_pattern_set_add(set, 1, text, size, err2, sizeof(err2));
	if (v != a)
		abort();
	if (v < 0) {
		/* a message, NUL-terminated inside the buffer, that says where */
		if (!memchr(err1, 0, sizeof(err1)) || err1[0] == 0 || strcmp(err1, err2) != 0)
			abort();
		if (v == -TD_EINVAL && strncmp(err1, "at ", 3) != 0 &&
		    strncmp(err1, "pattern: ", 9) != 0)
			abort();
	}
	if (td_pattern_set_add(set, 2, "{\"a\":[\"x\"]}", 11, NULL, 0) != 0)
		abort();
	if (td_pattern_set_compile(set) != 0)
		abort();
	struct td_matcher *m = td_matcher_create(set);
	if (!m)
		abort();
	for (size_t i = 0; i <= sizeof(events) / sizeof(events[0]); i++) {
		const char *ev = i < sizeof(events) / sizeof(events[0]) ? events[i] : text;
		size_t len = i < sizeof(events) / sizeof(events[0]) ? strlen(ev) : size;
		for (int strict = 0; strict < 2; strict++) {
			const unsigned *ids;
			td_matcher_set_strict(m, strict);
			int n = td_matcher_match(m, ev, len, &ids, err1, sizeof(err1));
			if (n < -TD_ENOMEM || n > 2)
				abort();
			for (int k = 1; k < n; k++)
				if (ids[k - 1] >= ids[k])
					abort();
		}
	}
	td_matcher_destroy(m);
out:
	td_pattern_set_destroy(set);
	free(text);
	return 0;
}
