/*
 * vine-state - serve a local state to one remote program over its
 * standard input and output (run by that program over SSH; vine-state(1),
 * vine(7) STATE PROTOCOL).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "util/config.h"
#include "state/ssh.h"
#include "state/state-serve.h"

static const char usage_text[] =
	"usage: vine-state [-s STATE]\n"
	"  -s STATE  the state file to serve (default $VINE_STATE, else ./vine.db)\n"
	"  -h        show this help (also --help; --version shows the version)\n";

int main(int argc, char **argv)
{
	char *state = NULL;
	int c, out;

	vine_cli_start(argc, argv, usage_text);
	while ((c = getopt(argc, argv, "s:h")) != -1) {
		switch (c) {
		case 's':
			free(state);
			state = vine_xstrdup(vine_opt_str("-s", optarg));
			break;
		case 'h':
			vine_usage(VINE_EXIT_OK);
		default:
			vine_usage(VINE_EXIT_USAGE);
		}
	}
	if (optind != argc)
		vine_usage(VINE_EXIT_USAGE);
	if (!state)
		state = vine_default_state();
	if (vine_ssh_is_url(state))
		vine_usage_error("'%s': serves a state on this host's disk, not a URL", state);
	if (isatty(STDIN_FILENO) || isatty(STDOUT_FILENO)) {
		vine_warn("speaks the state protocol on standard input and output; it is run "
			  "by vine programs given -s ssh://HOST%s%s", *state == '/' ? "" : "/",
			  state);
		free(state);
		return VINE_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	/* the protocol gets its own descriptor; anything else that writes to
	 * standard output lands on standard error instead of in a frame */
	out = dup(STDOUT_FILENO);
	if (out < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
		vine_die(VINE_EXIT_FAIL, "cannot set up standard output");
	if (vine_state_serve(state, STDIN_FILENO, out) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	close(out);
	free(state);
	return VINE_EXIT_OK;
}
