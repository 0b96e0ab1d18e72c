package discoverd

// MaxEtcdMembers is how many etcd members the discoverds of a cluster run:
// the first nodes' discoverds each run one, later nodes' discoverds are
// clients of them. Three members keep serving when any one is lost.
const MaxEtcdMembers = 3

// EtcdMember is one member of the etcd cluster under discoverd, as
// GET /etcd/members lists it.
type EtcdMember struct {
	// ID is etcd's member id in hex, as etcdctl prints it.
	ID string `json:"id"`
	// Name is the member's name (its node's host id); empty until the
	// member has started.
	Name string `json:"name,omitempty"`
	// PeerURLs and ClientURLs are where the member serves its peers and
	// its clients.
	PeerURLs   []string `json:"peer_urls"`
	ClientURLs []string `json:"client_urls,omitempty"`
	// Learner is true while the member catches up, before it votes.
	Learner bool `json:"learner,omitempty"`
}

// Started reports whether the member has joined the cluster and serves
// (etcd learns a member's name when it starts).
func (m *EtcdMember) Started() bool { return m.Name != "" }

// EtcdMembers is the etcd cluster's membership.
type EtcdMembers struct {
	// ClusterID is etcd's cluster id in hex.
	ClusterID string        `json:"cluster_id"`
	Members   []*EtcdMember `json:"members"`
}

// Voting returns the members that vote (not learners).
func (m *EtcdMembers) Voting() []*EtcdMember {
	var out []*EtcdMember
	for _, mem := range m.Members {
		if !mem.Learner {
			out = append(out, mem)
		}
	}
	return out
}

// ClientURLs returns the client URLs of the members that serve clients:
// started voting members (a learner refuses most requests).
func (m *EtcdMembers) ClientURLs() []string {
	var out []string
	for _, mem := range m.Voting() {
		if mem.Started() {
			out = append(out, mem.ClientURLs...)
		}
	}
	return out
}

// EtcdMemberAdd asks (POST /etcd/members) that a node join the etcd
// cluster as a member.
type EtcdMemberAdd struct {
	// Name is the new member's name: its node's host id, unique in the
	// cluster.
	Name string `json:"name"`
	// PeerURL is where the new member will serve its peers.
	PeerURL string `json:"peer_url"`
}

// EtcdJoin answers an EtcdMemberAdd: the member as added (a learner, until
// it has caught up and is promoted) and what the new member starts with.
type EtcdJoin struct {
	ClusterID string      `json:"cluster_id"`
	Member    *EtcdMember `json:"member"`
	// InitialCluster is etcd's --initial-cluster for the new member, with
	// --initial-cluster-state existing: name=peerURL of every member.
	InitialCluster string `json:"initial_cluster"`
}
