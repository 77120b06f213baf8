/*
 * The adapter protocol, version 1 (spec/chapters/adapter-protocol.rst, ADP_01..ADP_06): JSON
 * lines on stdin/stdout, lowercase hex byte strings, error answers with stable codes, hello and
 * shutdown. This file knows nothing about keys: an operation is a name, a declaration of its
 * parameters and a handler (adapter_ops.c). A request is checked against the declaration
 * completely (names, types, hex, sizes) before its handler runs, so a malformed request never
 * has an effect on disk.
 */
#ifndef PGKMS_PROTOCOL_H
#define PGKMS_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "kms.h"

#define PROTO_MAX_LINE (16u << 20) /* a longer request line is answered malformed_request */
#define PROTO_MAX_ITEMS 3

typedef enum {
    P_HEX,      /* a byte string; `size` pins its length when non-zero */
    P_HEX_LIST, /* `count` byte strings of `size` bytes each */
    P_TEXT,     /* a JSON string (commands, paths) */
    P_INT,      /* a JSON integer in [min, max] */
    P_PURPOSE,  /* bootstrap | startup | rotation */
    P_SECONDS,  /* a number: > 0 (`min_exclusive`) or >= 0 */
    P_NO_TRACE, /* trace_fs: accepted as false or null; true asks for a capability not offered */
} param_kind;

typedef struct {
    const char *name;
    param_kind kind;
    bool optional; /* absent and null both mean "not given" */
    size_t size;
    size_t count;
    long long min, max; /* P_INT */
    bool min_exclusive; /* P_SECONDS */
} param_spec;

typedef struct {
    bool present;
    kms_bytes bytes;                    /* P_HEX (wiped on free) */
    kms_bytes items[PROTO_MAX_ITEMS];   /* P_HEX_LIST */
    const char *text;                   /* P_TEXT, P_PURPOSE: owned by the request */
    long long integer;                  /* P_INT */
    double seconds;                     /* P_SECONDS */
} param_value;

/* A handler fills `result` (a new JSON object) or `err`; returns 0 or -1. */
typedef int (*op_handler)(const param_value *values, json_t *result, kms_error *err);

typedef struct {
    const char *name;
    const param_spec *params;
    size_t nparams;
    op_handler run;
} operation;

typedef struct {
    const char *implementation;
    const char *version;
    const operation *ops;
    size_t nops;
    const char *const *features; /* NULL-terminated feature flags (ADP_04) */
} adapter;

/* Lowercase hex of `len` bytes as a new JSON string (ADP_02). */
json_t *proto_hex(const unsigned char *data, size_t len);

/* Serve requests from fd 0 to fd 1 until end of input or shutdown (ADP_01); returns 0. */
int proto_serve(const adapter *a);

#endif
