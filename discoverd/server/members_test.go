package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/server"
	"github.com/openflynn/flynn/discoverd/store"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// fakeCluster answers AddMember with err, or adds the member.
type fakeCluster struct {
	members *discoverd.EtcdMembers
	err     error
}

func (f *fakeCluster) Members(context.Context) (*discoverd.EtcdMembers, error) {
	return f.members, nil
}

func (f *fakeCluster) AddMember(_ context.Context, name, peerURL string) (*discoverd.EtcdJoin, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &discoverd.EtcdJoin{
		ClusterID:      f.members.ClusterID,
		Member:         &discoverd.EtcdMember{ID: "b", PeerURLs: []string{peerURL}, Learner: true},
		InitialCluster: "n1=https://10.0.0.1:1122," + name + "=" + peerURL,
	}, nil
}

func TestEtcdMembersAPI(t *testing.T) {
	const key = "k"
	members := &discoverd.EtcdMembers{ClusterID: "c", Members: []*discoverd.EtcdMember{{ID: "a", Name: "n1", PeerURLs: []string{"https://10.0.0.1:1122"}}}}
	tests := []struct {
		name     string
		cluster  server.Cluster // nil: an operator's etcd
		key      string
		req      *discoverd.EtcdMemberAdd // nil: list
		wantCode httpjson.Code            // "": success
	}{
		{"list", &fakeCluster{members: members}, key, nil, ""},
		{"list without the key", &fakeCluster{members: members}, "", nil, httpjson.CodeUnauthorized},
		{"list with a wrong key", &fakeCluster{members: members}, "guess", nil, httpjson.CodeUnauthorized},
		{"list of an operator's etcd", nil, key, nil, httpjson.CodeNotFound},
		{"add", &fakeCluster{members: members}, key, &discoverd.EtcdMemberAdd{Name: "n2", PeerURL: "https://10.0.0.2:1122"}, ""},
		{"add without the key", &fakeCluster{members: members}, "", &discoverd.EtcdMemberAdd{Name: "n2", PeerURL: "https://10.0.0.2:1122"}, httpjson.CodeUnauthorized},
		{"add to an operator's etcd", nil, key, &discoverd.EtcdMemberAdd{Name: "n2", PeerURL: "https://10.0.0.2:1122"}, httpjson.CodeNotFound},
		{"add without a name", &fakeCluster{members: members}, key, &discoverd.EtcdMemberAdd{PeerURL: "https://10.0.0.2:1122"}, httpjson.CodeValidation},
		{"add a name with a separator", &fakeCluster{members: members}, key, &discoverd.EtcdMemberAdd{Name: "a=b", PeerURL: "https://10.0.0.2:1122"}, httpjson.CodeValidation},
		{"add without a port", &fakeCluster{members: members}, key, &discoverd.EtcdMemberAdd{Name: "n2", PeerURL: "https://10.0.0.2"}, httpjson.CodeValidation},
		{"add another scheme", &fakeCluster{members: members}, key, &discoverd.EtcdMemberAdd{Name: "n2", PeerURL: "unix://10.0.0.2:1122"}, httpjson.CodeValidation},
		{"add to a full cluster", &fakeCluster{members: members, err: store.ErrClusterFull}, key, &discoverd.EtcdMemberAdd{Name: "n4", PeerURL: "https://10.0.0.4:1122"}, httpjson.CodeConflict},
		{"add a taken name", &fakeCluster{members: members, err: fmt.Errorf("%w: n1", store.ErrMemberNameTaken)}, key, &discoverd.EtcdMemberAdd{Name: "n1", PeerURL: "https://10.0.0.4:1122"}, httpjson.CodeObjectExists},
		{"add while another joins", &fakeCluster{members: members, err: fmt.Errorf("%w: too many learners", store.ErrJoinBusy)}, key, &discoverd.EtcdMemberAdd{Name: "n4", PeerURL: "https://10.0.0.4:1122"}, httpjson.CodeServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(server.NewAPI(nil, tt.cluster, key, nil, slog.New(slog.DiscardHandler)))
			defer srv.Close()
			c := client.New(srv.URL, tt.key)
			var err error
			if tt.req == nil {
				var got *discoverd.EtcdMembers
				got, err = c.EtcdMembers(context.Background())
				if err == nil && (got.ClusterID != "c" || len(got.Members) != 1 || got.Members[0].Name != "n1") {
					t.Errorf("members = %+v", got)
				}
			} else {
				var got *discoverd.EtcdJoin
				got, err = c.AddEtcdMember(context.Background(), tt.req)
				if err == nil && got.InitialCluster != "n1=https://10.0.0.1:1122,"+tt.req.Name+"="+tt.req.PeerURL {
					t.Errorf("join = %+v", got)
				}
			}
			switch {
			case tt.wantCode == "" && err != nil:
				t.Errorf("err = %v, want success", err)
			case tt.wantCode != "" && !httpjson.IsCode(err, tt.wantCode):
				t.Errorf("err = %v, want %s", err, tt.wantCode)
			}
		})
	}
}
