/* sf.jwt and base64url, checked without Lua: RFC 4648 vectors, key loading
 * (PKCS#1, PKCS#8, encrypted PKCS#8, wrong passphrase, non-RSA), and RS256
 * tokens verified with OpenSSL against the public key. Keys: tests/fixtures/jwt. */
#include "jwt.h"
#include "tap.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define PASS "test-only-passphrase"

/* Reads tests/fixtures/jwt/<name> (relative to SFENGINE_ROOT or cwd). Caller frees. */
static char *fixture(const char *name, size_t *len)
{
    char path[1024];
    const char *root = getenv("SFENGINE_ROOT");
    FILE *f;
    char *buf;
    long n;
    snprintf(path, sizeof path, "%s/tests/fixtures/jwt/%s", root ? root : ".", name);
    f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static EVP_PKEY *load(const char *name, const char *pass, char *err, size_t errcap)
{
    size_t len;
    char *pem = fixture(name, &len);
    EVP_PKEY *k;
    if (pem == NULL) {
        snprintf(err, errcap, "fixture %s missing", name);
        return NULL;
    }
    k = sf_jwt_read_key(pem, len, pass, pass ? strlen(pass) : 0, err, errcap);
    free(pem);
    return k;
}

static int encode_is(const char *in, size_t n, const char *want)
{
    char out[256];
    size_t len = sf_b64url_encode((const unsigned char *)in, n, out);
    return len == strlen(want) && len == sf_b64url_len(n) && memcmp(out, want, len) == 0;
}

static int decode_is(const char *in, const char *want, size_t wantlen)
{
    unsigned char out[256];
    size_t len = 0;
    if (sf_b64url_decode(in, strlen(in), out, &len) != 0) return 0;
    return len == wantlen && memcmp(out, want, len) == 0;
}

static int decode_fails(const char *in)
{
    unsigned char out[256];
    size_t len = 0;
    return sf_b64url_decode(in, strlen(in), out, &len) == -1;
}

static void test_base64url(void)
{
    static const struct { const char *in, *out; } rfc[] = {
        {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    static const char *junk[] = {
        "Z", "Zg=", "Zg===", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm 9v", "Zm9v\n", "=", "Zg=a",
        "Zm9vY===", "Zm9vYg=", "Zm8==",
    };
    size_t i, len;
    int all_rfc = 1, all_back = 1, all_junk = 1, round = 1;
    unsigned char bytes[256], back[400];
    char enc[400];
    for (i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        all_rfc &= encode_is(rfc[i].in, strlen(rfc[i].in), rfc[i].out);
        all_back &= decode_is(rfc[i].out, rfc[i].in, strlen(rfc[i].in));
    }
    TAP_CHECK(all_rfc, "base64url encodes the RFC 4648 section 10 vectors without padding");
    TAP_CHECK(all_back, "base64url decodes the RFC 4648 section 10 vectors");
    TAP_CHECK(encode_is("", 0, "") && decode_is("", "", 0), "base64url of the empty string is empty");
    TAP_CHECK(encode_is("\xfb\xff\xfe", 3, "-__-") && encode_is("\xff", 1, "_w")
              && encode_is("\0", 1, "AA"),
              "base64url uses the url-safe alphabet for binary bytes (- and _, never + and /)");
    TAP_CHECK(decode_is("Zg==", "f", 1) && decode_is("Zm8=", "fo", 2),
              "base64url decoding accepts correct padding");
    for (i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        if (!decode_fails(junk[i])) {
            printf("# accepted junk %s\n", junk[i]);
            all_junk = 0;
        }
    }
    TAP_CHECK(all_junk, "base64url decoding rejects bad length, bad padding, std alphabet, "
                        "whitespace and non-zero trailing bits");
    for (i = 0; i < 256; i++) bytes[i] = (unsigned char)i;
    for (i = 0; i <= 256 && round; i++) {
        size_t n = sf_b64url_encode(bytes + (256 - i), i, enc);
        round = sf_b64url_decode(enc, n, back, &len) == 0 && len == i
             && memcmp(back, bytes + (256 - i), i) == 0;
    }
    TAP_CHECK(round, "base64url round-trips every length 0..256 of binary bytes");
}

static int no_key_material(const char *err)
{
    /* Any base64 body line of a PEM key starts "MII"; the header line says BEGIN. */
    return strstr(err, "MII") == NULL && strstr(err, "BEGIN") == NULL && strstr(err, PASS) == NULL;
}

/* Verifies an RS256 compact token against the public key fixture. */
static int verify(const char *tok, size_t len, EVP_PKEY *pub)
{
    const char *dot2 = memchr(tok, '.', len), *sig64;
    unsigned char sig[1024];
    size_t siglen = 0;
    EVP_MD_CTX *ctx;
    int ok;
    if (dot2 == NULL) return 0;
    dot2 = memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok));
    if (dot2 == NULL) return 0;
    sig64 = dot2 + 1;
    if (sf_b64url_decoded_max(len - (size_t)(sig64 - tok)) > sizeof sig) return 0;
    if (sf_b64url_decode(sig64, len - (size_t)(sig64 - tok), sig, &siglen) != 0) return 0;
    ctx = EVP_MD_CTX_new();
    ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1
      && EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)tok, (size_t)(dot2 - tok)) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static void test_keys_and_tokens(void)
{
    char err[256];
    EVP_PKEY *pkcs8, *pkcs1, *enc, *k;
    EVP_PKEY *pub = NULL;
    size_t publen;
    char *pubpem = fixture("test-only-rsa-public.pem", &publen);
    BIO *bio;
    const char *claims = "{\"iss\":\"client-id\",\"sub\":\"user@example.com\","
                         "\"aud\":\"https://login.salesforce.com\",\"exp\":1700000000}";

    if (pubpem != NULL) {
        bio = BIO_new_mem_buf(pubpem, (int)publen);
        pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
        free(pubpem);
    }
    TAP_CHECK(pub != NULL, "the public key fixture loads");

    err[0] = '\0';
    pkcs8 = load("test-only-rsa-pkcs8.pem", NULL, err, sizeof err);
    TAP_CHECK(pkcs8 != NULL, "an unencrypted PKCS#8 RSA key loads");
    pkcs1 = load("test-only-rsa-pkcs1.pem", NULL, err, sizeof err);
    TAP_CHECK(pkcs1 != NULL, "a PKCS#1 RSA key loads");
    enc = load("test-only-rsa-pkcs8-encrypted.pem", PASS, err, sizeof err);
    TAP_CHECK(enc != NULL, "an encrypted PKCS#8 RSA key loads with its passphrase");
    TAP_CHECK(pkcs8 && pkcs1 && enc && EVP_PKEY_eq(pkcs8, pkcs1) == 1 && EVP_PKEY_eq(pkcs8, enc) == 1,
              "the three encodings hold the same key");

    err[0] = '\0';
    k = load("test-only-rsa-pkcs8-encrypted.pem", "wrong-passphrase", err, sizeof err);
    TAP_CHECK(k == NULL && strncmp(err, "cannot read RSA private key: ", 29) == 0 && no_key_material(err),
              "a wrong passphrase fails with a reason and no key material");
    printf("# wrong passphrase: %s\n", err);
    EVP_PKEY_free(k);
    err[0] = '\0';
    k = load("test-only-rsa-pkcs8-encrypted.pem", NULL, err, sizeof err);
    TAP_CHECK(k == NULL && strstr(err, "no passphrase") != NULL && no_key_material(err),
              "an encrypted key without a passphrase fails, saying so (never prompts)");
    EVP_PKEY_free(k);
    err[0] = '\0';
    k = load("test-only-ec-pkcs8.pem", NULL, err, sizeof err);
    TAP_CHECK(k == NULL && strstr(err, "not an RSA key") != NULL, "a non-RSA (EC) key is refused");
    EVP_PKEY_free(k);
    err[0] = '\0';
    k = sf_jwt_read_key("not a key", 9, NULL, 0, err, sizeof err);
    TAP_CHECK(k == NULL && err[0] != '\0', "garbage PEM text fails with a reason");
    EVP_PKEY_free(k);
    {
        /* A truncated real key: the message must not echo any of it. */
        size_t len;
        char *pem = fixture("test-only-rsa-pkcs8.pem", &len);
        err[0] = '\0';
        k = pem ? sf_jwt_read_key(pem, len / 2, NULL, 0, err, sizeof err) : NULL;
        TAP_CHECK(pem && k == NULL && no_key_material(err),
                  "a truncated key fails without echoing key material");
        EVP_PKEY_free(k);
        free(pem);
    }

    if (pkcs8 != NULL && pub != NULL) {
        size_t n = sf_jwt_token_len(pkcs8, strlen(claims));
        char *tok = malloc(n), *tok2 = malloc(n);
        unsigned char part[512];
        size_t plen = 0;
        const char *d1, *d2;
        int rc = sf_jwt_sign(pkcs8, claims, strlen(claims), tok, err, sizeof err);
        TAP_CHECK(rc == 0, "sf_jwt_sign signs with a PKCS#8 key");
        d1 = memchr(tok, '.', n);
        d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok)) : NULL;
        TAP_CHECK(d1 && d2 && memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - tok)) == NULL
                  && memchr(tok, '=', n) == NULL,
                  "the token is three unpadded base64url parts");
        TAP_CHECK(d1 && sf_b64url_decode(tok, (size_t)(d1 - tok), part, &plen) == 0
                  && plen == strlen(SF_JWT_HEADER) && memcmp(part, "{\"alg\":\"RS256\"}", plen) == 0,
                  "the header is exactly {\"alg\":\"RS256\"}");
        TAP_CHECK(d1 && d2 && sf_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), part, &plen) == 0
                  && plen == strlen(claims) && memcmp(part, claims, plen) == 0,
                  "the payload is the claims JSON");
        TAP_CHECK(verify(tok, n, pub), "the RS256 signature verifies against the public key");
        tok[(size_t)(d1 - tok) + 3] ^= 1; /* tamper with the claims */
        TAP_CHECK(!verify(tok, n, pub), "a tampered token does not verify");
        tok[(size_t)(d1 - tok) + 3] ^= 1;
        TAP_CHECK(pkcs1 && sf_jwt_sign(pkcs1, claims, strlen(claims), tok2, err, sizeof err) == 0
                  && memcmp(tok, tok2, n) == 0,
                  "RS256 (PKCS#1 v1.5) is deterministic: the PKCS#1 key signs identically");
        free(tok);
        free(tok2);
    }
    {
        /* A key generated here, too: the code is not tied to the fixture. */
        EVP_PKEY *gen = EVP_RSA_gen(2048);
        size_t n = gen ? sf_jwt_token_len(gen, 2) : 0;
        char *tok = gen ? malloc(n) : NULL;
        TAP_CHECK(gen && tok && sf_jwt_sign(gen, "{}", 2, tok, err, sizeof err) == 0
                  && verify(tok, n, gen),
                  "a freshly generated RSA key signs a token that verifies");
        free(tok);
        EVP_PKEY_free(gen);
    }
    EVP_PKEY_free(pkcs8);
    EVP_PKEY_free(pkcs1);
    EVP_PKEY_free(enc);
    EVP_PKEY_free(pub);
}

/* Lengths past what a size_t holds saturate, so the allocation that
 * follows fails instead of being too small. */
static void test_length_overflow(void)
{
    TAP_CHECK(sf_b64url_len(SIZE_MAX) == SIZE_MAX, "b64url_len: an encoding longer than SIZE_MAX is SIZE_MAX");
    TAP_CHECK(sf_b64url_len(SIZE_MAX / 4 * 3) == SIZE_MAX, "b64url_len: near SIZE_MAX it saturates rather than wraps");
    TAP_CHECK(sf_b64url_len(3000) == 4000 && sf_b64url_len(4) == 6, "b64url_len: ordinary lengths are exact");
}

int main(void)
{
    test_base64url();
    test_length_overflow();
    test_keys_and_tokens();
    return tap_done();
}
