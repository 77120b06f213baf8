/*
 * The protocol side of the adapter (protocol.h): framing, request checking, responses.
 * ADP_01: one response line per request line, nothing else on stdout; ADP_03: every failure an
 * error answer, never an exit; ADP_04: hello announces the operations and feature flags.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol.h"

static const char HEX[] = "0123456789abcdef";

json_t *proto_hex(const unsigned char *data, size_t len)
{
    char *text = malloc(2 * len + 1);
    if (!text)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        text[2 * i] = HEX[data[i] >> 4];
        text[2 * i + 1] = HEX[data[i] & 15];
    }
    json_t *s = json_stringn(text, 2 * len);
    memset(text, 0, 2 * len); /* the hex of a key is as secret as the key */
    free(text);
    return s;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* ADP_02: upper case is malformed */
}

static int malformed(kms_error *err, const char *fmt, const char *name)
{
    return kms_fail(err, "malformed_request", fmt, name);
}

static int decode_hex(json_t *v, const char *name, size_t size, kms_bytes *out, kms_error *err)
{
    if (!json_is_string(v))
        return malformed(err, "field '%s': expected a lowercase hex string", name);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len % 2)
        return malformed(err, "field '%s': expected an even number of hex digits", name);
    if (size && len / 2 != size)
        return kms_fail(err, "malformed_request", "field '%s': expected %zu bytes, found %zu",
                        name, size, len / 2);
    out->len = len / 2;
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data)
        return kms_fail(err, "internal_error", "out of memory decoding '%s'", name);
    for (size_t i = 0; i < out->len; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            kms_bytes_free(out);
            return malformed(err, "field '%s': expected lowercase hex digits only", name);
        }
        out->data[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int check_param(const param_spec *p, json_t *v, param_value *out, kms_error *err)
{
    switch (p->kind) {
    case P_HEX:
        return decode_hex(v, p->name, p->size, &out->bytes, err);
    case P_HEX_LIST:
        if (!json_is_array(v) || json_array_size(v) != p->count)
            return kms_fail(err, "malformed_request", "field '%s': expected a list of %zu hex strings",
                            p->name, p->count);
        for (size_t i = 0; i < p->count; i++)
            if (decode_hex(json_array_get(v, i), p->name, p->size, &out->items[i], err) != 0)
                return -1;
        return 0;
    case P_TEXT:
        if (!json_is_string(v))
            return malformed(err, "field '%s': expected a string", p->name);
        if (strlen(json_string_value(v)) != json_string_length(v))
            return malformed(err, "field '%s': a NUL character cannot be passed on", p->name);
        out->text = json_string_value(v);
        return 0;
    case P_PURPOSE:
        if (!json_is_string(v) || (strcmp(json_string_value(v), "bootstrap") != 0 &&
                                   strcmp(json_string_value(v), "startup") != 0 &&
                                   strcmp(json_string_value(v), "rotation") != 0))
            return malformed(err, "field '%s': expected bootstrap, startup or rotation", p->name);
        out->text = json_string_value(v);
        return 0;
    case P_INT:
        if (!json_is_integer(v) || json_integer_value(v) < p->min || json_integer_value(v) > p->max)
            return kms_fail(err, "malformed_request", "field '%s': expected an integer in %lld..%lld",
                            p->name, p->min, p->max);
        out->integer = json_integer_value(v);
        return 0;
    case P_SECONDS:
        if (!json_is_number(v) || json_number_value(v) < 0 ||
            (p->min_exclusive && json_number_value(v) <= 0))
            return kms_fail(err, "malformed_request", "field '%s': expected a number of seconds %s 0",
                            p->name, p->min_exclusive ? ">" : ">=");
        out->seconds = json_number_value(v);
        return 0;
    case P_NO_TRACE:
        if (!json_is_boolean(v))
            return malformed(err, "field '%s': expected true or false", p->name);
        if (json_is_true(v))
            return kms_fail(err, "unsupported_operation",
                            "field '%s': this adapter does not offer fs_trace (its durability is "
                            "observed from its system calls)",
                            p->name);
        out->present = false;
        return 1;
    }
    return malformed(err, "field '%s': unknown kind", p->name);
}

static void free_values(param_value *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kms_bytes_free(&values[i].bytes);
        for (size_t j = 0; j < PROTO_MAX_ITEMS; j++)
            kms_bytes_free(&values[i].items[j]);
    }
}

/* Every field declared, none unknown, each of its declared type (ADP_03 malformed_request). */
static int check_request(const operation *op, json_t *request, param_value *values,
                         kms_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(request, key, v) {
        if (strcmp(key, "id") == 0 || strcmp(key, "op") == 0)
            continue;
        size_t i = 0;
        while (i < op->nparams && strcmp(op->params[i].name, key) != 0)
            i++;
        if (i == op->nparams)
            return kms_fail(err, "malformed_request", "%s: unknown field '%.64s'", op->name, key);
    }
    for (size_t i = 0; i < op->nparams; i++) {
        const param_spec *p = &op->params[i];
        v = json_object_get(request, p->name);
        if (!v || json_is_null(v)) {
            if (!p->optional)
                return kms_fail(err, "malformed_request", "%s: field '%s' is required", op->name,
                                p->name);
            continue;
        }
        values[i].present = true;
        int rc = check_param(p, v, &values[i], err);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static json_t *hello_result(const adapter *a)
{
    json_t *caps = json_array();
    for (size_t i = 0; i < a->nops; i++)
        json_array_append_new(caps, json_string(a->ops[i].name));
    for (size_t i = 0; a->features[i]; i++)
        json_array_append_new(caps, json_string(a->features[i]));
    return json_pack("{s:i, s:s, s:s, s:o}", "protocol", 1, "implementation", a->implementation,
                     "version", a->version, "capabilities", caps);
}

/* The response to one request line; *finished is set after shutdown. */
static json_t *answer(const adapter *a, const char *line, size_t len, int *finished)
{
    kms_error err = {0};
    json_t *id = json_null(), *result = NULL;
    json_error_t jerr;
    json_t *request = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!request || !json_is_object(request)) {
        kms_fail(&err, "malformed_request", "the request line is not a JSON object");
        goto done;
    }
    json_t *rid = json_object_get(request, "id");
    if (!json_is_integer(rid)) {
        kms_fail(&err, "malformed_request", "field 'id': expected an integer");
        goto done;
    }
    json_decref(id);
    id = json_incref(rid);
    json_t *jop = json_object_get(request, "op");
    if (!json_is_string(jop)) {
        kms_fail(&err, "malformed_request", "field 'op': expected a string");
        goto done;
    }
    const char *name = json_string_value(jop);
    if (strcmp(name, "hello") == 0 || strcmp(name, "shutdown") == 0) {
        if (json_object_size(request) != 2) {
            kms_fail(&err, "malformed_request", "%s takes no fields besides id and op", name);
            goto done;
        }
        result = strcmp(name, "hello") == 0 ? hello_result(a) : json_object();
        *finished = strcmp(name, "shutdown") == 0;
        goto done;
    }
    const operation *op = NULL;
    for (size_t i = 0; i < a->nops && !op; i++)
        if (strcmp(a->ops[i].name, name) == 0)
            op = &a->ops[i];
    if (!op) {
        kms_fail(&err, "unsupported_operation", "operation '%.64s' is not supported", name);
        goto done;
    }
    param_value values[16];
    memset(values, 0, sizeof values);
    if (op->nparams <= 16 && check_request(op, request, values, &err) == 0) {
        result = json_object();
        if (op->run(values, result, &err) != 0) {
            json_decref(result);
            result = NULL;
        }
    }
    free_values(values, op->nparams);
done:
    json_decref(request);
    if (result)
        return json_pack("{s:o, s:b, s:o}", "id", id, "ok", 1, "result", result);
    if (!err.code)
        kms_fail(&err, "internal_error", "the operation failed without a code");
    return json_pack("{s:o, s:b, s:{s:s, s:s}}", "id", id, "ok", 0, "error", "code", err.code,
                     "message", err.message);
}

static int write_line(const char *text)
{
    size_t len = strlen(text);
    while (len) {
        ssize_t n = write(1, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One write per answer line where the pipe allows: a reader (or strace) sees whole lines. */
static int respond(json_t *response)
{
    char *text = response ? json_dumps(response, JSON_COMPACT) : NULL;
    json_decref(response);
    if (!text) /* never leave a request unanswered */
        return write_line("{\"id\":null,\"ok\":false,\"error\":{\"code\":\"internal_error\","
                          "\"message\":\"the response could not be encoded\"}}\n");
    size_t len = strlen(text);
    char *line = realloc(text, len + 2);
    if (!line) {
        free(text);
        return -1;
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    int rc = write_line(line);
    memset(line, 0, len); /* answers carry keys and plaintexts */
    free(line);
    return rc;
}

static int is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

int proto_serve(const adapter *a)
{
    size_t cap = 1 << 16, len = 0, scanned = 0;
    char *buf = malloc(cap);
    int overlong = 0, finished = 0, eof = 0;
    while (buf && !finished) {
        char *nl = memchr(buf + scanned, '\n', len - scanned);
        if (!nl && !eof) {
            scanned = len;
            if (len == cap) {
                if (cap >= PROTO_MAX_LINE) { /* drop the rest of this line, answer it once */
                    overlong = 1;
                    len = scanned = 0;
                } else {
                    char *bigger = realloc(buf, cap *= 2);
                    if (!bigger)
                        break;
                    buf = bigger;
                }
            }
            ssize_t n = read(0, buf + len, cap - len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                eof = 1;
            else
                len += (size_t)n;
            continue;
        }
        size_t line_len = nl ? (size_t)(nl - buf) : len;
        if (overlong) {
            json_t *r = json_pack("{s:n, s:b, s:{s:s, s:s}}", "id", "ok", 0, "error", "code",
                                  "malformed_request", "message",
                                  "the request line is longer than 16 MiB");
            if (respond(r) != 0)
                break;
            overlong = 0;
        } else if (line_len && !is_blank(buf, line_len)) {
            if (respond(answer(a, buf, line_len, &finished)) != 0)
                break;
        }
        if (!nl)
            break; /* end of input after a last line without a newline */
        size_t rest = len - line_len - 1;
        memmove(buf, nl + 1, rest);
        memset(buf + rest, 0, len - rest); /* requests carry secrets */
        len = rest;
        scanned = 0;
    }
    free(buf);
    return 0;
}
