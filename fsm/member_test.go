package fsm

import "testing"

func TestMember_AddChangeRemove(t *testing.T) {
	s := newPKIState(t)
	s.must(CmdAddMember, AddMember{Org: "o", Identity: "alice@example.test", Role: RoleAdmin})
	s.must(CmdAddMember, AddMember{Org: "o", Identity: "bob@example.test", Role: RoleViewer})
	s.must(CmdAddMember, AddMember{Org: "o", Identity: "bob@example.test", Role: RoleMember})

	s.view(func(tx *Tx) error {
		members, err := tx.Members("o")
		if err != nil {
			return err
		}
		if len(members) != 2 || members[1].Identity != "bob@example.test" ||
			members[1].Role != RoleMember {
			t.Errorf("members %+v, want alice and bob with role member", members)
		}
		in, err := tx.Memberships("bob@example.test")
		if err != nil {
			return err
		}
		if len(in) != 1 || in[0].Org != "o" {
			t.Errorf("memberships of bob %+v, want organization o", in)
		}
		return nil
	})

	_, err := s.apply(CmdAddMember,
		AddMember{Org: "o", Identity: "alice@example.test", Role: RoleViewer})
	wantCode(t, err, CodeFailedPrecondition, "last admin")
	_, err = s.apply(CmdRemoveMember, RemoveMember{Org: "o", Identity: "alice@example.test"})
	wantCode(t, err, CodeFailedPrecondition, "last admin")

	s.must(CmdRemoveMember, RemoveMember{Org: "o", Identity: "bob@example.test"})
	_, err = s.apply(CmdRemoveMember, RemoveMember{Org: "o", Identity: "bob@example.test"})
	wantCode(t, err, CodeNotFound, "bob@example.test")
}

func TestMember_RejectsInvalidInput(t *testing.T) {
	s := newPKIState(t)
	cases := []struct {
		name string
		p    AddMember
		code Code
		want string
	}{
		{"unknown role", AddMember{Org: "o", Identity: "a", Role: "owner"}, CodeInvalidArgument, "owner"},
		{"empty identity", AddMember{Org: "o", Role: RoleViewer}, CodeInvalidArgument, "identity"},
		{"control character", AddMember{Org: "o", Identity: "a\nb", Role: RoleViewer},
			CodeInvalidArgument, "identity"},
		{"unknown organization", AddMember{Org: "x", Identity: "a", Role: RoleViewer},
			CodeNotFound, `"x"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.apply(CmdAddMember, tc.p)
			wantCode(t, err, tc.code, tc.want)
		})
	}
}

func TestRole_Includes(t *testing.T) {
	cases := []struct {
		role, other Role
		want        bool
	}{
		{RoleAdmin, RoleMember, true},
		{RoleMember, RoleViewer, true},
		{RoleViewer, RoleMember, false},
		{RoleMember, RoleAdmin, false},
		{Role("owner"), RoleViewer, false},
	}
	for _, tc := range cases {
		if got := tc.role.Includes(tc.other); got != tc.want {
			t.Errorf("%s includes %s: %v, want %v", tc.role, tc.other, got, tc.want)
		}
	}
}
