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
		return vine_xasprintf("%s/vine-%u", tmp ? tmp : "/tmp", (unsigned)getuid());
	return vine_xasprintf("%s/vine-%s", tmp ? tmp : "/tmp", user);
}

int vine_default_cache_limit(const char *opt, uint64_t *out)
{
	const char *v = opt ? opt : env("VINE_CACHE_LIMIT");

	*out = 0;
	if (!v)
		return 0;
	int64_t n;
	if (vine_parse_size(v, INT64_MAX, &n) < 0)
		return opt ? -1 : vine_error_prefix("VINE_CACHE_LIMIT");
	*out = (uint64_t)n;
	return 0;
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
