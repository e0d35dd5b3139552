/*
 * The bounded answer body of triggerctl's HTTP commands (see http_body.h).
 */
#include "http_body.h"

#include <stdlib.h>
#include <string.h>

size_t cli_body_write(char *p, size_t size, size_t n, void *arg)
{
	struct cli_body *b = arg;
	size_t add = size * n;
	if (b->len + add > (size_t)CLI_BODY_MAX) {
		b->too_large = true;
		return 0;
	}
	char *bigger = realloc(b->data, b->len + add + 1);
	if (!bigger)
		return 0;
	b->data = bigger;
	memcpy(b->data + b->len, p, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}
