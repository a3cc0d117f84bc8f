/* sf.jwt pure functions, testable from C (tests/c/test_jwt.c). */
#ifndef SF_JWT_H
#define SF_JWT_H
#include <stddef.h>
#include <openssl/evp.h>

/* The JOSE header Salesforce documents for the JWT bearer flow. */
#define SF_JWT_HEADER "{\"alg\":\"RS256\"}"

/* Reads an RSA private key from PEM text (PKCS#1 "RSA PRIVATE KEY", PKCS#8
 * "PRIVATE KEY" or "ENCRYPTED PRIVATE KEY"). pass may be NULL (no passphrase:
 * never prompts). Returns a new key owned by the caller (EVP_PKEY_free), or
 * NULL with a reason in err that never contains key material. */
EVP_PKEY *sf_jwt_read_key(const char *pem, size_t pem_len, const char *pass, size_t pass_len,
                          char *err, size_t errcap);

/* Exact length of the compact JWT for claims of claims_len bytes signed by
 * key; SIZE_MAX when it would not fit a size_t. */
size_t sf_jwt_token_len(EVP_PKEY *key, size_t claims_len);

/* Writes base64url(header).base64url(claims).base64url(RS256 signature) into
 * out, which has room for sf_jwt_token_len bytes (no NUL written).
 * Returns 0, or -1 with a reason in err. */
int sf_jwt_sign(EVP_PKEY *key, const char *claims, size_t claims_len, char *out,
                char *err, size_t errcap);
#endif
