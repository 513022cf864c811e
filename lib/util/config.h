/*
 * config.h - defaults shared by every program (vine(7), CONCEPTS).
 * Each returns a newly allocated string.
 */
#ifndef VINE_CONFIG_H
#define VINE_CONFIG_H

/* -c CACHE, else $VINE_CACHE, else ${TMPDIR:-/tmp}/vine-cache-$USER */
char *vine_default_cache(void);
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
