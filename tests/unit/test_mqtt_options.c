/*
 * Unit tests for the options of the mqtt source kind (connectors/mqtt.c): defaults, the
 * checks across options (URIs, topic filters, shared_group, TLS, credentials, reconnect
 * bounds, reply_topic) with file, line and option in every message, and the example
 * configuration, loaded as it is with its variables set.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <triggerd/config.h>
#include <triggerd/source.h>

static struct td_config *load(const char *source_body, struct td_diag *diag)
{
	char text[2048];
	snprintf(text, sizeof text,
		 "sources = ( { name = \"m\"; kind = \"mqtt\"; %s } );\n"
		 "functions = ( { name = \"f\"; kind = \"log\"; } );\n"
		 "triggers = ( { name = \"t\"; sources = [\"m\"]; function = \"f\"; } );\n",
		 source_body);
	memset(diag, 0, sizeof *diag);
	return td_config_load_string(text, "t.cfg", diag);
}

static bool has(const struct td_diag *d, const char *words)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->msgs[i], words))
			return true;
	return false;
}

static void dump(const struct td_diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "  %s\n", d->msgs[i]);
}

Test(mqtt_options, accepts_a_minimal_source_with_its_defaults)
{
	struct td_diag d;
	struct td_config *cfg = load("uri = \"tcp://127.0.0.1:1883\"; topics = \"a/#\";", &d);
	dump(&d);
	cr_assert(cfg);
	const struct td_source_conf *s = td_config_source(cfg, "m");
	cr_assert(s);
	cr_expect_str_eq(s->ops->name, "mqtt");
	/* describe prints the table: every option documented. */
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	td_options_describe(s->ops->options, f);
	fclose(f);
	cr_expect(strstr(out, "receive_maximum"));
	cr_expect(strstr(out, "reply_topic"));
	cr_expect(strstr(out, "max_payload"));
	cr_expect(strstr(out, "publish.qos"));
	free(out);
	td_config_destroy(cfg);
	td_diag_clear(&d);
}

struct bad_case {
	const char *body;
	const char *words;
};

Test(mqtt_options, reports_every_bad_combination_with_its_place)
{
	static const struct bad_case cases[] = {
	    {"uri = \"http://h:1\"; topics = \"a\";", "option 'uri'"},
	    {"uri = \"tcp://h:1\"; topics = [\"a/#/b\"];",
	     "option 'topics': \"a/#/b\": the topic filter: '#' at byte 2"},
	    {"uri = \"tcp://h:1\"; topics = [\"ok\", \"x+\"];", "'+' at byte 1"},
	    {"uri = \"tcp://h:1\"; topics = \"$share/g/a\";",
	     "without $share/ and set shared_group"},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; shared_group = \"a/b\";",
	     "option 'shared_group': \"a/b\" must not contain"},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; tls = { ca_file = \"/ca.pem\"; };",
	     "tls options need an ssl://"},
	    {"uri = \"ssl://h:1\"; topics = \"a\"; tls = { cert_file = \"/c.pem\"; };",
	     "'tls.cert_file' and 'tls.key_file' go together"},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; password = \"p\";",
	     "option 'password' needs option 'username'"},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; reconnect = { min = \"30s\"; max = \"5s\"; };",
	     "'reconnect.max' must not be shorter"},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; reply_topic = \"r/+/{topic}\";",
	     "option 'reply_topic': reply topic \"r/+/example/topic\""},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; qos = 3;", "qos"},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; protocol = \"4\";", "protocol"},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; receive_maximum = 0;", "receive_maximum"},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; max_payload = \"1GB\";", "max_payload"},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; publish = { qos = 5; };", "publish.qos"},
	    {"uri = \"tcp://h:1\"; topics = \"a\"; colour = \"red\";", "colour"},
	    {"topics = \"a\";", "uri"},
	    {"uri = \"tcp://h:1\";", "topics"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_diag d;
		struct td_config *cfg = load(cases[i].body, &d);
		cr_expect_null(cfg, "case %zu should be refused: %s", i, cases[i].body);
		cr_expect(has(&d, cases[i].words), "case %zu: want \"%s\"", i, cases[i].words);
		cr_expect(has(&d, "t.cfg:1:"), "case %zu: messages name the file and line", i);
		if (!has(&d, cases[i].words))
			dump(&d);
		td_config_destroy(cfg);
		td_diag_clear(&d);
	}
}

Test(mqtt_options, loads_the_example_configuration)
{
	setenv("MQTT_URL", "tcp://127.0.0.1:1883", 1);
	setenv("FUNCTION_URL", "http://127.0.0.1:8080/", 1);
	unsetenv("MQTT_TOPIC");
	unsetenv("MQTT_GROUP");
	struct td_diag d = {0};
	struct td_config *cfg = td_config_load("config/examples/mqtt.cfg", &d);
	dump(&d);
	cr_assert(cfg, "config/examples/mqtt.cfg must load as it is");
	cr_expect(td_config_source(cfg, "sensors"));
	td_config_destroy(cfg);
	td_diag_clear(&d);
}
