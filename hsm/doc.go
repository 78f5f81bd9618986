// Package hsm keeps the CA private keys of one cluster node in a PKCS#11 token
// (PKCS#11 v2.40, with the v3.0 EdDSA mechanisms) and signs with them.
//
// Keys are ECDSA P-256 and P-384, RSA 2048 to 4096 and Ed25519 (RFC 8032). Each is
// generated inside a token (GenerateKey) as a sensitive key that can leave the token
// only wrapped.
//
// In the default mode every node has its own token, and each other node receives a CA
// key token to token:
//
//  1. The receiving node publishes the public half of its RSA-3072 transport key
//     (TransportPublicKey). The private half can only unwrap and is not extractable.
//  2. The sending node calls WrapKey: its token generates an ephemeral AES-256 key,
//     wraps the CA key with it (CKM_AES_KEY_WRAP_PAD, RFC 5649), and wraps the AES key
//     to the receiver's transport key with RSA-OAEP (RFC 8017). SoftHSM2 2.6.1 accepts
//     only SHA-1 for OAEP, so the package uses SHA-1 with MGF1-SHA-1 and no label.
//  3. The receiving node calls UnwrapKey, which imports the key as a sensitive token
//     object, creates its public key object and checks with a test signature that the
//     private key matches the public key the caller expects.
//
// Only ciphertext leaves a token. The plaintext AES key exists only inside the two
// tokens, as a session object that is destroyed after use. SoftHSM2 2.6.1 can neither
// wrap nor unwrap Ed25519 keys: WrapKey returns ErrKeyNotWrappable, so there an
// Ed25519 key stays on the node that generated it.
//
// In the shared mode (Config.Shared) every node opens the same token, such as a
// network HSM. Nothing is wrapped: every node signs with the key the token holds, and
// TransportPublicKey, WrapKey and UnwrapKey return ErrShared.
//
// RSA keys sign through crypto11 (github.com/ThalesIgnite/crypto11 v1.2.5), which
// keeps a pool of sessions and holds the login. ECDSA and Ed25519 keys sign with
// CKM_ECDSA and CKM_EDDSA in the package's own pool of sessions on a second handle of
// the module through github.com/miekg/pkcs11: crypto11 has no EdDSA, and its ECDSA
// path cost more than the package's budget of 5% of a signature. Signers are safe for
// concurrent use. Wrapping, unwrapping
// and object creation use that second handle with one short-lived session per call.
// A signature fails when sessions, the login or the token were lost underneath the
// process (for example CKR_SESSION_HANDLE_INVALID, CKR_USER_NOT_LOGGED_IN,
// CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT). The package then drops both session
// pools, closes the crypto11 context, opens a new one, logs in again and retries the
// signature once. Each reopen is logged.
//
// crypto11 calls C_Initialize on the first Open of a module in the process and
// C_Finalize on the last Close. Nothing else in the process may initialise the module
// while an HSM is open or before the first Open. SoftHSM2 reads SOFTHSM2_CONF at
// C_Initialize, so a process can use the tokens of one configuration file at a time
// (package anchor/softhsm-test creates such tokens).
//
// The PIN comes from a file or an environment variable (Config) and is never logged.
package hsm
