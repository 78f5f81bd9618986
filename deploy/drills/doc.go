// Package drills contains the failure drills of the Docker deployment in
// docker-compose.yml and docker-compose.5.yml. The drills are Go tests
// behind the build tag e2e, so `go test ./...` skips them; `make e2e`
// builds the image and runs them:
//
//	go test -tags e2e -count=1 -v -timeout 30m ./deploy/drills/
//
// They start their own compose projects, anchordrill3 and anchordrill5, with
// ports published on 127.0.0.1 only: HTTP 2808N, ACME 2844N and admin gRPC
// 2900N for node N. They send every request to those ports, except to a
// node cut off from the network: that node gets its requests from inside
// its own container, on its loopback address. When they finish, they
// remove the projects' containers, networks and volumes.
//
//   - TestDrill_LeaderKilledDuringIssuance: 50 ACME issuances with lego while
//     the Raft leader is killed with docker kill.
//   - TestDrill_PartitionedNode: docker network disconnect of one node, OCSP
//     and writes on it, and catch-up after it reconnects.
//   - TestDrill_RollingRestartUnderOCSPLoad: docker restart of every node in
//     turn while OCSP requests run.
//   - TestDrill_FiveNodesLoseTwoThenThree: a five-node cluster keeps issuing
//     without two nodes and refuses writes without three.
//
// Each drill logs the time to a new leader and its failed request counts.
package drills
