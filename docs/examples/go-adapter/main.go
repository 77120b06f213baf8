// A minimal pgkms adapter (protocol version 1) in Go, standard library only.
//
// It implements hello, derive_kek, wrap, unwrap and shutdown: enough for the
// conformance suite's "format" vectors on the KDF and the wrap format. Replace
// the crypto calls with calls into your own implementation under test.
//
// Build: go build -o pgkms-go-adapter .
// Run:   pgkms-conformance run --impl ./pgkms-go-adapter
package main

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

// kmsError carries a stable error code of the spec (chapter "Error codes").
type kmsError struct{ code, message string }

func (e *kmsError) Error() string { return e.message }

func fail(code, format string, args ...any) *kmsError {
	return &kmsError{code, fmt.Sprintf(format, args...)}
}

// --- the implementation under test: KDF_01, WRAP_01..WRAP_08 -------------------

func deriveKEK(passphrase []byte) (enc, mac []byte) {
	d := sha512.Sum512(passphrase) // KDF_01: one unsalted SHA-512
	return d[:32], d[32:]
}

func hmacSHA256(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}

func wrap(enc, mac, plaintext, iv []byte) ([]byte, error) {
	if iv == nil { // WRAP_03: a fresh random IV unless the harness injects one
		iv = make([]byte, 16)
		if _, err := rand.Read(iv); err != nil {
			return nil, err
		}
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fail("malformed_request", "encryption key: %v", err)
	}
	if len(iv) != 16 {
		return nil, fail("malformed_request", "iv: expected 16 bytes, found %d", len(iv))
	}
	n := 16 - len(plaintext)%16 // WRAP_02: PKCS#7, always 1..16 bytes
	padded := append(append([]byte{}, plaintext...), make([]byte, n)...)
	for i := len(plaintext); i < len(padded); i++ {
		padded[i] = byte(n)
	}
	c := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(c, padded)
	out := hmacSHA256(mac, c) // WRAP_04: over C only, not the IV
	out = append(out, iv...)  // WRAP_01: HMAC || IV || C
	return append(out, c...), nil
}

func unwrap(enc, mac, w []byte) ([]byte, error) {
	if len(w) < 64 { // step 1, WRAP_05
		return nil, fail("wrapped_too_short", "expected at least 64 bytes, found %d", len(w))
	}
	if (len(w)-48)%16 != 0 { // step 2, WRAP_06
		return nil, fail("wrapped_length_invalid", "ciphertext of %d bytes is not a multiple of 16", len(w)-48)
	}
	tag, iv, c := w[:32], w[32:48], w[48:]
	if !hmac.Equal(tag, hmacSHA256(mac, c)) { // step 3, WRAP_07: constant time
		return nil, fail("hmac_mismatch", "HMAC does not match")
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fail("malformed_request", "encryption key: %v", err)
	}
	q := make([]byte, len(c))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(q, c) // step 4, WRAP_08
	n := int(q[len(q)-1])
	bad := n < 1 || n > 16
	for i := len(q) - n; !bad && i < len(q); i++ {
		bad = q[i] != byte(n)
	}
	if bad {
		return nil, fail("bad_padding", "PKCS#7 padding is invalid after a valid HMAC")
	}
	return q[:len(q)-n], nil
}

// --- the adapter protocol: ADP_01..ADP_04 ---------------------------------------

type request map[string]json.RawMessage

// hexField reads a lowercase-hex byte string parameter (ADP_02).
func (r request) hexField(name string, optional bool) ([]byte, error) {
	raw, ok := r[name]
	if !ok || string(raw) == "null" {
		if optional {
			return nil, nil
		}
		return nil, fail("malformed_request", "missing field %q", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fail("malformed_request", "field %q: expected a hex string", name)
	}
	for _, ch := range s {
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return nil, fail("malformed_request", "field %q: not lowercase hex", name)
		}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fail("malformed_request", "field %q: odd number of hex digits", name)
	}
	return b, nil
}

// fields checks that the request has exactly the expected parameters.
func (r request) fields(allowed ...string) error {
	ok := map[string]bool{"id": true, "op": true}
	for _, name := range allowed {
		ok[name] = true
	}
	for name := range r {
		if !ok[name] {
			return fail("malformed_request", "unexpected field %q", name)
		}
	}
	return nil
}

func handle(op string, r request) (map[string]any, error) {
	switch op {
	case "hello":
		return map[string]any{
			"protocol": 1, "implementation": "go-example", "version": "0.1",
			"capabilities": []string{"derive_kek", "wrap", "unwrap", "inject_randomness"},
		}, nil
	case "derive_kek":
		if err := r.fields("passphrase"); err != nil {
			return nil, err
		}
		p, err := r.hexField("passphrase", false)
		if err != nil {
			return nil, err
		}
		enc, mac := deriveKEK(p)
		return map[string]any{"enc_key": hex.EncodeToString(enc), "mac_key": hex.EncodeToString(mac)}, nil
	case "wrap", "unwrap":
		data := map[string]string{"wrap": "plaintext", "unwrap": "wrapped"}[op]
		allowed := []string{"enc_key", "mac_key", data}
		if op == "wrap" {
			allowed = append(allowed, "iv")
		}
		if err := r.fields(allowed...); err != nil {
			return nil, err
		}
		var b [4][]byte
		for i, name := range []string{"enc_key", "mac_key", data, "iv"} {
			var err error
			if b[i], err = r.hexField(name, name == "iv"); err != nil {
				return nil, err
			}
		}
		if len(b[0]) != 32 || len(b[1]) != 32 {
			return nil, fail("malformed_request", "enc_key and mac_key must be 32 bytes each")
		}
		if op == "wrap" {
			w, err := wrap(b[0], b[1], b[2], b[3])
			if err != nil {
				return nil, err
			}
			return map[string]any{"wrapped": hex.EncodeToString(w)}, nil
		}
		p, err := unwrap(b[0], b[1], b[2])
		if err != nil {
			return nil, err
		}
		return map[string]any{"plaintext": hex.EncodeToString(p)}, nil
	case "shutdown":
		return map[string]any{}, nil
	}
	return nil, fail("unsupported_operation", "operation %q is not implemented", op)
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26) // requests can carry large hex strings
	out := json.NewEncoder(os.Stdout)     // one JSON object per line (ADP_01)
	for in.Scan() {
		var r request
		var id any
		var op string
		err := json.Unmarshal(in.Bytes(), &r)
		if err == nil {
			err = json.Unmarshal(r["id"], &id)
		}
		if err == nil {
			if err = json.Unmarshal(r["op"], &op); err != nil {
				err = fail("malformed_request", "missing or non-string field \"op\"")
			}
		} else {
			err = fail("malformed_request", "not a JSON object with an integer id")
		}
		var result map[string]any
		if err == nil {
			result, err = handle(op, r)
		}
		if err != nil { // ADP_03: report, never crash, never print a secret
			e, ok := err.(*kmsError)
			if !ok {
				e = fail("internal_error", "%v", err)
			}
			out.Encode(map[string]any{"id": id, "ok": false,
				"error": map[string]string{"code": e.code, "message": e.message}})
			continue
		}
		out.Encode(map[string]any{"id": id, "ok": true, "result": result})
		if op == "shutdown" {
			break
		}
	}
	os.Exit(0) // end of input or shutdown: exit 0 (ADP_01)
}
