package dashboard

import (
	"context"
	"sort"

	"github.com/openflynn/flynn/controller"
)

// clusterView is the cluster page: its nodes and the deployments in
// flight.
type clusterView struct {
	Hosts       []*controller.Host
	Deployments []*deploymentView
	Graphs      []graphView
}

func (s *Server) clusterPage(ctx context.Context, r *request) (*view, error) {
	v := &clusterView{}
	var apps []*controller.App
	loads := []func(ctx context.Context) error{
		func(ctx context.Context) (err error) { v.Hosts, err = r.api.HostsWithStats(ctx); return },
		func(ctx context.Context) (err error) { apps, err = r.api.Apps(ctx); return },
	}
	if err := each(ctx, len(loads), func(ctx context.Context, i int) error { return loads[i](ctx) }); err != nil {
		return nil, err
	}
	found := make([]*deploymentView, len(apps))
	err := each(ctx, len(apps), func(ctx context.Context, i int) error {
		ds, err := r.api.Deployments(ctx, apps[i].ID)
		if err != nil {
			return err
		}
		var pending bool
		for _, d := range ds {
			pending = pending || d.Status == controller.DeploymentPending || d.Status == controller.DeploymentRunning
		}
		if !pending {
			return nil
		}
		jobs, err := r.api.ActiveJobs(ctx, apps[i].ID)
		if err != nil {
			return err
		}
		rel, err := r.api.Release(ctx, firstInFlight(ds).NewReleaseID)
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
