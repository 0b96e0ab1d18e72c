package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The roles a discoverd has in the etcd cluster under it.
const (
	// roleMember runs an embedded etcd member.
	roleMember = "member"
	// roleClient uses the members' etcd, as the nodes after the first
	// discoverd.MaxEtcdMembers do.
	roleClient = "client"
)

// nodeStateFile, in the data dir, records the discoverd's role in the etcd
// cluster.
const nodeStateFile = "etcd-node.json"

// nodeState is what a discoverd records in its data dir about its place in
// the etcd cluster, so that a restart resumes it: a member starts its etcd
// member again (its data is in <data dir>/etcd), a client connects to the
// members it last knew. A data dir with an etcd member and no record (a
// single-node cluster from before) is a member's.
type nodeState struct {
	Role string `json:"role"`
	// ClusterID is the etcd cluster's id (hex), to tell its join targets'
	// answers from another cluster's.
	ClusterID string `json:"cluster_id,omitempty"`
	// MemberID (hex), Name and PeerURL are a member's: a member whose
	// id is no longer in the cluster was removed while away.
	MemberID string `json:"member_id,omitempty"`
	Name     string `json:"name,omitempty"`
	PeerURL  string `json:"peer_url,omitempty"`
	// Endpoints are a client's: the members' client URLs when it last
	// followed the member list.
	Endpoints []string `json:"endpoints,omitempty"`
}

// readNodeState returns the state recorded in dir, or the zero state when
// there is none.
func readNodeState(dir string) (*nodeState, error) {
	var st nodeState
	b, err := os.ReadFile(filepath.Join(dir, nodeStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, nodeStateFile), err)
	}
	return &st, nil
}

// writeNodeState records st in dir; a crash leaves the old record or the
// new one, never half of one.
func writeNodeState(dir string, st *nodeState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, nodeStateFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, nodeStateFile)); err != nil {
		return fmt.Errorf("record etcd role: %w", err)
	}
	return nil
}
