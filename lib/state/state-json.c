/*
 * state-json.c - the state's structs as JSON, table-driven (state-json.h).
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "state/state.h"
#include "state/state-json.h"
#include "util/util.h"

#define F(st, m, t) { #m, t, offsetof(struct st, m), 0, NULL }
#define FS(st, m, t, sub) { #m, t, offsetof(struct st, m), 0, sub }
#define FA(st, m, cnt, t, sub) { #m, t, offsetof(struct st, m), offsetof(struct st, cnt), sub }
#define DESC(var, st, tab) \
	const struct vj_desc var = { #st, sizeof(struct st), tab, sizeof(tab) / sizeof(tab[0]) }

static const struct vj_field replica_f[] = {
	F(vine_replica, node, VJ_STR),
	F(vine_replica, bytes, VJ_I64),
	F(vine_replica, complete, VJ_INT),
};
DESC(vj_replica, vine_replica, replica_f);

static const struct vj_field backoff_f[] = {
	F(vine_backoff, node, VJ_STR),
	F(vine_backoff, faults, VJ_INT),
	F(vine_backoff, until, VJ_DBL),
	F(vine_backoff, reason, VJ_STR),
};
DESC(vj_backoff, vine_backoff, backoff_f);

static const struct vj_field object_f[] = {
	F(vine_object, id, VJ_ID),
	F(vine_object, size, VJ_I64),
	F(vine_object, origin, VJ_STR),
	F(vine_object, served_origin, VJ_I64),
	F(vine_object, served_peer, VJ_I64),
	F(vine_object, bytes_origin, VJ_I64),
	F(vine_object, bytes_peer, VJ_I64),
	F(vine_object, xfer_active, VJ_I64),
	F(vine_object, xfer_failed, VJ_I64),
	FA(vine_object, replicas, nreplicas, VJ_STRUCTS, &vj_replica),
	FA(vine_object, backoffs, nbackoffs, VJ_STRUCTS, &vj_backoff),
};
DESC(vj_object, vine_object, object_f);

static const struct vj_field task_spec_f[] = {
	F(vine_task_spec, cmd, VJ_STR),
	F(vine_task_spec, object, VJ_STR),
	F(vine_task_spec, cores, VJ_INT),
	F(vine_task_spec, retries, VJ_INT),
	F(vine_task_spec, timeout, VJ_DBL),
	F(vine_task_spec, tag, VJ_STR),
	F(vine_task_spec, cwd, VJ_STR),
	F(vine_task_spec, memory, VJ_I64),
	F(vine_task_spec, gpus, VJ_INT),
};
DESC(vj_task_spec, vine_task_spec, task_spec_f);

static const struct vj_field worker_info_f[] = {
	F(vine_worker_info, node, VJ_STR),
	F(vine_worker_info, host, VJ_STR),
	F(vine_worker_info, pid, VJ_PID),
	F(vine_worker_info, cores, VJ_INT),
	F(vine_worker_info, listen, VJ_STR),
	F(vine_worker_info, lease, VJ_DBL),
	F(vine_worker_info, memory, VJ_I64),
	F(vine_worker_info, gpus, VJ_INT),
};
DESC(vj_worker_info, vine_worker_info, worker_info_f);

static const struct vj_field attempt_ref_f[] = {
	F(vine_attempt_ref, task, VJ_I64),
	F(vine_attempt_ref, attempt, VJ_INT),
};
DESC(vj_attempt_ref, vine_attempt_ref, attempt_ref_f);

static const struct vj_field claim_f[] = {
	F(vine_claim, task, VJ_I64),
	F(vine_claim, attempt, VJ_INT),
	F(vine_claim, cmd, VJ_STR),
	F(vine_claim, cores, VJ_INT),
	F(vine_claim, timeout, VJ_DBL),
	F(vine_claim, object, VJ_STR),
	F(vine_claim, origin, VJ_STR),
	F(vine_claim, size, VJ_I64),
	F(vine_claim, cwd, VJ_STR),
	F(vine_claim, memory, VJ_I64),
	F(vine_claim, gpus, VJ_INT),
};
DESC(vj_claim, vine_claim, claim_f);

static const struct vj_field result_f[] = {
	F(vine_result, task, VJ_I64),
	F(vine_result, attempt, VJ_INT),
	F(vine_result, outcome, VJ_OUTCOME),
	F(vine_result, exit_code, VJ_INT),
	F(vine_result, signal, VJ_INT),
	F(vine_result, started, VJ_DBL),
	F(vine_result, ended, VJ_DBL),
	F(vine_result, message, VJ_STR),
};
DESC(vj_result, vine_result, result_f);

static const struct vj_field worker_f[] = {
	F(vine_worker, id, VJ_I64),
	F(vine_worker, node, VJ_STR),
	F(vine_worker, host, VJ_STR),
	F(vine_worker, listen, VJ_STR),
	F(vine_worker, pid, VJ_PID),
	F(vine_worker, cores, VJ_INT),
	F(vine_worker, memory, VJ_I64),
	F(vine_worker, gpus, VJ_INT),
	F(vine_worker, state, VJ_STR),
	F(vine_worker, started, VJ_DBL),
	F(vine_worker, heartbeat, VJ_DBL),
	F(vine_worker, expires, VJ_DBL),
	FA(vine_worker, running, nrunning, VJ_I64S, NULL),
};
DESC(vj_worker, vine_worker, worker_f);

static const struct vj_field attempt_f[] = {
	F(vine_attempt, task, VJ_I64),
	F(vine_attempt, attempt, VJ_INT),
	F(vine_attempt, worker, VJ_I64),
	F(vine_attempt, node, VJ_STR),
	F(vine_attempt, claimed, VJ_DBL),
	F(vine_attempt, started, VJ_DBL),
	F(vine_attempt, ended, VJ_DBL),
	F(vine_attempt, outcome, VJ_OUTCOME),
	F(vine_attempt, exit_code, VJ_INT),
	F(vine_attempt, signal, VJ_INT),
	F(vine_attempt, message, VJ_STR),
	F(vine_attempt, received, VJ_I64),
};
DESC(vj_attempt, vine_attempt, attempt_f);

static const struct vj_field task_f[] = {
	F(vine_task, id, VJ_I64),
	F(vine_task, cmd, VJ_STR),
	F(vine_task, object, VJ_STR),
	F(vine_task, tag, VJ_STR),
	F(vine_task, cwd, VJ_STR),
	F(vine_task, submission, VJ_STR),
	F(vine_task, memory, VJ_I64),
	F(vine_task, gpus, VJ_INT),
	F(vine_task, cores, VJ_INT),
	F(vine_task, retries, VJ_INT),
	F(vine_task, timeout, VJ_DBL),
	F(vine_task, submitted, VJ_DBL),
	F(vine_task, state, VJ_TSTATE),
	F(vine_task, attempts, VJ_INT),
	F(vine_task, failures, VJ_INT),
	F(vine_task, losses, VJ_INT),
	F(vine_task, faults, VJ_INT),
	F(vine_task, delivered, VJ_DBL),
	FS(vine_task, last, VJ_STRUCT, &vj_attempt),
};
DESC(vj_task, vine_task, task_f);

static const struct vj_field file_f[] = {
	F(vine_file, name, VJ_STR),
	F(vine_file, size, VJ_I64),
};
DESC(vj_file, vine_file, file_f);

static const struct vj_field spread_settings_f[] = {
	F(vine_spread_settings, k_peer, VJ_INT),
	F(vine_spread_settings, k_origin, VJ_INT),
	F(vine_spread_settings, relay, VJ_INT),
};
DESC(vj_spread_settings, vine_spread_settings, spread_settings_f);

static const struct vj_field xfer_f[] = {
	F(vine_xfer, id, VJ_I64),
	F(vine_xfer, kind, VJ_XKIND),
	F(vine_xfer, node, VJ_STR),
	F(vine_xfer, addr, VJ_STR),
	F(vine_xfer, wait, VJ_DBL),
};
DESC(vj_xfer, vine_xfer, xfer_f);

static const struct vj_field transfer_f[] = {
	F(vine_transfer, id, VJ_I64),
	F(vine_transfer, object, VJ_STR),
	F(vine_transfer, source, VJ_STR),
	F(vine_transfer, addr, VJ_STR),
	F(vine_transfer, dest, VJ_STR),
	F(vine_transfer, state, VJ_STR),
	F(vine_transfer, status, VJ_STR),
	F(vine_transfer, offset, VJ_I64),
	F(vine_transfer, bytes, VJ_I64),
	F(vine_transfer, started, VJ_DBL),
	F(vine_transfer, updated, VJ_DBL),
};
DESC(vj_transfer, vine_transfer, transfer_f);

static const char *const xkind_names[] = { "wait", "peer", "origin" };
#define NXKINDS (sizeof(xkind_names) / sizeof(xkind_names[0]))

static int xkind_parse(const char *name)
{
	for (size_t i = 0; name && i < NXKINDS; i++)
		if (!strcmp(xkind_names[i], name))
			return (int)i;
	return -1;
}

#define AT(s, f, t) ((t *)((char *)(s) + (f)->off))
#define CAT(s, f, t) ((const t *)((const char *)(s) + (f)->off))

json_t *vj_string(const char *str)
{
	size_t len = strlen(str);
	json_t *v = json_stringn(str, len), *o;
	unsigned char *b64;

	if (v)
		return v;
	/* not UTF-8, which JSON strings must be: its bytes in base64 */
	b64 = vine_xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock(b64, (const unsigned char *)str, (int)len);
	o = json_pack("{ss}", "base64", (const char *)b64);
	free(b64);
	return o;
}

int vj_string_value(json_t *v, char **out)
{
	const char *b64;
	size_t len;
	unsigned char *raw;
	int n;

	*out = NULL;
	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v))
			return vine_error("a string with a NUL byte");
		*out = vine_xstrdup(json_string_value(v));
		return 0;
	}
	b64 = json_string_value(json_object_get(v, "base64"));
	if (!json_is_object(v) || !b64)
		return vine_error("not a string");
	len = strlen(b64);
	if (len % 4)
		return vine_error("bad base64");
	raw = vine_xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	if (n < 0) {
		free(raw);
		return vine_error("bad base64");
	}
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (len >= 1 && b64[len - 1] == '=')
		n--;
	if (len >= 2 && b64[len - 2] == '=')
		n--;
	raw[n] = '\0';
	if (strlen((char *)raw) != (size_t)n) {
		free(raw);
		return vine_error("a string with a NUL byte");
	}
	*out = (char *)raw;
	return 0;
}

json_t *vj_i64s(const int64_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(v[i]));
	return a;
}

json_t *vj_ints(const int *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(v[i]));
	return a;
}

json_t *vj_encode(const struct vj_desc *d, const void *s)
{
	json_t *o = json_object();

	for (size_t i = 0; i < d->nfields; i++) {
		const struct vj_field *f = &d->fields[i];
		json_t *v = NULL;
		const char *str;
		size_t k;

		switch (f->type) {
		case VJ_I64:
			v = json_integer(*CAT(s, f, int64_t));
			break;
		case VJ_INT:
			v = json_integer(*CAT(s, f, int));
			break;
		case VJ_PID:
			v = json_integer(*CAT(s, f, pid_t));
			break;
		case VJ_DBL:
			v = json_real(*CAT(s, f, double));
			break;
		case VJ_STR:
			str = *CAT(s, f, const char *);
			v = str ? vj_string(str) : json_null();
			break;
		case VJ_ID:
			v = json_string(CAT(s, f, char));
			break;
		case VJ_OUTCOME:
			str = vine_outcome_name(*CAT(s, f, enum vine_outcome));
			v = str ? json_string(str) : json_null();
			break;
		case VJ_TSTATE:
			str = vine_task_state_name(*CAT(s, f, enum vine_task_state));
			v = str ? json_string(str) : json_null();
			break;
		case VJ_XKIND:
			k = (size_t)*CAT(s, f, enum vine_xfer_kind);
			v = k < NXKINDS ? json_string(xkind_names[k]) : json_null();
			break;
		case VJ_STRUCT:
			v = vj_encode(f->sub, CAT(s, f, char));
			break;
		case VJ_STRUCTS:
			v = vj_encode_array(f->sub, *CAT(s, f, void *),
					    *(const size_t *)((const char *)s + f->count_off));
			break;
		case VJ_I64S:
			v = vj_i64s(*CAT(s, f, int64_t *),
				    *(const size_t *)((const char *)s + f->count_off));
			break;
		}
		json_object_set_new(o, f->name, v ? v : json_null());
	}
	return o;
}

json_t *vj_encode_array(const struct vj_desc *d, const void *arr, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, vj_encode(d, (const char *)arr + i * d->size));
	return a;
}

static int bad(const struct vj_desc *d, const struct vj_field *f, const char *what)
{
	return vine_error("bad %s.%s in the state protocol: %s", d->name, f->name, what);
}

static int get_integer(json_t *v, long long min, long long max, long long *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

int vj_decode(const struct vj_desc *d, json_t *o, void *s)
{
	memset(s, 0, d->size);
	if (!json_is_object(o))
		return vine_error("bad %s in the state protocol: not an object", d->name);
	for (size_t i = 0; i < d->nfields; i++) {
		const struct vj_field *f = &d->fields[i];
		json_t *v = json_object_get(o, f->name);
		long long ll;
		int k;

		if (!v || json_is_null(v)) {
			/* missing: zero; the checks of the state decide */
			continue;
		}
		switch (f->type) {
		case VJ_I64:
			if (get_integer(v, INT64_MIN, INT64_MAX, &ll) < 0)
				goto fail_int;
			*AT(s, f, int64_t) = ll;
			break;
		case VJ_INT:
			if (get_integer(v, INT_MIN, INT_MAX, &ll) < 0)
				goto fail_int;
			*AT(s, f, int) = (int)ll;
			break;
		case VJ_PID:
			if (get_integer(v, 0, INT_MAX, &ll) < 0)
				goto fail_int;
			*AT(s, f, pid_t) = (pid_t)ll;
			break;
		case VJ_DBL:
			if (!json_is_number(v) || !isfinite(json_number_value(v))) {
				bad(d, f, "not a number");
				goto fail;
			}
			*AT(s, f, double) = json_number_value(v);
			break;
		case VJ_STR:
			if (vj_string_value(v, AT(s, f, char *)) < 0) {
				bad(d, f, vine_errmsg());
				goto fail;
			}
			break;
		case VJ_ID:
			if (!json_is_string(v) || !vine_id_valid(json_string_value(v))) {
				bad(d, f, "not an object id");
				goto fail;
			}
			memcpy(AT(s, f, char), json_string_value(v), VINE_ID_LEN + 1);
			break;
		case VJ_OUTCOME:
			if ((k = vine_outcome_parse(json_string_value(v))) < 0) {
				bad(d, f, "not an outcome");
				goto fail;
			}
			*AT(s, f, enum vine_outcome) = (enum vine_outcome)k;
			break;
		case VJ_TSTATE:
			if ((k = vine_task_state_parse(json_string_value(v))) < 0) {
				bad(d, f, "not a task state");
				goto fail;
			}
			*AT(s, f, enum vine_task_state) = (enum vine_task_state)k;
			break;
		case VJ_XKIND:
			if ((k = xkind_parse(json_string_value(v))) < 0) {
				bad(d, f, "not a transfer kind");
				goto fail;
			}
			*AT(s, f, enum vine_xfer_kind) = (enum vine_xfer_kind)k;
			break;
		case VJ_STRUCT:
			if (vj_decode(f->sub, v, AT(s, f, char)) < 0)
				goto fail;
			break;
		case VJ_STRUCTS:
			if (vj_decode_array(f->sub, v, AT(s, f, void *),
					    (size_t *)((char *)s + f->count_off)) < 0)
				goto fail;
			break;
		case VJ_I64S:
			if (vj_get_i64s(v, AT(s, f, int64_t *), (size_t *)((char *)s + f->count_off)) < 0)
				goto fail;
			break;
		}
		continue;
fail_int:
		bad(d, f, "not an integer in range");
		goto fail;
	}
	return 0;
fail:
	vj_release(d, s);
	return -1;
}

int vj_decode_array(const struct vj_desc *d, json_t *a, void **arr, size_t *n)
{
	size_t i, len;
	char *p;

	*arr = NULL;
	*n = 0;
	if (!json_is_array(a))
		return vine_error("bad list of %s in the state protocol: not an array", d->name);
	len = json_array_size(a);
	p = vine_xcalloc(len ? len : 1, d->size);
	for (i = 0; i < len; i++) {
		if (vj_decode(d, json_array_get(a, i), p + i * d->size) < 0) {
			vj_free_array(d, p, i);
			return -1;
		}
	}
	*arr = p;
	*n = len;
	return 0;
}

void vj_release(const struct vj_desc *d, void *s)
{
	for (size_t i = 0; i < d->nfields; i++) {
		const struct vj_field *f = &d->fields[i];

		switch (f->type) {
		case VJ_STR:
			free(*AT(s, f, char *));
			*AT(s, f, char *) = NULL;
			break;
		case VJ_STRUCT:
			vj_release(f->sub, AT(s, f, char));
			break;
		case VJ_STRUCTS:
			vj_free_array(f->sub, *AT(s, f, void *), *(size_t *)((char *)s + f->count_off));
			*AT(s, f, void *) = NULL;
			break;
		case VJ_I64S:
			free(*AT(s, f, int64_t *));
			*AT(s, f, int64_t *) = NULL;
			break;
		default:
			break;
		}
	}
}

void vj_free_array(const struct vj_desc *d, void *arr, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vj_release(d, (char *)arr + i * d->size);
	free(arr);
}

int vj_get_i64s(json_t *a, int64_t **v, size_t *n)
{
	size_t len, i;
	long long ll;

	*v = NULL;
	*n = 0;
	if (!json_is_array(a))
		return vine_error("bad list of numbers in the state protocol");
	len = json_array_size(a);
	*v = vine_xcalloc(len ? len : 1, sizeof(**v));
	for (i = 0; i < len; i++) {
		if (get_integer(json_array_get(a, i), INT64_MIN, INT64_MAX, &ll) < 0) {
			free(*v);
			*v = NULL;
			return vine_error("bad list of numbers in the state protocol");
		}
		(*v)[i] = ll;
	}
	*n = len;
	return 0;
}

int vj_get_ints(json_t *a, int *v, size_t n)
{
	long long ll;

	if (!json_is_array(a) || json_array_size(a) != n)
		return vine_error("bad list of flags in the state protocol");
	for (size_t i = 0; i < n; i++) {
		if (get_integer(json_array_get(a, i), INT_MIN, INT_MAX, &ll) < 0)
			return vine_error("bad list of flags in the state protocol");
		v[i] = (int)ll;
	}
	return 0;
}

int vj_i64(json_t *o, const char *name, int64_t *v)
{
	long long ll;

	if (get_integer(json_object_get(o, name), INT64_MIN, INT64_MAX, &ll) < 0)
		return vine_error("bad '%s' in the state protocol: not an integer", name);
	*v = ll;
	return 0;
}

int vj_int(json_t *o, const char *name, int *v)
{
	long long ll;

	if (get_integer(json_object_get(o, name), INT_MIN, INT_MAX, &ll) < 0)
		return vine_error("bad '%s' in the state protocol: not an integer in range", name);
	*v = (int)ll;
	return 0;
}

int vj_str(json_t *o, const char *name, char **v)
{
	if (vj_string_value(json_object_get(o, name), v) < 0)
		return vine_error("bad '%s' in the state protocol: %s", name, vine_errmsg());
	return 0;
}
