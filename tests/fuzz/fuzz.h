/*
 * fuzz.h - what the harnesses in tests/fuzz share (see README there).
 *
 * Each fuzz-NAME.c defines LLVMFuzzerTestOneInput (and, if it needs one-time
 * setup, does it on its first call).  It is linked either with libFuzzer
 * (make fuzz: clang -fsanitize=fuzzer,address,undefined) or with driver.c, a
 * plain main that feeds it each file of its corpus (make check).
 */
#ifndef VINE_FUZZ_H
#define VINE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A private directory for this process, removed when it exits. */
const char *fz_tmpdir(void);
/* The input as a file: a memfd holding exactly data, at offset 0 (the same
 * descriptor every call; do not close it). */
int fz_memfd(const uint8_t *data, size_t size);
/* A file name under fz_tmpdir(): malloc'd. */
char *fz_path(const char *name);
/* Abort with a message: an invariant the library promises does not hold. */
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
