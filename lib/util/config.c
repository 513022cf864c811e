/*
 * config.c - default cache, node name and state (see config.h).
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/config.h"
#include "util/util.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

char *vine_default_cache(void)
{
	const char *c = env("VINE_CACHE"), *tmp = env("TMPDIR"), *user = env("USER");
	struct passwd *pw;

	if (c)
		return vine_xstrdup(c);
	if (!user && (pw = getpwuid(getuid())))
		user = pw->pw_name;
	if (!user)
		return vine_xasprintf("%s/vine-cache-%u", tmp ? tmp : "/tmp", (unsigned)getuid());
	return vine_xasprintf("%s/vine-cache-%s", tmp ? tmp : "/tmp", user);
}

char *vine_default_node(void)
{
	const char *n = env("VINE_NODE");
	char host[256];

	if (n)
		return vine_xstrdup(n);
	if (gethostname(host, sizeof(host)) < 0)
		return vine_xstrdup("localhost");
	host[sizeof(host) - 1] = '\0';
	return vine_xstrdup(host);
}

int vine_node_check(const char *node)
{
	size_t n = node ? strlen(node) : 0;

	if (n == 0 || n > VINE_NODE_MAX || strchr(node, '/') || strchr(node, '\n') || node[0] == '.')
		return vine_error("node name '%.*s' is not 1 to %d bytes without '/' or a newline, "
				  "not starting with '.'", n > 64 ? 64 : (int)n, node ? node : "", VINE_NODE_MAX);
	return 0;
}

char *vine_default_state(void)
{
	const char *s = env("VINE_STATE");

	return vine_xstrdup(s ? s : "./vine.db");
}
