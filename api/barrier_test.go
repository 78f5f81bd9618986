package api_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	anchorv1 "anchor/api/anchorv1"
	"anchor/cluster"
)

// TestReadBarrier_NoQuorumUnavailable stops two of three members and reads
// on the third. The reads must fail with the no-leader error that writes
// return, not wait for the caller's deadline.
func TestReadBarrier_NoQuorumUnavailable(t *testing.T) {
	f := newFixture(t)
	root := f.conn(t, 0, "root", cluster.RoleClusterAdmin)
	orgs := anchorv1.NewOrganizationsClient(root)
	certs := anchorv1.NewCertificatesClient(root)
	_, err := orgs.ListOrganizations(ctx(t), &anchorv1.ListOrganizationsRequest{})
	check(t, err)

	f.env.Members[1].Stop()
	f.env.Members[2].Stop()

	reads := map[string]func(context.Context) error{
		"ListOrganizations": func(c context.Context) error {
			_, err := orgs.ListOrganizations(c, &anchorv1.ListOrganizationsRequest{})
			return err
		},
		"ListCertificates": func(c context.Context) error {
			_, err := certs.ListCertificates(c, &anchorv1.ListCertificatesRequest{})
			return err
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			// The deadline only turns a hang into a failure, because the
			// barrier gives up after the leader wait, far sooner.
			hangCheck, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := read(hangCheck)
			wantCode(t, err, codes.Unavailable, "no cluster leader: node node1 waited ")
			wantCode(t, err, codes.Unavailable, "without reaching a leader among 3 voters")
			wantCode(t, err, codes.Unavailable, "a majority of voters must be running and reachable")
		})
	}
}
