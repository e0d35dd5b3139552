/*
 * Unit tests for the envelope (router/event.c): the CloudEvents conformance cases read
 * from the shared samples (TD_SAMPLES, default ../shared/samples), attribute rules as
 * tables (extension names, RFC 3339 times, RFC 2046 media types, URIs, Strings,
 * Integers), payload classification, both JSON forms byte for byte, structured JSON in,
 * HTTP binary and structured mode in and out, round trips, and the reference count
 * under threads.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>

#include "../../router/json.h"

/* Helpers */

static struct td_event *base_event(void)
{
	struct td_event *ev = td_event_create();

	cr_assert_not_null(ev);
	cr_assert_eq(td_event_set(ev, "id", "1"), 0);
	cr_assert_eq(td_event_set(ev, "source", "/s"), 0);
	cr_assert_eq(td_event_set(ev, "type", "t"), 0);
	return ev;
}

static struct td_event *parse_ok(const char *text)
{
	char err[256] = "";
	struct td_event *ev = td_event_from_json(text, strlen(text), err, sizeof(err));

	cr_assert_not_null(ev, "from_json failed: %s\n  on %s", err, text);
	return ev;
}

static void parse_fails(const char *text, const char *words)
{
	char err[256] = "";
	struct td_event *ev = td_event_from_json(text, strlen(text), err, sizeof(err));

	cr_expect_null(ev, "accepted: %s", text);
	td_event_unref(ev);
	cr_expect(strstr(err, words) != NULL, "message \"%s\" lacks \"%s\"\n  for %s", err, words,
		  text);
}

#define MAX_HDRS 64

struct hdrs {
	size_t n;
	char *name[MAX_HDRS];
	char *value[MAX_HDRS];
	struct td_http_header h[MAX_HDRS];
};

static void collect(void *arg, const char *name, const char *value)
{
	struct hdrs *hs = arg;

	cr_assert_lt(hs->n, MAX_HDRS);
	hs->name[hs->n] = strdup(name);
	hs->value[hs->n] = strdup(value);
	hs->h[hs->n].name = hs->name[hs->n];
	hs->h[hs->n].value = hs->value[hs->n];
	hs->n++;
}

static void hdrs_free(struct hdrs *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		free(hs->name[i]);
		free(hs->value[i]);
	}
	hs->n = 0;
}

static const char *hdr(const struct hdrs *hs, const char *name)
{
	for (size_t i = 0; i < hs->n; i++)
		if (strcmp(hs->name[i], name) == 0)
			return hs->value[i];
	return NULL;
}

static void expect_json_eq(const char *got, const char *want)
{
	json_error_t e1, e2;
	json_t *a = json_loads(got, 0, &e1), *b = json_loads(want, 0, &e2);

	cr_assert_not_null(a, "not JSON: %s (%s)", got, e1.text);
	cr_assert_not_null(b, "test bug: %s (%s)", want, e2.text);
	cr_expect(json_equal(a, b), "got  %s\nwant %s", got, want);
	json_decref(a);
	json_decref(b);
}

/* Conformance data */

static json_t *load_samples(const char *file)
{
	const char *dir = getenv("TD_SAMPLES");
	char path[1024];
	json_error_t jerr;
	json_t *root;

	if (!dir || !*dir)
		dir = "../shared/samples";
	snprintf(path, sizeof(path), "%s/cloudevents/%s", dir, file);
	root = json_load_file(path, 0, &jerr);
	cr_assert_not_null(root,
			   "cannot read the CloudEvents conformance data %s: %s (set TD_SAMPLES to "
			   "the samples folder, default ../shared/samples from the repository)",
			   path, jerr.text);
	cr_assert(json_is_array(json_object_get(root, "tests")), "%s has no \"tests\" array", path);
	cr_assert_gt(json_array_size(json_object_get(root, "tests")), 0, "%s has no cases", path);
	return root;
}

Test(event, conformance_valid_events)
{
	json_t *root = load_samples("valid-events.json"), *t;
	size_t i, n = 0;

	json_array_foreach(json_object_get(root, "tests"), i, t)
	{
		const char *id = json_string_value(json_object_get(t, "id"));
		char *text = json_dumps(json_object_get(t, "event"), JSON_COMPACT);
		char err[256] = "", *out;
		struct td_event *ev, *back;

		cr_assert_not_null(text, "case %zu has no event", i);
		ev = td_event_from_json(text, strlen(text), err, sizeof(err));
		cr_expect_not_null(ev, "valid case %s refused: %s", id, err);
		if (ev) {
			cr_expect_eq(td_event_validate(ev, err, sizeof(err)), 0, "%s: %s", id, err);
			out = td_event_to_json(ev, NULL);
			cr_assert_not_null(out);
			back = td_event_from_json(out, strlen(out), err, sizeof(err));
			cr_expect(back && td_event_equal(ev, back), "%s: round trip: %s", id, out);
			td_event_unref(back);
			free(out);
			n++;
		}
		td_event_unref(ev);
		free(text);
	}
	cr_log_info("event: %zu valid CloudEvents conformance cases accepted", n);
	cr_expect_eq(n, json_array_size(json_object_get(root, "tests")));
	json_decref(root);
}

/* What the message of each known invalid case must mention. */
static const struct {
	const char *id;
	const char *words;
} invalid_words[] = {
    {"invalidNoSpecVersion", "missing required attribute \"specversion\""},
    {"invalidNoId", "missing required attribute \"id\""},
    {"invalidNoType", "missing required attribute \"type\""},
    {"invalidNoSource", "missing required attribute \"source\""},
    {"invalidTimeGarbage", "RFC 3339"},
    {"invalidTimeToMinute", "':' and seconds after the minutes"},
    {"invalidTimeOffsetX", "time offset"},
    {"invalidTimeOffsetOutOfRange", "offset hour"},
    {"invalidTimeOffsetNonInteger", "offset hour"},
    {"invalidTimeOffsetHourOnly", "':' in the offset"},
    {"invalidEmptyId", "attribute \"id\": must not be empty"},
    {"invalidEmptyType", "attribute \"type\": must not be empty"},
    {"invalidEmptySource", "attribute \"source\": must not be empty"},
    {"invalidEmptySpecVersion", "only \"1.0\""},
    {"invalidUnknownSpecVersion", "only \"1.0\""},
    {"invalidNonRfc2046DataContentType", "RFC 2046"},
    {"invalidEmptyDataContentType", "must not be empty"},
    {"invalidEmptyDataSchema", "must not be empty"},
    {"invalidEmptySubject", "must not be empty"},
    {"invalidNumericId", "attribute \"id\" must be a string, found a number"},
    {"invalidObjectId", "attribute \"id\" must be a string, found an object"},
    {"invalidCapitalizedExtension", "invalid attribute name \"MyExtension\""},
    {"invalidPunctuatedExtension", "invalid attribute name \"my.extension\""},
    {"invalidNonIntegerExtensionValue", "invalid attribute name"},
    {"invalidBothDataAndDataBase64", "must not both be present"},
};

Test(event, conformance_invalid_events)
{
	json_t *root = load_samples("invalid-events.json"), *t;
	size_t i, n = 0, named = 0;

	json_array_foreach(json_object_get(root, "tests"), i, t)
	{
		const char *id = json_string_value(json_object_get(t, "id"));
		char *text = json_dumps(json_object_get(t, "event"), JSON_COMPACT);
		char err[256] = "";
		struct td_event *ev;

		cr_assert_not_null(text, "case %zu has no event", i);
		ev = td_event_from_json(text, strlen(text), err, sizeof(err));
		cr_expect_null(ev, "invalid case %s accepted", id);
		cr_expect_neq(err[0], '\0', "invalid case %s: no message", id);
		for (size_t k = 0; id && k < sizeof(invalid_words) / sizeof(invalid_words[0]);
		     k++) {
			if (strcmp(invalid_words[k].id, id) != 0)
				continue;
			named++;
			cr_expect(strstr(err, invalid_words[k].words) != NULL,
				  "%s: message \"%s\" lacks \"%s\"", id, err,
				  invalid_words[k].words);
		}
		n += ev == NULL;
		td_event_unref(ev);
		free(text);
	}
	cr_log_info("event: %zu invalid CloudEvents conformance cases refused (%zu with checked "
		    "messages)",
		    n, named);
	cr_expect_eq(n, json_array_size(json_object_get(root, "tests")));
	json_decref(root);
}

/* Attribute rules */

Test(event, extension_names)
{
	static const char *const good[] = {"a", "z9", "0", "kafkatopic", "abcdefghij0123456789"};
	static const char *const bad[] = {
	    "",		"A",  "MyExt", "my.ext", "my-ext",     "my_ext", "abcdefghij0123456789x",
	    "\xc3\xa9", " a", "a b",   "data",	 "data_base64"};
	struct td_event *ev = base_event();
	const char *name, *value;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_expect_eq(td_event_set(ev, good[i], "v"), 0, "good name \"%s\"", good[i]);
		cr_expect_str_eq(td_event_get(ev, good[i]), "v");
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(td_event_set(ev, bad[i], "v"), -TD_EINVAL, "bad name \"%s\"", bad[i]);
		cr_expect_null(td_event_get(ev, bad[i]));
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert(td_event_extension(ev, i, &name, &value));
		cr_expect_str_eq(name, good[i], "in the order set");
	}
	cr_expect_not(td_event_extension(ev, 5, &name, &value));
	cr_expect_eq(td_event_set(ev, NULL, "v"), -TD_EINVAL);
	td_event_unref(ev);
}

struct check_case {
	const char *value;
	const char *words; /* NULL: valid */
};

static void check_attr_table(const char *attr, const struct check_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct td_event *ev = base_event();
		char text[512], err[256] = "";
		struct td_event *parsed;
		json_t *s = json_string(cases[i].value);
		char *quoted = json_dumps(s, JSON_ENCODE_ANY);
		int rc = td_event_set(ev, attr, cases[i].value);

		/* the setter and the JSON reader agree, and the reader says why */
		snprintf(text, sizeof(text),
			 "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
			 "\"%s\":%s}",
			 attr, quoted);
		parsed = td_event_from_json(text, strlen(text), err, sizeof(err));
		if (!cases[i].words) {
			cr_expect_eq(rc, 0, "%s \"%s\" refused", attr, cases[i].value);
			cr_expect_str_eq(td_event_get(ev, attr) ? td_event_get(ev, attr) : "(null)",
					 cases[i].value);
			cr_expect_not_null(parsed, "%s \"%s\": %s", attr, cases[i].value, err);
		} else {
			cr_expect_eq(rc, -TD_EINVAL, "%s \"%s\" accepted", attr, cases[i].value);
			cr_expect_null(td_event_get(ev, attr));
			cr_expect_null(parsed, "%s \"%s\" accepted from JSON", attr,
				       cases[i].value);
			cr_expect(strstr(err, cases[i].words) != NULL,
				  "%s \"%s\": message \"%s\" lacks \"%s\"", attr, cases[i].value,
				  err, cases[i].words);
		}
		td_event_unref(parsed);
		td_event_unref(ev);
		free(quoted);
		json_decref(s);
	}
}

Test(event, time_must_be_rfc3339)
{
	static const struct check_case cases[] = {
	    {"2018-04-05T17:31:00Z", NULL},
	    {"2018-04-05t17:31:00z", NULL},
	    {"2018-04-05T17:31:00.000000000Z", NULL},
	    {"2018-04-05T17:31:00.5+00:00", NULL},
	    {"2018-04-05T18:31:00+01:00", NULL},
	    {"2018-04-05T16:31:00-01:00", NULL},
	    {"2016-12-31T23:59:60Z", NULL},
	    {"2024-02-29T00:00:00Z", NULL},
	    {"2000-02-29T00:00:00Z", NULL},
	    {"0000-01-01T00:00:00Z", NULL},
	    {"lunchtime", "expected a 4-digit year at character 1"},
	    {"2018-04-05T18:31Z", "':' and seconds after the minutes at character 17"},
	    {"2018-04-05T18:31:00X", "a time offset ('Z' or +hh:mm) at character 20"},
	    {"2018-04-05T18:31:00+25:00", "an offset hour from 00 to 23"},
	    {"2018-04-05T18:31:00+xx:00", "a 2-digit offset hour at character 21"},
	    {"2018-04-05T18:31:00+05", "':' in the offset"},
	    {"2018-04-05T18:31:00+01:60", "offset minutes from 00 to 59"},
	    {"2018-04-05 18:31:00Z", "'T' between date and time at character 11"},
	    {"2018-13-01T00:00:00Z", "a month from 01 to 12"},
	    {"2018-00-01T00:00:00Z", "a month from 01 to 12"},
	    {"2023-02-29T00:00:00Z", "a day that exists in that month"},
	    {"1900-02-29T00:00:00Z", "a day that exists in that month"},
	    {"2018-04-31T00:00:00Z", "a day that exists in that month"},
	    {"2018-04-00T00:00:00Z", "a day that exists in that month"},
	    {"2018-04-05T24:00:00Z", "an hour from 00 to 23"},
	    {"2018-04-05T23:60:00Z", "minutes from 00 to 59"},
	    {"2018-04-05T23:59:61Z", "seconds from 00 to 60"},
	    {"2018-04-05T23:59:59.Z", "a digit after '.'"},
	    {"2018-04-05T23:59:59", "a time offset"},
	    {"2018-04-05T23:59:59Z ", "the end of the value at character 21"},
	    {"18-04-05T00:00:00Z", "a 4-digit year"},
	    {"2018-4-05T00:00:00Z", "a 2-digit month"},
	    {"", "must not be empty"},
	};

	check_attr_table("time", cases, sizeof(cases) / sizeof(cases[0]));
}

Test(event, datacontenttype_must_be_rfc2046)
{
	static const struct check_case cases[] = {
	    {"text/plain", NULL},
	    {"application/json", NULL},
	    {"application/json; charset=utf-8", NULL},
	    {"application/json;charset=\"utf-8\"", NULL},
	    {"application/vnd.apache.thrift.binary", NULL},
	    {"application/cloudevents+json", NULL},
	    {"multipart/form-data; boundary=abc ; x=y", NULL},
	    {"text/plain;", NULL},
	    {"text/plain; a=\"q\\\"uoted\"", NULL},
	    {"xyz", "expected '/' after the type at character 4"},
	    {"", "must not be empty"},
	    {"text/", "a subtype after '/' at character 6"},
	    {"/plain", "a type"},
	    {" text/plain", "a type"},
	    {"text plain", "'/' after the type at character 5"},
	    {"text/plain charset=utf-8", "';' before a parameter"},
	    {"text/plain; charset", "'=' after the parameter name"},
	    {"text/plain; =x", "a parameter name"},
	    {"text/plain; a=", "a parameter value"},
	    {"text/plain; a=\"open", "a closing '\"'"},
	    {"text/pl@in", "';' before a parameter"},
	    {"text/plain ", "whitespace at the end (character 11)"},
	    {"text/plain; ", "whitespace at the end"},
	};

	check_attr_table("datacontenttype", cases, sizeof(cases) / sizeof(cases[0]));
}

Test(event, dataschema_must_be_a_uri)
{
	static const struct check_case cases[] = {
	    {"https://cloudevents.io/dataschema", NULL},
	    {"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", NULL},
	    {"http://x/a%20b?q=1&r=[2]#frag", NULL},
	    {"a:", NULL},
	    {"", "must not be empty"},
	    {"/relative", "expected a scheme"},
	    {"//authority/path", "expected a scheme"},
	    {"1http://x", "expected a scheme"},
	    {"no-colon", "expected ':' after the scheme"},
	    {"http://x/a b", "character 11 must be percent-encoded"},
	    {"http://x/%zz", "'%' must start a %XX escape at character 10"},
	    {"http://x/%4", "'%' must start a %XX escape"},
	    {"http://x/\xc3\xa9", "must be percent-encoded"},
	    {"http://x#a#b", "a second '#'"},
	    {"http://x/<y>", "must be percent-encoded"},
	};

	check_attr_table("dataschema", cases, sizeof(cases) / sizeof(cases[0]));
}

Test(event, string_attributes_are_cloudevents_strings)
{
	static const struct check_case cases[] = {
	    {"h\xc3\xa9llo \xf0\x9f\x98\x80", NULL},
	    {"nbsp\xc2\xa0ok", NULL},
	    {"a\\b\"c'", NULL},
	    {"line\nbreak", "control character U+000A at byte 4"},
	    {"tab\there", "control character U+0009"},
	    {"del\x7f", "control character U+007F"},
	    {"c1\xc2\x85", "control character U+0085"},
	    {"nonchar\xef\xb7\x90", "noncharacter U+FDD0"},
	    {"nonchar\xef\xbf\xbe", "noncharacter U+FFFE"},
	    {"nonchar\xf0\x9f\xbf\xbf", "noncharacter U+1FFFF"},
	    {"", "must not be empty"},
	};
	struct td_event *ev = base_event();

	check_attr_table("subject", cases, sizeof(cases) / sizeof(cases[0]));
	/* bytes that JSON cannot even carry */
	cr_expect_eq(td_event_set(ev, "subject", "bad\xff"), -TD_EINVAL);
	cr_expect_eq(td_event_set(ev, "subject", "\xc0\xa0"), -TD_EINVAL);
	cr_expect_eq(td_event_setn(ev, "subject", "a\0b", 3), -TD_EINVAL);
	cr_expect_eq(td_event_setn(ev, "subject", "abc", 2), 0);
	cr_expect_str_eq(td_event_get(ev, "subject"), "ab");
	/* extensions: Strings too, but the empty String is allowed */
	cr_expect_eq(td_event_set(ev, "ext", "a\nb"), -TD_EINVAL);
	cr_expect_eq(td_event_set(ev, "ext", ""), 0);
	cr_expect_str_eq(td_event_get(ev, "ext"), "");
	/* id, source and type must not be empty; source is not checked as a URI */
	cr_expect_eq(td_event_set(ev, "id", ""), -TD_EINVAL);
	cr_expect_eq(td_event_set(ev, "source", "not a uri, but fine"), 0);
	cr_expect_eq(td_event_set(ev, "type", ""), -TD_EINVAL);
	cr_expect_str_eq(td_event_get(ev, "type"), "t", "unchanged after a refused set");
	td_event_unref(ev);
}

Test(event, specversion_and_reserved_names)
{
	struct td_event *ev = base_event();

	cr_expect_str_eq(td_event_get(ev, "specversion"), "1.0");
	cr_expect_eq(td_event_set(ev, "specversion", "1.0"), 0);
	cr_expect_eq(td_event_set(ev, "specversion", "0.3"), -TD_EINVAL);
	cr_expect_eq(td_event_set(ev, "specversion", ""), -TD_EINVAL);
	cr_expect_eq(td_event_set(ev, "specversion", NULL), -TD_EINVAL);
	cr_expect_str_eq(td_event_get(ev, "specversion"), "1.0");
	cr_expect_eq(td_event_set(ev, "data", "x"), -TD_EINVAL);
	cr_expect_eq(td_event_set(ev, "data_base64", "eA=="), -TD_EINVAL);
	cr_expect_null(td_event_get(ev, "data"));
	cr_expect_null(td_event_get(ev, NULL));
	cr_expect_eq(td_event_set(NULL, "id", "x"), -TD_EINVAL);
	td_event_unref(ev);
}

Test(event, set_replace_and_remove)
{
	struct td_event *ev = base_event();
	const char *name, *value;

	cr_expect_eq(td_event_set(ev, "subject", "one"), 0);
	cr_expect_eq(td_event_set(ev, "subject", "two"), 0);
	cr_expect_str_eq(td_event_get(ev, "subject"), "two");
	cr_expect_eq(td_event_set(ev, "subject", NULL), 0);
	cr_expect_null(td_event_get(ev, "subject"));
	cr_expect_eq(td_event_set(ev, "a", "1"), 0);
	cr_expect_eq(td_event_set(ev, "b", "2"), 0);
	cr_expect_eq(td_event_set(ev, "c", "3"), 0);
	cr_expect_eq(td_event_set(ev, "a", "one"), 0);
	cr_assert(td_event_extension(ev, 0, &name, &value));
	cr_expect_str_eq(name, "a", "a replaced extension keeps its position");
	cr_expect_str_eq(value, "one");
	cr_expect_eq(td_event_set(ev, "b", NULL), 0);
	cr_assert(td_event_extension(ev, 1, &name, &value));
	cr_expect_str_eq(name, "c");
	cr_expect_not(td_event_extension(ev, 2, &name, &value));
	cr_expect_eq(td_event_set(ev, "nothere", NULL), 0);
	cr_expect_eq(td_event_set(ev, "id", NULL), 0);
	cr_expect_eq(td_event_validate(ev, NULL, 0), -TD_EINVAL);
	td_event_unref(ev);
}

Test(event, typed_extensions)
{
	static const char *const good_ints[] = {"0", "-0", "7", "-12", "2147483647", "-2147483648"};
	static const char *const bad_ints[] = {
	    "2147483648", "-2147483649", "01", "+1", "1.0",	    "1e3",
	    "",		  "-",		 " 1", "1 ", "99999999999", "0x10"};
	struct td_event *ev = base_event();

	for (size_t i = 0; i < sizeof(good_ints) / sizeof(good_ints[0]); i++) {
		cr_expect_eq(td_event_set_typed(ev, "n", good_ints[i], strlen(good_ints[i]),
						TD_ATTR_INTEGER),
			     0, "%s", good_ints[i]);
		cr_expect_str_eq(td_event_get(ev, "n"), good_ints[i]);
	}
	for (size_t i = 0; i < sizeof(bad_ints) / sizeof(bad_ints[0]); i++)
		cr_expect_eq(
		    td_event_set_typed(ev, "m", bad_ints[i], strlen(bad_ints[i]), TD_ATTR_INTEGER),
		    -TD_EINVAL, "\"%s\" accepted as an Integer", bad_ints[i]);
	cr_expect_null(td_event_get(ev, "m"));
	cr_expect_eq(td_event_set_typed(ev, "b", "true", 4, TD_ATTR_BOOLEAN), 0);
	cr_expect_eq(td_event_set_typed(ev, "b", "TRUE", 4, TD_ATTR_BOOLEAN), -TD_EINVAL);
	cr_expect_eq(td_event_set_typed(ev, "b", "1", 1, TD_ATTR_BOOLEAN), -TD_EINVAL);
	cr_expect_eq(td_event_set_int(ev, "kafkapartition", 3), 0);
	cr_expect_eq(td_event_set_int(ev, "big", 2147483648LL), -TD_EINVAL);
	cr_expect_eq(td_event_set_int(ev, "small", -2147483648LL), 0);
	cr_expect_eq(td_event_set_bool(ev, "mqttretain", false), 0);
	cr_expect_eq(td_event_set_int(ev, "subject", 5), -TD_EINVAL, "core attributes are Strings");
	cr_expect_eq(td_event_set_bool(ev, "id", true), -TD_EINVAL);
	cr_expect_eq(td_event_set_typed(ev, "x", "v", 1, (enum td_attr_type)99), -TD_EINVAL);
	cr_expect_str_eq(td_event_get(ev, "kafkapartition"), "3");
	cr_expect_str_eq(td_event_get(ev, "mqttretain"), "false");
	cr_expect_eq(td_event_extension_type(ev, 0), TD_ATTR_INTEGER);
	cr_expect_eq(td_event_extension_type(ev, 1), TD_ATTR_BOOLEAN);
	cr_expect_eq(td_event_extension_type(ev, 2), TD_ATTR_INTEGER);
	cr_expect_eq(td_event_extension_type(ev, 3), TD_ATTR_INTEGER);
	cr_expect_eq(td_event_extension_type(ev, 4), TD_ATTR_BOOLEAN);
	cr_expect_eq(td_event_extension_type(ev, 99), TD_ATTR_STRING);
	/* a String set over an Integer turns it into a String */
	cr_expect_eq(td_event_set(ev, "n", "seven"), 0);
	cr_expect_eq(td_event_extension_type(ev, 0), TD_ATTR_STRING);
	td_event_unref(ev);
}

Test(event, extension_limit)
{
	struct td_event *ev = base_event();
	char name[16];

	for (int i = 0; i < TD_EVENT_MAX_EXTENSIONS; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		cr_assert_eq(td_event_set(ev, name, "v"), 0);
	}
	cr_expect_eq(td_event_set(ev, "onemore", "v"), -TD_EINVAL);
	cr_expect_eq(td_event_set(ev, "x5", "replaced"), 0, "replacing at the limit works");
	cr_expect_str_eq(td_event_get(ev, "x5"), "replaced");
	cr_expect_eq(td_event_set(ev, "subject", "core attributes do not count"), 0);
	td_event_unref(ev);
}

Test(event, set_time_ms)
{
	static const struct {
		long long ms;
		const char *text;
	} cases[] = {
	    {0, "1970-01-01T00:00:00.000Z"},
	    {1764230400123LL, "2025-11-27T08:00:00.123Z"},
	    {-1, "1969-12-31T23:59:59.999Z"},
	    {951782400000LL, "2000-02-29T00:00:00.000Z"},
	    {253402300799999LL, "9999-12-31T23:59:59.999Z"},
	};
	struct td_event *ev = base_event();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(td_event_set_time_ms(ev, cases[i].ms), 0);
		cr_expect_str_eq(td_event_get(ev, "time"), cases[i].text);
	}
	cr_expect_eq(td_event_set_time_ms(ev, 253402300800000LL), -TD_EINVAL, "year 10000");
	td_event_unref(ev);
}

/* Payload */

Test(event, data_classification)
{
	static const struct {
		const char *ct;
		const char *bytes;
		size_t len;
		enum td_data_kind kind;
	} cases[] = {
	    {NULL, "{\"a\":1}", 7, TD_DATA_JSON},
	    {NULL, " [1, 2]\n", 8, TD_DATA_JSON},
	    {"application/json", "[1]", 3, TD_DATA_JSON},
	    {"application/json", "\"a string\"", 10, TD_DATA_JSON},
	    {"application/json", "null", 4, TD_DATA_JSON},
	    {"application/cloudevents+json", "{}", 2, TD_DATA_JSON},
	    {"application/vnd.api+json", "{}", 2, TD_DATA_JSON},
	    {"text/json", "1", 1, TD_DATA_JSON},
	    {"APPLICATION/JSON; charset=utf-8", "true", 4, TD_DATA_JSON},
	    {"application/JSON", "{}", 2, TD_DATA_JSON},
	    {"text/plain", "{\"a\":1}", 7, TD_DATA_TEXT},
	    {"application/jsonl", "{}", 2, TD_DATA_TEXT},
	    {"application/json-seq", "{}", 2, TD_DATA_TEXT},
	    {NULL, "hello", 5, TD_DATA_TEXT},
	    {NULL, "", 0, TD_DATA_TEXT},
	    {"application/json", "{bad", 4, TD_DATA_TEXT},
	    {"application/json", "{} {}", 5, TD_DATA_TEXT},
	    {NULL, "h\xc3\xa9", 3, TD_DATA_TEXT},
	    {NULL, "a\0b", 3, TD_DATA_TEXT},
	    {"application/octet-stream", "abc", 3, TD_DATA_TEXT},
	    {NULL, "\xff\xfe", 2, TD_DATA_BINARY},
	    {"application/json", "\"\xff\"", 3, TD_DATA_BINARY},
	    {"application/octet-stream", "\x00\x01\xff", 3, TD_DATA_BINARY},
	    {"text/plain", "\xc0\xa0", 2, TD_DATA_BINARY},
	};
	size_t len;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct td_event *ev = base_event();
		const char *p;

		cr_expect_eq(td_event_set_data(ev, cases[i].bytes, cases[i].len, cases[i].ct), 0,
			     "case %zu", i);
		cr_expect_eq(td_event_data_kind(ev), cases[i].kind, "case %zu: kind %d", i,
			     td_event_data_kind(ev));
		p = td_event_data(ev, &len);
		cr_assert_not_null(p);
		cr_expect_eq(len, cases[i].len);
		cr_expect(memcmp(p, cases[i].bytes, len) == 0, "the bytes are kept as they came");
		cr_expect_eq(p[len], '\0', "NUL-terminated");
		if (cases[i].ct)
			cr_expect_str_eq(td_event_get(ev, "datacontenttype"), cases[i].ct);
		else
			cr_expect_null(td_event_get(ev, "datacontenttype"));
		td_event_unref(ev);
	}
}

Test(event, content_type_is_json)
{
	static const struct {
		const char *ct;
		bool json;
	} cases[] = {
	    {NULL, true},
	    {"application/json", true},
	    {"text/json", true},
	    {"application/ld+json; profile=x", true},
	    {"Application/Problem+JSON", true},
	    {"application/json;charset=utf-8", true},
	    {"application/json ; charset=utf-8", true},
	    {"application/jsonp", false},
	    {"application/json-patch", false},
	    {"application/x-json5", false},
	    {"text/plain", false},
	    {"json", false},
	    {"", false},
	    {"application/", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(td_event_content_type_is_json(cases[i].ct), cases[i].json, "\"%s\"",
			     cases[i].ct ? cases[i].ct : "(absent)");
}

Test(event, data_none_and_errors)
{
	struct td_event *ev = base_event();
	size_t len = 99;

	cr_expect_eq(td_event_data_kind(ev), TD_DATA_NONE);
	cr_expect_null(td_event_data(ev, &len));
	cr_expect_eq(len, 0);
	cr_expect_eq(td_event_set_data(ev, "{}", 2, NULL), 0);
	cr_expect_eq(td_event_set_data(ev, NULL, 3, NULL), -TD_EINVAL);
	cr_expect_eq(td_event_set_data(ev, "x", 1, "bogus"), -TD_EINVAL);
	cr_expect_eq(td_event_set_data(ev, "x", 1, ""), -TD_EINVAL);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON, "unchanged after a refused call");
	cr_expect_null(td_event_get(ev, "datacontenttype"));
	cr_expect_eq(td_event_set_data(ev, NULL, 0, "text/plain"), 0);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_NONE);
	cr_expect_null(td_event_data(ev, &len));
	cr_expect_str_eq(td_event_get(ev, "datacontenttype"), "text/plain");
	td_event_unref(ev);
}

Test(event, data_follows_the_content_type)
{
	struct td_event *ev = base_event();

	cr_assert_eq(td_event_set_data(ev, "{\"a\":1}", 7, NULL), 0);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	cr_expect_eq(td_event_set(ev, "datacontenttype", "text/plain"), 0);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_TEXT);
	cr_expect_eq(td_event_set(ev, "datacontenttype", "application/ld+json"), 0);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	cr_expect_eq(td_event_set(ev, "datacontenttype", NULL), 0);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	td_event_unref(ev);
}

Test(event, data_nesting_limit)
{
	size_t depth = TD_EVENT_DATA_MAX_DEPTH + 1;
	char *deep = malloc(2 * depth + 1), *out;
	struct td_event *ev = base_event();

	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[2 * depth] = '\0';
	cr_assert_eq(td_event_set_data(ev, deep, 2 * depth, NULL), 0);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_TEXT, "one level too deep is not JSON");
	cr_assert_eq(td_event_set_data(ev, deep + 1, 2 * depth - 2, NULL), 0);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	/* the forms that nest the payload stay within the validator's limit */
	out = td_event_match_json(ev, NULL);
	cr_expect(td_json_valid(out, strlen(out), 0));
	free(out);
	out = td_event_to_json(ev, NULL);
	cr_expect(td_json_valid(out, strlen(out), 0));
	free(out);
	td_event_unref(ev);
	free(deep);
}

/* The JSON forms, byte for byte */

static struct td_event *form_event(void)
{
	struct td_event *ev = base_event();

	cr_assert_eq(td_event_set(ev, "ext1", "v\"q"), 0);
	cr_assert_eq(td_event_set_int(ev, "n", -5), 0);
	cr_assert_eq(td_event_set_bool(ev, "b", true), 0);
	return ev;
}

#define HEAD "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\""
#define EXTS ",\"ext1\":\"v\\\"q\",\"n\":-5,\"b\":true"

Test(event, json_forms)
{
	static const struct {
		const char *ct;
		const char *bytes;
		size_t len;
		const char *structured;
		const char *match;
	} cases[] = {
	    {NULL, NULL, 0, HEAD EXTS "}", HEAD EXTS "}"},
	    {NULL, "{\"a\": [1, 2]}", 13, HEAD EXTS ",\"data\":{\"a\": [1, 2]}}",
	     HEAD EXTS ",\"data\":{\"a\": [1, 2]}}"},
	    {"application/json", "\"str\"", 5,
	     HEAD ",\"datacontenttype\":\"application/json\"" EXTS ",\"data\":\"str\"}",
	     HEAD ",\"datacontenttype\":\"application/json\"" EXTS ",\"data\":\"str\"}"},
	    {"text/plain", "hi \"x\"\n", 7,
	     HEAD ",\"datacontenttype\":\"text/plain\"" EXTS ",\"data\":\"hi \\\"x\\\"\\n\"}",
	     HEAD ",\"datacontenttype\":\"text/plain\"" EXTS ",\"data\":\"hi \\\"x\\\"\\n\"}"},
	    {"text/plain", "{\"a\":1}", 7,
	     HEAD ",\"datacontenttype\":\"text/plain\"" EXTS ",\"data\":\"{\\\"a\\\":1}\"}",
	     HEAD ",\"datacontenttype\":\"text/plain\"" EXTS ",\"data\":\"{\\\"a\\\":1}\"}"},
	    /* text where JSON was declared travels as base64, and matches as a string */
	    {NULL, "hello", 5, HEAD EXTS ",\"data_base64\":\"aGVsbG8=\"}",
	     HEAD EXTS ",\"data\":\"hello\"}"},
	    {NULL, "\x00\xff", 2, HEAD EXTS ",\"data_base64\":\"AP8=\"}",
	     HEAD EXTS ",\"data\":\"AP8=\"}"},
	    {"image/png", "\x89PNG\r\n\x1a\n", 8,
	     HEAD ",\"datacontenttype\":\"image/png\"" EXTS ",\"data_base64\":\"iVBORw0KGgo=\"}",
	     HEAD ",\"datacontenttype\":\"image/png\"" EXTS ",\"data\":\"iVBORw0KGgo=\"}"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct td_event *ev = form_event();
		size_t len = 0;
		char *s, *m;

		if (cases[i].bytes)
			cr_assert_eq(
			    td_event_set_data(ev, cases[i].bytes, cases[i].len, cases[i].ct), 0);
		s = td_event_to_json(ev, &len);
		cr_assert_not_null(s);
		cr_expect_str_eq(s, cases[i].structured, "structured form, case %zu", i);
		cr_expect_eq(len, strlen(s));
		cr_expect(td_json_valid(s, len, 0), "case %zu", i);
		m = td_event_match_json(ev, &len);
		cr_assert_not_null(m);
		cr_expect_str_eq(m, cases[i].match, "matching form, case %zu", i);
		cr_expect_eq(len, strlen(m));
		cr_expect(td_json_valid(m, len, 0), "case %zu", i);
		free(s);
		free(m);
		td_event_unref(ev);
	}
}

Test(event, json_forms_all_attributes_and_unicode)
{
	struct td_event *ev = base_event();
	char *s;

	cr_assert_eq(td_event_set(ev, "subject",
				  "Gr\xc3\xbc\xc3\x9f"
				  "e \xf0\x9f\x98\x80"),
		     0);
	cr_assert_eq(td_event_set(ev, "time", "2018-04-05T17:31:00Z"), 0);
	cr_assert_eq(td_event_set(ev, "dataschema", "https://x/s"), 0);
	cr_assert_eq(td_event_set(ev, "datacontenttype", "application/json"), 0);
	s = td_event_match_json(ev, NULL);
	expect_json_eq(s, "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
			  "\"subject\":\"Gr\\u00fc\\u00dfe \\ud83d\\ude00\",\"time\":"
			  "\"2018-04-05T17:31:00Z\",\"datacontenttype\":\"application/json\","
			  "\"dataschema\":\"https://x/s\"}");
	cr_expect(strstr(s, "\"subject\":\"Gr\xc3\xbc\xc3\x9f"
			    "e \xf0\x9f\x98\x80\"") != NULL,
		  "UTF-8 is written as it is: %s", s);
	free(s);
	td_event_unref(ev);
}

/* Structured JSON in */

#define MIN "\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\""

Test(event, from_json_payloads)
{
	static const struct {
		const char *text;
		enum td_data_kind kind;
		const char *bytes;
		size_t len;
	} cases[] = {
	    {"{" MIN ",\"data\" : {\"b\" : 1.50} }", TD_DATA_JSON, "{\"b\" : 1.50}", 12},
	    {"{" MIN ",\"datacontenttype\":\"application/json\",\"data\":\"I'm just a string\"}",
	     TD_DATA_JSON, "\"I'm just a string\"", 19},
	    {"{\"data\":[1,\n2]," MIN "}", TD_DATA_JSON, "[1,\n2]", 6},
	    {"{" MIN ",\"data\":{\"n\":123456789012345678901234567890}}", TD_DATA_JSON,
	     "{\"n\":123456789012345678901234567890}", 36},
	    {"{" MIN ",\"data\":null}", TD_DATA_JSON, "null", 4},
	    {"{" MIN ",\"datacontenttype\":\"text/plain\",\"data\":\"Simple text\"}", TD_DATA_TEXT,
	     "Simple text", 11},
	    {"{" MIN ",\"data\":\"<much wow=\\\"xml\\\"/>\",\"datacontenttype\":\"text/xml\"}",
	     TD_DATA_TEXT, "<much wow=\"xml\"/>", 17},
	    {"{" MIN ",\"datacontenttype\":\"text/plain\",\"data\":\"a\\u0000b\\u00e9\"}",
	     TD_DATA_TEXT, "a\0b\xc3\xa9", 5},
	    {"{" MIN ",\"datacontenttype\":\"text/plain\",\"data\":null}", TD_DATA_NONE, NULL, 0},
	    {"{" MIN ",\"datacontenttype\":\"application/octet-stream\",\"data_base64\":\"AP8=\"}",
	     TD_DATA_BINARY, "\x00\xff", 2},
	    {"{" MIN ",\"datacontenttype\":\"application/json\",\"data_base64\":\"eyJhIjoxfQ==\"}",
	     TD_DATA_JSON, "{\"a\":1}", 7},
	    {"{" MIN ",\"data_base64\":\"\"}", TD_DATA_TEXT, "", 0},
	    {"{" MIN ",\"data\":null,\"data_base64\":\"eA==\"}", TD_DATA_TEXT, "x", 1},
	    {"{" MIN ",\"data_base64\":null}", TD_DATA_NONE, NULL, 0},
	    {"{" MIN ",\"data\":{\"data\":1,\"id\":\"inner\"}}", TD_DATA_JSON,
	     "{\"data\":1,\"id\":\"inner\"}", 23},
	    {"{" MIN ",\"d\\u0061ta\":[true]}", TD_DATA_JSON, "[true]", 6},
	    /* numbers beyond a double, and any other valid JSON, stay exact text */
	    {"{" MIN ",\"data\":[1e400,-1E-400,123456789012345678901234567890.5]}", TD_DATA_JSON,
	     "[1e400,-1E-400,123456789012345678901234567890.5]", 48},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct td_event *ev = parse_ok(cases[i].text);
		size_t len;
		const char *p = td_event_data(ev, &len);

		cr_expect_eq(td_event_data_kind(ev), cases[i].kind, "case %zu: kind %d", i,
			     td_event_data_kind(ev));
		cr_expect_eq(len, cases[i].len, "case %zu: length %zu", i, len);
		if (cases[i].bytes) {
			cr_assert_not_null(p, "case %zu", i);
			cr_expect(memcmp(p, cases[i].bytes, len) == 0, "case %zu: payload %.*s", i,
				  (int)len, p);
		} else {
			cr_expect_null(p, "case %zu", i);
		}
		cr_expect_str_eq(td_event_get(ev, "id"), "1", "case %zu", i);
		td_event_unref(ev);
	}
}

Test(event, from_json_attributes)
{
	struct td_event *ev =
	    parse_ok("{\"specversion\":\"1.0\",\"\\u0069d\":\"x\\u00e9\",\"source\":"
		     "\"urn:a\",\"type\":\"t\",\"subject\":null,\"e1\":\"s\",\"e2\":"
		     "-2147483648,\"e3\":false,\"e4\":null,\"e5\":2147483647}");

	cr_expect_str_eq(td_event_get(ev, "id"), "x\xc3\xa9");
	cr_expect_null(td_event_get(ev, "subject"));
	cr_expect_null(td_event_get(ev, "e4"), "null is absent");
	cr_expect_str_eq(td_event_get(ev, "e2"), "-2147483648");
	cr_expect_str_eq(td_event_get(ev, "e3"), "false");
	cr_expect_eq(td_event_extension_type(ev, 0), TD_ATTR_STRING);
	cr_expect_eq(td_event_extension_type(ev, 1), TD_ATTR_INTEGER);
	cr_expect_eq(td_event_extension_type(ev, 2), TD_ATTR_BOOLEAN);
	cr_expect_eq(td_event_extension_type(ev, 3), TD_ATTR_INTEGER);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_NONE);
	td_event_unref(ev);
}

Test(event, from_json_errors)
{
	static const struct {
		const char *text;
		const char *words;
	} cases[] = {
	    {"", "invalid JSON: line 1, column 1"},
	    {"{" MIN ",}", "invalid JSON: line 1, column 56 (byte 55): expected a string key"},
	    {"{" MIN ",\n\"x\":tru}", "invalid JSON: line 2, column 5"},
	    {"[]", "must be a JSON object, found an array"},
	    {"\"event\"", "must be a JSON object, found a string"},
	    {"{" MIN ",\"id\":\"2\"}", "duplicate member \"id\""},
	    {"{\"specversion\":1.0,\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"}",
	     "attribute \"specversion\" must be a string, found a number"},
	    {"{\"specversion\":null,\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"}",
	     "missing required attribute \"specversion\""},
	    {"{" MIN ",\"ext\":{}}", "extension \"ext\" must be a string, an integer or a boolean, "
				     "found an object"},
	    {"{" MIN ",\"ext\":[1]}", "found an array"},
	    {"{" MIN ",\"ext\":1.5}", "extension \"ext\": \"1.5\" is not a CloudEvents Integer"},
	    {"{" MIN ",\"ext\":10.0}", "is not a CloudEvents Integer"},
	    {"{" MIN ",\"ext\":1e3}", "is not a CloudEvents Integer"},
	    {"{" MIN ",\"ext\":2147483648}", "is not a CloudEvents Integer"},
	    {"{" MIN ",\"ext\":-2147483649}", "is not a CloudEvents Integer"},
	    {"{" MIN ",\"ext\":\"a\\nb\"}", "control character U+000A"},
	    {"{" MIN ",\"subject\":true}",
	     "attribute \"subject\" must be a string, found a boolean"},
	    {"{" MIN ",\"time\":123}", "attribute \"time\" must be a string, found a number"},
	    {"{" MIN ",\"time\":\"yesterday\"}", "attribute \"time\": not an RFC 3339 date-time"},
	    {"{" MIN ",\"data_base64\":5}", "\"data_base64\" must be a string, found a number"},
	    {"{" MIN ",\"data_base64\":\"abc\"}", "\"data_base64\": invalid base64: length 3"},
	    {"{" MIN ",\"data_base64\":\"ab!=\"}", "invalid character '!' at offset 2"},
	    {"{" MIN ",\"data\":\"x\",\"data_base64\":\"eA==\"}", "must not both be present"},
	    {"{" MIN ",\"datacontenttype\":\"text/plain\",\"data\":{\"a\":1}}",
	     "\"data\" must be a string when datacontenttype \"text/plain\" is not JSON, found an "
	     "object"},
	    {"{" MIN ",\"Id\":\"x\"}", "invalid attribute name \"Id\""},
	    {"{" MIN ",\"\":\"x\"}", "invalid attribute name \"\""},
	    {"{\"\":1}", "invalid attribute name \"\""},
	    {"{" MIN ",\"a\\u0000\":\"x\"}", "member name \"a?\" contains a NUL character"},
	    {"{" MIN ",\"ext\":null,\"ext\":1}", "duplicate member \"ext\""},
	    {"{" MIN ",\"data\":1,\"data\":2}", "duplicate member \"data\""},
	    {"{" MIN ",\"subject\":\"a\",\"s\\u0075bject\":\"b\"}", "duplicate member \"subject\""},
	    {"{" MIN ",\"x\":\"\\ud800\"}", "invalid JSON"},
	    {"{" MIN ",\"x\":\"\xff\"}", "invalid UTF-8"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_fails(cases[i].text, cases[i].words);
}

Test(event, from_json_limits)
{
	struct td_buf b;
	char err[256];
	struct td_event *ev;

	/* too deep */
	td_buf_init(&b);
	td_buf_appends(&b, "{" MIN ",\"data\":");
	for (int i = 0; i < TD_JSON_MAX_DEPTH; i++)
		td_buf_appendc(&b, '[');
	for (int i = 0; i < TD_JSON_MAX_DEPTH; i++)
		td_buf_appendc(&b, ']');
	td_buf_appendc(&b, '}');
	ev = td_event_from_json(b.data, b.len, err, sizeof(err));
	cr_expect_null(ev);
	cr_expect(strstr(err, "nesting deeper than 512 levels") != NULL, "%s", err);
	/* the deepest payload that fits is JSON, and within the payload limit */
	td_buf_reset(&b);
	td_buf_appends(&b, "{" MIN ",\"data\":");
	for (int i = 0; i < TD_EVENT_DATA_MAX_DEPTH; i++)
		td_buf_appendc(&b, '[');
	for (int i = 0; i < TD_EVENT_DATA_MAX_DEPTH; i++)
		td_buf_appendc(&b, ']');
	td_buf_appendc(&b, '}');
	ev = td_event_from_json(b.data, b.len, err, sizeof(err));
	cr_assert_not_null(ev, "%s", err);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	{
		size_t dl;
		const char *d = td_event_data(ev, &dl);
		cr_expect_eq(dl, 2 * TD_EVENT_DATA_MAX_DEPTH);
		cr_expect(td_json_valid(d, dl, TD_EVENT_DATA_MAX_DEPTH));
	}
	td_event_unref(ev);
	/* too many extensions */
	td_buf_reset(&b);
	td_buf_appends(&b, "{" MIN);
	for (int i = 0; i <= TD_EVENT_MAX_EXTENSIONS; i++)
		td_buf_printf(&b, ",\"x%d\":%d", i, i);
	td_buf_appendc(&b, '}');
	ev = td_event_from_json(b.data, b.len, err, sizeof(err));
	cr_expect_null(ev);
	cr_expect(strstr(err, "more than 128 extensions") != NULL, "%s", err);
	/* not NUL-terminated: an exact-size copy */
	{
		const char *t = "{" MIN "}";
		char *copy = malloc(strlen(t));
		memcpy(copy, t, strlen(t));
		ev = td_event_from_json(copy, strlen(t), err, sizeof(err));
		cr_expect_not_null(ev, "%s", err);
		td_event_unref(ev);
		ev = td_event_from_json(copy, strlen(t) - 1, err, sizeof(err));
		cr_expect_null(ev);
		free(copy);
	}
	cr_expect_null(td_event_from_json(NULL, 0, err, sizeof(err)));
	cr_expect_null(td_event_from_json("{}", 2, NULL, 0), "no message buffer is fine");
	td_buf_free(&b);
}

/* Round trips */

#define RICH_JSON "{\"a\":[1,2.5,\"\xc3\xa9\"]}"

static struct td_event *rich_event(int variant)
{
	struct td_event *ev = td_event_create();

	cr_assert_not_null(ev);
	cr_assert_eq(td_event_set(ev, "id", "id-\xe2\x82\xac-1"), 0);
	cr_assert_eq(td_event_set(ev, "source", "https://example.com/src?q=a b"), 0);
	cr_assert_eq(td_event_set(ev, "type", "com.example.\xe6\x97\xa5\xe6\x9c\xac"), 0);
	cr_assert_eq(td_event_set(ev, "subject", "Euro \xe2\x82\xac \xf0\x9f\x98\x80 100% \"q\""),
		     0);
	cr_assert_eq(td_event_set(ev, "time", "2018-04-05T17:31:00.123+02:00"), 0);
	cr_assert_eq(td_event_set(ev, "dataschema", "https://example.com/schema#v1"), 0);
	cr_assert_eq(td_event_set(ev, "kafkatopic", "orders"), 0);
	cr_assert_eq(td_event_set(ev, "note", "  spaced  "), 0);
	switch (variant) {
	case 0:
		break;
	case 1:
		cr_assert_eq(td_event_set_data(ev, RICH_JSON, strlen(RICH_JSON), NULL), 0);
		break;
	case 2:
		cr_assert_eq(td_event_set_data(ev, "plain text \xe2\x82\xac\n", 15,
					       "text/plain; charset=utf-8"),
			     0);
		break;
	case 3:
		cr_assert_eq(
		    td_event_set_data(ev, "\x00\x01\x02\xfe\xff", 5, "application/octet-stream"),
		    0);
		break;
	case 4:
		cr_assert_eq(td_event_set_data(ev, "not json", 8, "application/json"), 0);
		break;
	case 5:
		cr_assert_eq(td_event_set_data(ev, "\"just a string\"", 15, "application/json"), 0);
		break;
	case 6:
		cr_assert_eq(td_event_set_data(ev, "", 0, "text/plain"), 0);
		break;
	case 7:
		cr_assert_eq(td_event_set_data(ev, "null", 4, NULL), 0);
		break;
	default:
		cr_assert_eq(td_event_set_data(ev, "<a>\xff</a>", 8, "text/xml"), 0);
		break;
	}
	return ev;
}

#define N_VARIANTS 9

Test(event, round_trip_structured_json)
{
	for (int v = 0; v < N_VARIANTS; v++) {
		struct td_event *ev = rich_event(v), *back;
		char err[256] = "", *s;
		size_t len;

		cr_assert_eq(td_event_set_int(ev, "partition", 7), 0);
		cr_assert_eq(td_event_set_bool(ev, "retain", true), 0);
		s = td_event_to_json(ev, &len);
		cr_assert_not_null(s);
		back = td_event_from_json(s, len, err, sizeof(err));
		cr_assert_not_null(back, "variant %d: %s\n  %s", v, err, s);
		cr_expect(td_event_equal(ev, back), "variant %d: %s", v, s);
		cr_expect_eq(td_event_data_kind(back), td_event_data_kind(ev), "variant %d", v);
		cr_expect_eq(td_event_extension_type(back, 2), TD_ATTR_INTEGER);
		cr_expect_eq(td_event_extension_type(back, 3), TD_ATTR_BOOLEAN);
		free(s);
		td_event_unref(back);
		td_event_unref(ev);
	}
}

Test(event, round_trip_http_binary)
{
	for (int v = 0; v < N_VARIANTS; v++) {
		struct td_event *ev = rich_event(v), *back, *again;
		struct hdrs hs = {0}, hs2 = {0};
		char err[256] = "";
		size_t len;
		const void *body;

		if (v == 1 || v == 7) /* make the implied content type explicit */
			cr_assert_eq(td_event_set(ev, "datacontenttype", "application/json"), 0);
		td_event_http_headers(ev, collect, &hs);
		body = td_event_data(ev, &len);
		back = td_event_from_http(hs.h, hs.n, body, len, err, sizeof(err));
		cr_assert_not_null(back, "variant %d: %s", v, err);
		if (v == 6) /* an empty body is no payload */
			cr_expect_eq(td_event_data_kind(back), TD_DATA_NONE);
		else
			cr_expect(td_event_equal(ev, back), "variant %d", v);
		/* and once more from the headers of the parsed event */
		td_event_http_headers(back, collect, &hs2);
		body = td_event_data(back, &len);
		again = td_event_from_http(hs2.h, hs2.n, body, len, err, sizeof(err));
		cr_assert_not_null(again, "variant %d: %s", v, err);
		cr_expect(td_event_equal(back, again), "variant %d, second trip", v);
		td_event_unref(again);
		td_event_unref(back);
		td_event_unref(ev);
		hdrs_free(&hs);
		hdrs_free(&hs2);
	}
}

Test(event, round_trip_binary_payload_via_data_base64)
{
	unsigned char bytes[256];
	struct td_event *ev = base_event(), *back;
	char err[256], *s;
	size_t len;

	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	cr_assert_eq(td_event_set_data(ev, bytes, sizeof(bytes), NULL), 0);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_BINARY);
	s = td_event_to_json(ev, NULL);
	cr_expect(strstr(s, "\"data_base64\":\"AAECAwQF") != NULL, "%s", s);
	cr_expect(strstr(s, "\"data\":") == NULL);
	back = td_event_from_json(s, strlen(s), err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	cr_expect_eq(td_event_data_kind(back), TD_DATA_BINARY);
	cr_expect(memcmp(td_event_data(back, &len), bytes, 256) == 0);
	cr_expect_eq(len, 256);
	cr_expect(td_event_equal(ev, back));
	free(s);
	td_event_unref(back);
	td_event_unref(ev);
}

/* HTTP */

Test(event, from_http_binary_mode)
{
	const struct td_http_header h[] = {
	    {"Host", "example.com"},
	    {"ce-specversion", "1.0"},
	    {"CE-ID", "abc"},
	    {"Ce-Source", " /src "},
	    {"ce-type", "com.example.t"},
	    {"ce-time", "2018-04-05T03:56:24Z"},
	    {"ce-subject", "Euro%20%e2%82%ac%20%F0%9F%98%80"},
	    {"ce-myext", "\"quoted \\\"x\\\" %41\""},
	    {"ce-plain", "no%2Fneed%2fto%20encode"},
	    {"Content-Type", "application/json; charset=utf-8"},
	    {"X-Other", "ignored"},
	};
	const char *body = "{\"a\":1}\n";
	char err[256] = "";
	struct td_event *ev =
	    td_event_from_http(h, sizeof(h) / sizeof(h[0]), body, strlen(body), err, sizeof(err));
	size_t len;

	cr_assert_not_null(ev, "%s", err);
	cr_expect_str_eq(td_event_get(ev, "id"), "abc");
	cr_expect_str_eq(td_event_get(ev, "source"), "/src");
	cr_expect_str_eq(td_event_get(ev, "subject"), "Euro \xe2\x82\xac \xf0\x9f\x98\x80");
	cr_expect_str_eq(td_event_get(ev, "myext"), "quoted \"x\" A");
	cr_expect_str_eq(td_event_get(ev, "plain"), "no/need/to encode");
	cr_expect_str_eq(td_event_get(ev, "datacontenttype"), "application/json; charset=utf-8");
	cr_expect_null(td_event_get(ev, "host"));
	cr_expect_null(td_event_get(ev, "other"));
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	cr_expect_str_eq(td_event_data(ev, &len), body, "the body is kept as it came");
	cr_expect_eq(len, strlen(body));
	td_event_unref(ev);
}

Test(event, from_http_structured_mode)
{
	const char *body = "{\"specversion\":\"1.0\",\"id\":\"9\",\"source\":\"/s\",\"type\":\"t\","
			   "\"data\":{\"x\":true}}";
	static const char *const cts[] = {"application/cloudevents+json",
					  "Application/CloudEvents+JSON; charset=UTF-8",
					  "application/cloudevents+json;charset=\"utf-8\""};
	struct td_event *want = parse_ok(body);

	for (size_t i = 0; i < sizeof(cts) / sizeof(cts[0]); i++) {
		const struct td_http_header h[] = {{"content-type", cts[i]},
						   {"ce-id", "ignored in structured mode"}};
		char err[256] = "";
		struct td_event *ev =
		    td_event_from_http(h, 2, body, strlen(body), err, sizeof(err));

		cr_assert_not_null(ev, "%s: %s", cts[i], err);
		cr_expect(td_event_equal(ev, want), "%s", cts[i]);
		cr_expect(td_event_http_is_cloudevent(h, 2));
		td_event_unref(ev);
	}
	td_event_unref(want);
}

#define H_MIN                                                                                      \
	{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-source", "/s"},                            \
	{                                                                                          \
		"ce-type", "t"                                                                     \
	}

Test(event, from_http_errors)
{
	static const struct {
		struct td_http_header h[8];
		size_t n;
		const char *body;
		const char *words;
	} cases[] = {
	    {{{"Content-Type", "application/json"}},
	     1,
	     "{}",
	     "not a CloudEvent: no ce-specversion header"},
	    {{{"ce-id", "1"}}, 1, "", "not a CloudEvent"},
	    {{{"Content-Type", "application/cloudevents-batch+json"}},
	     1,
	     "[]",
	     "batched content mode (application/cloudevents-batch+json) is not supported"},
	    {{{"Content-Type", "application/cloudevents+avro"}},
	     1,
	     "x",
	     "structured mode with application/cloudevents+avro is not supported"},
	    {{{"Content-Type", "application/cloudevents+json; charset=latin1"}},
	     1,
	     "{}",
	     "charset \"latin1\" is not supported, only UTF-8"},
	    {{{"Content-Type", "application/cloudevents+json; charset"}},
	     1,
	     "{}",
	     "structured mode: header Content-Type: not an RFC 2046 media type"},
	    {{{"Content-Type", "application/cloudevents+json"}},
	     1,
	     "{\"id\":",
	     "structured mode: invalid JSON"},
	    {{{"Content-Type", "application/cloudevents+json"}},
	     1,
	     "{\"id\":\"1\"}",
	     "structured mode: missing required attribute \"specversion\""},
	    {{H_MIN, {"ce-datacontenttype", "text/plain"}},
	     5,
	     "x",
	     "header ce-datacontenttype must not be sent"},
	    {{H_MIN, {"CE-Id", "2"}}, 5, "", "header CE-Id appears more than once"},
	    {{H_MIN, {"ce-specversion", "1.0"}}, 5, "", "header ce-specversion appears more"},
	    {{H_MIN, {"Content-Type", "text/plain"}, {"content-type", "text/plain"}},
	     6,
	     "x",
	     "more than one Content-Type header"},
	    {{{"ce-specversion", "0.3"}, {"ce-id", "1"}, {"ce-source", "/s"}, {"ce-type", "t"}},
	     4,
	     "",
	     "header ce-specversion: attribute \"specversion\": \"0.3\" is not supported"},
	    {{{"ce-specversion", "1.0"}, {"ce-source", "/s"}, {"ce-type", "t"}},
	     3,
	     "",
	     "missing required header ce-id"},
	    {{{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-type", "t"}},
	     3,
	     "",
	     "missing required header ce-source"},
	    {{H_MIN, {"ce-subject", "a%zzb"}},
	     5,
	     "",
	     "header ce-subject: '%' at character 2 does not start a %XX escape"},
	    {{H_MIN, {"ce-subject", "ab%4"}}, 5, "", "does not start a %XX escape"},
	    {{H_MIN, {"ce-subject", "%C0%A0"}}, 5, "", "the decoded value is not valid UTF-8"},
	    {{H_MIN, {"ce-subject", "%ED%A0%80"}}, 5, "", "not valid UTF-8"},
	    {{H_MIN, {"ce-subject", "\"open"}}, 5, "", "unterminated quoted string"},
	    {{H_MIN, {"ce-subject", "\"a\"b"}}, 5, "", "text after the closing quote"},
	    {{H_MIN, {"ce-subject", "a%0Ab"}}, 5, "", "control character U+000A"},
	    {{H_MIN, {"ce-subject", ""}}, 5, "", "attribute \"subject\": must not be empty"},
	    {{H_MIN, {"ce-time", "noon"}}, 5, "", "header ce-time: attribute \"time\": not an RFC"},
	    {{H_MIN, {"ce-My.Ext", "x"}}, 5, "", "invalid attribute name \"my.ext\""},
	    {{H_MIN, {"ce-", "x"}}, 5, "", "invalid attribute name \"\""},
	    {{H_MIN, {"ce-data", "x"}}, 5, "", "\"data\" is the payload, not an attribute"},
	    {{H_MIN, {"ce-averyveryverylongextensionname", "x"}}, 5, "", "invalid attribute name"},
	    {{H_MIN, {"Content-Type", "xyz"}},
	     5,
	     "x",
	     "header Content-Type: attribute \"datacontenttype\": not an RFC 2046 media type"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		struct td_event *ev = td_event_from_http(cases[i].h, cases[i].n, cases[i].body,
							 strlen(cases[i].body), err, sizeof(err));
		cr_expect_null(ev, "case %zu accepted", i);
		td_event_unref(ev);
		cr_expect(strstr(err, cases[i].words) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
			  err, cases[i].words);
	}
}

Test(event, from_http_edge_cases)
{
	const struct td_http_header h[] = {
	    H_MIN, {"ce-empty", ""}, {"ce-sp", "\t \"\" "}, {"content-type", " text/plain "}};
	char err[256] = "";
	struct td_event *ev = td_event_from_http(h, 7, NULL, 0, err, sizeof(err));

	cr_assert_not_null(ev, "%s", err);
	cr_expect_str_eq(td_event_get(ev, "empty"), "");
	cr_expect_str_eq(td_event_get(ev, "sp"), "");
	cr_expect_str_eq(td_event_get(ev, "datacontenttype"), "text/plain");
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_NONE, "no body, no payload");
	td_event_unref(ev);
	ev = td_event_from_http(h, 4, "\xff", 1, err, sizeof(err));
	cr_assert_not_null(ev, "%s", err);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_BINARY);
	td_event_unref(ev);
	cr_expect_null(td_event_from_http(NULL, 0, NULL, 0, err, sizeof(err)));
	cr_expect(strstr(err, "not a CloudEvent") != NULL, "%s", err);
	cr_expect_null(td_event_from_http(NULL, 3, NULL, 0, err, sizeof(err)));
}

Test(event, http_is_cloudevent)
{
	static const struct {
		struct td_http_header h[2];
		size_t n;
		bool yes;
	} cases[] = {
	    {{{"CE-SpecVersion", "1.0"}}, 1, true},
	    {{{"content-type", "application/cloudevents+json"}}, 1, true},
	    {{{"Content-Type", " Application/CloudEvents-Batch+JSON ; charset=utf-8"}}, 1, true},
	    {{{"Content-Type", "application/json"}, {"ce-id", "1"}}, 2, false},
	    {{{"Content-Type", "application/cloudevent"}}, 1, false},
	    {{{"X-Thing", "ce-specversion"}}, 1, false},
	    {{{NULL, NULL}}, 1, false},
	    {{{"Content-Type", NULL}}, 1, false},
	    {{{0}}, 0, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(td_event_http_is_cloudevent(cases[i].h, cases[i].n), cases[i].yes,
			     "case %zu", i);
}

Test(event, http_headers_out)
{
	struct td_event *ev = base_event();
	struct hdrs hs = {0};
	static const char *const names[] = {"ce-specversion", "ce-id",	 "ce-source",	  "ce-type",
					    "ce-subject",     "ce-time", "ce-dataschema", "ce-e1",
					    "ce-n",	      "ce-b",	 "Content-Type"};

	cr_assert_eq(td_event_set(ev, "subject", "Euro \xe2\x82\xac \xf0\x9f\x98\x80"), 0);
	cr_assert_eq(td_event_set(ev, "time", "2018-04-05T17:31:00Z"), 0);
	cr_assert_eq(td_event_set(ev, "dataschema", "https://x/y?a=1%20"), 0);
	cr_assert_eq(td_event_set(ev, "e1", "100% \"sure\"~"), 0);
	cr_assert_eq(td_event_set_int(ev, "n", 42), 0);
	cr_assert_eq(td_event_set_bool(ev, "b", true), 0);
	cr_assert_eq(td_event_set_data(ev, "<x/>", 4, "application/xml"), 0);
	td_event_http_headers(ev, collect, &hs);
	cr_assert_eq(hs.n, sizeof(names) / sizeof(names[0]));
	for (size_t i = 0; i < hs.n; i++)
		cr_expect_str_eq(hs.name[i], names[i], "header %zu in order", i);
	cr_expect_str_eq(hdr(&hs, "ce-specversion"), "1.0");
	cr_expect_str_eq(hdr(&hs, "ce-subject"), "Euro%20%E2%82%AC%20%F0%9F%98%80");
	cr_expect_str_eq(hdr(&hs, "ce-dataschema"), "https://x/y?a=1%2520");
	cr_expect_str_eq(hdr(&hs, "ce-e1"), "100%25%20%22sure%22~");
	cr_expect_str_eq(hdr(&hs, "ce-n"), "42");
	cr_expect_str_eq(hdr(&hs, "ce-b"), "true");
	cr_expect_str_eq(hdr(&hs, "Content-Type"), "application/xml");
	cr_expect_null(hdr(&hs, "ce-datacontenttype"));
	hdrs_free(&hs);
	td_event_unref(ev);
}

Test(event, http_headers_implied_content_type)
{
	static const struct {
		const char *bytes;
		size_t len;
		const char *ct;
	} cases[] = {
	    {NULL, 0, NULL},
	    {"{}", 2, "application/json"},
	    {"text", 4, "text/plain; charset=utf-8"},
	    {"\xff", 1, "application/octet-stream"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct td_event *ev = base_event();
		struct hdrs hs = {0};

		if (cases[i].bytes)
			cr_assert_eq(td_event_set_data(ev, cases[i].bytes, cases[i].len, NULL), 0);
		td_event_http_headers(ev, collect, &hs);
		if (cases[i].ct)
			cr_expect_str_eq(hdr(&hs, "Content-Type") ? hdr(&hs, "Content-Type") : "",
					 cases[i].ct, "case %zu", i);
		else
			cr_expect_null(hdr(&hs, "Content-Type"), "case %zu", i);
		hdrs_free(&hs);
		td_event_unref(ev);
	}
}

/* Validation, equality, reference counting */

Test(event, validate_required)
{
	static const char *const req[] = {"id", "source", "type"};
	char err[128];

	for (size_t i = 0; i < 3; i++) {
		struct td_event *ev = base_event();
		cr_expect_eq(td_event_validate(ev, err, sizeof(err)), 0);
		cr_assert_eq(td_event_set(ev, req[i], NULL), 0);
		cr_expect_eq(td_event_validate(ev, err, sizeof(err)), -TD_EINVAL);
		cr_expect(strstr(err, req[i]) != NULL, "%s", err);
		td_event_unref(ev);
	}
	cr_expect_eq(td_event_validate(NULL, err, sizeof(err)), -TD_EINVAL);
}

Test(event, equality_sees_every_difference)
{
	struct td_event *a = rich_event(1), *b;

	cr_assert_eq(td_event_set_int(a, "p", 1), 0);
	b = rich_event(1);
	cr_assert_eq(td_event_set_int(b, "p", 1), 0);
	cr_expect(td_event_equal(a, b));
	cr_expect(td_event_equal(a, a));
	cr_expect_not(td_event_equal(a, NULL));
	cr_assert_eq(td_event_set(b, "p", "1"), 0);
	cr_expect_not(td_event_equal(a, b), "type differs");
	cr_assert_eq(td_event_set_int(b, "p", 2), 0);
	cr_expect_not(td_event_equal(a, b), "value differs");
	cr_assert_eq(td_event_set_int(b, "p", 1), 0);
	cr_assert_eq(td_event_set(b, "subject", "other"), 0);
	cr_expect_not(td_event_equal(a, b), "subject differs");
	td_event_unref(b);
	b = rich_event(1);
	cr_assert_eq(td_event_set_int(b, "p", 1), 0);
	cr_assert_eq(td_event_set_data(b, " " RICH_JSON "\n", strlen(RICH_JSON) + 2, NULL), 0);
	cr_expect(td_event_equal(a, b), "whitespace around a JSON value does not count");
	cr_assert_eq(td_event_set_data(b, "{\"a\":[1,2.5,\"\xc3\xa8\"]}", strlen(RICH_JSON), NULL),
		     0);
	cr_expect_not(td_event_equal(a, b), "payload differs");
	cr_assert_eq(td_event_set_data(b, RICH_JSON " ", strlen(RICH_JSON) + 1, "text/plain"), 0);
	cr_expect_not(td_event_equal(a, b), "kind and content type differ");
	cr_assert_eq(td_event_set_data(b, NULL, 0, NULL), 0);
	cr_expect_not(td_event_equal(a, b), "no payload");
	td_event_unref(b);
	b = rich_event(1);
	cr_expect_not(td_event_equal(a, b), "an extension less");
	cr_assert_eq(td_event_set_int(b, "q", 1), 0);
	cr_expect_not(td_event_equal(a, b), "another extension");
	td_event_unref(b);
	td_event_unref(a);
}

static void *ref_worker(void *arg)
{
	struct td_event *ev = arg;

	for (int i = 0; i < 20000; i++) {
		td_event_ref(ev);
		if (strcmp(td_event_get(ev, "id"), "1") != 0)
			return (void *)1;
		td_event_unref(ev);
	}
	td_event_unref(ev); /* the reference the creator handed to this thread */
	return NULL;
}

Test(event, reference_count_across_threads)
{
	struct td_event *ev = base_event();
	pthread_t th[4];
	void *rv;

	for (int i = 0; i < 4; i++) {
		td_event_ref(ev);
		cr_assert_eq(pthread_create(&th[i], NULL, ref_worker, ev), 0);
	}
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pthread_join(th[i], &rv), 0);
		cr_expect_null(rv);
	}
	cr_expect_str_eq(td_event_get(ev, "id"), "1", "still alive with one reference");
	td_event_unref(ev); /* frees it: ASan reports a leak or a double free otherwise */
	td_event_unref(NULL);
}

/* td_event_take_data_json: the payload is taken over as it is (no copy), classified JSON
 * without a look, and the event reads back and compares as if td_event_set_data made it. */
Test(event, take_data_json)
{
	static const char text[] = "{\"a\":[1,2,{\"b\":\"c\"}]}";
	struct td_event *taken = base_event(), *copied = base_event();
	char *buf = strdup(text);
	size_t len;

	cr_assert_not_null(buf);
	cr_assert_eq(td_event_take_data_json(taken, buf, strlen(text), "application/json"), 0);
	cr_expect_eq(td_event_data(taken, &len), buf, "the buffer is the payload: no copy");
	cr_expect_eq(len, strlen(text));
	cr_expect_eq(td_event_data_kind(taken), TD_DATA_JSON);
	cr_expect_str_eq(td_event_get(taken, "datacontenttype"), "application/json");
	cr_assert_eq(td_event_set_data(copied, text, strlen(text), "application/json"), 0);
	cr_expect(td_event_equal(taken, copied));
	char *a = td_event_to_json(taken, NULL), *b = td_event_to_json(copied, NULL);
	cr_assert(a && b);
	cr_expect_str_eq(a, b);
	free(a);
	free(b);
	/* Replacing a payload frees the old one (ASan checks); NULL keeps a JSON-like type. */
	cr_assert_eq(td_event_take_data_json(taken, strdup("[true]"), 6, NULL), 0);
	cr_expect_str_eq(td_event_data(taken, NULL), "[true]");
	cr_expect_str_eq(td_event_get(taken, "datacontenttype"), "application/json");
	td_event_unref(taken);
	td_event_unref(copied);

	/* Without a content type the event keeps none (absent is JSON-like). */
	struct td_event *bare = base_event();
	cr_assert_eq(td_event_take_data_json(bare, strdup("7"), 1, NULL), 0);
	cr_expect_null(td_event_get(bare, "datacontenttype"));
	cr_expect_eq(td_event_data_kind(bare), TD_DATA_JSON);
	td_event_unref(bare);
}

/* Refusals leave the event as it was and still free the buffer (ASan checks). */
Test(event, take_data_json_refusals)
{
	static const struct {
		const char *ct_before; /* datacontenttype already set, or NULL */
		const char *json;      /* NULL: pass NULL */
		size_t len;
		const char *ct; /* passed */
		bool drop_nul;	/* json[len] is not NUL */
	} cases[] = {
	    {NULL, NULL, 0, "application/json", false},
	    {NULL, "{}", 0, "application/json", false},
	    {NULL, "{}", 2, "text/plain", false},
	    {NULL, "{}", 2, "application/cloudevents+json; x", false},
	    {NULL, "{}", 2, "", false},
	    {NULL, "{}", 2, "json", false},
	    {"text/plain", "{}", 2, NULL, false},
	    {NULL, "{}x", 2, "application/json", true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_event *ev = base_event();
		if (cases[i].ct_before)
			cr_assert_eq(td_event_set(ev, "datacontenttype", cases[i].ct_before), 0);
		cr_assert_eq(td_event_set_data(ev, "\"old\"", 5, NULL), 0);
		enum td_data_kind kind = td_event_data_kind(ev);
		char *buf = cases[i].json ? strdup(cases[i].json) : NULL;
		cr_expect_eq(td_event_take_data_json(ev, buf, cases[i].len, cases[i].ct),
			     -TD_EINVAL, "case %zu", i);
		cr_expect_str_eq(td_event_data(ev, NULL), "\"old\"", "case %zu", i);
		cr_expect_eq(td_event_data_kind(ev), kind, "case %zu", i);
		const char *ct = td_event_get(ev, "datacontenttype");
		if (cases[i].ct_before)
			cr_expect_str_eq(ct, cases[i].ct_before, "case %zu", i);
		else
			cr_expect_null(ct, "case %zu", i);
		td_event_unref(ev);
	}
}

/*
 * The validator and the escaper pass plain bytes eight at a time: a special byte at
 * every position around the word boundaries is still seen (table: what is put at
 * position i of a 24-byte run of 'a', and whether the JSON string is then valid).
 */
Test(event, string_scan_word_boundaries)
{
	static const struct {
		const char *bytes;
		bool valid;
		const char *escaped; /* td_json_append_string's text for the raw bytes, or NULL */
	} cases[] = {
	    {"\\\"", true, NULL},	    {"\\\\", true, NULL},	{"\\u00e9", true, NULL},
	    {"\"", false, "\\\""},	    {"\\", false, "\\\\"},	{"\x01", false, "\\u0001"},
	    {"\x1f", false, "\\u001f"},	    {"\n", false, "\\n"},	{"\x7f", true, "\x7f"},
	    {"\xc3\xa9", true, "\xc3\xa9"}, {"\xff", false, "\\ufffd"}, {" ", true, " "},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		for (size_t i = 0; i <= 24; i++) {
			char raw[64], text[80];
			size_t n = strlen(cases[c].bytes);
			memset(raw, 'a', 24);
			memcpy(raw + i, cases[c].bytes, n);
			memset(raw + i + n, 'a', 24 - i);
			size_t rlen = 24 + n;
			text[0] = '"';
			memcpy(text + 1, raw, rlen);
			text[rlen + 1] = '"';
			cr_expect_eq(td_json_valid(text, rlen + 2, 0), cases[c].valid,
				     "case %zu at %zu", c, i);
			if (!cases[c].escaped)
				continue;
			struct td_buf out = {0};
			char want[96];
			size_t e = strlen(cases[c].escaped);
			want[0] = '"';
			memset(want + 1, 'a', i);
			memcpy(want + 1 + i, cases[c].escaped, e);
			memset(want + 1 + i + e, 'a', 24 - i);
			want[1 + 24 + e] = '"';
			want[2 + 24 + e] = '\0';
			cr_assert_eq(td_json_append_string(&out, raw, rlen), 0);
			cr_expect_str_eq(out.data, want, "case %zu at %zu", c, i);
			cr_expect(td_json_valid(out.data, out.len, 0), "case %zu at %zu", c, i);
			td_buf_free(&out);
		}
	}
}

/* Stored form (td_event_encode / td_event_decode) */

static struct td_event *stored_round_trip(const struct td_event *ev)
{
	size_t len;
	char err[256] = "";
	char *stored = td_event_encode(ev, &len);

	cr_assert_not_null(stored);
	cr_assert_eq((unsigned char)stored[0], 0, "the stored form starts with its mark");
	struct td_event *back = td_event_decode(stored, len, err, sizeof(err));
	cr_assert_not_null(back, "decode: %s", err);
	cr_assert(td_event_equal(ev, back));
	cr_assert_eq(td_event_data_kind(ev), td_event_data_kind(back));
	size_t n1, n2;
	const void *d1 = td_event_data(ev, &n1), *d2 = td_event_data(back, &n2);
	cr_assert_eq(n1, n2);
	cr_assert((d1 == NULL) == (d2 == NULL));
	if (n1)
		cr_assert_eq(memcmp(d1, d2, n1), 0);
	free(stored);
	return back;
}

Test(event, stored_form_round_trips)
{
	static const unsigned char binary[] = {0xff, 0x00, 0xfe, 0x80};
	struct {
		const char *ct;
		const void *data;
		size_t len;
		enum td_data_kind kind;
	} payloads[] = {
	    {NULL, NULL, 0, TD_DATA_NONE},
	    {"application/json", "{\"a\":[1,2,{\"b\":null}]}", 22, TD_DATA_JSON},
	    {"text/plain", "h\xc3\xa9llo", 6, TD_DATA_TEXT},
	    {"application/json", "not json", 8, TD_DATA_TEXT},
	    {NULL, binary, sizeof binary, TD_DATA_BINARY},
	    {"text/plain", "", 0, TD_DATA_TEXT},
	};
	for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
		struct td_event *ev = base_event();
		cr_assert_eq(td_event_set(ev, "subject", "a/b c"), 0);
		cr_assert_eq(td_event_set(ev, "time", "2026-11-27T08:00:00.123Z"), 0);
		cr_assert_eq(td_event_set(ev, "dataschema", "https://example.com/s"), 0);
		cr_assert_eq(td_event_set(ev, "ext1", "v\xc3\xa9"), 0);
		cr_assert_eq(td_event_set(ev, "empty", ""), 0);
		cr_assert_eq(td_event_set_int(ev, "count", -2147483648LL), 0);
		cr_assert_eq(td_event_set_bool(ev, "flag", false), 0);
		if (payloads[i].data)
			cr_assert_eq(td_event_set_data(ev, payloads[i].data, payloads[i].len,
						       payloads[i].ct),
				     0);
		cr_assert_eq(td_event_data_kind(ev), payloads[i].kind, "case %zu", i);
		struct td_event *back = stored_round_trip(ev);
		cr_assert_eq(td_event_extension_type(back, 2), TD_ATTR_INTEGER);
		cr_assert_eq(td_event_extension_type(back, 3), TD_ATTR_BOOLEAN);
		cr_assert_str_eq(td_event_get(back, "count"), "-2147483648");
		td_event_unref(back);
		td_event_unref(ev);
	}
	/* A minimal event, and one with the most extensions. */
	struct td_event *ev = base_event();
	td_event_unref(stored_round_trip(ev));
	for (int i = 0; i < TD_EVENT_MAX_EXTENSIONS; i++) {
		char name[16];
		snprintf(name, sizeof name, "x%d", i);
		cr_assert_eq(td_event_set_int(ev, name, i), 0);
	}
	td_event_unref(stored_round_trip(ev));
	td_event_unref(ev);
}

Test(event, stored_form_reads_json_too)
{
	const char *json = "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
			   "\"datacontenttype\":\"application/json\",\"data\":{\"k\":1}}";
	char err[256];
	struct td_event *ev = td_event_decode(json, strlen(json), err, sizeof(err));
	cr_assert_not_null(ev, "%s", err);
	cr_assert_eq(td_event_data_kind(ev), TD_DATA_JSON);
	td_event_unref(ev);
	cr_assert_null(td_event_decode("{", 1, err, sizeof(err)));
	cr_assert_null(td_event_decode("", 0, err, sizeof(err)));
}

Test(event, stored_form_damage_is_an_error)
{
	struct td_event *ev = base_event();
	cr_assert_eq(td_event_set(ev, "subject", "s"), 0);
	cr_assert_eq(td_event_set_int(ev, "n", 7), 0);
	cr_assert_eq(td_event_set_data(ev, "{}", 2, "application/json"), 0);
	size_t len;
	char err[256];
	char *stored = td_event_encode(ev, &len);
	cr_assert_not_null(stored);

	/* Every truncation is refused with the place named. */
	for (size_t n = 0; n < len; n++) {
		char *cut = malloc(n ? n : 1);
		cr_assert_not_null(cut);
		memcpy(cut, stored, n);
		err[0] = '\0';
		struct td_event *back = td_event_decode(cut, n, err, sizeof(err));
		cr_expect_null(back, "a cut at %zu was accepted", n);
		td_event_unref(back);
		cr_expect_neq(err[0], '\0', "a cut at %zu has no reason", n);
		free(cut);
	}
	/* A trailing byte, an unknown version, a bad payload kind. */
	char *more = malloc(len + 1);
	cr_assert_not_null(more);
	memcpy(more, stored, len);
	more[len] = 'x';
	cr_assert_null(td_event_decode(more, len + 1, err, sizeof(err)));
	cr_assert(strstr(err, "damaged"), "%s", err);
	memcpy(more, stored, len);
	more[1] = 9;
	cr_assert_null(td_event_decode(more, len, err, sizeof(err)));
	cr_assert(strstr(err, "version 9"), "%s", err);
	memcpy(more, stored, len);
	more[len - 2 - 4 - 1] = 7; /* kind byte: before the 4-byte length and "{}" */
	cr_assert_null(td_event_decode(more, len, err, sizeof(err)));
	cr_assert(strstr(err, "payload"), "%s", err);

	/* An attribute the setters refuse is refused here too (a time that is not RFC
	 * 3339), as is an extension value that is not its type's. */
	struct td_event *timed = base_event();
	cr_assert_eq(td_event_set(timed, "time", "2026-11-27T08:00:00Z"), 0);
	size_t tlen;
	char *t = td_event_encode(timed, &tlen);
	char *at = memmem(t, tlen, "2026-11-27T08", 13);
	cr_assert_not_null(at);
	at[10] = ' ';
	cr_assert_null(td_event_decode(t, tlen, err, sizeof(err)));
	cr_assert(strstr(err, "time"), "%s", err);
	at = memmem(stored, len, "n\x01", 2); /* extension n, type Integer, value "7" */
	cr_assert_not_null(at);
	memcpy(more, stored, len);
	more[at - stored + 1 + 1 + 4] = 'x';
	cr_assert_null(td_event_decode(more, len, err, sizeof(err)));
	cr_assert(strstr(err, "Integer"), "%s", err);
	free(t);
	td_event_unref(timed);
	free(more);
	free(stored);
	td_event_unref(ev);
}
