package fsm

import (
	"encoding/asn1"
	"fmt"
)

// SubjectPublicKeyBits extracts the BIT STRING of a SubjectPublicKeyInfo.
func SubjectPublicKeyBits(spki []byte) ([]byte, error) {
	var info struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(spki, &info)
	if err != nil {
		return nil, fmt.Errorf("parse subject public key info: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("parse subject public key info: %d trailing bytes", len(rest))
	}
	return info.PublicKey.RightAlign(), nil
}
