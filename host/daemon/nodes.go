package daemon

import (
	"slices"
	"time"

	"github.com/openflynn/flynn/host/firewall"
)

// forwardRules are the rules fencing app jobs off peers, the other nodes.
func (d *Daemon) forwardRules(peers []string) firewall.Forward {
	return firewall.Forward{Bridge: d.cfg.AppBridge, Chain: d.cfg.ForwardChain, RouterPorts: d.cfg.RouterPorts, Peers: peers}
}

// fenceNodes keeps the forward chain in step with the cluster's nodes
// until the daemon closes: every set of node addresses nw sends, but this
// node's, becomes the chain's peers. A failed write is tried again, with
// the latest set, until it holds.
func (d *Daemon) fenceNodes(nw NodeWatcher) {
	ctx, cancel := d.lifetime()
	nodes := nw.WatchNodes(ctx)
	defer func() {
		cancel()
		for range nodes { // closed once the watcher has ended
		}
	}()
	var (
		applied []string // nil: nothing written yet
		want    []string
		pending bool
		retry   <-chan time.Time
		delay   = 500 * time.Millisecond
	)
	for {
		select {
		case <-ctx.Done():
			return
		case addrs, ok := <-nodes:
			if !ok {
				return
			}
			want = d.peers(addrs)
			pending = applied == nil || !slices.Equal(want, applied)
		case <-retry:
			retry = nil
		}
		if !pending || retry != nil {
			continue
		}
		if err := firewall.InstallForward(ctx, d.cfg.IPTables, d.forwardRules(want)); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("firewall towards other nodes; trying again", "peers", want, "err", err, "in", delay)
			retry = time.After(delay)
			delay = min(delay*2, 10*time.Second)
			continue
		}
		d.log.Info("firewall towards other nodes updated", "chain", d.cfg.ForwardChain, "peers", want)
		applied, pending, delay = want, false, 500*time.Millisecond
	}
}

// peers returns addrs without this node's own, sorted, without repeats,
// and never nil.
func (d *Daemon) peers(addrs []string) []string {
	out := []string{}
	for _, a := range addrs {
		if a != "" && a != d.cfg.ExternalIP {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
