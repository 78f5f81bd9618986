package acme

import (
	"time"

	"anchor/fsm"
)

// Wire formats of ACME resources (RFC 8555, 7.1).

type directoryJSON struct {
	NewNonce    string        `json:"newNonce"`
	NewAccount  string        `json:"newAccount"`
	NewOrder    string        `json:"newOrder"`
	RevokeCert  string        `json:"revokeCert"`
	KeyChange   string        `json:"keyChange"`
	RenewalInfo string        `json:"renewalInfo"`
	Meta        directoryMeta `json:"meta"`
}

type directoryMeta struct {
	ExternalAccountRequired bool              `json:"externalAccountRequired"`
	Profiles                map[string]string `json:"profiles,omitempty"`
}

type accountJSON struct {
	Status  string   `json:"status"`
	Contact []string `json:"contact,omitempty"`
	Orders  string   `json:"orders"`
}

type orderJSON struct {
	Status         string               `json:"status"`
	Expires        string               `json:"expires"`
	Identifiers    []fsm.ACMEIdentifier `json:"identifiers"`
	Authorizations []string             `json:"authorizations"`
	Finalize       string               `json:"finalize"`
	Certificate    string               `json:"certificate,omitempty"`
	Profile        string               `json:"profile,omitempty"`
	Error          *problem             `json:"error,omitempty"`
}

type authzJSON struct {
	Identifier fsm.ACMEIdentifier `json:"identifier"`
	Status     string             `json:"status"`
	Expires    string             `json:"expires"`
	Challenges []challengeJSON    `json:"challenges"`
	Wildcard   bool               `json:"wildcard,omitempty"`
}

type challengeJSON struct {
	Type      string   `json:"type"`
	URL       string   `json:"url"`
	Status    string   `json:"status"`
	Token     string   `json:"token"`
	Validated string   `json:"validated,omitempty"`
	Error     *problem `json:"error,omitempty"`
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func storedProblem(p *fsm.ACMEProblem) *problem {
	if p == nil {
		return nil
	}
	return &problem{Type: p.Type, Detail: p.Detail}
}

// orderStatus is the status a client sees: a pending or ready order past its
// expiry is invalid (RFC 8555, 7.1.6).
func orderStatus(o *fsm.ACMEOrder, now time.Time) string {
	if (o.Status == fsm.ACMEStatusPending || o.Status == fsm.ACMEStatusReady) &&
		!now.Before(o.Expires) {
		return fsm.ACMEStatusInvalid
	}
	return o.Status
}

// authzStatus is the status a client sees: a pending or valid authorization
// past its expiry is expired.
func authzStatus(a *fsm.ACMEAuthorization, now time.Time) string {
	if (a.Status == fsm.ACMEStatusPending || a.Status == fsm.ACMEStatusValid) &&
		!now.Before(a.Expires) {
		return fsm.ACMEStatusExpired
	}
	return a.Status
}

func (c *call) accountJSON(a *fsm.ACMEAccount) accountJSON {
	return accountJSON{Status: a.Status, Contact: a.Contact, Orders: c.url("account", a.ID, "orders")}
}

func (c *call) orderJSON(o *fsm.ACMEOrder, now time.Time) orderJSON {
	out := orderJSON{
		Status:      orderStatus(o, now),
		Expires:     formatTime(o.Expires),
		Identifiers: o.Identifiers,
		Finalize:    c.url("order", o.ID, "finalize"),
		Profile:     o.Profile,
		Error:       storedProblem(o.Error),
	}
	for _, id := range o.AuthzIDs {
		out.Authorizations = append(out.Authorizations, c.url("authz", id))
	}
	if o.Serial != "" {
		out.Certificate = c.url("cert", o.Serial)
	}
	return out
}

func (c *call) authzJSON(a *fsm.ACMEAuthorization, now time.Time) authzJSON {
	out := authzJSON{
		Identifier: a.Identifier,
		Status:     authzStatus(a, now),
		Expires:    formatTime(a.Expires),
		Challenges: []challengeJSON{},
		Wildcard:   a.Wildcard,
	}
	for i := range a.Challenges {
		out.Challenges = append(out.Challenges, c.challengeJSON(&a.Challenges[i]))
	}
	return out
}

func (c *call) challengeJSON(ch *fsm.ACMEChallenge) challengeJSON {
	out := challengeJSON{
		Type:   ch.Type,
		URL:    c.url("chall", ch.ID),
		Status: ch.Status,
		Token:  ch.Token,
		Error:  storedProblem(ch.Error),
	}
	if !ch.Validated.IsZero() {
		out.Validated = formatTime(ch.Validated)
	}
	return out
}
