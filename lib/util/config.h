/*
 * config.h - defaults shared by every program (DESIGN section 8).
 * Each returns a newly allocated string.
 */
#ifndef VINE_CONFIG_H
#define VINE_CONFIG_H

/* -c CACHE, else $VINE_CACHE, else ${TMPDIR:-/tmp}/vine-$USER (short: see vine(7)) */
char *vine_default_cache(void);
/* -N NODE, else $VINE_NODE, else the host name */
char *vine_default_node(void);
/* -s STATE, else $VINE_STATE, else ./vine.db */
char *vine_default_state(void);

#endif
