package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

// streams are the standard streams of one run. stderrTerminal reports
// whether stderr is a terminal, where progress bars are drawn.
type streams struct {
	in             io.Reader
	out            io.Writer
	err            io.Writer
	stderrTerminal bool
}

// newStreams wraps the process's standard streams.
func newStreams(in *os.File, out, errOut *os.File) streams {
	fd := errOut.Fd()
	return streams{in: in, out: out, err: errOut,
		stderrTerminal: isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)}
}

// app is the state of one anchorctl run: its streams, the global flags
// and the connection, opened on first use.
type app struct {
	streams
	getenv func(string) string

	addr     string
	connFile string
	output   string
	timeout  time.Duration
	tls      tlsFlags

	api  clients
	conn *grpc.ClientConn
	// extraConns are connections to other nodes, such as the leader.
	extraConns []*grpc.ClientConn
	// started is set once a command's own code runs; an error before that
	// comes from parsing the command line.
	started bool
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, s streams, getenv func(string) string) int {
	a := &app{streams: s, getenv: getenv}
	a.api = newClients(a)
	root := newRootCommand(a)
	root.SetArgs(doubleDashFlags(args))
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	initCompletionCommand(root)
	_, err := root.ExecuteContextC(ctx)
	a.closeConns()
	if err != nil {
		printError(s.err, err)
	}
	return exitCode(err, a.started)
}

// singleDashFlag matches a long flag written with one dash, as the
// flag-package anchorctl of earlier versions took it: -addr, -output=json.
var singleDashFlag = regexp.MustCompile(`^-[a-z][a-z-]+(=.*)?$`)

// doubleDashFlags rewrites single-dash long flags to the double-dash form
// that cobra parses, so that scripts written for earlier versions keep
// working. anchorctl's only one-letter flags are -o and -h, so a dash
// followed by two or more letters is never a group of short flags. The
// arguments after "--" stay as they are.
func doubleDashFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i, arg := range args {
		if arg == "--" {
			return append(out, args[i:]...)
		}
		if singleDashFlag.MatchString(arg) {
			arg = "-" + arg
		}
		out = append(out, arg)
	}
	return out
}

func (a *app) closeConns() {
	if a.conn != nil {
		a.conn.Close()
	}
	for _, c := range a.extraConns {
		c.Close()
	}
}

// cobraRun is the type of cobra.Command.RunE.
type cobraRun = func(cmd *cobra.Command, args []string) error

// runE wraps a command's code: it marks the run as started and checks the
// output format.
func (a *app) runE(fn cobraRun) cobraRun {
	return func(cmd *cobra.Command, args []string) error {
		a.started = true
		if a.output != "table" && a.output != "json" {
			return usagef("invalid --output %q: use table or json", a.output)
		}
		return fn(cmd, args)
	}
}

// callContext returns the context of one call, bounded by --timeout.
func (a *app) callContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), a.timeout)
}

// client opens the connection to the target node on first use. With
// several addresses, from --addr or ANCHOR_ADDR or else the connection
// file, it connects to the first node that accepts the connection, within
// the deadline of ctx.
func (a *app) client(ctx context.Context) (*grpc.ClientConn, error) {
	if a.conn != nil {
		return a.conn, nil
	}
	t, err := a.resolveTarget()
	if err != nil {
		return nil, err
	}
	var conn *grpc.ClientConn
	if t.addr != "" {
		conn, err = dial(t.addr, t.tls)
	} else {
		conn, err = connectFromFile(ctx, t)
	}
	if err != nil {
		return nil, err
	}
	a.conn = conn
	return conn, nil
}

// connectFromFile connects to the first node of the target's list, from
// the connection file or a comma-separated --addr, that accepts the
// connection.
func connectFromFile(ctx context.Context, t *target) (*grpc.ClientConn, error) {
	creds, err := loadCredentials(t.tls)
	if err != nil {
		return nil, err
	}
	return connectFirst(ctx, t.source, t.nodeAddrs, creds)
}

func (a *app) env(name string) string {
	if a.getenv == nil {
		return ""
	}
	return a.getenv(name)
}

func (a *app) errorf(format string, args ...any) {
	fmt.Fprintf(a.err, "anchorctl: "+format+"\n", args...)
}
