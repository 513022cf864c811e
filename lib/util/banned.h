/*
 * banned.h - functions vine does not call, after git's banned.h: each use
 * fails to compile with an error naming the function.  util.h includes it
 * last, so every file that includes util.h (every file in lib/ and cmd/)
 * has it; include system headers before util.h.
 *
 * What to use instead:
 *   strcpy, strcat, strncpy, strncat  vine_xstrdup, vine_buf_*, snprintf, memcpy
 *   sprintf, vsprintf                 snprintf, vsnprintf, vine_xasprintf, vine_buf_addf
 *   strtok, strtok_r                  strcspn/strchr walking (strtok keeps
 *                                     hidden state; both skip empty fields)
 *   atoi, atol, atoll, atof           vine_parse_llong, strtod with checks
 *                                     (they cannot report a bad number)
 *   gets, tmpnam, tempnam, mktemp     fgets, vine_mkstemp, vine_mkdtemp
 *   asctime, ctime, gmtime, localtime the _r forms (not thread-safe)
 *   umask (to read it)                vine_umask (setting it races with threads)
 */
#ifndef VINE_BANNED_H
#define VINE_BANNED_H

#define VINE_BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) VINE_BANNED(strcpy)
#undef strcat
#define strcat(x, y) VINE_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) VINE_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) VINE_BANNED(strncat)
#undef sprintf
#define sprintf(...) VINE_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) VINE_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) VINE_BANNED(strtok)
#undef strtok_r
#define strtok_r(x, y, z) VINE_BANNED(strtok_r)
#undef atoi
#define atoi(x) VINE_BANNED(atoi)
#undef atol
#define atol(x) VINE_BANNED(atol)
#undef atoll
#define atoll(x) VINE_BANNED(atoll)
#undef atof
#define atof(x) VINE_BANNED(atof)
#undef gets
#define gets(x) VINE_BANNED(gets)
#undef tmpnam
#define tmpnam(x) VINE_BANNED(tmpnam)
#undef tempnam
#define tempnam(x, y) VINE_BANNED(tempnam)
#undef mktemp
#define mktemp(x) VINE_BANNED(mktemp)
#undef asctime
#define asctime(x) VINE_BANNED(asctime)
#undef ctime
#define ctime(x) VINE_BANNED(ctime)
#undef gmtime
#define gmtime(x) VINE_BANNED(gmtime)
#undef localtime
#define localtime(x) VINE_BANNED(localtime)

#endif
