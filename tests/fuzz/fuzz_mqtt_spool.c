/*
 * libFuzzer target for the MQTT spool's record reader (td_mqtt_spool_parse), which reads
 * segment files back after a crash: damaged bytes must give an error with an offset,
 * never a crash or a read out of bounds. The valid prefix it reports must parse cleanly
 * again with the same rows, every row it hands out must lie inside the input, and its
 * reply topic, when there is one, must be a C string inside the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../connectors/mqtt_spool.h"

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_mqtt_spool: %s\n", what);                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct bounds {
	const uint8_t *lo, *hi;
	int rows, removed;
};

static int inside(const struct bounds *b, const void *p, size_t n)
{
	const uint8_t *q = p;
	return q >= b->lo && q <= b->hi && n <= (size_t)(b->hi - q);
}

static int on_row(void *arg, const struct td_mqtt_spooled *m, size_t offset, size_t len)
{
	struct bounds *b = arg;
	CHECK(m->id > 0, "a row without an id");
	CHECK(offset + len <= (size_t)(b->hi - b->lo), "a record beyond the input");
	CHECK(inside(b, m->event, m->event_len), "an event outside the input");
	if (m->correlation)
		CHECK(inside(b, m->correlation, m->correlation_len),
		      "correlation data outside the input");
	if (m->reply_topic)
		CHECK(inside(b, m->reply_topic, strlen(m->reply_topic) + 1),
		      "a reply topic outside the input");
	b->rows++;
	return 0;
}

static int on_removed(void *arg, long long id)
{
	struct bounds *b = arg;
	CHECK(id >= 0, "a negative removed id");
	b->removed++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	CHECK(copy, "out of memory");
	if (size)
		memcpy(copy, data, size);
	struct bounds b = {copy, copy + size, 0, 0};
	char err[256] = "";
	size_t valid = 0;
	int rc = td_mqtt_spool_parse(copy, size, on_row, on_removed, &b, &valid, err, sizeof err);
	CHECK(valid <= size, "a valid prefix longer than the input");
	if (rc == 0)
		CHECK(valid == size, "accepted without reading everything");
	else
		CHECK(err[0] != '\0' && strstr(err, "at byte"), "refused without saying where");
	struct bounds again = {copy, copy + size, 0, 0};
	size_t valid2 = 0;
	CHECK(td_mqtt_spool_parse(copy, valid, on_row, on_removed, &again, &valid2, err,
				  sizeof err) == 0,
	      "the valid prefix does not parse");
	CHECK(valid2 == valid && again.rows == b.rows && again.removed == b.removed,
	      "the valid prefix reads differently");
	free(copy);
	return 0;
}
