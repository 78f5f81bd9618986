package fsm

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const bucketMembers = "members"

// Command types of organization membership.
const (
	CmdAddMember    CommandType = "organization.member.add"
	CmdRemoveMember CommandType = "organization.member.remove"
)

// Role is a member's role in an organization. Each role includes the rights
// of the roles after it: admin, member, viewer.
type Role string

// Roles of organization members.
const (
	// RoleAdmin manages members, realms, chains, SubCAs and services.
	RoleAdmin Role = "admin"
	// RoleMember issues, renews and revokes certificates.
	RoleMember Role = "member"
	// RoleViewer reads the organization's objects.
	RoleViewer Role = "viewer"
)

var roleRank = map[Role]int{RoleViewer: 1, RoleMember: 2, RoleAdmin: 3}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool { return roleRank[r] > 0 }

// Includes reports whether r grants at least the rights of other, so an
// admin includes member and viewer. An invalid role includes nothing.
func (r Role) Includes(other Role) bool {
	return r.Valid() && other.Valid() && roleRank[r] >= roleRank[other]
}

// Member is an identity's role in an organization. Identity is the name
// the admin API authenticates, such as a client certificate subject or an
// email address.
type Member struct {
	Org       string    `json:"org"`
	Identity  string    `json:"identity"`
	Role      Role      `json:"role"`
	AddedAt   time.Time `json:"added_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AddMember is the payload of CmdAddMember. Adding an identity that is a
// member already changes its role.
type AddMember struct {
	Org      string `json:"org"`
	Identity string `json:"identity"`
	Role     Role   `json:"role"`
}

// RemoveMember is the payload of CmdRemoveMember.
type RemoveMember struct {
	Org      string `json:"org"`
	Identity string `json:"identity"`
}

func init() {
	register(CmdAddMember, applyAddMember)
	register(CmdRemoveMember, applyRemoveMember)
}

// ValidateIdentity checks a member identity: 1 to 256 bytes of UTF-8 without
// control characters or surrounding spaces.
func ValidateIdentity(identity string) error {
	ok := identity != "" && len(identity) <= 256 && utf8.ValidString(identity) &&
		strings.TrimSpace(identity) == identity &&
		strings.IndexFunc(identity, unicode.IsControl) < 0
	if !ok {
		return Errorf(CodeInvalidArgument, "invalid member identity %q: use 1 to 256 printable "+
			"characters without leading or trailing spaces", identity)
	}
	return nil
}

func applyAddMember(tx *Tx, cmd *Command) (any, error) {
	var p AddMember
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if err := ValidateIdentity(p.Identity); err != nil {
		return nil, err
	}
	if !p.Role.Valid() {
		return nil, Errorf(CodeInvalidArgument, "invalid role %q: use admin, member or viewer", p.Role)
	}
	if !tx.has(bucketOrgs, p.Org) {
		return nil, Errorf(CodeNotFound, "organization %q not found", p.Org)
	}
	m := Member{Org: p.Org, Identity: p.Identity, Role: p.Role, AddedAt: cmd.Time, UpdatedAt: cmd.Time}
	old, err := tx.Member(p.Org, p.Identity)
	switch {
	case err == nil:
		if old.Role == RoleAdmin && p.Role != RoleAdmin {
			if err := checkOtherAdmin(tx, p.Org, p.Identity); err != nil {
				return nil, err
			}
		}
		m.AddedAt = old.AddedAt
	case !IsNotFound(err):
		return nil, err
	}
	return m, tx.put(bucketMembers, memberKey(p.Org, p.Identity), m)
}

func applyRemoveMember(tx *Tx, cmd *Command) (any, error) {
	var p RemoveMember
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	m, err := tx.Member(p.Org, p.Identity)
	if err != nil {
		return nil, err
	}
	if m.Role == RoleAdmin {
		if err := checkOtherAdmin(tx, p.Org, p.Identity); err != nil {
			return nil, err
		}
	}
	return m, tx.del(bucketMembers, memberKey(p.Org, p.Identity))
}

// checkOtherAdmin keeps an organization that has an admin from losing its
// last one, so that someone can still manage it.
func checkOtherAdmin(tx *Tx, org, identity string) error {
	members, err := tx.Members(org)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.Role == RoleAdmin && m.Identity != identity {
			return nil
		}
	}
	return Errorf(CodeFailedPrecondition,
		"%q is the last admin of organization %q: add another admin first", identity, org)
}

// memberKey keys members by organization, so Members scans one prefix.
// Organization names are DNS labels and contain no "/".
func memberKey(org, identity string) string { return org + "/" + identity }

// Member returns an identity's membership in an organization.
func (t *Tx) Member(org, identity string) (*Member, error) {
	var m Member
	ok, err := t.get(bucketMembers, memberKey(org, identity), &m)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "%q is not a member of organization %q", identity, org)
	}
	return &m, nil
}

// Members lists the members of an organization, ordered by identity.
func (t *Tx) Members(org string) ([]Member, error) {
	return list[Member](t, bucketMembers, org+"/")
}

// Memberships lists the organizations an identity belongs to, with its role
// in each.
//
// NOTE: this scans every membership; an index by identity is needed once
// there are many thousands.
func (t *Tx) Memberships(identity string) ([]Member, error) {
	all, err := list[Member](t, bucketMembers, "")
	if err != nil {
		return nil, err
	}
	var out []Member
	for _, m := range all {
		if m.Identity == identity {
			out = append(out, m)
		}
	}
	return out, nil
}
