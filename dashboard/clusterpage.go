package dashboard

import (
	"context"
	"sort"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// clusterView is the cluster page: its nodes and the deployments in
// flight.
type clusterView struct {
	Hosts       []*hostView
	Deployments []*deploymentView
	Graphs      []graphView
}

// hostView is a node and what runs on it.
type hostView struct {
	*controller.Host
	// Runs counts the node's live jobs by app and process type.
	Runs []jobCount
}

// jobCount is how many jobs of one app's process type a node runs.
type jobCount struct {
	App, Type string
	N         int
}

func (s *Server) clusterPage(ctx context.Context, r *request) (*view, error) {
	v := &clusterView{}
	var (
		apps  []*controller.App
		hosts []*controller.Host
	)
	loads := []func(ctx context.Context) error{
		func(ctx context.Context) (err error) { hosts, err = r.api.HostsWithStats(ctx); return },
		func(ctx context.Context) (err error) { apps, err = r.api.Apps(ctx); return },
	}
	if err := each(ctx, len(loads), func(ctx context.Context, i int) error { return loads[i](ctx) }); err != nil {
		return nil, err
	}
	found := make([]*deploymentView, len(apps))
	jobsOf := make([][]*controller.Job, len(apps))
	err := each(ctx, len(apps), func(ctx context.Context, i int) error {
		// An app deleted since the list has nothing to show.
		jobs, err := r.api.ActiveJobs(ctx, apps[i].ID)
		if httpjson.IsNotFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		jobsOf[i] = jobs
		ds, err := r.api.Deployments(ctx, apps[i].ID)
		if httpjson.IsNotFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		d := firstInFlight(ds)
		if d == nil {
			return nil
		}
		rel, err := r.api.Release(ctx, d.NewReleaseID)
		if err != nil {
			return err
		}
		found[i] = inFlight(apps[i], ds, []*controller.Release{rel}, jobs)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, d := range found {
		if d != nil {
			v.Deployments = append(v.Deployments, d)
		}
	}
	v.Hosts = jobsByHost(hosts, apps, jobsOf)
	sort.Slice(v.Deployments, func(i, j int) bool {
		return v.Deployments[i].Deployment.CreatedAt.Before(v.Deployments[j].Deployment.CreatedAt)
	})
	v.Graphs = s.hostGraphs()
	return &view{Page: "cluster", Title: "Cluster", Data: v}, nil
}

func firstInFlight(ds []*controller.Deployment) *controller.Deployment {
	for _, d := range ds {
		if d.Status == controller.DeploymentPending || d.Status == controller.DeploymentRunning {
			return d
		}
	}
	return nil
}

// jobsByHost counts each node's live jobs by app and process type (jobsOf
// holds each app's, in the order of apps).
func jobsByHost(hosts []*controller.Host, apps []*controller.App, jobsOf [][]*controller.Job) []*hostView {
	counts := map[string]map[jobCount]int{}
	for i, jobs := range jobsOf {
		for _, j := range jobs {
			typ := j.Type
			if typ == "" {
				typ = "run"
			}
			if counts[j.HostID] == nil {
				counts[j.HostID] = map[jobCount]int{}
			}
			counts[j.HostID][jobCount{App: apps[i].Name, Type: typ}]++
		}
	}
	out := make([]*hostView, len(hosts))
	for i, h := range hosts {
		hv := &hostView{Host: h}
		for k, n := range counts[h.ID] {
			k.N = n
			hv.Runs = append(hv.Runs, k)
		}
		sort.Slice(hv.Runs, func(a, b int) bool {
			if hv.Runs[a].App != hv.Runs[b].App {
				return hv.Runs[a].App < hv.Runs[b].App
			}
			return hv.Runs[a].Type < hv.Runs[b].Type
		})
		out[i] = hv
	}
	return out
}
