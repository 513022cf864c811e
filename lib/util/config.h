/*
 * config.h - defaults shared by every program (vine(7), CONCEPTS).
 * Each returns a newly allocated string.
 */
#ifndef VINE_CONFIG_H
#define VINE_CONFIG_H

#include <stdint.h>

/* -c CACHE, else $VINE_CACHE, else ${TMPDIR:-/tmp}/vine-$USER (short: see vine(7)) */
char *vine_default_cache(void);
/* -L SIZE, else $VINE_CACHE_LIMIT (a size, see vine_parse_size), else 0:
 * no limit.  0, or -1 with a message when the variable is not a size. */
int vine_default_cache_limit(const char *opt, uint64_t *out);
/* -N NODE, else $VINE_NODE, else the host name */
char *vine_default_node(void);
/*
 * The one node-name rule (worker, state, spreading): 1 to VINE_NODE_MAX
 * bytes, no '/' or newline, not starting with '.' (it names directories
 * in the cache).  0, or -1 with a message.
 */
#define VINE_NODE_MAX 255
int vine_node_check(const char *node);
/* -s STATE, else $VINE_STATE, else ./vine.db */
char *vine_default_state(void);

#endif
