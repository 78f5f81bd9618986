package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	anchorv1 "anchor/api/anchorv1"
)

func (a *app) certRevokeCommand() *cobra.Command {
	var reason, file string
	cmd := &cobra.Command{
		Use:   "revoke [SERIAL...] [--serials-file FILE] [--reason REASON]",
		Short: "Revoke credentials by serial, one by one or in bulk from a file",
		Long: "Revoke credentials by serial. --serials-file reads one serial a line ('-' reads " +
			"stdin; blank lines and lines starting with # are skipped). A failed revocation is " +
			"reported and the others go on; the exit code is that of the first failure.",
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			code, err := parseReason(reason)
			if err != nil {
				return err
			}
			serials, err := a.serialsToRevoke(args, file)
			if err != nil {
				return err
			}
			return a.revokeAll(cmd, serials, code)
		}),
	}

	addReasonFlag(cmd, &reason, "keyCompromise, superseded, cessationOfOperation, ...")
	cmd.Flags().StringVar(&file, "serials-file", "", "file with one serial a line, or - for stdin")
	return cmd
}

// serialsToRevoke collects the serials of the arguments and of the file.
func (a *app) serialsToRevoke(args []string, file string) ([]string, error) {
	serials := append([]string(nil), args...)
	if file != "" {
		var r io.Reader = a.in
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return nil, usagef("read --serials-file: %v", err)
			}
			defer f.Close()
			r = f
		}
		fromFile, err := readSerials(r)
		if err != nil {
			return nil, usagef("read --serials-file %s: %v", file, err)
		}
		serials = append(serials, fromFile...)
	}
	if len(serials) == 0 {
		return nil, usagef("no serial given: name serials as arguments or in --serials-file")
	}
	return serials, nil
}

func readSerials(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// revokeAll revokes each serial in turn with a progress bar and reports
// each failure on stderr. It goes on after a failure the cluster returned
// and stops at a local one, such as unreadable credentials. The revoked
// credentials are written to stdout, and nothing when none was revoked.
func (a *app) revokeAll(cmd *cobra.Command, serials []string, reason int32) error {
	bar := a.newProgress("revoking", int64(len(serials)), false)
	var revoked []proto.Message
	var failures []error
	for _, serial := range serials {
		cred, err := unary(a, cmd, a.api.certs.RevokeCertificate,
			&anchorv1.RevokeCertificateRequest{Serial: serial, Reason: reason})
		bar.add(1)
		if err != nil {
			failures = append(failures, err)
			_, remote := status.FromError(err)
			// A first failure that is local, such as no reachable node, is
			// the error of the run and printed once, at the end, and so is
			// the failure of a single serial.
			if len(serials) > 1 && (remote || len(failures) > 1) {
				a.errorf("revoke serial %s: %v", serial, statusMessage(err))
			}
			if !remote || cmd.Context().Err() != nil {
				break // the next serials would fail the same way
			}
			continue
		}
		revoked = append(revoked, cred)
	}
	bar.finish()
	if len(serials) == 1 && len(failures) == 1 {
		return annotate(failures[0], "revoke serial "+serials[0])
	}
	if len(revoked) == 0 {
		return summarize(failures, len(serials))
	}
	err := a.emitList(revoked, func(t *table) {
		t.row("SERIAL", "CERTIFICATE", "REVOKED AT", "REASON")
		for _, m := range revoked {
			c := m.(*anchorv1.Credential)
			t.row(c.Serial, c.CertificateId, c.RevokedAt, reasonName(c.Reason))
		}
	})
	if err != nil || len(failures) == 0 {
		return err
	}
	return summarize(failures, len(serials))
}

// annotate prefixes the message of a gRPC status error with what failed,
// keeping its code. Another error is returned as it is.
func annotate(err error, failed string) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return status.Errorf(st.Code(), "%s: %s", failed, st.Message())
}

// summarize returns an error for failed revocations that keeps the status
// code of the first, so the exit code reports its kind.
func summarize(failures []error, total int) error {
	first := failures[0]
	st, ok := status.FromError(first)
	if !ok {
		return first
	}
	return status.Errorf(st.Code(), "%d of %d revocations failed, the first with: %s",
		len(failures), total, st.Message())
}

// emitList writes messages as a JSON array with --output json, else the
// table.
func (a *app) emitList(msgs []proto.Message, render func(t *table)) error {
	if a.output != "json" {
		return a.emit(nil, render)
	}
	parts := make([]string, 0, len(msgs))
	for _, m := range msgs {
		data, err := jsonOutput.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		parts = append(parts, string(data))
	}
	_, err := fmt.Fprintf(a.out, "[%s]\n", strings.Join(parts, ",\n"))
	return err
}
