package patroni

import (
	"context"
	"log/slog"
	"time"

	"github.com/openflynn/flynn/appliance/postgres"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
)

// registry is what the follower needs of discoverd.
type registry interface {
	// Register registers inst in service and keeps it alive until the
	// registration is deregistered.
	Register(ctx context.Context, service string, inst *discoverd.Instance) (registration, error)
	// Instances lists service's instances.
	Instances(ctx context.Context, service string) ([]*discoverd.Instance, error)
	// Deregister removes the instance id of service.
	Deregister(ctx context.Context, service, id string) error
}

// registration is a live registration.
type registration interface {
	Deregister(ctx context.Context) error
}

// discoverdRegistry is the registry of a discoverd client.
type discoverdRegistry struct{ c *client.Client }

var _ registry = discoverdRegistry{}

func (r discoverdRegistry) Register(ctx context.Context, service string, inst *discoverd.Instance) (registration, error) {
	return r.c.Register(ctx, service, inst)
}

func (r discoverdRegistry) Instances(ctx context.Context, service string) ([]*discoverd.Instance, error) {
	return r.c.Instances(ctx, service)
}

func (r discoverdRegistry) Deregister(ctx context.Context, service, id string) error {
	return r.c.Deregister(ctx, service, id)
}

// unknownLimit is how many role checks in a row may fail before the
// instance counts as no longer primary. One that fails (a slow answer)
// says nothing: Patroni demotes its Postgres itself when it loses the
// leader key, and then answers that it is not the primary.
const unknownLimit = 3

// follower follows the instance's role through Patroni's REST API and
// keeps its discoverd registration in step: in postgres.Service while it
// is the primary, in postgres.ReplicaService while it is a replica, in
// neither otherwise.
type follower struct {
	probe    *prober
	registry registry
	// instance is this instance, as registered (meta "role" set per
	// service).
	instance discoverd.Instance
	// provision, when set, runs once the instance is the primary, before
	// it registers (a failure is logged and tried again later).
	provision func(ctx context.Context) error
	interval  time.Duration
	logger    *slog.Logger

	role        string
	unknowns    int
	regs        map[string]registration // by service
	provisioned bool
	lastTry     time.Time
	// replication is the standbys last logged, if logged is set.
	replication string
	logged      bool
}

// run follows the role every interval until ctx ends, then deregisters.
func (f *follower) run(ctx context.Context) {
	defer f.deregisterAll()
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		f.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step checks the role once and registers or deregisters accordingly.
func (f *follower) step(ctx context.Context) {
	reqCtx, cancel := context.WithTimeout(ctx, max(f.interval, time.Second))
	role, st, err := f.probe.role(reqCtx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		f.unknowns++
		if f.unknowns < unknownLimit {
			return
		}
		// Quiet while Patroni starts; loud when a role is lost.
		if f.unknowns == unknownLimit && f.role != "" {
			f.logger.Warn("patroni does not answer; this instance counts as neither primary nor replica", "err", err)
		}
		role = ""
	} else {
		f.unknowns = 0
	}
	if role != f.role {
		f.logger.Info("role changed", "from", roleName(f.role), "to", roleName(role))
		f.role = role
	}
	switch role {
	case postgres.RolePrimary:
		f.deregister(postgres.ReplicaService)
		if !f.provisioned && time.Since(f.lastTry) > 5*time.Second {
			f.tryProvision(ctx)
		}
		if f.regs[postgres.Service] == nil {
			f.register(ctx, postgres.Service, postgres.RolePrimary)
			f.removeStale(ctx)
		}
		f.logReplication(st)
	case postgres.RoleReplica:
		f.forgetPrimary()
		f.register(ctx, postgres.ReplicaService, postgres.RoleReplica)
	default:
		f.forgetPrimary()
		f.deregister(postgres.ReplicaService)
	}
}

// forgetPrimary deregisters the instance as the primary and forgets what
// it did as one.
func (f *follower) forgetPrimary() {
	f.deregister(postgres.Service)
	f.provisioned = false
	f.lastTry = time.Time{}
	f.logged = false
}

func (f *follower) tryProvision(ctx context.Context) {
	if f.provision == nil {
		f.provisioned = true
		return
	}
	f.lastTry = time.Now()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.provision(pctx); err != nil {
		if ctx.Err() == nil {
			f.logger.Warn("provision the primary (roles, databases); trying again", "err", err)
		}
		return
	}
	f.provisioned = true
	f.logger.Info("primary provisioned: roles and databases are in place")
}

// register registers the instance in service unless it is.
func (f *follower) register(ctx context.Context, service, role string) {
	if f.regs[service] != nil {
		return
	}
	if f.regs == nil {
		f.regs = map[string]registration{}
	}
	inst := f.instance
	inst.Meta = map[string]string{postgres.MetaRole: role}
	for k, v := range f.instance.Meta {
		inst.Meta[k] = v
	}
	// The registration heartbeats until deregistered, or until the
	// follower's ctx ends (so ctx, not one bounded to this call).
	reg, err := f.registry.Register(ctx, service, &inst)
	if err == nil {
		f.regs[service] = reg
		f.logger.Info("registered in discoverd", "service", service, "addr", inst.Addr)
		return
	}
	if ctx.Err() == nil {
		f.logger.Warn("register in discoverd; trying again", "service", service, "err", err)
	}
}

// removeStale deregisters the other instances of postgres.Service: only
// one instance holds Patroni's leader key, so any other there is a lost
// primary whose registration has not expired yet, and discoverd's leader
// (its oldest instance) would still name it.
func (f *follower) removeStale(ctx context.Context) {
	if f.regs[postgres.Service] == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	insts, err := f.registry.Instances(rctx, postgres.Service)
	if err != nil {
		f.logger.Warn("list former primaries", "err", err)
		return
	}
	id := discoverd.InstanceID(f.instance.Proto, f.instance.Addr)
	for _, inst := range insts {
		if inst.ID == id {
			continue
		}
		if err := f.registry.Deregister(rctx, postgres.Service, inst.ID); err != nil {
			f.logger.Warn("deregister a former primary", "addr", inst.Addr, "err", err)
			continue
		}
		f.logger.Info("deregistered a former primary", "addr", inst.Addr)
	}
}

// deregister removes the instance from service, if it is there.
func (f *follower) deregister(service string) {
	reg := f.regs[service]
	if reg == nil {
		return
	}
	delete(f.regs, service)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := reg.Deregister(ctx); err != nil {
		f.logger.Warn("deregister from discoverd", "service", service, "err", err)
		return
	}
	f.logger.Info("deregistered from discoverd", "service", service)
}

func (f *follower) deregisterAll() {
	f.deregister(postgres.Service)
	f.deregister(postgres.ReplicaService)
}

// logReplication logs the primary's standbys when they change, and says
// so when it runs alone.
func (f *follower) logReplication(st *status) {
	if st == nil {
		return
	}
	now := st.replicationSummary()
	if f.logged && now == f.replication {
		return
	}
	f.replication, f.logged = now, true
	if now == "" {
		f.logger.Warn("running alone without a replica: commits are on this node only until another instance joins")
		return
	}
	f.logger.Info("replicas streaming", "standbys", now)
}

func roleName(role string) string {
	if role == "" {
		return "none"
	}
	return role
}
