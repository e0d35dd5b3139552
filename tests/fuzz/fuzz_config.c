/*
 * Fuzz target of configuration loading: the input is the text of a configuration file,
 * loaded from memory under a fake file name, with every error collected. Nothing may
 * crash, read out of bounds or leak, whatever the text.
 *
 * Inputs holding "@include" are skipped: the loader refuses the directive before
 * libconfig sees it, but should a crafted text slip past that check, libconfig would
 * open whatever path the fuzzer made up (a device, a FIFO). pattern_file paths are safe
 * to fuzz: the loader reads only regular files of bounded size.
 */
#include <triggerd/config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * libconfig 1.5 leaks its string buffer when a syntax error follows a string token (a
 * text of just "" does it): a bug in the library, not in the loader, so LeakSanitizer
 * ignores allocations made in its scanner. Any other leak still fails the run.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memmem(data, size, "@include", 8))
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct td_diag diag = {0};
	struct td_config *cfg = td_config_load_string(text, "fuzz.cfg", &diag);
	td_config_destroy(cfg);
	td_diag_clear(&diag);
	free(text);
	return 0;
}
