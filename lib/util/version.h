/*
 * version.h - the one place vine's version is written; every program's
 * --version prints it.
 */
#ifndef VINE_VERSION_H
#define VINE_VERSION_H

#define VINE_VERSION "0.1.0"

#endif
