package fsm

const bucketClusterMembers = "cluster_members"

// CmdSetClusterMember records the addresses of a Raft member.
const CmdSetClusterMember CommandType = "cluster.member.set"

// ClusterMember is a Raft member's addresses, so that any node can reach any
// other member's gRPC server, such as a joiner that forwards to the leader.
type ClusterMember struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	GRPCAddr string `json:"grpc_addr"`
}

func init() { register(CmdSetClusterMember, applySetClusterMember) }

func applySetClusterMember(tx *Tx, cmd *Command) (any, error) {
	var m ClusterMember
	if err := decodePayload(cmd, &m); err != nil {
		return nil, err
	}
	if m.ID == "" || m.RaftAddr == "" || m.GRPCAddr == "" {
		return nil, Errorf(CodeInvalidArgument, "cluster member needs id, raft_addr and grpc_addr")
	}
	return m, tx.put(bucketClusterMembers, m.ID, m)
}

// ClusterMember returns the recorded addresses of a Raft member.
func (t *Tx) ClusterMember(id string) (*ClusterMember, error) {
	var m ClusterMember
	ok, err := t.get(bucketClusterMembers, id, &m)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "cluster member %q not recorded", id)
	}
	return &m, nil
}
