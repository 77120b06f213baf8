/*
 * The adapter: each protocol operation (adapter-protocol.rst) bound to the key manager's API
 * (kms.h), and main(). A PostgreSQL fork keeps protocol.c and this file and points the kms_*
 * calls at its own key manager.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "protocol.h"

#define IMPLEMENTATION "pgkms-c-adapter"
#define VERSION "0.1"

#define I64_MAX 9223372036854775807LL
#define I64_MIN (-I64_MAX - 1)

static kms_purpose purpose_of(const param_value *v)
{
    if (strcmp(v->text, "bootstrap") == 0)
        return KMS_BOOTSTRAP;
    return strcmp(v->text, "rotation") == 0 ? KMS_ROTATION : KMS_STARTUP;
}

static double lock_timeout_of(const param_value *v)
{
    return v->present ? v->seconds : KMS_LOCK_TIMEOUT; /* ADP_06 */
}

/* The injected draws (capability inject_randomness) of `lists`, in the order given. */
static void plan(kms_draws *d, const param_value *const *lists, size_t nlists, size_t per_list)
{
    memset(d, 0, sizeof *d);
    for (size_t l = 0; l < nlists; l++)
        for (size_t i = 0; i < per_list; i++, d->count++)
            if (lists[l] && lists[l]->present) {
                d->given[d->count] = lists[l]->items[i].data;
                d->given_len[d->count] = lists[l]->items[i].len;
            }
}

static void plan_one(kms_draws *d, const param_value *iv)
{
    memset(d, 0, sizeof *d);
    d->count = 1;
    if (iv->present) {
        d->given[0] = iv->bytes.data;
        d->given_len[0] = iv->bytes.len;
    }
}

static int set_hex(json_t *result, const char *name, const unsigned char *data, size_t len,
                   kms_error *err)
{
    json_t *s = proto_hex(data, len);
    if (!s || json_object_set_new(result, name, s) != 0)
        return kms_fail(err, "internal_error", "out of memory encoding '%s'", name);
    return 0;
}

static int set_bytes(json_t *result, const char *name, kms_bytes *b, kms_error *err)
{
    int rc = set_hex(result, name, b->data, b->len, err);
    kms_bytes_free(b);
    return rc;
}

/* -- operations ---------------------------------------------------------------------------- */
static int op_derive_kek(const param_value *v, json_t *r, kms_error *err)
{
    kms_kek kek;
    kms_derive_kek(v[0].bytes.data, v[0].bytes.len, &kek);
    int rc = set_hex(r, "enc_key", kek.enc, KMS_HALF_KEY, err) == 0 &&
                     set_hex(r, "mac_key", kek.mac, KMS_HALF_KEY, err) == 0
                 ? 0
                 : -1;
    OPENSSL_cleanse(&kek, sizeof kek);
    return rc;
}

static int op_wrap(const param_value *v, json_t *r, kms_error *err)
{
    kms_draws d;
    unsigned char iv[KMS_IV];
    kms_bytes out = {0};
    plan_one(&d, &v[3]);
    if (kms_draw(&d, iv, sizeof iv, err) != 0 ||
        kms_wrap(v[0].bytes.data, v[1].bytes.data, v[2].bytes.data, v[2].bytes.len, iv, &out,
                 err) != 0)
        return -1;
    return set_bytes(r, "wrapped", &out, err);
}

static int op_unwrap(const param_value *v, json_t *r, kms_error *err)
{
    kms_bytes out = {0};
    if (kms_unwrap(v[0].bytes.data, v[1].bytes.data, v[2].bytes.data, v[2].bytes.len,
                   "wrapped value", &out, err) != 0)
        return -1;
    return set_bytes(r, "plaintext", &out, err);
}

static int op_encode_record(const param_value *v, json_t *r, kms_error *err)
{
    unsigned char record[KMS_RECORD];
    kms_encode_record((uint32_t)v[0].integer, v[1].bytes.data, record);
    return set_hex(r, "record", record, sizeof record, err);
}

static int op_decode_record(const param_value *v, json_t *r, kms_error *err)
{
    /* a file id no key file can have (outside 0..2) never matches a record's id */
    int file_id = !v[1].present ? -1 : (v[1].integer < 0 || v[1].integer > 2) ? 3
                                                                              : (int)v[1].integer;
    uint32_t key_id;
    if (kms_decode_record(v[0].bytes.data, v[0].bytes.len, file_id, "record", &key_id, err) != 0)
        return -1;
    json_object_set_new(r, "key_id", json_integer(key_id));
    return set_hex(r, "wrapped_key", v[0].bytes.data + 4, KMS_WRAPPED_KEY, err);
}

static int op_substitute(const param_value *v, json_t *r, kms_error *err)
{
    char *out = NULL;
    if (kms_substitute(v[0].text, &out, err) != 0)
        return -1;
    json_t *s = json_string(out);
    free(out);
    if (!s) /* the command itself was valid UTF-8 and the prompt is ASCII */
        return kms_fail(err, "internal_error", "the substituted command is not valid text");
    json_object_set_new(r, "command", s);
    return 0;
}

static int op_run_passphrase_command(const param_value *v, json_t *r, kms_error *err)
{
    kms_bytes pass = {0};
    double timeout = v[2].present ? v[2].seconds : KMS_COMMAND_TIMEOUT; /* ADP_06 */
    if (kms_run_passphrase_command(v[0].text, purpose_of(&v[1]), timeout, &pass, err) != 0)
        return -1;
    return set_bytes(r, "passphrase", &pass, err);
}

static int op_check_passphrase(const param_value *v, json_t *r, kms_error *err)
{
    size_t use = 0;
    if (kms_check_passphrase(v[0].bytes.data, v[0].bytes.len, purpose_of(&v[1]), &use, err) != 0)
        return -1;
    return set_hex(r, "passphrase", v[0].bytes.data, use, err);
}

static int op_bootstrap(const param_value *v, json_t *r, kms_error *err)
{
    (void)r;
    kms_draws d;
    const param_value *lists[2] = {&v[2], &v[3]}; /* BOOT_03: keys, then IVs */
    plan(&d, lists, 2, KMS_KEY_COUNT);
    return kms_bootstrap(v[0].text, v[1].bytes.data, v[1].bytes.len, &d, lock_timeout_of(&v[5]),
                         err);
}

static int op_startup(const param_value *v, json_t *r, kms_error *err)
{
    kms_keyset keys;
    if (kms_startup(v[0].text, v[1].bytes.data, v[1].bytes.len, lock_timeout_of(&v[3]), &keys,
                    err) != 0)
        return -1;
    json_t *list = json_array();
    for (int i = 0; i < KMS_KEY_COUNT; i++)
        json_array_append_new(list, proto_hex(keys.key[i], KMS_INTERNAL_KEY));
    OPENSSL_cleanse(&keys, sizeof keys);
    json_object_set_new(r, "keys", list);
    return 0;
}

static int op_rotate(const param_value *v, json_t *r, kms_error *err)
{
    (void)r;
    kms_draws d;
    const param_value *lists[1] = {&v[3]}; /* ROT_03: IV 0, 1, 2 */
    plan(&d, lists, 1, KMS_KEY_COUNT);
    return kms_rotate(v[0].text, v[1].bytes.data, v[1].bytes.len, v[2].bytes.data,
                      v[2].bytes.len, &d, lock_timeout_of(&v[5]), err);
}

static int op_recover(const param_value *v, json_t *r, kms_error *err)
{
    static const char *const NAMES[] = {"nothing", "discard_tmp", "adopt_tmp"};
    kms_decision decision;
    if (kms_recover(v[0].text, v[1].bytes.data, v[1].bytes.len, lock_timeout_of(&v[3]),
                    &decision, err) != 0)
        return -1;
    json_object_set_new(r, "decision", json_string(NAMES[decision]));
    return 0;
}

static int op_upgrade_keys(const param_value *v, json_t *r, kms_error *err)
{
    (void)r;
    return kms_upgrade_keys(v[0].text, v[1].text, v[2].bytes.data, v[2].bytes.len,
                            lock_timeout_of(&v[4]), err);
}

static int op_sql_wrap(const param_value *v, json_t *r, kms_error *err)
{
    kms_draws d;
    kms_bytes out = {0};
    plan_one(&d, &v[2]);
    if (kms_sql_wrap(v[0].bytes.data, v[1].bytes.data, v[1].bytes.len, &d, &out, err) != 0)
        return -1;
    return set_bytes(r, "wrapped", &out, err);
}

static int op_sql_unwrap(const param_value *v, json_t *r, kms_error *err)
{
    kms_bytes out = {0};
    if (kms_sql_unwrap(v[0].bytes.data, v[1].bytes.data, v[1].bytes.len, &out, err) != 0)
        return -1;
    return set_bytes(r, "plaintext", &out, err);
}

/* -- declarations (the request schemas of conformance/.../schemas/v1, plus ADP_06) ---------- */
#define HEX(n) {n, P_HEX, false, 0, 0, 0, 0, false}
#define HEX_SIZED(n, s) {n, P_HEX, false, s, 0, 0, 0, false}
#define OPT_HEX_SIZED(n, s) {n, P_HEX, true, s, 0, 0, 0, false}
#define OPT_HEX_LIST(n, s) {n, P_HEX_LIST, true, s, KMS_KEY_COUNT, 0, 0, false}
#define TEXT(n) {n, P_TEXT, false, 0, 0, 0, 0, false}
#define PURPOSE {"purpose", P_PURPOSE, false, 0, 0, 0, 0, false}
#define TRACE {"trace_fs", P_NO_TRACE, true, 0, 0, 0, 0, false}
#define LOCK_TIMEOUT {"lock_timeout", P_SECONDS, true, 0, 0, 0, 0, false}

static const param_spec DERIVE_KEK[] = {HEX("passphrase")};
static const param_spec WRAP[] = {HEX_SIZED("enc_key", 32), HEX_SIZED("mac_key", 32),
                                  HEX("plaintext"), OPT_HEX_SIZED("iv", KMS_IV)};
static const param_spec UNWRAP[] = {HEX_SIZED("enc_key", 32), HEX_SIZED("mac_key", 32),
                                    HEX("wrapped")};
static const param_spec ENCODE_RECORD[] = {
    {"key_id", P_INT, false, 0, 0, 0, 4294967295LL, false},
    HEX_SIZED("wrapped_key", KMS_WRAPPED_KEY)};
static const param_spec DECODE_RECORD[] = {HEX("record"),
                                           {"file_id", P_INT, true, 0, 0, I64_MIN, I64_MAX, false}};
static const param_spec SUBSTITUTE[] = {TEXT("command")};
static const param_spec RUN_COMMAND[] = {TEXT("command"), PURPOSE,
                                         {"timeout", P_SECONDS, true, 0, 0, 0, 0, true}};
static const param_spec CHECK_PASSPHRASE[] = {HEX("passphrase"), PURPOSE};
static const param_spec BOOTSTRAP[] = {TEXT("datadir"),
                                       HEX("passphrase"),
                                       OPT_HEX_LIST("keys", KMS_INTERNAL_KEY),
                                       OPT_HEX_LIST("ivs", KMS_IV),
                                       TRACE,
                                       LOCK_TIMEOUT};
static const param_spec STARTUP[] = {TEXT("datadir"), HEX("passphrase"), TRACE, LOCK_TIMEOUT};
static const param_spec ROTATE[] = {TEXT("datadir"),      HEX("old_passphrase"),
                                    HEX("new_passphrase"), OPT_HEX_LIST("ivs", KMS_IV),
                                    TRACE,                 LOCK_TIMEOUT};
static const param_spec RECOVER[] = {TEXT("datadir"), HEX("passphrase"), TRACE, LOCK_TIMEOUT};
static const param_spec UPGRADE_KEYS[] = {TEXT("old_datadir"), TEXT("new_datadir"),
                                          HEX("passphrase"), TRACE, LOCK_TIMEOUT};
static const param_spec SQL_WRAP[] = {HEX_SIZED("sql_key", KMS_INTERNAL_KEY), HEX("plaintext"),
                                      OPT_HEX_SIZED("iv", KMS_IV)};
static const param_spec SQL_UNWRAP[] = {HEX_SIZED("sql_key", KMS_INTERNAL_KEY), HEX("wrapped")};

#define OP(name, params, run) {name, params, sizeof params / sizeof params[0], run}

static const operation OPERATIONS[] = {
    OP("derive_kek", DERIVE_KEK, op_derive_kek),
    OP("wrap", WRAP, op_wrap),
    OP("unwrap", UNWRAP, op_unwrap),
    OP("encode_record", ENCODE_RECORD, op_encode_record),
    OP("decode_record", DECODE_RECORD, op_decode_record),
    OP("substitute", SUBSTITUTE, op_substitute),
    OP("run_passphrase_command", RUN_COMMAND, op_run_passphrase_command),
    OP("check_passphrase", CHECK_PASSPHRASE, op_check_passphrase),
    OP("bootstrap", BOOTSTRAP, op_bootstrap),
    OP("startup", STARTUP, op_startup),
    OP("rotate", ROTATE, op_rotate),
    OP("recover", RECOVER, op_recover),
    OP("upgrade_keys", UPGRADE_KEYS, op_upgrade_keys),
    OP("sql_wrap", SQL_WRAP, op_sql_wrap),
    OP("sql_unwrap", SQL_UNWRAP, op_sql_unwrap),
};

/* No fs_trace: durability is judged from this adapter's system calls (--trace-syscalls). */
static const char *const FEATURES[] = {"inject_randomness", "concurrency", "passphrase_timeout",
                                       NULL};

/* ADP_06, PASS_09: asked to stop, end the running command's whole group, then exit. */
static void on_stop(int sig)
{
    kms_kill_running_command();
    _exit(128 + sig);
}

int main(void)
{
    struct sigaction stop;
    memset(&stop, 0, sizeof stop);
    stop.sa_handler = on_stop;
    sigemptyset(&stop.sa_mask);
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is seen as a write error, then we exit */
    static const adapter ADAPTER = {IMPLEMENTATION, VERSION, OPERATIONS,
                                    sizeof OPERATIONS / sizeof OPERATIONS[0], FEATURES};
    return proto_serve(&ADAPTER);
}
