/*
 * test-relocate.c - the relocation pieces: text, binary, shebangs and
 * the manifest parser.
 */
#include <stdlib.h>
#include <string.h>

#include "archive/relocate.h"
#include "t.h"

static const char *text(const char *in, const char *from, const char *to)
{
	static struct vine_buf out = VINE_BUF_INIT;

	vine_buf_reset(&out);
	vine_relocate_text(in, strlen(in), from, to, &out);
	return out.data;
}

static const char *shebang(const char *in)
{
	static struct vine_buf b = VINE_BUF_INIT;

	vine_buf_reset(&b);
	vine_buf_addstr(&b, in);
	vine_shebang_fix(&b);
	return b.data;
}

static int parse(const char *json, struct vine_manifest *m)
{
	return vine_manifest_parse(json, strlen(json), m);
}

static int parse_fails(const char *json, const char *msg)
{
	struct vine_manifest m;

	if (parse(json, &m) == 0) {
		vine_manifest_free(&m);
		return 0;
	}
	if (!strstr(vine_errmsg(), msg)) {
		fprintf(stderr, "%s: got '%s'\n", json, vine_errmsg());
		return 0;
	}
	return 1;
}

int main(void)
{
	/* text: every occurrence, any length */
	check_str(text("a /old/p b /old/p/x /old/pp", "/old/p", "/n"), ==, "a /n b /n/x /np");
	check_str(text("none here", "/old", "/new/longer"), ==, "none here");
	check_str(text("/o/o/o", "/o", "/o/o"), ==, "/o/o/o/o/o/o");

	/* binary: in place, NUL padded, offsets kept */
	char bin[] = "x\0/old/prefix/lib:/old/prefix/lib64\0/old/prefix\0tail";
	size_t blen = sizeof(bin) - 1;
	check_int(vine_relocate_binary(bin, blen, "/old/prefix", "/n"), ==, 3);
	CHECK(!memcmp(bin, "x\0/n/lib:/n/lib64\0", 18));
	for (size_t i = 18; i < 36; i++)
		check_int(bin[i], ==, '\0');
	CHECK(!memcmp(bin + 36, "/n\0", 3));
	for (size_t i = 39; i < 48; i++)
		check_int(bin[i], ==, '\0');
	CHECK(!memcmp(bin + blen - 4, "tail", 4));
	char same[] = "a/old\0";
	check_int(vine_relocate_binary(same, 6, "/old", "/new"), ==, 1);
	CHECK(!memcmp(same, "a/new\0", 6));
	char longer[] = "/old\0";
	check_int(vine_relocate_binary(longer, 5, "/old", "/newer"), ==, -1);
	check_str(longer, ==, "/old");
	char noend[] = "ab/old/x";
	check_int(vine_relocate_binary(noend, 8, "/old", "/n"), ==, 1);
	CHECK(!memcmp(noend, "ab/n/x\0\0", 8));

	/* shebangs: short ones stay, long python ones get the trampoline */
	char lp[200], line[300];
	memset(lp, 'p', sizeof(lp));
	lp[0] = '/';
	lp[150] = '\0';
	snprintf(line, sizeof(line), "#!%s/bin/python3.11\nimport x\n", lp);
	char want[600];
	snprintf(want, sizeof(want), "#!/bin/sh\n'''exec' %s/bin/python3.11 \"$0\" \"$@\"\n' '''\nimport x\n", lp);
	check_str(shebang(line), ==, want);
	snprintf(line, sizeof(line), "#!%s/bin/python -E -s\n", lp);
	snprintf(want, sizeof(want), "#!/bin/sh\n'''exec' %s/bin/python -E -s \"$0\" \"$@\"\n' '''\n", lp);
	check_str(shebang(line), ==, want);
	/* the kernel ends the interpreter at the first blank: the rest is an argument */
	snprintf(line, sizeof(line), "#!%s/a dir/python3\n", lp);
	check_int(strncmp(shebang(line), "#!/usr/bin/env -S a dir/python3", 31), ==, 0);
	snprintf(line, sizeof(line), "#!%s/it's/python3\n", lp);
	snprintf(want, sizeof(want), "#!/bin/sh\n'''exec' '%s/it'\\''s/python3' \"$0\" \"$@\"\n' '''\n", lp);
	check_str(shebang(line), ==, want);
	snprintf(line, sizeof(line), "#!%s/bin/perl\nprint 1;\n", lp);
	check_str(shebang(line), ==, "#!/usr/bin/env perl\nprint 1;\n");
	snprintf(line, sizeof(line), "#!%s/bin/bash -e\n", lp);
	check_str(shebang(line), ==, "#!/usr/bin/env -S bash -e\n");
	snprintf(line, sizeof(line), "#!%s/bin/pythonista\n", lp);
	check_str(shebang(line), ==, "#!/usr/bin/env pythonista\n");
	check_str(shebang("#!/usr/bin/python3\nok\n"), ==, "#!/usr/bin/python3\nok\n");
	check_str(shebang("no shebang"), ==, "no shebang");
	snprintf(line, sizeof(line), "#%s/bin/python3\n", lp);
	check_str(shebang(line), ==, line);

	/* the manifest */
	struct vine_manifest m;
	check_int(parse("{\"vine_manifest\": 1, \"prefix\": \"/p/q\", \"entries\": 12, \"future\": true,"
		" \"files\": [{\"path\": \"./bin//pip\", \"type\": \"text\"},"
		" {\"path\": \"lib/x.so\", \"type\": \"binary\"}]}", &m), ==, 0);
	check_str(m.prefix, ==, "/p/q");
	check_int(m.entries, ==, 12);
	check_int(m.n, ==, 2);
	check_str(m.files[0].path, ==, "bin/pip");
	CHECK(!m.files[0].binary);
	CHECK(m.files[1].binary);
	vine_manifest_free(&m);
	CHECK(parse_fails("[]", "not a JSON object"));
	CHECK(parse_fails("{", "invalid manifest"));
	CHECK(parse_fails("{\"vine_manifest\": 2}", "\"vine_manifest\" is not 1"));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"prefix\": \"rel\"}",
		"\"prefix\" is not an absolute path"));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"prefix\": \"/\"}",
		"\"prefix\" is not an absolute path"));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"prefix\": \"/a\"}",
		"\"entries\" is not a count"));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"prefix\": \"/a\", \"entries\": -1}",
		"\"entries\""));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"prefix\": \"/a\", \"entries\": 1}",
		"\"files\" is not a list"));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"prefix\": \"/a\", \"entries\": 1, \"files\": [{\"path\": \"x\"}]}",
		"needs a \"path\" and a \"type\""));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"prefix\": \"/a\", \"entries\": 1, "
		"\"files\": [{\"path\": \"x\", \"type\": \"exe\"}]}",
		"needs a \"path\" and a \"type\""));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"prefix\": \"/a\", \"entries\": 1, "
		"\"files\": [{\"path\": \"../x\", \"type\": \"text\"}]}", "'..' component"));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"prefix\": \"/a\", \"entries\": 1, "
		"\"files\": [{\"path\": \"/etc/passwd\", \"type\": \"text\"}]}",
		"absolute path"));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"prefix\": \"/a\", \"entries\": 1, "
		"\"files\": [{\"path\": \".\", \"type\": \"text\"}]}", "not a file name"));
	CHECK(parse_fails("{\"vine_manifest\": 1, \"vine_manifest\": 1}", "invalid manifest"));
	return T_END();
}
