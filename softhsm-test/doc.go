// Package softhsmtest creates SoftHSM2 tokens for tests and for the local run of the cluster.
//
// NewToken lays out a token directory like this:
//
//	dir/softhsm2.conf   SoftHSM2 configuration: directories.tokendir = dir/tokens, file backend
//	dir/tokens/         token storage
//	dir/label           token label
//	dir/pin             user PIN (mode 0600), passed to hsm.Config.PINFile
//	dir/so-pin          security officer PIN (mode 0600)
//
// A token added with Token.AddToken gets the same files in dir/<label>, except tokens/:
// its softhsm2.conf names the first token's storage.
//
// SoftHSM2 reads the SOFTHSM2_CONF environment variable at C_Initialize, so while the
// module is initialised a process can use the tokens of one configuration file only.
// Give each node process its own token and set SOFTHSM2_CONF in that child's
// environment (Token.Environ). A single test process that needs two tokens creates the
// second with Token.AddToken, then sets SOFTHSM2_CONF to Token.ConfigPath (os.Setenv or
// testing.T.Setenv) before the first hsm.Open. Closing every hsm.HSM finalizes the
// module, after which the next hsm.Open reads SOFTHSM2_CONF again, so sequential tests
// may each use their own tokens.
//
// The shell script create-token.sh in this directory creates the same layout for
// operators and container images, without Go: create-token.sh DIR LABEL.
//
// The package runs softhsm2-util (Debian/Ubuntu package softhsm2, tested with 2.6.1)
// and never modifies the process environment itself.
package softhsmtest
