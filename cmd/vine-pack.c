/*
 * vine-pack - pack an environment directory into one vine archive and
 * print its object id.  See vine-pack(1); the work is in lib/archive/pack.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "archive/pack.h"

#define STR(x) #x
#define XSTR(x) STR(x)
static const char usage_text[] =
	"usage: vine-pack [-fq] [-o OUT] [-j JOBS] [-l LEVEL] [-x PATTERN]... DIR\n"
	"  -o OUT      write the archive to OUT (default ./BASENAME.tar.gz; - for stdout)\n"
	"  -j JOBS     compression threads, 1 to 1024 (default: the cores it may use)\n"
	"  -l LEVEL    compression level 1-12 (default " XSTR(VINE_PACK_LEVEL) ")\n"
	"  -x PATTERN  leave out paths or names matching PATTERN (repeatable)\n"
	"  -f          replace OUT if it exists\n"
	"  -q          no progress meter\n"
	"  -h          show this help (also --help; --version shows the version)\n";

static void on_signal(int sig)
{
	vine_pack_signal_cleanup();
	raise(sig);  /* SA_RESETHAND: the default action, once we return */
}

static void catch_signals(void)
{
	static const int sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGXFSZ };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old;
		/* leave ignored signals ignored (nohup, or SIGXFSZ to get EFBIG) */
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

int main(int argc, char **argv)
{
	struct vine_pack_opts o = { .level = VINE_PACK_LEVEL };
	struct vine_pack_result r;
	const char **exclude = NULL;
	int c;

	vine_cli_start(argc, argv, usage_text);
	while ((c = getopt(argc, argv, "fhj:l:o:qx:")) != -1) {
		switch (c) {
		case 'f':
			o.force = 1;
			break;
		case 'h':
			vine_usage(VINE_EXIT_OK);
		case 'j':
			o.jobs = (int)vine_opt_int("-j", optarg, 1, 1024);
			break;
		case 'l':
			o.level = (int)vine_opt_int("-l", optarg, 1, 12);
			break;
		case 'o':
			o.out = vine_opt_str("-o", optarg);
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'x':
			exclude = vine_xrealloc(exclude, (o.nexclude + 1) * sizeof(*exclude));
			exclude[o.nexclude++] = optarg;
			break;
		default:
			vine_usage(VINE_EXIT_USAGE);
		}
	}
	if (argc - optind != 1)
		vine_usage(VINE_EXIT_USAGE);
	o.dir = argv[optind];
	o.exclude = exclude;
	o.warn = vine_cli_msg;
	if (o.out && !strcmp(o.out, "-") && isatty(STDOUT_FILENO))
		vine_die(VINE_EXIT_FAIL, "not writing an archive to a terminal");
	if (!vine_cli_tty())
		o.quiet = 1;

	catch_signals();
	if (vine_pack(&o, &r) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	if (r.out)
		printf("%s\n", r.id);
	else
		fprintf(stderr, "%s: object id %s\n", vine_progname(), r.id);
	vine_pack_result_release(&r);
	free(exclude);
	return VINE_EXIT_OK;
}
