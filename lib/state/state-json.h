/*
 * state-json.h - the state's structs as JSON, for the state protocol
 * (state-remote.c encodes requests and decodes answers, state-serve.c the
 * reverse).  Each struct is described once, as a table of fields; the
 * same table encodes and decodes, so the two sides cannot disagree.
 *
 * Encoding: a JSON object with one member per field, named as the struct
 * member; enums by their names ("running", "exited"); NULL strings as
 * null, strings that are not UTF-8 as {"base64": ...}.  Decoding: members that are missing take zero / NULL (so a newer
 * peer may add fields); members of the wrong type or out of range are
 * errors naming the field.  Strings and arrays decoded are allocated, so
 * the vine_state_free_*() functions release what vj_decode_array returns.
 */
#ifndef VINE_STATE_JSON_H
#define VINE_STATE_JSON_H

#include <jansson.h>
#include <stddef.h>

enum vj_type {
	VJ_I64,         /* int64_t */
	VJ_INT,         /* int */
	VJ_PID,         /* pid_t */
	VJ_DBL,         /* double */
	VJ_STR,         /* char * (or const char *), may be NULL */
	VJ_ID,          /* char[VINE_ID_LEN + 1] */
	VJ_OUTCOME,     /* enum vine_outcome, by name */
	VJ_TSTATE,      /* enum vine_task_state, by name */
	VJ_XKIND,       /* enum vine_xfer_kind, by name ("wait", "peer", "origin") */
	VJ_STRUCT,      /* an embedded struct described by sub */
	VJ_STRUCTS,     /* pointer to sub structs, count (size_t) at count_off */
	VJ_I64S,        /* pointer to int64_t, count (size_t) at count_off */
};

struct vj_desc;

struct vj_field {
	const char *name;
	enum vj_type type;
	size_t off, count_off;
	const struct vj_desc *sub;
};

struct vj_desc {
	const char *name;       /* for messages */
	size_t size;
	const struct vj_field *fields;
	size_t nfields;
};

extern const struct vj_desc vj_object, vj_replica, vj_task_spec, vj_worker_info,
	vj_attempt_ref, vj_claim, vj_result, vj_worker, vj_attempt, vj_task, vj_file,
	vj_spread_settings, vj_xfer, vj_transfer;

json_t *vj_encode(const struct vj_desc *d, const void *s);
json_t *vj_encode_array(const struct vj_desc *d, const void *arr, size_t n);
/* Fill s (zeroed first) from o; on error s holds nothing to release. */
int vj_decode(const struct vj_desc *d, json_t *o, void *s);
/* A malloc'd array of *n structs from a JSON array. */
int vj_decode_array(const struct vj_desc *d, json_t *a, void **arr, size_t *n);
/* Free what vj_decode allocated inside s (not s itself). */
void vj_release(const struct vj_desc *d, void *s);
void vj_free_array(const struct vj_desc *d, void *arr, size_t n);

/* int64 arrays and int flags, for ids, accepted[] and stale[]. */
json_t *vj_i64s(const int64_t *v, size_t n);
int vj_get_i64s(json_t *a, int64_t **v, size_t *n);
json_t *vj_ints(const int *v, size_t n);
/* Exactly n ints into v (caller's array). */
int vj_get_ints(json_t *a, int *v, size_t n);

/* Members of a request or an answer, type-checked; missing is an error. */
int vj_i64(json_t *o, const char *name, int64_t *v);
int vj_int(json_t *o, const char *name, int *v);
/* A string member, allocated (caller frees). */
int vj_str(json_t *o, const char *name, char **v);

/*
 * Strings are JSON strings when they are UTF-8, else {"base64": BYTES}
 * (file names and commands are bytes); no NUL either way.
 */
json_t *vj_string(const char *s);
int vj_string_value(json_t *v, char **out);

#endif
