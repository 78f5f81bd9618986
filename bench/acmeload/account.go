package acmeload

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
)

const userAgent = "anchor-bench"

// EAB is an External Account Binding key: its ID and base64url HMAC key.
type EAB struct {
	KeyID, HMACKey string
}

// Account is one ACME account, usable on every directory of a cluster.
type Account struct {
	client      *http.Client
	directories []string
	key         *ecdsa.PrivateKey
	cores       []*api.Core // by directory index, created on first use
}

// NewAccount creates an account on directories[0], bound to eab when it is
// not nil. The other directories look the account up by key when the
// account first uses them.
func NewAccount(ctx context.Context, client *http.Client, directories []string,
	eab *EAB) (*Account, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	a := &Account{client: client, directories: directories, key: key,
		cores: make([]*api.Core, len(directories))}
	core, err := api.New(client, userAgent, directories[0], "", key)
	if err != nil {
		return nil, fmt.Errorf("fetch ACME directory %s: %w", directories[0], err)
	}
	req := acme.Account{TermsOfServiceAgreed: true}
	if eab != nil {
		_, err = core.Accounts.NewEAB(ctx, req, eab.KeyID, eab.HMACKey)
	} else {
		_, err = core.Accounts.New(ctx, req)
	}
	if err != nil {
		return nil, fmt.Errorf("create ACME account on %s: %w", directories[0], err)
	}
	a.cores[0] = core
	return a, nil
}

// core returns the protocol client of directory i, looking the account up
// there first if needed.
func (a *Account) core(ctx context.Context, i int) (*api.Core, error) {
	if a.cores[i] != nil {
		return a.cores[i], nil
	}
	core, err := api.New(a.client, userAgent, a.directories[i], "", a.key)
	if err != nil {
		return nil, fmt.Errorf("fetch ACME directory %s: %w", a.directories[i], err)
	}
	if _, err := core.Accounts.New(ctx, acme.Account{OnlyReturnExisting: true}); err != nil {
		return nil, fmt.Errorf("look up ACME account on %s: %w", a.directories[i], err)
	}
	a.cores[i] = core
	return core, nil
}
