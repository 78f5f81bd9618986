package ca

import (
	"crypto/rand"
	"fmt"
	"math/big"
)

// newSerial returns a positive 128-bit serial from the CSPRNG. Clearing the
// top bit keeps the DER INTEGER within 16 octets, well under RFC 5280's 20.
func newSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("read serial randomness: %w", err)
		}
		b[0] &= 0x7f
		s := new(big.Int).SetBytes(b[:])
		if s.Sign() > 0 {
			return s, nil
		}
	}
}
