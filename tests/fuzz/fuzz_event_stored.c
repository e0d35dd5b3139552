/*
 * libFuzzer target for the stored form of an event (td_event_decode), which the durable
 * queue reads back from its file: a damaged file must give an error, never a crash or
 * a read out of bounds. Inputs go in as they are (the JSON form and the stored form are
 * told apart by the first byte) and, when the first byte is odd, behind a valid stored
 * header, so most inputs reach the binary reader. Every event that decodes must encode
 * to bytes that decode to an equal event of the same payload kind, and encode again to
 * the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/event.h>

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_event_stored: %s\n", what);                          \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	unsigned char *input = malloc(size + 2);
	size_t len = size;

	CHECK(input, "out of memory");
	if (size && (data[0] & 1)) {
		input[0] = 0x00;
		input[1] = 0x01;
		memcpy(input + 2, data + 1, size - 1);
		len = size + 1;
	} else if (size) {
		memcpy(input, data, size);
	}
	struct td_event *ev = td_event_decode(input, len, err, sizeof(err));
	free(input);
	if (!ev) {
		CHECK(err[0] != '\0', "refused without a reason");
		return 0;
	}
	CHECK(td_event_validate(ev, err, sizeof(err)) == 0, "decoded an invalid event");
	size_t n1, n2;
	char *a = td_event_encode(ev, &n1);
	CHECK(a, "encode failed");
	struct td_event *back = td_event_decode(a, n1, err, sizeof(err));
	CHECK(back, "the encoded form is refused");
	CHECK(td_event_equal(ev, back), "encode/decode changed the event");
	CHECK(td_event_data_kind(ev) == td_event_data_kind(back), "the payload kind changed");
	char *b = td_event_encode(back, &n2);
	CHECK(b && n1 == n2 && memcmp(a, b, n1) == 0, "encoding is not stable");
	free(a);
	free(b);
	td_event_unref(back);
	td_event_unref(ev);
	return 0;
}
