package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/firewall"
)

// setUpAppNetwork creates the app network when missing and installs its
// firewall: the rules towards the node itself, and the chain towards the
// other nodes, which fenceNodes fills in once it knows them (a restarted
// daemon keeps the rules its predecessor left until then). All is
// idempotent and nothing undoes it when the daemon stops: the jobs on the
// network keep running and must stay fenced.
func (d *Daemon) setUpAppNetwork(ctx context.Context) error {
	n := AppNetwork{Name: d.cfg.AppNetwork, Bridge: d.cfg.AppBridge}
	gw, err := d.backend.EnsureNetwork(ctx, n)
	if err != nil {
		return fmt.Errorf("app network %s: %w", n.Name, err)
	}
	d.mu.Lock()
	d.appGateway = gw
	d.mu.Unlock()
	if d.cfg.NoFirewall {
		d.log.Warn("no firewall: app jobs can reach every service of this node (its API, etcd, postgres…); run with the firewall on wherever iptables is available",
			"bridge", n.Bridge)
		return nil
	}
	rules := firewall.Rules{Bridge: n.Bridge, Chain: d.cfg.FirewallChain, RouterPorts: d.cfg.RouterPorts}
	if err := firewall.Install(ctx, d.cfg.IPTables, rules); err != nil {
		return fmt.Errorf("app network firewall (turn it off with --firewall=false where iptables is missing): %w", err)
	}
	if err := firewall.EnsureForward(ctx, d.cfg.IPTables, d.forwardRules(nil)); err != nil {
		return fmt.Errorf("app network firewall towards other nodes: %w", err)
	}
	d.log.Info("app network ready", "network", n.Name, "bridge", n.Bridge, "gateway", gw,
		"chain", d.cfg.FirewallChain, "forward_chain", d.cfg.ForwardChain, "router_ports", d.cfg.RouterPorts)
	return nil
}

// gateway returns the app network's gateway ("" before Start).
func (d *Daemon) gateway() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.appGateway
}

// hostNetworkCapabilities are the capabilities host-network jobs keep;
// everything else is dropped. They let images that start as root drop to
// a service user (postgres) and let the router bind :80 and :443 on the
// node. NET_RAW, MKNOD, SYS_CHROOT, SETFCAP and AUDIT_WRITE from Docker's
// default set are gone. App jobs keep none.
func hostNetworkCapabilities() []string {
	return []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE"}
}

// appSysctls are set in an app job's own network namespace. Docker (since
// 20.10) lets any user bind ports below 1024 there; binding one would be
// harmless (only published ports reach the job) but an app has no reason
// to, so the kernel's default comes back.
func appSysctls() map[string]string {
	return map[string]string{"net.ipv4.ip_unprivileged_port_start": "1024"}
}

// appUser is the user an app job runs as: its own unless it names root
// (or nothing, which means the image's user, often root), else the
// daemon's app user. A user name is kept: it is resolved in the image,
// and even one that maps to uid 0 runs without any capability.
func (d *Daemon) appUser(user string) string {
	if isRoot(user) {
		return d.cfg.AppUser
	}
	return user
}

// isRoot reports whether user ("uid", "uid:gid", "name" or "name:group")
// is empty or root.
func isRoot(user string) bool {
	u, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	return u == "" || u == "0" || u == "root"
}

// numericUser parses "uid" or "uid:gid"; gid is -1 when not given.
func numericUser(user string) (uid, gid int, ok bool) {
	u, g, hasGroup := strings.Cut(user, ":")
	uid, err := strconv.Atoi(u)
	if err != nil || uid < 0 {
		return 0, 0, false
	}
	gid = -1
	if hasGroup {
		if gid, err = strconv.Atoi(g); err != nil || gid < 0 {
			return 0, 0, false
		}
	}
	return uid, gid, true
}

// appVolume returns the directory of an app job's named volume, creating
// it owned by the job's user (uid:gid) so that the unprivileged job can
// write to it.
//
// An existing volume directory that root owns is handed to the user too.
// That is safe because app volumes live apart from the platform's (see
// appVolumesDir): only the daemon creates directories here, as root, so a
// root-owned one is one it created and could not hand over (it stopped
// between the two steps), never a system component's. Only the directory
// itself changes owner (with Lchown: a symlink is refused, not followed);
// its content is the jobs' own. A volume another non-root user owns is
// left alone: two apps sharing a volume name with different users is a
// conflict the job's own errors will show, not one to settle by flipping
// ownership back and forth. A user given by name cannot be resolved here
// (only the image knows it), so its volume stays root's.
func (d *Daemon) appVolume(name, user string) (string, error) {
	dir := filepath.Join(appVolumesDir(d.cfg.StateDir), name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("create volume %s: %w", name, err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("volume %s is not a directory", name)
	}
	uid, gid, ok := numericUser(user)
	if !ok {
		return dir, nil
	}
	if sys, isUnix := st.Sys().(*syscall.Stat_t); isUnix && sys.Uid == 0 && uid != 0 {
		if err := os.Lchown(dir, uid, gid); err != nil {
			return "", fmt.Errorf("give volume %s to user %s: %w", name, user, err)
		}
	}
	return dir, nil
}

// appExtraHosts are the platform's names an app job reaches through the
// router on its node, at the app network's gateway, where that router
// listens: the controller and blobstore over HTTP, and the databases
// apps provision (postgres.DOMAIN, redis.DOMAIN) through the router's TCP
// routes, which is the host part of the DATABASE_URL and REDIS_URL their
// providers hand out. Docker's "host-gateway" would be docker0's address,
// which every node of a machine shares: only when the network has no
// gateway.
func (d *Daemon) appExtraHosts() []string {
	if d.cfg.Domain == "" {
		return nil
	}
	gw := d.gateway()
	if gw == "" {
		gw = "host-gateway"
	}
	var hosts []string
	for _, name := range []string{"controller", "blobstore", "postgres", "redis"} {
		hosts = append(hosts, name+"."+d.cfg.Domain+":"+gw)
	}
	return hosts
}

// bridged reports whether the job runs on the app network.
func bridged(jb *host.Job) bool { return !jb.Config.HostNetwork }
