package hsm

import (
	"crypto"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// GenerateKey generates a CA key pair inside the token, as token objects with CKA_ID
// and CKA_LABEL set to id, and returns its Signer. The private key can sign and is
// sensitive, so it leaves the token only wrapped (WrapKey). The error wraps
// ErrKeyExists when id is already in use.
func (h *HSM) GenerateKey(id string, alg Algorithm) (crypto.Signer, error) {
	spec, err := lookupAlgorithm(alg)
	if err != nil {
		return nil, err
	}
	if err := validateKeyID(id); err != nil {
		return nil, err
	}

	h.objectsMu.Lock()
	defer h.objectsMu.Unlock()

	objectWriteMu.Lock()
	defer objectWriteMu.Unlock()
	err = h.withRawSession("generate key", func(s rawSession) error {
		if err := s.checkIDFree(id); err != nil {
			return err
		}
		err := s.generateKeyPair(id, spec)
		for attempt := 1; attempt < generateAttempts &&
			isPKCS11Error(err, pkcs11.CKR_GENERAL_ERROR); attempt++ {
			h.logger.Warn("hsm key generation failed, retrying", "key_id", id, "err", err)
			if err := s.destroyObjects(id); err != nil {
				return err
			}
			err = s.generateKeyPair(id, spec)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("hsm: generate %s key %q on token %q: %w",
			alg, id, h.cfg.TokenLabel, err)
	}
	h.forgetKey(id)

	signer, err := h.Signer(id)
	if err != nil {
		return nil, err
	}
	h.logger.Info("hsm generated key", "key_id", id, "algorithm", alg)
	return signer, nil
}

// generateAttempts is how often GenerateKey tries a generation that fails with
// CKR_GENERAL_ERROR. SoftHSM2 2.6.1 now and then fails key generation that way while
// other threads of the process use the library (SoftHSMv2 issue 573), and the same
// call made again succeeds.
const generateAttempts = 3

func (s rawSession) generateKeyPair(id string, spec keySpec) error {
	publicTemplate, err := caPublicKeyGenerateTemplate(id, spec)
	if err != nil {
		return err
	}
	var mechanism uint = pkcs11.CKM_EC_KEY_PAIR_GEN
	switch spec.keyType {
	case pkcs11.CKK_RSA:
		mechanism = pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN
	case ckkECEdwards:
		mechanism = ckmECEdwardsKeyPairGen
	}
	_, _, err = s.ctx.GenerateKeyPair(s.handle,
		[]*pkcs11.Mechanism{pkcs11.NewMechanism(mechanism, nil)},
		publicTemplate, caPrivateKeyTemplate(id, spec))
	return err
}

// checkIDFree returns an error wrapping ErrKeyExists when any key object has CKA_ID id,
// including a private key left without its public half.
func (s rawSession) checkIDFree(id string) error {
	for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
		handles, err := s.findObjects(class, id)
		if err != nil {
			return err
		}
		if len(handles) > 0 {
			return fmt.Errorf("%w: the token contains a key object with id %q", ErrKeyExists, id)
		}
	}
	return nil
}

// DestroyKey deletes every key object with CKA_ID id from the token: the
// private key and its public key. A token without such objects is not an
// error. The transport key cannot be destroyed this way.
func (h *HSM) DestroyKey(id string) error {
	if err := validateKeyID(id); err != nil {
		return err
	}
	err := h.withRawSession("destroy key", func(s rawSession) error {
		return s.destroyObjects(id)
	})
	h.forgetKey(id)
	if err != nil {
		return fmt.Errorf("hsm: destroy key %s: %w", id, err)
	}
	return nil
}

// destroyObjects deletes the private and public key objects with CKA_ID id.
func (s rawSession) destroyObjects(id string) error {
	var errs []error
	for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
		handles, err := s.findObjects(class, id)
		errs = append(errs, err)
		for _, handle := range handles {
			errs = append(errs, s.ctx.DestroyObject(s.handle, handle))
		}
	}
	return errors.Join(errs...)
}

// destroyKey deletes every key object with CKA_ID id, after a failed import.
func (h *HSM) destroyKey(id string) {
	if err := h.DestroyKey(id); err != nil {
		h.logger.Error("hsm destroy key failed", "key_id", id, "err", err)
	}
}
