package client

import (
	"context"
	"net/http"

	"github.com/openflynn/flynn/discoverd"
)

// EtcdMembers lists the members of the etcd cluster under discoverd. It
// needs the cluster key.
func (c *Client) EtcdMembers(ctx context.Context) (*discoverd.EtcdMembers, error) {
	var m discoverd.EtcdMembers
	if err := c.do(ctx, http.MethodGet, "/etcd/members", nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// AddEtcdMember asks discoverd to add a node to the etcd cluster, as a
// learner it promotes once caught up. A full cluster answers with a
// conflict *httpjson.Error (the node then runs as a client of the members);
// a join that has to wait for another, with service_unavailable.
func (c *Client) AddEtcdMember(ctx context.Context, req *discoverd.EtcdMemberAdd) (*discoverd.EtcdJoin, error) {
	var j discoverd.EtcdJoin
	if err := c.do(ctx, http.MethodPost, "/etcd/members", req, &j); err != nil {
		return nil, err
	}
	return &j, nil
}
