/*
 * addr.h - "HOST:PORT" listen addresses (vine-worker -l, vine-spread -l).
 *
 * HOST is an IPv4 address, a bracketed IPv6 address ([::1]) or a host
 * name; PORT is 0 to 65535 (0: any free port).
 */
#ifndef VINE_ADDR_H
#define VINE_ADDR_H

/* Split and check s; *host is allocated (brackets removed). */
int vine_addr_parse(const char *s, char **host, int *port);

#endif
