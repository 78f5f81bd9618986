package main

import (
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"anchor/cluster"
	"anchor/fsm"
	"anchor/internal/testenv"
)

// TestAnchorctl runs every command against a three-node in-process cluster
// whose nodes serve the admin API over mutual TLS on loopback. The commands
// go to node 2, so writes are forwarded to the leader whenever node 2
// follows. The subtests share the cluster and run in order.
func TestAnchorctl(t *testing.T) {
	env := testenv.New(t, 3, testenv.Options{})
	runPublishers(t, env)
	root := &cli{t: t, addr: env.Members[1].GRPCAddr,
		tls: env.AdminTLS(t, "root", cluster.RoleClusterAdmin)}
	var creds []*fsm.Credential

	t.Run("AdminIssueCert", func(t *testing.T) {
		root := root.on(t)
		out := filepath.Join(t.TempDir(), "carol")
		r := runRaw("", nil, "admin", "issue-cert", "--ca-dir", env.CADir, "--name", "carol",
			"--role", "read-only", "--out", out)
		if r.code != exitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		wantContains(t, r.stdout, "export ANCHOR_TLS_CERT="+filepath.Join(out, "admin.pem"))
		info, err := os.Stat(filepath.Join(out, "admin-key.pem"))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("admin key file: %v, mode %v", err, info.Mode())
		}
		carol := &cli{t: t, addr: root.addr, tls: cluster.TLSConfig{
			CertFile: filepath.Join(out, "admin.pem"), KeyFile: filepath.Join(out, "admin-key.pem"),
			CAFile: cluster.CACertFile(env.CADir),
		}}
		carol.ok("cluster", "status")
		stderr := carol.exit(exitDenied, "org", "create", "carols")
		wantContains(t, stderr, `"carol" (role read-only) may not administer the cluster`)
		bad := runRaw("", nil, "admin", "issue-cert", "--ca-dir", env.CADir, "--name", "x",
			"--role", "org-admin/Not_A_Name")
		if bad.code != exitUsage {
			t.Errorf("invalid role: exit %d, want %d", bad.code, exitUsage)
		}
	})

	t.Run("OrgCreateListAndMembers", func(t *testing.T) {
		root := root.on(t)
		wantContains(t, root.ok("org", "create", "acme"), "acme")
		stderr := root.exit(exitConflict, "org", "create", "acme")
		if n := strings.Count(stderr, "already exists"); n != 1 {
			t.Errorf("the conflict names its code %d times, want once: %s", n, stderr)
		}
		var list struct {
			Organizations []struct{ Name string } `json:"organizations"`
		}
		root.json(&list, "org", "list")
		isAcme := func(o struct{ Name string }) bool { return o.Name == "acme" }
		if !slices.ContainsFunc(list.Organizations, isAcme) {
			t.Errorf("org list: %+v", list)
		}
		root.ok("org", "member", "add", "alice", "--org", "acme", "--role", "admin")
		wantContains(t, root.ok("org", "member", "list", "--org", "acme"), "alice", "admin")
		stderr = root.exit(exitConflict, "org", "member", "remove", "alice", "--org", "acme")
		wantContains(t, stderr, "last admin")
		root.ok("org", "member", "add", "bob", "--org", "acme", "--role", "admin")
		root.ok("org", "member", "remove", "alice", "--org", "acme")
	})

	t.Run("RealmCreateAndList", func(t *testing.T) {
		root := root.on(t)
		root.ok("realm", "create", "prod", "--org", "acme")
		wantContains(t, root.ok("realm", "list", "--org", "acme"), "prod")
		stderr := root.exit(exitNotFound, "realm", "list", "--org", "nobody")
		wantContains(t, stderr, `organization "nobody" not found`)
	})

	t.Run("ChainCreateListShow", func(t *testing.T) {
		root := root.on(t)
		out := root.ok("chain", "create", "web", "--org", "acme", "--realm", "prod",
			"--max-validity", "720h", "--permit-dns", "acme.test")
		wantContains(t, out, "acme/prod/web/root", "acme/prod/web/issuing")
		wantContains(t, root.ok("chain", "list", "--org", "acme"), "acme/prod/web")
		var chain struct {
			Subcas []struct {
				Policy struct {
					MaxValiditySeconds string `json:"max_validity_seconds"`
					NameConstraints    struct {
						PermittedDNS []string `json:"permitted_dns"`
					} `json:"name_constraints"`
				} `json:"policy"`
			} `json:"subcas"`
		}
		root.json(&chain, "chain", "show", "web", "--org", "acme", "--realm", "prod")
		if p := chain.Subcas[0].Policy; p.MaxValiditySeconds != "2592000" ||
			!slices.Equal(p.NameConstraints.PermittedDNS, []string{"acme.test"}) {
			t.Errorf("SubCA policy %+v", p)
		}
		pemOut := root.ok("chain", "show", "web", "--org", "acme", "--realm", "prod", "--pem")
		certs := parsePEM(t, []byte(pemOut))
		if len(certs) != 2 || !certs[0].IsCA || certs[1].CheckSignatureFrom(certs[0]) != nil {
			t.Errorf("chain PEM holds %d certificates, want the root and its SubCA", len(certs))
		}
		stderr := root.exit(exitNotFound, "chain", "show", "nope", "--org", "acme", "--realm", "prod")
		wantContains(t, stderr, `chain "nope" not found in realm "prod" of organization "acme"`)
	})

	t.Run("SubCACreateListRevoke", func(t *testing.T) {
		root := root.on(t)
		root.ok("subca", "create", "second", "--org", "acme", "--realm", "prod", "--chain", "web",
			"--client-auth")
		wantContains(t, root.ok("subca", "list", "--org", "acme", "--realm", "prod", "--chain", "web"),
			"acme/prod/web/issuing", "acme/prod/web/second")
		out := root.ok("subca", "revoke", "second", "--org", "acme", "--realm", "prod", "--chain", "web",
			"--reason", "cACompromise")
		wantContains(t, out, "(cACompromise)")
	})

	t.Run("ServiceCreateListShow", func(t *testing.T) {
		root := root.on(t)
		out := root.ok("service", "create", "api", "--org", "acme", "--identifier", "*.api.acme.test",
			"--realm", "prod:web")
		wantContains(t, out, "acme/api", "HMAC KEY")
		wantContains(t, root.ok("service", "list", "--org", "acme"), "acme/api", "*.api.acme.test")
		wantContains(t, root.ok("service", "show", "api", "--org", "acme"), "acme/prod/web/issuing")
		root.exit(exitUsage, "service", "create", "x", "--org", "acme", "--identifier", "a.acme.test",
			"--realm", "prod")
	})

	t.Run("EABCreateList", func(t *testing.T) {
		root := root.on(t)
		var secret struct {
			Key struct {
				KeyID string `json:"key_id"`
			} `json:"key"`
			HMACKey string `json:"hmac_key"`
		}
		root.json(&secret, "eab", "create", "--org", "acme", "--realm", "prod", "--chain", "web",
			"--identifier", "*.acme.test")
		if secret.HMACKey == "" || secret.Key.KeyID == "" {
			t.Fatalf("eab create: %+v", secret)
		}
		out := root.ok("eab", "list", "--org", "acme", "--realm", "prod", "--chain", "web")
		wantContains(t, out, secret.Key.KeyID)
		if strings.Contains(out, secret.HMACKey) {
			t.Error("eab list shows the HMAC key")
		}
	})

	for i := range 4 {
		creds = append(creds, issue(t, env, 1, "acme/prod/web", fmt.Sprintf("www%d.acme.test", i)))
	}

	t.Run("CertListSearchShow", func(t *testing.T) {
		root := root.on(t)
		wantContains(t, root.ok("cert", "list", "--org", "acme", "--realm", "prod", "--chain", "web"),
			"www0.acme.test", "www3.acme.test", "valid")
		out := root.ok("cert", "list", "--org", "acme", "--page-size", "3")
		wantContains(t, out, "more: --page-token")
		var all struct {
			Certificates []struct{ ID string } `json:"certificates"`
		}
		root.json(&all, "cert", "list", "--org", "acme", "--page-size", "3", "--all")
		if len(all.Certificates) != 4 {
			t.Errorf("cert list --all: %d certificates, want 4", len(all.Certificates))
		}
		wantContains(t, root.ok("cert", "search", "--name", "WWW2"), "www2.acme.test")
		withColons := colonHex(creds[1].Serial)
		wantContains(t, root.ok("cert", "search", "--serial", withColons), "www1.acme.test")
		wantContains(t, root.ok("cert", "show", creds[0].CertificateID),
			creds[0].Serial, "www0.acme.test")
		pemOut := root.ok("cert", "show", "--serial", creds[0].Serial, "--pem")
		certs := parsePEM(t, []byte(pemOut))
		if len(certs) != 1 || certs[0].DNSNames[0] != "www0.acme.test" {
			t.Errorf("cert show --pem: %d certificates", len(certs))
		}
		root.exit(exitUsage, "cert", "show")
		root.exit(exitUsage, "cert", "search", "--name", "a", "--serial", "ab")
		root.exit(exitNotFound, "cert", "show", "--serial", "abcdef")
	})

	t.Run("CertRenew", func(t *testing.T) {
		root := root.on(t)
		file := filepath.Join(t.TempDir(), "renewed.pem")
		out := root.ok("cert", "renew", creds[0].CertificateID, "--out", file)
		wantContains(t, out, creds[0].Serial)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		certs := parsePEM(t, data)
		if len(certs) != 2 || fsm.SerialKey(certs[0].SerialNumber) == creds[0].Serial {
			t.Errorf("renewed chain holds %d certificates", len(certs))
		}
	})

	t.Run("CertRevokeBulk", func(t *testing.T) {
		root := root.on(t)
		file := filepath.Join(t.TempDir(), "serials.txt")
		content := "# to revoke\n" + creds[1].Serial + "\n\n" + colonHex(creds[2].Serial) +
			"\nabcdef\n" + creds[3].Serial + "\n"
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		r := root.run("cert", "revoke", "--serials-file", file, "--reason", "superseded")
		if r.code != exitNotFound {
			t.Fatalf("exit %d, want %d (one serial is unknown)\n%s", r.code, exitNotFound, r.stderr)
		}
		wantContains(t, r.stderr, "revoke serial abcdef", "1 of 4 revocations failed")
		wantContains(t, r.stdout, creds[1].Serial, creds[2].Serial, creds[3].Serial, "superseded")
		var one []struct {
			Revoked bool  `json:"revoked"`
			Reason  int32 `json:"reason"`
		}
		root.json(&one, "cert", "revoke", creds[0].Serial, "--reason", "keyCompromise")
		if len(one) != 1 || !one[0].Revoked || one[0].Reason != 1 {
			t.Errorf("revoke output %+v", one)
		}
		again := root.run("cert", "revoke", creds[0].Serial)
		if again.code != exitConflict {
			t.Errorf("second revocation: exit %d, want %d", again.code, exitConflict)
		}
		if n := strings.Count(again.stderr, "already revoked"); n != 1 {
			t.Errorf("second revocation printed the failure %d times, want once:\n%s", n, again.stderr)
		}
		if strings.Contains(again.stderr, "(already exists)") {
			t.Errorf("second revocation: %q repeats the code in other words", again.stderr)
		}
		root.exit(exitUsage, "cert", "revoke")
		for _, format := range []string{"table", "json"} {
			failed := root.run("--output", format, "cert", "revoke", "abcdef")
			if failed.code != exitNotFound {
				t.Errorf("--output %s: exit %d, want %d", format, failed.code, exitNotFound)
			}
			if failed.stdout != "" {
				t.Errorf("--output %s: a failed revocation wrote %q to stdout", format, failed.stdout)
			}
		}
	})

	t.Run("CRLShow", func(t *testing.T) {
		root := root.on(t)
		args := []string{"crl", "show", "--org", "acme", "--realm", "prod", "--chain", "web",
			"--ca", "issuing"}
		der := filepath.Join(t.TempDir(), "issuing.crl")
		eventually(t, 30*time.Second, func() error {
			r := root.run(append(args, "--out", der)...)
			if r.code != exitOK {
				return fmt.Errorf("exit %d: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, creds[3].Serial) {
				return fmt.Errorf("CRL lacks serial %s:\n%s", creds[3].Serial, r.stdout)
			}
			return nil
		})
		data, err := os.ReadFile(der)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x509.ParseRevocationList(data); err != nil {
			t.Errorf("crl show --out wrote no DER CRL: %v", err)
		}
		serial, _ := new(big.Int).SetString(creds[3].Serial, 16)
		shard := fmt.Sprint(fsm.ShardOf(serial, fsm.DefaultCRLShards))
		eventually(t, 30*time.Second, func() error {
			r := root.run(append(args, "--shard", shard)...)
			if r.code != exitOK || !strings.Contains(r.stdout, creds[3].Serial) {
				return fmt.Errorf("shard %s: exit %d: %s%s", shard, r.code, r.stdout, r.stderr)
			}
			return nil
		})
	})

	t.Run("AuditList", func(t *testing.T) {
		root := root.on(t)
		out := root.ok("audit", "list", "--actor", "admin:root", "--limit", "1000")
		wantContains(t, out, "organization.create", "chain.create", "credential.revoke", "admin:root")
		var page struct {
			Events []struct {
				Index string `json:"index"`
			} `json:"events"`
			Next string `json:"next_after_index"`
		}
		root.json(&page, "audit", "list", "--limit", "2")
		if len(page.Events) != 2 || page.Next != page.Events[1].Index {
			t.Errorf("audit page %+v", page)
		}
	})

	t.Run("OrgAdminDenied", func(t *testing.T) {
		root := root.on(t)
		dave := &cli{t: t, addr: env.Members[2].GRPCAddr,
			tls: env.AdminTLS(t, "dave", cluster.RoleOrgAdminPrefix+"acme")}
		dave.ok("realm", "create", "dev", "--org", "acme")
		stderr := dave.exit(exitDenied, "realm", "create", "dev", "--org", "default")
		wantContains(t, stderr, `"dave" (role org-admin/acme) may not write organization "default"`)
		dave.exit(exitDenied, "cert", "list", "--org", "default")
		dave.exit(exitDenied, "cluster", "status")
		wantContains(t, root.ok("realm", "list", "--org", "default"), "default")
		if out := root.ok("realm", "list", "--org", "default"); strings.Contains(out, "dev") {
			t.Error("the denied realm was created")
		}
	})

	t.Run("ClusterStatus", func(t *testing.T) {
		root := root.on(t)
		out := root.ok("cluster", "status")
		wantContains(t, out, "node1", "node2", "node3", "leader", "follower", "unknown")
		var st struct {
			Members []struct {
				ID           string   `json:"id"`
				CAKeys       []string `json:"ca_keys"`
				AppliedIndex string   `json:"applied_index"`
				Gossip       string   `json:"gossip"`
			} `json:"members"`
		}
		root.json(&st, "cluster", "status")
		if len(st.Members) != 3 {
			t.Fatalf("%d members", len(st.Members))
		}
		for _, m := range st.Members {
			if len(m.CAKeys) == 0 || m.Gossip == "" {
				t.Errorf("member %+v", m)
			}
		}
	})

	t.Run("ClusterJoinRemove", func(t *testing.T) {
		root := root.on(t)
		root.ok("cluster", "join", "node9", "--raft-addr", closedAddr(t), "--grpc-addr", closedAddr(t),
			"--nonvoter")
		wantContains(t, root.ok("cluster", "status"), "node9", "nonvoter")
		root.ok("cluster", "remove", "node9")
		if strings.Contains(root.ok("cluster", "status"), "node9") {
			t.Error("node9 still listed after removal")
		}
		root.exit(exitNotFound, "cluster", "remove", "node9")
	})

	t.Run("ConnectionFromEnvironmentAndFile", func(t *testing.T) {
		root := root.on(t)
		env := map[string]string{
			"ANCHOR_ADDR": root.addr, "ANCHOR_TLS_CERT": root.tls.CertFile,
			"ANCHOR_TLS_KEY": root.tls.KeyFile, "ANCHOR_TLS_CA": root.tls.CAFile,
		}
		if r := runRaw("", env, "--connection", "/nonexistent", "cluster", "status"); r.code != exitOK {
			t.Errorf("from the environment: exit %d: %s", r.code, r.stderr)
		}
		file := filepath.Join(t.TempDir(), "cluster.json")
		content := fmt.Sprintf(`{"admin_tls": {"ca_file": %q, "cert_file": %q, "key_file": %q},
			"nodes": [{"id": "node3", "admin_addr": %q}]}`,
			root.tls.CAFile, root.tls.CertFile, root.tls.KeyFile, env["ANCHOR_ADDR"])
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := runRaw("", nil, "--connection", file, "org", "list"); r.code != exitOK {
			t.Errorf("from the connection file: exit %d: %s", r.code, r.stderr)
		}
		r := runRaw("", nil, "--connection", "/nonexistent", "org", "list")
		if r.code != exitUsage || !strings.Contains(r.stderr, "ANCHOR_ADDR") {
			t.Errorf("without a target: exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("ConnectionFileFailover", func(t *testing.T) {
		testConnectionFileFailover(t, root.on(t))
	})

	t.Run("LegacySingleDashFlags", func(t *testing.T) {
		r := runRaw("", nil, "-addr", root.addr, "-tls-cert", root.tls.CertFile, "-tls-key",
			root.tls.KeyFile, "-tls-ca", root.tls.CAFile, "-output=json", "cluster", "status")
		if r.code != exitOK || !strings.Contains(r.stdout, `"members"`) {
			t.Errorf("exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("ExitCodes", func(t *testing.T) {
		root := root.on(t)
		down := &cli{t: t, addr: closedAddr(t), tls: root.tls}
		down.exit(exitUnreachable, "org", "list")
		root.exit(exitUsage, "org", "list", "--no-such-flag")
		root.exit(exitUsage, "no-such-command")
		root.exit(exitUsage, "--output", "yaml", "org", "list")
		root.exit(exitUsage, "realm", "create", "Bad_Name", "--org", "acme")
		missing := &cli{t: t, addr: root.addr, tls: cluster.TLSConfig{
			CertFile: "/nonexistent.pem", KeyFile: "/nonexistent-key.pem", CAFile: root.tls.CAFile,
		}}
		missing.exit(exitUsage, "org", "list")
	})

	t.Run("Completion", func(t *testing.T) {
		r := runRaw("", nil, "completion", "bash")
		if r.code != exitOK || !strings.Contains(r.stdout, "anchorctl") {
			t.Errorf("completion bash: exit %d, %d bytes", r.code, len(r.stdout))
		}
		r = runRaw("", nil, "__complete", "cert", "revoke", "--reason", "key")
		wantContains(t, r.stdout, "keyCompromise")
	})

	t.Run("SnapshotSaveRestore", func(t *testing.T) {
		root := root.on(t)
		file := filepath.Join(t.TempDir(), "state.snap")
		wantContains(t, root.ok("cluster", "snapshot", "save", file), "bytes")
		info, err := os.Stat(file)
		if err != nil || info.Mode().Perm() != 0o600 || info.Size() == 0 {
			t.Fatalf("snapshot file: %v %v", err, info)
		}
		// An existing file is replaced only with --force.
		root.exit(exitUsage, "cluster", "snapshot", "save", file)
		wantContains(t, root.ok("cluster", "snapshot", "save", file, "--force"), "bytes")
		root.ok("org", "create", "after-snapshot")
		root.exit(exitUsage, "cluster", "snapshot", "restore", file)
		follower := root.on(t)
		follower.addr = followerAddr(t, root) // anchorctl finds the leader itself
		follower.ok("cluster", "snapshot", "restore", file, "--yes")
		// NOTE: a write comes first because cluster.Node.LinearizableRead
		// waits for the state to apply the leader's commit index, and the
		// no-op entry that ends a restore never reaches the state: reads
		// block until the next write.
		root.ok("org", "create", "after-restore")
		out := root.ok("org", "list")
		wantContains(t, out, "acme", "after-restore")
		if strings.Contains(out, "after-snapshot") {
			t.Errorf("the organization created after the snapshot survived the restore:\n%s", out)
		}
	})

	t.Run("ClusterTransferLeadership", func(t *testing.T) {
		root := root.on(t)
		out := root.ok("cluster", "transfer-leadership")
		wantContains(t, out, "new leader")
		newLeader := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "new leader:"))
		eventually(t, 30*time.Second, func() error {
			var st struct {
				LeaderID string `json:"leader_id"`
			}
			root.json(&st, "cluster", "status")
			if st.LeaderID != newLeader {
				return fmt.Errorf("status names leader %q, want %q", st.LeaderID, newLeader)
			}
			return nil
		})
		// NOTE: a write comes first, as after the restore: the new leader's
		// no-op entry blocks linearizable reads until the next write.
		root.ok("org", "create", "after-transfer")
		wantContains(t, root.ok("org", "list"), "after-transfer")
	})
}

// colonHex writes a hex serial as openssl prints it: pairs of digits
// separated by colons.
func colonHex(serial string) string {
	if len(serial)%2 == 1 {
		serial = "0" + serial
	}
	var pairs []string
	for i := 0; i < len(serial); i += 2 {
		pairs = append(pairs, serial[i:i+2])
	}
	return strings.Join(pairs, ":")
}

// followerAddr returns the gRPC address of a member that is not the leader.
func followerAddr(t *testing.T, c *cli) string {
	t.Helper()
	var st struct {
		Members []struct {
			Leader      bool   `json:"leader"`
			GRPCAddress string `json:"grpc_address"`
		} `json:"members"`
	}
	c.json(&st, "cluster", "status")
	for _, m := range st.Members {
		if !m.Leader && m.GRPCAddress != "" {
			return m.GRPCAddress
		}
	}
	t.Fatal("no follower with a gRPC address")
	return ""
}
